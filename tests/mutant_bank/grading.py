"""Grade bank submissions through the course's real autograde path in a throwaway course."""

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from grader import course, notebooks
from grader.autograde import run
from grader.nbgrader_api import load_config

_MARKER_LINE = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)


@dataclass
class CellResult:
    score: float
    max_score: float
    error: str  # the cell's error output ("" if it raised nothing)


def reference_answers(assignment: str) -> dict[str, str]:
    """The instructor's answer for every answer cell: the source cell without its markers."""
    source = nbformat.read(course.SOLUTIONS / assignment / f"{assignment}.ipynb", as_version=4)
    return {
        cell.metadata.nbgrader.grade_id: _MARKER_LINE.sub("", cell.source)
        for cell in source.cells
        if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code"
    }


def submission(assignment: str, cells: dict[str, str]) -> nbformat.NotebookNode:
    """The student copy with every answer cell filled: from `cells`, else the reference answer."""
    unknown = set(cells) - set(reference_answers(assignment))
    if unknown:
        raise KeyError(f"{assignment} has no answer cells named {sorted(unknown)}")
    answers = {**reference_answers(assignment), **cells}
    nb = notebooks.read(course.EXERCISES / assignment / f"{assignment}.ipynb")
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = answers[grade_id].strip("\n")
    return nb


def autograde(assignment: str, submissions: dict[str, nbformat.NotebookNode], root: Path) -> dict:
    """Grade each named submission with `python -m grader autograde`'s engine in a throwaway course;
    returns {student: {grade_id: CellResult}} read back from nbgrader's gradebook."""
    for student, nb in submissions.items():
        notebooks.write(nb, root / "submitted" / student / assignment / f"{assignment}.ipynb")
    db_url = f"sqlite:///{root}/gradebook.db"
    rows = run.autograde_class(root / "submitted", root / "out", workers=2, assignments=[assignment],
                               db_url=db_url, autograded=root / "autograded", progress=False)
    broken = [r for r in rows if r.status != "ok"]
    assert not broken, f"bank submissions could not be graded cleanly: {broken}"
    results = {}
    with Gradebook(db_url, course_id=load_config().CourseDirectory.course_id) as gradebook:
        for student in submissions:
            autograded = nbformat.read(root / "autograded" / student / assignment / f"{assignment}.ipynb", 4)
            errors = {
                cell.metadata.nbgrader.grade_id: "\n".join(
                    f"{out.ename}: {out.evalue}" for out in cell.get("outputs", []) if out.output_type == "error"
                )
                for cell in autograded.cells
                if cell.metadata.get("nbgrader", {}).get("grade")
            }
            notebook = gradebook.find_submission_notebook(assignment, assignment, student)
            results[student] = {
                grade.name: CellResult(grade.score, grade.max_score, errors.get(grade.name, ""))
                for grade in notebook.grades
                if grade.cell_type == "code"
            }
    return results
