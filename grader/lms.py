"""`python -m grader export`: grades.csv into the gradebook file your LMS imports.

The roster is your own export from the LMS. The command fills in the grades and writes a copy to
--out; every other cell, row, quote, line ending and byte-order mark stays exactly as it was, so the
LMS re-imports the file and shows only the grades that changed:

* Canvas: Grades → Export → *Export Entire Gradebook*. Columns `Student, ID, SIS User ID, SIS Login ID,
  [Integration ID, Root Account,] Section`, then one column per assignment, `Assignment name (number)`,
  and read-only totals; under the header a `Points Possible` row (and, in newer exports, a row saying
  `Manual Posting` or `Muted`). Import it with Grades → Import.
* Moodle, either of:
  - the assignment's *grading worksheet* (View all submissions → Download grading worksheet, with
    "Offline grading worksheet" on in the assignment's feedback types): `Identifier` holds
    `Participant 123`, the number of the submissions download (`John Smith_123_assignsubmission_file_`),
    and `Grade` is filled. Upload it with Upload grading worksheet. One assignment per file.
  - the course gradebook's export (Grades → Export → Plain text file): `First name, Last name,
    ID number, ..., Email address`, then `Assignment: NAME (Real)` per grade item. Import it with
    Grades → Import → CSV file, mapping *Email address* to the user's email.

A grade goes into the column whose name (less Moodle's `Assignment: ` prefix) starts with the
assignment's name (`--column` maps any other). Students are matched to grades.csv's student_id by
the LMS's ids first (Canvas: SIS Login ID, ID, SIS User ID, and the user id of a Canvas download's
`<lastfirst>_<userid>`; Moodle: the participant number of `<name>_<number>`, username, ID number,
email), then by an email's user part, then by name, only where exactly one row fits (and a name never
takes a row an id already matched). Scores are scaled where the file gives the column's points
(Canvas's Points Possible, the worksheet's Maximum Grade); a student who handed in nothing gets 0.
Nothing is dropped in silence: the report lists the graded students missing from the roster, the roster's
students without a grade, the cells left alone (excused, grading failed, two ids for one student)
and the grades that replace a different one. Those are for you to settle; the file is written all the
same and the command exits 0. It exits 1 only when it writes nothing.
"""

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from grader import course
from grader.autograde.intake import slug

CANVAS, MOODLE = "canvas", "moodle"
LMSES = (CANVAS, MOODLE)
# Canvas's own columns before the assignments; any other column is an assignment or a total.
CANVAS_ID_COLUMNS = {"Student", "ID", "SIS User ID", "SIS Login ID", "Integration ID", "Root Account", "Section",
                     "Student Number"}
CANVAS_TEST_STUDENT = "Student, Test"  # the "student view" user every Canvas course has
CANVAS_EXCUSED = "EX"
CANVAS_DOWNLOAD_ID = re.compile(r"^[a-z0-9]+_(\d+)$", re.I)  # intake's Canvas student id: <lastfirst>_<userid>
MOODLE_DOWNLOAD_ID = re.compile(r"^(.+)_(\d+)$")  # intake's Moodle student id: <slug of full name>_<participant>
MOODLE_PARTICIPANT = re.compile(r"^\s*Participant\s+(\d+)\s*$", re.I)
MOODLE_ITEM_PREFIX = re.compile(r"^[^:]{1,40}:\s*")  # "Assignment: ", "Quiz: "
MOODLE_NO_GRADE = {"", "-"}
DELIMITERS = (",", ";", "\t")


class ExportError(ValueError):
    """Nothing was written; the message says why and what to do."""


# --- a CSV file kept byte for byte ----------------------------------------------------------------

@dataclass
class Field:
    value: str
    start: int  # where the field's raw text starts and ends in the file's text
    end: int
    quoted: bool


@dataclass
class Record:
    fields: list[Field]
    start: int
    end: int  # before the line ending

    @property
    def values(self) -> list[str]:
        return [f.value for f in self.fields]


