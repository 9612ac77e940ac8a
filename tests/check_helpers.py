"""Shared assertions and observations for the unit tests of the hidden checks."""

import json

import pytest

from grader.checks.report import CheckFailed
from grader.observation import as_json, encode


def fails_with(check, candidate, *fragments, **kwargs) -> str:
    """`check(candidate)` must fail with a message containing every fragment; returns the message.

    `check` may be a judge and `candidate` an observation: a forged observation must be rejected the same way."""
    with pytest.raises(CheckFailed) as failure:
        check(candidate, **kwargs)
    for fragment in fragments:
        assert fragment in str(failure.value), f"message lacks {fragment!r}:\n{failure.value}"
    return str(failure.value)


def unsolved(*args, **kwargs):
    """An answer cell as the student receives it."""
    raise NotImplementedError("Replace this line")


def observed(check, *args, **kwargs) -> dict:
    """What `check`'s observer records for these arguments, after the JSON round trip grading puts it through."""
    return json.loads(as_json(check.observe(*args, **kwargs)))


def encoded(value):
    """`value` as an observation carries it (for forging one record of an observation)."""
    return json.loads(as_json(encode(value)))


class Observations:
    """The observations of correct answers, made once (some train a model) and handed out as fresh copies.

    `checks` maps a name to (check, the arguments its observer is called with)."""

    def __init__(self, checks: dict[str, tuple]):
        self.checks, self.made = checks, {}

    def __call__(self, name: str) -> dict:
        if name not in self.made:
            check, args = self.checks[name]
            self.made[name] = as_json(check.observe(*args))
        return json.loads(self.made[name])
