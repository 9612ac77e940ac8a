"""`python -m grader feedback-bundle grading/ --out DIR`: the feedback pages, packed the way each LMS takes
them back in bulk.

autograde writes one page per notebook, `grading/feedback/<student>/<assignment>/<notebook>.html`, and
lists in `grading/intake.csv` the file each student handed in. That file's name says where it came from,
and so where the feedback goes:

* Canvas (`smithjohn_4242_998877_01_tensors.ipynb`): `DIR/canvas/<assignment>.zip`, one per assignment,
  whose files keep the download's `<lastfirst>_[late_]<userid>_<submissionid>_` prefix
  (`smithjohn_4242_998877_01_tensors-feedback.html`): the assignment's page → Download submissions'
  counterpart, *Re-Upload Submissions*, attaches each file to that student's submission as a comment.
* Moodle (`John Smith_123_assignsubmission_file_/01_tensors.ipynb`, or the flat form):
  `DIR/moodle/<assignment>.zip`, with one folder per student named as in the download
  (`John Smith_123_assignsubmission_file_/01_tensors-feedback.html`): View all submissions → Grading
  action → *Upload multiple feedback files in a zip* (needs "Feedback files" on in the assignment).
* with --exchange, hand-ins collected from nbgrader's exchange (`nbgrader collect`: their autograded
  folder holds the `submission_secret.txt` the student's `nbgrader submit` wrote): the course's nbgrader
  `feedback/<student>/<assignment>/`, with that secret and `timestamp.txt`, as `nbgrader generate_feedback`
  lays it out; `nbgrader release_feedback <assignment>` then hands each page to its student, who
  fetches it from JupyterLab's Assignments list.
* everyone else (nbgrader's layout, Blackboard, the course's own naming), and any page whose hand-in
  is not in intake.csv: `DIR/students/<student>.zip` holding `<assignment>/<notebook>.html`, to send
  as you like.

Each page goes into exactly one zip, and only under its own student's name: a page is placed by the
folder it was written to, and an LMS prefix is used only when it names that same student.
"""

import csv
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.autograde import intake

MARKER = ".feedback-bundle"
CANVAS, MOODLE, STUDENTS = "canvas", "moodle", "students"
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")  # what `nbgrader release_feedback` reads beside a page
FEEDBACK_SUFFIX = "-feedback.html"


class BundleError(ValueError):
    """Nothing was written; the message says why."""


@dataclass
class Page:
    student: str
    assignment: str
    notebook: str  # its name without .html
    path: Path


@dataclass
class Route:
    """Where the LMS expects one student's feedback for one assignment."""

    lms: str  # CANVAS or MOODLE
    name: str  # Canvas: the file-name prefix; Moodle: the folder


@dataclass
class Bundle:
    out: Path
    zips: dict[str, list[str]] = field(default_factory=dict)  # zip, relative to out -> its entries
    students: dict[str, list[str]] = field(default_factory=dict)  # zip -> the students it holds
    exchange: dict[str, list[str]] = field(default_factory=dict)  # assignment -> students, in nbgrader's feedback/
    exchange_folder: Path | None = None
    notes: list[str] = field(default_factory=list)

    def report(self) -> list[str]:
        lines = []
        for name in sorted(self.zips):
            lms = name.split("/", 1)[0]
            who = self.students[name]
            what = {CANVAS: "Canvas: the assignment → Re-Upload Submissions",
                    MOODLE: "Moodle: View all submissions → Grading action → Upload multiple feedback files in a "
                            "zip",
                    STUDENTS: "send it to that student"}[lms]
            count = f"{len(self.zips[name])} page(s)" + (f" for {len(who)} students" if lms != STUDENTS else "")
            lines.append(f"{self.out / name}: {count} -> {what}")
        for assignment, students in sorted(self.exchange.items()):
            lines.append(f"{self.exchange_folder}/*/{assignment}/: the pages of {len(students)} student(s) who "
                         f"submitted through nbgrader's exchange -> `nbgrader release_feedback {assignment}`; "
                         "they fetch it in JupyterLab's Assignments list")
        pages = sum(len(entries) for entries in self.zips.values())
        exchanged = sum(len(students) for students in self.exchange.values())
        lines.append(f"{pages} feedback page(s) in {len(self.zips)} zip(s) under {self.out}"
                     + (f"; {exchanged} in {self.exchange_folder} for nbgrader's exchange" if exchanged else ""))
        lines += [f"note: {note}" for note in self.notes]
        return lines


