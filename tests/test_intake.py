"""Does intake place every notebook of a real LMS download with the right student and assignment, and
account for every notebook it does not grade? (No notebook is executed here.)"""

import pytest

from grader.autograde import intake

KNOWN = {"01_tensors", "02_autograd"}

# path in the download -> (student id, assignment), or None when it must be ignored
DOWNLOAD = {
    # the course's convention: the id is everything before the notebook's name
    "john_smith_01_tensors.ipynb": ("john_smith", "01_tensors"),
    "john_doe_01_tensors.ipynb": ("john_doe", "01_tensors"),
    "jdoe_Copy of 02_autograd (1).ipynb": ("jdoe", "02_autograd"),
    "asmith_12345_Copy of 01_tensors.ipynb": ("asmith_12345", "01_tensors"),
    # Canvas: <lastfirst>_[LATE_]<user id>_<submission id>_<file>, resubmissions get -1
    "smithjohn_4242_998877_01_tensors.ipynb": ("smithjohn_4242", "01_tensors"),
    "doejane_LATE_4243_998878_01_tensors-1.ipynb": ("doejane_4243", "01_tensors"),
    # Moodle, in folders and flat
    "John Smith_123_assignsubmission_file_/01_tensors.ipynb": ("john_smith_123", "01_tensors"),
    "Madonna_125_assignsubmission_file_/01_tensors.ipynb": ("madonna_125", "01_tensors"),
    "José Pérez_124_assignsubmission_file_01_tensors.ipynb": ("jose_perez_124", "01_tensors"),
    # Blackboard: the latest attempt counts
    "Unit 1 Tensors_jdoe7_attempt_2026-11-02-10-15-00_01_tensors.ipynb": None,
    "Unit 1 Tensors_jdoe7_attempt_2026-11-03-09-00-00_01_tensors.ipynb": ("jdoe7", "01_tensors"),
    # nbgrader's layout
    "mary_ann/01_tensors/01_tensors.ipynb": ("mary_ann", "01_tensors"),
    # noise
    "__MACOSX/._john_smith_01_tensors.ipynb": None,
    "mary_ann/01_tensors/.ipynb_checkpoints/01_tensors-checkpoint.ipynb": None,
    "notes.ipynb": None,
    "_01_tensors.ipynb": None,
}


@pytest.fixture
def download(tmp_path):
    root = tmp_path / "download"
    for name in DOWNLOAD:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}")
    (root / "Unit 1 Tensors_jdoe7_attempt_2026-11-03-09-00-00.txt").write_text("receipt")
    return root


def test_every_layout_places_each_notebook_with_its_student(download, tmp_path):
    """Does each LMS's naming give the right student (ids with `_` kept whole) and assignment?"""
    taken = intake.collect(download, KNOWN, tmp_path / "scratch")
    placed = {item.path: (item.student, item.assignment) for item in taken.found.values() if item.outcome == "graded"}
    assert placed == {path: where for path, where in DOWNLOAD.items() if where}
    students = {(s.student, s.assignment) for s in taken.submissions if s.files}
    assert students == {where for where in DOWNLOAD.values() if where}


def test_every_notebook_not_graded_is_listed_with_its_reason(download, tmp_path):
    """Is every notebook of the download accounted for: graded, or ignored with a reason that says why?"""
    taken = intake.collect(download, KNOWN, tmp_path / "scratch")
    assert {item.path for item in taken.found.values()} == set(DOWNLOAD)
    ignored = {item.path: item.reason for item in taken.found.values() if item.outcome == "ignored"}
    assert set(ignored) == {path for path, where in DOWNLOAD.items() if where is None}
    assert "superseded by the later attempt of 2026-11-03" in ignored[
        "Unit 1 Tensors_jdoe7_attempt_2026-11-02-10-15-00_01_tensors.ipynb"]
    assert "names no assignment" in ignored["notes.ipynb"] and "--assignment" in ignored["notes.ipynb"]
    assert "no student id" in ignored["_01_tensors.ipynb"]
    taken.write_csv(tmp_path / "intake.csv")
    assert (tmp_path / "intake.csv").read_text(encoding="utf-8").count("\n") == len(DOWNLOAD) + 1


def test_moodle_gives_the_students_names(download, tmp_path):
    """Do the names in Moodle's download reach the gradebook's first and last names?"""
    names = intake.collect(download, KNOWN, tmp_path / "scratch").names
    assert names == {"john_smith_123": ("John", "Smith"), "jose_perez_124": ("José", "Pérez"),
                     "madonna_125": ("Madonna", "")}


def test_students_missing_an_assignment_get_an_empty_submission(download, tmp_path):
    """Does a student who handed in one assignment of two still appear for the other, as missing?"""
    taken = intake.collect(download, KNOWN, tmp_path / "scratch")
    jdoe = {s.assignment: s.files for s in taken.submissions if s.student == "jdoe"}
    assert set(jdoe) == KNOWN and jdoe["01_tensors"] == []
    assert "__MACOSX" not in {s.student for s in taken.submissions}, "an archiver's folder became a student"


def test_one_named_assignment_takes_notebooks_named_after_none(tmp_path):
    """With --assignment NAME, is a download's `jdoe_homework.ipynb` that assignment's, and another unit's not?"""
    (tmp_path / "d").mkdir()
    for name in ["jdoe_homework.ipynb", "amy_02_autograd.ipynb"]:
        (tmp_path / "d" / name).write_text("{}")
    taken = intake.collect(tmp_path / "d", {"01_tensors"}, tmp_path / "scratch", single_assignment=True)
    outcome = {i.path: (i.student, i.assignment, i.reason) for i in taken.found.values()}
    assert outcome["jdoe_homework.ipynb"] == ("jdoe", "01_tensors", "")
    assert outcome["amy_02_autograd.ipynb"] == ("", "", "02_autograd is not being graded in this run")