class Table:
    """A CSV file as records whose fields know where they lie in the text, so that a cell can be replaced and
    everything else written back exactly as it was."""

    def __init__(self, data: bytes, name: str):
        self.name = name
        self.bom = data.startswith(b"\xef\xbb\xbf")
        try:
            self.text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ExportError(f"{name} is not UTF-8 text: export it from the LMS again (a spreadsheet that saved it "
                              "may have changed its encoding)") from None
        self.delimiter = _delimiter(self.text)
        self.records = _records(self.text, self.delimiter, name)
        self._edits: dict[tuple[int, int], str] = {}

    @property
    def header(self) -> list[str]:
        return [v.strip() for v in self.records[0].values] if self.records else []

    def set(self, row: int, column: int, value: str) -> None:
        self._edits[row, column] = value

    def render(self) -> bytes:
        text = self.text
        for (row, column), value in sorted(self._edits.items(), reverse=True):
            record = self.records[row]
            if column < len(record.fields):
                old = record.fields[column]
                text = text[:old.start] + self._quoted(value, old.quoted) + text[old.end:]
            else:  # a short row: the fields it lacks are added, empty, up to this one
                padding = self.delimiter * (column - len(record.fields) + 1)
                text = text[:record.end] + padding + self._quoted(value, False) + text[record.end:]
        return (b"\xef\xbb\xbf" if self.bom else b"") + text.encode("utf-8")

    def _quoted(self, value: str, quoted: bool) -> str:
        if quoted or any(c in value for c in (self.delimiter, '"', "\n", "\r")):
            return '"' + value.replace('"', '""') + '"'
        return value


def _delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in DELIMITERS}
    return max(DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else ","


def _records(text: str, delimiter: str, name: str) -> list[Record]:
    """Split `text` into records as the csv module reads it (RFC 4180 quoting), keeping each field's span."""
    records, i, n = [], 0, len(text)
    while i < n:
        start, fields = i, []
        while True:
            field_start = i
            if i < n and text[i] == '"':
                parts, j = [], i + 1
                while True:
                    k = text.find('"', j)
                    if k < 0:
                        raise ExportError(f"{name}: a quoted field opened at character {i} is never closed")
                    parts.append(text[j:k])
                    if text.startswith('""', k):
                        parts.append('"')
                        j = k + 2
                        continue
                    j = k + 1
                    break
                m = j
                while m < n and text[m] not in (delimiter, "\r", "\n"):
                    m += 1
                fields.append(Field("".join(parts) + text[j:m], field_start, m, True))
            else:
                m = i
                while m < n and text[m] not in (delimiter, "\r", "\n"):
                    m += 1
                fields.append(Field(text[i:m], field_start, m, False))
            i = m
            if i < n and text[i] == delimiter:
                i += 1
                continue
            break
        records.append(Record(fields, start, i))
        i += 2 if text.startswith("\r\n", i) else 1
    # The csv module must read the same cells: anything else would be a file this reader misunderstands.
    expected = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]
    ours = [r.values for r in records if r.values != [""]]
    if ours != [row for row in expected if row]:
        raise ExportError(f"{name} could not be read cell for cell as CSV: export it from the LMS again")
    return records


# --- grades.csv ---------------------------------------------------------------------------------------

@dataclass
class Grade:
    student_id: str
    assignment: str
    score: float
    max_score: float
    status: str
    needs_manual_grade: bool = False


def read_grades(path: Path) -> list[Grade]:
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path} does not exist: run `python -m grader autograde ... --out {path.parent}/` first")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"student_id", "assignment", "score", "max_score", "status"} - set(reader.fieldnames or [])
        if missing:
            raise ExportError(f"{path} is not a grades.csv written by autograde: it lacks {', '.join(sorted(missing))}")
        try:
            return [Grade(r["student_id"], r["assignment"], float(r["score"] or 0), float(r["max_score"] or 0),
                          r["status"], r.get("needs_manual_grade") == "True") for r in reader]
        except ValueError as error:
            raise ExportError(f"{path}: a score is not a number ({error})") from None


