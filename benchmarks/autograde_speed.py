"""Benchmark: plain sequential `nbgrader autograde` against `python -m grader autograde`.

Generates a class (every assignment; correct, partly wrong and broken submissions mixed), grades
it both ways in throwaway course folders, checks both give the same score on every well-formed
submission, and prints the speed-up and the per-notebook median. Not a test: run it by hand,

    python benchmarks/autograde_speed.py --students 40 --workers 2
"""

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nbgrader.api import Gradebook

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from mutant_bank import banks  # noqa: E402
from mutant_bank.grading import submission  # noqa: E402

from grader import course, notebooks, release  # noqa: E402
from grader.nbgrader_api import ensure_env_bin_on_path  # noqa: E402


def make_class(folder: Path, students: int, assignments: list[str], seed: int = 0) -> set[tuple[str, str]]:
    """Write a class in nbgrader's layout; returns the well-formed (student, assignment) pairs."""
    rng = random.Random(seed)
    bank = banks()
    well_formed = set()
    for number in range(students):
        student = f"s{number:03d}"
        for assignment in assignments:
            target = folder / student / assignment / f"{assignment}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            roll = rng.random()
            mutants = bank.get(assignment, ([], []))[0]
            if roll < 0.06:
                target.write_text('{"cells": [')  # broken: unparseable
            elif roll < 0.10:
                shutil.rmtree(target.parent)  # broken: nothing handed in
            elif roll < 0.35 and mutants:
                notebooks.write(submission(assignment, rng.choice(mutants).cells), target)
                well_formed.add((student, assignment))
            else:
                notebooks.write(submission(assignment, {}), target)
                well_formed.add((student, assignment))
    return well_formed


def scores(db_file: Path, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], float]:
    found = {}
    with Gradebook(f"sqlite:///{db_file}", course_id="intro-to-pytorch") as gradebook:
        for student, assignment in pairs:
            try:
                found[student, assignment] = float(gradebook.find_submission(assignment, student).score)
            except Exception:  # noqa: BLE001 -- a missing row is reported as a difference below
                found[student, assignment] = float("nan")
    return found


def plain_nbgrader(class_dir: Path, root: Path, assignments: list[str]) -> float:
    """Sequential `nbgrader autograde` per assignment, as an instructor would run it."""
    config = (ROOT / "nbgrader_config.py").read_text()
    config += f"\nc.CourseDirectory.source_directory = {str(course.SOLUTIONS)!r}\n"
    config += f"c.CourseDirectory.release_directory = {str(root / 'release')!r}\n"
    (root / "nbgrader_config.py").write_text(config)
    shutil.copytree(class_dir, root / "submitted")
    for assignment in assignments:
        subprocess.run(["nbgrader", "generate_assignment", assignment, "--force"], cwd=root, check=True,
                       capture_output=True)
    start = time.perf_counter()
    for assignment in assignments:
        # nbgrader carries on past a broken notebook here; its exit code is not what we compare.
        subprocess.run(["nbgrader", "autograde", assignment, "--force"], cwd=root, capture_output=True)
    return time.perf_counter() - start


def ours(class_dir: Path, root: Path, workers: int, assignments: list[str]) -> float:
    # Both start from a gradebook that records the assignments, as an instructor's run after `release` does
    # (plain nbgrader's is made by generate_assignment, untimed); the run still checks it is current.
    release.update_gradebook(assignments, f"sqlite:///{root}/gradebook.db")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "grader", "autograde", str(class_dir), "--out", str(root / "out"),
                    "--workers", str(workers), "--db", f"sqlite:///{root}/gradebook.db",
                    "--autograded", str(root / "autograded")], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--assignment", action="append", help="default: every assignment")
    args = parser.parse_args()
    ensure_env_bin_on_path()
    assignments = args.assignment or course.assignments()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        class_dir = scratch / "class"
        pairs = make_class(class_dir, args.students, assignments)
        notebooks_count = len(list(class_dir.rglob("*.ipynb")))
        print(f"class: {args.students} students x {len(assignments)} assignments = {notebooks_count} notebooks "
              f"({len(pairs)} well-formed)")
        (scratch / "plain").mkdir()
        plain_seconds = plain_nbgrader(class_dir, scratch / "plain", assignments)
        print(f"plain nbgrader autograde (sequential): {plain_seconds:.0f} s, "
              f"{plain_seconds / notebooks_count:.2f} s per notebook")
        (scratch / "ours").mkdir()
        our_seconds = ours(class_dir, scratch / "ours", args.workers, assignments)
        timing = json.loads((scratch / "ours" / "out" / "timing.json").read_text())
        print(f"python -m grader autograde --workers {args.workers}: {our_seconds:.0f} s, "
              f"median {statistics.median(timing['per_notebook_seconds']):.2f} s per notebook in a worker; the run "
              f"{timing['total_seconds']:.0f} s, of which {timing['executing_seconds']:.0f} s with a kernel running: "
              f"{100 * (1 - timing['executing_seconds'] / timing['total_seconds']):.0f}% outside execution; "
              f"phases (they overlap) {({k: round(v, 1) for k, v in timing['phases'].items()})}")
        # What execution alone cannot go below: every kernel's seconds, shared out over the workers.
        kernels = sum(timing["per_notebook_seconds"])
        print(f"kernels: {kernels:.0f} s in all, so at least {kernels / args.workers:.0f} s of wall time on "
              f"{args.workers} workers; 5x plain would be {plain_seconds / 5:.0f} s")
        plain_scores = scores(scratch / "plain" / "gradebook.db", pairs)
        our_scores = scores(scratch / "ours" / "gradebook.db", pairs)
        differences = {k: (plain_scores[k], our_scores[k]) for k in pairs if plain_scores[k] != our_scores[k]}
        print(f"scores on well-formed submissions: {len(pairs) - len(differences)} identical, "
              f"{len(differences)} different")
        for key, (plain, mine) in sorted(differences.items())[:20]:
            print(f"  {key}: plain nbgrader {plain}, ours {mine}")
        print(f"speed-up: {plain_seconds / our_seconds:.2f}x")
        return 1 if differences else 0


if __name__ == "__main__":
    raise SystemExit(main())
