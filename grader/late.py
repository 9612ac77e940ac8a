"""Due dates and late work: each assignment's due date, when a hand-in arrived, and an optional penalty.

nbgrader keeps an assignment's due date in its gradebook and a hand-in's time in `timestamp.txt`, and its
autograde takes the late penalty that `AssignLatePenalties.plugin_class` computes. This module fills the
gaps an LMS download leaves: the due dates come from nbgrader_config.py (`DueDates.dates`), a hand-in's
time from the LMS's file name (Blackboard's attempt time) or the zip entry's time, and `PercentPerDay` is a
penalty policy nbgrader's converter applies and `nbgrader export` reports. Times without a zone are read in
the course's zone, nbgrader's own `Exchange.timezone`.
"""

import math
from datetime import datetime, timezone

import dateutil.parser
import dateutil.tz
from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Dict, Float, Unicode
from traitlets.config import Config, Configurable

# What nbgrader's exchange writes in timestamp.txt (its Exchange.timestamp_format), always in UTC here.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"


class DueDates(Configurable):
    """The course's due dates, set in nbgrader_config.py."""

    dates = Dict(key_trait=Unicode(), value_trait=Unicode(), help=(
        "Each assignment's due date, e.g. {'01_tensors': '2026-12-07 23:59'} (in Exchange.timezone unless the "
        "date names its zone). `python -m grader autograde` writes them into the gradebook, where nbgrader's "
        "late penalty and formgrader read them.")).tag(config=True)


class LateWorkError(ValueError):
    """A due date or the course's time zone in nbgrader_config.py cannot be read."""


class PercentPerDay(LateSubmissionPlugin):
    """A late penalty of `percent_per_day` of the score for each day or part of a day late; the score kept
    never drops below `floor_percent` of what the work earned. Set in nbgrader_config.py with
    `c.AssignLatePenalties.plugin_class = "grader.late.PercentPerDay"`."""

    percent_per_day = Float(10.0, help="percent of the score taken off per day (or part of one) late").tag(config=True)
    floor_percent = Float(0.0, help="the late score never drops below this percent of the raw score").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float:
        return score * penalty_fraction(total_seconds_late, self.percent_per_day, self.floor_percent)


def penalty_fraction(seconds_late: float, percent_per_day: float, floor_percent: float) -> float:
    """The share of the score a hand-in `seconds_late` late loses: a started day counts as a whole one."""
    if seconds_late <= 0:
        return 0.0
    days = math.ceil(seconds_late / 86400)
    kept = max(floor_percent, 100.0 - percent_per_day * days)
    return min(max(100.0 - kept, 0.0), 100.0) / 100.0


def course_zone(config: Config):
    """The course's time zone: nbgrader's Exchange.timezone (UTC unless set)."""
    name = config.Exchange.get("timezone", "UTC")
    zone = dateutil.tz.gettz(name)
    if zone is None:
        raise LateWorkError(f"nbgrader_config.py's Exchange.timezone {name!r} is not a time zone (e.g. "
                            "'America/Santiago', 'UTC')")
    return zone


def local_time(text: str, zone, fmt: str | None = None) -> datetime:
    """A time as UTC; one without a zone is read in the course's `zone`."""
    moment = datetime.strptime(text, fmt) if fmt else dateutil.parser.parse(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(timezone.utc)


def due_dates(config: Config, assignments: list[str]) -> dict[str, datetime]:
    """The configured due date (UTC) of each assignment; a date that cannot be read, or one for an assignment
    the course does not have, stops the run before anything is graded: lateness must never be silently lost."""
    dates = DueDates(config=config).dates
    unknown = sorted(set(dates) - set(assignments))
    if unknown:
        raise LateWorkError(f"nbgrader_config.py's DueDates.dates names {', '.join(unknown)}, which the course does "
                            f"not have (its assignments: {', '.join(assignments)})")
    zone, found = course_zone(config), {}
    for name, text in dates.items():
        try:
            found[name] = local_time(text, zone)
        except (ValueError, OverflowError):
            raise LateWorkError(f"nbgrader_config.py's due date of {name}, {text!r}, is not a date "
                                "(write e.g. '2026-12-07 23:59')") from None
    return found


def timestamp_text(moment: datetime) -> str:
    """A time as nbgrader's timestamp.txt holds it."""
    return moment.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)
