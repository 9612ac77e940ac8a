"""`python -m grader release`: regenerate every student notebook in exercises/ from solutions/.

nbgrader does the real work (solutions become stubs, hidden tests vanish, locked cells get
checksums); this module adds what the course needs on top: clean metadata and a Colab badge
that points at the notebook's own published path. Then, as `nbgrader generate_assignment --force`
does, the gradebook's copy of each assignment it already records is brought up to date, so that
a test fixed in solutions/ is the test the next grading uses.
"""

import shutil
import tempfile
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.coursedir import CourseDirectory

from grader import course, notebooks
from grader.nbgrader_api import api, load_config


class ReleaseError(RuntimeError):
    pass


def normalise_sources() -> list[Path]:
    """Clean lectures and solutions in place (outputs stripped, metadata set, lecture badges)."""
    changed = []
    for path in course.lecture_paths() + course.solution_paths():
        nb = notebooks.clean(notebooks.read(path))
        if path.is_relative_to(course.LECTURES):
            nb = notebooks.with_colab_badge(nb, path)
        before = path.read_bytes()
        notebooks.write(nb, path)
        if path.read_bytes() != before:
            changed.append(path)
    return changed


def generate(
    release_dir: Path = course.EXERCISES, assignments: list[str] | None = None, db_url: str | None = None
) -> None:
    """Generate the student notebooks of `assignments` (default: all) into `release_dir`.

    Badges always point at the published exercises/ path, so a copy generated elsewhere (CI's
    sync check) is byte-identical to the committed one. Without `db_url` a throwaway gradebook is
    used: releasing must not depend on, or touch, the instructor's records. Autograding passes
    the real one, since nbgrader grades against the cells recorded there.
    """
    names = assignments or course.assignments()
    release_dir = Path(release_dir).resolve()
    with tempfile.TemporaryDirectory(prefix="gradebook-") as scratch:
        config = load_config(
            release_directory=str(release_dir), db_url=db_url or f"sqlite:///{scratch}/gradebook.db"
        )
        nbgrader = api(config)
        for name in names:
            result = nbgrader.generate_assignment(name, force=True, create=True)
            if not result["success"]:
                raise ReleaseError(f"nbgrader could not generate {name}:\n{result.get('error') or result.get('log')}")
            for path in sorted((release_dir / name).glob("*.ipynb")):
                published = course.EXERCISES / name / path.name
                nb = notebooks.with_colab_badge(notebooks.clean(notebooks.read(path)), published)
                notebooks.write(nb, path)
    if assignments is None:
        for stale in sorted(p for p in release_dir.iterdir() if p.is_dir() and p.name not in names):
            shutil.rmtree(stale)


def course_db_url(config=None) -> str:
    """The gradebook nbgrader_config.py names (nbgrader's default: gradebook.db at the course root)."""
    return CourseDirectory(config=config or load_config()).db_url


def recorded_assignments(db_url: str) -> set[str]:
    """The assignments a gradebook records (none if it does not exist yet)."""
    if db_url.startswith("sqlite:///") and not Path(db_url.removeprefix("sqlite:///")).exists():
        return set()
    with Gradebook(db_url, course_id=load_config().CourseDirectory.course_id) as gradebook:
        return {assignment.name for assignment in gradebook.assignments}


def update_gradebook(assignments: list[str], db_url: str) -> dict[str, str]:
    """Record the cells of each assignment in the gradebook at `db_url`, from solutions/, as
    `nbgrader generate_assignment --force` does (the due date and the grades stay). Returns, for each
    assignment nbgrader refused, why: it will not add or remove cells of a notebook that has submissions."""
    failures = {}
    with tempfile.TemporaryDirectory(prefix="release-") as scratch:
        nbgrader = api(load_config(release_directory=scratch, db_url=db_url))
        for name in assignments:
            result = nbgrader.generate_assignment(name, force=True, create=True)
            if not result["success"]:
                text = f"{result.get('log') or ''}\n{result.get('error') or ''}"
                errors = [line.strip() for line in text.splitlines() if "Error" in line or "Cannot" in line]
                failures[name] = (errors[-1] if errors else "nbgrader generate_assignment failed")[:500]
    return failures


def release() -> list[Path]:
    """Normalise the sources, regenerate exercises/, then update the gradebook's copy of every assignment
    it records. Returns the sources that changed."""
    changed = normalise_sources()
    course.EXERCISES.mkdir(exist_ok=True)
    generate()
    db_url = course_db_url()
    failures = update_gradebook(sorted(recorded_assignments(db_url) & set(course.assignments())), db_url)
    if failures:
        raise ReleaseError("exercises/ is released, but nbgrader could not update the gradebook's copy of "
                           + "; ".join(f"{name} ({why})" for name, why in failures.items())
                           + ". Grading would use the old tests. To add or remove test cells once students are "
                           "graded, nbgrader needs the assignment's grades removed first (`nbgrader db assignment "
                           "remove NAME --force` deletes them; regrade everything after), or keep the cells and "
                           "change their code")
    return changed
