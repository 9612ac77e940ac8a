"""Find every student's notebook for every assignment, whatever shape the hand-in came in.

The hand-in is a folder or a .zip, and each notebook in it is placed by the first layout its path
fits (a download may mix them):
  * Moodle: a folder per student `John Smith_123_assignsubmission_file_/<file>`, or the same prefix
    on the file name; the student is `john_smith_123` and the gradebook gets the name;
  * Blackboard: `<Assignment>_<username>_attempt_<YYYY-MM-DD-HH-MM-SS>_<file>`; the latest attempt counts,
    and its time is when it was handed in;
  * Canvas: `<lastfirst>_[LATE_]<user id>_<submission id>_<file>`; the student is `<lastfirst>_<user id>`,
    and `LATE_` says Canvas saw it arrive after the due date;
  * nbgrader's layout: `<student_id>/<assignment>/<notebook>.ipynb`, with the other files of that folder
    (`timestamp.txt`, the student's data files and modules); as for nbgrader, a notebook in a subfolder
    of it (`archive/`) is not the hand-in;
  * the course's own convention: `<student_id>_<notebook>.ipynb`, where the id is everything before
    the notebook's name, so `john_smith_05_training_loop.ipynb` belongs to `john_smith`.
`--filename-regex` (nbgrader zip_collect's `student_id`/`file_id` groups, matched against the path
inside the hand-in, then the file name) replaces these rules for any other convention.

When a hand-in has no nbgrader `timestamp.txt`, its time is the Blackboard attempt's, else the zip entry's
(LMS downloads stamp each entry with the hand-in's time); times without a zone are the course's.

Every .ipynb found is accounted for: placed with a student and an assignment, or ignored with its
reason. A zip entry can never write outside its destination, and nothing given is ever modified.
"""

import csv
import fnmatch
import re
import shutil
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from grader import course, late

# A student id is any name nbgrader could use as a folder (`jdoe@uni.edu`, `müller`, `Ann Lee`), but never a
# path (`/`, `\`), a hidden name, a glob pattern (nbgrader globs its folders), a control character, blank
# ends, or more than 100 characters.
STUDENT_ID = re.compile(r"^(?![.\s])[^/\\*?\[\]\x00-\x1f\x7f]{1,100}(?<!\s)$")
PLAIN_ID = re.compile(r"^[\w@.+-]{1,100}$")  # kept as it is in a file name; anything else is slugged
MAX_ZIP_BYTES = 2 * 2**30
MAX_ZIP_ENTRIES = 100_000
INTAKE_CSV = "intake.csv"

MOODLE_FOLDER = re.compile(r"^(?P<name>.+?)_(?P<number>\d+)_assign(?:submission|feedback)_[a-z]+_$")
MOODLE_FILE = re.compile(r"^(?P<name>.+?)_(?P<number>\d+)_assignsubmission_[a-z]+_(?P<file>.+)$")
BLACKBOARD = re.compile(
    r"^(?P<label>.+)_(?P<user>[^_/]+)_attempt_(?P<when>\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)_(?P<file>.+)$")
CANVAS = re.compile(r"^(?P<name>[a-z0-9]+)_(?P<late>late_)?(?P<user>\d+)_\d+_(?P<file>.+)$", re.IGNORECASE)
BLACKBOARD_TIME = "%Y-%m-%d-%H-%M-%S"
# What students and LMSs put between an id and the notebook's name: "jdoe_Copy of 05_...".
COPY_PREFIX = re.compile(r"(?i)[\s_-]*(copy of)?[\s_-]*$")
NOISE_FOLDERS = {"__MACOSX", ".ipynb_checkpoints"}


class IntakeError(ValueError):
    """The hand-in as a whole cannot be read (no such path, a bad zip, nothing to grade)."""


@dataclass
class Submission:
    student: str
    assignment: str
    files: list[Path] = field(default_factory=list)  # every .ipynb handed in for this assignment
    notes: list[str] = field(default_factory=list)
    folder: Path | None = None  # nbgrader's layout: the student's assignment folder, with its other files
    submitted_at: datetime | None = None  # UTC, from the LMS's file name or the zip entry (timestamp.txt aside)
    marked_late: bool = False  # the LMS's file name says it arrived after the due date (Canvas's LATE_)


