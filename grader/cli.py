"""The instructor's command line: `python -m grader <command>`."""

import argparse

from grader import course, release


def _release(args: argparse.Namespace) -> int:
    changed = release.release()
    for path in changed:
        print(f"cleaned {path.relative_to(course.ROOT)}")
    for path in course.exercise_paths():
        print(f"generated {path.relative_to(course.ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "release",
        help="clean lectures/ and solutions/, then regenerate exercises/ from solutions/",
    ).set_defaults(run=_release)
    args = parser.parse_args(argv)
    return args.run(args)
