"""`python -m grader release`: regenerate every student notebook in exercises/ from solutions/.

nbgrader does the real work (solutions become stubs, hidden tests vanish, locked cells get
checksums); this module adds what the course needs on top: clean metadata and a Colab badge
that points at the notebook's own published path.
"""

import shutil
import tempfile
from pathlib import Path

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


def release() -> list[Path]:
    """Normalise the sources, then regenerate exercises/. Returns the sources that changed."""
    changed = normalise_sources()
    course.EXERCISES.mkdir(exist_ok=True)
    generate()
    return changed
