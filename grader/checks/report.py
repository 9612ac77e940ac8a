"""Student-facing failure messages: what was expected, what was found, and a hint."""

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any


class CheckFailed(AssertionError):
    """A hidden check found a mistake; the message is written for the student."""


def message(problem: str, expected: Any = None, found: Any = None, hint: str | None = None) -> str:
    lines = [problem]
    if expected is not None or found is not None:
        lines.append(f"    expected: {expected}")
        lines.append(f"    found:    {found}")
    if hint:
        lines.append(f"Hint: {hint}")
    return "\n".join(lines)


def fail(problem: str, expected: Any = None, found: Any = None, hint: str | None = None):
    raise CheckFailed(message(problem, expected, found, hint))


def student_check(check: Callable) -> Callable:
    """Mark a public check: a failure surfaces with its message but without the checking frames.

    The failure is re-raised outside the `except` block, so the traceback a student sees in
    feedback ends at this wrapper instead of listing the lines of the check.
    """

    @functools.wraps(check)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return check(*args, **kwargs)
        except CheckFailed as failure:
            text = str(failure)
        raise CheckFailed(text)

    return run


def expect(
    condition: bool, problem: str, expected: Any = None, found: Any = None, hint: str | None = None
) -> None:
    if not condition:
        fail(problem, expected, found, hint)


def call(function: Callable, *args: Any, what: str, **kwargs: Any) -> Any:
    """Call the student's function; an exception it raises becomes a message naming the call.

    NotImplementedError passes through unchanged: it means "not attempted yet", which the
    unsolved notebooks are expected to raise.
    """
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as error:  # noqa: BLE001 -- any error in student code is reported, not crashed on
        fail(f"Calling {what} raised {type(error).__name__}: {error}")


@contextlib.contextmanager
def patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    """Temporarily replace `owner.name` (e.g. torch.cuda.is_available) and always restore it."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)
