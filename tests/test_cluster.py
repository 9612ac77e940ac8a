"""Does `python -m grader autograde --scheduler` grade a class on a Dask cluster exactly as a local run does, lose
nothing when a worker node dies mid-run, resume like a local run, and keep the Dask client (and its pickles) out of
the process that judges and writes the gradebook?

A real cluster on loopback: `dask scheduler` and two `dask worker --nthreads 1` processes, each worker running its
submissions in this machine's sandbox, as a worker node of a real cluster would."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import Future
from pathlib import Path

import nbformat
import pytest
from mutant_bank.grading import submission

from grader import notebooks
from grader.autograde import cluster, cluster_protocol, cluster_shard, report, sandbox
from grader.autograde.report import Status

ASSIGNMENT = "01_tensors"
GRID = "def make_grid(n_rows, n_cols):\n    return torch.arange(n_rows * n_cols{}).reshape(n_rows, n_cols)"
LIMITS = ["--cell-timeout", "8", "--notebook-timeout", "20"]
# (score, status) each hand-in earns; the cluster must give the same as a local run.
EXPECTED = {"alice": (10, "ok"), "bob": (8, "ok"), "carol": (0, "unparseable"), "gina": (0, "missing"),
            "erin": (8, "timeout"), "frank": (6, "kernel-died")}
BIN = Path(sys.executable).parent
START_S = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _hand_in_class(subs: Path) -> None:
    def hand_in(student, nb):
        notebooks.write(nb, subs / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")

    hand_in("alice", submission(ASSIGNMENT, {}))
    hand_in("bob", submission(ASSIGNMENT, {"make_grid": GRID.format("")}))  # wrong dtype: loses 2 points
    (subs / "carol" / ASSIGNMENT).mkdir(parents=True)
    (subs / "carol" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text('{"cells": [ truncated')
    (subs / "gina").mkdir()  # nothing handed in
    looping = "def rows_where(X, y, label):\n    while True:\n        pass"
    hand_in("erin", submission(ASSIGNMENT, {"rows_where": looping}))
    hand_in("frank", submission(ASSIGNMENT, {"to_float32_tensor": "import os\nos._exit(3)"}))


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A scheduler and two single-threaded worker processes on loopback, each in a process group of its own."""
    from distributed import Client

    logs = tmp_path_factory.mktemp("dask-logs")
    address = f"tcp://127.0.0.1:{_free_port()}"
    processes = {}

    def start(name, *command):
        with open(logs / f"{name}.log", "wb") as log:
            processes[name] = subprocess.Popen([str(BIN / "dask"), *command, "--no-dashboard"], stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True)

    start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1])
    try:
        for name in ("w0", "w1"):
            start(name, "worker", address, "--nthreads", "1", "--name", name, "--host", "127.0.0.1")
        client = Client(address, timeout=START_S, set_as_default=False)
        client.wait_for_workers(2, timeout=START_S)
        yield dict(address=address, processes=processes, client=client, logs=logs)
        client.close()
    finally:
        for process in reversed(processes.values()):
            _stop(process)


