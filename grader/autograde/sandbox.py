"""The limits a submission is graded under, how its processes are contained, and what this machine enforces.

Every kernel lowers its own rlimits (address space, processes, file size, no core dumps) before any student code
runs. As root it also enters its jail (jail.py: its own PID, mount, network, IPC and UTS namespaces and a file
system built from an allowlist), sets no_new_privs and drops to a user of its own. What keeps a submission's
processes in check, and finds every one of them when its grading ends, is the containment (`--containment`):

  cgroup2  a fresh cgroup v2 per submission under <cgroup2 mount>/course-grader, with the pids and memory
           controllers delegated through cgroup.subtree_control: pids.max, memory.max, memory.swap.max = 0.
           cgroup.kill ends it in one write (a kill loop over cgroup.procs before Linux 5.14). A controller
           the host does not give this tree (on a cgroup v1 host pids and memory are bound to v1) is reported
           at the start and end of the run, never assumed: the tree then only tracks and kills.
  cgroup1  a fresh pids and memory cgroup (v1) per submission: pids.max, memory.limit_in_bytes; killed by a
           loop over cgroup.procs until it is empty (pids.max keeps a fork bomb from outrunning it).
  uid      no cgroup: the slot's own uid is the container. RLIMIT_NPROC caps its processes (the kernel counts
           them per user), and when the submission ends everything that uid owns is killed. There is no
           memory backstop across processes: RLIMIT_AS caps each one.
  auto     the strongest this machine has: cgroup2 with both controllers, else cgroup1, else cgroup2 without
           them, else uid; the run says which.

The modes are layered: the cgroup modes also run the kernel as the slot's uid, cap it with RLIMIT_NPROC and
sweep that uid at the end. Without root there is no containment at all, and the run says so loudly.

Slot users belong to one run. A run takes as many free uids of 61000-64999 as it has slots, holding one lock
file per uid under /run/course-grader (flock: the locks of a run that crashes go with it), and kills whatever
a crashed run left running as a uid before it uses it. So concurrent runs on one host never share a uid, and
a uid-wide kill only ever reaches the run that holds the uid.
"""

import fcntl
import functools
import grp
import itertools
import os
import pwd
import re
import secrets
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CONTAINMENTS = ("auto", "cgroup2", "cgroup1", "uid")
PROBE_UID = 60999  # probes run as this uid: never a slot's, so never swept by a run
FIRST_SLOT_UID, LAST_SLOT_UID = 61000, 64999  # slot users of every run on this host
LOCK_FOLDERS = (Path("/run/course-grader"), Path("/var/lib/course-grader"))
CGROUP_NAME = "course-grader"
CGROUP2_CONTROLLERS = ("pids", "memory")


class SandboxError(RuntimeError):
    """A containment that was asked for and that this machine cannot give."""


@dataclass(frozen=True)
class Limits:
    cell_timeout_s: int = 60
    notebook_timeout_s: int = 300
    memory_bytes: int = 6 * 2**30
    max_processes: int = 256  # tasks, threads included: torch and ipykernel use about 20
    max_file_bytes: int = 256 * 2**20
    max_submission_bytes: int = 20 * 2**20
    max_executed_bytes: int = 64 * 2**20  # the executed notebook, outputs included, that grading will read

    @property
    def cgroup_memory_bytes(self) -> int:
        # The kernel's own address-space limit fails allocations first (a MemoryError the student can read);
        # the cgroup is the backstop for memory that limit does not see (other processes, tmpfs pages).
        return self.memory_bytes + 2**30


def running_as_root() -> bool:
    return os.geteuid() == 0


@functools.cache
def _unprivileged_user_can_run_python() -> bool:
    """Can a slot user start this Python with torch and a kernel? Not if the environment lives
    somewhere only root can read (a virtual environment under /root, say)."""
    probe = [sys.executable, "-c", "import torch, ipykernel, nbformat, grader.checks"]
    try:
        done = subprocess.run(probe, user=PROBE_UID, group=PROBE_UID, extra_groups=[], cwd="/",
                              capture_output=True, timeout=120, env={**os.environ, "HOME": "/tmp"})
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def probe_jail_soon() -> None:
    """Start finding out whether kernels can be jailed here, so that the probe's seconds overlap other start-up
    work; `jail_available` waits for the answer."""
    from grader import course
    from grader.autograde import jail

    jail.works_soon(str(course.ROOT), PROBE_UID)