@dataclass
class Found:
    """One .ipynb of the hand-in and what became of it."""

    path: str  # inside the hand-in
    student: str = ""
    assignment: str = ""
    outcome: str = "graded"  # or "ignored"
    reason: str = ""


@dataclass
class Intake:
    submissions: list[Submission]
    found: dict[Path, Found]  # by the file's path on disk
    names: dict[str, tuple[str, str]]  # student id -> (first, last) where the download gives a name

    def ignore(self, path: Path, reason: str) -> None:
        self.found[path].outcome, self.found[path].reason = "ignored", reason

    def write_csv(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "student_id", "assignment", "outcome", "reason"])
            for item in sorted(self.found.values(), key=lambda i: i.path):
                writer.writerow([item.path, item.student, item.assignment, item.outcome, item.reason])


def extract_zip(archive: Path, destination: Path,
                zone=timezone.utc) -> tuple[Path, dict[str, str], dict[Path, datetime]]:
    """Extract safely: no absolute paths, no `..`, no links, bounded size and count. Returns the folder, the
    entries not written with the reason, and each written file's entry time (UTC; read in `zone`)."""
    destination = destination.resolve()
    skipped: dict[str, str] = {}
    times: dict[Path, datetime] = {}
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > MAX_ZIP_ENTRIES or sum(m.file_size for m in members) > MAX_ZIP_BYTES:
                raise IntakeError(f"{archive.name} is too large to extract safely")
            for member in members:
                target = (destination / member.filename).resolve()
                mode = member.external_attr >> 16
                if not target.is_relative_to(destination) or stat.S_ISLNK(mode):
                    skipped[member.filename] = "a link, or a path outside the zip's folder: never extracted"
                    continue
                try:
                    if member.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(member) as source, open(target, "wb") as sink:
                        shutil.copyfileobj(source, sink)
                    times[target] = _entry_time(member, zone)
                except (OSError, zipfile.BadZipFile, NotImplementedError) as error:
                    # A name too long for the file system, a corrupt or encrypted entry: this entry only.
                    skipped[member.filename] = f"could not be extracted ({type(error).__name__}: {error})"[:300]
    except zipfile.BadZipFile as error:
        raise IntakeError(f"{archive.name} is not a readable zip file ({error})") from None
    return destination, skipped, times


def _entry_time(member: zipfile.ZipInfo, zone) -> datetime | None:
    """A zip entry's time (the zip format stores it without a zone), or None for the format's 'no time' date."""
    if member.date_time[0] <= 1980:
        return None
    return datetime(*member.date_time, tzinfo=zone).astimezone(timezone.utc)


