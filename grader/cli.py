"""The instructor's command line: `python -m grader <command>`."""

import argparse
import csv
import os
import re
from pathlib import Path

from traitlets.config.loader import KVArgParseConfigLoader

from grader import course, release

NBGRADER_OPTION = re.compile(r"^--[A-Za-z_]\w*\.\w+=")


def _release(args: argparse.Namespace) -> int:
    try:
        changed = release.release()
    except release.ReleaseError as error:
        print(f"error: {error}")
        return 1
    for path in changed:
        print(f"cleaned {path.relative_to(course.ROOT)}")
    for path in course.exercise_paths():
        print(f"generated {path.relative_to(course.ROOT)}")
    from grader.translation import edition

    for language in course.EDITIONS:
        print("\n".join(edition.release_report(language)))
    return 0


def _translations(args: argparse.Namespace) -> int:
    from grader.translation import edition

    for language in args.language or list(course.EDITIONS):
        listed = {edition.relative(source) for source in edition.sources(language)}
        states = edition.catalog_states(language) if args.check else edition.update_catalogs(language)
        for state in states:
            mark = "listed" if state.name in listed else ""
            print(f"{language}  {state.translated:4d}/{state.total:<4d} {mark:6}  {state.name}")
        incomplete = [state for state in states if state.name in listed | {edition.GRADER_CATALOG}
                      and not state.complete]
        for state in incomplete:
            print("\n".join(state.problems))
        if incomplete:
            return 1
    return 0


def _autograde(args: argparse.Namespace) -> int:
    from grader.autograde import intake, sandbox

    sandbox.probe_jail_soon()  # seconds of importing torch in a jail, while this process imports the rest

    try:
        intake.check_inputs(Path(args.submissions), args.assignment)  # a typo is answered at once, not after minutes
    except intake.IntakeError as error:
        print(f"error: {error}")
        return 2

    import warnings as python_warnings

    from sqlalchemy.exc import SAWarning

    from grader import late
    from grader.autograde import report, run, sandbox
    from grader.nbgrader_api import load_config

    # nbgrader 0.9.6 triggers these inside its own gradebook code; they say nothing to an instructor.
    python_warnings.filterwarnings("ignore", category=SAWarning)

    out = Path(args.out)
    remote = None
    if args.scheduler:  # the worker nodes execute, each with its own sandbox: theirs is the one reported
        from grader.autograde import cluster

        try:
            remote = cluster.Cluster(args.scheduler, args.containment, log=out / run.LOGS / "cluster.log")
        except cluster.ClusterError as error:
            print(f"error: {error}")
            return 2
        where, warnings = remote.lines(), remote.warnings()
    else:
        try:
            where = [sandbox.choose(args.containment).line]  # says which, before and after grading
        except sandbox.SandboxError as error:
            print(f"error: {error}")
            return 2
        warnings = sandbox.isolation_warnings(args.containment)
    print("\n".join(where))
    for warning in warnings:
        print(f"WARNING: {warning}")
    # nbgrader_config.py, then nbgrader's own `--Class.trait=value` options, then this command's flags.
    overrides = KVArgParseConfigLoader(argv=args.nbgrader_options).load_config() if args.nbgrader_options else None
    limits = run.default_limits(
        load_config(overrides), cell_timeout_s=args.cell_timeout, notebook_timeout_s=args.notebook_timeout,
        memory_bytes=args.memory_mb * 2**20,
        max_submission_bytes=args.max_submission_mb * 2**20 if args.max_submission_mb else None)
    try:
        rows = run.autograde_class(
            Path(args.submissions), out, workers=args.workers, assignments=args.assignment or None,
            force=args.force, limits=limits, db_url=args.db, autograded=args.autograded,
            filename_regex=args.filename_regex, containment=args.containment, students=args.student,
            notebook=args.notebook, overrides=overrides, scheduler=remote, shard_size=args.shard_size,
        )
    except (intake.IntakeError, late.LateWorkError) as error:
        print(f"error: {error}")
        return 2
    finally:
        if remote is not None:
            remote.close()
    if remote is not None:  # nodes that joined during the run have been heard from since
        where, warnings = remote.lines(), remote.warnings()
    with open(out / intake.INTAKE_CSV, newline="", encoding="utf-8") as f:
        ignored = [(r["path"], r["reason"]) for r in csv.DictReader(f) if r["outcome"] == "ignored"]
    print("\n".join(where))
    print(report.summary(rows, rows.timing, warnings, ignored))
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


