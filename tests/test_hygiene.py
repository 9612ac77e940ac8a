"""Is every notebook committed clean, and does no student file leak an answer?"""

import ast
import re
import sys
from pathlib import Path

import nbformat
import pytest

from grader import course, hygiene, notebooks

# What Colab already has: a notebook copied alone into Colab must run with just these.
COLAB_MODULES = {"torch", "numpy", "matplotlib", "sklearn", "tqdm"}


@pytest.mark.parametrize("path", hygiene.tracked_notebooks(), ids=lambda p: p.relative_to(course.ROOT).as_posix())
def test_notebook_is_clean_and_valid(path):
    """Is the notebook valid nbformat 4.5, with a kernelspec and no outputs?"""
    problems = hygiene.notebook_problems(path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", course.lecture_paths() + course.solution_paths(), ids=lambda p: p.name)
def test_source_notebook_is_as_release_writes_it(path):
    """Would `python -m grader release` leave this source notebook unchanged?"""
    nb = notebooks.clean(notebooks.read(path))
    if path.is_relative_to(course.LECTURES):
        nb = notebooks.with_colab_badge(nb, path)
    assert notebooks.render(nb) == path.read_text(encoding="utf-8"), (
        f"{path.name} is not normalised: run `python -m grader release` and commit the result"
    )


def test_no_answer_leaks_into_exercises():
    """Is every file under exercises/ free of solutions, hidden tests and their markers?"""
    problems = hygiene.leak_problems()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", course.lecture_paths() + course.exercise_paths(course.units()), ids=lambda p: p.name)
def test_student_notebook_imports_only_what_colab_has(path):
    """Does the notebook import nothing but the standard library and Colab's preinstalled packages?"""
    imported = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    foreign = imported - COLAB_MODULES - set(sys.stdlib_module_names)
    assert not foreign, f"{path.name} imports {sorted(foreign)}, which a student's Colab does not have"


def _requirement_names(lines):
    names = set()
    for line in lines:
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[<>=!~\[; ]", line)[0].lower())
    return names


def test_dependency_lists_agree():
    """Do requirements.txt and pyproject.toml name the same packages, with torch as a range?"""
    import tomllib

    pyproject = tomllib.loads((course.ROOT / "pyproject.toml").read_text())
    declared = _requirement_names(pyproject["project"]["dependencies"])
    listed = _requirement_names((course.ROOT / "requirements.txt").read_text().splitlines())
    assert declared == listed, f"only in pyproject: {declared - listed}; only in requirements.txt: {listed - declared}"
    torch_spec = next(d for d in pyproject["project"]["dependencies"] if d.startswith("torch"))
    assert "==" not in torch_spec, "torch must be a range so Colab and laptops keep the torch they have"
    assert "-r requirements.txt" in Path(course.ROOT / "environment.yml").read_text()