# --- matching students ----------------------------------------------------------------------------------

@dataclass
class Student:
    """A roster row that is a student: where it is, what it is called, and the keys it can be found by."""

    row: int
    label: str  # how the report names it
    keys: list[tuple[str, str]]  # (kind, normalised value)


def _norm(value: str) -> str:
    return value.strip().lower()


def _email_user(value: str) -> str:
    value = _norm(value)
    return value.split("@", 1)[0] if "@" in value else ""


def _name_slugs(name: str) -> list[str]:
    """`Smith, John` (Canvas) and `John Smith` both give john_smith (and smith_john, for the other order)."""
    if "," in name:
        last, _, first = name.partition(",")
        name = f"{first} {last}"
    words = slug(name).split("_")
    return list(dict.fromkeys(["_".join(words), "_".join(words[-1:] + words[:-1])])) if words != [""] else []


def _candidates(lms: str, student_id: str) -> list[tuple[str, str]]:
    """What a grades.csv student id may be in the roster, most trustworthy first."""
    sid = _norm(student_id)
    keys = [("login", sid), ("username", sid), ("id", sid), ("sis", sid), ("email", sid)]
    canvas = CANVAS_DOWNLOAD_ID.match(sid)
    if lms == CANVAS and canvas:
        keys.append(("id", canvas.group(1)))
    moodle = MOODLE_DOWNLOAD_ID.match(sid)
    if lms == MOODLE and moodle:
        keys.append(("participant", moodle.group(2)))
    keys.append(("email-user", sid))
    keys.append(("name", slug(moodle.group(1)) if lms == MOODLE and moodle else slug(sid)))
    return keys


@dataclass
class Match:
    rows: dict[str, int] = field(default_factory=dict)  # student_id -> roster row
    by_name: dict[str, str] = field(default_factory=dict)  # student_id -> roster label, matched by name only
    ambiguous: dict[str, list[str]] = field(default_factory=dict)  # student_id -> labels of the rows that fit
    unmatched: list[str] = field(default_factory=list)


def match(lms: str, students: list[Student], student_ids: list[str]) -> Match:
    """Each graded id's roster row: the first kind of key that finds any row decides, and only if it finds one.
    A match by name never takes a row that an id already matched (`john_smith` of the course's naming and
    `smithjohn_4242` of a Canvas download are not the same person just because one is called John Smith)."""
    index: dict[tuple[str, str], list[Student]] = {}
    for student in students:
        for key in dict.fromkeys(student.keys):
            if key[1]:
                index.setdefault(key, []).append(student)
    result = Match()
    by_name: dict[str, Student] = {}
    for sid in student_ids:
        for key in _candidates(lms, sid):
            found = index.get(key, [])
            if len(found) == 1 and key[0] == "name":
                by_name[sid] = found[0]
                break
            if len(found) == 1:
                result.rows[sid] = found[0].row
                break
            if len(found) > 1:
                result.ambiguous[sid] = [s.label for s in found]
                break
        else:
            result.unmatched.append(sid)
    by_id = {row: sid for sid, row in result.rows.items()}
    for sid, student in by_name.items():
        if student.row in by_id:
            result.unmatched.append(f"{sid} (its name is that of {student.label}, who is {by_id[student.row]} by id)")
        else:
            result.rows[sid] = student.row
            result.by_name[sid] = student.label
    result.unmatched.sort()
    return result


# --- the rosters -------------------------------------------------------------------------------------------

@dataclass
class Roster:
    table: Table
    lms: str
    kind: str  # "Canvas gradebook", "Moodle grading worksheet", "Moodle gradebook"
    students: list[Student]
    columns: dict[int, str]  # grade columns: index -> header
    points: dict[int, float | None]  # a column's maximum where the file says it (None: not said)
    excused: set[str] = field(default_factory=set)  # values never overwritten
    empty: set[str] = field(default_factory=lambda: {""})
    worksheet: bool = False
    how_to_import: str = ""


