"""Does a notebook finished in Google Colab and downloaded as .ipynb still grade correctly?

Colab rewrites a notebook when it saves it: it drops the metadata of every cell it did not create
(nbgrader's grade_id, locked, solution, points, checksums) and the cell ids, stores sources as
lists of lines, gives cells its own `metadata.id`, keeps outputs with execution counts, and adds
its own notebook metadata. The fixtures here are rewritten exactly that way.
"""

import copy
import json
import random
import string

import nbformat
import pytest
from mutant_bank.grading import submission

from grader import course
from grader.autograde import colab, run, sandbox

ASSIGNMENT = "01_tensors"
LIMITS = sandbox.Limits(cell_timeout_s=30, notebook_timeout_s=120)
# make_grid with int64 values: loses the 2 points of test_make_grid only.
WRONG_GRID = "def make_grid(n_rows, n_cols):\n    return torch.arange(n_rows * n_cols).reshape(n_rows, n_cols)"


def _released():
    return nbformat.read(course.EXERCISES / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def _lines(text: str | list[str]) -> list[str]:
    return "".join(text).splitlines(keepends=True)


def colab_saved(nb: nbformat.NotebookNode, seed: int = 0) -> nbformat.NotebookNode:
    """`nb` as Colab's File > Download > .ipynb writes it (nbformat 4.0, no nbgrader metadata, no ids)."""
    rng = random.Random(seed)
    cells = []
    for count, cell in enumerate(nb.cells, start=1):
        colab_id = "".join(rng.choices(string.ascii_letters + string.digits, k=12))
        saved = {"cell_type": cell.cell_type, "source": _lines(cell.source), "metadata": {"id": colab_id}}
        if cell.cell_type == "code":
            saved["metadata"]["outputId"] = "".join(rng.choices(string.hexdigits.lower(), k=36))
            saved["execution_count"] = count
            saved["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["ran in Colab\n"]}]
        cells.append(saved)
    raw = {
        "nbformat": 4, "nbformat_minor": 0,
        "metadata": {
            "colab": {"provenance": [{"file_id": "1AbC", "timestamp": 1763800000000}], "gpuType": "T4"},
            "kernelspec": {"name": "python3", "display_name": "Python 3"},
            "language_info": {"name": "python"},
            "accelerator": "GPU",
        },
        "cells": cells,
    }
    # What the grader reads back from disk: nbformat upgrades 4.0 and joins the lines.
    return nbformat.reads(json.dumps(raw), as_version=4)


@pytest.fixture
def colab_hand_in():
    """The solved exercise after a round trip through Colab."""
    return colab_saved(submission(ASSIGNMENT, {}))


def _grade_ids(nb):
    return [cell.metadata.get("nbgrader", {}).get("grade_id") for cell in nb.cells]


def test_colab_fixture_has_lost_what_nbgrader_needs(colab_hand_in):
    """Is the Colab-saved fixture really stripped (no nbgrader metadata, no course ids, Colab's metadata)?"""
    assert not any("nbgrader" in cell.metadata for cell in colab_hand_in.cells)
    assert not {cell.get("id") for cell in colab_hand_in.cells} & {cell.id for cell in _released().cells}
    assert colab_hand_in.metadata["accelerator"] == "GPU" and "colab" in colab_hand_in.metadata
    assert any(cell.get("execution_count") for cell in colab_hand_in.cells)


def test_reattach_restores_every_cells_metadata(colab_hand_in):
    """Does every cell get back exactly the released cell's nbgrader metadata and id?"""
    restored, notes = colab.reattach_metadata(colab_hand_in, _released())
    released = _released()
    assert _grade_ids(restored) == _grade_ids(released)
    for mine, theirs in zip(restored.cells, released.cells, strict=True):
        assert mine.metadata.get("nbgrader") == theirs.metadata.get("nbgrader")
    assert [c.id for c in restored.cells if "nbgrader" in c.metadata] == \
        [c.id for c in released.cells if "nbgrader" in c.metadata]
    assert len(notes) == 1 and "18 cells" in notes[0] and "make_grid" in notes[0], notes
    assert not any("nbgrader" in cell.metadata for cell in colab_hand_in.cells), "the input was modified"


def test_answer_is_found_among_scratch_cells():
    """Is the answer cell still the one graded when the student added scratch cells around it?"""
    solved = submission(ASSIGNMENT, {})
    at = next(i for i, c in enumerate(solved.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "rows_where")
    scratch = "print(rows_where(torch.eye(3), torch.tensor([0, 1, 0]), 1))"
    solved.cells.insert(at + 1, nbformat.v4.new_code_cell(scratch))
    solved.cells.insert(at, nbformat.v4.new_markdown_cell("my notes: masks are boolean tensors"))
    solved.cells.insert(at, nbformat.v4.new_code_cell("X = torch.eye(3)"))
    restored, _ = colab.reattach_metadata(colab_saved(solved), _released())
    graded = next(c for c in restored.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "rows_where")
    assert graded.source.startswith("def rows_where("), graded.source
    assert sum("nbgrader" in c.metadata for c in restored.cells) == 18


def test_edited_test_cell_is_matched_by_position():
    """Does a test cell the student edited in Colab (which ignores locks) get its metadata back, so
    nbgrader restores the released test?"""
    solved = submission(ASSIGNMENT, {})
    test = next(c for c in solved.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_make_grid")
    test.source = '"""Check that make_grid returns a float32 (n_rows, n_cols) grid"""\nassert True  # tests removed'
    restored, notes = colab.reattach_metadata(colab_saved(solved), _released())
    assert _grade_ids(restored) == _grade_ids(_released())
    assert any("test_make_grid" in note and "edited" in note for note in notes), notes


def test_deleted_test_cell_is_reported():
    """Is a test cell the student deleted named in the notes (nbgrader restores it at grading)?"""
    solved = submission(ASSIGNMENT, {})
    solved.cells = [c for c in solved.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_pick_device"]
    restored, notes = colab.reattach_metadata(colab_saved(solved), _released())
    assert "test_pick_device" not in _grade_ids(restored)
    assert "pick_device" in _grade_ids(restored)
    assert any("test_pick_device" in note and "not found" in note for note in notes), notes


def test_jupyter_hand_in_passes_unchanged():
    """Is a notebook that kept its nbgrader metadata (saved by Jupyter) returned as it was, with no note?"""
    solved = submission(ASSIGNMENT, {})
    restored, notes = colab.reattach_metadata(copy.deepcopy(solved), _released())
    assert notes == [] and restored == solved


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Colab hand-ins graded by the class autograder: the solved exercise given its metadata back
    with reattach_metadata, the same exactly as Colab saved it, and a wrong answer whose test cell
    the student edited to pass (Colab does not enforce locks)."""
    root = tmp_path_factory.mktemp("colab-class")
    hand_in = colab_saved(submission(ASSIGNMENT, {}))
    restored, _ = colab.reattach_metadata(hand_in, _released())
    cheat = submission(ASSIGNMENT, {"make_grid": WRONG_GRID})
    test = next(c for c in cheat.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_make_grid")
    test.source = '"""Check that make_grid returns a float32 (n_rows, n_cols) grid"""\nprint("passed")'
    cheat, _ = colab.reattach_metadata(colab_saved(cheat), _released())
    for student, nb in [("reattached", restored), ("as_saved", hand_in), ("edited_test", cheat)]:
        path = root / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    rows = run.autograde_class(
        root / "submitted", root / "out", workers=2, assignments=[ASSIGNMENT], limits=LIMITS,
        db_url=f"sqlite:///{root}/gradebook.db", autograded=root / "autograded", progress=False)
    return {row.student_id: row for row in rows}


@pytest.mark.notebook
def test_colab_hand_in_grades_full_marks(graded):
    """Does the solved exercise, saved by Colab and given its metadata back, get full marks through
    the class autograder (and so in nbgrader's gradebook)?"""
    row = graded["reattached"]
    assert (row.status, row.score, row.max_score) == ("ok", 10, 10), row


@pytest.mark.notebook
def test_test_cell_edited_in_colab_is_graded_as_released(graded):
    """Does a wrong answer whose test cell was edited to pass in Colab still lose that test's points?"""
    row = graded["edited_test"]
    assert (row.status, row.score, row.max_score) == ("ok", 8, 10), row


@pytest.mark.notebook
def test_colab_hand_in_as_saved_grades_full_marks(graded):
    """Does the class autograder itself give the Colab-saved notebook, untouched, full marks?"""
    row = graded["as_saved"]
    assert (row.status, row.score, row.max_score) == ("ok", 10, 10), row
