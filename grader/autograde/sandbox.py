"""The limits a submission is graded under, and what this machine can enforce.

Limits are set per worker process before the kernel starts, so the kernel and everything it
starts inherit them. When the grader runs as root each worker slot drops to its own unprivileged
user: the process cap then counts only that submission's processes, and at the end every process
of that user is killed, including daemons that escaped the process group. Without root the
process cap is not enforced and detached processes can outlive grading: the summary says so.
"""

import functools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

FIRST_SLOT_UID = 61000  # unprivileged users for grading slots: 61000, 61001, ...


@dataclass(frozen=True)
class Limits:
    cell_timeout_s: int = 60
    notebook_timeout_s: int = 300
    memory_bytes: int = 6 * 2**30
    max_processes: int = 64
    max_file_bytes: int = 256 * 2**20
    max_submission_bytes: int = 20 * 2**20


def running_as_root() -> bool:
    return os.geteuid() == 0


@functools.cache
def _unprivileged_user_can_run_python() -> bool:
    """Can a slot user start this Python with torch and a kernel? Not if the environment lives
    somewhere only root can read (a virtual environment under /root, say)."""
    probe = [sys.executable, "-c", "import torch, ipykernel, nbformat, grader.checks"]
    try:
        done = subprocess.run(probe, user=FIRST_SLOT_UID, group=FIRST_SLOT_UID, extra_groups=[], cwd="/",
                              capture_output=True, timeout=120, env={**os.environ, "HOME": "/tmp"})
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def slot_user(slot: int) -> tuple[int, int] | None:
    """(uid, gid) a worker slot runs as, or None when grading cannot switch users here."""
    if not running_as_root() or not _unprivileged_user_can_run_python():
        return None
    return FIRST_SLOT_UID + slot, FIRST_SLOT_UID + slot


def isolation_warnings() -> list[str]:
    """Mechanisms this machine lacks, said loudly rather than grading silently without them."""
    if not running_as_root():
        return [
            "not running as root: submissions run as your own user, the process cap is not enforced, "
            "and a process a submission detaches can outlive its grading"
        ]
    if not _unprivileged_user_can_run_python():
        return [
            f"an unprivileged user cannot run {sys.executable} with the course's packages (is the environment "
            "in a folder only root can read?): submissions run as root, the process cap is not enforced, and "
            "a process a submission detaches can outlive its grading. Install the environment somewhere "
            "world-readable (e.g. /opt) to grade as an unprivileged user"
        ]
    return []


def _processes() -> list[tuple[int, int, int, int]]:
    """(pid, ppid, pgid, uid) of every live process this machine shows us."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z":
                continue  # already dead, waiting to be reaped: nothing left to kill
            uid = int((entry / "status").read_text().split("Uid:")[1].split()[0])
            found.append((int(entry.name), int(fields[1]), int(fields[2]), uid))
        except (OSError, IndexError, ValueError):
            continue  # it ended while we looked
    return found


def kill_everything(root_pid: int, uid: int | None) -> None:
    """Kill the worker, the kernel and anything they started; repeat until nothing is left."""
    for _ in range(50):
        procs = _processes()
        doomed = {pid for pid, _, pgid, owner in procs if pgid == root_pid or (uid is not None and owner == uid)}
        # Descendants that moved to a new process group (the kernel does) are found by parentage.
        grew = True
        while grew:
            grew = False
            for pid, ppid, _, _ in procs:
                if ppid in doomed and pid not in doomed:
                    doomed.add(pid)
                    grew = True
        doomed.discard(os.getpid())
        if not doomed:
            return
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