def _col(header: list[str], *names: str) -> int | None:
    lowered = [h.lower() for h in header]
    for name in names:
        if name.lower() in lowered:
            return lowered.index(name.lower())
    return None


def _cell(record: Record, column: int | None) -> str:
    return record.fields[column].value.strip() if column is not None and column < len(record.fields) else ""


def _number(text: str) -> float | None:
    try:
        return float(text.strip().replace(",", "."))
    except ValueError:
        return None


def read_roster(lms: str, path: Path) -> Roster:
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path} does not exist: export the gradebook from {lms.capitalize()} first "
                          "(see `python -m grader export --help`)")
    table = Table(path.read_bytes(), path.name)
    if not table.records:
        raise ExportError(f"{path} is empty")
    return _canvas(table) if lms == CANVAS else _moodle(table)


def _canvas(table: Table) -> Roster:
    header = table.header
    student, user_id, login = _col(header, "Student"), _col(header, "ID"), _col(header, "SIS Login ID")
    if student is None or user_id is None:
        raise ExportError(f"{table.name} is not a Canvas gradebook export: its first row lacks `Student` and `ID` "
                          f"(it has {', '.join(header[:6])}). In Canvas: Grades → Export → Export Entire Gradebook")
    sis = _col(header, "SIS User ID")
    columns = {i: h for i, h in enumerate(header) if h and h not in CANVAS_ID_COLUMNS}
    points: dict[int, float | None] = {}
    students = []
    for row, record in enumerate(table.records[1:], start=1):
        first = _cell(record, 0)
        if first == "Points Possible":
            for i in columns:
                value = _cell(record, i)
                points[i] = _number(value) if "read only" not in value.lower() else -1.0
            continue
        if not _cell(record, user_id) or first == CANVAS_TEST_STUDENT:
            continue  # "Manual Posting" / "Muted" rows, blank lines, Canvas's test student
        name = _cell(record, student)
        keys = [("id", _norm(_cell(record, user_id))), ("login", _norm(_cell(record, login))),
                ("sis", _norm(_cell(record, sis))), ("email-user", _email_user(_cell(record, login)))]
        keys += [("name", s) for s in _name_slugs(name)]
        label = f"{name} (ID {_cell(record, user_id)}" + (f", login {_cell(record, login)})" if _cell(record, login)
                                                          else ")")
        students.append(Student(row, label, keys))
    # Columns Canvas computes (totals, grades) are "(read only)" in the Points Possible row: never written.
    columns = {i: h for i, h in columns.items() if points.get(i) != -1.0}
    return Roster(table, CANVAS, "Canvas gradebook", students, columns, points, excused={CANVAS_EXCUSED},
                  how_to_import="Canvas: Grades → Import → choose this file; Canvas lists every change before "
                                "you save it")


