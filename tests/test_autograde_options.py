"""Does `python -m grader autograde` read what nbgrader autograde reads (nbgrader_config.py, then nbgrader's
`--Class.trait=value` options, then its own flags), and do the pieces that make a run resumable and
readable hold? (Nothing is executed here.)"""

import subprocess
import sys
from pathlib import Path

import pytest
from nbgrader_scenarios import env, new_course
from traitlets.config.loader import KVArgParseConfigLoader

import grader
from grader import cli
from grader.autograde import report, run
from grader.nbgrader_api import load_config


def test_cell_timeout_comes_from_execute_timeout_unless_given():
    """Is nbgrader_config.py's Execute.timeout the cell timeout (the notebook's limit growing with it), overridden
    by `--Execute.timeout=...`, and that by --cell-timeout?"""
    course = load_config()
    assert run.default_limits(course).cell_timeout_s == course.Execute.timeout == 60
    longer = load_config(KVArgParseConfigLoader(argv=["--Execute.timeout=600"]).load_config())
    assert (run.default_limits(longer).cell_timeout_s, run.default_limits(longer).notebook_timeout_s) == (600, 3000)
    assert run.default_limits(longer, cell_timeout_s=5, max_submission_bytes=2**30).cell_timeout_s == 5
    assert run.default_limits(longer, max_submission_bytes=2**30).max_submission_bytes == 2**30


def test_nbgrader_options_reach_autograde_only(monkeypatch):
    """Does the command take nbgrader's `--Class.trait=value` options (and only for autograde), with
    --student, --notebook and --max-submission-mb, and refuse anything else unknown?"""
    seen = {}
    monkeypatch.setattr(cli, "_autograde", lambda args: seen.update(vars(args)) or 0)
    assert cli.main(["autograde", "subs", "--out", "o", "--CourseDirectory.student_id_exclude=bob,eve",
                     "--student", "a*", "--notebook", "p1", "--max-submission-mb", "30"]) == 0
    assert seen["nbgrader_options"] == ["--CourseDirectory.student_id_exclude=bob,eve"]
    assert (seen["student"], seen["notebook"], seen["max_submission_mb"]) == (["a*"], "p1", 30)
    for argv in (["autograde", "subs", "--out", "o", "--no-such-flag"], ["release", "--Execute.timeout=3"]):
        with pytest.raises(SystemExit):
            cli.main(argv)


def test_a_course_of_any_assignment_names(tmp_path):
    """Is a folder of solutions/ not named NN_topic an assignment that release generates, and not a unit?"""
    course = new_course(tmp_path / "course")
    probe = ("from grader import course, release\n"
             "release.generate()\n"
             "print(course.assignments(), course.units(), [p.name for p in course.exercise_paths()])")
    done = subprocess.run([sys.executable, "-c", probe], cwd=course, env=env(course), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "['ps1'] [] ['p1.ipynb', 'p2.ipynb']"
    assert (course / "exercises" / "ps1" / "data" / "data.txt").exists()


def test_grades_csv_of_an_earlier_version_still_resumes(tmp_path):
    """Is a grades.csv written before the new columns read (defaults filled in), and a hand-edited one ignored?"""
    old = tmp_path / "old.csv"
    old.write_text("student_id,assignment,score,max_score,status,detail,sha256\nbob,01_tensors,8.0,10.0,ok,,abc\n")
    assert report.read_rows(old)["bob", "01_tensors"] == report.Row("bob", "01_tensors", 8.0, 10.0, "ok", "",
                                                                   sha256="abc")
    old.write_text("student_id,assignment,score\nbob,01_tensors,eight\n")
    assert report.read_rows(old) == {}


def test_the_grader_version_covers_its_checks(tmp_path, monkeypatch):
    """Does the resume key's grader version change when a check of grader/ changes, and only then?"""
    package = Path(grader.__file__).resolve().parent
    copy = tmp_path / "grader"
    subprocess.run(["cp", "-r", str(package), str(copy)], check=True)
    monkeypatch.setattr(grader, "__file__", str(copy / "__init__.py"))
    limits = run.default_limits(load_config())
    before = run.grader_version(limits, None)
    assert run.grader_version(limits, None) == before
    check = copy / "checks" / "tensors.py"
    check.write_text(check.read_text() + "\n# a fixed check\n")
    assert run.grader_version(limits, None) != before


def test_nbgrader_log_is_split_per_student():
    """Is each student's part of nbgrader's log, and the error it ended with, found?"""
    log = ("[INFO] Creating/updating student with ID 'alice': {}\n"
           "[INFO] Writing 1 bytes to /c/autograded/alice/ps1/p1.ipynb\n"
           "[WARNING] Removing existing assignment: /c/autograded/bob/ps1\n"
           "[INFO] Creating/updating student with ID 'bob': {}\n"
           "[ERROR] There was an error processing assignment: /c/grading/work/submitted/bob/ps1\n"
           "[ERROR] Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: the judge exploded\n\n"
           "[WARNING] Removing failed assignment: /c/autograded/bob/ps1\n"
           "[INFO] Creating/updating student with ID 'jdoe@uni.edu': {}\n")
    parts = run.split_nbgrader_log(log, "ps1")
    assert set(parts) == {"alice", "bob", "jdoe@uni.edu"}
    assert parts["alice"][1] == "" and "p1.ipynb" in parts["alice"][0]
    assert parts["bob"][1] == "nbgrader could not record this submission (ValueError: the judge exploded)"
    assert parts["bob"][0].startswith("[WARNING] Removing existing") and "Removing failed" in parts["bob"][0]
