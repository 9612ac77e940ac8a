"""`python -m grader student-repo DIR`: write the students' repository, generated from this one.

This repository is the instructor's: solutions/ holds every answer and grader/checks/ every hidden
check, so it stays private. Students clone a second repository that holds only what they may see:
lectures/ and exercises/ exactly as they are here, each translated edition (es/, README.es.md), a README
for students (from grader/templates/student_README.md), their set-up files (requirements.txt, environment.yml), the
configurations that open it with nothing installed (binder/ for mybinder.org, .devcontainer/ for GitHub
Codespaces and VS Code, both with PyTorch's CPU build) and a .gitignore. The Colab, Binder and
Codespaces badges point there (course.STUDENT_REPOSITORY).

DIR is a new or empty folder, or the students' repository checked out (a git repository, or a
folder this command wrote before). The files written are listed in DIR/.student-repo-files, so a
rerun updates them, removes the ones no longer produced (a deleted unit) and leaves everything else
alone: .git, and files the instructor added by hand (CI settings, a contributing guide).
"""

import re
import shlex
import string
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat

from grader import course, hygiene, notebooks

MANIFEST = ".student-repo-files"
# Copied as they are: the licences (the students' copy is licensed too) and the reading list lectures link to.
AS_IS = [course.ROOT / "LICENSE", course.ROOT / "LICENSE-CONTENT.md", course.ROOT / "READING.md"]
TEMPLATE = Path(__file__).resolve().parent / "templates" / "student_README.md"
DEVCONTAINER = Path(__file__).resolve().parent / "templates" / "student_devcontainer.json"
# PyTorch's CPU build: Binder and Codespaces have no GPU, and the default Linux build (CUDA, several GB)
# does not fit Binder's memory and disk.
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
# What students install: the notebooks' packages, JupyterLab, and nbgrader for its Validate button
# and Assignments list. Version ranges come from this repository's requirements.txt.
STUDENT_PACKAGES = ("torch", "numpy", "matplotlib", "scikit-learn", "tqdm", "tensorboard", "jupyterlab", "ipykernel",
                    "nbgrader")
_SKIPPED = {".ipynb_checkpoints", "__pycache__", ".DS_Store"}
_HEADING = re.compile(r"^#\s+(.+?)\s*$", re.M)
_UNIT_PREFIX = re.compile(r"^(Exercise\s+)?\d+\s*·\s*")

REQUIREMENTS_HEADER = """\
# The course's packages: `pip install -r requirements.txt`, then `jupyter lab`.
# nbgrader adds JupyterLab's Validate button (and the Assignments list, where your instructor runs an exchange).
# torch is a range, not a pin: a torch you already have (a CPU build, say) is kept.
"""
ENVIRONMENT_HEADER = """\
# conda env create -f environment.yml && conda activate intro-to-pytorch
# The same packages as requirements.txt.
"""
BINDER_REQUIREMENTS_HEADER = f"""\
# mybinder.org builds the course from this folder (and ignores the files at the top when it exists).
# PyTorch's CPU build: Binder has no GPU, and the default build (with CUDA) does not fit its memory.
# Its versions carry `+cpu`, which pip ranks above the same version without it.
--extra-index-url {CPU_TORCH_INDEX}
"""
GITIGNORE = """\
# Your own work: copy a notebook here before you change it, and `git pull` never conflicts with it.
my-work/
# Working files of Jupyter, Python and your virtual environment
.ipynb_checkpoints/
.virtual_documents/
__pycache__/
.venv/
"""


class StudentRepoError(RuntimeError):
    """The students' repository was not written; the message says why and what to do."""


@dataclass
class Written:
    """What `write` did in `target`, file by file (paths relative to it, POSIX style)."""

    target: Path
    was_git_repository: bool
    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def report(self) -> list[str]:
        lines = [f"{status:9} {name}" for status, names in (("new", self.new), ("updated", self.updated),
                                                             ("removed", self.removed)) for name in names]
        lines.append(f"{len(self.new) + len(self.updated)} written, {len(self.unchanged)} unchanged, "
                     f"{len(self.removed)} removed in {self.target}")
        return lines

    def hint(self) -> str:
        folder = shlex.quote(str(self.target))
        if self.was_git_repository:
            return f"next: cd {folder} && git add -A && git commit -m 'Update the course' && git push"
        return (f"next: cd {folder} && git init -b {course.STUDENT_BRANCH} && git add -A && "
                f"git commit -m 'The course' && git remote add origin "
                f"https://github.com/{course.STUDENT_REPOSITORY}.git && git push -u origin {course.STUDENT_BRANCH}"
                "   (its own repository, never this one)")


def build(target: Path) -> Written:
    """Write the students' repository into `target` (see the module's docstring)."""
    target = checked_target(target)
    return write(target, contents())


