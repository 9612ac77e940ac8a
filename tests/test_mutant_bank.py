"""Does the real grading path (`python -m grader autograde`, which records grades with nbgrader's own
converter) take points from every known mistake and give full marks to every differently-written
correct answer?"""

import pytest
from mutant_bank import banks
from mutant_bank.grading import autograde, submission

BANKS = banks()
CASES = [
    (assignment, entry)
    for assignment, (mutants, corrects) in BANKS.items()
    for entry in [*mutants, *corrects]
]
_graded: dict[str, dict] = {}


def _grades(assignment, tmp_path_factory):
    """Grade the whole bank of one assignment once (one throwaway course), then reuse it."""
    if assignment not in _graded:
        mutants, corrects = BANKS[assignment]
        submissions = {
            "reference": submission(assignment, {}),
            **{f"mutant_{m.name}": submission(assignment, m.cells) for m in mutants},
            **{f"correct_{c.name}": submission(assignment, c.cells) for c in corrects},
        }
        _graded[assignment] = autograde(assignment, submissions, tmp_path_factory.mktemp(assignment))
    return _graded[assignment]


@pytest.mark.notebook
@pytest.mark.parametrize("assignment", sorted(BANKS))
def test_reference_gets_full_marks(assignment, tmp_path_factory):
    """Does the instructor's own answer get every point through the real grading path?"""
    grades = _grades(assignment, tmp_path_factory)["reference"]
    lost = {cell: (r.score, r.max_score, r.error) for cell, r in grades.items() if r.score < r.max_score}
    assert not lost, f"{assignment}: the reference answer lost points (cell: score, max, error): {lost}"


@pytest.mark.notebook
@pytest.mark.parametrize(
    "assignment, entry", CASES, ids=[f"{a}-{type(e).__name__.lower()}-{e.name}" for a, e in CASES]
)
def test_bank_entry_is_graded_as_intended(assignment, entry, tmp_path_factory):
    """Does this mutant lose points with the intended message, or this variant get full marks?"""
    kind = type(entry).__name__.lower()
    grades = _grades(assignment, tmp_path_factory)[f"{kind}_{entry.name}"]
    if kind == "correct":
        lost = {cell: (r.score, r.max_score, r.error) for cell, r in grades.items() if r.score < r.max_score}
        assert not lost, f"{assignment}/{entry.name} is correct but lost points (cell: score, max, error): {lost}"
        return
    for cell, fragment in entry.loses.items():
        assert cell in grades, f"{assignment} has no test cell {cell!r}; it has {sorted(grades)}"
        result = grades[cell]
        assert result.score < result.max_score, (
            f"mutant {entry.name} kept all {result.max_score} points on {cell}: the hidden tests miss this mistake"
        )
        assert fragment in result.error, (
            f"mutant {entry.name} lost points on {cell}, but its message lacks {fragment!r}:\n{result.error}"
        )
