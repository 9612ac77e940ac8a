"""Reading, cleaning and writing notebooks the same way everywhere, so a rerun changes no byte."""

import copy
import hashlib
import json
from pathlib import Path

import nbformat
from nbformat.v4.rwbase import rejoin_lines

from grader import course

BADGE_MARKER = "colab-badge"
COLAB_BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"


def read(path: Path) -> nbformat.NotebookNode:
    """Read a notebook as nbformat 4.5, giving any cell without an id a stable one.

    nbformat invents random ids for older notebooks; ids derived from the content keep a
    regenerated notebook byte-identical to the last one.
    """
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if raw.get("nbformat") == 4 and raw.get("nbformat_minor", 0) < 5:
        raw["nbformat_minor"] = 5
    used = {cell["id"] for cell in raw.get("cells", []) if "id" in cell}
    for index, cell in enumerate(raw.get("cells", [])):
        if "id" not in cell:
            cell["id"] = _stable_id(index, cell, used)
            used.add(cell["id"])
    nb = nbformat.from_dict(raw)
    rejoin_lines(nb)  # sources saved as lists of lines become strings, as nbformat.read gives them
    return nb


def _stable_id(index: int, cell: dict, used: set[str]) -> str:
    source = "".join(cell.get("source", ""))
    digest = hashlib.sha1(f"{index}:{source}".encode()).hexdigest()
    for start in range(0, len(digest) - 8):
        candidate = digest[start : start + 8]
        if candidate not in used:
            return candidate
    raise ValueError(f"could not find a free cell id for cell {index}")


def render(nb: nbformat.NotebookNode) -> str:
    """The exact text a notebook is saved as."""
    nbformat.validate(nb)
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def write(nb: nbformat.NotebookNode, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(render(nb), encoding="utf-8", newline="\n")


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip outputs and execution counts, drop empty nbgrader metadata, set course metadata."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        # nbgrader rejects an empty `nbgrader` dict as "an old version of the metadata format".
        if "nbgrader" in cell.metadata and not cell.metadata["nbgrader"]:
            del cell.metadata["nbgrader"]
        # Editors' bookkeeping that only makes diffs noisy.
        for key in ("execution", "collapsed", "scrolled", "jupyter"):
            cell.metadata.pop(key, None)
    for key, value in course.NOTEBOOK_METADATA.items():
        nb.metadata[key] = copy.deepcopy(value)
    for key in ("widgets", "jupytext", "toc"):
        nb.metadata.pop(key, None)
    return nb


def colab_url(path: Path) -> str:
    """Where Colab opens the course notebook at `path`: the same path in the students' repository."""
    relative = Path(path).resolve().relative_to(course.ROOT).as_posix()
    return f"{colab_prefix()}{relative}"


def colab_prefix() -> str:
    """Colab's address of the students' repository; a notebook's path in it follows."""
    return f"https://colab.research.google.com/github/{course.STUDENT_REPOSITORY}/blob/{course.STUDENT_BRANCH}/"


def with_colab_badge(nb: nbformat.NotebookNode, path: Path) -> nbformat.NotebookNode:
    """Put an "Open in Colab" badge pointing at `path` in the first cell, replacing an old one."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if c.metadata.get("course", {}).get("role") != BADGE_MARKER]
    badge = nbformat.v4.new_markdown_cell(
        f"[![Open In Colab]({COLAB_BADGE_SVG})]({colab_url(path)})",
        metadata={"course": {"role": BADGE_MARKER}},
    )
    badge.id = BADGE_MARKER
    nb.cells.insert(0, badge)
    return nb


def badge_target(nb: nbformat.NotebookNode) -> str | None:
    """The Colab link of a notebook's badge, or None if it has none."""
    for cell in nb.cells:
        if cell.metadata.get("course", {}).get("role") == BADGE_MARKER:
            return cell.source.split("](")[-1].rstrip(")")
    return None
