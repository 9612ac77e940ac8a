"""Gettext PO catalogs: one per notebook, created and merged from the English, and read back to build.

Every entry's msgctxt is the id of the cell its English comes from, so one sentence in two cells is two
entries, and its msgid is the English itself. Merging follows msgmerge: English that is new gets an
empty entry; English that changed keeps the old translation, marked fuzzy, with the old English as
`#| msgid` so a translator sees what changed; English that is gone becomes obsolete (`#~`). A catalog is
usable only when it is complete: every segment has a translation that is not fuzzy and keeps the
links and `{...}` fields of its English.
"""

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import polib

from grader.translation import segments

# An old translation is offered (fuzzy) for changed English this much alike, in the same cell...
SAME_CELL_SIMILARITY = 0.5
# ...or anywhere in the notebook (a cell that was split, or got a new id).
ANY_CELL_SIMILARITY = 0.8
# Who reads each edition: the variety of the language its translations are written in.
LANGUAGE_TEAMS = {"es": "Spanish (Chile), neutral academic register, tuteo"}
_KIND_COMMENTS = {
    segments.MARKDOWN: "markdown",
    segments.COMMENT: "code comment",
    segments.STRING: "string in code",
}


@dataclass(frozen=True)
class Unit:
    """One segment of one cell, located for a catalog."""

    context: str  # the cell id (for the grader's messages: the module)
    cell_index: int  # (for the grader's messages: the line)
    segment: segments.Segment
    source: str = ""  # where it comes from, when not the catalog's one source

    @property
    def key(self) -> tuple[str, str]:
        return self.context, self.segment.text