def pages(grading: Path, assignments: list[str] | None = None) -> list[Page]:
    """Every feedback page autograde wrote, by the folders it wrote them to (links are never followed)."""
    root = Path(grading) / "feedback"
    found = []
    if not root.is_dir():
        return found
    for student in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        if not intake.STUDENT_ID.match(student.name):
            continue
        for assignment in sorted(p for p in student.iterdir() if p.is_dir() and not p.is_symlink()):
            if assignments and assignment.name not in assignments:
                continue
            for page in sorted(assignment.glob("*.html")):
                if page.is_file() and not page.is_symlink():
                    found.append(Page(student.name, assignment.name, page.stem, page))
    return found


def routes(grading: Path) -> tuple[dict[tuple[str, str], Route], list[str]]:
    """{(student, assignment): where its LMS wants the feedback}, from intake.csv's paths, and notes."""
    path = Path(grading) / intake.INTAKE_CSV
    if not path.is_file():
        return {}, [f"no {path}: every page goes into students/ (run feedback-bundle on autograde's --out folder)"]
    found: dict[tuple[str, str], Route] = {}
    notes = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row.get("outcome") != "graded":
                continue
            key = (row["student_id"], row["assignment"])
            route = route_of(row["path"], row["student_id"])
            if route is None:
                continue
            if key in found and found[key] != route:
                notes.append(f"{key[0]}/{key[1]}: handed in under two LMS names ({found[key].name}, {route.name}); "
                             "its pages go into students/")
                found[key] = Route(STUDENTS, "")
                continue
            found.setdefault(key, route)
    return {k: r for k, r in found.items() if r.lms != STUDENTS}, notes


def route_of(path: str, student: str) -> Route | None:
    """The LMS name in a hand-in's path, if that name is `student`'s own (as intake names students)."""
    parts = path.split("/")
    if len(parts) >= 2 and (moodle := intake.MOODLE_FOLDER.match(parts[-2])):
        folder = parts[-2]
    elif moodle := intake.MOODLE_FILE.match(parts[-1]):
        folder = parts[-1][:moodle.start("file")]
    else:
        canvas = intake.CANVAS.match(parts[-1])
        if canvas and f"{canvas['name']}_{canvas['user']}" == student:
            return Route(CANVAS, parts[-1][:canvas.start("file")])
        return None
    if f"{intake.slug(moodle['name'])}_{moodle['number']}" == student:
        return Route(MOODLE, folder)
    return None


def _checked_out(out: Path, grading: Path) -> Path:
    out, grading = Path(out).resolve(), Path(grading).resolve()
    feedback = grading / "feedback"
    if out == grading or out.is_relative_to(feedback) or feedback.is_relative_to(out):
        raise BundleError(f"--out {out} would mix the bundles with autograde's own files: choose a folder of its "
                          f"own, e.g. {grading / 'feedback-upload'}")
    if out.exists() and not out.is_dir():
        raise BundleError(f"--out {out} is a file")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise BundleError(f"--out {out} is not empty and was not written by feedback-bundle: choose a new folder")
    return out


def nbgrader_folders() -> tuple[Path, Path]:
    """The course's nbgrader autograded/ and feedback/ folders, as nbgrader_config.py names them."""
    from grader import course
    from grader.nbgrader_api import load_config

    directory = load_config().CourseDirectory
    return course.ROOT / directory.autograded_directory, course.ROOT / directory.feedback_directory


