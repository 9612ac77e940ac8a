"""The fixed terms of a translation (translations/<language>/glossary.csv) and where a catalog breaks them.

Each row names an English term, the translation every catalog uses for it, and variants it never uses
(`|` separates inflected forms). Identifiers and code are not text: inline code spans, `{...}` fields
and words glued to code (`.to(device)`, `batch_size`) are left out before looking.
"""

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from grader import course

_CODE_SPAN = re.compile(r"`[^`]*`|\{[^{}]*\}")
# A whitespace-separated chunk with code punctuation in it: an identifier, a call, an attribute.
_CODE_CHUNK = re.compile(r"\S*(?:[\[\]_=]|\w\.\w|\w\()\S*")


@dataclass(frozen=True)
class Term:
    english: tuple[str, ...]
    spanish: tuple[str, ...]
    forbidden: tuple[str, ...]

    @staticmethod
    def _pattern(forms: tuple[str, ...]) -> re.Pattern:
        return re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, forms)) + r")(?![\w-])", re.I)

    def required_in(self, english: str) -> bool:
        return bool(self.english) and bool(self._pattern(self.english).search(prose(english)))

    def used_in(self, translation: str) -> bool:
        return bool(self._pattern(self.spanish).search(prose(translation)))

    def forbidden_in(self, translation: str) -> list[str]:
        if not self.forbidden:
            return []
        return [m.group(0) for m in self._pattern(self.forbidden).finditer(prose(translation))]


def prose(text: str) -> str:
    """`text` without code: what the glossary applies to."""
    return _CODE_CHUNK.sub(" ", _CODE_SPAN.sub(" ", text))


def path(language: str) -> Path:
    return course.TRANSLATIONS / language / "glossary.csv"


def read(language: str) -> list[Term]:
    def forms(cell: str) -> tuple[str, ...]:
        return tuple(form.strip() for form in (cell or "").split("|") if form.strip())

    with open(path(language), newline="", encoding="utf-8") as f:
        return [Term(forms(row["english"]), forms(row["spanish"]), forms(row["forbidden"]))
                for row in csv.DictReader(f)]


def problems(terms: list[Term], entries, name: str) -> list[str]:
    """Where the translated entries of a catalog (polib entries) miss a fixed term or use a forbidden variant."""
    found = []
    for entry in entries:
        if entry.obsolete or not entry.msgstr:
            continue
        for term in terms:
            where = f"{name} ({entry.msgctxt}): {entry.msgstr[:70]!r}"
            if term.required_in(entry.msgid) and not term.used_in(entry.msgstr):
                found.append(f"{where}: the English says {term.english[0]!r}, which is always "
                             f"{' / '.join(term.spanish)}")
            for variant in term.forbidden_in(entry.msgstr):
                found.append(f"{where}: uses {variant!r}; the glossary fixes {term.spanish[0]!r}")
    return found
