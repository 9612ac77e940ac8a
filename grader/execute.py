"""Run a notebook top to bottom in a fresh kernel and say how it went.

Used by the test suite (every lecture, solution and exercise) and by anything that needs an
executed notebook. Validation goes through nbgrader's own `Validator`, because `nbgrader validate`
exits 0 even when tests fail: callers must look at the results, never at an exit code.
"""

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbgrader.validator import Validator

from grader import notebooks
from grader.nbgrader_api import ensure_env_bin_on_path, load_config


@dataclass
class Run:
    path: Path
    nb: nbformat.NotebookNode
    seconds: float
    results: dict = field(default_factory=dict)  # nbgrader Validator results, when validated

    def errors(self) -> list[tuple[int, str, str]]:
        """(cell index, exception name, message) for every cell that raised."""
        found = []
        for index, cell in enumerate(self.nb.cells):
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    found.append((index, output.ename, output.evalue))
        return found


def headless_env() -> None:
    """Plots render off-screen, so notebooks run on a machine with no display."""
    os.environ["MPLBACKEND"] = "Agg"


def execute(path: Path, cwd: Path, timeout: int = 120) -> Run:
    """Execute a plain notebook (a lecture) in `cwd` with a fresh kernel; errors are recorded."""
    headless_env()
    nb = notebooks.read(path)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    start = time.perf_counter()
    client.execute()
    return Run(Path(path), nb, time.perf_counter() - start)


class _KeepingValidator(Validator):
    """nbgrader's Validator, keeping the executed notebook so callers can inspect its errors."""

    executed: nbformat.NotebookNode | None = None

    def _preprocess(self, nb):
        self.executed = super()._preprocess(nb)
        return self.executed


def validate(path: Path, invert: bool = False) -> Run:
    """Run nbgrader's Validator on an nbgrader notebook, in the notebook's own folder.

    With invert=False, `results` is empty when every test cell passes; with invert=True it is
    empty when no test cell passes.
    """
    headless_env()
    ensure_env_bin_on_path()
    validator = _KeepingValidator(config=load_config())
    validator.invert = invert
    start = time.perf_counter()
    results = validator.validate(str(Path(path).resolve()))
    seconds = time.perf_counter() - start
    return Run(Path(path), validator.executed, seconds, results)
