"""`python -m grader similarity ASSIGNMENT grading/`: which students' code is most alike, for you to review.

It reads the notebooks autograde graded for ASSIGNMENT (any --submitted folder of nbgrader's layout
first, then `grading/work/submitted/<student>/<assignment>/`, then the course's nbgrader `submitted/`
folder), keeps the code students wrote (their answer cells and the cells they added), and compares
every pair of students with copydetect's winnowing fingerprints (Schleimer, Wilkerson and Aiken's
algorithm, as in MOSS): code is tokenised first, so renamed variables, edited comments and strings,
and moved whitespace still match. What every student was given never counts: the released
exercise's code (given cells, stubs, visible tests), the tests of the source notebook, and the code
of the lecture of the same number are boilerplate. Students of grades.csv only, when there is one.

It writes `grading/similarity/<ASSIGNMENT>.html` (the most similar pairs, side by side, the shared code
highlighted) and prints the top of the list. Everything happens on this machine: nothing is uploaded,
and the page loads nothing from anywhere (no script, no font, no stylesheet). A high score says where
to look, not that anyone copied: short exercises leave little room to differ, so compare a pair with
the class's usual level, shown beside it.
"""

import csv
import html
import io
import statistics
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import nbformat

from grader import course

NOISE_THRESHOLD = 25  # shortest match counted, in characters of tokenised code (copydetect's default)
GUARANTEE_THRESHOLD = 25  # every match this long is found (window = guarantee - noise + 1)
MIN_OWN_TOKENS = 40  # less than this of their own (an unsolved stub): nothing to compare
TOP = 15
CONTEXT_LINES = 6  # lines shown around the shared code in the report


class SimilarityError(ValueError):
    """Nothing was compared; the message says why."""


@dataclass
class Pair:
    a: str
    b: str
    share_a: float  # the share of a's own code found in b's
    share_b: float
    tokens: int  # tokens in common
    code_a: str = ""  # HTML, shared parts highlighted
    code_b: str = ""

    @property
    def score(self) -> float:
        return max(self.share_a, self.share_b)


@dataclass
class Result:
    assignment: str
    report: Path
    students: list[str]
    pairs: list[Pair]  # every pair, most similar first
    boilerplate: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # student -> why not compared
    sources: dict[str, Path] = field(default_factory=dict)  # student -> the folder their notebooks came from

    def summary(self, top: int) -> list[str]:
        scores = [p.score for p in self.pairs]
        lines = [f"{self.assignment}: {len(self.students)} students compared ({len(self.pairs)} pairs); "
                 f"boilerplate: {', '.join(self.boilerplate)}"]
        if scores:
            lines.append(f"all pairs: median {statistics.median(scores):.0%}, highest {max(scores):.0%}")
            lines.append("most similar pairs (the share of each one's own code that the other's holds):")
            width_a = max(len(p.a) for p in self.pairs[:top])
            width_b = max(len(p.b) for p in self.pairs[:top])
            for rank, pair in enumerate(self.pairs[:top], start=1):
                lines.append(f"  {rank:2}. {pair.a:{width_a}}  {pair.b:{width_b}}  {pair.share_a:4.0%} "
                             f"{pair.share_b:4.0%}   {pair.tokens} tokens in common")
        for student, why in sorted(self.skipped.items()):
            lines.append(f"not compared: {student}: {why}")
        lines.append(f"report: {self.report}")
        return lines


def _submitted_roots(grading: Path, extra: list[Path]) -> list[Path]:
    roots = [*map(Path, extra), Path(grading) / "work" / "submitted"]
    try:
        from grader.nbgrader_api import load_config

        roots.append(course.ROOT / load_config().CourseDirectory.submitted_directory)
    except Exception:  # noqa: BLE001 -- an unreadable nbgrader_config.py: the default folder name
        roots.append(course.ROOT / "submitted")
    return roots


def graded_students(grading: Path, assignment: str) -> set[str] | None:
    """Students with a hand-in for `assignment` in grades.csv (None: no grades.csv, so no filter)."""
    path = Path(grading) / "grades.csv"
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as f:
        return {r["student_id"] for r in csv.DictReader(f) if r.get("assignment") == assignment
                and r.get("status") != "missing"}


def find_notebooks(assignment: str, grading: Path, extra: list[Path] | None = None
                   ) -> tuple[dict[str, list[Path]], dict[str, Path]]:
    """{student: their notebooks of `assignment`} from the first folder that has them, and which folder."""
    found: dict[str, list[Path]] = {}
    sources: dict[str, Path] = {}
    for root in _submitted_roots(grading, extra or []):
        if not root.is_dir():
            continue
        for student in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
            notebooks = sorted(p for p in (student / assignment).glob("*.ipynb") if p.is_file() and not p.is_symlink())
            if notebooks and student.name not in found:
                found[student.name], sources[student.name] = notebooks, root
    return found, sources


