"""Find every student's notebook for every assignment, whatever shape the hand-in came in.

Three shapes are understood:
  * nbgrader's layout: `<student_id>/<assignment>/<notebook>.ipynb`;
  * an LMS download: a folder (or a .zip of one) of files whose names carry the student id, in
    nbgrader's zip_collect convention: a regular expression with `student_id` and `file_id` groups;
  * a .zip holding nbgrader's layout.
A zip entry can never write outside its destination, and nothing given is ever modified.
"""

import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.plugins.zipcollect import FileNameCollectorPlugin

# Canvas-style names: "<student_id>_<anything>", e.g. "jdoe42_late_1234_05_training_loop.ipynb".
DEFAULT_FILENAME_REGEX = r".*?(?P<student_id>[A-Za-z0-9.-]+)_(?P<file_id>.*\.ipynb)$"
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_ZIP_BYTES = 2 * 2**30
MAX_ZIP_ENTRIES = 100_000


class IntakeError(ValueError):
    """The hand-in as a whole cannot be read (a bad zip, an unknown layout)."""


@dataclass
class Submission:
    student: str
    assignment: str
    files: list[Path] = field(default_factory=list)  # every .ipynb handed in for this assignment
    notes: list[str] = field(default_factory=list)


def extract_zip(archive: Path, destination: Path) -> Path:
    """Extract safely: no absolute paths, no `..`, no links, bounded size and count."""
    destination = destination.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > MAX_ZIP_ENTRIES or sum(m.file_size for m in members) > MAX_ZIP_BYTES:
                raise IntakeError(f"{archive.name} is too large to extract safely")
            for member in members:
                target = (destination / member.filename).resolve()
                mode = member.external_attr >> 16
                if not target.is_relative_to(destination) or stat.S_ISLNK(mode):
                    continue  # a path that escapes, or a link: never written
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink)
    except zipfile.BadZipFile as error:
        raise IntakeError(f"{archive.name} is not a readable zip file ({error})") from None
    return destination


def _is_nbgrader_layout(root: Path, known: set[str]) -> bool:
    students = [p for p in root.iterdir() if p.is_dir()]
    return any(p.is_dir() and p.name in known for student in students for p in student.iterdir())


def _from_nbgrader_layout(root: Path, known: set[str]) -> dict[tuple[str, str], Submission]:
    found = {}
    for student_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if not STUDENT_ID.match(student_dir.name):
            continue
        for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir() and p.name in known):
            files = sorted(p for p in assignment_dir.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
            found[student_dir.name, assignment_dir.name] = Submission(student_dir.name, assignment_dir.name, files)
    return found


def _assignment_of(name: str, known: set[str]) -> str | None:
    matches = [a for a in known if a in name]
    return max(matches, key=len) if matches else None


def _from_downloads(root: Path, known: set[str], filename_regex: str) -> dict[tuple[str, str], Submission]:
    collector = FileNameCollectorPlugin(named_regexp=filename_regex)
    found: dict[tuple[str, str], Submission] = {}
    for path in sorted(root.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        info = collector.collect(path.name)
        if not info or not STUDENT_ID.match(info["student_id"]):
            continue
        assignment = _assignment_of(info["file_id"], known)
        if assignment is None and len(known) == 1:
            assignment = next(iter(known))
        if assignment is None:
            continue
        key = (info["student_id"], assignment)
        found.setdefault(key, Submission(*key)).files.append(path)
    return found


def collect(
    source: Path, known: set[str], scratch: Path, filename_regex: str = DEFAULT_FILENAME_REGEX
) -> list[Submission]:
    """Every (student, assignment) in the hand-in, with a `missing` entry for each gap.

    `known` are the assignments to grade. A student who handed in some but not all of them gets
    an empty Submission for the others, so nobody silently disappears from grades.csv.
    """
    source = Path(source)
    if source.is_file() and zipfile.is_zipfile(source):
        source = extract_zip(source, scratch / "unzipped")
    if not source.is_dir():
        raise IntakeError(f"{source} is neither a folder nor a zip file")
    students = set()
    if _is_nbgrader_layout(source, known):
        found = _from_nbgrader_layout(source, known)
        # A student folder with nothing usable in it is still a student who handed in nothing.
        students = {p.name for p in source.iterdir() if p.is_dir() and STUDENT_ID.match(p.name)}
    else:
        found = _from_downloads(source, known, filename_regex)
    students = sorted(students | {student for student, _ in found})
    wanted = sorted({a for _, a in found} if found else known)
    return [found.get((s, a)) or Submission(s, a) for s in students for a in wanted]
