"""Let nbgrader's own autograde converter use a notebook the grader already executed and judged.

nbgrader autograde sanitises a submission, executes it and saves the grades, one student at a
time in one process. Executing and judging are the slow parts, so workers execute in parallel
beforehand and trusted processes judge (`grader.autograde.trusted`); `ReplayExecute` stands where
nbgrader's `Execute` stood and returns the judged result, so everything else (the gradebook,
autograded/, formgrader, `nbgrader export`) is nbgrader's own.
"""

from pathlib import Path

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from grader.autograde.trusted import merge_outputs


def executed_path(root: Path, student: str, assignment: str, notebook: str) -> Path:
    return Path(root) / student / assignment / f"{notebook}.ipynb"


class ReplayExecute(NbGraderPreprocessor):
    """Replace the notebook with its judged copy from `judged_directory`."""

    judged_directory = Unicode("", help="where the trusted processes left judged notebooks").tag(config=True)

    def preprocess(self, nb, resources):
        ids = resources["nbgrader"]
        path = executed_path(Path(self.judged_directory), ids["student"], ids["assignment"], ids["notebook"])
        # Only the outputs (the judges' verdicts among them) come from the judged copy; points, grade ids and
        # cell types stay those of the trusted notebook nbgrader restored.
        return merge_outputs(nb, nbformat.read(path, as_version=4)), resources
