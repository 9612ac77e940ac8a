"""The red-team suite: submissions that try to earn points they did not solve, or to reach
anything outside their own grading. Every attack is graded through the real engine
(`python -m grader autograde`'s `run.autograde_class`) in one class with honest students, and
must earn exactly what its honest part earns while every classmate's grade stays as it should.

Most attackers solve nothing of 01_tensors (WRONG: every function wrong, worth 0 of 10) and then
cheat. The escape attempts instead define a correct `make_grid` only if the attack succeeds
(`_only_if`): a blocked attack leaves them 8 of 10.
"""

import ctypes
import dataclasses
import hashlib
import json
import os
import socket
import time
from pathlib import Path

import nbformat
import pytest
from mutant_bank.grading import submission
from nbgrader.api import Gradebook

from grader import course, notebooks
from grader.autograde import run, sandbox
from grader.observation import MIME

ASSIGNMENT = "01_tensors"
LIMITS = sandbox.Limits(cell_timeout_s=8, notebook_timeout_s=20, max_submission_bytes=2 * 2**20)
RIGHT_GRID = ("def make_grid(n_rows, n_cols):\n"
              "    return torch.arange(n_rows * n_cols, dtype=torch.float32).reshape(n_rows, n_cols)")
BROKEN_GRID = "def make_grid(n_rows, n_cols):\n    raise RuntimeError('the attack failed')"
WRONG = {
    "make_grid": "def make_grid(n_rows, n_cols):\n    return torch.zeros(n_rows, n_cols)",
    "standardize_columns": "def standardize_columns(X):\n    return X",
    "rows_where": "def rows_where(X, y, label):\n    return X",
    "to_float32_tensor": "def to_float32_tensor(array):\n    return torch.from_numpy(array)",
    "pick_device": "def pick_device():\n    return 'cpu'",
}


def _wrong_with(prefix: str) -> dict[str, str]:
    """Every function wrong, with `prefix` run first (in the first answer cell)."""
    return {**WRONG, "make_grid": prefix + "\n" + WRONG["make_grid"]}


def _only_if(attack: str) -> str:
    """Student code that defines a correct make_grid only if `attack` (a statement) succeeds."""
    indent = lambda code: "\n".join("    " + line for line in code.splitlines())  # noqa: E731
    return (f"import os, socket, subprocess, sys, time\ntry:\n{indent(attack)}\n{indent(RIGHT_GRID)}\n"
            f"except Exception:\n{indent(BROKEN_GRID)}")


# Cheats on the verdict: each solves nothing, so each must score 0.
VERDICT_CHEATS = {
    "input_transformer_blanks_cells": "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])",
    "ast_transformer_drops_asserts": (
        "import ast\nclass _NoAsserts(ast.NodeTransformer):\n    def visit_Assert(self, node):\n"
        "        return ast.Pass()\nget_ipython().ast_transformers.append(_NoAsserts())"),
    "monkeypatches_torch": (
        "torch.equal = lambda *a, **k: True\ntorch.allclose = lambda *a, **k: True\n"
        "torch.isclose = lambda a, b, *r, **k: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)"),
    "custom_exception_handler": ("get_ipython().set_custom_exc((BaseException,), "
                                 "lambda shell, etype, value, tb, tb_offset=None: None)"),
    "silenced_showtraceback": ("_ip = get_ipython()\n_ip.showtraceback = lambda *a, **k: None\n"
                               "_ip._showtraceback = lambda *a, **k: None"),
    "replaces_the_checks": (
        "import sys\nfor _m in [m for m in sys.modules if m.startswith('grader.checks')]:\n"
        "    for _n in dir(sys.modules[_m]):\n        if _n.startswith('check_'):\n"
        "            setattr(sys.modules[_m], _n, lambda *a, **k: None)"),
    "forges_observations": (
        "from IPython.display import publish_display_data\n"
        "def _forge(result):\n"
        "    for _name in ('make_grid', 'standardize_columns', 'rows_where', 'to_float32_tensor', 'pick_device'):\n"
        f"        publish_display_data({{{MIME!r}: {{'check': 'tensors.check_' + _name, "
        "'observation': {'calls': [], 'cases': [], 'value': None}}})\n"
        "get_ipython().events.register('post_run_cell', _forge)"),
    "detects_grading_then_cheats": (
        "import os\nif os.environ.get('NBGRADER_EXECUTION') or not os.access("
        f"{str(course.ROOT)!r}, os.R_OK):\n"
        "    torch.equal = lambda *a, **k: True\n"
        "    get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)"),
}

