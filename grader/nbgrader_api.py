"""nbgrader, driven from Python with this course's nbgrader_config.py."""

import os
import sys
from pathlib import Path

from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from grader import course


def ensure_env_bin_on_path() -> None:
    """nbgrader runs `alembic` as a command, so this environment's bin/ must be on PATH."""
    env_bin = str(Path(sys.executable).parent)
    if env_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = env_bin + os.pathsep + os.environ.get("PATH", "")


def load_config(overrides: Config | None = None, **course_directory: str) -> Config:
    """The course's nbgrader configuration, then `overrides` (nbgrader's `--Class.trait=value` options
    given on the command line), then CourseDirectory settings given by keyword."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course.ROOT)).load_config()
    if overrides is not None:
        config.merge(overrides)
    config.CourseDirectory.root = str(course.ROOT)
    for name, value in course_directory.items():
        setattr(config.CourseDirectory, name, value)
    return config


def api(config: Config) -> NbGraderAPI:
    ensure_env_bin_on_path()
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
