"""A kernel's private view of the machine: no network, and none of the course's secrets.

Run in the forked kernel while it is still root, just before it drops to the slot's user. It
enters new mount and network namespaces (so nothing it does is seen outside), covers every
hidden folder with an empty read-only tmpfs and every hidden file with /dev/null, and puts the
Python environment back where a covered folder (the repository holding `.venv`, or a home folder
only root may enter) would have hidden it. A root process could undo all of this, which is why
the kernel then gives up root.
"""

import ctypes
import os
import stat
import subprocess
import sys
from functools import cache
from pathlib import Path

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 0x4000, 0x40000


def _call(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _bytes(value: str | None) -> bytes | None:
    return value.encode() if value is not None else None


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.mount(_bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data))
    _call(result, f"mount {target}")


def environment_paths() -> list[Path]:
    """What the kernel must still read: the Python installation and its packages."""
    return sorted({Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()})


def _closed_ancestors(path: Path) -> list[Path]:
    """Folders above `path` that other users may not enter (such as /root)."""
    return [p for p in path.parents if p != Path("/") and not os.stat(p).st_mode & stat.S_IXOTH]


def enter(hidden: list[str], workdir: Path) -> None:
    """Hide `hidden` (folders and files) from this process and its children; keep `workdir`."""
    libc = ctypes.CDLL(None, use_errno=True)
    _call(libc.unshare(CLONE_NEWNS | CLONE_NEWNET), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # what follows stays inside this namespace
    keep = environment_paths()
    covers = {Path(p).resolve() for p in hidden if Path(p).is_dir()}
    covers |= {a for path in keep for a in _closed_ancestors(path)}
    covers = {c for c in covers if not workdir.is_relative_to(c)}
    covers = sorted(c for c in covers if not any(c != o and c.is_relative_to(o) for o in covers))
    stash = workdir / ".environment"
    stashed = []
    for index, path in enumerate(keep):
        if any(path.is_relative_to(c) for c in covers):
            (stash / str(index)).mkdir(parents=True)
            _mount(str(path), str(stash / str(index)), None, MS_BIND | MS_REC)
            stashed.append((path, stash / str(index)))
    for cover in covers:
        _mount("none", str(cover), "tmpfs", 0, "size=1m,mode=0711")
    for path, held in stashed:
        path.mkdir(parents=True, exist_ok=True)
        _mount(str(held), str(path), None, MS_BIND | MS_REC)
        _mount(None, str(path), None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    for cover in covers:
        _mount(None, str(cover), None, MS_REMOUNT | MS_RDONLY)
    for path in (Path(p) for p in hidden):
        if path.is_file():
            _mount("/dev/null", str(path), None, MS_BIND)


def drop_to(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def _probe(hidden: str, uid: int) -> None:
    """Run in a throwaway process: jail, drop root, then import and read as a kernel would."""
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="jail-probe-"))
    os.chown(workdir, uid, uid)
    enter([hidden], workdir)
    drop_to(uid, uid)
    import sklearn.linear_model  # noqa: F401 -- a lazy import from the environment still works
    import torch  # noqa: F401

    try:
        visible = os.listdir(hidden)
    except PermissionError:
        visible = []
    # Only the way down to the Python environment may show (a venv inside the course folder).
    envs = environment_paths()
    leaks = [name for name in visible if not any(env.is_relative_to(Path(hidden) / name) for env in envs)]
    if leaks:  # not an assert: `python -O` would remove it and every probe would pass
        raise SystemExit(f"the hidden folder still shows {leaks[:3]}")


@cache
def works(hidden: str, uid: int) -> bool:
    """Can kernels be jailed and run as `uid` on this machine? (Needs root; checked once.)"""
    if os.geteuid() != 0:
        return False
    code = f"from grader.autograde import jail; jail._probe({hidden!r}, {uid})"
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0
