"""Before nbgrader sees a submission: find the right file, parse it, and repair what students
and their editors break, or say in one line why it cannot be graded.
"""

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from grader import course
from grader.autograde import colab
from grader.autograde.report import Status
from grader.translation import handin

_RENAME_NOISE = re.compile(r"^(copy of\s+)+|(\s*\(\d+\))+$|(-checkpoint)$|(\s+-\s+copy)$", re.I)


@dataclass
class Prepared:
    notebook: str  # the expected notebook name, without .ipynb
    status: str  # a report.Status: ok, missing, unparseable or too-large
    detail: str = ""
    nb: nbformat.NotebookNode | None = None
    sha256: str = ""
    notes: list[str] = field(default_factory=list)
    language: str = handin.SOURCE_LANGUAGE  # the edition it was made from: its feedback is in that language


def _plain_name(path: Path) -> str:
    stem = path.stem
    while True:
        cleaned = _RENAME_NOISE.sub("", stem).strip()
        if cleaned == stem:
            return cleaned
        stem = cleaned


def choose_files(files: list[Path], expected: list[str]) -> dict[str, tuple[Path | None, str]]:
    """Map each expected notebook to a handed-in file, with a note when it had to be renamed."""
    chosen: dict[str, tuple[Path | None, str]] = {}
    for name in expected:
        exact = [f for f in files if f.stem == name]
        renamed = [f for f in files if _plain_name(f) == name]
        if exact:
            chosen[name] = (exact[0], "")
        elif renamed:
            chosen[name] = (renamed[0], f"graded {renamed[0].name!r} as {name}.ipynb")
        elif len(expected) == 1 and len(files) == 1:
            chosen[name] = (files[0], f"graded the only notebook handed in, {files[0].name!r}, as {name}.ipynb")
        else:
            chosen[name] = (None, "")
    return chosen


def repair(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[str]]:
    """Keep only what grading needs: nbgrader cell metadata, sources, images pasted into markdown, the course
    kernelspec."""
    nb = copy.deepcopy(nb)
    notes = []
    nb.metadata = nbformat.from_dict(copy.deepcopy(course.NOTEBOOK_METADATA))
    seen_ids: set[str] = set()
    grade_ids: list[str] = []
    for index, cell in enumerate(nb.cells):
        nbgrader = cell.get("metadata", {}).get("nbgrader")
        if "tags" in cell.get("metadata", {}):
            notes.append("removed cell tags")
        cell.metadata = nbformat.from_dict({})
        if isinstance(nbgrader, dict) and nbgrader:
            if nbgrader.get("schema_version") != 3:
                notes.append(f"reset an edited nbgrader schema_version ({nbgrader.get('schema_version')!r})")
                nbgrader["schema_version"] = 3
            cell.metadata["nbgrader"] = nbgrader
            if nbgrader.get("grade_id"):
                grade_ids.append(nbgrader["grade_id"])
        if cell.cell_type == "code":
            cell.pop("attachments", None)  # a markdown answer keeps its pasted images, as nbgrader keeps them
        cell_id = cell.get("id")
        if not isinstance(cell_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cell_id) or cell_id in seen_ids:
            cell["id"] = f"cell-{index}"
        seen_ids.add(cell["id"])
    duplicated = sorted({g for g in grade_ids if grade_ids.count(g) > 1})
    if duplicated:
        # As nbgrader's DeduplicateIds does, the last cell with an id keeps it; the earlier ones become
        # plain cells. (nbgrader leaves them an empty nbgrader dict, on which its OverwriteCells crashes.)
        seen: set[str] = set()
        for cell in reversed(nb.cells):
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in seen:
                del cell.metadata["nbgrader"]
            elif grade_id:
                seen.add(grade_id)
        notes.append(f"duplicate grade ids {duplicated}: the last cell with each id is graded")
    return nb, sorted(set(notes), key=notes.index)


def prepare(path: Path | None, notebook: str, max_bytes: int, released: nbformat.NotebookNode | None = None
            ) -> Prepared:
    """Read, parse and repair one handed-in notebook (`released`: the student copy it came from)."""
    if path is None:
        return Prepared(notebook, Status.MISSING, f"no {notebook}.ipynb was handed in")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if len(raw) > max_bytes:
        return Prepared(notebook, Status.TOO_LARGE, f"{path.name} is {len(raw) / 2**20:.0f} MiB; the limit is "
                        f"{max_bytes / 2**20:.0f} MiB: clear its outputs and hand it in again", sha256=digest)
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
            raise ValueError("it has no list of cells")
        for cell in data["cells"]:
            if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
                raise ValueError("a cell is not a notebook cell")
            if isinstance(cell.get("source"), list):
                cell["source"] = "".join(map(str, cell["source"]))
            cell.setdefault("metadata", {})
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
            else:
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
        data["nbformat"], data["nbformat_minor"] = 4, 5
        nb = nbformat.from_dict(data)
        notes, language = [], handin.SOURCE_LANGUAGE
        if released is not None:
            # A hand-in of a translated exercise (es/exercises/) is matched against its own release, and its
            # untouched locked cells go back to the English that nbgrader's gradebook holds.
            edition = handin.edition_of(nb, notebook, released)
            # Colab drops nbgrader's cell metadata when it saves: match the cells back to the release.
            nb, notes = colab.reattach_metadata(nb, edition.released)
            nb, language = edition.to_source_language(nb), edition.language
        nb, repairs = repair(nb)
        notes += repairs
        nbformat.validate(nb)
    except (UnicodeDecodeError, ValueError, nbformat.ValidationError, TypeError, AttributeError) as error:
        reason = getattr(error, "message", None) or str(error)
        return Prepared(notebook, Status.UNPARSEABLE, f"{path.name} is not a readable notebook ({reason[:200]}): "
                        "open it in Jupyter, save it, and hand it in again", sha256=digest)
    return Prepared(notebook, Status.OK, nb=nb, sha256=digest, notes=notes, language=language)
