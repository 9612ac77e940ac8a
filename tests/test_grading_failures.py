"""Can one submission ever cost the class? A worker that dies mid-notebook, a file that cannot be copied into
a submission's folder, a judge that raises: each costs that submission only, as an `error` row with its
reason; grades.csv is written, each submission's logs are kept, and the next run grades them again. A run
after the grader changed regrades what it graded before; a run after nothing changed resumes."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from mutant_bank.grading import submission
from nbgrader.api import Gradebook

from grader import notebooks
from grader.autograde import report, run, sandbox, trusted, worker

pytestmark = pytest.mark.notebook

ASSIGNMENT = "01_tensors"
LIMITS = sandbox.Limits(cell_timeout_s=20, notebook_timeout_s=60)


def _hand_in(subs: Path, student: str, extra_cell: str = "") -> None:
    nb = submission(ASSIGNMENT, {})
    if extra_cell:
        nb.cells.append(nbformat.v4.new_code_cell(extra_cell))
    notebooks.write(nb, subs / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")


def _worker_dies_mid_notebook(original):
    """Worker.run, except that the worker is killed a moment after it starts the victim's notebook."""
    def run_and_die(self, job, timeout, on_timeout):
        if "VICTIM_PIPE" in Path(job["notebook"]).read_text(encoding="utf-8"):
            def kill_soon():
                deadline = time.monotonic() + 300
                while not self.ready and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(2)
                os.killpg(self.process.pid, signal.SIGKILL)
            threading.Thread(target=kill_soon, daemon=True).start()
        return original(self, job, timeout, on_timeout)
    return run_and_die


def _disk_full_for(victim: str, original):
    def copy(source, destination, *args, **kwargs):
        if f"{os.sep}sanitized{os.sep}{victim}{os.sep}" in str(source):
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(source, destination, *args, **kwargs)
    return copy


def _judge_raises(original):
    """The trusted pool's judging, except that it raises on the victim's notebook (as its process would pass on
    any exception of a judge)."""
    def judge(self, executed, sanitized, judged, max_bytes):
        if "VICTIM_JUDGE" in Path(sanitized).read_text(encoding="utf-8"):
            raise ValueError("the judge exploded")
        return original(self, executed, sanitized, judged, max_bytes)
    return judge


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("failures")
    subs = root / "subs"
    _hand_in(subs, "alice")
    _hand_in(subs, "pipe", "# VICTIM_PIPE\nimport time\ntime.sleep(5)")
    _hand_in(subs, "copy")
    _hand_in(subs, "judge", "# VICTIM_JUDGE")
    out = root / "out"
    kwargs = dict(workers=2, assignments=[ASSIGNMENT], limits=LIMITS, db_url=f"sqlite:///{root}/gradebook.db",
                  autograded=root / "autograded", progress=False)
    results = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(worker.Worker, "run", _worker_dies_mid_notebook(worker.Worker.run))
        patch.setattr(shutil, "copy", _disk_full_for("copy", shutil.copy))
        patch.setattr(trusted.Pool, "judge", _judge_raises(trusted.Pool.judge))
        results["broken"] = {r.student_id: r for r in run.autograde_class(subs, out, **kwargs)}
    results["broken timing"] = json.loads((out / report.TIMING_JSON).read_text())
    results["csv"] = report.read_rows(out / report.GRADES_CSV)
    logs = out / run.LOGS
    results["logs"] = {"driver": (logs / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.driver.log").exists(),
                       "judge": (logs / "judge" / ASSIGNMENT / f"{ASSIGNMENT}.judge.log").read_text(),
                       "nbgrader": (logs / "nbgrader" / f"{ASSIGNMENT}.log").read_text()}
    with Gradebook(kwargs["db_url"], course_id="intro-to-pytorch") as gradebook:
        results["gradebook"] = {s: gradebook.find_submission(ASSIGNMENT, s).score for s in results["broken"]}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run, "grader_version", lambda *args: "a newer grader")
        for name in ("grader changed", "unchanged"):
            results[name] = {r.student_id: r for r in run.autograde_class(subs, out, **kwargs)}
            results[f"{name} timing"] = json.loads((out / report.TIMING_JSON).read_text())
    return dict(out=out, **results)


@pytest.mark.parametrize("student, reason", [
    ("pipe", "the grading worker exited unexpectedly"),
    ("copy", "No space left on device"),
    ("judge", "the judge exploded"),
])
def test_a_failure_costs_that_submission_only(runs, student, reason):
    """Is each failure of the machinery that submission's `error` row, zero in the gradebook, with its reason,
    while the others are graded?"""
    row = runs["broken"][student]
    assert (row.status, row.score) == ("error", 0), row
    assert reason in row.detail, row.detail
    assert runs["gradebook"][student] == 0
    assert runs["broken"]["alice"].status == "ok" and runs["broken"]["alice"].score == 10
    assert runs["csv"][student, ASSIGNMENT].status == "error"


def test_logs_are_kept_for_the_instructor(runs):
    """Are each submission's driver log, its judging failure and nbgrader's log kept under the output folder?"""
    assert runs["logs"]["driver"]
    assert "the judge exploded" in runs["logs"]["judge"]
    assert "[INFO]" in runs["logs"]["nbgrader"]


def test_a_grader_change_regrades_and_an_unchanged_rerun_resumes(runs):
    """After the grader changed, is everything graded again (failures retried, now fine); after nothing changed,
    is nothing?"""
    assert runs["grader changed timing"]["notebooks"] == 4
    assert "the grader or its settings changed" in runs["grader changed timing"]["changed"]
    assert {s: (r.status, r.score, r.detail) for s, r in runs["grader changed"].items()} == {
        s: ("ok", 10, "") for s in ("alice", "pipe", "copy", "judge")}
    assert runs["unchanged timing"]["notebooks"] == 0
    assert runs["unchanged"] == runs["grader changed"]


def _crash():
    os._exit(3)


def test_a_trusted_task_that_hangs_crashes_or_raises_fails_alone():
    """Does a judge or page that runs too long, raises or kills its process fail that task only, with the pool
    still serving the next one?"""
    pool = trusted.Pool(1, 6 * 2**30)
    try:
        for task, args, message in [(time.sleep, (30,), "took longer than 1 s"), (int, ("x",), "invalid literal"),
                                    (_crash, (), "died twice")]:
            with pytest.raises(Exception, match=message):
                pool.run(1, task, *args)
            assert pool.run(5, int, "7") == 7
    finally:
        pool.close()


def test_an_unguarded_script_is_not_run_again_by_the_trusted_processes(tmp_path):
    """Does an instructor's grading script without `if __name__ == "__main__"` run once, not once more in each
    trusted process (which would start a second grading run over the first one's folders)?"""
    script = tmp_path / "grade.py"
    script.write_text(
        "from pathlib import Path\nfrom grader.autograde import trusted\n"
        "runs = Path(__file__).with_suffix('.runs')\n"
        "runs.write_text((runs.read_text() if runs.exists() else '') + 'x')\n"
        "pool = trusted.Pool(2, 6 * 2**30)\nprint(pool.run(60, int, '3'))\npool.close()\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "3", done.stderr[-2000:]
    assert (tmp_path / "grade.runs").read_text() == "x"
