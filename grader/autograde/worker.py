"""Grading workers: one long-lived process per parallel slot, one forked driver per submission.

    parent (run.py) --job--> worker (libraries imported once) --fork--> driver (trusted)
                                                                   \\--fork--> kernel (student code,
                                                                              limits, own user)

The worker imports torch and friends once and then only forks. The driver runs the notebook
cell by cell against its kernel, saving the notebook after every cell, so that if the parent
has to kill everything the cells that ran keep their results. Student code only ever runs in
the kernel, which lowers its limits and drops to the slot's user before it starts.
"""

import ctypes
import json
import os
import resource
import select
import signal
import subprocess
import sys
import traceback
from pathlib import Path

import nbformat
import zmq
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from grader.autograde import jail, kernel
from grader.autograde.unexecuted import mark_unexecuted

KERNEL_DIED = "the kernel died while running it (a crash, os._exit, or more memory than the grading limit)"

# What nbgrader's Execute preprocessor records for a cell that outlives its timeout.
TIMEOUT_ERROR = {
    "ename": "CellTimeoutError",
    "evalue": "",
    "traceback": ["\x1b[0;31mCellTimeoutError\x1b[0m: No reply from kernel before timeout"],
}


# The driver's files, in the submission's trusted folder beside (never inside) the student's work folder.
SUBMISSION, EXECUTED, PARTIAL, DRIVER_LOG = "submission.ipynb", "executed.ipynb", "partial.ipynb", "driver.log"


def job_spec(workdir: Path, trusted: Path, limits, skip_tag: str, box, hidden: list[str] | None) -> dict:
    """What the parent sends a worker for one notebook (a sandbox.Limits, and the submission's sandbox box)."""
    return {
        "workdir": str(workdir), "notebook": str(trusted / SUBMISSION), "executed": str(trusted / EXECUTED),
        "partial": str(trusted / PARTIAL), "log": str(trusted / DRIVER_LOG),
        "cell_timeout": limits.cell_timeout_s, "skip_tag": skip_tag,
        "memory_bytes": limits.memory_bytes, "max_processes": limits.max_processes,
        "max_file_bytes": limits.max_file_bytes,
        "max_output_bytes": limits.max_executed_bytes // 2,  # JSON's escapes can double what is kept
        "uid": box.uid, "gid": box.gid, "cgroups": box.procs_files, "hide": hidden,
    }


# What one cell may print (observations aside), and a notebook in all: beyond, outputs are dropped as they
# arrive, so a student who prints gigabytes costs the grader no memory and loses only what was cut.
CELL_OUTPUT_BYTES = 4 * 2**20
# One message from the kernel (what it printed since its last flush, one display): far more than honest work
# sends (an observation is at most 20 MiB), far less than a kernel's memory limit.
MAX_MESSAGE_BYTES = 64 * 2**20
TRUNCATED = "\n[the grader cut this cell's output here: it printed more than {} MiB]\n"


def _output_size(msg: dict) -> int:
    content = msg.get("content", {})
    if "text" in content:
        return len(content["text"])
    parts = list(content.get("data", {}).values()) + [content.get("evalue", "")] + content.get("traceback", [])
    return sum(len(part) if isinstance(part, str) else len(json.dumps(part)) for part in parts)


def _atomic_write(nb: NotebookNode, path: Path) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(nbformat.writes(nb), encoding="utf-8")
    os.replace(temporary, path)