def _moodle(table: Table) -> Roster:
    header = table.header
    identifier = _col(header, "Identifier")
    email = _col(header, "Email address", "Email")
    if identifier is not None:  # an assignment's grading worksheet
        grade, full_name, maximum = _col(header, "Grade"), _col(header, "Full name"), _col(header, "Maximum Grade")
        if grade is None:
            raise ExportError(f"{table.name} has `Identifier` but no `Grade` column: download the grading worksheet "
                              "again (View all submissions → Download grading worksheet)")
        students, points = [], {}
        for row, record in enumerate(table.records[1:], start=1):
            participant = MOODLE_PARTICIPANT.match(_cell(record, identifier))
            if not participant:
                continue
            name = _cell(record, full_name)
            keys = [("participant", participant.group(1)), ("email", _norm(_cell(record, email))),
                    ("email-user", _email_user(_cell(record, email)))] + [("name", s) for s in _name_slugs(name)]
            students.append(Student(row, f"{name} (Participant {participant.group(1)})", keys))
            points.setdefault(grade, _number(_cell(record, maximum)) if maximum is not None else None)
        return Roster(table, MOODLE, "Moodle grading worksheet", students, {grade: "Grade"}, points, worksheet=True,
                      how_to_import="Moodle: the assignment → View all submissions → Upload grading worksheet "
                                    "(tick 'Allow updating records that have been modified more recently in "
                                    "Moodle' only if you mean it)")
    first, last = _col(header, "First name"), _col(header, "Last name", "Surname")
    username, id_number = _col(header, "Username"), _col(header, "ID number")
    if email is None and username is None and id_number is None:
        raise ExportError(f"{table.name} is neither a Moodle grading worksheet (an `Identifier` column) nor a Moodle "
                          f"gradebook export (an `Email address`, `Username` or `ID number` column); it has "
                          f"{', '.join(header[:6])}")
    known = {first, last, username, id_number, email, _col(header, "Institution"), _col(header, "Department"),
             _col(header, "Phone"), _col(header, "Mobile phone")}
    columns = {i: h for i, h in enumerate(header) if i not in known and h and not h.lower().startswith(
        ("course total", "last downloaded"))}
    students = []
    for row, record in enumerate(table.records[1:], start=1):
        if not any(v.strip() for v in record.values):
            continue
        name = f"{_cell(record, first)} {_cell(record, last)}".strip()
        keys = [("username", _norm(_cell(record, username))), ("id", _norm(_cell(record, id_number))),
                ("email", _norm(_cell(record, email))), ("email-user", _email_user(_cell(record, email)))]
        keys += [("name", s) for s in _name_slugs(name)]
        students.append(Student(row, f"{name} ({_cell(record, email) or _cell(record, id_number)})", keys))
    return Roster(table, MOODLE, "Moodle gradebook", students, columns, {}, empty=set(MOODLE_NO_GRADE),
                  how_to_import="Moodle: Grades → Import → CSV file; map 'Email address' to the user's email "
                                "and each assignment column to its grade item")


def _column_name(roster: Roster, header: str) -> str:
    """A column's name as matched: Moodle's `Assignment: 01_tensors (Real)` is `01_tensors (Real)`."""
    return MOODLE_ITEM_PREFIX.sub("", header) if roster.lms == MOODLE and not roster.worksheet else header


def find_columns(roster: Roster, assignments: list[str], explicit: dict[str, str],
                 worksheet_assignment: str | None) -> tuple[dict[str, int], list[str]]:
    """{assignment: column index} and the problems: an assignment with no column, or with several."""
    found, problems = {}, []
    if roster.worksheet:
        (column,) = roster.columns
        return ({worksheet_assignment: column} if worksheet_assignment else {}), []
    for assignment in assignments:
        if assignment in explicit:
            matches = [i for i, h in roster.columns.items() if h == explicit[assignment]]
            if not matches:
                problems.append(f"--column {assignment}={explicit[assignment]}: {roster.table.name} has no column "
                                f"of that name")
        else:
            names = {i: _column_name(roster, h) for i, h in roster.columns.items()}
            matches = [i for i, name in names.items() if name.lower().startswith(assignment.lower())]
            exact = [i for i in matches if re.sub(r"\s*\(.*\)\s*$", "", names[i]).lower() == assignment.lower()]
            matches = exact if len(exact) == 1 else matches
            if not matches:
                problems.append(f"{assignment}: no column of {roster.table.name} starts with {assignment!r}; create "
                                f"the assignment in the LMS and export again, or give --column {assignment}=NAME")
            elif len(matches) > 1:
                shown = ", ".join(repr(roster.columns[i]) for i in matches)
                problems.append(f"{assignment}: several columns start with {assignment!r} ({shown}); give "
                                f"--column {assignment}=NAME")
                matches = []
        if matches:
            found[assignment] = matches[0]
    return found, problems


