"""A Jupyter kernel that cannot see this repository, to run notebooks the way students do (Colab, or a
clone of the students' repository): with their packages only, and no file of this repository.

This repository is pip-installed (editable), so changing the folder is not enough: the kernel starts
with an import guard that refuses `grader` and any module whose file lives in the repository, and
drops the repository from sys.path. tests/test_colab_standalone.py proves the guard works; it and
tests/test_student_repo.py run their notebooks in this kernel.
"""

import json
import re
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
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


def kernel_specs(folder: Path) -> KernelSpecManager:
    """A kernelspec in `folder` whose Python starts with the import guard, isolated (-I: no PYTHONPATH,
    no user site)."""
    (folder / KERNEL).mkdir(parents=True)
    spec = {"argv": [sys.executable, "-I", "-c", GUARD, "-f", "{connection_file}"], "language": "python",
            "display_name": "Python 3 (standalone, like Colab)", "env": {"MPLBACKEND": "Agg"}}
    (folder / KERNEL / "kernel.json").write_text(json.dumps(spec))
    return KernelSpecManager(kernel_dirs=[str(folder)], ensure_native_kernel=False)


def run_in_place(path: Path, specs: KernelSpecManager, timeout: int = 180):
    """Run the notebook at `path` in the guarded kernel, in its own folder; (executed notebook, seconds)."""
    nb = nbformat.read(path, as_version=4)
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
    client = NotebookClient(nb, km=km, timeout=timeout, allow_errors=True,
                            resources={"metadata": {"path": str(Path(path).parent)}})
    started = time.perf_counter()
    try:
        client.execute()
    finally:
        # nbclient shuts down only the kernels of managers it made itself: left running, each of these holds
        # torch and its data (hundreds of MiB) until pytest exits.
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    return nb, time.perf_counter() - started


def run_alone(nb: nbformat.NotebookNode, name: str, folder: Path, specs: KernelSpecManager, timeout: int = 180):
    """Write `nb` alone into an empty folder and run it there in the guarded kernel; (notebook, seconds)."""
    folder.mkdir(parents=True, exist_ok=True)
    assert not any(folder.iterdir()), f"{folder} is not empty"
    path = folder / name
    nbformat.write(nb, path)
    return run_in_place(path, specs, timeout)


def errors(nb) -> list[tuple[int, str, str]]:
    return [(i, out.ename, out.evalue[:200]) for i, cell in enumerate(nb.cells)
            for out in cell.get("outputs", []) if out.output_type == "error"]


def installs(nb) -> list[str]:
    return [line for cell in nb.cells if cell.cell_type == "code" for line in cell.source.splitlines()
            if re.match(r"\s*[!%]\s*(pip|conda|apt|wget|curl|git)\b", line)]