def jail_available() -> bool:
    from grader import course
    from grader.autograde import jail

    return jail.works(str(course.ROOT), PROBE_UID)


def _can_switch_users() -> bool:
    return running_as_root() and (jail_available() or _unprivileged_user_can_run_python())


# What the machine has: cgroup hierarchies.

def _mounts() -> list[tuple[Path, str, set[str]]]:
    """(mount point, file system type, super options) of every mount this process sees."""
    unescape = functools.partial(re.sub, r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)))
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if "-" in fields[6:]:
            dash = fields.index("-", 6)
            found.append((Path(unescape(fields[4])), fields[dash + 1], set(fields[dash + 3].split(","))))
    return found


@functools.cache
def _cgroup1_roots() -> dict[str, Path]:
    roots: dict[str, Path] = {}
    for point, fstype, options in _mounts():
        for controller in ("pids", "memory"):
            if fstype == "cgroup" and controller in options:
                roots.setdefault(controller, point)
    return roots


@functools.cache
def _cgroup1_problem() -> str | None:
    """Why cgroup v1 containment cannot run here, or None."""
    if not running_as_root():
        return "needs root"
    roots = _cgroup1_roots()
    missing = [c for c in ("pids", "memory") if c not in roots]
    if missing:
        return f"no cgroup v1 {' or '.join(missing)} hierarchy is mounted"
    probe = roots["pids"] / f"{CGROUP_NAME}-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as error:
        return f"cannot create a cgroup in {roots['pids']} ({error.strerror})"
    return None


@dataclass(frozen=True)
class _Cgroup2Tree:
    base: Path | None  # <cgroup2 mount>/course-grader: an inner node, the submissions' cgroups below it
    controllers: frozenset[str]  # of CGROUP2_CONTROLLERS, those the submissions' cgroups get
    problem: str | None


@functools.cache
def _cgroup2_tree() -> _Cgroup2Tree:
    """Find the cgroup2 hierarchy, make this grader's subtree in it and delegate what controllers it can."""
    if not running_as_root():
        return _Cgroup2Tree(None, frozenset(), "needs root")
    mounts = [point for point, fstype, _ in _mounts() if fstype == "cgroup2"]
    if not mounts:
        return _Cgroup2Tree(None, frozenset(), "no cgroup2 hierarchy is mounted")
    top = mounts[0]
    base = top / CGROUP_NAME
    try:
        base.mkdir(exist_ok=True)
        probe = base / f"probe-{os.getpid()}"
        probe.mkdir()
        probe.rmdir()
    except OSError as error:
        return _Cgroup2Tree(None, frozenset(), f"cannot create a cgroup in {top} ({error.strerror})")
    for node in (top, base):  # delegate: each controller enabled for the children of both
        for controller in CGROUP2_CONTROLLERS:
            try:
                if controller not in (node / "cgroup.subtree_control").read_text().split():
                    (node / "cgroup.subtree_control").write_text(f"+{controller}")
            except OSError:
                pass  # not offered here (bound to v1), or `top` holds processes: reported below
    try:
        enabled = set((base / "cgroup.subtree_control").read_text().split())
    except OSError:
        enabled = set()
    return _Cgroup2Tree(base, frozenset(enabled & set(CGROUP2_CONTROLLERS)), None)


# The choice of containment.

@dataclass(frozen=True)
class Containment:
    mode: str  # cgroup2, cgroup1, uid, or none
    enforces: str
    missing: tuple[str, ...] = ()  # what this mode cannot enforce here: each a WARNING at the start and end

    @property
    def line(self) -> str:
        return f"containment: {self.mode} ({self.enforces})"


def _cgroup2() -> Containment | str:
    tree = _cgroup2_tree()
    if tree.problem:
        return tree.problem
    has = tree.controllers
    caps = [f"pids.max ({'enforced' if 'pids' in has else 'absent'})",
            f"memory.max and memory.swap.max ({'enforced' if 'memory' in has else 'absent'})"]
    missing = []
    if "pids" not in has:
        missing.append(f"cgroup2: the pids controller is not available to {tree.base} (bound to cgroup v1, or "
                       "not delegated): the process cap is the slot user's RLIMIT_NPROC only")
    if "memory" not in has:
        missing.append(f"cgroup2: the memory controller is not available to {tree.base}: no memory backstop "
                       "(each process's address space is capped, the submission as a whole is not)")
    return Containment("cgroup2", f"a fresh cgroup v2 per submission under {tree.base}, tracked and killed as one; "
                       + ", ".join(caps) + "; the slot's own user", tuple(missing))


