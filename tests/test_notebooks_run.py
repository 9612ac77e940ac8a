"""Does every nbgrader notebook run top to bottom, headless, on a CPU, within its time budget?

(Lectures are run alone, as in Colab, by test_colab_standalone.py.)
"""

import pytest

from grader import course, execute


def _name(path):
    return path.relative_to(course.ROOT).as_posix()


def _record(record_property, run, budget):
    record_property("notebook_seconds", (_name(run.path), run.seconds, budget))


def _within_budget(run, budget):
    assert run.seconds < budget, (
        f"{_name(run.path)} took {run.seconds:.1f} s in a fresh kernel; the budget is {budget} s on a "
        "2-core CPU. Train for fewer epochs or on less data."
    )


@pytest.mark.notebook
@pytest.mark.parametrize("path", course.solution_paths(), ids=_name)
def test_solution_passes_every_test(path, record_property):
    """Does the instructor's solution pass every test cell, hidden tests included?"""
    run = execute.validate(path)
    _record(record_property, run, course.EXERCISE_BUDGET_S)
    assert run.results == {}, f"nbgrader's Validator found problems in {_name(path)}: {run.results}"
    assert not run.errors(), f"{_name(path)} raised errors (cell, exception, message): {run.errors()}"
    _within_budget(run, course.EXERCISE_BUDGET_S)


@pytest.mark.notebook
@pytest.mark.parametrize("path", course.exercise_paths(), ids=_name)
def test_unsolved_exercise_passes_no_test(path, record_property):
    """Does the unsolved student notebook fail every test, and only with NotImplementedError?"""
    run = execute.validate(path, invert=True)
    _record(record_property, run, course.EXERCISE_BUDGET_S)
    passing = [cell["source"].splitlines()[0] for cell in run.results.get("passed", [])]
    assert not passing, (
        f"these test cells of {_name(path)} pass with no solution written, so they test nothing: {passing}"
    )
    assert run.results == {}, f"nbgrader's Validator complained about {_name(path)}: {run.results}"
    unexpected = [error for error in run.errors() if error[1] != "NotImplementedError"]
    assert not unexpected, (
        f"the unsolved {_name(path)} should only raise NotImplementedError from its stubs; "
        f"other errors (cell, exception, message): {unexpected}"
    )
    assert run.errors(), f"the unsolved {_name(path)} raised nothing: are its stubs missing?"
    _within_budget(run, course.EXERCISE_BUDGET_S)
