"""Student-facing failure messages: what was expected, what was found, and a hint."""

import contextlib
import functools
import json
from collections.abc import Callable, Iterator
from typing import Any

from grader import observation


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


def returned(observed: dict, what: str) -> Any:
    """In a judge: the value a call captured by `observation.capture` returned, decoded.

    A call that raised becomes the same message `call` gives."""
    if "raised" in observed:
        kind, text = observed["raised"]
        fail(f"Calling {what} raised {kind}: {text}")
    return observation.decode(observed["value"])


def judged(observe: Callable, judge: Callable) -> Callable:
    """A hidden check made of an observer (runs the student's code, returns plain data) and a judge
    (recomputes, decides, raises CheckFailed).

    In an ordinary kernel (the instructor's, CI's, a student's) `check_x(...)` runs both, the
    observation round-tripped through JSON exactly as in grading. In a grading kernel only the
    observer exists (grader.autograde.observing) and the judge runs later in the trusted process.
    Keyword arguments written in the test cell (`minimum=0.95`) reach both halves. Either way the judge only ever
    sees data read against the shape the observer declares (`grader.observation.observes`): a malformed observation
    fails the check here, naming the place, and `check.judge` is that reading judge.
    """

    name = judge.__name__.replace("judge_", "check_", 1)
    shape = getattr(observe, "shape", None)
    if shape is None:
        raise TypeError(f"{observe.__name__} declares no shape: decorate it with grader.observation.observes")

    @functools.wraps(judge)
    def judge_observation(data: Any, **kwargs: Any) -> None:
        """The judge, given only data that has the observer's declared shape (the one place it is read)."""
        try:
            observed = observation.read(shape, data)
        except observation.MalformedObservation as problem:
            text = _unreadable(name, problem)
        else:
            judge(observed, **kwargs)
            return
        raise CheckFailed(text)

    @functools.wraps(judge)
    def check(*args: Any, **kwargs: Any) -> None:
        data = json.loads(observation.as_json(observe(*args, **kwargs)))
        try:
            judge_observation(data, **kwargs)
            return
        except CheckFailed as failure:
            text = str(failure)
        raise CheckFailed(text)  # outside the except block: the traceback ends here

    check.__name__ = check.__qualname__ = name
    check.observe, check.judge = observe, judge_observation
    return check


def _unreadable(check_name: str, problem: Exception) -> str:
    """The message of a check whose observation could not be read (only a changed kernel or grader makes one)."""
    return message(f"The hidden check {check_name} could not read what your code produced ({problem}), so this test "
                   "earns no points.",
                   hint="run the notebook top to bottom in a fresh kernel and do not change the grader's modules.")


def type_name(value: Any) -> str:
    """The class name of a value a judge decoded; an `Opaque` keeps the original object's."""
    if isinstance(value, observation.Opaque):
        return value.type_name.rsplit(".", 1)[-1]
    return type(value).__name__
