"""Execute a class on a Dask cluster: the grading host's side (`python -m grader autograde --scheduler ADDRESS`).

Only the execute phase moves. Submissions are prepared here, sent in shards of a few as soon as they are
prepared, run on the worker nodes through the same sandboxed execution as a local run (cluster_shard.py), and
come back as plain JSON: each executed notebook is checked here (size, nbformat) and written where a local run
writes it, then judged by this host's trusted processes and recorded by nbgrader here, as in a local run.

The Dask client lives in a bridge process of its own (cluster_bridge.py: why). Nothing is lost: a shard whose
worker node died is moved to another node by Dask's scheduler; one that raised is retried once; one that still
fails, a result that fails a check, or a bridge that exits, makes each of its submissions an `error` row with the
reason, and the next run grades those again.
"""

import dataclasses
import itertools
import queue
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import nbformat

import grader
from grader.autograde import cluster_protocol as protocol
from grader.autograde import sandbox
from grader.autograde.replay import executed_path
from grader.autograde.report import Status

DEFAULT_SHARD_SIZE = 4
SHARD_WAIT_S = 1.0  # a shard not yet full leaves after this long: kernels start while the rest is prepared
CONNECT_S = 60.0  # to reach the scheduler and see a worker
MAX_SHARD_BYTES = 2**30  # a larger shard (huge data files) is graded locally instead


class ClusterError(RuntimeError):
    """The cluster cannot be used: its scheduler cannot be reached, no worker is connected, the bridge failed."""


class RemoteFailure(RuntimeError):
    """One submission that the cluster could not execute, with the reason (it becomes that submission's row)."""


@dataclasses.dataclass
class _InFlight:
    jobs: dict[int, tuple[object, Future]]  # id -> (run.Job, its future)
    max_executed_bytes: int


