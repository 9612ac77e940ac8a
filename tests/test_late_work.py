"""Due dates and late work: a class with late and on-time hand-ins, in the shapes LMS downloads really take.

The due date lives in nbgrader_config.py (`DueDates.dates`, read in `Exchange.timezone`); each hand-in's time
comes from nbgrader's timestamp.txt, Blackboard's attempt name or the zip entry; Canvas's `LATE_` flags a
hand-in whose time is unknown; `grader.late.PercentPerDay` takes 10% per started day, never below half."""

import csv
import zipfile
from datetime import datetime, timezone

import pytest
from lms_downloads import SOLVED, UNSOLVED, _content
from traitlets.config import Config

from grader import late
from grader.autograde import run

ASSIGNMENT = "01_tensors"
DUE = "2026-11-01 23:59"  # in Santiago, where it is UTC-3 in November: 2026-11-02 02:59 UTC
ZONE = "America/Santiago"

# (path in the download, what it holds, the zip entry's local time in Santiago or None)
ZIPPED = [
    ("onpace_101_9001_01_tensors.ipynb", SOLVED, (2026, 11, 1, 20, 0, 0)),  # Canvas, on time
    ("slowpoke_LATE_102_9002_01_tensors.ipynb", SOLVED, (2026, 11, 3, 10, 0, 0)),  # Canvas, 2nd day late
    ("Unit 1_bbuser_attempt_2026-11-02-00-30-00_01_tensors.ipynb", SOLVED, (2026, 11, 9, 0, 0, 0)),  # 31 min late
    ("Ann Lee_7_assignsubmission_file_/01_tensors.ipynb", UNSOLVED, (2026, 11, 12, 8, 0, 0)),  # 11th day, 0 pts
    ("nbg/01_tensors/01_tensors.ipynb", SOLVED, (2026, 11, 20, 0, 0, 0)),  # its timestamp.txt says on time
    ("nbg/01_tensors/timestamp.txt", "2026-11-01 12:00:00.000000 UTC", (2026, 11, 20, 0, 0, 0)),
]


def _config(**policy) -> Config:
    config = Config()
    config.Exchange.timezone = ZONE
    config.DueDates.dates = {ASSIGNMENT: DUE}
    if policy:
        config.AssignLatePenalties.plugin_class = "grader.late.PercentPerDay"
        config.PercentPerDay.percent_per_day = policy["percent"]
        config.PercentPerDay.floor_percent = policy["floor"]
    return config


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("late")
    archive = root / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path, kind, when in ZIPPED:
            data = kind.encode() if path.endswith(".txt") else _content(kind, path)
            zf.writestr(zipfile.ZipInfo(path, date_time=when), data)
    rows = run.autograde_class(archive, root / "out", workers=2, assignments=[ASSIGNMENT],
                               db_url=f"sqlite:///{root}/gradebook.db", autograded=root / "autograded",
                               progress=False, overrides=_config(percent=10, floor=50))
    with open(root / "out" / "grades.csv", newline="", encoding="utf-8") as f:
        written = {r["student_id"]: r for r in csv.DictReader(f)}
    return {r.student_id: r for r in rows}, written


@pytest.mark.notebook
def test_each_hand_in_gets_its_time_lateness_and_penalty(graded):
    rows, _ = graded
    expected = {  # student: (submitted_at, late, days late -> penalty share)
        "onpace_101": ("2026-11-01 23:00:00 UTC", False, 0.0),
        "slowpoke_102": ("2026-11-03 13:00:00 UTC", True, 0.2),
        "bbuser": ("2026-11-02 03:30:00 UTC", True, 0.1),  # the attempt's time, not the zip entry's
        "ann_lee_7": ("2026-11-12 11:00:00 UTC", True, 0.5),  # 11 days: the floor keeps half (of nothing)
        "nbg": ("2026-11-01 12:00:00 UTC", False, 0.0),  # nbgrader's timestamp.txt wins over the zip entry
    }
    assert set(rows) == set(expected)
    for student, (when, is_late, share) in expected.items():
        row = rows[student]
        assert row.status == "ok", row
        assert (row.submitted_at, row.late, row.due) == (when, is_late, "2026-11-02 02:59:00 UTC"), row
        assert row.penalty == pytest.approx(share * row.raw_score), row
        assert row.score == pytest.approx(row.raw_score - row.penalty), row
    assert rows["slowpoke_102"].raw_score == rows["slowpoke_102"].max_score == 10
    assert rows["slowpoke_102"].score == pytest.approx(8.0)
    assert rows["ann_lee_7"].raw_score == 0


@pytest.mark.notebook
def test_grades_csv_shows_the_raw_score_beside_the_penalised_one(graded):
    _, written = graded
    row = written["slowpoke_102"]
    assert (row["raw_score"], row["score"], row["penalty"], row["late"]) == ("10.0", "8.0", "2.0", "True"), row
    assert list(row)[:7] == ["student_id", "assignment", "score", "max_score", "status", "detail", "raw_score"]


@pytest.mark.notebook
def test_canvas_late_without_a_time_is_flagged_not_penalised(tmp_path):
    folder = tmp_path / "download"
    folder.mkdir()
    (folder / "slowpoke_LATE_102_9002_01_tensors.ipynb").write_bytes(_content(UNSOLVED, ""))
    rows = run.autograde_class(folder, tmp_path / "out", workers=1, assignments=[ASSIGNMENT],
                               db_url=f"sqlite:///{tmp_path}/gradebook.db", autograded=tmp_path / "autograded",
                               progress=False, overrides=_config(percent=10, floor=50))
    (row,) = rows
    assert row.late and not row.submitted_at and row.penalty == 0, row
    assert "marks it late but gives no time" in row.detail, row


def test_the_penalty_policy():
    day = 86400
    assert late.penalty_fraction(0, 10, 50) == 0
    assert late.penalty_fraction(1, 10, 50) == pytest.approx(0.1)  # a started day counts
    assert late.penalty_fraction(day, 10, 50) == pytest.approx(0.1)
    assert late.penalty_fraction(day + 1, 10, 50) == pytest.approx(0.2)
    assert late.penalty_fraction(30 * day, 10, 50) == pytest.approx(0.5)
    assert late.penalty_fraction(30 * day, 10, 0) == pytest.approx(1.0)
    plugin = late.PercentPerDay(percent_per_day=25, floor_percent=0)
    assert plugin.late_submission_penalty("s", 8.0, 2 * day) == pytest.approx(4.0)


@pytest.mark.parametrize("dates, zone, message", [
    ({"99_nothing": "2026-11-01"}, "UTC", "names 99_nothing, which the course does not have"),
    ({ASSIGNMENT: "next friday-ish"}, "UTC", "is not a date"),
    ({ASSIGNMENT: "2026-11-01"}, "Mars/Olympus", "is not a time zone"),
])
def test_a_bad_due_date_stops_the_run_before_grading(dates, zone, message, tmp_path):
    config = Config()
    config.DueDates.dates, config.Exchange.timezone = dates, zone
    with pytest.raises(late.LateWorkError, match=message):
        late.due_dates(config, [ASSIGNMENT])


def test_times_without_a_zone_are_the_courses():
    zone = late.course_zone(_config())
    assert late.local_time(DUE, zone) == datetime(2026, 11, 2, 2, 59, tzinfo=timezone.utc)
    assert late.local_time("2026-11-01 23:59 +00:00", zone) == datetime(2026, 11, 1, 23, 59, tzinfo=timezone.utc)
