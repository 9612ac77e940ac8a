"""What crosses between the grading host and a Dask cluster, in one place: frames, shards and their results.

    grading process --frame: shard--> bridge (holds the Dask client) --Dask task--> worker node: run_shard
    grading process <--frame: results-- bridge <--bytes-- worker node

Everything here is plain JSON and bytes. A frame is one JSON header line, then exactly `bytes` raw bytes; the
reader caps both before it reads, so neither side can be made to hold more than it expects. Dask's own
messages are pickles: they stay between the bridge and the cluster (cluster_bridge.py says why).

A shard is a few prepared submissions: each one's sanitised notebook (text) and the files of its work folder
(base64), the run's limits, skip tag and containment, and the version of the grading code that prepared it.
Its results are, per submission, what a local run would have left: status, detail, seconds, the executed
notebook (text) and the driver's log. The grading process checks them as it checks a local worker's output.
"""

import base64
import binascii
import dataclasses
import functools
import hashlib
import importlib.metadata
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import grader
from grader.autograde import sandbox

HEADER_BYTES = 64 * 2**10  # a header line: ids and sizes only
LOG_CHARS = 2**20  # a driver log, as a local run keeps it
DETAIL_CHARS = 2000
# The packages whose behaviour a kernel's run depends on besides the grader's own code.
RUNTIME_PACKAGES = ("nbgrader", "nbclient", "nbformat", "ipykernel", "jupyter_client", "torch", "numpy")


class ProtocolError(ValueError):
    """A frame, shard or result that is not what this protocol allows."""


@functools.cache
def code_version() -> str:
    """The grading code a worker node must run to execute a shard the way this host would: the grader package
    (kernel set-up, observers, sandbox) and the versions of the packages a kernel runs with. Taken once per
    process, near when it imported the grader: a node whose checkout changed under it keeps the code it loaded,
    so it must keep reporting that code's version (restart the workers after an update)."""
    package = Path(grader.__file__).resolve().parent
    parts = [f"{path.relative_to(package).as_posix()}:{hashlib.sha256(path.read_bytes()).hexdigest()}"
             for path in sorted(package.rglob("*.py")) if "__pycache__" not in path.parts]
    for name in RUNTIME_PACKAGES:
        try:
            parts.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{name} absent")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


# Frames: a header line, then the body.

def write_frame(stream, header: dict, body: bytes = b"") -> None:
    stream.write(json.dumps({**header, "bytes": len(body)}).encode() + b"\n" + body)
    stream.flush()


def read_frame(stream, max_body: int) -> tuple[dict, bytes] | None:
    """The next frame, or None at the end of the stream. ProtocolError if it breaks the caps."""
    line = stream.readline(HEADER_BYTES + 1)
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise ProtocolError(f"a frame header longer than {HEADER_BYTES} bytes, or cut short")
    try:
        header = json.loads(line)
    except ValueError as error:
        raise ProtocolError(f"a frame header that is not JSON ({error})") from None
    size = header.get("bytes") if isinstance(header, dict) else None
    if not isinstance(size, int) or not 0 <= size <= max_body:
        raise ProtocolError(f"a frame of {size!r} bytes (at most {max_body} allowed)")
    body = stream.read(size) if size else b""
    if len(body) != size:
        raise ProtocolError("the stream ended inside a frame")
    return header, body


# Shards: what the grading host sends.

@dataclass
class ShardJob:
    id: int
    notebook: str  # its name, without .ipynb: the kernel's folder holds <notebook>.ipynb
    sanitized: str  # the sanitised notebook's text
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (path in the work folder, content)


@dataclass
class Shard:
    version: str
    limits: sandbox.Limits
    skip_tag: str
    containment: str
    jobs: list[ShardJob]


def _relative(path: str) -> str:
    """A path inside a work folder: relative, no `..`, nothing odd."""
    parts = PurePosixPath(path).parts
    if not isinstance(path, str) or not parts or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ProtocolError(f"{path!r} is not a path inside a work folder")
    return path


def _plain_name(name: str) -> str:
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ProtocolError(f"{name!r} is not a notebook name")
    return name


def encode_shard(shard: Shard) -> bytes:
    return json.dumps({
        "version": shard.version, "limits": dataclasses.asdict(shard.limits), "skip_tag": shard.skip_tag,
        "containment": shard.containment,
        "jobs": [{"id": job.id, "notebook": job.notebook, "sanitized": job.sanitized,
                  "files": [[relative, base64.b64encode(data).decode()] for relative, data in job.files]}
                 for job in shard.jobs],
    }).encode()


def decode_shard(data: bytes) -> Shard:
    try:
        raw = json.loads(data)
        jobs = [ShardJob(int(job["id"]), _plain_name(job["notebook"]), str(job["sanitized"]),
                         [(_relative(relative), base64.b64decode(content, validate=True))
                          for relative, content in job["files"]])
                for job in raw["jobs"]]
        return Shard(str(raw["version"]), sandbox.Limits(**raw["limits"]), str(raw["skip_tag"]),
                     str(raw["containment"]), jobs)
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise ProtocolError(f"not a shard ({type(error).__name__}: {str(error)[:200]})") from None


# Results: what a worker node sends back.

@dataclass
class JobResult:
    id: int
    status: str  # a report.Status
    detail: str
    seconds: float = 0.0
    executed: str = ""  # the executed notebook's text ("" when the worker node could not run it)
    log: str = ""  # the driver's log


@dataclass
class WorkerNode:
    """Where a shard ran, and what that node's sandbox lacks (said at the start and end of a run)."""

    host: str
    containment: str  # its containment line, as a local run prints it
    warnings: list[str]
    version: str


def encode_results(node: WorkerNode, results: list[JobResult]) -> bytes:
    return json.dumps({"node": dataclasses.asdict(node), "jobs": [dataclasses.asdict(r) for r in results]}).encode()


def _text(value, limit: int) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"a {type(value).__name__} where text was expected")
    return value[:limit]


def decode_node(raw) -> WorkerNode:
    if not isinstance(raw, dict) or not isinstance(raw.get("warnings"), list):
        raise ProtocolError("not a description of a worker node")
    return WorkerNode(_text(raw.get("host"), 200), _text(raw.get("containment"), DETAIL_CHARS),
                      [_text(w, DETAIL_CHARS) for w in raw["warnings"][:20]], _text(raw.get("version"), 100))


def decode_results(data: bytes) -> tuple[WorkerNode, dict[int, JobResult]]:
    """The results of a shard, by job id; the sizes of notebooks are the caller's to check."""
    try:
        raw = json.loads(data)
        results = {}
        for job in raw["jobs"]:
            seconds = job.get("seconds", 0.0)
            if not isinstance(seconds, (int, float)) or not 0 <= seconds < 10**7:
                raise ProtocolError(f"{seconds!r} is not a duration")
            result = JobResult(int(job["id"]), _text(job["status"], 40), _text(job["detail"], DETAIL_CHARS),
                               float(seconds), _text(job.get("executed", ""), 2**40), _text(job.get("log", ""),
                                                                                             LOG_CHARS))
            results[result.id] = result
        return decode_node(raw["node"]), results
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ProtocolError(f"not a shard's results ({type(error).__name__}: {str(error)[:200]})") from None
