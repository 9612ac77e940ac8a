"""Does every notebook run alone, as in Colab: copied into an empty folder, with nothing but the
packages Colab already has (torch, NumPy, matplotlib, scikit-learn, tqdm) and no file of this repo?

This repository is pip-installed (editable), so changing the folder is not enough: the kernel here
starts with an import guard (tests/standalone_kernel.py) that refuses `grader` and any module whose
file lives in the repository, and drops the repository from sys.path. The first test proves the
guard works.

Exercises run twice: unsolved (may stop only at NotImplementedError, from the stubs) and solved
with the reference answers (must raise nothing, visible tests included). Lectures run in full too;
they dominate this file's run time.
"""

from pathlib import Path

import nbformat
import pytest
from mutant_bank.grading import submission
from standalone_kernel import errors, run_alone
from standalone_kernel import installs as _installs
from standalone_kernel import kernel_specs as _kernel_specs

from grader import course


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory):
    """A kernelspec whose Python starts with the import guard of tests/standalone_kernel.py."""
    return _kernel_specs(tmp_path_factory.mktemp("kernels"))


def _name(path: Path) -> str:
    return path.relative_to(course.ROOT).as_posix()


def test_the_guard_hides_this_repository(kernel_specs, tmp_path):
    """Does the standalone kernel refuse `grader` (installed editable here) but import what Colab has?"""
    probe = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import torch, numpy, matplotlib, sklearn, tqdm"),
        nbformat.v4.new_code_cell("import grader"),
        nbformat.v4.new_code_cell("from grader.checks import tensors"),
        nbformat.v4.new_code_cell("import mutant_bank"),
        nbformat.v4.new_code_cell("import os; print(os.getcwd())"),
    ])
    nb, _ = run_alone(probe, "probe.ipynb", tmp_path / "alone", kernel_specs)
    assert [(i, e) for i, e, _ in errors(nb)] == [(1, "ModuleNotFoundError"), (2, "ModuleNotFoundError"),
                                                   (3, "ModuleNotFoundError")], errors(nb)
    assert Path(nb.cells[4].outputs[0].text.strip()).resolve() == (tmp_path / "alone").resolve()


@pytest.mark.notebook
@pytest.mark.parametrize("path", course.exercise_paths(course.units()), ids=_name)
def test_unsolved_exercise_runs_alone(path, kernel_specs, tmp_path, record_property):
    """Does the student copy run alone, stopping only at its stubs' NotImplementedError?"""
    nb, seconds = run_alone(nbformat.read(path, as_version=4), path.name, tmp_path / "alone", kernel_specs)
    record_property("notebook_seconds", (f"standalone {_name(path)}", seconds, course.EXERCISE_BUDGET_S))
    assert not _installs(nb), f"{path.name} installs something: {_installs(nb)}"
    unexpected = [e for e in errors(nb) if e[1] != "NotImplementedError"]
    assert not unexpected, f"{path.name} alone in a folder, without this repo, raised: {unexpected}"
    assert errors(nb), f"{path.name} raised no NotImplementedError: are its stubs missing?"


@pytest.mark.notebook
@pytest.mark.parametrize("path", course.exercise_paths(course.units()), ids=_name)
def test_solved_exercise_runs_alone(path, kernel_specs, tmp_path, record_property):
    """Does the exercise filled with the reference answers run alone, visible tests passing, no error?"""
    solved = submission(path.parent.name, {})
    nb, seconds = run_alone(solved, path.name, tmp_path / "alone", kernel_specs)
    record_property("notebook_seconds", (f"standalone solved {_name(path)}", seconds, course.EXERCISE_BUDGET_S))
    assert not errors(nb), f"the solved {path.name}, alone in a folder without this repo, raised: {errors(nb)}"


@pytest.mark.notebook
@pytest.mark.parametrize("path", course.lecture_paths(), ids=_name)
def test_lecture_runs_alone(path, kernel_specs, tmp_path, record_property):
    """Does the lecture run alone in an empty folder, without this repo or installs, within its budget?"""
    nb, seconds = run_alone(nbformat.read(path, as_version=4), path.name, tmp_path / "alone", kernel_specs)
    record_property("notebook_seconds", (f"standalone {_name(path)}", seconds, course.LECTURE_BUDGET_S))
    assert not _installs(nb), f"{path.name} installs something: {_installs(nb)}"
    assert not errors(nb), f"{path.name} alone in a folder, without this repo, raised: {errors(nb)}"
    assert seconds < course.LECTURE_BUDGET_S, (
        f"{path.name} took {seconds:.1f} s in a fresh kernel; the budget is {course.LECTURE_BUDGET_S} s on a "
        "2-core CPU. Train for fewer epochs or on less data."
    )