class _GradingClient(NotebookClient):
    """nbclient configured as nbgrader's Execute is, saving progress after every cell."""

    partial_path: Path
    started = 0

    def __init__(self, nb, km, job):
        super().__init__(
            nb, km=km, timeout=job["cell_timeout"], interrupt_on_timeout=True, allow_errors=True,
            shutdown_kernel="immediate",  # the kernel is thrown away: no need to wait for a polite exit
            raise_on_iopub_timeout=True, iopub_timeout=15, error_on_timeout=TIMEOUT_ERROR,
            skip_cells_with_tag=job["skip_tag"],
            kernel_name="python3", resources={"metadata": {"path": job["workdir"]}},
            on_cell_start=self._on_start, on_cell_executed=self._on_executed,
        )
        from grader.observation import MIME  # imported by kernel.preload(): the grading process never needs torch

        self.observation_mime = MIME
        self.partial_path = Path(job["partial"])
        self.output_budget = job.get("max_output_bytes") or float("inf")  # the whole notebook's
        self.spent: dict[int, int] = {}  # bytes kept per cell
        self.cut: set[int] = set()

    def output(self, outs, msg, display_id, cell_index):
        size = _output_size(msg)
        observation = self.observation_mime in msg.get("content", {}).get("data", {})
        over_cell = not observation and self.spent.get(cell_index, 0) + size > CELL_OUTPUT_BYTES
        if over_cell or sum(self.spent.values()) + size > self.output_budget:
            if cell_index not in self.cut:
                self.cut.add(cell_index)
                outs.append(NotebookNode(output_type="stream", name="stdout",
                                         text=TRUNCATED.format(CELL_OUTPUT_BYTES // 2**20)))
            return None
        self.spent[cell_index] = self.spent.get(cell_index, 0) + size
        return super().output(outs, msg, display_id, cell_index)

    def clear_output(self, outs, msg, cell_index):
        super().clear_output(outs, msg, cell_index)
        if not outs:  # cleared now (not at the next output, for `wait=True`): a live plot starts its budget anew
            self.spent[cell_index] = 0
            self.cut.discard(cell_index)

    def _on_start(self, cell, cell_index):
        self.started = cell_index

    def _on_executed(self, cell, cell_index, execute_reply):
        # As nbgrader's Execute does: an error the kernel reported but did not display (a timeout,
        # a disabled traceback) is added to the outputs, so it cannot pass unnoticed.
        content = execute_reply["content"]
        if content["status"] == "error" and not any(
            o.output_type == "error" and o.ename == content["ename"] for o in cell.outputs
        ):
            cell.outputs.append(NotebookNode(
                output_type="error", ename=content["ename"], evalue=content["evalue"],
                traceback=content["traceback"] or ["ERROR: an error occurred while showtraceback was disabled"],
            ))
        _atomic_write(self.nb, self.partial_path)


def _become_student(job: dict) -> None:
    """In the kernel, before any student code: its cgroup, its jail, limits, an empty home, the slot's user."""
    workdir = Path(job["workdir"])
    for procs in job.get("cgroups", []):
        Path(procs).write_text(str(os.getpid()))  # a fresh cgroup: nothing of an earlier student is charged to it
    if job.get("hide") is not None:  # jailed: the kernel is PID 1 of its own namespace (fork_kernel)
        jail.enter(workdir, job["hide"])  # the allowlist; `hide` is checked to be out of sight
    limits = [
        (resource.RLIMIT_AS, job.get("memory_bytes")), (resource.RLIMIT_NPROC, job.get("max_processes")),
        (resource.RLIMIT_FSIZE, job.get("max_file_bytes")), (resource.RLIMIT_CORE, 0),
    ]
    for limit, value in limits:
        if value is not None:
            resource.setrlimit(limit, (value, value))
    home = workdir / ".home"
    os.environ.clear()
    os.environ.update(
        HOME=str(home), IPYTHONDIR=str(home / ".ipython"), MPLCONFIGDIR=str(home / ".matplotlib"),
        MPLBACKEND="Agg", PATH="/usr/bin:/bin", LANG="C.UTF-8", NBGRADER_EXECUTION="autograde",
    )
    os.chdir(workdir)
    from grader.autograde import observing  # imported by kernel.preload(): the grading process never needs torch

    observing.install()  # hidden checks observe here; the trusted parent judges
    # One thread per kernel: workers already keep every core busy, and two OpenMP threads per
    # kernel on a shared core run a small training loop many times slower, not faster.
    import torch

    torch.set_num_threads(1)
    if job.get("uid") is not None and os.getuid() == 0:
        os.chown(workdir / ".kernel.json", job["uid"], job["gid"])
        jail.drop_to(job["uid"], job["gid"])
    jail.forbid_new_privileges()


def drive(job: dict) -> None:
    """Run one notebook against a freshly forked kernel and write the executed notebook."""
    nb = nbformat.read(job["notebook"], as_version=4)
    pid, connection_file = kernel.fork_kernel(
        Path(job["workdir"]), lambda: _become_student(job), jailed=job.get("hide") is not None
    )
    manager = kernel.AdoptedKernelManager(kernel_name="python3")
    # A message larger than this is dropped by ZeroMQ before this process holds it (the link reconnects).
    manager.context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    manager.adopt(pid, connection_file)
    client = _GradingClient(nb, manager, job)
    try:
        with client.setup_kernel():
            for index, cell in enumerate(client.nb.cells):
                try:
                    client.execute_cell(cell, index, store_history=True)
                except CellTimeoutError as error:
                    # nbclient gives up on the whole notebook here; grading goes on with the next cell.
                    cell.outputs.append(NotebookNode(output_type="error", ename="CellTimeoutError",
                                                     evalue=str(error).splitlines()[0], traceback=[]))
                    _atomic_write(client.nb, client.partial_path)
    except DeadKernelError:
        mark_unexecuted(client.nb, client.started, KERNEL_DIED)
    finally:
        try:
            os.killpg(pid, signal.SIGKILL)  # the kernel's process group, whatever nbclient managed
        except ProcessLookupError:
            pass
    _atomic_write(client.nb, Path(job["executed"]))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"driver: {len(client.cut)} cell(s) had output cut; peak memory {peak} MiB", flush=True)


def _become_subreaper() -> None:
    """Adopt the orphans of killed submissions, so that this worker, not PID 1, reaps them.

    A killed fork bomb leaves its children as zombies of whoever adopts them. Where PID 1 does not
    reap (a minimal container init), those zombies stay charged to the slot's process cap, and every
    later kernel in the slot could not start a thread."""
    PR_SET_CHILD_SUBREAPER = 36
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: orphans go to init as usual


def _reap_orphans() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def serve() -> None:
    """The worker loop: read a job per line on stdin, fork a driver for it, report on stdout."""
    _become_subreaper()
    kernel.preload()
    print(json.dumps({"ready": os.getpid()}), flush=True)
    while line := sys.stdin.readline():
        job = json.loads(line)
        _reap_orphans()  # what the parent killed after the previous job
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                os.setsid()  # the driver and its kernel form their own session: killed as one
                log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
                os.dup2(log, 1)
                os.dup2(log, 2)
                drive(job)
                status = 0
            except BaseException:  # noqa: BLE001 -- whatever happened goes to the log
                traceback.print_exc()
            finally:
                os._exit(status)
        print(json.dumps({"started": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"finished": pid, "exit": os.waitstatus_to_exitcode(status)}), flush=True)


class Worker:
    """The parent's handle on one worker process."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.ready = False
        self.busy = False  # a job was sent and its end not read: after a failure, the worker is in an unknown state

    def start(self) -> None:
        """Start importing the libraries now; the first job waits for it to finish."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "grader.autograde.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, bufsize=1, start_new_session=True,
        )
        self.ready = False

    def _read(self, timeout: float | None) -> dict | None:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the grading worker exited unexpectedly")
        return json.loads(line)

    def run(self, job: dict, timeout: float, on_timeout) -> bool:
        """Run a job; False if it outlived `timeout` and `on_timeout(driver_pid)` had to stop it."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        if not self.ready:
            if self._read(timeout=300) is None:  # {"ready": pid}: the libraries are imported
                raise RuntimeError("the grading worker did not start within 300 s")
            self.ready = True
        self.busy = True
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        started = self._read(timeout=60)
        if not isinstance(started, dict) or "started" not in started:
            raise RuntimeError(f"the grading worker did not start the job (it answered {started!r:.100})")
        finished = self._read(timeout=timeout)
        if finished is None:
            on_timeout(started["started"])
            if self._read(timeout=60) is None:
                self.kill()  # it no longer answers: the next job starts a fresh one
            self.busy = False
            return False
        self.busy = False
        return True

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """Stop the worker and whatever it forked now, without waiting for it to finish a job."""
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # its own session: the group is the worker's
            except ProcessLookupError:
                pass
            self.process.wait()


if __name__ == "__main__":
    serve()