def _cgroup1() -> Containment | str:
    problem = _cgroup1_problem()
    if problem:
        return problem
    return Containment("cgroup1", "a fresh pids and memory cgroup v1 per submission: pids.max, "
                       "memory.limit_in_bytes, every process in it killed at the end; the slot's own user")


def _uid() -> Containment | str:
    if not running_as_root():
        return "needs root"
    if not _can_switch_users():
        return f"an unprivileged user cannot run {sys.executable} here"
    return Containment("uid", "no cgroup: the slot's own uid for this run, RLIMIT_NPROC on it, everything it "
                       "owns killed at the end", (
                           "containment by user: no memory backstop across a submission's processes (RLIMIT_AS "
                           "caps each one), and processes are found by their uid, not by a cgroup",))


@functools.cache
def choose(requested: str = "auto") -> Containment:
    """The containment to grade with; SandboxError if `requested` cannot run here."""
    if requested not in CONTAINMENTS:
        raise SandboxError(f"unknown containment {requested!r}: choose one of {', '.join(CONTAINMENTS)}")
    if requested != "auto":
        found = {"cgroup2": _cgroup2, "cgroup1": _cgroup1, "uid": _uid}[requested]()
        if isinstance(found, str):
            raise SandboxError(f"--containment {requested} is not available on this machine: {found}")
        return found
    candidates = [c for c in (_cgroup2(), _cgroup1(), _uid()) if isinstance(c, Containment)]
    full = [c for c in candidates if c.mode != "uid" and not c.missing]
    if full or candidates:
        return (full or candidates)[0]
    why = "needs root" if not running_as_root() else "no usable cgroup, and kernels cannot run as a user of their own"
    return Containment("none", f"nothing: {why}", (
        f"no containment ({why}): the process cap and the memory backstop are not enforced, and a process a "
        "submission detaches can outlive its grading",))


def available_modes() -> list[str]:
    """The explicit containments this machine can run."""
    found = []
    for mode in CONTAINMENTS[1:]:
        try:
            choose(mode)
        except SandboxError:
            continue
        found.append(mode)
    return found


def isolation_warnings(requested: str = "auto") -> list[str]:
    """Mechanisms this machine lacks, said loudly rather than grading silently without them."""
    warnings = list(choose(requested).missing)
    if not running_as_root():
        warnings.append(
            "not running as root: submissions run as your own user, can read what you can (the solutions, the "
            "gradebook, other students' work) and can reach the network. Grade as root for the full sandbox"
        )
    elif not jail_available():
        warnings.append(
            "no mount/network/PID namespaces here: submissions can reach the network, see every process and read "
            "what the slot's user may read on this machine (other copies of the course, other students' work)"
        )
        if not _unprivileged_user_can_run_python():
            warnings.append(
                f"an unprivileged user cannot run {sys.executable}: submissions run as root. Install the "
                "environment somewhere world-readable (e.g. /opt) to grade as an unprivileged user"
            )
    return warnings


# One run's containment, and one submission's.

def _lock_folder() -> Path:
    """A folder for the uid locks that only root can write to."""
    for folder in LOCK_FOLDERS:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = os.lstat(folder)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == 0 and not info.st_mode & 0o022:
            return folder
    raise SandboxError(f"no folder for the slot users' locks: none of {', '.join(map(str, LOCK_FOLDERS))} is a "
                       "folder only root can write to")


def _has_account(uid: int) -> bool:
    """Does this id belong to someone on this machine (a user or a group), so that it is not ours to use?"""
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
            return True
        except KeyError:
            pass
    return False


