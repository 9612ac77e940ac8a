"""Where the course lives and what it is made of: the one place these facts are written down."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LECTURES = ROOT / "lectures"
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"

# The students' repository (GitHub owner/name and branch): what `python -m grader student-repo DIR`
# generates and you push there. This repository, with solutions/ and grader/checks/, stays private.
# Every Colab badge opens lectures/... and exercises/... from the students' repository, at the same
# paths as here. A fork changes these two lines and runs `python -m grader release`.
STUDENT_REPOSITORY = "intro-to-pytorch/course-student"
STUDENT_BRANCH = "main"

# Seconds a notebook may take top to bottom in a fresh kernel on a 2-core laptop CPU.
LECTURE_BUDGET_S = 60
EXERCISE_BUDGET_S = 60

# Notebook-level metadata every course notebook carries. "accelerator" makes Colab open the
# notebook on a GPU runtime; the code picks the device itself, so it also runs without one.
NOTEBOOK_METADATA = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
    "accelerator": "GPU",
    "colab": {"provenance": [], "gpuType": "T4"},
}


def lecture_paths() -> list[Path]:
    return sorted(LECTURES.glob("[0-9][0-9]_*.ipynb"))


def assignments() -> list[str]:
    """Assignment names, one per folder of solutions/ (nbgrader's source folder)."""
    return sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and p.name[:2].isdigit())


def solution_paths() -> list[Path]:
    return sorted(SOLUTIONS.glob("[0-9][0-9]_*/*.ipynb"))


def exercise_paths() -> list[Path]:
    return sorted(EXERCISES.glob("[0-9][0-9]_*/*.ipynb"))
