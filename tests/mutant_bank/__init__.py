"""The mutant bank: known-wrong and differently-right student answers, graded for real.

Each `bank_<assignment>.py` holds `ASSIGNMENT`, `MUTANTS` and `CORRECT`. A submission is the
generated student notebook with some answer cells replaced; every answer cell it does not name
gets the instructor's reference answer, so a mutant differs from a full-marks notebook in exactly
the mistake it is about.
"""

import importlib
import pkgutil
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mutant:
    """A wrong answer: it must lose points on each test cell in `loses`, with that message fragment."""

    name: str
    cells: dict[str, str]  # answer cell grade_id -> the full source a student wrote there
    loses: dict[str, str]  # test cell grade_id -> fragment its error message must contain


@dataclass(frozen=True)
class Correct:
    """A differently-written right answer: it must get full marks on every test cell."""

    name: str
    cells: dict[str, str] = field(default_factory=dict)


def banks() -> dict[str, tuple[list[Mutant], list[Correct]]]:
    """Every bank in this package, by assignment name."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("bank_"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            found[module.ASSIGNMENT] = (list(module.MUTANTS), list(module.CORRECT))
    return dict(sorted(found.items()))