def test_filename_regex_matches_the_path_in_the_download(tmp_path):
    """Can --filename-regex read a student id from a folder name, which the file name alone lacks?"""
    (tmp_path / "d" / "student-42").mkdir(parents=True)
    (tmp_path / "d" / "student-42" / "01_tensors.ipynb").write_text("{}")
    taken = intake.collect(tmp_path / "d", KNOWN, tmp_path / "scratch",
                           filename_regex=r"student-(?P<student_id>\d+)/(?P<file_id>.*)")
    assert [(s.student, s.assignment) for s in taken.submissions] == [("42", "01_tensors")]


@pytest.mark.parametrize("given, assignments, message", [
    ("nowhere", None, "nowhere does not exist"),
    ("empty", None, "no notebook (.ipynb) found in"),
    ("download", ["01_tensor"], "no assignment named 01_tensor; the course has: 01_tensors, 02_autograd"),
])
def test_bad_input_is_answered_before_anything_starts(download, tmp_path, given, assignments, message):
    """Does a wrong path, an empty folder or an unknown assignment get a message that says what to fix?"""
    (tmp_path / "empty").mkdir()
    with pytest.raises(intake.IntakeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        intake.check_inputs(tmp_path / given, assignments)


def test_a_zip_entry_that_cannot_be_extracted_is_listed_not_fatal(tmp_path):
    """Does an entry name too long for the file system cost that entry only, listed with its reason?"""
    import zipfile

    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("jdoe_01_tensors.ipynb", "{}")
        zf.writestr("y" * 300 + "_01_tensors.ipynb", "{}")
    taken = intake.collect(archive, KNOWN, tmp_path / "scratch")
    outcome = {item.path: item.outcome for item in taken.found.values()}
    assert outcome == {"jdoe_01_tensors.ipynb": "graded", "y" * 300 + "_01_tensors.ipynb": "ignored"}


def test_a_hand_in_whose_notebooks_all_go_unplaced_fails_and_says_why(tmp_path, capsys):
    """Does a download whose notebooks can all not be placed exit non-zero, naming the reason, before grading?"""
    from grader.cli import main

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.ipynb").write_text("{}")
    assert main(["autograde", str(tmp_path / "d"), "--out", str(tmp_path / "out"), "--workers", "1"]) == 2
    said = capsys.readouterr().out
    assert "1 notebook(s) found" in said and "names no assignment" in said and "intake.csv" in said, said
    assert "notes.ipynb" in (tmp_path / "out" / "intake.csv").read_text()


def test_any_folder_name_is_a_student_id(tmp_path):
    """Are ids with `@` or letters beyond ASCII kept as they are, in nbgrader's layout and in file names?"""
    for name in ["jdoe@uni.edu/01_tensors/01_tensors.ipynb", "müller/01_tensors/01_tensors.ipynb",
                 "o'brien+1_01_tensors.ipynb", "zoë_02_autograd.ipynb", ".hidden/01_tensors/01_tensors.ipynb"]:
        (tmp_path / "d" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "d" / name).write_text("{}")
    taken = intake.collect(tmp_path / "d", KNOWN, tmp_path / "scratch")
    placed = {i.path: i.student for i in taken.found.values() if i.outcome == "graded"}
    assert placed == {"jdoe@uni.edu/01_tensors/01_tensors.ipynb": "jdoe@uni.edu",
                      "müller/01_tensors/01_tensors.ipynb": "müller", "zoë_02_autograd.ipynb": "zoë",
                      "o'brien+1_01_tensors.ipynb": "o_brien_1"}


def test_a_notebook_in_a_subfolder_of_the_assignment_is_not_the_hand_in(tmp_path):
    """As for nbgrader, is `<student>/<assignment>/archive/<notebook>` ignored, with its reason, and the folder
    kept with the submission (its other files are the student's)?"""
    for name in ["bitdiddle/01_tensors/01_tensors.ipynb", "bitdiddle/01_tensors/archive/01_tensors.ipynb"]:
        (tmp_path / "d" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "d" / name).write_text("{}")
    taken = intake.collect(tmp_path / "d", KNOWN, tmp_path / "scratch")
    outcome = {i.path: (i.outcome, i.reason) for i in taken.found.values()}
    assert outcome["bitdiddle/01_tensors/01_tensors.ipynb"] == ("graded", "")
    assert "in a subfolder" in outcome["bitdiddle/01_tensors/archive/01_tensors.ipynb"][1]
    [tensors] = [s for s in taken.submissions if s.assignment == "01_tensors"]
    assert tensors.folder == tmp_path / "d" / "bitdiddle" / "01_tensors"


def test_selected_and_excluded_students(download, tmp_path):
    """Do nbgrader's --student glob and CourseDirectory.student_id_exclude leave the others out, each listed?"""
    taken = intake.collect(download, KNOWN, tmp_path / "scratch", students=["john_*"], exclude={"john_doe"})
    assert {s.student for s in taken.submissions} == {"john_smith", "john_smith_123"}
    reasons = {i.path: i.reason for i in taken.found.values() if i.outcome == "ignored"}
    assert "student_id_exclude" in reasons["john_doe_01_tensors.ipynb"]
    assert "not selected by --student john_*" in reasons["mary_ann/01_tensors/01_tensors.ipynb"]
