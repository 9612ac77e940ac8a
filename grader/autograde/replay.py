"""Let nbgrader's own autograde converter use a notebook a worker already executed.

nbgrader autograde sanitises a submission, executes it and saves the grades, one student at a
time in one process. The executing is the slow part, so workers do it in parallel beforehand;
`ReplayExecute` stands where nbgrader's `Execute` stood and returns the worker's result, so
everything else (the gradebook, autograded/, formgrader, `nbgrader export`) is nbgrader's own.
"""

import copy
from pathlib import Path

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from grader.autograde import judge


class ReplayMismatch(RuntimeError):
    pass


def executed_path(root: Path, student: str, assignment: str, notebook: str) -> Path:
    return Path(root) / student / assignment / f"{notebook}.ipynb"


class ReplayExecute(NbGraderPreprocessor):
    """Replace the notebook with its executed copy from `executed_directory`."""

    executed_directory = Unicode("", help="where workers left executed notebooks").tag(config=True)

    def preprocess(self, nb, resources):
        ids = resources["nbgrader"]
        path = executed_path(Path(self.executed_directory), ids["student"], ids["assignment"], ids["notebook"])
        executed = nbformat.read(path, as_version=4)
        # Sanitising is deterministic, so the worker ran exactly these cells.
        if [c.source for c in executed.cells] != [c.source for c in nb.cells]:
            raise ReplayMismatch(f"{path} does not match the sanitised submission it should replay")
        # Only what the kernel produced comes from the executed copy, which the student's code could rewrite:
        # points, grade ids and cell types stay those of the trusted notebook nbgrader restored.
        replayed = copy.deepcopy(nb)
        for cell, ran in zip(replayed.cells, executed.cells, strict=True):
            if cell.cell_type == "code":
                outputs = ran.get("outputs", [])
                cell.outputs = outputs if isinstance(outputs, list) else []
                count = ran.get("execution_count")
                cell.execution_count = count if isinstance(count, int) else None
        # The verdicts: decided here, in the trusted process, from the observations the kernel made.
        return judge.apply(replayed, nb), resources
