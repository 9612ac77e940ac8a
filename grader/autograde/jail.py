"""A kernel's whole view of the machine: built from an allowlist, with no network and no one else's processes.

The driver forks the kernel into a PID namespace of its own (`fork_into_new_pid_namespace`): the kernel is its
PID 1, sees no other process, and when it ends Linux kills everything left in the namespace.
The kernel, still root, then calls `enter`: new mount, network, IPC and UTS namespaces, and a root file
system that starts empty. A fresh tmpfs is mounted over the kernel's own folder (any folder would do: the mount
exists only in this namespace) and only these are put in it, each at the path it has on the host:

  /usr, /bin, /sbin, /lib*                  the system's programs and libraries, read-only
  a few entries of /etc (ETC)               the loader's cache, users and groups, time zone, fonts, certificates
  the Python environment                    sys.prefix and sys.base_prefix (as named and as resolved), read-only;
                                            the folders above them are empty tmpfs folders
  the kernel's working folder               read-write (its connection file and sockets are there)
  /tmp and /dev/shm                         private, empty, size-capped tmpfs
  /dev                                      null, zero, full, random, urandom and the /proc/self/fd links
  /proc                                     a fresh procfs of the kernel's PID namespace: its own processes only

Then it pivots into that root and detaches the host's, so nothing else of the host (other homes, other
checkouts and last term's course, /srv, /opt, /mnt, /var, the grading folder's parent, the driver's files)
exists for it, whatever its permissions. pivot_root, not chroot: the host's tree is unmounted from the
namespace, not merely out of reach of a path. A fresh tmpfs with binds, not an overlay or a copy: nothing on
the host is written, and a folder not on the list cannot show up by accident, as it could with a denylist.
Everything is nosuid and nodev (the device files excepted), and the kernel then sets no_new_privs and gives up
root: a root process could undo namespaces, an unprivileged one cannot.

The paths the grader hides from kernels (the course, the hand-ins, the output, the gradebook) are checked after
the pivot all the same: a kernel that can see one of them does not start (fail closed).
"""

import ctypes
import os
import platform
import shutil
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 0x40000
MS_REC = 0x4000
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS = 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "ppc64": 203, "s390x": 217,
                  "i686": 217, "armv7l": 218}

SYSTEM = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
ETC = ("passwd", "group", "nsswitch.conf", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone",
       "hosts", "host.conf", "fonts", "ssl", "ca-certificates", "mime.types", "os-release", "alternatives")
