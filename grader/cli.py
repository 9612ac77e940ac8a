"""The instructor's command line: `python -m grader <command>`."""

import argparse
import csv
import json
import os
from pathlib import Path

from grader import course, release


def _release(args: argparse.Namespace) -> int:
    changed = release.release()
    for path in changed:
        print(f"cleaned {path.relative_to(course.ROOT)}")
    for path in course.exercise_paths():
        print(f"generated {path.relative_to(course.ROOT)}")
    return 0


def _autograde(args: argparse.Namespace) -> int:
    from grader.autograde import intake

    try:
        intake.check_inputs(Path(args.submissions), args.assignment)  # a typo is answered at once, not after minutes
    except intake.IntakeError as error:
        print(f"error: {error}")
        return 2

    import warnings as python_warnings

    from sqlalchemy.exc import SAWarning

    from grader.autograde import report, run, sandbox

    # nbgrader 0.9.6 triggers these inside its own gradebook code; they say nothing to an instructor.
    python_warnings.filterwarnings("ignore", category=SAWarning)

    warnings = sandbox.isolation_warnings()
    for warning in warnings:
        print(f"WARNING: {warning}")
    limits = sandbox.Limits(cell_timeout_s=args.cell_timeout, notebook_timeout_s=args.notebook_timeout,
                            memory_bytes=args.memory_mb * 2**20)
    out = Path(args.out)
    try:
        rows = run.autograde_class(
            Path(args.submissions), out, workers=args.workers, assignments=args.assignment or None,
            force=args.force, limits=limits, db_url=args.db, autograded=args.autograded,
            filename_regex=args.filename_regex,
        )
    except intake.IntakeError as error:
        print(f"error: {error}")
        return 2
    timing_file = out / report.TIMING_JSON
    timing = report.Timing(**json.loads(timing_file.read_text())) if timing_file.exists() else None
    with open(out / intake.INTAKE_CSV, newline="", encoding="utf-8") as f:
        ignored = [(r["path"], r["reason"]) for r in csv.DictReader(f) if r["outcome"] == "ignored"]
    print(report.summary(rows, timing, warnings, ignored))
    print(f"grades: {out / report.GRADES_CSV}   feedback: {out / 'feedback'}   every notebook found: "
          f"{out / intake.INTAKE_CSV}")
    return 0


def _book(args: argparse.Namespace) -> int:
    from grader import book

    try:
        index = book.build(Path(args.out), workers=args.workers)
    except book.BookError as error:
        print(f"error: {error}")
        return 1
    print(f"book: {index}")
    return 0


def _student_repo(args: argparse.Namespace) -> int:
    from grader import student_repo

    try:
        written = student_repo.build(Path(args.dir))
    except student_repo.StudentRepoError as error:
        print(f"error: {error}")
        return 1
    warning = student_repo.uncommitted_warning()
    if warning:
        print(f"WARNING: {warning}")
    print("\n".join(written.report()))
    print(written.hint())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "release",
        help="clean lectures/ and solutions/, then regenerate exercises/ from solutions/",
    ).set_defaults(run=_release)

    grade = commands.add_parser(
        "autograde", help="grade a whole class in parallel: grades.csv, feedback, and nbgrader's gradebook"
    )
    grade.add_argument("submissions", help="nbgrader layout <student>/<assignment>/<nb>.ipynb, or an LMS zip/folder")
    grade.add_argument("--out", required=True, help="folder for grades.csv, feedback/ and working files")
    grade.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel kernels (default: cores)")
    grade.add_argument("--assignment", action="append", help="grade only this assignment (repeatable)")
    grade.add_argument("--force", action="store_true", help="regrade submissions graded before")
    grade.add_argument("--cell-timeout", type=int, default=sandbox_default("cell_timeout_s"))
    grade.add_argument("--notebook-timeout", type=int, default=sandbox_default("notebook_timeout_s"))
    grade.add_argument("--memory-mb", type=int, default=sandbox_default("memory_bytes") // 2**20)
    grade.add_argument("--db", help="gradebook URL (default: nbgrader_config.py's, gradebook.db at the root)")
    grade.add_argument("--autograded", help="nbgrader's autograded/ folder (default: the course's)")
    grade.add_argument("--filename-regex", default=None,
                       help="other naming conventions: a regex with student_id and file_id groups (nbgrader "
                       "zip_collect's), matched against each notebook's path in the hand-in, then its file name")
    grade.set_defaults(run=_autograde)

    book = commands.add_parser("book", help="execute every lecture and render the course book as static HTML")
    book.add_argument("--out", default=str(course.ROOT / "_build" / "book"), help="default: _build/book")
    book.add_argument("--workers", type=int, default=2, help="lectures executed at once")
    book.set_defaults(run=_book)

    student = commands.add_parser(
        "student-repo", help="write the students' repository (lectures, exercises, README, set-up; no solution)"
    )
    student.add_argument("dir", help="a new folder, or the students' repository checked out, outside this one")
    student.set_defaults(run=_student_repo)
    args = parser.parse_args(argv)
    return args.run(args)


def sandbox_default(name: str):
    from grader.autograde.sandbox import Limits

    return getattr(Limits(), name)
