"""Checks that keep the repository honest: clean notebooks, no leaked answers, no drift.

Each function returns a list of human-readable problems (empty means fine), so the test suite
and `python -m grader check` report the same findings in the same words.
"""

import filecmp
import json
import re
from pathlib import Path

import nbformat

from grader import course

SECRET_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
HIDDEN_CHECK_IMPORT = "grader.checks"  # only hidden tests import the check logic
_SOLUTION_REGION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


def tracked_notebooks() -> list[Path]:
    return course.lecture_paths() + course.solution_paths() + course.exercise_paths()


def notebook_problems(path: Path) -> list[str]:
    """Invalid JSON or nbformat, committed outputs, missing kernelspec, bad nbgrader metadata."""
    name = path.relative_to(course.ROOT).as_posix()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        return [f"{name}: not valid JSON ({error})"]
    problems = []
    try:
        nbformat.validate(nbformat.from_dict(raw))
    except nbformat.ValidationError as error:
        problems.append(f"{name}: fails nbformat validation: {error.message}")
    if (raw.get("nbformat"), raw.get("nbformat_minor")) < (4, 5):
        version = f"{raw.get('nbformat')}.{raw.get('nbformat_minor')}"
        problems.append(f"{name}: nbformat {version}, expected 4.5 with cell ids")
    if raw.get("metadata", {}).get("kernelspec", {}).get("name") != "python3":
        problems.append(f"{name}: no python3 kernelspec")
    for index, cell in enumerate(raw.get("cells", [])):
        if cell.get("outputs") or cell.get("execution_count") is not None:
            problems.append(f"{name}: cell {index} is committed with outputs; run `python -m grader release`")
        if "nbgrader" in cell.get("metadata", {}) and not cell["metadata"]["nbgrader"]:
            problems.append(f"{name}: cell {index} has empty nbgrader metadata, which nbgrader rejects")
    return problems


def leak_problems() -> list[str]:
    """Solutions, hidden tests or their markers anywhere under exercises/ (every file, not only notebooks)."""
    problems = []
    for path in sorted(p for p in course.EXERCISES.rglob("*") if p.is_file()):
        name = path.relative_to(course.ROOT).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        for marker in SECRET_MARKERS + (HIDDEN_CHECK_IMPORT, "jupytext"):
            if marker in text:
                problems.append(f"{name}: contains {marker!r}")
        source = course.SOLUTIONS / path.relative_to(course.EXERCISES)
        if path.suffix == ".ipynb" and source.exists():
            problems += [f"{name}: contains solution line {line!r}" for line in _solution_lines(source) if line in text]
    return problems


def _solution_lines(source: Path) -> list[str]:
    """Distinctive lines written only between the solution markers of a source notebook.

    A line that the notebook also shows elsewhere (a contract in markdown that names
    `optimizer.step()`, say) is public anyway, so it is not counted.
    """
    lines, public = [], []
    for cell in nbformat.read(source, as_version=4).cells:
        lines += [
            line.strip() for region in _SOLUTION_REGION.findall(cell.source)
            for line in region.splitlines() if len(line.strip()) > 12
        ]
        public.append(_SOLUTION_REGION.sub("", cell.source))
    public_text = "\n".join(public)
    # Compare against the JSON text, where quotes are escaped.
    return [json.dumps(line)[1:-1] for line in lines if line not in public_text]


def sync_problems(generated: Path) -> list[str]:
    """Differences between a fresh `generate(generated)` and the committed exercises/."""
    problems = []

    def compare(left: Path, right: Path) -> None:
        diff = filecmp.dircmp(left, right, ignore=[".ipynb_checkpoints", "__pycache__"])
        for name in diff.left_only:
            problems.append(f"exercises/ lacks {(left / name).relative_to(generated)}: run `python -m grader release`")
        for name in diff.right_only:
            extra = (right / name).relative_to(course.EXERCISES)
            problems.append(f"exercises/{extra} is not generated from solutions/")
        for name in diff.common_files:
            if (left / name).read_bytes() != (right / name).read_bytes():
                problems.append(
                    f"exercises/{(right / name).relative_to(course.EXERCISES)} differs from what solutions/ "
                    "generates: edit solutions/ and run `python -m grader release`"
                )
        for name in diff.common_dirs:
            compare(left / name, right / name)

    compare(Path(generated), course.EXERCISES)
    return problems
