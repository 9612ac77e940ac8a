"""The one process on the grading host that holds a Dask client: `python -m grader.autograde.cluster_bridge`.

Dask's messages between a client, its scheduler and its workers are pickles, and unpickling runs code: a worker
node that a submission got the better of could send this process anything. So the process that judges and
writes the gradebook never imports distributed. It starts this bridge and talks to it in frames of plain JSON
and bytes (cluster_protocol.py) over its stdin and stdout; what the bridge relays (a shard's results, as bytes)
is checked there like a local worker's output. Started as root, the bridge gives up root once it has connected
(to `nobody`, with no_new_privs), so a forged pickle gains a process that can neither read the gradebook nor the
course, nor write to the grading folder.

    stdin:  a frame {"shard": id} + the shard's bytes, per shard; the end of stdin: nothing more is wanted
    stdout: {"imported": pid}, then {"ready": [worker nodes]} or {"fatal": why}; then per shard
            {"result": id} + the results' bytes, or {"failed": id, "reason": why}
"""

import argparse
import functools
import json
import os
import sys
import threading
import uuid

from grader.autograde import cluster_protocol as protocol

NOBODY = 65534
PR_SET_NO_NEW_PRIVS = 38
# Dask retries a shard that raised once; a shard whose worker node died is moved to another node by the scheduler
# itself, up to `distributed.scheduler.allowed-failures` times.
RETRIES = 1


def run_shard_task(payload: bytes) -> bytes:
    """What a Dask task runs on a worker node (Dask sends this function by name; the node imports the rest)."""
    from grader.autograde.cluster_shard import run_shard

    return run_shard(payload)


def describe_task(containment: str) -> str:
    from grader.autograde.cluster_shard import describe_json

    return describe_json(containment)


def _give_up_root() -> None:
    if os.geteuid() != 0:
        return
    import ctypes

    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def serve(address: str, containment: str, wait_s: float, max_shard_bytes: int) -> int:
    frames = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever Dask prints goes to the log, never into the frames
    lock = threading.Lock()

    def send(header: dict, body: bytes = b"") -> None:
        with lock:
            protocol.write_frame(frames, header, body)

    import distributed

    send({"imported": os.getpid()})
    try:
        client = distributed.Client(address, timeout=wait_s, set_as_default=False)
        client.wait_for_workers(1, timeout=wait_s)
        nodes = [{**json.loads(text), "address": worker}
                 for worker, text in client.run(describe_task, containment).items()]
    except Exception as error:  # noqa: BLE001 -- said to the grading process, which stops with it
        send({"fatal": f"{type(error).__name__}: {str(error)[:500]}"})
        return 1
    _give_up_root()
    send({"ready": nodes})

    def done(future, shard: int) -> None:
        try:
            result = future.result()
            if not isinstance(result, bytes):
                raise TypeError(f"a worker node answered with a {type(result).__name__}, not bytes")
            send({"result": shard}, result)
        except BaseException as error:  # noqa: BLE001 -- a cancelled future raises CancelledError
            send({"failed": shard, "reason": f"{type(error).__name__}: {str(error)[:500]}"})

    run = uuid.uuid4().hex[:8]
    futures = []
    stdin = sys.stdin.buffer
    while (frame := protocol.read_frame(stdin, max_shard_bytes)) is not None:
        header, body = frame
        future = client.submit(run_shard_task, body, key=f"grade-shard-{run}-{int(header['shard'])}", pure=False,
                               retries=RETRIES)
        future.add_done_callback(functools.partial(done, shard=int(header["shard"])))
        futures.append(future)
    # The grading process is done, or gone: nothing more is wanted from the cluster.
    client.cancel([f for f in futures if not f.done()])
    client.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("address")
    parser.add_argument("--containment", default="auto")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to reach the scheduler and a worker")
    parser.add_argument("--max-shard-bytes", type=int, required=True)
    args = parser.parse_args(argv)
    return serve(args.address, args.containment, args.wait, args.max_shard_bytes)


if __name__ == "__main__":
    sys.exit(main())
