"""Realistic LMS downloads of one assignment's notebooks, as an instructor really receives them.

One mixed download holds every convention at once, with the noise a real download carries:
  * Canvas (flat): `{lastfirst}_{userid}_{submissionid}_{file}`, late ones `{lastfirst}_LATE_{userid}_...`,
    and `-1`, `-2` appended to a resubmitted file's name. Student id: `{lastfirst}_{userid}`.
  * Moodle, "download submissions in folders": `{Full Name}_{participantid}_assignsubmission_file_/{file}`;
    without folders: `{Full Name}_{participantid}_assignsubmission_file_{file}`. Student id: the name
    slugged to lowercase ASCII words joined by `_`, then `_{participantid}` (`José Pérez` -> `jose_perez_124`).
  * Blackboard (flat): `{Assignment Name}_{username}_attempt_{YYYY-MM-DD-HH-MM-SS}_{file}` plus a `.txt`
    receipt per attempt; only the latest attempt is graded. Student id: the username.
  * nbgrader's layout: `{student_id}/{assignment}/{notebook}.ipynb`.
  * the README's convention: `{student_id}_{notebook}.ipynb`, student ids with underscores.
  * noise: `__MACOSX/` AppleDouble entries, `.ipynb_checkpoints/`, a notebook that names no assignment.
"""

import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from mutant_bank.grading import submission

from grader import course, notebooks

ASSIGNMENT = "01_tensors"
MAX_SCORE = 10

# What a file holds.
SOLVED = "solved"  # every answer right: full marks
UNSOLVED = "unsolved"  # the released exercise, untouched: zero
WRONG = "wrong"  # make_grid returns int64 instead of float32: loses that part's points
RECEIPT = "receipt"  # Blackboard's .txt beside each attempt
APPLEDOUBLE = "appledouble"  # macOS resource fork that Archive Utility zips into __MACOSX/
NOTES = "notes"  # a valid notebook that is not the assignment

# Expected outcomes in grades.csv.
FULL, ZERO, PARTIAL = "full marks", "zero", "partial"

BB_EARLY = "Unit 1 Tensors_jdoe7_attempt_2026-11-01-09-30-00"
BB_LATE = "Unit 1 Tensors_jdoe7_attempt_2026-11-02-10-15-00"

# (path inside the download, what it holds, the student it is graded for: None if it is not graded)
FILES = [
    # Canvas
    ("smithjohn_4242_998877_01_tensors.ipynb", SOLVED, "smithjohn_4242"),
    ("doejane_LATE_4243_998878_01_tensors-1.ipynb", WRONG, "doejane_4243"),
    # Moodle, in folders and flat
    ("John Smith_123_assignsubmission_file_/01_tensors.ipynb", SOLVED, "john_smith_123"),
    ("José Pérez_124_assignsubmission_file_01_tensors.ipynb", UNSOLVED, "jose_perez_124"),
    # Blackboard: two attempts of one user, each with its receipt; the later one counts
    (f"{BB_EARLY}_01_tensors.ipynb", UNSOLVED, None),
    (f"{BB_EARLY}.txt", RECEIPT, None),
    (f"{BB_LATE}_01_tensors.ipynb", SOLVED, "jdoe7"),
    (f"{BB_LATE}.txt", RECEIPT, None),
    # nbgrader's layout, with a Jupyter checkpoint of an older state beside it
    ("mary_ann/01_tensors/01_tensors.ipynb", SOLVED, "mary_ann"),
    ("mary_ann/01_tensors/.ipynb_checkpoints/01_tensors-checkpoint.ipynb", UNSOLVED, None),
    # the README's convention: two students whose ids share the prefix `john_`
    ("john_smith_01_tensors.ipynb", SOLVED, "john_smith"),
    ("john_doe_01_tensors.ipynb", UNSOLVED, "john_doe"),
    # noise
    ("__MACOSX/._smithjohn_4242_998877_01_tensors.ipynb", APPLEDOUBLE, None),
    ("__MACOSX/John Smith_123_assignsubmission_file_/._01_tensors.ipynb", APPLEDOUBLE, None),
    (".ipynb_checkpoints/john_doe_01_tensors-checkpoint.ipynb", SOLVED, None),  # if graded, john_doe scores
    ("notes.ipynb", NOTES, None),
]

