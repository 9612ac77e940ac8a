"""grades.csv, the timing record and the one-screen summary at the end of a run."""

import csv
import json
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path

GRADES_CSV = "grades.csv"
TIMING_JSON = "timing.json"


class Status(StrEnum):
    """What became of a submission: `ok`, or why it scored less than its work earned. The one list of them."""

    OK = "ok"
    MISSING = "missing"  # nothing handed in
    UNPARSEABLE = "unparseable"  # not a notebook Jupyter can open
    TOO_LARGE = "too-large"  # over the size limit, handed in or once executed
    TIMEOUT = "timeout"  # a cell or the notebook ran out of time
    KERNEL_DIED = "kernel-died"  # the kernel crashed or was killed (memory)
    ERROR = "error"  # the grader could not grade it (its reason says why); the next run tries again


@dataclass
class Row:
    student_id: str
    assignment: str
    score: float  # as `nbgrader export` gives it: the points, less any late penalty, never below 0
    max_score: float
    status: str  # a Status
    detail: str  # what happened and what to do about it
    raw_score: float = 0.0  # the points the work earned, before any late penalty
    needs_manual_grade: bool = False  # answers a person grades in formgrader: the score can still rise
    submitted_at: str = ""  # when it was handed in (timestamp.txt, the LMS's name or zip entry), UTC, if known
    due: str = ""  # its due date (UTC), if the gradebook has one
    late: bool = False  # handed in after the due date (or so marked by the LMS)
    penalty: float = 0.0  # the late penalty, already taken off `score`
    sha256: str = ""  # resume key: the hand-in, the grader and the assignment's tests; unchanged: not regraded


def _flag(text: str) -> bool:
    return text == "True"


_TYPES = {"score": float, "max_score": float, "raw_score": float, "penalty": float,
          "needs_manual_grade": _flag, "late": _flag}


def read_rows(path: Path) -> dict[tuple[str, str], Row]:
    """The rows of an earlier run's grades.csv (columns it lacks take their defaults); none if unreadable."""
    if not path.exists():
        return {}
    names = {f.name for f in fields(Row)}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [Row(**{k: _TYPES.get(k, str)(v) for k, v in r.items() if k in names and v is not None})
                    for r in csv.DictReader(f)]
    except (ValueError, TypeError, UnicodeDecodeError):
        return {}  # a grades.csv edited by hand: grade everything again rather than trust it
    return {(r.student_id, r.assignment): r for r in rows}


def write_rows(path: Path, rows: list[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[field.name for field in fields(Row)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    temporary.replace(path)  # a crash mid-write never leaves a half-written grades.csv


@dataclass
class Timing:
    notebooks: int
    wall_seconds: float  # executing, all workers together
    per_notebook_seconds: list[float]
    phases: dict[str, float] = field(default_factory=dict)  # prepare, execute, record, feedback
    resumed: list[str] = field(default_factory=list)  # student/assignment graded before and unchanged: skipped
    changed: list[str] = field(default_factory=list)  # why submissions graded before are graded again
    total_seconds: float = 0.0  # the whole run
    executing_seconds: float = 0.0  # while at least one kernel was running student code
    judge_seconds: list[float] = field(default_factory=list)  # each notebook's judging, in a trusted process

    @property
    def outside_execution(self) -> float:
        """The share of the run spent on anything but executing student code (the grader's own work)."""
        return 1 - self.executing_seconds / self.total_seconds if self.total_seconds else 0.0

    def save(self, out: Path) -> None:
        (Path(out) / TIMING_JSON).write_text(json.dumps(asdict(self), indent=1))


class Graded(list):
    """What a run returns: the rows of grades.csv, in order, with the run's timing."""

    def __init__(self, rows: list[Row], timing: Timing):
        super().__init__(rows)
        self.timing = timing


def summary(rows: list[Row], timing: Timing | None, warnings: list[str], ignored: list[tuple[str, str]]) -> str:
    """The one screen at the end of a run; `ignored` are the (path, reason) of notebooks not graded."""
    lines = []
    for warning in warnings:
        lines.append(f"WARNING: {warning}")
    statuses = Counter(r.status for r in rows)
    lines.append(f"{len(rows)} submissions: {statuses.get(Status.OK, 0)} graded cleanly"
                 + "".join(f", {n} {status}" for status, n in sorted(statuses.items()) if status != Status.OK))
    if timing and timing.changed:
        lines.append(f"graded again: {'; '.join(timing.changed)} since the last run")
    if timing and timing.resumed:
        shown = ", ".join(timing.resumed[:10]) + (f" and {len(timing.resumed) - 10} more" if len(timing.resumed) > 10
                                                  else "")
        lines.append(f"resumed: {len(timing.resumed)} graded before and unchanged since, not regraded "
                     f"(--force regrades them): {shown}")
    if ignored:
        lines.append(f"ignored {len(ignored)} notebook(s) of the hand-in (all are listed in intake.csv):")
        lines += [f"  {path}: {reason}" for path, reason in ignored[:20]]
        if len(ignored) > 20:
            lines.append(f"  ... and {len(ignored) - 20} more")
    if timing and timing.notebooks:
        lines.append(f"executed {timing.notebooks} notebooks in {timing.wall_seconds:.0f} s "
                     f"(median {statistics.median(timing.per_notebook_seconds):.1f} s each); "
                     + ", ".join(f"{phase} {seconds:.0f} s" for phase, seconds in timing.phases.items())
                     + (f"; {timing.total_seconds:.0f} s in all, {100 * timing.outside_execution:.0f}% of it outside "
                        "execution" if timing.total_seconds else ""))
    manual = [f"{r.student_id}/{r.assignment}" for r in rows if r.needs_manual_grade]
    if manual:
        lines.append(f"{len(manual)} submission(s) have answers to grade by hand in formgrader (their score can "
                     f"still rise; needs_manual_grade in grades.csv): {', '.join(manual[:10])}"
                     + (f" and {len(manual) - 10} more" if len(manual) > 10 else ""))
    late = [f"{r.student_id}/{r.assignment}" + (f" (-{r.penalty:g})" if r.penalty else "") for r in rows if r.late]
    if late:
        lines.append(f"{len(late)} late (late and penalty in grades.csv; raw_score is before the penalty): "
                     f"{', '.join(late[:10])}" + (f" and {len(late) - 10} more" if len(late) > 10 else ""))
    for assignment in sorted({r.assignment for r in rows}):
        scores = [r.score / r.max_score if r.max_score else 0.0 for r in rows if r.assignment == assignment]
        bands = Counter(min(int(s * 10), 9) for s in scores)
        histogram = " ".join(f"{band * 10:>3}%:{bands.get(band, 0)}" for band in range(10))
        lines.append(f"{assignment}: mean {100 * statistics.mean(scores):.0f}%  [{histogram}]")
    problems = [r for r in rows if r.status != Status.OK]
    for r in problems[:20]:
        lines.append(f"  {r.status:12} {r.student_id}/{r.assignment}: {r.detail}")
    if len(problems) > 20:
        lines.append(f"  ... and {len(problems) - 20} more in grades.csv")
    return "\n".join(lines)