DEVICES = ("null", "zero", "full", "random", "urandom")
SCRATCH_BYTES = 512 * 2**20  # each of /tmp and /dev/shm
READ_ONLY = MS_RDONLY | MS_NOSUID | MS_NODEV


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _call(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _bytes(value: str | None) -> bytes | None:
    return value.encode() if value is not None else None


def _mount(source: str | None, target: str | Path, fstype: str | None, flags: int, data: str | None = None) -> None:
    result = _libc().mount(_bytes(source), _bytes(str(target)), _bytes(fstype), flags, _bytes(data))
    _call(result, f"mount {target}")


def environment_paths() -> list[Path]:
    """What the kernel must still read: the Python installation and its packages, as named and as resolved."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return sorted({Path(os.path.abspath(p)) for p in prefixes} | {Path(p).resolve() for p in prefixes})


def allowlist() -> list[Path]:
    """Every host path a kernel sees, read-only (besides its own folder and its private scratch space)."""
    return [Path("/", name) for name in SYSTEM] + [Path("/etc", name) for name in ETC] + environment_paths()


def fork_into_new_pid_namespace() -> int:
    """os.fork(), the child being PID 1 of a PID namespace of its own (in the driver, for its kernel).

    Linux refuses to start a thread in a process whose children go to another PID namespace, so the parent
    returns to its own right after the fork (setns into one's own namespace is always allowed)."""
    libc = _libc()
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _call(libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
        pid = os.fork()
        if pid == 0:
            return 0
        _call(libc.setns(own, CLONE_NEWPID), "setns to its own PID namespace")
        return pid
    finally:
        os.close(own)


def _make_way(root: Path, path: Path) -> Path | None:
    """Create `path`'s folders under `root` (root-owned, 0755), never through a link; None if one is a link."""
    target = root
    for part in path.relative_to("/").parts:
        target = target / part
        if os.path.islink(target):
            return None
        if not os.path.lexists(target):
            os.mkdir(target, 0o755)
    return target


def _carry(source: Path, root: Path, carried: list[Path]) -> None:
    """Show the host's `source` at the same path under `root`: a link as a link, anything else bound read-only."""
    if not os.path.lexists(source) or any(source.is_relative_to(c) for c in carried):
        return
    parent = _make_way(root, source.parent)
    if parent is None:
        return  # reached through a link the jail already has: its target is carried on its own
    target = parent / source.name
    if os.path.lexists(target):
        return
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    else:
        if source.is_dir():
            os.mkdir(target, 0o755)
        else:
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        _mount(str(source), target, None, MS_BIND)
        _mount(None, target, None, MS_REMOUNT | MS_BIND | READ_ONLY)
    carried.append(source)


def _build(root: Path, workdir: Path, held: int, scratch_bytes: int) -> None:
    """Fill the empty tmpfs at `root` with what a kernel may see. `held` is the working folder, opened before
    `root` covered it."""
    scratch = f"size={scratch_bytes},mode=1777"
    os.mkdir(root / "tmp", 0o755)
    _mount("tmpfs", root / "tmp", "tmpfs", MS_NOSUID | MS_NODEV, scratch)
    os.mkdir(root / "dev", 0o755)
    _mount("tmpfs", root / "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755")
    for device in DEVICES:
        os.close(os.open(root / "dev" / device, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        _mount(f"/dev/{device}", root / "dev" / device, None, MS_BIND)
    for name, target in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")]:
        os.symlink(target, root / "dev" / name)
    os.mkdir(root / "dev" / "shm", 0o755)
    _mount("tmpfs", root / "dev" / "shm", "tmpfs", MS_NOSUID | MS_NODEV, scratch)
    os.mkdir(root / "proc", 0o755)
    _mount("proc", root / "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)

    own = _make_way(root, workdir)
    if own is None:
        raise OSError(f"the working folder {workdir} lies behind a link")
    _mount(f"/proc/self/fd/{held}", own, None, MS_BIND)
    _mount(None, own, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV)
    carried: list[Path] = []
    for path in allowlist():
        _carry(path, root, carried)


def enter(workdir: Path, hidden: list[str] = (), scratch_bytes: int = SCRATCH_BYTES) -> None:
    """Make this process's file system the allowlist, with no network; keep `workdir` writable."""
    workdir = Path(os.path.abspath(workdir))
    if any(workdir.is_relative_to(path) for path in allowlist()):
        raise OSError(f"the working folder {workdir} lies inside a folder the jail shares read-only")
    libc = _libc()
    _call(libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # what follows stays inside this namespace
    libc.sethostname(b"grading", 7)
    held = os.open(workdir, os.O_PATH | os.O_DIRECTORY)
    root = workdir  # the new root is mounted over the working folder's path, seen only in this namespace
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755")
    _build(root, workdir, held, scratch_bytes)
    os.close(held)
    os.chdir(root)
    _call(libc.syscall(SYS_PIVOT_ROOT[platform.machine()], b".", b"."), "pivot_root")
    _call(libc.umount2(b".", MNT_DETACH), "detach the host's root")  # stacked on the new one by pivot_root
    os.chdir("/")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | READ_ONLY)
    leaks = visible(hidden)
    if leaks:  # not an assert: `python -O` would remove it
        raise OSError(f"the jail still shows {leaks[:3]}")


def visible(hidden: list[str]) -> list[str]:
    """What this process can still see of `hidden`, other than the way down to the Python environment."""
    envs = environment_paths()
    shown = []
    for path in map(Path, hidden):
        if not os.path.lexists(path):
            continue
        if not path.is_dir() or path.is_symlink():
            shown.append(str(path))
            continue
        shown += [str(path / name) for name in os.listdir(path)
                  if not any(env.is_relative_to(path / name) for env in envs)]
    return shown


def drop_to(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def forbid_new_privileges() -> None:
    """No setuid program or file capability can give this process or its children more than it has."""
    _call(_libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def _probe(hidden: str, uid: int) -> None:
    """Run in a throwaway process: jail a child as the driver does, drop root, import and look as a kernel would."""
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="jail-probe-")) / "work"
    workdir.mkdir()
    os.chown(workdir, uid, uid)
    pid = fork_into_new_pid_namespace()
    if pid == 0:
        status = 1
        try:
            enter(workdir, [hidden])
            drop_to(uid, uid)
            forbid_new_privileges()
            import sklearn.linear_model  # noqa: F401 -- a lazy import from the environment still works
            import torch  # noqa: F401

            problems = visible([hidden])
            if os.getpid() != 1:
                problems.append("no PID namespace")
            if os.listdir(workdir.parent) != [workdir.name]:
                problems.append(f"{workdir.parent} shows {os.listdir(workdir.parent)[:3]}")
            if problems:  # not an assert: `python -O` would remove it and every probe would pass
                raise SystemExit(f"the jail still shows {problems[:3]}")
            status = 0
        except BaseException as error:  # noqa: BLE001 -- any failure means no jail
            print(f"jail probe: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    shutil.rmtree(workdir.parent, ignore_errors=True)
    raise SystemExit(os.waitstatus_to_exitcode(status))


_probes: dict[tuple[str, int], Future] = {}
_probes_lock = threading.Lock()


def works_soon(hidden: str, uid: int) -> Future:
    """Start probing (once per process) whether kernels can be jailed and run as `uid` here: the probe imports
    torch in a jail, seconds that the caller can spend on other work. `works` waits for the answer."""
    with _probes_lock:
        if (hidden, uid) not in _probes:
            answer = _probes[hidden, uid] = Future()

            def probe() -> None:
                try:
                    answer.set_result(_works(hidden, uid))
                except BaseException:  # noqa: BLE001 -- a probe that fails says no jail, as one that runs and fails
                    answer.set_result(False)

            threading.Thread(target=probe, name="jail-probe", daemon=True).start()
        return _probes[hidden, uid]


def works(hidden: str, uid: int) -> bool:
    """Can kernels be jailed and run as `uid` on this machine? (Needs root; checked once.)"""
    return works_soon(hidden, uid).result()


def _works(hidden: str, uid: int) -> bool:
    if os.geteuid() != 0 or platform.machine() not in SYS_PIVOT_ROOT:
        return False
    code = f"from grader.autograde import jail; jail._probe({hidden!r}, {uid})"
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0