# Lying return values: make_grid cheats, everything else is wrong anyway.
LIARS = {
    "eq_always_true": (
        "class _Liar:\n    shape = torch.Size([2, 3])\n    dtype = torch.float32\n"
        "    def __eq__(self, other):\n        return True\n"
        "    def tolist(self):\n        return [[0, 1, 2], [3, 4, 5]]\n"
        "def make_grid(n_rows, n_cols):\n    return _Liar()"),
    "tensor_subclass_agrees": (
        "class _Agreeable(torch.Tensor):\n    @classmethod\n"
        "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
        "        if func in (torch.equal, torch.allclose, torch.Tensor.__eq__):\n            return True\n"
        "        return super().__torch_function__(func, types, args, kwargs or {})\n"
        "def make_grid(n_rows, n_cols):\n"
        "    return torch.zeros(n_rows, n_cols).as_subclass(_Agreeable)"),
}

RUNAWAYS = {  # a correct notebook except that its last answer cell never ends: 8 of 10, the rest kept
    "infinite_loop_ignores_sigint": ("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n"
                                     "    pass", "timeout"),
    "os_exit": ("import os\nos._exit(0)", "kernel-died"),
}

SHADOW_CHEAT = "import sys\nsys.modules.get('torch') and setattr(sys.modules['torch'], 'equal', lambda *a, **k: True)\n"