def _autograde(subs: Path, root: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "grader", "autograde", str(subs), "--out", str(root / "out"),
               "--db", f"sqlite:///{root}/gradebook.db", "--autograded", str(root / "autograded"), *LIMITS, *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def _kill_a_worker_once_it_grades(dask_cluster) -> str:
    """Wait until a worker node runs a shard, let its kernel start, then kill that node (nanny and all);
    returns its name."""
    client, deadline = dask_cluster["client"], time.monotonic() + 300
    while time.monotonic() < deadline:
        busy = [worker for worker, keys in client.processing().items()
                if any(str(key).startswith("grade-shard-") for key in keys)]
        if busy:
            time.sleep(3)  # mid-notebook, not before it
            name = client.scheduler_info()["workers"][busy[0]]["name"]
            os.killpg(dask_cluster["processes"][name].pid, signal.SIGKILL)
            dask_cluster["processes"][name].wait()
            return name
        time.sleep(0.2)
    raise AssertionError("no worker node started a shard within 300 s")


@pytest.fixture(scope="module")
def graded(dask_cluster, tmp_path_factory):
    """The class graded on the cluster with a worker node killed mid-run, on the cluster again (it resumes), then
    locally with two workers. The cluster runs come first: a worker node keeps the code it started with, and a
    checkout edited meanwhile would (rightly) be refused as other code."""
    root = tmp_path_factory.mktemp("cluster-class")
    subs = root / "submitted"
    _hand_in_class(subs)
    on_cluster = root / "cluster"
    code = cluster_protocol.code_version.__wrapped__()
    started = time.monotonic()
    running = subprocess.Popen(
        [sys.executable, "-m", "grader", "autograde", str(subs), "--out", str(on_cluster / "out"),
         "--db", f"sqlite:///{on_cluster}/gradebook.db", "--autograded", str(on_cluster / "autograded"), *LIMITS,
         "--workers", "1", "--scheduler", dask_cluster["address"], "--shard-size", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        killed = _kill_a_worker_once_it_grades(dask_cluster)
        output, _ = running.communicate(timeout=600)
    finally:
        if running.poll() is None:
            running.kill()
    assert running.returncode == 0, output
    cluster_seconds = time.monotonic() - started
    rows = report.read_rows(on_cluster / "out" / report.GRADES_CSV)
    timing = json.loads((on_cluster / "out" / report.TIMING_JSON).read_text())
    again = _autograde(subs, on_cluster, "--workers", "1", "--scheduler", dask_cluster["address"])
    code_changed = cluster_protocol.code_version.__wrapped__() != code
    assert again.returncode == 0, again.stdout + again.stderr
    local = _autograde(subs, root / "local", "--workers", "2")
    assert local.returncode == 0, local.stdout + local.stderr
    return dict(local=report.read_rows(root / "local" / "out" / report.GRADES_CSV), cluster=rows, output=output,
                killed=killed, timing=timing, again=report.read_rows(on_cluster / "out" / report.GRADES_CSV),
                again_timing=json.loads((on_cluster / "out" / report.TIMING_JSON).read_text()),
                again_output=again.stdout, out=on_cluster / "out", seconds=cluster_seconds,
                code_changed=code_changed)


@pytest.mark.notebook
def test_a_cluster_run_grades_as_a_local_run_though_a_worker_node_died(graded):
    """With a worker node killed mid-run, does every hand-in still get the row it earned, the same score,
    maximum and status as the local run's, and no `error` row?"""
    assert graded["killed"] in ("w0", "w1")
    local = {key[0]: (row.score, row.status) for key, row in graded["local"].items()}
    on_cluster = {key[0]: (row.score, row.status) for key, row in graded["cluster"].items()}
    assert local == EXPECTED, graded["local"]
    assert on_cluster == EXPECTED, f"{graded['cluster']}\n{graded['output']}"
    assert [(r.max_score, r.detail) for r in graded["cluster"].values()] == [
        (r.max_score, r.detail) for r in graded["local"].values()]
    assert graded["timing"]["notebooks"] == 4


@pytest.mark.notebook
def test_the_run_says_where_it_executed(graded):
    """Does the run name the cluster and each worker node's containment, before and after grading?"""
    assert graded["output"].count("execution: on the Dask cluster at tcp://127.0.0.1:") == 2, graded["output"]
    assert "containment:" in graded["output"]
    driver_log = graded["out"] / "logs" / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.driver.log"
    assert "driver:" in driver_log.read_text(), "the worker node's driver log did not come back"


@pytest.mark.notebook
def test_a_cluster_rerun_resumes(graded):
    """Does a second cluster run execute nothing and keep every row?"""
    if graded["code_changed"]:
        pytest.skip("the grader's code was edited in this working tree during the test: a rerun must regrade")
    assert graded["again_timing"]["notebooks"] == 0, graded["again_output"]
    assert graded["again"] == graded["cluster"]


def _shard(version: str) -> bytes:
    nb = nbformat.writes(submission(ASSIGNMENT, {}))
    return cluster_protocol.encode_shard(cluster_protocol.Shard(
        version, sandbox.Limits(), "never-skip", "auto", [cluster_protocol.ShardJob(7, ASSIGNMENT, nb)]))


def test_a_worker_node_with_other_code_fails_closed():
    """Does a worker node whose grading code differs from the grading host's refuse each job, with the reason,
    instead of grading it differently?"""
    node, results = cluster_protocol.decode_results(cluster_shard.run_shard(_shard("another checkout")))
    assert results[7].status == Status.ERROR and "other grading code" in results[7].detail
    assert node.version == cluster_protocol.code_version()


class _Job:
    def __init__(self, folder: Path, name: str):
        self.student, self.assignment, self.notebook = name, ASSIGNMENT, ASSIGNMENT
        self.sanitized = folder / f"{name}.ipynb"
        self.sanitized.write_text(nbformat.writes(submission(ASSIGNMENT, {})))
        self.files = []


# A bridge that reports itself ready, takes one shard, and dies: a connection lost mid-run.
DYING_BRIDGE = """
import sys
from grader.autograde import cluster_protocol as p
out = sys.stdout.buffer
p.write_frame(out, {"imported": 1})
p.write_frame(out, {"ready": []})
p.read_frame(sys.stdin.buffer, 2**30)
sys.exit(9)
"""


def test_a_bridge_that_dies_fails_each_submission_in_flight(tmp_path):
    """When the connection to the cluster ends mid-run, is each submission in flight (and each one sent after)
    failed with the reason, never left waiting or dropped?"""
    with cluster.Cluster("tcp://nowhere:1", bridge=[sys.executable, "-c", DYING_BRIDGE]) as remote:
        first = remote.send([_Job(tmp_path, "a"), _Job(tmp_path, "b")], sandbox.Limits(), "tag", "auto", "v")
        for future in first:
            with pytest.raises(cluster.RemoteFailure, match="connection to the Dask cluster ended"):
                future.result(timeout=30)
        later = remote.send([_Job(tmp_path, "c")], sandbox.Limits(), "tag", "auto", "v")
        with pytest.raises(cluster.RemoteFailure, match="exited with code 9"):
            later[0].result(timeout=30)


def test_an_unreachable_scheduler_is_named_at_once():
    """Does a scheduler address nobody answers stop the run before grading, naming the address?"""
    started = time.monotonic()
    with pytest.raises(cluster.ClusterError, match=f"tcp://127.0.0.1:{(port := _free_port())}"):
        cluster.Cluster(f"tcp://127.0.0.1:{port}", connect_s=3)
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("result, reason", [
    (None, "not for this submission"),
    (cluster_protocol.JobResult(1, "graded by me", "", 1.0, "{}"), "unknown status"),
    (cluster_protocol.JobResult(1, Status.ERROR, "the node's own failure"), "the node's own failure"),
    (cluster_protocol.JobResult(1, Status.OK, "", 1.0, "x" * 2048), "larger than"),
    (cluster_protocol.JobResult(1, Status.OK, "", 1.0, '{"cells": "no"}'), "not a notebook"),
])
def test_a_result_that_fails_a_check_is_that_submissions_failure(result, reason):
    """Is a worker node's result checked like a local worker's output: a missing, unknown, oversized or malformed
    one fails that submission with the reason?"""
    with pytest.raises(cluster.RemoteFailure, match=reason):
        cluster._checked(result, 1024, "node-1")


def test_frames_are_capped_before_they_are_read():
    """Does a frame larger than the reader allows fail before its body is read?"""
    import io

    stream = io.BytesIO()
    cluster_protocol.write_frame(stream, {"result": 1}, b"x" * 100)
    stream.seek(0)
    with pytest.raises(cluster_protocol.ProtocolError, match="at most 10"):
        cluster_protocol.read_frame(stream, 10)


def test_the_grading_process_never_imports_dask():
    """Is Dask (and its pickles) kept out of the process that judges and writes the gradebook?"""
    probe = ("import sys, grader.cli, grader.autograde.run, grader.autograde.cluster; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('distributed', 'dask', 'cloudpickle')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_a_shard_survives_the_trip_unchanged():
    """Does a shard's content (notebook text, binary files) arrive on the worker node exactly as sent?"""
    job = cluster_protocol.ShardJob(3, "nb", "text é", [("data/x.bin", bytes(range(256)))])
    shard = cluster_protocol.decode_shard(cluster_protocol.encode_shard(
        cluster_protocol.Shard("v", sandbox.Limits(cell_timeout_s=5), "tag", "uid", [job])))
    assert shard.jobs == [job] and shard.limits.cell_timeout_s == 5 and shard.containment == "uid"
    with pytest.raises(cluster_protocol.ProtocolError, match="not a path inside"):
        cluster_protocol.decode_shard(cluster_protocol.encode_shard(cluster_protocol.Shard(
            "v", sandbox.Limits(), "tag", "uid", [cluster_protocol.ShardJob(1, "nb", "", [("../x", b"")])])))


def test_futures_of_a_dispatch_follow_the_cluster():
    """Does a run's dispatch hand each job the outcome the cluster gave it (here: the connection ending)?"""
    class Ended:
        def send(self, jobs, *args):
            failed = [Future() for _ in jobs]
            for future in failed:
                future.set_exception(cluster.RemoteFailure("the connection to the Dask cluster ended"))
            return failed

    dispatch = cluster.Dispatch(Ended(), sandbox.Limits(), "tag", "auto", shard_size=2)
    futures = [dispatch.submit(object()) for _ in range(3)]
    dispatch.flush()
    for future in futures:
        with pytest.raises(cluster.RemoteFailure):
            future.result(timeout=10)
