"""Does a PostgreSQL gradebook work end to end: `python -m grader autograde --db postgresql://...`, then
`nbgrader export` from it, and what formgrader reads from it?

A private server (Debian's `postgresql` package: initdb and pg_ctl as the `postgres` user) in a temporary folder,
reached only through a Unix socket in a folder only its owner (and root) can enter. .ci/run installs the package;
where the binaries or the `postgres` user are missing, the tests skip and say so."""

import csv
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mutant_bank.grading import submission

from grader import notebooks
from grader.autograde import report
from grader.nbgrader_api import api, load_config

pytestmark = pytest.mark.notebook

ASSIGNMENT = "01_tensors"
WRONG_DTYPE = {"make_grid": "def make_grid(n_rows, n_cols):\n    return torch.arange(n_rows * n_cols)"
                            ".reshape(n_rows, n_cols)"}
EXPECTED = {"alice": 10.0, "bob": 8.0}
ROOT = Path(__file__).resolve().parent.parent


def _postgres_bin() -> Path | None:
    """Debian's server binaries (/usr/lib/postgresql/<version>/bin), else initdb on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _skip_reason() -> str:
    if _postgres_bin() is None:
        return ("SKIPPED LOUDLY: no PostgreSQL server binaries (initdb, pg_ctl). Install Debian's `postgresql` "
                "package (.ci/run does) to test the PostgreSQL gradebook")
    if os.geteuid() != 0:
        return "SKIPPED LOUDLY: starting a private PostgreSQL server as the `postgres` user needs root"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "SKIPPED LOUDLY: no `postgres` user (Debian's postgresql package creates it)"
    return ""


@pytest.fixture(scope="module")
def postgres_url():
    """A fresh server and an empty database `grading`; its SQLAlchemy URL (over the socket, trusted locally)."""
    if reason := _skip_reason():
        pytest.skip(reason)
    binaries, account = _postgres_bin(), pwd.getpwnam("postgres")
    folder = Path(tempfile.mkdtemp(prefix="gradebook-postgres-"))  # not under pytest's root-only folder
    os.chown(folder, account.pw_uid, account.pw_gid)
    folder.chmod(0o700)  # the socket's folder: a slot user cannot reach the server
    data, port = folder / "data", "5499"

    def as_postgres(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(binaries / command[0]), *command[1:]], user=account.pw_uid,
                              group=account.pw_gid, extra_groups=[], cwd=folder, capture_output=True, text=True,
                              timeout=120, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})

    done = as_postgres("initdb", "-D", str(data), "--auth=trust", "-U", "postgres", "--encoding=UTF8")
    assert done.returncode == 0, done.stdout + done.stderr
    started = as_postgres("pg_ctl", "-D", str(data), "-l", str(folder / "server.log"), "-w", "start", "-o",
                          f"-k {folder} -p {port} -c listen_addresses=''")
    try:
        assert started.returncode == 0, started.stdout + started.stderr + (folder / "server.log").read_text()
        done = as_postgres("createdb", "-h", str(folder), "-p", port, "-U", "postgres", "grading")
        assert done.returncode == 0, done.stdout + done.stderr
        yield f"postgresql://postgres@/grading?host={folder}&port={port}"
    finally:
        as_postgres("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cycle(postgres_url, tmp_path_factory):
    """Autograde a small class into the PostgreSQL gradebook, then export it with nbgrader."""
    root = tmp_path_factory.mktemp("postgres-class")
    notebooks.write(submission(ASSIGNMENT, {}), root / "subs" / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    notebooks.write(submission(ASSIGNMENT, WRONG_DTYPE), root / "subs" / "bob" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    graded = subprocess.run(
        [sys.executable, "-m", "grader", "autograde", str(root / "subs"), "--out", str(root / "out"), "--db",
         postgres_url, "--autograded", str(root / "autograded"), "--workers", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    exported = subprocess.run(["nbgrader", "export", "--db", postgres_url, "--to", str(root / "export.csv")],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    with open(root / "export.csv", newline="", encoding="utf-8") as f:
        export = {row["student_id"]: row for row in csv.DictReader(f) if row["assignment"] == ASSIGNMENT}
    return dict(rows=report.read_rows(root / "out" / report.GRADES_CSV), export=export, url=postgres_url,
                autograded=root / "autograded")


def test_autograde_records_each_grade_in_postgresql(cycle):
    """Does autograde with a PostgreSQL gradebook give each student the score their hand-in earned?"""
    assert {key[0]: (row.score, row.status) for key, row in cycle["rows"].items()} == {
        student: (score, "ok") for student, score in EXPECTED.items()}


def test_nbgrader_export_reads_the_postgresql_gradebook(cycle):
    """Does `nbgrader export --db postgresql://...` give the scores grades.csv gives?"""
    assert {student: float(row["score"]) for student, row in cycle["export"].items()} == EXPECTED


def test_formgrader_reads_the_postgresql_gradebook(cycle):
    """Does what formgrader shows (nbgrader's API: the assignment, its submissions and their notebooks) come from
    the PostgreSQL gradebook?"""
    # formgrader counts hand-ins by their folders in submitted/: autograde puts each one beside autograded/.
    config = load_config(db_url=cycle["url"], autograded_directory=str(cycle["autograded"]),
                         submitted_directory=str(cycle["autograded"].parent / "submitted"))
    formgrader = api(config)
    assignment = formgrader.get_assignment(ASSIGNMENT)
    assert assignment["num_submissions"] == 2 and assignment["max_score"] == 10
    submissions = {s["student"]: s for s in formgrader.get_submissions(ASSIGNMENT)}
    assert {student: s["score"] for student, s in submissions.items()} == EXPECTED
    notebooks_seen = formgrader.get_notebook_submissions(ASSIGNMENT, ASSIGNMENT)
    assert sorted(n["student"] for n in notebooks_seen) == sorted(EXPECTED)
