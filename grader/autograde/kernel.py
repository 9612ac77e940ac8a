"""A kernel forked from a process that has already imported torch, instead of a new Python.

Starting a Python kernel and importing torch, NumPy, scikit-learn and matplotlib costs seconds
per notebook, far more than grading an exercise does. A worker imports them once, then for each
submission forks a child that becomes the kernel: a fresh process that never saw another
student's code, with the libraries already in memory. jupyter_client then drives the forked
kernel like any other through `AdoptedKernelManager`.
"""

import os
import secrets
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from jupyter_client.connect import write_connection_file
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from grader.autograde import jail

PRELOADED = ("torch", "numpy", "sklearn.datasets", "sklearn.model_selection", "sklearn.preprocessing",
             "sklearn.metrics", "matplotlib.pyplot", "tqdm.auto", "ipykernel.kernelapp")


def preload() -> None:
    """Import what every course notebook and every observer imports, once, before any fork.

    Never the judges (`grader.checks`): a kernel forked from here must hold no reference answer."""
    import importlib

    from grader.autograde import observing

    os.environ.setdefault("MPLBACKEND", "Agg")
    for module in PRELOADED:
        importlib.import_module(module)
    observing.observer_modules()


class ForkedProcess:
    """The little of subprocess.Popen that jupyter_client uses, for a child made by os.fork()."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                self.returncode = -1
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def fork_kernel(workdir: Path, become_student: Callable[[], None], jailed: bool = False) -> tuple[int, str]:
    """Fork a kernel serving `workdir/.kernel.json`; returns (pid, connection file).

    `become_student` runs in the child before any student code: limits, jail, user, folder. A jailed kernel is
    PID 1 of a PID namespace of its own (so when it ends, everything it started ends with it, and it sees no
    other process) and, having no network, is reached over unix sockets in `workdir`.
    """
    where = {"transport": "ipc", "ip": str(workdir / "kernel")} if jailed else {"ip": "127.0.0.1"}
    connection_file, _ = write_connection_file(
        str(workdir / ".kernel.json"), key=secrets.token_hex(16).encode(), **where
    )
    pid = jail.fork_into_new_pid_namespace() if jailed else os.fork()
    if pid == 0:  # the child: becomes the kernel and never returns
        status = 1
        try:
            os.setpgid(0, 0)  # its own process group, so everything it starts is killed with it
            become_student()
            from ipykernel.kernelapp import IPKernelApp

            app = IPKernelApp.instance()
            app.initialize(["-f", connection_file, "--HistoryManager.hist_file=:memory:", "--quiet"])
            app.start()
            status = 0
        except BaseException as error:  # noqa: BLE001 -- report anything, then leave without cleanup
            print(f"kernel failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        finally:
            os._exit(status)
    return pid, connection_file


class AdoptedKernelManager(AsyncKernelManager):
    """A kernel manager for a kernel that is already running as our child."""

    def client(self, **kwargs):
        # The client's sockets come from this manager's context, so that the defaults the driver sets on it
        # (the largest message it accepts) hold for them.
        return super().client(context=self.context, **kwargs)

    def adopt(self, pid: int, connection_file: str) -> None:
        self.connection_file = connection_file
        self.load_connection_file()
        self.provisioner = LocalProvisioner(kernel_id=secrets.token_hex(8), kernel_spec=self.kernel_spec, parent=self)
        self.provisioner.process = ForkedProcess(pid)
        self.provisioner.pid = pid
        self.provisioner.pgid = pid
        self.provisioner.connection_info = self.get_connection_info()
