"""Does `python -m grader autograde` grade a class with every kind of bad hand-in, lose nothing,
and agree with nbgrader's gradebook row by row?"""

import hashlib
import json
import zipfile

import nbformat
import pytest
from mutant_bank.grading import submission
from nbgrader.api import Gradebook

from grader import notebooks
from grader.autograde import intake, report, run, sandbox

ASSIGNMENT = "01_tensors"
GRID = "def make_grid(n_rows, n_cols):\n    return torch.arange(n_rows * n_cols{}).reshape(n_rows, n_cols)"
WRONG_DTYPE = {"make_grid": GRID.format("")}
LIMITS = sandbox.Limits(cell_timeout_s=8, notebook_timeout_s=20, max_submission_bytes=2 * 2**20)


def _tree_digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A class with every kind of hand-in an instructor meets, graded twice (the second run resumes)."""
    root = tmp_path_factory.mktemp("class")
    subs = root / "submitted"

    def hand_in(student, nb, name=f"{ASSIGNMENT}.ipynb"):
        notebooks.write(nb, subs / student / ASSIGNMENT / name)

    hand_in("alice", submission(ASSIGNMENT, {}))
    hand_in("bob", submission(ASSIGNMENT, WRONG_DTYPE))
    hand_in("dave", submission(ASSIGNMENT, {}), name=f"Copy of {ASSIGNMENT} (1).ipynb")
    (subs / "carol" / ASSIGNMENT).mkdir(parents=True)
    (subs / "carol" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text('{"cells": [ truncated')
    (subs / "gina").mkdir()
    looping = "def rows_where(X, y, label):\n    while True:\n        pass"
    hand_in("erin", submission(ASSIGNMENT, {"rows_where": looping}))
    hand_in("frank", submission(ASSIGNMENT, {"to_float32_tensor": "import os\nos._exit(3)"}))
    stderr_noise = "import warnings, sys\nwarnings.warn('harmless')\nprint('progress', file=sys.stderr)\n"
    noisy = submission(ASSIGNMENT, {"make_grid": stderr_noise + GRID.format(", dtype=torch.float32")})
    for cell in noisy.cells:
        cell.metadata["tags"] = ["skip-execution"]  # a tag must neither skip a test nor break grading
    noisy.metadata["colab"] = {"provenance": [{"file_id": "abc"}]}
    hand_in("hana", noisy)
    # Duplicated test cell, an edited schema version, and stray files beside the notebook.
    edited = submission(ASSIGNMENT, {})
    test_cell = next(c for c in edited.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_make_grid")
    edited.cells.append(nbformat.from_dict({**test_cell, "id": "copied", "source": "pass"}))
    edited.cells[2].metadata["nbgrader"]["schema_version"] = 1
    hand_in("ivan", edited)
    (subs / "ivan" / ASSIGNMENT / "torch.py").write_text("raise ImportError('a shadowing torch.py ran')")
    (subs / "ivan" / ASSIGNMENT / "notes.txt").write_text("not part of the assignment")
    slow = submission(ASSIGNMENT, {})
    slow.cells += [nbformat.v4.new_code_cell("import time\ntime.sleep(6)") for _ in range(5)]
    hand_in("jack", slow)  # every cell within its limit, the notebook as a whole over it
    huge = submission(ASSIGNMENT, {})
    huge.cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * 3 * 2**20)]
    huge.cells[-1].cell_type = "code"
    hand_in("kim", nbformat.from_dict({**huge, "cells": huge.cells[:-1] + [nbformat.v4.new_code_cell(
        "", outputs=[nbformat.v4.new_output("stream", name="stdout", text="x" * 3 * 2**20)])]}))
    before = _tree_digest(subs)
    out = root / "out"
    kwargs = dict(workers=2, assignments=[ASSIGNMENT], limits=LIMITS, db_url=f"sqlite:///{root}/gradebook.db",
                  autograded=root / "autograded", progress=False)
    rows = {r.student_id: r for r in run.autograde_class(subs, out, **kwargs)}
    first_timing = json.loads((out / report.TIMING_JSON).read_text())
    rerun = {r.student_id: r for r in run.autograde_class(subs, out, **kwargs)}
    rerun_timing = json.loads((out / report.TIMING_JSON).read_text())
    return dict(rows=rows, rerun=rerun, timings=(first_timing, rerun_timing), subs=subs, before=before,
                out=out, db=kwargs["db_url"])


@pytest.mark.notebook
@pytest.mark.parametrize("student, score, status, detail", [
    ("alice", 10, "ok", ""),
    ("bob", 8, "ok", ""),
    ("dave", 10, "ok", "as 01_tensors.ipynb"),
    ("carol", 0, "unparseable", "not a readable notebook"),
    ("gina", 0, "missing", "no 01_tensors.ipynb"),
    ("erin", 8, "timeout", "longer than 8 s"),
    ("frank", 6, "kernel-died", "kernel died"),  # parts A-C ran before os._exit in part D
    ("hana", 10, "ok", "removed cell tags"),
    ("ivan", 10, "ok", "duplicate grade ids"),
    ("jack", 10, "timeout", "longer than 20 s"),
    ("kim", 0, "too-large", "the limit is 2 MiB"),
])
def test_every_submission_gets_the_row_it_earned(graded, student, score, status, detail):
    """Does each student get the score and status their hand-in earned, with a useful detail?"""
    row = graded["rows"][student]
    assert (row.score, row.max_score, row.status) == (score, 10, status), row
    assert detail in row.detail, f"{student}: detail {row.detail!r} lacks {detail!r}"


@pytest.mark.notebook
def test_grades_csv_matches_nbgrader_gradebook(graded):
    """Do nbgrader's gradebook (what formgrader and `nbgrader export` show) and grades.csv agree?"""
    csv_rows = report.read_rows(graded["out"] / report.GRADES_CSV)
    assert set(csv_rows) == {(s, ASSIGNMENT) for s in graded["rows"]}
    with Gradebook(graded["db"], course_id="intro-to-pytorch") as gradebook:
        for (student, assignment), row in csv_rows.items():
            sub = gradebook.find_submission(assignment, student)
            assert (float(sub.score), float(sub.max_score)) == (row.score, row.max_score), student