def _export(args: argparse.Namespace) -> int:
    from grader import lms

    try:
        done = lms.export(args.lms, Path(args.roster), Path(args.grades), Path(args.out), args.assignment,
                          args.column)
    except lms.ExportError as error:
        print(f"error: {error}")
        return 1
    print("\n".join(done.report()))
    return 0


def _feedback_bundle(args: argparse.Namespace) -> int:
    from grader import feedback_bundle

    try:
        bundle = feedback_bundle.build(Path(args.grading), Path(args.out), args.assignment, exchange=args.exchange)
    except feedback_bundle.BundleError as error:
        print(f"error: {error}")
        return 1
    print("\n".join(bundle.report()))
    return 0


def _similarity(args: argparse.Namespace) -> int:
    from grader import similarity

    try:
        result = similarity.compare(args.assignment, Path(args.grading), Path(args.out) if args.out else None,
                                    [Path(p) for p in args.submitted or []], top=args.top)
    except similarity.SimilarityError as error:
        print(f"error: {error}")
        return 1
    print("\n".join(result.summary(args.top)))
    return 0


def _add_lms_commands(commands) -> None:
    """export, feedback-bundle and similarity: what follows grading."""
    from grader import lms

    export = commands.add_parser(
        "export", help="grades.csv into your LMS's gradebook file (Canvas gradebook, Moodle worksheet or gradebook)",
        description=lms.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_argument("--lms", required=True, choices=lms.LMSES, help="the LMS the roster comes from")
    export.add_argument("--roster", required=True, help="the gradebook (or Moodle grading worksheet) CSV exported "
                        "from the LMS; never modified")
    export.add_argument("--grades", required=True, help="autograde's grades.csv, e.g. grading/grades.csv")
    export.add_argument("--out", required=True, help="the file to write and import into the LMS")
    export.add_argument("--assignment", action="append", help="export only this assignment (repeatable); "
                        "default: every assignment in grades.csv")
    export.add_argument("--column", action="append", metavar="ASSIGNMENT=COLUMN",
                        help="the roster column of an assignment whose LMS name does not start with its name")
    export.set_defaults(run=_export)

    from grader import feedback_bundle

    bundle = commands.add_parser(
        "feedback-bundle", help="zip the feedback pages as Canvas and Moodle take them back in bulk (else per student)",
        description=feedback_bundle.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bundle.add_argument("grading", help="autograde's --out folder (feedback/ and intake.csv)")
    bundle.add_argument("--out", required=True, help="a new folder for the zips (or one this command wrote before)")
    bundle.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    bundle.add_argument("--exchange", action="store_true", help="hand-ins collected from nbgrader's exchange: "
                        "their pages into the course's feedback/ folder, for `nbgrader release_feedback ASSIGNMENT`")
    bundle.set_defaults(run=_feedback_bundle)

    from grader import similarity

    similar = commands.add_parser(
        "similarity", help="compare students' code for one assignment offline: an HTML report of the most similar "
        "pairs", description=similarity.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    similar.add_argument("assignment", help="e.g. 08_capstone")
    similar.add_argument("grading", help="autograde's --out folder")
    similar.add_argument("--out", help="the report; default: GRADING/similarity/ASSIGNMENT.html")
    similar.add_argument("--top", type=int, default=similarity.TOP, help=f"pairs shown (default {similarity.TOP})")
    similar.add_argument("--submitted", action="append", help="another folder of nbgrader's layout "
                         "<student>/<assignment>/*.ipynb to read first (repeatable)")
    similar.set_defaults(run=_similarity)


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
    grade.add_argument("--student", action="append", help="grade only this student (a glob, as nbgrader's "
                       "--student; repeatable); default: CourseDirectory.student_id, everyone")
    grade.add_argument("--notebook", help="grade only this notebook of each assignment (a glob, as nbgrader's "
                       "--notebook); default: CourseDirectory.notebook_id, all")
    grade.add_argument("--cell-timeout", type=int, default=None,
                       help="seconds a cell may run; default: Execute.timeout in nbgrader_config.py")
    grade.add_argument("--notebook-timeout", type=int, default=None,
                       help="seconds a whole notebook may run; default: 300, or 5 cell timeouts if more")
    grade.add_argument("--memory-mb", type=int, default=sandbox_default("memory_bytes") // 2**20)
    grade.add_argument("--max-submission-mb", type=int, default=None,
                       help=f"largest file a hand-in may hold; default: "
                       f"{sandbox_default('max_submission_bytes') // 2**20}")
    grade.add_argument("--db", help="gradebook URL (default: nbgrader_config.py's, gradebook.db at the root)")
    grade.add_argument("--autograded", help="nbgrader's autograded/ folder (default: the course's)")
    grade.add_argument("--filename-regex", default=None,
                       help="other naming conventions: a regex with student_id and file_id groups (nbgrader "
                       "zip_collect's), matched against each notebook's path in the hand-in, then its file name")
    grade.add_argument("--containment", choices=sandbox_default("CONTAINMENTS"), default="auto",
                       help="how each submission's processes are capped and killed: a cgroup v2 or v1 per "
                       "submission, or its slot's own user; auto (default): the strongest this machine has")
    grade.add_argument("--scheduler", help="execute on a Dask cluster: its scheduler's address, e.g. "
                       "tcp://10.0.0.5:8786 (judging and the gradebook stay here; --workers then counts judges)")
    grade.add_argument("--shard-size", type=int, default=None, help="submissions per Dask task (default: 4)")
    grade.set_defaults(run=_autograde)

    translate = commands.add_parser(
        "translations", help="create or merge each language's catalogs (translations/<language>/*.po) from the "
        "English notebooks, and say how complete each is")
    translate.add_argument("--language", action="append", help="only this language (default: every edition)")
    translate.add_argument("--check", action="store_true", help="only report; write nothing")
    translate.set_defaults(run=_translations)

    book = commands.add_parser("book", help="execute every lecture and render the course book as static HTML, in "
                               "English and in each translated edition (the Spanish book in OUT/es/)")
    book.add_argument("--out", default=str(course.ROOT / "_build" / "book"), help="default: _build/book")
    book.add_argument("--workers", type=int, default=2, help="lectures executed at once, across both editions")
    book.set_defaults(run=_book)

    student = commands.add_parser(
        "student-repo", help="write the students' repository (lectures, exercises, README, set-up; no solution)"
    )
    student.add_argument("dir", help="a new folder, or the students' repository checked out, outside this one")
    student.set_defaults(run=_student_repo)
    _add_lms_commands(commands)
    args, unknown = parser.parse_known_args(argv)
    # nbgrader's own options (`--CourseDirectory.student_id_exclude=bob`, `--Execute.timeout=120`), as
    # `nbgrader autograde` takes them: autograde only, and nothing else unknown.
    args.nbgrader_options = [u for u in unknown if NBGRADER_OPTION.match(u)]
    rest = [u for u in unknown if not NBGRADER_OPTION.match(u)]
    if rest or (args.nbgrader_options and args.command != "autograde"):
        parser.error(f"unrecognized arguments: {' '.join(rest or args.nbgrader_options)}")
    return args.run(args)


def sandbox_default(name: str):
    from grader.autograde import sandbox

    return getattr(sandbox.Limits(), name, None) or getattr(sandbox, name)