# --- the export ----------------------------------------------------------------------------------------------

@dataclass
class Export:
    """What the export did, for the report."""

    roster: Roster
    out: Path
    columns: dict[str, str] = field(default_factory=dict)  # assignment -> column header
    written: dict[str, int] = field(default_factory=dict)  # assignment -> grades written
    scaled: dict[str, str] = field(default_factory=dict)  # assignment -> "out of 10, the column's 20 points: x2"
    replaced: list[str] = field(default_factory=list)  # a grade written over a different one
    kept: list[str] = field(default_factory=list)  # cells left as they were, and why
    not_in_roster: list[str] = field(default_factory=list)
    no_grade: list[str] = field(default_factory=list)
    by_name: list[str] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # nothing handed in: 0 written
    problems: list[str] = field(default_factory=list)

    def report(self) -> list[str]:
        total = sum(self.written.values())
        lines = [f"{self.out}: {total} grade(s) written into {self.roster.kind} {self.roster.table.name}"]
        for assignment, column in self.columns.items():
            lines.append(f"  {assignment} -> column {column!r}: {self.written.get(assignment, 0)} grade(s)"
                         + (f"; {self.scaled[assignment]}" if assignment in self.scaled else ""))
        sections = [
            ("PROBLEMS (nothing written for these)", self.problems),
            ("graded but NOT IN THE ROSTER (no grade written; add them to the LMS, or check their id)",
             self.not_in_roster),
            ("in the roster with NO GRADE in grades.csv (left as they were: did they hand in?)", self.no_grade),
            ("cells LEFT AS THEY WERE", self.kept),
            ("grades that REPLACE a different grade already in the roster", self.replaced),
            ("matched BY NAME only (check these are the same people)", self.by_name),
            ("0 written because nothing was handed in (status missing in grades.csv)", self.missing),
            ("answers still to grade by hand in formgrader (export again afterwards)", self.manual),
        ]
        for title, items in sections:
            if items:
                lines.append(f"{title}: {len(items)}")
                lines += [f"  {item}" for item in items]
        lines.append(f"next: {self.roster.how_to_import}")
        return lines


def _format(value: float) -> str:
    return f"{round(value, 2):.2f}".rstrip("0").rstrip(".") if value == value else ""


def parse_columns(items: list[str] | None) -> dict[str, str]:
    explicit = {}
    for item in items or []:
        assignment, sep, header = item.partition("=")
        if not sep or not assignment.strip() or not header.strip():
            raise ExportError(f"--column {item!r}: write ASSIGNMENT=COLUMN NAME, e.g. --column "
                              "'08_capstone=Capstone project (40007)'")
        explicit[assignment.strip()] = header.strip()
    return explicit


