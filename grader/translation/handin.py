"""Recognise a hand-in of a translated exercise, so it is graded exactly as the English one.

nbgrader's gradebook holds the English cells (solutions/ is the source), and before a notebook runs
its sanitising step compares each locked cell with them: a translated instruction or test cell would
be reported as changed ("Attribute 'checksum' ... has changed") and replaced. A translated exercise
has the same cells, grade ids and points as the English one, and its code differs only in comments
and strings, so a locked cell the student left as released is put back in English here, before
nbgrader looks; one the student edited is left for nbgrader to restore and report, as in English.

Which release a hand-in comes from is read from its notebook metadata (`course.language`, written by
the edition's build) and, where an editor dropped that, from its locked cells: the release whose
locked cells it matches best, English on a tie.
"""

import functools
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader import course, notebooks
from grader.autograde.colab import nbgrader_metadata, source_key
from grader.translation import edition

SOURCE_LANGUAGE = "en"


def _grade_ids(nb) -> list[str]:
    return list(_by_grade_id(nb))


def _by_grade_id(nb) -> dict:
    return {nbgrader_metadata(cell)["grade_id"]: cell for cell in nb.cells if nbgrader_metadata(cell).get("grade_id")}


@functools.lru_cache(maxsize=64)
def _read(path: Path, modified: float) -> nbformat.NotebookNode:
    return notebooks.read(path)


def translated_releases(notebook: str, released: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    """language -> the translated release of the exercise `released` (found by its notebook name and the same
    grade ids, in order), for every edition that has one."""
    found = {}
    for language in course.EDITIONS:
        for path in sorted((edition.root(language) / "exercises").glob(f"*/{notebook}.ipynb")):
            nb = _read(path, path.stat().st_mtime)
            if _grade_ids(nb) == _grade_ids(released):
                found[language] = nb
                break
    return found


@dataclass
class Edition:
    language: str
    released: nbformat.NotebookNode  # the student copy in that language
    english: nbformat.NotebookNode  # the English student copy nbgrader's gradebook matches

    def to_source_language(self, nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
        """`nb` with each locked cell that is exactly as this edition released it put back as the English release
        has it; every other cell as it is."""
        if self.language == SOURCE_LANGUAGE:
            return nb
        nb = nbformat.from_dict(nb)
        translated, english = _by_grade_id(self.released), _by_grade_id(self.english)
        for cell in nb.cells:
            grade_id = nbgrader_metadata(cell).get("grade_id")
            ours, theirs = translated.get(grade_id), english.get(grade_id)
            if ours is None or theirs is None or not nbgrader_metadata(ours).get("locked"):
                continue
            if cell.cell_type == ours.cell_type and source_key(cell.source) == source_key(ours.source):
                cell.source = theirs.source
        return nb


def _locked_matches(nb, released) -> int:
    locked = {source_key(cell.source) for cell in released.cells if nbgrader_metadata(cell).get("locked")}
    return sum(source_key(cell.get("source", "")) in locked for cell in nb.cells)


def edition_of(nb: nbformat.NotebookNode, notebook: str, released: nbformat.NotebookNode) -> Edition:
    """The release (English, or a translation of it) the hand-in `nb` was made from."""
    candidates = translated_releases(notebook, released)
    declared = nb.get("metadata", {}).get("course", {})
    declared = declared.get("language") if isinstance(declared, dict) else None
    if declared in candidates:
        return Edition(declared, candidates[declared], released)
    best, best_matches = SOURCE_LANGUAGE, _locked_matches(nb, released)
    for language, translated in candidates.items():
        matches = _locked_matches(nb, translated)
        if matches > best_matches:
            best, best_matches = language, matches
    return Edition(best, candidates.get(best, released), released)
