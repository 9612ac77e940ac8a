"""The limits a submission is graded under, and what this machine can enforce.

The kernel sets its own rlimits (address space, file size, no core dumps) before any student
code runs. Where this process may manage cgroups (root, cgroup v1 pids and memory controllers),
each worker slot gets a cgroup that the kernel joins: it caps the number of processes and the
memory of everything the submission starts, and lists every one of them, daemons included, so
all are killed when grading ends. As root, the kernel also enters its own jail (jail.py: no
network, the course hidden) and drops to the slot's unprivileged user. Whatever is missing is
reported, not ignored.
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
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Limits:
    cell_timeout_s: int = 60
    notebook_timeout_s: int = 300
    memory_bytes: int = 6 * 2**30
    max_processes: int = 256  # tasks, threads included: torch and ipykernel use about 20
    max_file_bytes: int = 256 * 2**20
    max_submission_bytes: int = 20 * 2**20
    max_executed_bytes: int = 64 * 2**20  # the executed notebook, outputs included, that grading will read


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


def jail_available() -> bool:
    from grader import course
    from grader.autograde import jail

    return jail.works(str(course.ROOT), FIRST_SLOT_UID - 1)  # a uid no grading slot uses


def slot_user(slot: int) -> tuple[int, int] | None:
    """(uid, gid) a worker slot's kernels run as, or None when grading cannot switch users here."""
    if not running_as_root() or not (jail_available() or _unprivileged_user_can_run_python()):
        return None
    return FIRST_SLOT_UID + slot, FIRST_SLOT_UID + slot


class SlotCgroup:
    """A pids and a memory cgroup (v1) for one worker slot, reused for each of its submissions."""

    CONTROLLERS = ("pids", "memory")

    def __init__(self, slot: int, limits: Limits):
        name = f"course-grader-{os.getpid()}-{slot}"
        self.paths = [CGROUP_ROOT / controller / name for controller in self.CONTROLLERS]
        for path in self.paths:
            path.mkdir(exist_ok=True)
        (self.paths[0] / "pids.max").write_text(str(limits.max_processes))
        # The kernel's own address-space limit fails allocations first (a MemoryError the student
        # can read); this is the backstop for memory that limit does not see.
        (self.paths[1] / "memory.limit_in_bytes").write_text(str(limits.memory_bytes + 2**30))

    @property
    def procs_files(self) -> list[str]:
        return [str(path / "cgroup.procs") for path in self.paths]

    def members(self) -> set[int]:
        """Live processes in the cgroup (zombies are dead already: their adopter reaps them)."""
        found = set()
        for path in self.paths:
            try:
                found |= {int(pid) for pid in (path / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return {pid for pid in found if not _is_zombie(pid)}

    def kill_all(self) -> None:
        """Kill every process in the cgroup, however it detached, until none is left."""
        for _ in range(200):
            members = self.members()
            if not members:
                return
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        self.kill_all()
        for path in self.paths:
            try:
                path.rmdir()
            except OSError:
                pass


@functools.cache
def cgroups_available() -> bool:
    if not running_as_root():
        return False
    probe = CGROUP_ROOT / "pids" / f"course-grader-probe-{os.getpid()}"
    try:
        if not all((CGROUP_ROOT / c / "cgroup.procs").exists() for c in SlotCgroup.CONTROLLERS):
            return False
        probe.mkdir()
        probe.rmdir()
        return True
    except OSError:
        return False


def slot_cgroup(slot: int, limits: Limits) -> SlotCgroup | None:
    return SlotCgroup(slot, limits) if cgroups_available() else None


def isolation_warnings() -> list[str]:
    """Mechanisms this machine lacks, said loudly rather than grading silently without them."""
    warnings = []
    if not cgroups_available():
        warnings.append(
            "no cgroups (needs root and cgroup v1 pids/memory controllers): the process cap and the memory "
            "backstop are not enforced, and a process a submission detaches can outlive its grading"
        )
    if not running_as_root():
        warnings.append(
            "not running as root: submissions run as your own user, can read what you can (the solutions, the "
            "gradebook, other students' work) and can reach the network. Grade as root for the full sandbox"
        )
    elif not jail_available():
        warnings.append(
            "no mount/network namespaces here: submissions can reach the network and read the course folder, "
            "the gradebook and other students' work while they are graded"
        )
        if not _unprivileged_user_can_run_python():
            warnings.append(
                f"an unprivileged user cannot run {sys.executable}: submissions run as root. Install the "
                "environment somewhere world-readable (e.g. /opt) to grade as an unprivileged user"
            )
    return warnings


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except (OSError, IndexError):
        return True  # gone


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
