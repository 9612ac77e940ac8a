"""Does `python -m grader feedback-bundle` pack each student's feedback as Canvas and Moodle take it back in bulk
(and per student otherwise), and never give a student another student's page?"""

import csv
import re
import zipfile
from pathlib import Path

import pytest
from lms_class import canvas_class, feedback_page, moodle_class

from grader import cli, feedback_bundle

OWNER = re.compile(r"<p>feedback for (.+?) on (\S+)</p>")


def _bundle(capsys, grading: Path, out: Path, *extra: str) -> tuple[int, str]:
    code = cli.main(["feedback-bundle", str(grading), "--out", str(out), *extra])
    return code, capsys.readouterr().out


def _zips(out: Path) -> dict[str, dict[str, str]]:
    """{zip relative to out: {entry: text}}."""
    found = {}
    for path in sorted(out.rglob("*.zip")):
        with zipfile.ZipFile(path) as zf:
            found[path.relative_to(out).as_posix()] = {name: zf.read(name).decode() for name in zf.namelist()}
    return found


def _intake(grading: Path) -> list[tuple[str, str, str]]:
    """(path, student, assignment) of each graded hand-in in intake.csv."""
    with open(grading / "intake.csv", newline="", encoding="utf-8") as f:
        return [(r["path"], r["student_id"], r["assignment"]) for r in csv.DictReader(f) if r["outcome"] == "graded"]


def _owner_of_entry(archive: str, entry: str, intake: list[tuple[str, str, str]]) -> str:
    """Whose page an entry must be, from the zip's and the entry's names and intake.csv's paths alone."""
    lms, name = archive.split("/", 1)
    if lms == "students":
        return name.removesuffix(".zip")
    if lms == "canvas":  # the hand-in's file name up to the assignment's name, then the page's
        owners = {s for path, s, a in intake if a in path and entry.startswith(path[:path.index(a)])}
    else:  # the hand-in's folder (or flat file name) up to the notebook's name
        owners = {s for path, s, a in intake if path.startswith(entry.split("/")[0])}
    assert len(owners) == 1, (archive, entry, owners)
    return owners.pop()


def _assert_no_page_goes_to_another_student(out: Path, grading: Path) -> int:
    intake = _intake(grading)
    pages = 0
    for archive, entries in _zips(out).items():
        for entry, text in entries.items():
            owner, assignment = OWNER.search(text).groups()
            assert owner == _owner_of_entry(archive, entry, intake), (archive, entry, owner)
            assert assignment in entry and (archive.startswith("students/") or assignment in archive)
            pages += 1
    return pages


def test_canvas_class(tmp_path, capsys):
    """Do Canvas hand-ins' pages go into one zip per assignment named with the download's prefix (LATE kept),
    the others into one zip per student, every page exactly once and to its own student?"""
    graded = canvas_class(tmp_path)
    out = tmp_path / "feedback-upload"
    code, report = _bundle(capsys, graded.grading, out)
    assert code == 0, report
    zips = _zips(out)
    assert sorted(zips["canvas/01_tensors.zip"]) == [
        "doejane_LATE_4243_998878_01_tensors-feedback.html", "kimsoo_4248_998880_01_tensors-feedback.html",
        "smithjohn_4242_998877_01_tensors-feedback.html"]
    assert sorted(zips["canvas/08_capstone.zip"]) == [
        "doejane_4243_998902_08_capstone-feedback.html", "kimsoo_4248_998904_08_capstone-feedback.html",
        "smithjohn_4242_998901_08_capstone-feedback.html"]
    # Canvas finds the user by the first all-digit part of the name: each must be its student's user id.
    intake = _intake(graded.grading)
    for archive in ("canvas/01_tensors.zip", "canvas/08_capstone.zip"):
        for entry in zips[archive]:
            user_id = [part for part in entry.split("_") if part.isdigit()][0]
            assert _owner_of_entry(archive, entry, intake).endswith("_" + user_id), entry
    assert {z for z in zips if z.startswith("students/")} == {
        "students/4247.zip", "students/an.nguyen.zip", "students/jperez.zip", "students/mary_ann.zip"}
    assert sorted(zips["students/jperez.zip"]) == ["01_tensors/01_tensors.html", "08_capstone/08_capstone.html"]
    assert _assert_no_page_goes_to_another_student(out, graded.grading) == len(graded.hands)
    assert "Re-Upload Submissions" in report and "send it to that student" in report
    assert f"{len(graded.hands)} feedback page(s) in 6 zip(s)" in report


