"""The trusted side's work on each submission, in parallel processes: judging and feedback pages.

No student code runs here. A judge reads what a kernel observed and recomputes the verdicts; a
feedback page renders a graded notebook. Both run in a small pool of trusted processes, beside the
kernels rather than after them, and each task is bounded in time and memory: a hand-in that makes a
judge or a page slow or huge costs its own grade or page, never the class.
"""

import copy
import multiprocessing
import os
import resource
import signal
import stat
import sys
import threading
import time
import types
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import nbformat

JUDGE_SECONDS = 120  # a judge recomputes a few small models at most
PAGE_SECONDS = 60


class ReplayMismatch(RuntimeError):
    """The executed copy's cells are not the trusted notebook's: it is not the notebook that was graded."""


class TaskTimeout(RuntimeError):
    pass


def read_capped(path: Path, limit: int) -> bytes | None:
    """A regular file's bytes, read without following a link; None if it is absent, not a regular file, or
    larger than `limit`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        return f.read(limit + 1)[:limit]


def merge_outputs(trusted: nbformat.NotebookNode, executed: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The trusted notebook with the outputs the kernel produced. Only outputs and execution counts come from
    the executed copy, which student code could rewrite: points, grade ids and cell types stay the trusted
    notebook's (nbgrader restored them from the gradebook)."""
    # Sanitising is deterministic, so the worker ran exactly these cells.
    if [c.source for c in executed.cells] != [c.source for c in trusted.cells]:
        raise ReplayMismatch("the executed notebook does not match the sanitised submission it should replay")
    merged = copy.deepcopy(trusted)
    for cell, ran in zip(merged.cells, executed.cells, strict=True):
        if cell.cell_type == "code":
            outputs = ran.get("outputs", [])
            cell.outputs = outputs if isinstance(outputs, list) else []
            count = ran.get("execution_count")
            cell.execution_count = count if isinstance(count, int) else None
    return merged


def judge_notebook(executed: str, trusted: str, judged: str, max_bytes: int) -> float:
    """Write `judged`: the trusted notebook with the kernel's outputs, every judged test cell's outputs replaced
    by its judge's verdict; returns the seconds it took. Raises if the executed copy cannot be read or is not
    this submission's."""
    from grader.autograde import judge

    start = time.perf_counter()
    data = read_capped(Path(executed), max_bytes)
    if data is None:
        raise ReplayMismatch(f"the executed notebook is missing, not a file, or over {max_bytes // 2**20} MiB")
    trusted_nb = nbformat.read(trusted, as_version=4)
    merged = merge_outputs(trusted_nb, nbformat.reads(data.decode("utf-8"), as_version=4))
    Path(judged).parent.mkdir(parents=True, exist_ok=True)
    Path(judged).write_text(nbformat.writes(judge.apply(merged, trusted_nb)), encoding="utf-8")
    return time.perf_counter() - start


def render_page(page: str, notebook: str | None, title: str, score: float, max_score: float, status: str,
                detail: str, needs_manual_grade: bool, late_penalty: float, language: str | None) -> None:
    from grader.autograde import feedback

    feedback.write(Path(page), Path(notebook) if notebook else None, title, score, max_score, status, detail,
                   needs_manual_grade=needs_manual_grade, late_penalty=late_penalty, language=language)


def _bounded(seconds: int, task, *args):
    """Run `task` in this trusted process, stopped with TaskTimeout after `seconds`."""
    def expire(signum, frame):
        raise TaskTimeout(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        return task(*args)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _start(memory_bytes: int) -> None:
    """Each trusted process: bounded memory, the judges' libraries imported before the first task."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    os.environ.setdefault("MPLBACKEND", "Agg")
    import torch

    torch.set_num_threads(1)  # as each kernel: the pool and the kernels share the cores, one thread each
    import importlib
    import pkgutil

    import grader.autograde.feedback
    import grader.checks

    for info in pkgutil.iter_modules(grader.checks.__path__):
        importlib.import_module(f"grader.checks.{info.name}")
    grader.autograde.feedback._exporter()  # its templates load once per process


class Pool:
    """Trusted processes for judging and feedback. A process that dies (a judge's crash, memory) is replaced,
    and the task it ran is tried once more before it fails alone."""

    def __init__(self, processes: int, memory_bytes: int):
        self.processes, self.memory_bytes = max(processes, 1), memory_bytes
        self._lock = threading.Lock()
        self._executor = self._new()

    def _new(self) -> ProcessPoolExecutor:
        # spawn: a fresh interpreter, never a fork of this process's threads, gradebook connection or memory
        executor = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_start, initargs=(self.memory_bytes,))
        # spawn runs the parent's main script again in each child, unless the script guards itself with
        # `if __name__ == "__main__"`: an instructor's unguarded script would start a second grading run there.
        # The children need nothing of it, and they all start here, now, while submissions are prepared.
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            for _ in range(self.processes):
                executor.submit(int)
        finally:
            sys.modules["__main__"] = main
        return executor

    def run(self, seconds: int, task, *args):
        for attempt in (1, 2):
            with self._lock:
                executor = self._executor
            try:
                return executor.submit(_bounded, seconds, task, *args).result()
            except BrokenProcessPool:
                with self._lock:
                    if self._executor is executor:  # the first thread to see it breaks replaces it
                        executor.shutdown(wait=False, cancel_futures=True)
                        self._executor = self._new()
                if attempt == 2:
                    raise RuntimeError("its trusted grading process died twice (a crash or its memory limit)") \
                        from None
        raise AssertionError("unreachable")

    def judge(self, executed: Path, trusted: Path, judged: Path, max_bytes: int) -> float:
        return self.run(JUDGE_SECONDS, judge_notebook, str(executed), str(trusted), str(judged), max_bytes)

    def page(self, *args) -> None:
        self.run(PAGE_SECONDS, render_page, *args)

    def close(self) -> None:
        """No more tasks; the processes leave on their own (waiting for their exit would only delay the run)."""
        with self._lock:
            self._executor.shutdown(wait=False, cancel_futures=True)
