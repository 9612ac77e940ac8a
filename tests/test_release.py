"""Are the student notebooks exactly what solutions/ generates, with helpful stubs and badges?"""

import re

import nbformat
import pytest

from grader import course, hygiene, notebooks, release


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    release.generate(out)
    return out


def test_exercises_are_in_sync_with_solutions(generated):
    """Is every committed exercise byte-identical to a fresh release from solutions/?"""
    assert course.exercise_paths(), "exercises/ holds no notebook: run `python -m grader release`"
    problems = hygiene.sync_problems(generated)
    assert not problems, "exercises/ has drifted from solutions/:\n" + "\n".join(problems)


def test_release_is_deterministic(generated, tmp_path):
    """Does releasing twice give byte-identical notebooks?"""
    release.generate(tmp_path)
    for first in sorted(generated.rglob("*.ipynb")):
        second = tmp_path / first.relative_to(generated)
        assert second.read_bytes() == first.read_bytes(), f"{first.name} differs between two releases"


@pytest.mark.parametrize("path", course.exercise_paths(course.units()), ids=lambda p: p.parent.name)
def test_every_stub_raises_a_helpful_not_implemented_error(path):
    """Does every answer cell of the student copy raise NotImplementedError with a message?"""
    nb = nbformat.read(path, as_version=4)
    answers = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"]
    assert answers, f"{path.name} has no answer cell"
    for cell in answers:
        stub = re.search(r'raise NotImplementedError\("(.+)"\)', cell.source)
        grade_id = cell.metadata.nbgrader.grade_id
        assert stub, f"answer cell {grade_id!r} of {path.name} has no helpful stub:\n{cell.source}"


@pytest.mark.parametrize("path", course.solution_paths(course.units()), ids=lambda p: p.parent.name)
def test_every_test_cell_names_its_behaviour_and_points(path):
    """Does each grade cell open with a one-line docstring, carry points, and have a unique id?"""
    nb = nbformat.read(path, as_version=4)
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), f"{path.name} repeats grade ids: {sorted(ids)}"
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    assert tests, f"{path.name} has no test cell"
    for cell in tests:
        grade_id = cell.metadata.nbgrader.grade_id
        assert cell.source.startswith('"""'), f"test cell {grade_id!r} of {path.name} should open with a docstring"
        assert cell.metadata.nbgrader.get("points", 0) > 0, f"test cell {grade_id!r} of {path.name} has no points"
        assert "BEGIN HIDDEN TESTS" in cell.source, f"test cell {grade_id!r} of {path.name} has no hidden tests"


@pytest.mark.parametrize(
    "path", course.lecture_paths() + course.exercise_paths(), ids=lambda p: p.relative_to(course.ROOT).as_posix()
)
def test_colab_badge_opens_this_notebook_in_the_student_repository(path):
    """Does the "Open in Colab" badge open this very notebook, at the same path, in the students' repository?"""
    target = notebooks.badge_target(nbformat.read(path, as_version=4))
    prefix = (f"https://colab.research.google.com/github/{course.STUDENT_REPOSITORY}/blob/"
              f"{course.STUDENT_BRANCH}/")
    assert target == notebooks.colab_url(path), f"{path.name}: badge points at {target!r}"
    assert target.startswith(prefix), f"{path.name}: badge points at {target!r}, not at the students' repository"
    assert course.ROOT / target.removeprefix(prefix) == path, f"{path.name}: badge opens another notebook"