@pytest.mark.notebook
def test_rerun_resumes_and_submissions_stay_untouched(graded):
    """Does a second run regrade nothing, keep every row, and leave the hand-ins byte-identical?"""
    assert graded["timings"][1]["notebooks"] == 0, "the rerun executed notebooks that were already graded"
    assert graded["timings"][0]["notebooks"] == 8
    assert graded["rerun"] == graded["rows"]
    assert _tree_digest(graded["subs"]) == graded["before"], "grading modified the submissions"


@pytest.mark.notebook
def test_feedback_shows_verdicts_not_hidden_tests(graded):
    """Does each student's feedback give verdicts and messages but no hidden test code?"""
    for student in graded["rows"]:
        page = (graded["out"] / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
        assert "grader.checks" not in page and "HIDDEN TESTS" not in page, f"{student}'s feedback shows hidden tests"
    bob = (graded["out"] / "feedback" / "bob" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "FAILED: 0 / 2 points" in bob and "expected float32" in bob
    assert "PASSED: 2 / 2 points" in bob
    carol = (graded["out"] / "feedback" / "carol" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "unparseable" in carol and "hand it in again" in carol


def test_zip_entries_cannot_escape(tmp_path):
    """Is a zip entry that points outside its destination (or is a link) never written?"""
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escaped.ipynb", "{}")
        zf.writestr("/abs/escaped.ipynb", "{}")
        zf.writestr("jdoe_01_tensors.ipynb", "{}")
        link = zipfile.ZipInfo("link.ipynb")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
        zf.writestr("x" * 300 + "_01_tensors.ipynb", "{}")  # longer than a file name may be
    out, skipped, _ = intake.extract_zip(archive, tmp_path / "x")
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["download.zip", "x/jdoe_01_tensors.ipynb"], written
    assert out == (tmp_path / "x").resolve()
    assert sorted(skipped) == sorted(["../escaped.ipynb", "/abs/escaped.ipynb", "link.ipynb",
                                      "x" * 300 + "_01_tensors.ipynb"]), skipped
    assert "File name too long" in skipped["x" * 300 + "_01_tensors.ipynb"]
