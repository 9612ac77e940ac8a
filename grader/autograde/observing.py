"""The grading kernel's `grader.checks`: observers that report, with no judge behind them.

`preload` imports the observers (and nothing that judges) before the worker forks kernels;
`install` runs in each kernel before the student's code and puts stand-in modules in
`sys.modules`, so the unchanged hidden line `from grader.checks import tensors;
tensors.check_make_grid(make_grid)` records an observation as an output of its cell instead of
deciding. The judge (grader.autograde.judge) reads it later in the trusted process.
"""

import functools
import importlib
import json
import pkgutil
import sys
import types

import grader
import grader.observers
from grader.observation import MIME, as_json


@functools.cache
def observer_modules() -> dict[str, types.ModuleType]:
    """Found on disk once, in the worker before it forks: a jailed kernel cannot list the course folder."""
    return {info.name: importlib.import_module(f"grader.observers.{info.name}")
            for info in pkgutil.iter_modules(grader.observers.__path__)}


def _reporter(key: str, observe):
    def check(*args, **kwargs) -> None:
        from IPython.display import publish_display_data

        data = json.loads(as_json({"check": key, "observation": observe(*args, **kwargs)}))
        publish_display_data({MIME: data, "text/plain": f"{key}: observed; judged after the notebook has run"})

    check.__name__ = key.rsplit(".", 1)[1]
    return check


def stand_in_modules() -> dict[str, types.ModuleType]:
    """`grader.checks` and one `grader.checks.<unit>` per observer module, reporting only."""
    package = types.ModuleType("grader.checks", "Observers only: this kernel is being graded.")
    package.__path__ = []  # a package with nothing on disk: no judge can be imported through it
    modules = {"grader.checks": package}
    for unit, observers in observer_modules().items():
        module = types.ModuleType(f"grader.checks.{unit}")
        for name in dir(observers):
            if name.startswith("observe_"):
                check = "check_" + name.removeprefix("observe_")
                setattr(module, check, _reporter(f"{unit}.{check}", getattr(observers, name)))
        setattr(package, unit, module)
        modules[module.__name__] = module
    return modules


def install() -> None:
    """In a grading kernel, before any student code."""
    for name in [m for m in sys.modules if m == "grader.checks" or m.startswith("grader.checks.")]:
        del sys.modules[name]
    modules = stand_in_modules()
    sys.modules.update(modules)
    grader.checks = modules["grader.checks"]