def slug(name: str) -> str:
    """A student id from a person's name: `José Pérez` -> `jose_perez`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "_".join(re.findall(r"[a-z0-9]+", ascii_name.lower()))


def _assignment_of(name: str, known: set[str]) -> str | None:
    matches = [a for a in known if a in name]
    return max(matches, key=len) if matches else None


class _Placer:
    """Decides, for one notebook's path inside the hand-in, whose it is and for which assignment."""

    def __init__(self, known: set[str], filename_regex: str | None, single_assignment: bool):
        self.known = known
        self.collector = None
        if filename_regex:
            from nbgrader.plugins.zipcollect import FileNameCollectorPlugin  # seconds to import: only when asked

            self.collector = FileNameCollectorPlugin(named_regexp=filename_regex)
        self.single = next(iter(known)) if single_assignment and len(known) == 1 else None
        self.names: dict[str, tuple[str, str]] = {}
        self.marked_late: set[Path] = set()  # the files whose LMS name says they came in late

    def place(self, relative: Path) -> tuple[str, str, str, str]:
        """(student, assignment, attempt, reason why not): attempt orders resubmissions, reason is set when
        the file cannot be placed."""
        if self.collector:
            info = self.collector.collect(relative.as_posix()) or self.collector.collect(relative.name)
            if not info:
                return "", "", "", "its path does not match --filename-regex"
            return self._checked(info["student_id"], info["file_id"], "")
        if len(relative.parts) >= 2 and (moodle := MOODLE_FOLDER.match(relative.parts[-2])):
            return self._moodle(moodle["name"], moodle["number"], relative.name)
        if moodle := MOODLE_FILE.match(relative.name):
            return self._moodle(moodle["name"], moodle["number"], moodle["file"])
        if blackboard := BLACKBOARD.match(relative.name):
            return self._checked(blackboard["user"], blackboard["file"], blackboard["when"])
        canvas = CANVAS.match(relative.name)
        if canvas and _assignment_of(canvas["file"], self.known):
            if canvas["late"]:
                self.marked_late.add(relative)
            return self._checked(f"{canvas['name']}_{canvas['user']}", canvas["file"], "")
        layout = nbgrader_layout(relative)
        if layout:
            student, assignment, depth = layout
            if depth:
                return "", "", "", (f"in a subfolder of {student}/{assignment}/: as for nbgrader autograde, only "
                                    "the notebooks directly in the assignment's folder are the hand-in")
            return self._checked(student, relative.name, "", assignment=assignment)
        return self._course_convention(relative.name)

    def _moodle(self, full_name: str, number: str, file: str) -> tuple[str, str, str, str]:
        student = f"{slug(full_name)}_{number}"
        first, _, last = full_name.strip().partition(" ")
        self.names[student] = (first, last)
        return self._checked(student, file, "")

    def _course_convention(self, file: str) -> tuple[str, str, str, str]:
        assignment = _assignment_of(file, self.known)
        if assignment is None:
            # Named after no assignment ("jdoe_homework.ipynb"): the id ends at the first "_".
            return self._checked(file.partition("_")[0] if "_" in file else "", file, "")
        prefix = COPY_PREFIX.sub("", file[:file.index(assignment)])
        if not prefix:
            return "", "", "", f"no student id before {assignment!r} in the file name"
        return self._checked(prefix if PLAIN_ID.match(prefix) else slug(prefix), file, "", assignment)

    def _checked(self, student: str, file: str, attempt: str, assignment: str | None = None):
        other = assignment or _assignment_of(file, set(course.assignments()))
        if other and other not in self.known:
            return "", "", "", f"{other} is not being graded in this run"
        assignment = other or self.single
        if assignment is None:
            names = ", ".join(sorted(self.known))
            return "", "", "", (f"its name names no assignment being graded ({names}); give --assignment NAME "
                                "when a download holds one assignment")
        if not STUDENT_ID.match(student):
            return "", "", "", (f"{student!r} is not a usable student id (a folder name: no '/', no leading '.', "
                                "no '*?[]', at most 100 characters)")
        return student, assignment, attempt, ""


def nbgrader_layout(relative: Path) -> tuple[str, str, int] | None:
    """(student, assignment, how many folders deeper than the assignment's folder) for a path of nbgrader's
    layout `<student>/<assignment>/.../<notebook>.ipynb`, else None."""
    names = set(course.assignments())
    for index in range(len(relative.parts) - 2, 0, -1):
        if relative.parts[index] in names:
            return relative.parts[index - 1], relative.parts[index], len(relative.parts) - 2 - index
    return None


def check_inputs(submissions: Path, assignments: list[str] | None) -> None:
    """What can be said about the command line at once, before anything slow starts."""
    valid = course.assignments()
    unknown = sorted(set(assignments or []) - set(valid))
    if unknown:
        raise IntakeError(f"no assignment named {', '.join(unknown)}; the course has: {', '.join(valid)}")
    if not Path(submissions).exists():
        raise IntakeError(f"{submissions} does not exist: give the folder or zip of hand-ins")
    if Path(submissions).is_dir() and not any(Path(submissions).rglob("*.ipynb")):
        raise IntakeError(f"no notebook (.ipynb) found in {submissions}")


