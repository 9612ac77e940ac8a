"""Run one submission's notebook in a fresh kernel, inside the limits the parent chose.

Started by the parent as `python -m grader.autograde.worker JOB.json`, in its own process session
and working folder. It lowers its own limits (and, when started as root, drops to an unprivileged
user) before any student code exists, so the kernel it starts inherits them. After every cell it
saves the notebook so far: if the parent has to kill it, the cells that ran keep their results.
"""

import json
import os
import resource
import sys
from pathlib import Path

import nbformat
from nbclient.exceptions import DeadKernelError
from nbgrader.preprocessors import Execute

from grader.autograde.unexecuted import mark_unexecuted


class _SavingExecute(Execute):
    """nbgrader's Execute, saving the notebook after each cell and remembering how far it got."""

    partial_path: Path
    completed = 0

    def preprocess_cell(self, cell, resources, index):
        result = super().preprocess_cell(cell, resources, index)
        self.completed = index + 1
        _atomic_write(self.nb, self.partial_path)
        return result


def _atomic_write(nb, path: Path) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(nbformat.writes(nb), encoding="utf-8")
    os.replace(temporary, path)


def apply_limits(job: dict) -> None:
    """Memory, process, file-size and core limits; then drop privileges if a user is given."""
    memory = job.get("memory_bytes")
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    processes = job.get("max_processes")
    if processes:
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    file_size = job.get("max_file_bytes")
    if file_size:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    uid, gid = job.get("uid"), job.get("gid")
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)


def run(job: dict) -> None:
    workdir = Path(job["workdir"])
    home = workdir / ".home"
    # Everything the kernel writes (IPython history, matplotlib cache, connection file) stays here.
    os.environ.update(
        HOME=str(home), IPYTHONDIR=str(home / ".ipython"), MPLCONFIGDIR=str(home / ".matplotlib"),
        JUPYTER_RUNTIME_DIR=str(home / ".runtime"), MPLBACKEND="Agg", NBGRADER_EXECUTION="autograde",
    )
    os.chdir(workdir)
    nb = nbformat.read(job["notebook"], as_version=4)
    executor = _SavingExecute(
        timeout=job["cell_timeout"],
        skip_cells_with_tag=job["skip_tag"],
        extra_arguments=["--HistoryManager.hist_file=:memory:"],
        kernel_name="python3",
    )
    executor.partial_path = Path(job["partial"])
    try:
        nb, _ = executor.preprocess(nb, {"metadata": {"path": str(workdir)}})
    except DeadKernelError:
        nb = executor.nb
        mark_unexecuted(nb, executor.completed, "the kernel died while running it (a crash, os._exit, "
                        "or more memory than the grading limit)")
    _atomic_write(nb, Path(job["executed"]))


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    apply_limits(job)
    run(job)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
