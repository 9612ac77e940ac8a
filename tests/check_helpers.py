"""Shared assertions for the unit tests of the hidden checks."""

import pytest

from grader.checks.report import CheckFailed


def fails_with(check, candidate, *fragments) -> str:
    """`check(candidate)` must fail with a message containing every fragment; returns the message."""
    with pytest.raises(CheckFailed) as failure:
        check(candidate)
    for fragment in fragments:
        assert fragment in str(failure.value), f"message lacks {fragment!r}:\n{failure.value}"
    return str(failure.value)