def contents() -> dict[str, bytes]:
    """Every file of the students' repository, by its path there; refuses if anything would leak."""
    files = {}
    for path in course.lecture_paths() + _exercise_files() + AS_IS + _edition_files():
        files[path.relative_to(course.ROOT).as_posix()] = path.read_bytes()
    files["README.md"] = readme().encode()
    files["requirements.txt"] = requirements().encode()
    files["environment.yml"] = environment().encode()
    files[".gitignore"] = GITIGNORE.encode()
    files["binder/requirements.txt"] = binder_requirements().encode()
    files[".devcontainer/devcontainer.json"] = devcontainer().encode()
    problems = leak_problems(files)
    if problems:
        raise StudentRepoError("nothing written: the students' repository would reveal what it must not:\n  "
                               + "\n  ".join(problems))
    return files


def _exercise_files() -> list[Path]:
    """Every file of exercises/ (nbgrader's release: notebooks, and any data files it copies)."""
    return sorted(p for p in course.EXERCISES.rglob("*")
                  if p.is_file() and not _SKIPPED & set(p.relative_to(course.EXERCISES).parts))


def _edition_files() -> list[Path]:
    """Each translated edition at the paths its Colab badges open (es/lectures/..., es/exercises/...), its README
    (README.es.md) and the glossary that README points students to."""
    found = []
    for language in course.EDITIONS:
        found += sorted(p for p in (course.ROOT / language).rglob("*")
                        if p.is_file() and not _SKIPPED & set(p.relative_to(course.ROOT).parts))
        found += [path for path in [course.ROOT / f"README.{language}.md", course.TRANSLATIONS / language /
                                    "glossary.csv"] if path.exists()]
    return found


def leak_problems(files: dict[str, bytes]) -> list[str]:
    """Answers or hidden tests in the files, notebooks committed with outputs (run `grader release`)."""
    problems = hygiene.leak_problems()  # every file of exercises/ against its solutions/ source
    for name, data in files.items():
        text = data.decode("utf-8", errors="replace")
        markers = hygiene.SECRET_MARKERS + (hygiene.HIDDEN_CHECK_IMPORT,)
        problems += [f"{name}: contains {marker!r}" for marker in markers if marker in text]
        if name.endswith(".ipynb"):
            problems += hygiene.notebook_problems(course.ROOT / name)
    return problems


def _title(path: Path) -> str:
    """A notebook's first `# ` heading without its unit number ("01 · Tensors" gives "Tensors")."""
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown" and cell.metadata.get("course", {}).get("role") != notebooks.BADGE_MARKER:
            heading = _HEADING.search(cell.source)
            if heading:
                return _UNIT_PREFIX.sub("", heading.group(1))
    return path.stem.split("_", 1)[-1].replace("_", " ")


def course_table() -> str:
    """One markdown table row per unit: its topic, and its lecture and exercise, each also in Colab."""
    lectures = {path.name[:2]: path for path in course.lecture_paths()}
    exercises = {path.parent.name[:2]: path for path in course.exercise_paths(course.units())}

    def link(path: Path | None, label: str) -> str:
        if path is None:
            return "-"
        relative = path.relative_to(course.ROOT).as_posix()
        return f"[{label}]({relative}) · [Colab]({notebooks.colab_url(path)})"

    rows = []
    for unit in sorted(lectures.keys() | exercises.keys()):
        lecture, exercise = lectures.get(unit), exercises.get(unit)
        topic = _title(lecture or exercise)
        rows.append(f"| {unit} | {topic} | {link(lecture, lecture.name if lecture else '')} "
                    f"| {link(exercise, exercise.name if exercise else '')} |")
    return "\n".join(rows)


def binder_url() -> str:
    """mybinder.org's link that builds the students' repository and opens JupyterLab."""
    return f"https://mybinder.org/v2/gh/{course.STUDENT_REPOSITORY}/{course.STUDENT_BRANCH}?urlpath=lab"


def codespaces_url() -> str:
    """GitHub's link that creates a codespace of the students' repository (or reopens the student's own)."""
    return f"https://codespaces.new/{course.STUDENT_REPOSITORY}?quickstart=1"


def readme() -> str:
    folder = course.STUDENT_REPOSITORY.rsplit("/", 1)[-1]
    return string.Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        course_table=course_table(), clone_url=f"https://github.com/{course.STUDENT_REPOSITORY}.git", folder=folder,
        binder_url=binder_url(), codespaces_url=codespaces_url(),
    )


def _requirement_lines(text: str) -> dict[str, str]:
    lines = {}
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            lines[re.split(r"[<>=!~\[; ]", line)[0].lower()] = line
    return lines


def requirements() -> str:
    """The students' requirements.txt: STUDENT_PACKAGES with this repository's version ranges."""
    ours = _requirement_lines((course.ROOT / "requirements.txt").read_text(encoding="utf-8"))
    missing = [name for name in STUDENT_PACKAGES if name not in ours]
    if missing:
        raise StudentRepoError(f"requirements.txt does not name {missing}, which students need")
    return REQUIREMENTS_HEADER + "".join(f"{ours[name]}\n" for name in STUDENT_PACKAGES)