def collect(source: Path, known: set[str], scratch: Path, filename_regex: str | None = None,
            single_assignment: bool = False, students: list[str] | None = None,
            exclude: set[str] | frozenset[str] = frozenset(), zone=timezone.utc) -> Intake:
    """Every (student, assignment) in the hand-in, with an empty Submission for each gap, and what became
    of every notebook found.

    `known` are the assignments to grade (`single_assignment`: the instructor named exactly one, so a
    notebook whose name names none is taken to be that one). A student who handed in some but not all
    of them gets an empty Submission for the others, so nobody silently disappears from grades.csv.
    `students` are nbgrader's `--student` patterns (globs; None: everyone) and `exclude` its
    `CourseDirectory.student_id_exclude`: as nbgrader autograde does, the others are not graded (and listed).
    `zone` is the course's time zone, in which the LMS's times without one are read.
    """
    source = Path(source)
    if not source.exists():
        raise IntakeError(f"{source} does not exist")
    skipped: dict[str, str] = {}
    entry_times: dict[Path, datetime] = {}
    if source.is_file() and zipfile.is_zipfile(source):
        source, skipped, entry_times = extract_zip(source, scratch / "unzipped", zone)
    elif not source.is_dir():
        raise IntakeError(f"{source} is neither a folder nor a zip file")
    placer = _Placer(known, filename_regex, single_assignment)
    intake = Intake([], {}, placer.names)
    for name, reason in skipped.items():
        if name.endswith(".ipynb"):
            intake.found[source / name] = Found(name, outcome="ignored", reason=reason)
    placed: dict[tuple[str, str], dict[str, list[Path]]] = {}  # (student, assignment) -> attempt -> files
    folders: dict[tuple[str, str], Path] = {}
    for path in sorted(source.rglob("*.ipynb")):
        relative = path.relative_to(source)
        intake.found[path] = Found(relative.as_posix())
        if NOISE_FOLDERS & set(relative.parts) or relative.name.startswith("._"):
            intake.ignore(path, "an editor's or archiver's copy, not a hand-in")
            continue
        if not path.is_file():
            intake.ignore(path, "not a file")
            continue
        student, assignment, attempt, reason = placer.place(relative)
        reason = reason or _unselected(student, students, exclude)
        if reason:
            intake.ignore(path, reason)
            continue
        intake.found[path].student, intake.found[path].assignment = student, assignment
        placed.setdefault((student, assignment), {}).setdefault(attempt, []).append(path)
        if nbgrader_layout(relative):
            folders[student, assignment] = path.parent
    found = {}
    for key, attempts in placed.items():
        latest = max(attempts)
        for attempt, files in attempts.items():
            for path in files if attempt != latest else []:
                intake.ignore(path, f"superseded by the later attempt of {latest}")
        files = attempts[latest]
        times = [entry_times[path] for path in files if entry_times.get(path)]
        when = late.local_time(latest, zone, BLACKBOARD_TIME) if latest else max(times, default=None)
        found[key] = Submission(*key, files, folder=folders.get(key), submitted_at=when, marked_late=any(
            path.relative_to(source) in placer.marked_late for path in files))
    # A student folder of nbgrader's layout with nothing usable in it is still a student who handed in nothing.
    students_found = {s for s, _ in found}
    if any(p.is_dir() and p.name in known for d in source.iterdir() if d.is_dir() for p in d.iterdir()):
        students_found |= {p.name for p in source.iterdir() if p.is_dir() and STUDENT_ID.match(p.name)
                           and p.name not in NOISE_FOLDERS and not MOODLE_FOLDER.match(p.name)
                           and not _unselected(p.name, students, exclude)}
    wanted = sorted({a for _, a in found} if found else known)
    intake.submissions = [found.get((s, a)) or Submission(s, a) for s in sorted(students_found) for a in wanted]
    return intake


def _unselected(student: str, students: list[str] | None, exclude) -> str:
    """Why nbgrader autograde would not grade this student in this run ("" if it would)."""
    if student in exclude:
        return "CourseDirectory.student_id_exclude names this student: not graded, as by nbgrader autograde"
    if students is not None and not any(fnmatch.fnmatchcase(student, pattern) for pattern in students):
        return f"not selected by --student {' '.join(students)}"
    return ""
