"""Where the course lives and what it is made of: the one place these facts are written down."""

import os
import re
from pathlib import Path

# The course folder: this checkout. GRADER_COURSE_ROOT names another folder laid out the same way
# (its own nbgrader_config.py, solutions/, exercises/), graded by this grader: the tests build
# scenario courses this way, so that no fixture assignment ever enters this checkout's solutions/.
ROOT = Path(os.environ.get("GRADER_COURSE_ROOT") or Path(__file__).resolve().parent.parent).resolve()
LECTURES = ROOT / "lectures"
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"

# Other languages: each edition's catalogs are in translations/<language>/ (gettext PO, one per source
# notebook) and `python -m grader release` builds its notebooks into <language>/lectures/ and
# <language>/exercises/, mirroring this tree. An edition holds only the source notebooks listed here; list
# one once its catalog is complete (`python -m grader translations` says which are).
TRANSLATIONS = ROOT / "translations"
# This course's editions: another course graded through GRADER_COURSE_ROOT has its own notebooks, and none of these.
EDITIONS = {} if ROOT != Path(__file__).resolve().parent.parent else {
    "es": [
        "lectures/01_tensors.ipynb",
        "lectures/02_autograd.ipynb",
        "lectures/03_nn_module.ipynb",
        "lectures/04_data.ipynb",
        "lectures/05_training_loop.ipynb",
        "lectures/06_inference.ipynb",
        "lectures/07_digits.ipynb",
        "solutions/01_tensors/01_tensors.ipynb",
        "solutions/02_autograd/02_autograd.ipynb",
        "solutions/03_nn_module/03_nn_module.ipynb",
        "solutions/04_data/04_data.ipynb",
        "solutions/05_training_loop/05_training_loop.ipynb",
        "solutions/06_inference/06_inference.ipynb",
        "solutions/07_digits/07_digits.ipynb",
        "solutions/08_capstone/08_capstone.ipynb",
    ],
}

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


# The course's own units are named NN_topic and have a lecture of the same number; an instructor's
# own assignment may be any folder of solutions/ that holds a notebook, as in any nbgrader course.
UNIT_NAME = re.compile(r"^\d\d_\w+$")


def _assignment_folders(parent: Path) -> list[str]:
    if not parent.is_dir():
        return []
    return sorted(p.name for p in parent.iterdir()
                  if p.is_dir() and not p.name.startswith((".", "_")) and any(p.glob("*.ipynb")))


def assignments() -> list[str]:
    """Every assignment: one per folder of solutions/ (nbgrader's source folder) that holds a notebook."""
    return _assignment_folders(SOLUTIONS)


def units() -> list[str]:
    """The course's own units (NN_topic), which follow the course's style; other assignments need not."""
    return [name for name in assignments() if UNIT_NAME.match(name)]


def solution_paths(names: list[str] | None = None) -> list[Path]:
    """The source notebooks of `names` (default: every assignment), as nbgrader finds them: directly in the folder."""
    return sorted(path for name in (assignments() if names is None else names)
                  for path in (SOLUTIONS / name).glob("*.ipynb"))


def exercise_paths(names: list[str] | None = None) -> list[Path]:
    """The released student notebooks of `names` (default: every folder of exercises/)."""
    return sorted(path for name in (_assignment_folders(EXERCISES) if names is None else names)
                  for path in (EXERCISES / name).glob("*.ipynb"))