class SlotUsers:
    """The uids of one run's slots, each held with a lock file until `release`."""

    def __init__(self, count: int):
        self.uids: list[int] = []
        self._locks: list[int] = []
        folder = _lock_folder()
        for uid in range(FIRST_SLOT_UID, LAST_SLOT_UID + 1):
            if len(self.uids) == count:
                break
            if _has_account(uid):
                continue
            fd = os.open(folder / f"uid-{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # another run's
                continue
            kill_everything(-1, uid)  # whatever a run that crashed while holding this uid left running
            self.uids.append(uid)
            self._locks.append(fd)
        if len(self.uids) < count:
            self.release()
            raise SandboxError(f"only {len(self.uids)} of the {count} slot users this run needs are free in "
                               f"{FIRST_SLOT_UID}-{LAST_SLOT_UID}: other grading runs hold the rest")

    def release(self) -> None:
        for fd in self._locks:
            os.close(fd)  # closing the last descriptor releases the flock
        self._locks = []


class _Cgroup:
    """One submission's cgroup, in one or more hierarchies."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        for path in paths:
            path.mkdir()

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
        for _ in range(250):
            members = self.members()
            if not members:
                return
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    def remove(self) -> bool:
        """Remove the cgroup; False if some part of it could not be removed (yet)."""
        removed = True
        for path in self.paths:
            for _ in range(20):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)  # a killed process still leaving
            else:
                removed = False
        return removed


class Cgroup1(_Cgroup):
    def __init__(self, name: str, limits: Limits):
        roots = _cgroup1_roots()
        super().__init__([roots["pids"] / name, roots["memory"] / name])
        (self.paths[0] / "pids.max").write_text(str(limits.max_processes))
        (self.paths[1] / "memory.limit_in_bytes").write_text(str(limits.cgroup_memory_bytes))


class Cgroup2(_Cgroup):
    def __init__(self, name: str, limits: Limits):
        tree = _cgroup2_tree()
        super().__init__([tree.base / name])
        path = self.paths[0]
        if "pids" in tree.controllers:
            (path / "pids.max").write_text(str(limits.max_processes))
        if "memory" in tree.controllers:
            (path / "memory.max").write_text(str(limits.cgroup_memory_bytes))
            if (path / "memory.swap.max").exists():  # absent when the kernel has no swap accounting
                (path / "memory.swap.max").write_text("0")

    def kill_all(self) -> None:
        kill = self.paths[0] / "cgroup.kill"
        if kill.exists():  # Linux 5.14+: every process in it, at once, however fast it forks
            try:
                kill.write_text("1")
            except OSError:
                pass
        super().kill_all()  # waits until they are gone (and kills any the write missed)


class Box:
    """One submission's containment: a fresh cgroup if the mode has one, and the slot's user of this run."""

    def __init__(self, uid: int | None, cgroup: _Cgroup | None, unremoved: list[_Cgroup] | None = None):
        self.uid = self.gid = uid
        self.cgroup = cgroup
        self._unremoved = unremoved if unremoved is not None else []

    @property
    def procs_files(self) -> list[str]:
        """cgroup.procs files the kernel writes its pid to, joining the cgroup before any student code."""
        return self.cgroup.procs_files if self.cgroup else []

    def kill(self, driver: int = -1) -> None:
        """Kill everything the submission started: its cgroup, its user's processes, and `driver`'s tree."""
        if self.cgroup:
            self.cgroup.kill_all()
        kill_everything(driver, self.uid)

    def close(self) -> None:
        """Kill everything and remove the cgroup (or leave it to the run's end if it is not empty yet)."""
        self.kill()
        if self.cgroup and not self.cgroup.remove():
            self._unremoved.append(self.cgroup)


class Sandbox:
    """One grading run's containment: slot users of its own, and a fresh Box per submission."""

    def __init__(self, requested: str, slots: int, limits: Limits):
        self.containment = choose(requested)
        self.limits = limits
        self._run = f"{os.getpid()}-{secrets.token_hex(3)}"
        self._count = itertools.count()
        self._users = SlotUsers(slots) if self.containment.mode != "none" and _can_switch_users() else None
        self._unremoved: list[_Cgroup] = []

    @property
    def uids(self) -> list[int]:
        return self._users.uids if self._users else []

    def submission(self, slot: int) -> Box:
        name = f"{CGROUP_NAME}-{self._run}-{slot}-{next(self._count)}"
        kind = {"cgroup1": Cgroup1, "cgroup2": Cgroup2}.get(self.containment.mode)
        return Box(self._users.uids[slot] if self._users else None, kind(name, self.limits) if kind else None,
                   self._unremoved)

    def close(self) -> None:
        for cgroup in self._unremoved:
            cgroup.kill_all()
            cgroup.remove()
        if self._users:
            for uid in self._users.uids:
                kill_everything(-1, uid)
            self._users.release()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
    """Kill `root_pid`'s process group and descendants and everything `uid` owns; repeat until nothing is left.

    Only ever called with a uid this run holds (a slot user), never a uid another run or a person uses."""
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