def _given(cell) -> bool:
    """A cell the course wrote (given code, a visible or hidden test), not an answer cell or one the student added."""
    meta = cell.metadata.get("nbgrader", {})
    return bool((meta.get("locked") or meta.get("grade")) and not meta.get("solution"))


def code_of(paths: list[Path], answers_only: bool = True) -> str:
    """The code cells of the notebooks, in order: with `answers_only`, the student's answer cells and the cells
    they added, not the given code and tests (which nbgrader restores for grading anyway)."""
    cells = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        cells += [cell.source for cell in nb.cells if cell.cell_type == "code" and cell.source.strip()
                  and not (answers_only and _given(cell))]
    return "\n\n".join(cells) + "\n"


def boilerplate_paths(assignment: str) -> list[Path]:
    """What every student was given: the released exercise's notebooks and the lecture of the same number."""
    paths = course.exercise_paths([assignment]) if (course.EXERCISES / assignment).is_dir() else []
    unit = assignment[:2]
    if unit.isdigit():
        paths += [p for p in course.lecture_paths() if p.name[:2] == unit]
    return paths


def given_code(assignment: str) -> str:
    """The code of boilerplate_paths, and the source notebook's cells that are not answers (its tests, hidden
    parts included): a student's copy that went through grading holds them too."""
    code = [code_of([path], answers_only=False) for path in boilerplate_paths(assignment)]
    # The stubs joined as a student's answers are (code_of's own way), so that the seams between them match too.
    code += [code_of([path]) for path in course.exercise_paths([assignment]) if path.is_file()]
    for path in course.solution_paths([assignment]):
        nb = nbformat.read(path, as_version=4)
        code += [cell.source for cell in nb.cells if cell.cell_type == "code" and _given(cell)]
    return "\n\n".join(code)


def _fingerprint(name: str, code: str, boilerplate: set[int]):
    from copydetect import CodeFingerprint
    from copydetect.utils import get_token_coverage

    fingerprint = CodeFingerprint(name, NOISE_THRESHOLD, GUARANTEE_THRESHOLD - NOISE_THRESHOLD + 1,
                                  language="python", fp=io.StringIO(code))
    # Boilerplate is taken out here rather than by copydetect's own option, whose intersect1d(assume_unique=True)
    # drops a student's repeated fingerprints as if they were boilerplate.
    shared = fingerprint.hashes & boilerplate
    fingerprint.hashes -= shared
    for value in shared:
        fingerprint.hash_idx.pop(value, None)
    fingerprint.token_coverage = get_token_coverage(fingerprint.hash_idx, NOISE_THRESHOLD,
                                                    len(fingerprint.filtered_code))
    return fingerprint


def _highlighted(code: str, slices) -> str:
    from copydetect.utils import highlight_overlap

    if slices.shape[-1] == 0:
        return html.escape(code)
    marked, _ = highlight_overlap(code, slices, "<mark>", "</mark>", truncate=CONTEXT_LINES, escape_html=True)
    return marked