class Cluster:
    """The grading host's end of a Dask cluster: the bridge process, the worker nodes seen, the shards in flight."""

    def __init__(self, address: str, containment: str = "auto", log: Path | None = None, connect_s: float = CONNECT_S,
                 max_shard_bytes: int = MAX_SHARD_BYTES, bridge: list[str] | None = None):
        self.address, self.max_shard_bytes = address, max_shard_bytes
        protocol.code_version()  # this host's code as it starts, which each worker node must run
        self.nodes: dict[tuple[str, str], protocol.WorkerNode] = {}  # (host, containment line) -> the node
        self._lock, self._write_lock = threading.Lock(), threading.Lock()
        self._in_flight: dict[int, _InFlight] = {}
        self._ids = itertools.count()
        self._ended = ""  # why the bridge can take no more shards
        self._control: queue.Queue = queue.Queue()
        self._max_result_bytes = 2**20
        command = bridge or [sys.executable, "-m", "grader.autograde.cluster_bridge", address,
                             "--containment", containment, "--wait", str(connect_s),
                             "--max-shard-bytes", str(max_shard_bytes)]
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115 -- closed in close()
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, start_new_session=True,
            cwd=Path(grader.__file__).resolve().parent.parent)  # the bridge imports this checkout's grader
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self._await_ready(connect_s)
        except BaseException:
            self.close()
            raise

    # Starting: the bridge connects and describes each worker node.

    def _await_ready(self, connect_s: float) -> None:
        deadline = time.monotonic() + connect_s + 300  # a node's first description probes its sandbox
        while True:
            try:
                kind, value = self._control.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                raise ClusterError(f"the Dask scheduler at {self.address} did not answer in time") from None
            if kind == "ready":
                for raw in value:
                    self._saw(protocol.decode_node(raw))
                return
            if kind == "fatal":
                raise ClusterError(f"cannot grade on the Dask cluster at {self.address}: {value}")
            if kind == "ended":
                raise ClusterError(f"the connection to the Dask cluster at {self.address} ended before it was "
                                   f"ready ({value})")

    def _saw(self, node: protocol.WorkerNode) -> None:
        with self._lock:
            self.nodes[node.host, node.containment] = node

    def lines(self) -> list[str]:
        """What a run says about where it executes: the cluster, then each worker node's containment."""
        with self._lock:
            nodes = sorted(self.nodes.values(), key=lambda n: (n.host, n.containment))
        return [f"execution: on the Dask cluster at {self.address}"] + [f"  {n.host}: {n.containment}" for n in nodes]

    def warnings(self) -> list[str]:
        """What the worker nodes' sandboxes lack, and nodes whose grading code is not this host's."""
        version = protocol.code_version()
        with self._lock:
            nodes = sorted(self.nodes.values(), key=lambda n: (n.host, n.containment))
        found = [f"on worker node {n.host}: {w}" for n in nodes for w in n.warnings]
        found += [f"worker node {n.host} has other grading code than this host: its shards are not graded "
                  "(install the same commit and environment there)" for n in nodes if n.version != version]
        return list(dict.fromkeys(found))

    # Frames from the bridge.

    def _read(self) -> None:
        reason = "the bridge closed its output"
        try:
            while (frame := protocol.read_frame(self.process.stdout, self._max_result_bytes)) is not None:
                header, body = frame
                if "result" in header:
                    self._answer(int(header["result"]), body)
                elif "failed" in header:
                    self._fail_shard(int(header["failed"]), "its shard failed on the cluster, and again when "
                                     f"retried ({str(header.get('reason'))[:300]})")
                elif "ready" in header:
                    self._control.put(("ready", header["ready"] if isinstance(header["ready"], list) else []))
                elif "fatal" in header:
                    self._control.put(("fatal", str(header["fatal"])[:600]))
        except (protocol.ProtocolError, ValueError, TypeError, OSError) as error:
            reason = f"the bridge broke the protocol ({str(error)[:200]})"
            self.process.kill()  # nothing it says can be read any more
        finally:
            self.process.stdout.close()
            code = self.process.wait()
            self._end(f"{reason}; the bridge exited with code {code}")

    def _end(self, reason: str) -> None:
        """Nothing more can come from the bridge: every submission still in flight fails with why."""
        with self._lock:
            self._ended = self._ended or reason
            in_flight, self._in_flight = self._in_flight, {}
        self._control.put(("ended", reason))
        for shard in in_flight.values():
            for _, future in shard.jobs.values():
                _settle(future, RemoteFailure(f"the connection to the Dask cluster ended ({reason})"))

    def _fail_shard(self, shard_id: int, reason: str) -> None:
        with self._lock:
            shard = self._in_flight.pop(shard_id, None)
        for _, future in (shard.jobs.values() if shard else []):
            _settle(future, RemoteFailure(reason))

    def _answer(self, shard_id: int, body: bytes) -> None:
        with self._lock:
            shard = self._in_flight.pop(shard_id, None)
        if shard is None:
            return  # a shard this process no longer waits for
        try:
            node, results = protocol.decode_results(body)
        except protocol.ProtocolError as error:
            for _, future in shard.jobs.values():
                _settle(future, RemoteFailure(f"the cluster's answer could not be read ({error})"))
            return
        self._saw(node)
        for job_id, (_, future) in shard.jobs.items():
            result = results.get(job_id)
            try:
                _settle(future, _checked(result, shard.max_executed_bytes, node.host))
            except RemoteFailure as failure:
                _settle(future, failure)

    # Shards to the bridge.

    def send(self, jobs: list, limits: sandbox.Limits, skip_tag: str, containment: str, version: str) -> list[Future]:
        """Send prepared jobs (run.Job) as one shard; a future per job, settled with its checked JobResult."""
        futures = [Future() for _ in jobs]
        shard_jobs, tracked = [], {}
        for job, future in zip(jobs, futures):
            job_id = next(self._ids)
            try:
                shard_jobs.append(protocol.ShardJob(job_id, job.notebook, job.sanitized.read_text(encoding="utf-8"),
                                                    [(relative, Path(path).read_bytes()) for relative, path in
                                                     job.files]))
                tracked[job_id] = (job, future)
            except OSError as error:
                _settle(future, RemoteFailure(f"its files could not be read to send ({error})"))
        if not shard_jobs:
            return futures
        body = protocol.encode_shard(protocol.Shard(version, limits, skip_tag, containment, shard_jobs))
        shard_id = next(self._ids)
        with self._lock:
            # A result holds each notebook as JSON text inside JSON: escaping can grow it up to six times.
            self._max_result_bytes = max(self._max_result_bytes,
                                         len(shard_jobs) * 6 * (limits.max_executed_bytes + protocol.LOG_CHARS) + 2**20)
            ended = self._ended
            if not ended:
                self._in_flight[shard_id] = _InFlight(tracked, limits.max_executed_bytes)
        if len(body) > self.max_shard_bytes:
            self._fail_shard(shard_id, f"its shard is {len(body) // 2**20} MiB, more than the cluster takes "
                             f"({self.max_shard_bytes // 2**20} MiB): grade it locally")
        elif ended:
            for _, future in tracked.values():
                _settle(future, RemoteFailure(f"the connection to the Dask cluster ended ({ended})"))
        else:
            try:
                with self._write_lock:
                    protocol.write_frame(self.process.stdin, {"shard": shard_id}, body)
            except OSError as error:
                self._fail_shard(shard_id, f"it could not be sent to the cluster's bridge ({error})")
        return futures

    def close(self) -> None:
        """No more shards: the bridge cancels what is left on the cluster and exits."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _settle(future: Future, outcome) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _checked(result: protocol.JobResult | None, max_executed_bytes: int, host: str) -> protocol.JobResult:
    """A worker node's result for one submission, as far as this host can check it; RemoteFailure if it fails."""
    if result is None:
        raise RemoteFailure(f"the worker node {host} answered for its shard but not for this submission")
    if result.status not in set(Status) or result.status == Status.ERROR:
        raise RemoteFailure(result.detail if result.status == Status.ERROR
                            else f"the worker node {host} answered with an unknown status {result.status!r}")
    if len(result.executed.encode("utf-8")) > max_executed_bytes:
        raise RemoteFailure(f"the executed notebook from {host} is larger than {max_executed_bytes // 2**20} MiB")
    try:
        nbformat.reads(result.executed, as_version=4)
    except Exception as error:  # noqa: BLE001 -- whatever it is, it is not a notebook to judge
        raise RemoteFailure(f"the executed notebook from {host} is not a notebook ({type(error).__name__})") from None
    return result