def units(nb, extra_cells=()) -> list[Unit]:
    """Every translatable segment of a notebook, in order. The Colab badge is regenerated, not translated."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.get("metadata", {}).get("course", {}).get("role") == "colab-badge":
            continue
        found += [Unit(cell.id, index, segment) for segment in segments.segments(cell)]
    return found


def _comment(segment: segments.Segment) -> str:
    note = _KIND_COMMENTS[segment.kind]
    if segment.f_string:
        note += " (f-string: keep every {...} field as it is)"
    elif segment.kind == segments.STRING and segments.fields(segment.text):
        note += " (keep every {...} field as it is)"
    if segment.kind == segments.COMMENT and "\n" in segment.text:
        note += " (one comment over several lines; any number of lines is fine)"
    return note


def new_catalog(source: str, language: str) -> polib.POFile:
    po = polib.POFile(wrapwidth=100)
    po.metadata = {
        "Project-Id-Version": "intro-to-pytorch",
        "Language": language,
        "Language-Team": LANGUAGE_TEAMS.get(language, language),
        "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=UTF-8",
        "Content-Transfer-Encoding": "8bit",
        "X-Source": source,
    }
    return po


def read(path: Path) -> polib.POFile:
    return polib.pofile(str(path), wrapwidth=100)


def _entry(po: polib.POFile, key: tuple[str, str]) -> polib.POEntry | None:
    return next((e for e in po if not e.obsolete and (e.msgctxt, e.msgid) == key), None)


def merge(old: polib.POFile | None, found: list[Unit], source: str, language: str) -> polib.POFile:
    """The catalog for `found` (the notebook's segments now), keeping every translation `old` has."""
    po = new_catalog(source, language)
    if old is not None:
        po.metadata = {**old.metadata, "X-Source": source, "Language": language}
    previous = list(old) if old is not None else []
    by_key = {(e.msgctxt, e.msgid): e for e in previous}
    wanted = {unit.key for unit in found}
    unclaimed = [e for e in previous if (e.msgctxt, e.msgid) not in wanted and e.msgstr]
    written: dict[tuple[str, str], polib.POEntry] = {}
    for unit in found:
        location = (unit.source or source, str(unit.cell_index))
        if unit.key in written:
            if location not in written[unit.key].occurrences:
                written[unit.key].occurrences.append(location)
            continue
        entry = polib.POEntry(msgctxt=unit.context, msgid=unit.segment.text, occurrences=[location],
                              comment=_comment(unit.segment))
        known = by_key.get(unit.key)
        if known is not None:
            entry.msgstr, entry.flags = known.msgstr, list(known.flags)
            entry.previous_msgid = known.previous_msgid
        else:
            seed = _most_alike(unit, unclaimed)
            if seed is not None:
                unclaimed.remove(seed)
                entry.msgstr, entry.flags = seed.msgstr, ["fuzzy"]
                entry.previous_msgid = seed.previous_msgid if "fuzzy" in seed.flags and seed.previous_msgid \
                    else seed.msgid
        written[unit.key] = entry
        po.append(entry)
    for gone in previous:
        if (gone.msgctxt, gone.msgid) not in wanted and gone.msgstr and gone in unclaimed:
            gone.obsolete = True
            gone.occurrences = []
            po.append(gone)
    return po


def _most_alike(unit: Unit, candidates: list[polib.POEntry]) -> polib.POEntry | None:
    best, best_score = None, 0.0
    for entry in candidates:
        score = difflib.SequenceMatcher(None, entry.msgid, unit.segment.text, autojunk=False).ratio()
        threshold = SAME_CELL_SIMILARITY if entry.msgctxt == unit.context else ANY_CELL_SIMILARITY
        if score >= threshold and score > best_score:
            best, best_score = entry, score
    return best


@dataclass
class Status:
    """How far a catalog covers a notebook's segments now."""

    name: str
    total: int = 0
    translated: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.problems and self.translated == self.total


def status(po: polib.POFile | None, found: list[Unit], name: str) -> Status:
    """Which segments have no usable translation, and why: missing, stale (the English changed since it
    was translated), fuzzy, empty, or breaking a link or a field of the English."""
    result = Status(name, total=len({unit.key for unit in found}))
    if po is None:
        result.problems.append(f"{name}: no catalog: run `python -m grader translations`")
        return result
    wanted = {unit.key for unit in found}
    outdated = {e.msgctxt: e for e in po if not e.obsolete and e.msgstr and (e.msgctxt, e.msgid) not in wanted}
    seen = set()
    for unit in found:
        if unit.key in seen:
            continue
        seen.add(unit.key)
        where = f"{name}, cell {unit.cell_index} ({unit.context})"
        entry = _entry(po, unit.key)
        if entry is None:
            old = outdated.get(unit.context)
            if old is not None:
                was, now = _where_they_differ(old.msgid, unit.segment.text)
                result.problems.append(
                    f"{where}: stale: the English changed since it was translated (was {was!r}, now {now!r}); "
                    "run `python -m grader translations` and review the fuzzy entry")
            else:
                result.problems.append(f"{where}: no entry for {unit.segment.text[:80]!r}; run "
                                       "`python -m grader translations` and translate it")
        elif not entry.msgstr:
            result.problems.append(f"{where}: not translated yet: {unit.segment.text[:80]!r}")
        elif "fuzzy" in entry.flags:
            result.problems.append(f"{where}: fuzzy (the English changed from {(entry.previous_msgid or '')[:80]!r}): "
                                   "check the translation, then remove the fuzzy flag")
        else:
            broken = segments.check(unit.segment, entry.msgstr)
            if broken:
                result.problems.append(f"{where}: {'; '.join(broken)}")
            else:
                result.translated += 1
    return result


def _where_they_differ(old: str, new: str, context: int = 25, width: int = 90) -> tuple[str, str]:
    """The stretch of two texts around their first difference, so a long paragraph's change is visible."""
    same = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
    start = max(0, same - context)
    prefix = "..." if start else ""
    return prefix + old[start: start + width], prefix + new[start: start + width]


def translations(po: polib.POFile) -> dict[tuple[str, str], str]:
    """(cell id, English) -> translation, for every usable entry."""
    return {(e.msgctxt, e.msgid): e.msgstr for e in po
            if not e.obsolete and e.msgstr and "fuzzy" not in e.flags}