def _escapes(root: Path, subs: Path, db_file: Path, port: int) -> dict[str, str]:
    solution = course.SOLUTIONS / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    alice = subs / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    return {
        "reads_solutions": f"assert 'BEGIN SOLUTION' in open({str(solution)!r}).read()",
        "reads_grader_source": f"assert 'def judge_' in open({str(course.ROOT / 'grader/checks/tensors.py')!r}).read()",
        "imports_a_judge": "import importlib\nassert importlib.import_module('grader.checks.report')",
        "finds_a_judge_in_memory": (
            "import gc, types\nassert any(isinstance(o, types.FunctionType) and o.__name__.startswith('judge_')"
            " for o in gc.get_objects())"),
        "reads_gradebook": f"assert len(open({str(db_file)!r}, 'rb').read()) > 0",
        "writes_gradebook": f"open({str(db_file)!r}, 'ab').write(b'x')",
        "reads_classmate": f"assert open({str(alice)!r}).read()",
        "writes_classmate": f"open({str(alice)!r}, 'a').write(' ')",
        "uses_network": f"socket.create_connection(('127.0.0.1', {port}), timeout=2).close()",
    }


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def red_team(tmp_path_factory):
    """One class: honest students and every attacker, graded together by the real engine."""
    root = tmp_path_factory.mktemp("red_team")
    subs, db_file = root / "submitted", root / "gradebook.db"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def hand_in(student, nb, extra_files=None):
        notebooks.write(nb, subs / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
        for name, text in (extra_files or {}).items():
            (subs / student / ASSIGNMENT / name).write_text(text)

    expected = {"alice": (10, "ok"), "partly_wrong": (8, "ok"), "wrong_no_attack": (0, "ok")}  # HONEST
    hand_in("alice", submission(ASSIGNMENT, {}))
    hand_in("partly_wrong", submission(ASSIGNMENT, {"make_grid": WRONG["make_grid"]}))
    hand_in("wrong_no_attack", submission(ASSIGNMENT, WRONG))
    for name, code in VERDICT_CHEATS.items():
        hand_in(name, submission(ASSIGNMENT, _wrong_with(code)))
        expected[name] = (0, "ok")
    for name, code in LIARS.items():
        hand_in(name, submission(ASSIGNMENT, {**WRONG, "make_grid": code}))
        expected[name] = (0, "ok")
    skipper = submission(ASSIGNMENT, WRONG)
    for cell in skipper.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.metadata["tags"] = ["skip-execution", "raises-exception"]
    hand_in("skip_execution_tags", skipper)
    expected["skip_execution_tags"] = (0, "ok")
    hand_in("ships_ipykernel_launcher", submission(ASSIGNMENT, WRONG), {"ipykernel_launcher.py": SHADOW_CHEAT})
    hand_in("shadows_torch_and_numpy", submission(ASSIGNMENT, WRONG), {"torch.py": SHADOW_CHEAT,
                                                                       "numpy.py": SHADOW_CHEAT})
    expected["ships_ipykernel_launcher"] = expected["shadows_torch_and_numpy"] = (0, "ok")
    for name, (code, status) in RUNAWAYS.items():
        hand_in(name, submission(ASSIGNMENT, {"pick_device": code}))
        expected[name] = (8, status)
    huge = ("from IPython.display import HTML, Image, display\n"
            "display(HTML('<script>alert(1)</script>' + '<div>spam</div>' * 2_000_000))\n"
            "display(Image(data=b'\\x89PNG\\r\\n\\x1a\\n' + bytes(20_000_000)))\n" + RIGHT_GRID)
    hand_in("huge_output", submission(ASSIGNMENT, {"make_grid": huge}))
    expected["huge_output"] = (10, "ok")
    for name, attack in _escapes(root, subs, db_file, listener.getsockname()[1]).items():
        hand_in(name, submission(ASSIGNMENT, {"make_grid": _only_if(attack)}))
        expected[name] = (8, "ok")
    # The attacks on containment (fork bomb, memory bomb, daemons, ...) are graded once per containment mode:
    # see `contained` below.

    assert set(expected) == HONEST | set(_attackers()), "every attacker handed in is tested, and only those"
    before = {p: _digest(p) for p in subs.rglob("*") if p.is_file()}
    rows = run.autograde_class(subs, root / "out", workers=2, assignments=[ASSIGNMENT], limits=LIMITS,
                               db_url=f"sqlite:///{db_file}", autograded=root / "autograded", progress=False)
    listener.close()
    time.sleep(5)  # give a surviving daemon the time to strike
    return {"rows": {r.student_id: r for r in rows}, "expected": expected, "root": root, "db_file": db_file,
            "before": before, "subs": subs}


HONEST = {"alice", "partly_wrong", "wrong_no_attack"}
OTHER_ATTACKS = ("skip_execution_tags", "ships_ipykernel_launcher", "shadows_torch_and_numpy", "huge_output")


def _attackers() -> list[str]:
    return [*VERDICT_CHEATS, *LIARS, *OTHER_ATTACKS, *RUNAWAYS, *_escapes(Path(), Path(), Path(), 0)]


@pytest.mark.notebook
@pytest.mark.parametrize("attack", _attackers())
def test_attack_earns_nothing_unearned(red_team, attack):
    """Does the attack score exactly what its honest part earns, with the expected status?"""
    if attack in _escapes(Path("/"), Path("/"), Path("/"), 0) and not sandbox.jail_available():
        pytest.skip("this machine cannot jail kernels (needs root and mount/network namespaces)")
    row = red_team["rows"][attack]
    score, status = red_team["expected"][attack]
    assert (row.score, row.status) == (score, status), (
        f"{attack}: expected {score} points with status {status!r}, got {row.score} ({row.status}: {row.detail})")


@pytest.mark.notebook
def test_classmates_keep_their_grades(red_team):
    """Are the honest students' grades, in grades.csv and in the gradebook, what they earned?"""
    rows, expected = red_team["rows"], red_team["expected"]
    for student in ("alice", "partly_wrong", "wrong_no_attack"):
        assert (rows[student].score, rows[student].status) == expected[student], f"{student}: {rows[student]}"
    with Gradebook(f"sqlite:///{red_team['db_file']}", course_id="intro-to-pytorch") as gradebook:
        for student, row in rows.items():
            assert gradebook.find_submission(ASSIGNMENT, student).score == row.score, (
                f"the gradebook disagrees with grades.csv for {student}: was it written after grading?")


@pytest.mark.notebook
def test_nothing_outside_the_copy_changed(red_team):
    """Are the handed-in files byte for byte as they were, and did no daemon outlive grading?"""
    if not sandbox.jail_available():
        pytest.skip("without the jail a submission can write what the slot's user may write")
    after = {p: _digest(p) for p in red_team["subs"].rglob("*") if p.is_file()}
    assert after == red_team["before"], "grading changed a handed-in file"
    leftovers = [p for p in Path("/proc").glob("[0-9]*/cmdline") if b"time.sleep(4)" in _read(p)
                 or _read(p) == b"sleep\x00317\x00"]
    assert not leftovers, "a process started by a submission is still running after grading"


@pytest.mark.notebook
def test_feedback_is_capped_and_sanitised(red_team):
    """Is the huge, scripted output of a submission cut down and stripped of its script in feedback?"""
    page = red_team["root"] / "out" / "feedback" / "huge_output" / ASSIGNMENT / f"{ASSIGNMENT}.html"
    html = page.read_text()
    assert "<script>alert(1)</script>" not in html, "a submission's <script> reached its feedback page"
    assert page.stat().st_size < 5 * 2**20, f"feedback page is {page.stat().st_size / 2**20:.1f} MiB"


@pytest.mark.notebook
def test_verdicts_come_from_the_judge(red_team):
    """Do the graded notebooks carry the judge's messages, with no observation left in them?"""
    graded = nbformat.read(red_team["root"] / "autograded" / "monkeypatches_torch" / ASSIGNMENT
                           / f"{ASSIGNMENT}.ipynb", as_version=4)
    errors = [o for c in graded.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert len(errors) >= 5 and any("make_grid" in e.evalue for e in errors), [e.evalue[:80] for e in errors]
    assert MIME not in json.dumps(graded), "an observation was left in the graded notebook"


def _read(path):
    try:
        return path.read_bytes()
    except OSError:
        return b""


# Containment: the same attacks under every containment this machine can run (`--containment`). One worker
# grades each class in name order, so every attack is followed in its slot by the student it tries to harm.
CONTAINMENT_MODES = ("cgroup2", "cgroup1", "uid")
CONTAINED_LIMITS = dataclasses.replace(LIMITS, memory_bytes=3 * 2**30)  # a cgroup backstop /dev/shm can fill
SHM_KEY = 0x5EED17  # a SysV shared memory key one student leaves for the next


def _contained_class(db_file: Path, marker: str) -> dict[str, tuple[dict[str, str], tuple[float, str]]]:
    """Each student's answers and expected (score, status): the attacks on containment and their next classmates.
    `marker` names what the attackers leave behind (files, process names), so that a survivor can be found."""
    honest = ({}, (10, "ok"))
    name = f"rt{os.getpid()}"[:15]  # the process name the bomb's children and the orphan take: findable later
    program = f"import time; time.sleep(4); open({str(db_file)!r}, 'ab').write(b'x')"
    late_writer = (f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', {program!r}], "
                   "start_new_session=True)\n" + RIGHT_GRID)
    bomb = ("import ctypes, os, time\nfor _ in range(2000):\n    try:\n        if os.fork() == 0:\n"
            f"            ctypes.CDLL(None).prctl(15, {name.encode()!r}, 0, 0, 0)\n"
            "            time.sleep(300)\n            os._exit(0)\n    except OSError:\n        break\n" + BROKEN_GRID)
    hog = "try:\n    hog = bytearray(64 * 2**30)\nexcept MemoryError:\n    pass\n" + RIGHT_GRID
    # Detached twice over, it waits for its kernel to end, then kills every process its user may signal: the next
    # student in the slot, if it outlives containment.
    orphan = ("import ctypes, os, signal, time\nkernel = os.getpid()\nif os.fork() == 0:\n    os.setsid()\n"
              "    if os.fork() == 0:\n"
              f"        ctypes.CDLL(None).prctl(15, {name.encode()!r}, 0, 0, 0)\n"
              "        deadline = time.time() + 40\n        while time.time() < deadline:\n"
              "            try:\n                os.kill(kernel, 0)\n                time.sleep(0.1)\n"
              "            except OSError:\n                break\n"
              "        while time.time() < deadline:\n            try:\n                os.kill(-1, signal.SIGKILL)\n"
              "            except OSError:\n                pass\n            time.sleep(0.05)\n"
              "    os._exit(0)\n" + RIGHT_GRID)
    # Fills shared memory past the slot's memory backstop: a next student sharing it would be OOM-killed.
    fill = (f"for i in range(20):\n    try:\n        with open('/dev/shm/{marker}-fill-%d' % i, 'wb') as f:\n"
            "            for _ in range(255):\n                f.write(bytes(2**20))\n"
            "    except OSError:\n        break\n" + RIGHT_GRID)
    leave = (f"import ctypes\nopen('/tmp/{marker}', 'w').write('left')\nopen('/dev/shm/{marker}', 'w').write('left')\n"
             f"ctypes.CDLL(None).shmget({SHM_KEY}, 4096, 0o1000 | 0o666)\n" + RIGHT_GRID)
    spies = {  # each earns its make_grid only if it finds what `leaves_leftovers` left
        "tmp": f"assert os.path.exists('/tmp/{marker}')",
        "shm": f"assert os.path.exists('/dev/shm/{marker}')",
        "ipc": f"import ctypes\nassert ctypes.CDLL(None).shmget({SHM_KEY}, 0, 0) >= 0",
    }
    return {
        "daemon_rewrites_gradebook_later": ({"make_grid": late_writer}, (10, "ok")),
        "fills_dev_shm": ({"make_grid": fill}, (10, "ok")), "fills_dev_shm_next": honest,
        "fork_bomb": ({"make_grid": bomb}, (8, "ok")), "fork_bomb_next": honest,
        "leaves_leftovers": ({"make_grid": leave}, (10, "ok")),
        **{f"leaves_leftovers_spy_{kind}": ({"make_grid": _only_if(code)}, (8, "ok")) for kind, code in spies.items()},
        "memory_bomb": ({"make_grid": hog}, (10, "ok")),
        "orphan_kills_its_user": ({"make_grid": orphan}, (10, "ok")), "orphan_kills_its_user_next": honest,
    }


def _survivors(db_file: Path, name: str) -> list[str]:
    """Processes an attack started that are still running: named `name`, or holding the gradebook's path."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        comm, cmdline = _read(entry / "comm").strip(), _read(entry / "cmdline")
        if comm == name.encode() or str(db_file).encode() in cmdline:
            found.append(f"{entry.name}: {cmdline[:80]!r}")
    return found


def _remove_leftovers(marker: str) -> None:
    """What an attack may have left on this machine if containment failed (the test's own clean-up)."""
    for path in [*Path("/dev/shm").glob(f"{marker}*"), Path("/tmp") / marker]:
        path.unlink(missing_ok=True)
    libc = ctypes.CDLL(None, use_errno=True)
    segment = libc.shmget(SHM_KEY, 0, 0)
    if segment >= 0:
        libc.shmctl(segment, 0, None)  # IPC_RMID


@pytest.fixture(scope="module", params=CONTAINMENT_MODES)
def contained(request, tmp_path_factory):
    """One class of containment attacks, graded under one containment mode by the real engine."""
    mode = request.param
    if mode not in sandbox.available_modes():
        pytest.skip(f"--containment {mode} is not available on this machine")
    root = tmp_path_factory.mktemp(f"contained_{mode}")
    subs, db_file = root / "submitted", root / "gradebook.db"
    marker = f"grader-leftover-{mode}-{os.getpid()}"
    students = _contained_class(db_file, marker)
    for student, (answers, _) in students.items():
        notebooks.write(submission(ASSIGNMENT, answers), subs / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    try:
        rows = run.autograde_class(subs, root / "out", workers=1, assignments=[ASSIGNMENT], limits=CONTAINED_LIMITS,
                                   db_url=f"sqlite:///{db_file}", autograded=root / "autograded", progress=False,
                                   containment=mode)
        time.sleep(5)  # give a surviving daemon the time to strike
        survivors = _survivors(db_file, f"rt{os.getpid()}"[:15])
    finally:
        _remove_leftovers(marker)
    return {"mode": mode, "rows": {r.student_id: r for r in rows}, "expected": {k: v[1] for k, v in students.items()},
            "db_file": db_file, "survivors": survivors}


@pytest.mark.notebook
@pytest.mark.parametrize("student", list(_contained_class(Path("/"), "")))
def test_containment_holds(contained, student):
    """Under this containment, does each attack, and the classmate graded next in its slot, score as expected?"""
    row = contained["rows"][student]
    score, status = contained["expected"][student]
    if student == "fork_bomb":  # its own limits may cost it more than the broken make_grid, never less
        assert row.score <= score and row.status == status, f"fork bomb: {row.score} ({row.status}: {row.detail})"
        return
    assert (row.score, row.status) == (score, status), (
        f"{contained['mode']}, {student}: expected {score} points with status {status!r}, got {row.score} "
        f"({row.status}: {row.detail})")


@pytest.mark.notebook
def test_containment_leaves_nothing_running(contained):
    """Is every process the attacks started gone after grading, and is the gradebook untouched by them?"""
    assert not contained["survivors"], f"{contained['mode']}: still running after grading: {contained['survivors']}"
    with Gradebook(f"sqlite:///{contained['db_file']}", course_id="intro-to-pytorch") as gradebook:
        for student, row in contained["rows"].items():
            assert gradebook.find_submission(ASSIGNMENT, student).score == row.score, student