# {student_id: outcome in grades.csv}
EXPECTED = {
    "smithjohn_4242": FULL,
    "doejane_4243": PARTIAL,
    "john_smith_123": FULL,
    "jose_perez_124": ZERO,
    "jdoe7": FULL,
    "mary_ann": FULL,
    "john_smith": FULL,
    "john_doe": ZERO,
}

# {notebook path in the download: a word its reason in intake.csv must contain ("" = any reason)}
IGNORED = {
    f"{BB_EARLY}_01_tensors.ipynb": "superseded",
    "mary_ann/01_tensors/.ipynb_checkpoints/01_tensors-checkpoint.ipynb": "",
    "__MACOSX/._smithjohn_4242_998877_01_tensors.ipynb": "",
    "__MACOSX/John Smith_123_assignsubmission_file_/._01_tensors.ipynb": "",
    ".ipynb_checkpoints/john_doe_01_tensors-checkpoint.ipynb": "",
    "notes.ipynb": "",
}

# {student_id: (first name, last name)} nbgrader's gradebook should hold
NAMES = {"john_smith_123": ("John", "Smith")}

WRONG_CELLS = {"make_grid": "def make_grid(n_rows, n_cols):\n"
                            "    return torch.arange(n_rows * n_cols).reshape(n_rows, n_cols)"}
APPLEDOUBLE_BYTES = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02" + b"\x00" * 64


@dataclass(frozen=True)
class Download:
    expected: dict[str, str]  # {student_id: FULL, ZERO or PARTIAL}
    graded: dict[str, str]  # {notebook path in the download: the student it is graded for}
    ignored: dict[str, str]  # {notebook path in the download: a word its reason must contain}
    names: dict[str, tuple[str, str]]  # {student_id: (first name, last name)}


def _receipt(stem: str) -> str:
    attempt = stem.rsplit("_attempt_", 1)[1]
    return (f"Name: Jane Doe (jdoe7)\nAssignment: Unit 1 Tensors\nDate Submitted: {attempt}\n"
            "Current Mark: Needs Grading\n\nSubmission Field:\nThere is no student submission text data "
            "for this assignment.\n\nComments:\nThere are no student comments for this assignment.\n\n"
            f"Files:\n\tOriginal filename: 01_tensors.ipynb\n\tFilename: {stem}_01_tensors.ipynb\n")


def _content(kind: str, path: str) -> bytes:
    if kind == SOLVED:
        return notebooks.render(submission(ASSIGNMENT, {})).encode()
    if kind == WRONG:
        return notebooks.render(submission(ASSIGNMENT, WRONG_CELLS)).encode()
    if kind == UNSOLVED:
        return (course.EXERCISES / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_bytes()
    if kind == RECEIPT:
        return _receipt(Path(path).stem).encode()
    if kind == APPLEDOUBLE:
        return APPLEDOUBLE_BYTES
    if kind == NOTES:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("My notes on tensors")])
        return notebooks.render(nb).encode()
    raise ValueError(kind)


def write_mixed_download(folder: Path) -> Download:
    """Write every convention above into `folder`; returns what grading it must produce."""
    folder = Path(folder)
    for path, kind, _ in FILES:
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_content(kind, path))
    graded = {path: student for path, _, student in FILES if student}
    return Download(dict(EXPECTED), graded, dict(IGNORED), dict(NAMES))


def zip_folder(folder: Path, archive: Path) -> Path:
    """Zip `folder`'s files with paths relative to it, as an LMS's "download all" does."""
    folder = Path(folder)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            zf.write(path, path.relative_to(folder).as_posix())
    return Path(archive)
