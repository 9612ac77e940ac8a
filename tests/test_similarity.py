"""Does `python -m grader similarity` put a disguised copy at the top, well above honest students whose
solutions share only the given code and common idioms, offline, in a report that runs nothing?"""

import re
import socket

import pytest
from lms_class import HONEST_A, HONEST_B, UNSOLVED, canvas_class, capstone

from grader import cli, notebooks, similarity

COPIED = ("doejane_4243", "smithjohn_4242")
HONEST = {"smithjohn_4242", "jperez", "4247", "mary_ann"}


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("similarity tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_disguised_copy_tops_the_list_offline(tmp_path, capsys, offline):
    """Is the renamed, recommented copy the most similar pair, sharing most of both students' code, at least
    twice the most similar honest pair, with the unsolved capstone left out (only the given code) and the
    student with no capstone listed?"""
    graded = canvas_class(tmp_path)
    assert cli.main(["similarity", "08_capstone", str(graded.grading)]) == 0
    out = capsys.readouterr().out
    result = similarity.compare("08_capstone", graded.grading)
    top = result.pairs[0]
    assert (top.a, top.b) == COPIED
    assert min(top.share_a, top.share_b) >= 0.8
    honest = [p for p in result.pairs if {p.a, p.b} <= HONEST]
    assert len(honest) == 6 and max(p.score for p in honest) <= 0.5
    assert top.score >= 2 * max(p.score for p in honest)
    assert set(result.students) == HONEST | {"doejane_4243"}
    assert "kimsoo_4248" in result.skipped and "unsolved" in result.skipped["kimsoo_4248"]
    assert "an.nguyen" not in result.skipped  # grades.csv says missing: nothing to look for
    assert re.search(r"1\. doejane_4243\s+smithjohn_4242\s+9\d% +9\d%", out), out
    assert "report: " in out and (graded.grading / "similarity" / "08_capstone.html").is_file()


def test_report_is_static_and_escapes_student_code(tmp_path, offline, monkeypatch):
    """Does the report load nothing, run nothing, and show a student's `</pre><script>` as text?"""
    monkeypatch.setattr(similarity, "CONTEXT_LINES", -1)  # every line shown, not only those near shared code
    graded = canvas_class(tmp_path)
    hostile = {**HONEST_B, "predict": ['return "</pre><script>alert(1)</script>" and predict_raw(model, X)']}
    notebooks.write(capstone(hostile), graded.grading / "work" / "submitted" / "jperez" / "08_capstone" /
                    "08_capstone.ipynb")
    result = similarity.compare("08_capstone", graded.grading, top=50)
    page = result.report.read_text()
    assert "<script" not in page.lower() and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "default-src 'none'" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.I)
    assert page.count('<div class="pair">') == len(result.pairs) == 10


def test_identical_unsolved_notebooks_are_not_a_match(tmp_path):
    """Two students who both handed in the untouched exercise share only given code: are they left out, and is
    the instructor told there is nothing to compare?"""
    grading = tmp_path / "grading"
    for student in ("a", "b"):
        notebooks.write(capstone(UNSOLVED), grading / "work" / "submitted" / student / "08_capstone" /
                        "08_capstone.ipynb")
    result = similarity.compare("08_capstone", grading)
    assert result.students == [] and result.pairs == []
    assert set(result.skipped) == {"a", "b"}


def test_only_the_students_of_grades_csv_and_the_first_copy_found(tmp_path):
    """Is a notebook left in the staging folder by another class ignored when grades.csv does not list its
    student, and does a --submitted folder come before autograde's own staging folder?"""
    graded = canvas_class(tmp_path)
    stray = graded.grading / "work" / "submitted" / "someone_else" / "08_capstone" / "08_capstone.ipynb"
    notebooks.write(capstone(HONEST_A), stray)
    first = tmp_path / "resubmitted"
    notebooks.write(capstone(HONEST_B), first / "smithjohn_4242" / "08_capstone" / "08_capstone.ipynb")
    result = similarity.compare("08_capstone", graded.grading, extra=[first])
    assert "someone_else" not in result.students
    assert result.sources["smithjohn_4242"] == first
    top = result.pairs[0]  # smithjohn_4242's resubmitted capstone is jperez's, word for word
    assert (top.a, top.b, top.score) == ("jperez", "smithjohn_4242", 1.0)


def test_errors_are_named(tmp_path, capsys):
    """Is an unknown assignment, or a folder with fewer than two students' notebooks, answered with exit 1 and
    what to do?"""
    assert cli.main(["similarity", "nope", str(tmp_path)]) == 1
    assert "no assignment named nope" in capsys.readouterr().out
    assert cli.main(["similarity", "08_capstone", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "0 student(s)" in out and "autograde" in out
