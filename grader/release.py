"""`python -m grader release`: regenerate every student notebook in exercises/ from solutions/.

nbgrader does the real work (solutions become stubs, hidden tests vanish, locked cells get
checksums); this module adds what the course needs on top: clean metadata and a Colab badge
that points at the notebook's own published path. Then, as `nbgrader generate_assignment --force`
does, the gradebook's copy of each assignment it already records is brought up to date, so that
a test fixed in solutions/ is the test the next grading uses.
"""

import json
import shutil
import tempfile
from pathlib import Path

from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import GenerateAssignment
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import InstantiateTests

from grader import course, notebooks
from grader.nbgrader_api import api, load_config
from grader.translation import edition


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


# The steps nbgrader's generate_assignment runs before SaveCells records an assignment's cells, which
# `_recorded_as_generated` can replay in this process. CheckCellMetadata only validates: a notebook it would
# refuse differs from what the gradebook holds, so nbgrader itself generates it and reports the problem.
_REPLAYABLE = {"IncludeHeaderFooter", "InstantiateTests", "LockCells", "ClearSolutions", "ClearOutput",
               "CheckCellMetadata", "ComputeChecksums"}


def _cells_to_record(path: Path, assignment: str, config, db_url: str) -> dict | None:
    """What generate_assignment would record in the gradebook for the solution notebook at `path` (as SaveCells
    does), or None where that cannot be told without running it (a configured step of its own, autotests)."""
    steps = list(GenerateAssignment(coursedir=CourseDirectory(config=config), config=config).preprocessors)
    saving = next((i for i, step in enumerate(steps) if step.__name__ == "SaveCells"), None)
    if saving is None or any(step.__name__ not in _REPLAYABLE for step in steps[:saving]):
        return None
    nb = notebooks.read(path)
    if any(InstantiateTests(config=config).autotest_delimiter in c.source for c in nb.cells if c.cell_type == "code"):
        return None  # InstantiateTests would run a kernel to write those tests
    resources = {"nbgrader": {"notebook": path.stem, "assignment": assignment, "db_url": db_url, "student": "."},
                 "metadata": {"path": str(path.parent)}}
    for step in steps[:saving]:
        if step.__name__ != "CheckCellMetadata":
            nb, resources = step(config=config).preprocess(nb, resources)
    cells = {"grade": {}, "solution": set(), "task": {}, "source": {},
             "kernelspec": json.dumps(nb.metadata.get("kernelspec", {}))}
    for cell in nb.cells:
        name = cell.metadata.get("nbgrader", {}).get("grade_id")
        if utils.is_grade(cell):
            cells["grade"][name] = (float(cell.metadata.nbgrader["points"]), cell.cell_type)
        if utils.is_solution(cell):
            cells["solution"].add(name)
        if utils.is_task(cell):
            cells["task"][name] = (float(cell.metadata.nbgrader["points"]), cell.cell_type)
        if utils.is_grade(cell) or utils.is_solution(cell) or utils.is_locked(cell) or utils.is_task(cell):
            cells["source"][name] = (cell.cell_type, utils.is_locked(cell), cell.source,
                                     cell.metadata.nbgrader.get("checksum"))
    return cells


def _recorded_cells(notebook) -> dict:
    """What a gradebook holds for one notebook, in `_cells_to_record`'s form."""
    return {"grade": {c.name: (float(c.max_score), c.cell_type) for c in notebook.grade_cells},
            "solution": {c.name for c in notebook.solution_cells},
            "task": {c.name: (float(c.max_score), c.cell_type) for c in notebook.task_cells},
            "source": {c.name: (c.cell_type, bool(c.locked), c.source, c.checksum) for c in notebook.source_cells},
            "kernelspec": notebook.kernelspec}


def _recorded_as_generated(assignment: str, config, db_url: str) -> bool:
    """Does the gradebook already hold exactly what generating `assignment` from solutions/ would record? Then
    generating it again (seconds per assignment, mostly nbgrader validating every cell) changes nothing."""
    paths = sorted((course.SOLUTIONS / assignment).glob("*.ipynb"))
    expected = {}
    for path in paths:
        cells = _cells_to_record(path, assignment, config, db_url)
        if cells is None:
            return False
        expected[path.stem] = cells
    with Gradebook(db_url, course_id=CourseDirectory(config=config).course_id) as gradebook:
        try:
            record = gradebook.find_assignment(assignment)
        except MissingEntry:
            return False
        found = {notebook.name: _recorded_cells(notebook) for notebook in record.notebooks}
    return bool(expected) and found == expected


def update_gradebook(assignments: list[str], db_url: str) -> dict[str, str]:
    """Record the cells of each assignment in the gradebook at `db_url`, from solutions/, as
    `nbgrader generate_assignment --force` does (the due date and the grades stay), unless it holds them
    already. Returns, for each assignment nbgrader refused, why: it will not add or remove cells of a notebook
    that has submissions."""
    failures = {}
    with tempfile.TemporaryDirectory(prefix="release-") as scratch:
        config = load_config(release_directory=scratch, db_url=db_url)
        nbgrader = api(config)
        for name in assignments:
            if _recorded_as_generated(name, config, db_url):
                continue
            result = nbgrader.generate_assignment(name, force=True, create=True)
            if not result["success"]:
                text = f"{result.get('log') or ''}\n{result.get('error') or ''}"
                errors = [line.strip() for line in text.splitlines() if "Error" in line or "Cannot" in line]
                failures[name] = (errors[-1] if errors else "nbgrader generate_assignment failed")[:500]
    return failures


def release() -> list[Path]:
    """Normalise the sources, regenerate exercises/ and each translated edition (es/), then update the
    gradebook's copy of every assignment it records. Returns the sources that changed."""
    changed = normalise_sources()
    course.EXERCISES.mkdir(exist_ok=True)
    generate()
    for language in course.EDITIONS:  # the other languages' notebooks, from the English just released
        try:
            edition.build(language)
        except edition.EditionError as error:
            raise ReleaseError(f"exercises/ is released, but not the {language!r} edition: {error}") from error
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
