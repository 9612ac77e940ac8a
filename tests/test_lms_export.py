"""Does `python -m grader export` put grades.csv into a Canvas gradebook export, a Moodle grading worksheet and
a Moodle gradebook export, built as those systems write them, changing nothing else, and say whom it
could not place?"""

import csv
import io

import pytest
from lms_class import (
    CANVAS_HEADER,
    MOODLE_WORKSHEET,
    MOODLE_WORKSHEET_NAME,
    canvas_class,
    canvas_csv,
    fputcsv,
    moodle_class,
)

from grader import cli, lms


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def _export(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(["export", *args])
    return code, capsys.readouterr().out


@pytest.fixture
def canvas(tmp_path, capsys):
    graded = canvas_class(tmp_path)
    out = tmp_path / "canvas-import.csv"
    code, report = _export(capsys, "--lms", "canvas", "--roster", str(graded.rosters["canvas"]), "--grades",
                           str(graded.grading / "grades.csv"), "--out", str(out))
    return graded, out, code, report


def _by_login(rows: list[list[str]]) -> dict[str, list[str]]:
    return {row[1]: row for row in rows[1:] if row[1]}


def test_canvas_grades_land_in_each_students_row(canvas):
    """Is each grade written in the assignment's column of the right student, whichever id the hand-in gave
    (Canvas download user id, login, Canvas ID, an email login's user part), scaled to the column's points?"""
    graded, out, code, _ = canvas
    assert code == 0
    rows = _by_login(_rows(out.read_bytes()))
    tensors, capstone = CANVAS_HEADER.index("01_tensors (40001)"), CANVAS_HEADER.index("08_capstone (40007)")
    assert {rows[i][0]: (rows[i][tensors], rows[i][capstone]) for i in ("4242", "4244", "4245", "4247", "4248")} == {
        "Smith, John": ("10", "19"),  # smithjohn_4242: the Canvas download's user id; capstone 9.5/10 -> 19/20
        "Pérez, José": ("9", "20"),  # jperez: the SIS Login ID; 6.00 entered by hand is replaced
        "Nguyen, An": ("7", "0"),  # an.nguyen: an email login's user part; capstone missing -> 0
        "Li, Wei": ("8.5", "EX"),  # 4247: the Canvas ID; the excused capstone stays excused
        "Kim, Soo": ("6", "0"),
    }
    assert rows["4243"][tensors] == "" and rows["4243"][capstone] == "18"  # grading failed on 01: left empty
    assert rows["4246"][tensors] == rows["4246"][capstone] == ""  # Okafor handed in nothing
    assert rows["4999"][tensors] == rows["4999"][capstone] == ""  # Canvas's test student


def test_canvas_file_is_byte_for_byte_the_export_except_the_grades(canvas):
    """Are the BOM, CRLF line ends, quoting, Manual Posting and Points Possible rows, read-only totals and every
    cell but the grades written exactly as Canvas exported them, so Canvas re-imports the file?"""
    graded, out, _, _ = canvas
    before, after = graded.rosters["canvas"].read_bytes(), out.read_bytes()
    assert after.startswith(b"\xef\xbb\xbf") and after.count(b"\r\n") == before.count(b"\r\n")
    assert b"\n" not in after.replace(b"\r\n", b"")
    lines_before, lines_after = before.split(b"\r\n"), after.split(b"\r\n")
    assert len(lines_before) == len(lines_after)
    grade_columns = {CANVAS_HEADER.index("01_tensors (40001)"), CANVAS_HEADER.index("08_capstone (40007)")}
    changed = 0
    for old, new in zip(lines_before, lines_after):
        if old == new:
            continue
        changed += 1
        old_row, new_row = _rows(old)[0], _rows(new)[0]
        assert len(old_row) == len(new_row)
        assert [v for i, v in enumerate(old_row) if i not in grade_columns] == \
               [v for i, v in enumerate(new_row) if i not in grade_columns]
        # The untouched fields keep their raw text too: quotes stay where Canvas put them.
        assert new.split(b",", 2)[:2] == old.split(b",", 2)[:2]
    assert changed == 6  # the six students with a grade; header, posting and points rows untouched


def test_canvas_report_names_everyone_not_written(canvas):
    """Does the report list the graded student missing from the roster, the roster's student without a grade,
    the failed grading, the excused cell and the grade replaced, never the test student, and exit 0?"""
    _, out, code, report = canvas
    assert code == 0 and out.is_file()
    assert "NOT IN THE ROSTER" in report and "\n  mary_ann" in report
    assert "NO GRADE" in report and "01_tensors / Okafor, Chidi" in report and "08_capstone / Okafor, Chidi" in report
    assert "Doe, Jane" in report and "grading failed" in report
    assert "08_capstone / Li, Wei" in report and "excused (EX)" in report
    assert "Pérez, José" in report and "6.00 -> 9" in report
    assert "scaled by 2" in report and "Grades → Import" in report
    assert "Student, Test" not in report
    assert "0 written because nothing was handed in" in report and "08_capstone / Nguyen, An" in report


def test_moodle_worksheet_by_participant_number(tmp_path, capsys):
    """Is the grading worksheet's Grade filled by the participant number of the download's folder names,
    scaled to its Maximum Grade, its assignment taken from Moodle's file name, its BOM and quoting kept?"""
    graded = moodle_class(tmp_path)
    out = tmp_path / "worksheet-upload.csv"
    code, report = _export(capsys, "--lms", "moodle", "--roster", str(graded.rosters["worksheet"]), "--grades",
                           str(graded.grading / "grades.csv"), "--out", str(out))
    assert code == 0, report
    rows = _rows(out.read_bytes())
    grade = MOODLE_WORKSHEET[0].index("Grade")
    assert {r[0]: r[grade] for r in rows[1:]} == {
        "Participant 123": "95", "Participant 124": "72.5", "Participant 125": "0", "Participant 126": "60",
        "Participant 127": ""}
    before = graded.rosters["worksheet"].read_bytes()
    after = out.read_bytes()
    assert after.startswith(b"\xef\xbb\xbf")
    assert after.replace(b",95,", b",,").replace(b",72.5,", b",,").replace(b",0,100", b",,100").replace(
        b",60,", b",,") == before
    assert "Chidi Okafor (Participant 127)" in report and "scaled by 10" in report
    assert "Upload grading worksheet" in report


def test_moodle_worksheet_needs_its_assignment_when_the_name_does_not_say(tmp_path, capsys):
    """A worksheet whose file name names no assignment, and a grades.csv with two: is the instructor asked for
    --assignment, and is nothing written?"""
    graded = moodle_class(tmp_path)
    renamed = tmp_path / "worksheet.csv"
    renamed.write_bytes(graded.rosters["worksheet"].read_bytes())
    out = tmp_path / "out.csv"
    code, report = _export(capsys, "--lms", "moodle", "--roster", str(renamed), "--grades",
                           str(graded.grading / "grades.csv"), "--out", str(out))
    assert code == 1 and "--assignment" in report and not out.exists()
    code, report = _export(capsys, "--lms", "moodle", "--roster", str(renamed), "--grades",
                           str(graded.grading / "grades.csv"), "--out", str(out), "--assignment", "08_capstone")
    assert code == 0 and out.is_file()


def test_moodle_gradebook_by_email_and_name(tmp_path, capsys):
    """Are the gradebook export's `Assignment: NAME (Real)` columns filled, students matched by email user part
    and, for the download's `<name>_<number>` ids, by name (and the report says so)?"""
    graded = moodle_class(tmp_path)
    out = tmp_path / "gradebook-import.csv"
    code, report = _export(capsys, "--lms", "moodle", "--roster", str(graded.rosters["gradebook"]), "--grades",
                           str(graded.grading / "grades.csv"), "--out", str(out))
    assert code == 0, report
    rows = {r[5]: r[6:9] for r in _rows(out.read_bytes())[1:]}
    assert rows == {
        "john.smith@uni.example.edu": ["10", "9.5", "-"],
        "jose.perez@uni.example.edu": ["4", "7.25", "-"],
        "amelie.durand@uni.example.edu": ["8", "0", "-"],
        "jdoe7@uni.example.edu": ["9", "6", "-"],  # jdoe7: the email's user part
        "chidi.okafor@uni.example.edu": ["-", "-", "-"],
    }
    assert "matched BY NAME only" in report and "john_smith_123 -> John Smith" in report
    assert "jdoe7 ->" not in report  # matched by email, not by name
    assert not out.read_bytes().startswith(b"\xef\xbb\xbf")


def test_two_roster_rows_with_one_name_get_nothing(tmp_path, capsys):
    """When two roster students share the name a graded id gives, is neither written and the clash reported?"""
    graded = moodle_class(tmp_path)
    rows = [list(r) for r in MOODLE_WORKSHEET]
    rows.append(["Participant 200", "John Smith", "john.smith2@uni.example.edu", "No submission", "", "100.00", "Yes",
                 "-", "-", ""])
    rows[1][0] = "Participant 999"  # the download's 123 is no longer in the worksheet: the name is all that is left
    worksheet = tmp_path / MOODLE_WORKSHEET_NAME
    worksheet.write_bytes(fputcsv(rows, bom=True))
    out = tmp_path / "out.csv"
    code, report = _export(capsys, "--lms", "moodle", "--roster", str(worksheet), "--grades",
                           str(graded.grading / "grades.csv"), "--out", str(out))
    assert code == 0
    assert "john_smith_123: several roster rows fit" in report
    grade = MOODLE_WORKSHEET[0].index("Grade")
    assert [r[grade] for r in _rows(out.read_bytes()) if r[1] == "John Smith"] == ["", ""]


@pytest.mark.parametrize("problem, args, words", [
    ("the roster itself as --out", ["--out", "{roster}"], ["roster itself"]),
    ("not a Canvas export", ["--roster", "{grades}"], ["not a Canvas gradebook export", "Export Entire Gradebook"]),
    ("an assignment not graded", ["--assignment", "03_nn_module"], ["no grades for 03_nn_module"]),
    ("a column that does not exist", ["--column", "01_tensors=Tensors (1)", "--assignment", "01_tensors"],
     ["no column of that name"]),
    ("no grades.csv", ["--grades", "{missing}"], ["does not exist", "autograde"]),
])
def test_refusals_write_nothing_and_say_why(tmp_path, capsys, problem, args, words):
    """Is each of these refused with exit 1, a message naming the problem, the roster untouched, nothing written?"""
    graded = canvas_class(tmp_path)
    roster = graded.rosters["canvas"]
    before = roster.read_bytes()
    out = tmp_path / "out.csv"
    given = {"--lms": "canvas", "--roster": str(roster), "--grades": str(graded.grading / "grades.csv"),
             "--out": str(out)}
    names = {"roster": str(roster), "grades": str(graded.grading / "grades.csv"), "missing": str(tmp_path / "no.csv")}
    extra = [a.format(**names) for a in args]
    for key in list(given):
        if key in extra:
            given[key] = extra[extra.index(key) + 1]
            del extra[extra.index(key):extra.index(key) + 2]
    code, report = _export(capsys, *[x for kv in given.items() for x in kv], *extra)
    assert code == 1, report
    for word in words:
        assert word in report, report
    assert roster.read_bytes() == before
    assert not out.exists() or given["--out"] == str(roster)


def test_column_option_maps_a_differently_named_assignment(tmp_path, capsys):
    """When Canvas calls the capstone "Final project (40007)", does --column put its grades there?"""
    graded = canvas_class(tmp_path)
    header = [h if h != "08_capstone (40007)" else "Final project (40007)" for h in CANVAS_HEADER]
    from lms_class import CANVAS_ROWS

    roster = tmp_path / "renamed.csv"
    roster.write_bytes(canvas_csv([header] + CANVAS_ROWS))
    out = tmp_path / "out.csv"
    code, report = _export(capsys, "--lms", "canvas", "--roster", str(roster), "--grades",
                           str(graded.grading / "grades.csv"), "--out", str(out))
    assert code == 0 and "08_capstone: no column" in report and "--column 08_capstone=NAME" in report
    code, report = _export(capsys, "--lms", "canvas", "--roster", str(roster), "--grades",
                           str(graded.grading / "grades.csv"), "--out", str(out), "--column",
                           "08_capstone=Final project (40007)")
    assert code == 0 and "'Final project (40007)': 5 grade(s)" in report


@pytest.mark.parametrize("data", [
    b'a,b,c\r\n"x, ""quoted""",2,\r\n',
    b'Name;Grade\n"multi\nline";3\n;\n',
    b'\xef\xbb\xbfStudent,ID\n"Doe, Jane",4243',
    b"a,b\n\n1,2\n\n",
    b'a,b\n"x"y,2\n',
])
def test_table_writes_an_unedited_file_back_byte_for_byte(data):
    """Whatever the quoting, delimiter, line ends, blank lines or missing final newline, is a file read and
    written back with no edit identical, and does the csv module read the same cells?"""
    table = lms.Table(data, "f.csv")
    assert table.render() == data
    text = data.decode("utf-8-sig")
    assert [r.values for r in table.records if r.values != [""]] == [
        row for row in csv.reader(io.StringIO(text, newline=""), delimiter=table.delimiter) if row]


def test_table_edit_changes_one_field_only():
    """Is an edited field the only bytes that change, a quoted field staying quoted, a short row padded?"""
    table = lms.Table(b'A,B,C\r\n"x",1\r\n"y","2",3\r\n', "f.csv")
    table.set(1, 2, "9.5")
    table.set(2, 1, "7")
    assert table.render() == b'A,B,C\r\n"x",1,9.5\r\n"y","7",3\r\n'


def test_a_worksheet_named_for_another_assignment_is_refused(tmp_path, capsys):
    """A 08_capstone worksheet given with grades of 01_tensors only: is it refused rather than filled with the
    wrong assignment's grades?"""
    graded = moodle_class(tmp_path)
    out = tmp_path / "out.csv"
    code, report = _export(capsys, "--lms", "moodle", "--roster", str(graded.rosters["worksheet"]), "--grades",
                           str(graded.grading / "grades.csv"), "--out", str(out), "--assignment", "01_tensors")
    assert code == 1 and "grading worksheet of 08_capstone" in report and not out.exists()


def test_a_name_never_takes_a_row_an_id_matched(tmp_path, capsys):
    """A course-convention `john_smith` beside the Canvas download's `smithjohn_4242` (Smith, John): does the id
    win, and is `john_smith` reported as not in the roster, with the reason, rather than overwriting the grade?"""
    graded = canvas_class(tmp_path)
    with open(graded.grading / "grades.csv", "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow(["john_smith", "01_tensors", 3.0, 10.0, "ok", "", False, "", 0.0, ""])
    out = tmp_path / "out.csv"
    code, report = _export(capsys, "--lms", "canvas", "--roster", str(graded.rosters["canvas"]), "--grades",
                           str(graded.grading / "grades.csv"), "--out", str(out), "--assignment", "01_tensors")
    assert code == 0
    assert "john_smith (its name is that of Smith, John (ID 4242, login jsmith), who is smithjohn_4242 by id)" in report
    assert _by_login(_rows(out.read_bytes()))["4242"][CANVAS_HEADER.index("01_tensors (40001)")] == "10"