def _exchange_submission(autograded: Path, page: Page) -> Path | None:
    """The autograded folder of a hand-in collected from nbgrader's exchange, if this page's is one."""
    folder = autograded / page.student / page.assignment
    if folder.is_symlink() or not folder.is_dir():
        return None
    if all((folder / name).is_file() and not (folder / name).is_symlink() for name in EXCHANGE_FILES):
        return folder
    return None


def build(grading: Path, out: Path, assignments: list[str] | None = None, exchange: bool = False,
          autograded: Path | None = None, exchange_feedback: Path | None = None) -> Bundle:
    """Write the zips (see the module's docstring); a rerun replaces what the previous one wrote in `out`.
    With `exchange`, pages of hand-ins from nbgrader's exchange go to `exchange_feedback` (default: the
    course's feedback/ folder), by the secret in `autograded` (default: the course's autograded/)."""
    grading = Path(grading)
    if not (grading / "feedback").is_dir():
        raise BundleError(f"{grading / 'feedback'} does not exist: give the --out folder of `python -m grader "
                          "autograde`")
    out = _checked_out(out, grading)
    found = pages(grading, assignments)
    if not found:
        which = f" for {', '.join(assignments)}" if assignments else ""
        raise BundleError(f"no feedback page{which} under {grading / 'feedback'}")
    lms_routes, notes = routes(grading)
    if exchange:
        default_autograded, default_feedback = nbgrader_folders()
        autograded, exchange_feedback = autograded or default_autograded, exchange_feedback or default_feedback
    contents: dict[str, dict[str, Path]] = {}  # zip -> entry -> page
    holders: dict[str, set[str]] = {}
    to_exchange: list[tuple[Page, Path]] = []
    for page in found:
        submission = _exchange_submission(autograded, page) if exchange else None
        if submission is not None:
            to_exchange.append((page, submission))
            continue
        route = lms_routes.get((page.student, page.assignment))
        if route and route.lms == CANVAS:
            archive, entry = f"{CANVAS}/{page.assignment}.zip", f"{route.name}{page.notebook}{FEEDBACK_SUFFIX}"
        elif route and route.lms == MOODLE:
            archive, entry = f"{MOODLE}/{page.assignment}.zip", f"{route.name}/{page.notebook}{FEEDBACK_SUFFIX}"
        else:
            archive, entry = f"{STUDENTS}/{page.student}.zip", f"{page.assignment}/{page.notebook}.html"
        if entry in contents.setdefault(archive, {}):
            raise BundleError(f"two pages would be {archive}:{entry}; nothing written")
        contents[archive][entry] = page.path
        holders.setdefault(archive, set()).add(page.student)
    if out.is_dir():
        for sub in (CANVAS, MOODLE, STUDENTS):
            shutil.rmtree(out / sub, ignore_errors=True)  # what the previous run wrote: replaced, never mixed
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("Written by `python -m grader feedback-bundle`; a rerun replaces canvas/, moodle/ and "
                              "students/.\n", encoding="utf-8")
    bundle = Bundle(out, notes=notes, exchange_folder=exchange_feedback)
    for page, submission in to_exchange:
        # As `nbgrader generate_feedback` leaves it: the page, and the two files release_feedback reads.
        target = exchange_feedback / page.student / page.assignment
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page.path, target / f"{page.notebook}.html")
        for name in EXCHANGE_FILES:
            shutil.copyfile(submission / name, target / name)
        bundle.exchange.setdefault(page.assignment, [])
        if page.student not in bundle.exchange[page.assignment]:
            bundle.exchange[page.assignment].append(page.student)
    if exchange and not to_exchange:
        bundle.notes.append(f"--exchange: no hand-in of {autograded} came through nbgrader's exchange (no "
                            "submission_secret.txt): nothing for `nbgrader release_feedback`")
    for archive, entries in sorted(contents.items()):
        target = out / archive
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
            for entry, source in sorted(entries.items()):
                zf.write(source, entry)
        bundle.zips[archive] = sorted(entries)
        bundle.students[archive] = sorted(holders[archive])
    return bundle
