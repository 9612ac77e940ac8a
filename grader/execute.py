"""Validate an nbgrader notebook in a fresh kernel and say how it went.

Validation goes through nbgrader's own `Validator`, because `nbgrader validate` exits 0 even when
tests fail: callers must look at the results, never at an exit code.
"""

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.validator import Validator

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