def compare(assignment: str, grading: Path, out: Path | None = None, extra: list[Path] | None = None,
            top: int = TOP) -> Result:
    """Compare every pair of students' code for `assignment` and write the HTML report (see the module)."""
    if assignment not in course.assignments():
        raise SimilarityError(f"no assignment named {assignment}; the course has: {', '.join(course.assignments())}")
    grading = Path(grading)
    out = Path(out) if out else grading / "similarity" / f"{assignment}.html"
    notebooks, sources = find_notebooks(assignment, grading, extra)
    wanted = graded_students(grading, assignment)
    result = Result(assignment, out, [], [], [p.relative_to(course.ROOT).as_posix() for p in boilerplate_paths(
        assignment)], sources=sources)
    if wanted is not None:
        for student in sorted(wanted - notebooks.keys()):
            result.skipped[student] = "graded in grades.csv, but no notebook of theirs was found"
        notebooks = {s: paths for s, paths in notebooks.items() if s in wanted}
    if len(notebooks) < 2:
        looked = ", ".join(str(r) for r in _submitted_roots(grading, extra or []))
        raise SimilarityError(f"{len(notebooks)} student(s) with a notebook of {assignment} found (looked in "
                              f"{looked}): run `python -m grader autograde ... --out {grading}` first")
    from copydetect import CodeFingerprint, compare_files

    boilerplate = set(CodeFingerprint("boilerplate.py", NOISE_THRESHOLD, 1, language="python",
                                      fp=io.StringIO(given_code(assignment))).hashes)
    fingerprints, codes = {}, {}
    for student, paths in sorted(notebooks.items()):
        try:
            codes[student] = code_of(paths)
        except Exception as error:  # noqa: BLE001 -- an unreadable notebook: this student only
            result.skipped[student] = f"its notebook could not be read ({type(error).__name__})"
            continue
        fingerprint = _fingerprint(f"{student}.py", codes[student], boilerplate)
        if fingerprint.token_coverage < MIN_OWN_TOKENS:
            result.skipped[student] = "next to no code of their own beyond what was given (unsolved?)"
            continue
        fingerprints[student] = fingerprint
    result.students = sorted(fingerprints)
    pairs = []
    slices = {}
    for a, b in combinations(result.students, 2):
        tokens, (share_a, share_b), (slices_a, slices_b) = compare_files(fingerprints[a], fingerprints[b])
        pairs.append(Pair(a, b, float(share_a), float(share_b), int(tokens)))
        slices[a, b] = (slices_a, slices_b)
    pairs.sort(key=lambda p: (-p.score, -min(p.share_a, p.share_b), p.a, p.b))
    for pair in pairs[:top]:
        slices_a, slices_b = slices[pair.a, pair.b]
        pair.code_a = _highlighted(codes[pair.a], slices_a)
        pair.code_b = _highlighted(codes[pair.b], slices_b)
    result.pairs = pairs
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(result, top), encoding="utf-8")
    return result


STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.high td { background: #fde8e8; }
.pair { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1em; }
pre { background: #f6f8fa; border: 1px solid #ddd; padding: 0.7em; overflow-x: auto; font-size: 13px; }
mark { background: #ffd36b; }
.note { color: #555; }
"""


def render(result: Result, top: int) -> str:
    """The report: a page with no script and nothing loaded from elsewhere."""
    e = html.escape
    scores = [p.score for p in result.pairs]
    median = statistics.median(scores) if scores else 0.0
    rows, sections = [], []
    for rank, pair in enumerate(result.pairs[:top], start=1):
        high = ' class="high"' if pair.score >= max(0.5, 2 * median) else ""
        rows.append(f'<tr{high}><td class="n"><a href="#pair-{rank}">{rank}</a></td><td>{e(pair.a)}</td>'
                    f'<td>{e(pair.b)}</td><td class="n">{pair.share_a:.0%}</td><td class="n">{pair.share_b:.0%}</td>'
                    f'<td class="n">{pair.tokens}</td></tr>')
        sections.append(
            f'<h2 id="pair-{rank}">{rank}. {e(pair.a)} and {e(pair.b)}: {pair.share_a:.0%} and {pair.share_b:.0%}</h2>'
            f'<div class="pair"><div><h3>{e(pair.a)}</h3><pre>{pair.code_a}</pre></div>'
            f'<div><h3>{e(pair.b)}</h3><pre>{pair.code_b}</pre></div></div>')
    skipped = "".join(f"<li>{e(s)}: {e(why)}</li>" for s, why in sorted(result.skipped.items()))
    spread = (f"All {len(scores)} pairs: median {median:.0%}, 90th percentile "
              f"{sorted(scores)[int(0.9 * (len(scores) - 1))]:.0%}, highest {max(scores):.0%}." if scores else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<title>Code similarity: {e(result.assignment)}</title><style>{STYLE}</style></head><body>
<h1>Code similarity: {e(result.assignment)}</h1>
<p>{len(result.students)} students' code cells, compared pairwise with copydetect (winnowing over tokenised code:
names, comments, strings and spacing do not matter; a shared stretch counts from {NOISE_THRESHOLD} tokenised
characters). Given code never counts: {e(', '.join(result.boilerplate))}. Each percentage is the share of that
student's own code found in the other's. {spread}</p>
<p class="note">A high score is a reason to read both notebooks, not proof of copying: a short exercise leaves little
room to differ, and students may share an idea legitimately. Compare a pair with the class's usual level above.
This page was written on your machine and loads nothing from anywhere.</p>
<table><tr><th>#</th><th>student</th><th>student</th><th>of the first's code</th><th>of the second's code</th>
<th>tokens in common</th></tr>
{''.join(rows)}
</table>
{''.join(sections)}
{f'<h2>Not compared</h2><ul>{skipped}</ul>' if skipped else ''}
</body></html>
"""