class Dispatch:
    """One run's shards: jobs are gathered into shards of `shard_size` as they are prepared, each sent when full
    or SHARD_WAIT_S after its first job, so worker nodes start while the rest of the class is prepared."""

    def __init__(self, cluster: Cluster, limits: sandbox.Limits, skip_tag: str, containment: str,
                 shard_size: int = DEFAULT_SHARD_SIZE):
        self.cluster, self.limits, self.skip_tag, self.containment = cluster, limits, skip_tag, containment
        self.shard_size = max(shard_size, 1)
        self.version = protocol.code_version()
        self._waiting: list[tuple[object, Future]] = []
        self._first = 0.0
        self._closed = False
        self._condition = threading.Condition()
        self._sender = threading.Thread(target=self._send_shards, daemon=True)
        self._sender.start()

    def submit(self, job) -> Future:
        """A future for `job`'s result (a protocol.JobResult) from the cluster."""
        future = Future()
        with self._condition:
            if not self._waiting:
                self._first = time.monotonic()
            self._waiting.append((job, future))
            self._condition.notify()
        return future

    def _send_shards(self) -> None:
        while True:
            with self._condition:
                while not (self._closed or len(self._waiting) >= self.shard_size
                           or (self._waiting and time.monotonic() - self._first >= SHARD_WAIT_S)):
                    self._condition.wait(timeout=SHARD_WAIT_S / 4)
                if not self._waiting and self._closed:
                    return
                batch, self._waiting = self._waiting[:self.shard_size], self._waiting[self.shard_size:]
                self._first = time.monotonic()
            if batch:
                self._send(batch)

    def _send(self, batch: list[tuple[object, Future]]) -> None:
        try:
            sent = self.cluster.send([job for job, _ in batch], self.limits, self.skip_tag, self.containment,
                                     self.version)
        except Exception as error:  # noqa: BLE001 -- each of its jobs fails with the reason, never silently
            for _, future in batch:
                _settle(future, RemoteFailure(f"it could not be sent to the cluster ({type(error).__name__}: "
                                              f"{str(error)[:200]})"))
            return
        for (_, mine), theirs in zip(batch, sent):
            theirs.add_done_callback(lambda done, mine=mine: _settle(mine, done.exception() or done.result()))

    def flush(self) -> None:
        """Every job is submitted: send what is left, now."""
        with self._condition:
            self._closed = True
            self._condition.notify()
        self._sender.join()

    def collect(self, job, future: Future, executed_root: Path, logs: Path):
        """Wait for `job`'s result; write its executed notebook and driver log where a local run writes them and
        set its status. RemoteFailure if the cluster could not execute it."""
        result: protocol.JobResult = future.result()
        job.status, job.detail, job.seconds = result.status, result.detail, result.seconds
        ended = time.monotonic()
        job.span = (ended - result.seconds, ended)  # on this host's clock: when it ran, as far as it can tell
        log = logs / job.student / job.assignment / f"{job.notebook}.driver.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(result.log, encoding="utf-8")
        target = executed_path(executed_root, job.student, job.assignment, job.notebook)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(result.executed, encoding="utf-8")
        return job