def export(lms: str, roster_path: Path, grades_path: Path, out: Path, assignments: list[str] | None = None,
           columns: list[str] | None = None) -> Export:
    """Fill `roster_path`'s grade columns from `grades_path` and write the result to `out` (see the module)."""
    roster_path, out = Path(roster_path), Path(out)
    if out.resolve() == roster_path.resolve():
        raise ExportError(f"--out {out} is the roster itself: write to a new file, and keep the LMS's export as it is")
    grades = read_grades(grades_path)
    roster = read_roster(lms, roster_path)
    explicit = parse_columns(columns)
    graded = sorted({g.assignment for g in grades})
    wanted = assignments or graded
    unknown = sorted(set(wanted) - set(graded))
    if unknown:
        raise ExportError(f"{grades_path} has no grades for {', '.join(unknown)}; it has {', '.join(graded) or 'none'}")
    worksheet_assignment = None
    if roster.worksheet:
        named = [a for a in wanted if a.lower() in roster_path.name.lower()]
        others = [a for a in course.assignments() if a.lower() in roster_path.name.lower() and a not in wanted]
        if others and not named:
            raise ExportError(f"{roster_path.name} is the grading worksheet of {others[0]}, by its name, and "
                              f"{grades_path} has no grades for it: export that assignment's grades, or give the "
                              f"worksheet of {', '.join(wanted)}")
        if len(wanted) == 1:
            worksheet_assignment = wanted[0]
        elif len(named) == 1:
            worksheet_assignment = named[0]
        else:
            raise ExportError(f"{roster_path.name} is one assignment's grading worksheet and {grades_path} grades "
                              f"{', '.join(wanted)}: say which with --assignment NAME")
        wanted = [worksheet_assignment]
    found, problems = find_columns(roster, wanted, explicit, worksheet_assignment)
    result = Export(roster, out, problems=problems)
    if not found:
        raise ExportError("nothing to write:\n  " + "\n  ".join(problems or ["no grade column found"]))
    by_assignment: dict[str, list[Grade]] = {}
    for grade in grades:
        if grade.assignment in found:
            by_assignment.setdefault(grade.assignment, []).append(grade)
    student_ids = sorted({g.student_id for a in found for g in by_assignment.get(a, [])})
    matched = match(lms, roster.students, student_ids)
    labels = {s.row: s.label for s in roster.students}
    for sid in matched.unmatched:
        result.not_in_roster.append(sid)
    for sid, rows in matched.ambiguous.items():
        result.not_in_roster.append(f"{sid}: several roster rows fit ({'; '.join(rows)}); none written")
    result.by_name = [f"{sid} -> {label}" for sid, label in sorted(matched.by_name.items())]
    for assignment, column in found.items():
        result.columns[assignment] = roster.columns[column]
        points = roster.points.get(column)
        maxima = {g.max_score for g in by_assignment.get(assignment, []) if g.max_score}
        factor = 1.0
        if points and maxima and maxima != {points}:
            if len(maxima) == 1:
                (maximum,) = maxima
                factor = points / maximum
                result.scaled[assignment] = (f"graded out of {_format(maximum)}, the column is worth {_format(points)} "
                                             f"points: scores scaled by {_format(factor)}")
            else:
                result.problems.append(f"{assignment}: grades.csv has different maxima ({sorted(maxima)}); scores "
                                       "written unscaled")
        elif not points and maxima:
            result.scaled[assignment] = (f"points out of {', '.join(_format(m) for m in sorted(maxima))}: the LMS's "
                                         "item must have that maximum")
        rows_taken: dict[int, str] = {}
        for grade in sorted(by_assignment.get(assignment, []), key=lambda g: g.student_id):
            row = matched.rows.get(grade.student_id)
            if row is None:
                continue
            where = f"{assignment} / {labels[row]}"
            if row in rows_taken:
                result.kept.append(f"{where}: graded as both {rows_taken[row]} and {grade.student_id}; the first is "
                                   "kept: choose, then export again")
                continue
            rows_taken[row] = grade.student_id
            if grade.status == "error":
                result.kept.append(f"{where} ({grade.student_id}): grading failed (status error in grades.csv): "
                                   "rerun autograde, then export again")
                continue
            record = roster.table.records[row]
            old = _cell(record, column)
            if old in roster.excused:
                result.kept.append(f"{where}: excused ({old}) in the LMS, not overwritten")
                continue
            value = _format(grade.score * factor)
            if old not in roster.empty and _number(old) != _number(value):
                result.replaced.append(f"{where}: {old} -> {value}")
            roster.table.set(row, column, value)
            result.written[assignment] = result.written.get(assignment, 0) + 1
            if grade.needs_manual_grade:
                result.manual.append(f"{grade.student_id}/{assignment}")
            if grade.status == "missing":
                result.missing.append(where)
        for student in roster.students:
            if student.row not in rows_taken:
                old = _cell(roster.table.records[student.row], column)
                result.no_grade.append(f"{assignment} / {student.label}" + (f" (keeps {old})" if old not in
                                                                                roster.empty else ""))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(roster.table.render())
    return result