def binder_requirements() -> str:
    """binder/requirements.txt: the students' packages, torch from PyTorch's CPU index."""
    return BINDER_REQUIREMENTS_HEADER + requirements().removeprefix(REQUIREMENTS_HEADER)


def devcontainer() -> str:
    """.devcontainer/devcontainer.json for GitHub Codespaces and VS Code: Python, PyTorch's CPU build, the
    students' requirements.txt, JupyterLab's port."""
    return string.Template(DEVCONTAINER.read_text(encoding="utf-8")).substitute(cpu_torch_index=CPU_TORCH_INDEX)


def environment() -> str:
    """The students' environment.yml: this repository's, which installs requirements.txt, with students' comments."""
    ours = (course.ROOT / "environment.yml").read_text(encoding="utf-8").splitlines()
    return ENVIRONMENT_HEADER + "".join(f"{line}\n" for line in ours if not line.lstrip().startswith("#"))


def checked_target(target: Path) -> Path:
    """`target` resolved, or StudentRepoError if writing there could harm this repository or other files."""
    target = Path(target).expanduser().resolve()
    root = course.ROOT.resolve()
    if target.is_relative_to(root):
        where = "is" if target == root else "is inside"
        raise StudentRepoError(
            f"{target} {where} the instructor's repository {root}, which holds the solutions: write the "
            "students' repository into a folder of its own, e.g. `python -m grader student-repo ../course-student`"
        )
    if root.is_relative_to(target):
        raise StudentRepoError(f"{target} holds the instructor's repository {root}: choose a folder of its own")
    if target.exists() and not target.is_dir():
        raise StudentRepoError(f"{target} is a file, not a folder")
    if (target.is_dir() and any(target.iterdir()) and not (target / ".git").exists()
            and not (target / MANIFEST).is_file()):
        raise StudentRepoError(
            f"{target} is not empty and is neither a git repository nor a students' repository written before: "
            "choose a new folder or a clone of the students' repository"
        )
    return target


def write(target: Path, files: dict[str, bytes]) -> Written:
    """Make `target` hold `files` (path there: content): update changed ones, remove the ones a previous
    run wrote that `files` no longer has, and touch nothing else (.git least of all)."""
    target = checked_target(target)
    for name in files:
        _check_managed(name)
    was_git = (target / ".git").exists()
    previous = _previous_files(target)
    result = Written(target=target, was_git_repository=was_git)
    for name, data in sorted(files.items()):
        path = target / name
        if path.is_dir():
            raise StudentRepoError(f"{path} is a folder; the students' repository needs a file there")
        before = path.read_bytes() if path.is_file() else None
        if before == data:
            result.unchanged.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        (result.new if before is None else result.updated).append(name)
    for name in sorted(previous - files.keys()):
        path = target / name
        if path.is_file() or path.is_symlink():
            path.unlink()
            result.removed.append(name)
        _remove_empty_parents(path.parent, target)
    manifest = ("# Written by the instructor's `python -m grader student-repo`; it rewrites and removes only these.\n"
                + "".join(f"{name}\n" for name in sorted(files)))
    if not (target / MANIFEST).is_file() or (target / MANIFEST).read_text(encoding="utf-8") != manifest:
        (target / MANIFEST).write_text(manifest, encoding="utf-8", newline="\n")
    return result


def _check_managed(name: str) -> str:
    """`name` if it is a plain relative path outside .git, else StudentRepoError."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name or path.parts[0] in (".git", MANIFEST):
        raise StudentRepoError(f"{name!r} is not a path the students' repository may manage")
    return name


def _previous_files(target: Path) -> set[str]:
    manifest = target / MANIFEST
    if not manifest.is_file():
        return set()
    names = {line.strip() for line in manifest.read_text(encoding="utf-8").splitlines()}
    names = {name for name in names if name and not name.startswith("#")}
    try:
        return {_check_managed(name) for name in names}
    except StudentRepoError as error:
        raise StudentRepoError(f"{manifest} lists {error}; fix or delete that file and rerun") from None


def _remove_empty_parents(folder: Path, target: Path) -> None:
    while folder != target and folder.is_relative_to(target) and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def uncommitted_warning() -> str | None:
    """Which files of lectures/ and exercises/ have changes not committed here, if any (or git is missing)."""
    try:
        status = subprocess.run(["git", "status", "--porcelain", "--", "lectures", "exercises"], cwd=course.ROOT,
                                capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = [line[3:] for line in status.stdout.splitlines()] if status.returncode == 0 else []
    if not names:
        return None
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return (f"{len(names)} files of lectures/ and exercises/ have changes not committed here ({shown}); "
            "the students' repository got them as they are: commit them here too")