def test_moodle_class(tmp_path, capsys):
    """Do Moodle hand-ins' pages go into one zip per assignment with the download's folder per student
    (`John Smith_123_assignsubmission_file_/`, also for the flat form), the rest per student?"""
    graded = moodle_class(tmp_path)
    out = tmp_path / "feedback-upload"
    code, report = _bundle(capsys, graded.grading, out)
    assert code == 0, report
    zips = _zips(out)
    assert sorted(zips["moodle/01_tensors.zip"]) == [
        "Amélie Durand_125_assignsubmission_file_/01_tensors-feedback.html",
        "John Smith_123_assignsubmission_file_/01_tensors-feedback.html",
        "José Pérez_124_assignsubmission_file_/01_tensors-feedback.html"]
    assert sorted(zips["moodle/08_capstone.zip"]) == [
        "John Smith_123_assignsubmission_file_/08_capstone-feedback.html",
        "José Pérez_124_assignsubmission_file_/08_capstone-feedback.html"]
    # Amélie handed in no capstone, so Moodle has no participant folder for it: her page goes to her own zip.
    assert sorted(zips["students/amelie_durand_125.zip"]) == ["08_capstone/08_capstone.html"]
    assert _assert_no_page_goes_to_another_student(out, graded.grading) == len(graded.hands)
    assert "Upload multiple feedback files in a zip" in report


