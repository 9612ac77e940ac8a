"""An ordinary nbgrader course, built from nbgrader's own test fixtures, graded two ways: by plain
`nbgrader autograde` and by `python -m grader autograde`, each in its own copy of the course.

The course lives in a temporary folder (never in this checkout's solutions/): the kit grades it through
GRADER_COURSE_ROOT, plain nbgrader from its root, both with this course's nbgrader_config.py. Its one
assignment, `ps1` (not named NN_topic), is nbgrader's `submitted-unchanged.ipynb` (plain asserts, a written
answer and a code answer graded by hand, locked cells) plus a notebook that reads a data file in a
subfolder and imports a module the students write (`Autograde.exclude_overwriting`), with a due date.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import nbgrader
from nbgrader.api import Gradebook, MissingEntry

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(nbgrader.__file__).parent / "tests" / "apps" / "files"
ENV_BIN = Path(sys.executable).parent
ASSIGNMENT = "ps1"
DUE = "2015-02-02 14:58:23.948203 UTC"
ON_TIME, LATE = "2015-02-01 14:58:23.948203 UTC", "2015-02-02 15:58:23.948203 UTC"
CONFIG = """
c.Autograde.exclude_overwriting = {"ps1": ["helper.py"]}
c.LateSubmissionPlugin.penalty_method = "zero"
"""
# A one-pixel PNG, as a browser pastes it into a markdown cell.
PIXEL = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def fixture(name: str) -> nbformat.NotebookNode:
    return nbformat.read(FIXTURES / name, as_version=4)


def files_notebook() -> nbformat.NotebookNode:
    """p2: reads a data file in a subfolder, and imports a module the student writes (helper.py)."""
    nb = fixture("open_relative_file.ipynb")
    nb.cells[0].source = nb.cells[0].source.replace('"data.txt"', '"data/data.txt"')
    nb.cells[0].metadata.nbgrader.update(grade_id="open_file", points=1)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import helper\nassert helper.answer() == 42",
        metadata={"nbgrader": {"grade": True, "grade_id": "helper", "locked": True, "points": 1,
                               "schema_version": 3, "solution": False}}))
    return nb


def new_course(root: Path, extra_config: str = CONFIG) -> Path:
    """The instructor's side: nbgrader_config.py and solutions/ps1/ (p1, p2, data/data.txt, helper.py)."""
    source = root / "solutions" / ASSIGNMENT
    (source / "data").mkdir(parents=True)
    (root / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text() + extra_config)
    shutil.copy(FIXTURES / "submitted-unchanged.ipynb", source / "p1.ipynb")
    nbformat.write(files_notebook(), source / "p2.ipynb")
    shutil.copy(FIXTURES / "data.txt", source / "data" / "data.txt")
    (source / "helper.py").write_text("def answer():\n    raise NotImplementedError('write answer()')\n")
    return root


def hand_in(folder: Path, student: str, notebooks: dict[str, nbformat.NotebookNode | bytes],
            files: dict[str, str] | None = None) -> Path:
    """nbgrader's layout: folder/<student>/ps1/<notebook>.ipynb and the student's other files."""
    target = folder / student / ASSIGNMENT
    target.mkdir(parents=True, exist_ok=True)
    for name, nb in notebooks.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(nb if isinstance(nb, bytes) else nbformat.writes(nb).encode())
    for name, text in (files or {}).items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(text, encoding="utf-8")
    return target


def with_pasted_image(nb: nbformat.NotebookNode, grade_id: str = "baz") -> nbformat.NotebookNode:
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    cell.source = "My drawing:\n\n![drawing](attachment:drawing.png)"
    cell["attachments"] = {"drawing.png": {"image/png": PIXEL}}
    return nb


def env(course: Path) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
            "GRADER_COURSE_ROOT": str(course), "PATH": f"{ENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


@dataclass
class Ran:
    args: list[str]
    rc: int
    output: str
    seconds: float

    def __str__(self) -> str:
        return f"$ {' '.join(self.args)}  (rc={self.rc}, {self.seconds:.0f} s)\n{self.output[-6000:]}"


def run(course: Path, *args: str, timeout: int = 600) -> Ran:
    started = time.monotonic()
    done = subprocess.run(list(args), cwd=course, env=env(course), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)
    return Ran(list(args), done.returncode, done.stdout, time.monotonic() - started)


def kit(course: Path, *args: str, timeout: int = 600) -> Ran:
    """`python -m grader ...` run on this course."""
    return run(course, sys.executable, "-m", "grader", *args, timeout=timeout)


def plain(course: Path, *args: str, timeout: int = 600) -> Ran:
    """Plain `nbgrader ...` run from this course's root."""
    return run(course, str(ENV_BIN / "nbgrader"), *args, timeout=timeout)


@dataclass
class Result:
    score: float  # as `nbgrader export` reports it: less the late penalty
    max_score: float
    needs_manual_grade: bool
    seconds_late: float
    cells: dict[str, float | None]  # grade id -> score (None: not graded yet)


def gradebook(course: Path, db: str = "gradebook.db") -> dict[tuple[str, str], Result]:
    found = {}
    with Gradebook(f"sqlite:///{course / db}", course_id="intro-to-pytorch") as book:
        for assignment in book.assignments:
            for submission in assignment.submissions:
                cells = {grade.name: grade.score if not grade.needs_manual_grade else None
                         for notebook in submission.notebooks for grade in notebook.grades}
                penalty = submission.late_submission_penalty or 0.0
                found[submission.student.id, assignment.name] = Result(
                    max(0.0, submission.score - penalty), submission.max_score, bool(submission.needs_manual_grade),
                    submission.total_seconds_late, cells)
    return found


def max_score(course: Path, db: str = "gradebook.db") -> float:
    with Gradebook(f"sqlite:///{course / db}", course_id="intro-to-pytorch") as book:
        try:
            return book.find_assignment(ASSIGNMENT).max_score
        except MissingEntry:
            return 0.0
