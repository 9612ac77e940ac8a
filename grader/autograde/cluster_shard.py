"""On a Dask worker node: run a shard of submissions through the same sandboxed execution as a local run.

Each Dask worker process (started as root, with `--nthreads 1`) keeps one grading worker (worker.py: the
libraries imported once, a driver and a jailed kernel forked per notebook) across shards, and takes a slot user
of its own per shard from this node's sandbox, exactly as one slot of a local run does. What comes back is plain
JSON (cluster_protocol.py); nothing of this node is trusted by the grading host beyond what it checks.
"""

import os
import shutil
import socket
import tempfile
import threading
import traceback
from pathlib import Path

from grader import course
from grader.autograde import cluster_protocol as protocol
from grader.autograde import run, sandbox
from grader.autograde.replay import executed_path
from grader.autograde.report import Status
from grader.autograde.worker import Worker

STAGING_PREFIX = "grading-shard-"
_local = threading.local()  # one grading worker per Dask thread, kept between shards


def describe(containment: str) -> protocol.WorkerNode:
    """This node as a run reports it: its containment and what its sandbox lacks."""
    try:
        line, warnings = sandbox.choose(containment).line, sandbox.isolation_warnings(containment)
    except sandbox.SandboxError as error:
        line, warnings = f"containment: none ({error})", [str(error)]
    return protocol.WorkerNode(socket.gethostname(), line, warnings, protocol.code_version())


def describe_json(containment: str) -> str:
    """describe(), as the JSON the bridge relays (its reply to `Client.run` is this plain string)."""
    import dataclasses
    import json

    return json.dumps(dataclasses.asdict(describe(containment)))


def _grading_worker() -> Worker:
    if getattr(_local, "worker", None) is None:
        _local.worker = Worker()
        _local.worker.start()
    return _local.worker


def _remove_stale_staging() -> None:
    """Shard folders of Dask worker processes that were killed mid-shard (their finally never ran)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{STAGING_PREFIX}*-*"):
        pid = folder.name.removeprefix(STAGING_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


def _stage(job: protocol.ShardJob, folder: Path) -> run.Job:
    """The job as run._execute takes it, its files under `folder` (only root can enter the shard's folder)."""
    folder.mkdir()
    sanitized = folder / "sanitized.ipynb"
    sanitized.write_text(job.sanitized, encoding="utf-8")
    files = []
    for relative, data in job.files:
        target = folder / "files" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        files.append((relative, target))
    # Student and assignment are only folder names here: the grading host keeps who the notebook is whose.
    return run.Job("student", f"job-{job.id}", job.notebook, sanitized, files=files)


def _run_one(job: protocol.ShardJob, shard: protocol.Shard, box: sandbox.Sandbox, staging: Path,
             hidden: list[str] | None) -> protocol.JobResult:
    worker = _grading_worker()
    try:
        local = _stage(job, staging / str(job.id))
        run._execute(local, 0, worker, box, shard.limits, shard.skip_tag, staging / "executed", hidden,
                     staging / "logs")
        executed = executed_path(staging / "executed", local.student, local.assignment, local.notebook)
        log = staging / "logs" / local.student / local.assignment / f"{local.notebook}.driver.log"
        return protocol.JobResult(
            job.id, local.status, local.detail, local.seconds, executed.read_text(encoding="utf-8"),
            log.read_bytes()[:protocol.LOG_CHARS].decode(errors="replace") if log.exists() else "")
    except Exception as error:  # noqa: BLE001 -- one submission can never cost the shard
        if worker.busy:
            worker.kill()  # failed mid-job, in a state nobody knows: the next job starts a fresh worker
        return protocol.JobResult(job.id, Status.ERROR, f"grading failed on {socket.gethostname()} before its "
                                  f"cells could run ({type(error).__name__}: {str(error)[:200]}); rerun")


def run_shard(payload: bytes) -> bytes:
    """Execute every notebook of a shard on this node; the results as bytes (cluster_protocol's JSON)."""
    shard = protocol.decode_shard(payload)
    node = describe(shard.containment)
    if shard.version != node.version:  # fail closed: a node with other code would grade differently
        reason = (f"not run: the worker node {node.host} has other grading code than the grading host (its "
                  "checkout or packages differ); install the same commit and environment there, then rerun")
        return protocol.encode_results(node, [protocol.JobResult(job.id, Status.ERROR, reason) for job in shard.jobs])
    _remove_stale_staging()
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-"))  # 0700: other students' work
    try:
        with sandbox.Sandbox(shard.containment, 1, shard.limits) as box:
            # As a local run hides the course and the hand-in: this node's checkout and the shard's folder.
            hidden = sorted({str(course.ROOT), str(staging)}) if sandbox.jail_available() else None
            results = [_run_one(job, shard, box, staging, hidden) for job in shard.jobs]
    except Exception:  # noqa: BLE001 -- the sandbox itself failed: Dask retries the shard, then reports it
        raise RuntimeError(f"the sandbox on {socket.gethostname()} failed: {traceback.format_exc()[-500:]}") \
            from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return protocol.encode_results(node, results)