def test_a_path_naming_someone_else_never_routes_a_page_there(tmp_path, capsys):
    """If intake.csv gave a student a Canvas or Moodle path that names another student (ids that share a
    prefix, a hand-in renamed with someone else's name), is that student's page kept out of the LMS zip?"""
    grading = tmp_path / "grading"
    rows = [("smithjohn_4242_998877_01_tensors.ipynb", "smithjohn_4242"),
            ("smithjohn_4242_998877_01_tensors (1).ipynb", "smithjohn_42"),  # not this student's prefix
            ("John Smith_123_assignsubmission_file_/01_tensors.ipynb", "john_smith"),  # id lacks the number
            ("john_smith_123_01_tensors.ipynb", "john_smith_123")]  # the course's naming, no LMS
    (grading / "feedback").mkdir(parents=True)
    with open(grading / "intake.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "student_id", "assignment", "outcome", "reason"])
        for path, student in rows:
            writer.writerow([path, student, "01_tensors", "graded", ""])
    for _, student in rows:
        page = grading / "feedback" / student / "01_tensors" / "01_tensors.html"
        page.parent.mkdir(parents=True)
        page.write_text(feedback_page(student, "01_tensors", "01_tensors"))
    out = tmp_path / "out"
    assert _bundle(capsys, grading, out)[0] == 0
    zips = _zips(out)
    assert list(zips["canvas/01_tensors.zip"]) == ["smithjohn_4242_998877_01_tensors-feedback.html"]
    assert "feedback for smithjohn_4242 " in zips["canvas/01_tensors.zip"][
        "smithjohn_4242_998877_01_tensors-feedback.html"]
    assert "moodle/01_tensors.zip" not in zips
    for student in ("smithjohn_42", "john_smith", "john_smith_123"):
        (text,) = zips[f"students/{student}.zip"].values()
        assert f"feedback for {student} " in text


def test_rerun_replaces_and_foreign_folders_are_refused(tmp_path, capsys):
    """Does a rerun replace what the last one wrote (a student gone is gone), and is a folder it did not
    write, or one inside autograde's feedback/, refused with nothing written?"""
    graded = canvas_class(tmp_path)
    out = tmp_path / "feedback-upload"
    assert _bundle(capsys, graded.grading, out)[0] == 0
    assert (out / "students" / "mary_ann.zip").is_file()
    code, _ = _bundle(capsys, graded.grading, out, "--assignment", "08_capstone")
    assert code == 0
    assert (out / "students" / "mary_ann.zip").is_file() and not (out / "canvas" / "01_tensors.zip").exists()
    assert all("08_capstone" in e for entries in _zips(out).values() for e in entries)

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep\n")
    for target, words in ((foreign, "not written by feedback-bundle"),
                          (graded.grading / "feedback" / "x", "autograde's own files"),
                          (graded.grading, "autograde's own files")):
        code, report = _bundle(capsys, graded.grading, target)
        assert code == 1 and words in report, report
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert not (graded.grading / "feedback" / "x").exists()


def test_no_feedback_folder_is_an_error(tmp_path, capsys):
    """Given a folder that is not autograde's --out, does it say so, exit 1 and write nothing?"""
    code, report = _bundle(capsys, tmp_path, tmp_path.parent / "bundle-out")
    assert code == 1 and "does not exist" in report and "autograde" in report
    assert not (tmp_path.parent / "bundle-out").exists()


@pytest.mark.parametrize("command", ["export", "feedback-bundle", "similarity"])
def test_every_command_has_help(command, capsys):
    """Does `python -m grader COMMAND --help` explain the command and its options?"""
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "usage: python -m grader " + command in text and len(text) > 800


def test_route_names_only_the_students_own_prefix():
    """Is a Canvas prefix or Moodle folder returned only when intake would name that same student?"""
    route = feedback_bundle.route_of
    late = route("smithjohn_LATE_4242_998877_01_tensors-1.ipynb", "smithjohn_4242")
    assert late.name == "smithjohn_LATE_4242_998877_"
    assert route("smithjohn_4242_998877_01_tensors.ipynb", "doejane_4243") is None
    assert route("José Pérez_124_assignsubmission_file_01_tensors.ipynb", "jose_perez_124").name == \
        "José Pérez_124_assignsubmission_file_"
    assert route("dl/John Smith_123_assignsubmission_file_/01_tensors.ipynb", "john_smith_123").lms == "moodle"
    assert route("jperez/01_tensors/01_tensors.ipynb", "jperez") is None


def test_exchange_hand_ins_are_released_by_nbgrader(tmp_path, capsys):
    """With --exchange, do the pages of hand-ins collected from nbgrader's exchange go into nbgrader's feedback/
    layout with their submission's secret and timestamp, so that `nbgrader release_feedback` publishes each
    one under the name the student's `fetch_feedback` looks for, and the others still into zips?"""
    import subprocess
    import sys

    from nbgrader.utils import notebook_hash

    graded = canvas_class(tmp_path)
    autograded, course_dir, exchange = tmp_path / "autograded", tmp_path / "course", tmp_path / "exchange"
    secrets = {"jperez": "a1" * 32, "4247": "b2" * 32}  # these two submitted through the exchange
    for student, secret in secrets.items():
        folder = autograded / student / "01_tensors"
        folder.mkdir(parents=True)
        (folder / "submission_secret.txt").write_text(secret)
        (folder / "timestamp.txt").write_text("2026-11-02 10:15:00.000000 UTC")
    bundle = feedback_bundle.build(graded.grading, tmp_path / "out", ["01_tensors"], exchange=True,
                                   autograded=autograded, exchange_feedback=course_dir / "feedback")
    assert bundle.exchange == {"01_tensors": ["4247", "jperez"]}
    assert "students/jperez.zip" not in bundle.zips and "students/mary_ann.zip" in bundle.zips
    for student in secrets:
        folder = course_dir / "feedback" / student / "01_tensors"
        assert sorted(p.name for p in folder.iterdir()) == ["01_tensors.html", "submission_secret.txt",
                                                            "timestamp.txt"]
    exchange.mkdir(mode=0o777)
    exchange.chmod(0o777)  # as the README's set-up makes it: every user can write
    course_dir.joinpath("nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'intro-to-pytorch'\n"
        f"c.Exchange.root = {str(exchange)!r}\n")
    released = subprocess.run([sys.executable, "-m", "nbgrader", "release_feedback", "01_tensors"], cwd=course_dir,
                              capture_output=True, text=True, timeout=120)
    assert released.returncode == 0, released.stderr
    for student, secret in secrets.items():
        name = notebook_hash(secret=secret, notebook_id="01_tensors")  # what the student's fetch_feedback looks for
        published = exchange / "intro-to-pytorch" / "feedback" / f"{name}.html"
        assert f"feedback for {student} " in published.read_text()
    assert len(list((exchange / "intro-to-pytorch" / "feedback").iterdir())) == len(secrets)
