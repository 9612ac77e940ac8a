"""Containment and isolation, beyond the red-team class: does each containment mode track, cap and kill what a
submission starts; do concurrent grading runs keep to their own slot users; and can a kernel see anything of
the host besides its allowlist? (The attacks graded per containment mode are in test_red_team.py.)"""

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from mutant_bank.grading import submission

from grader import cli, course, notebooks
from grader.autograde import intake, report, run, sandbox

ASSIGNMENT = "01_tensors"
RIGHT_GRID = ("def make_grid(n_rows, n_cols):\n"
              "    return torch.arange(n_rows * n_cols, dtype=torch.float32).reshape(n_rows, n_cols)")
BROKEN_GRID = "def make_grid(n_rows, n_cols):\n    raise RuntimeError('the attack failed')"
LIMITS = sandbox.Limits(cell_timeout_s=60, notebook_timeout_s=90, max_submission_bytes=2 * 2**20)
CGROUP_MODES = ("cgroup2", "cgroup1")

needs_root = pytest.mark.skipif(not sandbox.running_as_root(), reason="needs root (slot users, cgroups, namespaces)")


def _only_if(attack: str) -> str:
    """Student code that defines a correct make_grid only if `attack` (statements) succeeds."""
    indent = lambda code: "\n".join("    " + line for line in code.splitlines())  # noqa: E731
    return f"try:\n{indent(attack)}\n{indent(RIGHT_GRID)}\nexcept Exception:\n{indent(BROKEN_GRID)}"


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (OSError, IndexError):
        return False


def _wait_for(condition, seconds: float, what: str):
    deadline = time.time() + seconds
    while time.time() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# The choice of containment.

def test_auto_picks_the_strongest_containment_and_explicit_ones_fail_loudly():
    """Does `auto` pick the strongest mode this machine has, and is an unavailable mode refused with its reason?"""
    available = sandbox.available_modes()
    auto = sandbox.choose("auto")
    if not sandbox.running_as_root():
        assert auto.mode == "none" and auto.missing and available == []
        with pytest.raises(sandbox.SandboxError, match="needs root"):
            sandbox.choose("uid")
        return
    full = [m for m in ("cgroup2", "cgroup1") if m in available and not sandbox.choose(m).missing]
    assert auto.mode == (full or available)[0], (auto, available)
    assert auto.mode in auto.line
    with pytest.raises(sandbox.SandboxError, match="unknown containment"):
        sandbox.choose("chroot")


def test_cgroup2_reports_the_controllers_it_lacks_instead_of_faking_them():
    """Where the cgroup2 tree lacks the pids or memory controller, is that said and no limit file written?"""
    if "cgroup2" not in sandbox.available_modes():
        pytest.skip("no writable cgroup2 hierarchy here")
    tree = sandbox._cgroup2_tree()
    missing = sandbox.choose("cgroup2").missing
    for controller in ("pids", "memory"):
        assert (controller in tree.controllers) != any(f"the {controller} controller" in m for m in missing), missing
    with sandbox.Sandbox("cgroup2", 1, sandbox.Limits(max_processes=33)) as run_sandbox:
        box = run_sandbox.submission(0)
        try:
            leaf = Path(box.procs_files[0]).parent
            assert leaf.parent == tree.base
            assert (leaf / "pids.max").exists() == ("pids" in tree.controllers)
            if "pids" in tree.controllers:
                assert (leaf / "pids.max").read_text().strip() == "33"
            if "memory" in tree.controllers:
                assert (leaf / "memory.max").read_text().strip() == str(sandbox.Limits().cgroup_memory_bytes)
        finally:
            box.close()
    assert not leaf.exists(), "the submission's cgroup was not removed"


