"""Does every notebook run alone, as in Colab: copied into an empty folder, with nothing but the
packages Colab already has (torch, NumPy, matplotlib, scikit-learn, tqdm) and no file of this repo?

This repository is pip-installed (editable), so changing the folder is not enough: the kernel here
starts with an import guard that refuses `grader` and any module whose file lives in the repository,
and drops the repository from sys.path. The first test proves the guard works.

Exercises run twice: unsolved (may stop only at NotImplementedError, from the stubs) and solved
with the reference answers (must raise nothing, visible tests included). Lectures run in full too;
they dominate this file's run time.
"""

import json
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from mutant_bank.grading import submission
from nbclient import NotebookClient

from grader import course

KERNEL = "colab-standalone"
# Top-level names this repository provides, refused even if installed as a copy rather than editable.
REPO_MODULES = sorted({p.stem for p in course.ROOT.glob("*.py")} | {
    p.name for p in course.ROOT.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
} | {"grader", "mutant_bank"})

GUARD = f"""
import importlib.abc, os, sys
_ROOT = {str(course.ROOT.resolve())!r}
_REPO = set({REPO_MODULES!r})
# A virtual environment may live inside the clone (CI makes one in .venv): its packages stand in for Colab's.
_ENV = {{os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)}}

def _under(path, folder):
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:
        return False

def _inside(path):
    path = os.path.realpath(path or ".")
    return _under(path, _ROOT) and not any(_under(path, env) for env in _ENV)

class _NoCourseRepo(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _REPO:
            raise ModuleNotFoundError(f"No module named {{name!r}} (standalone: this repository is not there)",
                                      name=name)
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.origin and _inside(spec.origin):
                    raise ModuleNotFoundError(f"{{name!r}} comes from the course repository", name=name)
                return None
        return None

sys.path[:] = [p for p in sys.path if not _inside(p)]
sys.meta_path.insert(0, _NoCourseRepo())
for _name in [m for m in sys.modules if m.split(".")[0] in _REPO]:
    del sys.modules[_name]
from ipykernel import kernelapp
kernelapp.launch_new_instance()
"""


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory) -> KernelSpecManager:
    """A kernelspec whose Python starts with the import guard, isolated (-I: no PYTHONPATH, no user site)."""
    kernels = tmp_path_factory.mktemp("kernels")
    (kernels / KERNEL).mkdir()
    spec = {"argv": [sys.executable, "-I", "-c", GUARD, "-f", "{connection_file}"], "language": "python",
            "display_name": "Python 3 (standalone, like Colab)", "env": {"MPLBACKEND": "Agg"}}
    (kernels / KERNEL / "kernel.json").write_text(json.dumps(spec))
    return KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)


def run_alone(nb: nbformat.NotebookNode, name: str, folder: Path, specs: KernelSpecManager, timeout: int = 180):
    """Write `nb` alone into an empty folder and run it there in the guarded kernel; (notebook, seconds)."""
    folder.mkdir(parents=True, exist_ok=True)
    assert not any(folder.iterdir()), f"{folder} is not empty"
    path = folder / name
    nbformat.write(nb, path)
    nb = nbformat.read(path, as_version=4)
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
    client = NotebookClient(nb, km=km, timeout=timeout, allow_errors=True,
                            resources={"metadata": {"path": str(folder)}})
    started = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - started


def errors(nb) -> list[tuple[int, str, str]]:
    return [(i, out.ename, out.evalue[:200]) for i, cell in enumerate(nb.cells)
            for out in cell.get("outputs", []) if out.output_type == "error"]


def _installs(nb) -> list[str]:
    return [line for cell in nb.cells if cell.cell_type == "code" for line in cell.source.splitlines()
            if re.match(r"\s*[!%]\s*(pip|conda|apt|wget|curl|git)\b", line)]


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
@pytest.mark.parametrize("path", course.exercise_paths(), ids=_name)
def test_unsolved_exercise_runs_alone(path, kernel_specs, tmp_path, record_property):
    """Does the student copy run alone, stopping only at its stubs' NotImplementedError?"""
    nb, seconds = run_alone(nbformat.read(path, as_version=4), path.name, tmp_path / "alone", kernel_specs)
    record_property("notebook_seconds", (f"standalone {_name(path)}", seconds, course.EXERCISE_BUDGET_S))
    assert not _installs(nb), f"{path.name} installs something: {_installs(nb)}"
    unexpected = [e for e in errors(nb) if e[1] != "NotImplementedError"]
    assert not unexpected, f"{path.name} alone in a folder, without this repo, raised: {unexpected}"
    assert errors(nb), f"{path.name} raised no NotImplementedError: are its stubs missing?"


@pytest.mark.notebook
@pytest.mark.parametrize("path", course.exercise_paths(), ids=_name)
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
