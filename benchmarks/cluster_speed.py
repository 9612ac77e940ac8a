"""Benchmark: a class graded locally against the same class graded through a Dask scheduler with 1, then 2 workers.

Generates a class (benchmarks/autograde_speed.py's: correct, partly wrong and broken hand-ins), grades it with
`python -m grader autograde --workers 2`, then starts a local `dask scheduler` and grades it again with
`--scheduler` on one `dask worker --nthreads 1`, then on two. Checks the three give every submission the same
score and status, and prints the speed-up from 1 to 2 workers and the overhead per submission against the local
run. Not a test: run it by hand (as root, as the workers need for the sandbox),

    python benchmarks/cluster_speed.py --students 4 --assignment 01_tensors
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from autograde_speed import make_class  # noqa: E402

from grader import course  # noqa: E402
from grader.autograde import report  # noqa: E402
from grader.nbgrader_api import ensure_env_bin_on_path  # noqa: E402

DASK = str(Path(sys.executable).parent / "dask")


def grade(class_dir: Path, root: Path, *extra: str) -> tuple[float, dict, dict]:
    """One graded run into a fresh folder: its seconds, its rows by (student, assignment), its timing record."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "grader", "autograde", str(class_dir), "--out", str(root / "out"),
                           "--db", f"sqlite:///{root}/gradebook.db", "--autograded", str(root / "autograded"),
                           *extra], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"autograde {' '.join(extra)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    rows = report.read_rows(root / "out" / report.GRADES_CSV)
    return seconds, rows, json.loads((root / "out" / report.TIMING_JSON).read_text())


def _outcome(row: report.Row | None) -> tuple | None:
    return (row.score, row.max_score, row.status) if row else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalCluster:
    """`dask scheduler` and `dask worker` processes on loopback, each in a process group of its own."""

    def __init__(self, logs: Path):
        self.address, self.logs, self.processes = f"tcp://127.0.0.1:{_free_port()}", logs, []
        self._start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1])

    def _start(self, name: str, *command: str) -> None:
        with open(self.logs / f"{name}.log", "wb") as log:
            self.processes.append(subprocess.Popen([DASK, *command, "--no-dashboard"], stdout=log,
                                                   stderr=subprocess.STDOUT, start_new_session=True))

    def add_worker(self, count: int) -> float:
        """Start a worker; returns the seconds until the scheduler has `count` of them."""
        from distributed import Client

        start = time.perf_counter()
        self._start(f"worker{count}", "worker", self.address, "--nthreads", "1", "--host", "127.0.0.1")
        with Client(self.address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=120)
        return time.perf_counter() - start

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--assignment", action="append", help="default: every assignment")
    parser.add_argument("--shard-size", type=int, default=2)
    args = parser.parse_args()
    ensure_env_bin_on_path()
    assignments = args.assignment or course.assignments()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        class_dir = scratch / "class"
        make_class(class_dir, args.students, assignments)
        submissions = len(list(class_dir.rglob("*.ipynb")))
        print(f"class: {args.students} students x {len(assignments)} assignments: {submissions} notebooks")
        local_s, local_rows, local_timing = grade(class_dir, scratch / "local", "--workers", "2")
        print(f"local --workers 2:            {local_s:6.1f} s  ({local_timing['notebooks']} executed)")
        results = {}
        for workers in (1, 2):
            # A fresh cluster per size: a worker keeps the code it started with, and one started for an earlier
            # size would refuse shards if the checkout changed since.
            (scratch / f"dask-logs{workers}").mkdir()
            cluster = LocalCluster(scratch / f"dask-logs{workers}")
            try:
                started = max(cluster.add_worker(count) for count in range(1, workers + 1))
                seconds, rows, timing = grade(class_dir, scratch / f"cluster{workers}", "--workers", "2",
                                              "--scheduler", cluster.address, "--shard-size", str(args.shard_size))
            finally:
                cluster.stop()
            results[workers] = seconds
            print(f"--scheduler, {workers} worker(s):     {seconds:6.1f} s  ({timing['notebooks']} executed; "
                  f"a worker joined in {started:.1f} s)")
            differences = {k: (local_rows.get(k), rows.get(k)) for k in set(local_rows) | set(rows)
                           if _outcome(local_rows.get(k)) != _outcome(rows.get(k))}
            print(f"  rows identical to the local run: {len(local_rows) - len(differences)} of {len(local_rows)}")
            for key, (local, remote) in sorted(differences.items())[:10]:
                print(f"  {key}: local {_outcome(local)}, cluster {_outcome(remote)} {remote and remote.detail}")
            if differences:
                return 1
        executed = max(local_timing["notebooks"], 1)
        print(f"speed-up from 1 to 2 workers: {results[1] / results[2]:.2f}x")
        print(f"overhead against local --workers 2 (same two kernels at once): {results[2] - local_s:+.1f} s in all, "
              f"{(results[2] - local_s) / executed:+.2f} s per executed notebook")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