def test_the_command_says_which_containment_at_the_start_and_the_end(tmp_path, monkeypatch, capsys):
    """Does `python -m grader autograde` name the containment before and after grading, and pass it on?"""
    subs = tmp_path / "subs"
    notebooks.write(submission(ASSIGNMENT, {}), subs / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    seen = {}

    def fake_autograde_class(submissions, out, **kwargs):
        seen.update(kwargs)
        print("GRADING")
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / intake.INTAKE_CSV).write_text("path,student_id,assignment,outcome,reason\n")
        return report.Graded([], report.Timing(0, 0.0, []))

    monkeypatch.setattr(run, "autograde_class", fake_autograde_class)
    assert cli.main(["autograde", str(subs), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    line = sandbox.choose("auto").line
    before, _, after = printed.partition("GRADING")
    assert line in before and line in after, printed
    assert seen["containment"] == "auto"

    monkeypatch.setattr(sandbox, "choose", lambda requested: (_ for _ in ()).throw(
        sandbox.SandboxError(f"--containment {requested} is not available on this machine: test")))
    assert cli.main(["autograde", str(subs), "--out", str(tmp_path / "out"), "--containment", "cgroup2"]) == 2
    assert "error: --containment cgroup2 is not available" in capsys.readouterr().out


# Each cgroup mode tracks, caps and kills by itself.

DAEMON_AND_BOMB = """
import os, sys, time
for procs in sys.argv[1:]:
    open(procs, "w").write(str(os.getpid()))
if os.fork() == 0:  # a daemon: detached twice over, its parents gone
    os.setsid()
    if os.fork() == 0:
        for _ in range(40):  # and a small fork bomb under it
            try:
                if os.fork() == 0:
                    time.sleep(300)
                    os._exit(0)
            except OSError:
                break
        time.sleep(300)
    os._exit(0)
os._exit(0)
"""


@needs_root
@pytest.mark.parametrize("mode", CGROUP_MODES)
def test_a_cgroup_alone_finds_and_kills_a_detached_daemon_and_its_fork_bomb(mode):
    """Does the submission's cgroup (cgroup.kill on v2, a kill loop on v1) end processes that left every
    process group and parent, with no help from the uid sweep (they run as root here)?"""
    if mode not in sandbox.available_modes():
        pytest.skip(f"--containment {mode} is not available here")
    with sandbox.Sandbox(mode, 1, sandbox.Limits()) as run_sandbox:
        box = run_sandbox.submission(0)
        try:
            subprocess.run([sys.executable, "-c", DAEMON_AND_BOMB, *box.procs_files], check=True, timeout=60)
            members = _wait_for(lambda: len(box.cgroup.members()) >= 41 and box.cgroup.members(), 30,
                                "the daemon and its 40 children")
            assert all(_alive(pid) for pid in members)
            box.cgroup.kill_all()
            assert not [pid for pid in members if _alive(pid)], "a process of the cgroup survived its kill"
        finally:
            for pid in box.cgroup.members():
                os.kill(pid, signal.SIGKILL)
            box.close()


BOMB = """
import os, sys, time
for procs in sys.argv[1:]:
    open(procs, "w").write(str(os.getpid()))
children = 0
for _ in range(200):
    try:
        if os.fork() == 0:
            os.closerange(1, 3)  # the test reads the parent's output to its end
            time.sleep(300)
            os._exit(0)
        children += 1
    except OSError:
        break
print(children)
"""


@needs_root
@pytest.mark.parametrize("mode", CGROUP_MODES)
def test_a_cgroup_caps_a_fork_bomb_and_its_memory(mode):
    """Does the submission's cgroup cap its processes (pids.max) and its memory (the backstop kills a process
    that outgrows it), where this machine's hierarchy has the controllers?"""
    if mode not in sandbox.available_modes():
        pytest.skip(f"--containment {mode} is not available here")
    if mode == "cgroup2" and sandbox._cgroup2_tree().controllers != {"pids", "memory"}:
        pytest.skip("the cgroup2 tree here has no pids or memory controller (reported at the start of every run)")
    limits = sandbox.Limits(max_processes=20, memory_bytes=64 * 2**20)
    with sandbox.Sandbox(mode, 1, limits) as run_sandbox:
        box = run_sandbox.submission(0)
        try:
            done = subprocess.run([sys.executable, "-c", BOMB, *box.procs_files], capture_output=True, text=True,
                                  timeout=60)
            assert int(done.stdout) < 20, done.stdout
            assert len(box.cgroup.members()) < 20
            box.cgroup.kill_all()
            hog = ("import os, sys\nfor procs in sys.argv[1:]:\n    open(procs, 'w').write(str(os.getpid()))\n"
                   f"hog = b'x' * {limits.cgroup_memory_bytes + 256 * 2**20}\nprint('survived')")
            done = subprocess.run([sys.executable, "-c", hog, *box.procs_files], capture_output=True, text=True,
                                  timeout=60)
            assert done.returncode == -signal.SIGKILL and "survived" not in done.stdout, (done.returncode, done.stderr)
        finally:
            box.close()


# Slot users belong to one run.

@needs_root
def test_concurrent_runs_never_share_a_slot_user():
    """Do two runs, in this process and in another, get disjoint slot users, and a run that crashed give its uids
    back with whatever it left running killed?"""
    if not sandbox._can_switch_users():
        pytest.skip("kernels cannot run as an unprivileged user here")
    holder = ("import sys, time\nfrom grader.autograde import sandbox\n"
              "box = sandbox.Sandbox('uid', 2, sandbox.Limits())\nprint(*box.uids, flush=True)\ntime.sleep(300)")
    other = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        theirs = [int(uid) for uid in other.stdout.readline().split()]
        limits = sandbox.Limits()
        with sandbox.Sandbox("uid", 2, limits) as first, sandbox.Sandbox("uid", 1, limits) as second:
            ours = first.uids + second.uids
            assert len(set(ours)) == 3 and not set(ours) & set(theirs), (ours, theirs)
            assert all(sandbox.FIRST_SLOT_UID <= uid <= sandbox.LAST_SLOT_UID for uid in ours + theirs)
        # The other run crashes while a process of its slot user still runs.
        leftover = subprocess.Popen(["sleep", "300"], user=theirs[0], group=theirs[0], extra_groups=[])
        other.kill()
        other.wait()
        # Every free uid up to theirs (other runs on this machine may hold some), theirs included.
        with sandbox.Sandbox("uid", theirs[0] - sandbox.FIRST_SLOT_UID + 1, sandbox.Limits()) as later:
            assert theirs[0] in later.uids, (later.uids, theirs)
            assert leftover.wait(timeout=10) == -signal.SIGKILL, "what the crashed run left was not killed"
    finally:
        other.kill()


@needs_root
def test_a_runs_user_sweep_spares_a_concurrent_run():
    """Is a process of another run's slot user untouched when a run kills everything its own slot user owns?"""
    if not sandbox._can_switch_users():
        pytest.skip("kernels cannot run as an unprivileged user here")
    with sandbox.Sandbox("uid", 1, sandbox.Limits()) as one, sandbox.Sandbox("uid", 1, sandbox.Limits()) as two:
        mine = subprocess.Popen(["sleep", "300"], user=one.uids[0], group=one.uids[0], extra_groups=[])
        theirs = subprocess.Popen(["sleep", "300"], user=two.uids[0], group=two.uids[0], extra_groups=[])
        try:
            one.submission(0).close()
            assert mine.wait(timeout=10) == -signal.SIGKILL
            assert theirs.poll() is None, "one run's uid sweep killed another run's process"
        finally:
            theirs.kill()
            theirs.wait()


@needs_root
@pytest.mark.notebook
def test_a_student_cannot_reach_a_concurrent_runs_kernel(tmp_path):
    """While another grading run on this machine grades a classmate, can a student of this run kill that run's
    kernel or read its notebook (same slot number, both runs using the slot's user)?"""
    if not sandbox.jail_available():
        pytest.skip("needs root and namespaces")
    token = uuid.uuid4().hex[:12]
    victim = submission(ASSIGNMENT, {})
    victim.cells.insert(0, nbformat.v4.new_code_cell(  # runs until this test says the attacker is done
        f"import os, time\nopen('started-{token}', 'w').close()\ndeadline = time.time() + 45\n"
        f"while time.time() < deadline and not os.path.exists('done-{token}'):\n    time.sleep(0.2)"))
    notebooks.write(victim, tmp_path / "b" / "victim" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    attack = (
        "import glob, os, time\nfound = []\ndeadline = time.time() + 15\n"
        "while time.time() < deadline and not found:\n"
        "    for entry in glob.glob('/proc/[0-9]*'):\n"
        "        try:\n"
        "            uid = int(open(entry + '/status').read().split('Uid:')[1].split()[0])\n"
        "        except (OSError, IndexError, ValueError):\n            continue\n"
        "        if uid == os.getuid() and int(entry[6:]) != os.getpid():\n"
        "            os.kill(int(entry[6:]), 9)\n            found.append(entry)\n"
        "    for path in glob.glob('/tmp/grading-*/work/*.ipynb'):\n"
        "        if not path.startswith(os.getcwd()) and open(path).read():\n            found.append(path)\n"
        "    time.sleep(0.2)\n"
        "assert found")
    notebooks.write(submission(ASSIGNMENT, {"make_grid": _only_if(attack)}),
                    tmp_path / "a" / "attacker" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    other_run = subprocess.Popen(
        [sys.executable, "-m", "grader", "autograde", str(tmp_path / "b"), "--out", str(tmp_path / "b_out"),
         "--workers", "1", "--assignment", ASSIGNMENT, "--db", f"sqlite:///{tmp_path}/b.db",
         "--autograded", str(tmp_path / "b_autograded"), "--containment", "uid"],
        cwd=course.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        started = _wait_for(lambda: glob.glob(f"{tempfile.gettempdir()}/grading-*/work/started-{token}"), 180,
                            "the other run's kernel")
        rows = run.autograde_class(tmp_path / "a", tmp_path / "a_out", workers=1, assignments=[ASSIGNMENT],
                                   limits=LIMITS, db_url=f"sqlite:///{tmp_path}/a.db",
                                   autograded=tmp_path / "a_autograded", progress=False, containment="uid")
        try:
            Path(started[0]).with_name(f"done-{token}").touch()
        except FileNotFoundError:
            pass  # its grading is over already: the attacker ended it
        output, _ = other_run.communicate(timeout=240)
    finally:
        other_run.kill()
    attacker = rows[0]
    assert (attacker.score, attacker.status) == (8, "ok"), f"the attacker reached the other run: {attacker}"
    theirs = report.read_rows(tmp_path / "b_out" / report.GRADES_CSV)[("victim", ASSIGNMENT)]
    assert (theirs.score, theirs.status) == (10, "ok"), f"the other run's student was harmed: {theirs}\n{output}"


# The kernel sees nothing of the host but its allowlist.

def _plant_places(token: str) -> dict[str, tuple[Path, str]]:
    """Where a copy of the course may lie on a grading machine: (folder to plant `solutions/` in, the folder a
    student's code would search, as Python source)."""
    return {
        "tmp": (Path("/tmp") / f"course-copy-{token}", "'/tmp'"),
        "job_folders_parent": (Path(tempfile.gettempdir()), "os.path.dirname(os.path.dirname(os.getcwd()))"),
        "srv": (Path("/srv") / f"course-{token}", "'/srv'"),
        "opt": (Path("/opt") / f"course-{token}", "'/opt'"),
        "someones_home": (Path("/home") / f"ta-{token}" / "last-term", "'/home'"),
        "var_tmp": (Path("/var/tmp") / f"course-{token}", "'/var/tmp'"),
        "mnt": (Path("/mnt") / f"share-{token}", "'/mnt'"),
        "next_to_this_checkout": (course.ROOT.parent / f"checkout-{token}",
                                  f"{str(course.ROOT.parent)!r}"),
    }


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Fake solutions, with a marker, planted world-readable around the machine; one attacker per place."""
    if not sandbox.jail_available():
        pytest.skip("needs root and mount namespaces")
    root = tmp_path_factory.mktemp("planted")
    token = uuid.uuid4().hex[:10]
    marker = f"PLANTED-{token}"
    places = _plant_places(token)
    created = []
    try:
        for folder, _ in places.values():
            target = folder / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
            if target.exists():
                pytest.skip(f"{target} exists already: not ours to replace")
            top = next(p for p in [*reversed(target.parents), target] if not p.exists())
            target.parent.mkdir(parents=True, mode=0o755)
            target.write_text(f'{{"cells": [], "note": "{marker}"}}')
            for path in [top, *top.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            created.append(top)
        hand_in = lambda student, answers: notebooks.write(  # noqa: E731
            submission(ASSIGNMENT, answers), root / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
        hand_in("alice", {})
        for place, (_, searched) in places.items():
            search = (f"import glob, os\nroot = {searched}\nmarker = 'PLANTED' + '-' + {token!r}\n"
                      "hits = [p for depth in range(3) for p in glob.glob(os.path.join(root, *['*'] * depth, "
                      "'solutions', '*', '*.ipynb'))]\n"
                      "assert any(marker in open(p).read() for p in hits)")
            hand_in(f"reads_solutions_in_{place}", {"make_grid": _only_if(search)})
        rows = run.autograde_class(root / "submitted", root / "out", workers=2, assignments=[ASSIGNMENT],
                                   limits=LIMITS, db_url=f"sqlite:///{root}/gradebook.db",
                                   autograded=root / "autograded", progress=False)
    finally:
        for top in created:
            if top.is_dir():
                shutil.rmtree(top)
            else:
                top.unlink()
    return {r.student_id: r for r in rows}


@needs_root
@pytest.mark.notebook
@pytest.mark.parametrize("place", list(_plant_places("x")))
def test_no_kernel_reads_a_copy_of_the_course_elsewhere(planted, place):
    """Can a student's code find another copy of the solutions anywhere world-readable on the grading machine?"""
    row = planted[f"reads_solutions_in_{place}"]
    assert (row.score, row.status) == (8, "ok"), f"a kernel read the solutions planted in {place}: {row}"
    assert (planted["alice"].score, planted["alice"].status) == (10, "ok"), planted["alice"]
