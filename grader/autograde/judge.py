"""The verdicts, decided in the trusted grading process rather than in the student's kernel.

A graded test cell's hidden line calls `unit.check_name(...)`. In the grading kernel that call only
records an observation (`grader.observation`, emitted as an output of the cell). After every kernel
is gone, this module reads the test cell's trusted source (nbgrader restored it from the
gradebook), finds each check it calls, takes the matching observation from the cell's outputs,
and runs the check's judge. The cell's outputs are then rewritten so that nbgrader scores exactly
the judge's verdict: an error with the judge's message, or none. What the kernel printed for
itself (a traceback, a faked pass, an exception hook) is not evidence of anything.
"""

import ast
import importlib
import json
from dataclasses import dataclass

from nbformat import NotebookNode

from grader.checks.report import CheckFailed
from grader.observation import MIME

ENAME = "CheckFailed"
# An observation larger than this is not something our observers make: it is ignored.
MAX_OBSERVATION_CHARS = 20 * 2**20


@dataclass(frozen=True)
class CheckCall:
    unit: str
    name: str
    kwargs: dict

    @property
    def key(self) -> str:
        return f"{self.unit}.{self.name}"


def check_calls(source: str) -> list[CheckCall]:
    """The `unit.check_name(..., key=literal)` calls in a test cell's source, in order.

    Only calls on a unit imported with `from grader.checks import unit` count."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    units = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             and node.module == "grader.checks" for alias in node.names}
    calls = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id in units
                and node.func.attr.startswith("check_")):
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
            calls.append((node.lineno, node.col_offset, CheckCall(node.func.value.id, node.func.attr, kwargs)))
    return [call for *_, call in sorted(calls, key=lambda item: item[:2])]


def judge_for(call: CheckCall):
    """The judge of a check, or None for a check that still decides in the kernel."""
    module = importlib.import_module(f"grader.checks.{call.unit}")
    return getattr(getattr(module, call.name, None), "judge", None)


def _observations(cell: NotebookNode) -> list[dict]:
    found = []
    for output in cell.get("outputs", []):
        payload = output.get("data", {}).get(MIME) if output.get("output_type") == "display_data" else None
        if isinstance(payload, dict) and len(json.dumps(payload)) <= MAX_OBSERVATION_CHARS:
            found.append(payload)
    return found


def _cell_error(cell: NotebookNode) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename', 'Error')}: {str(output.get('evalue', ''))[:300]}"
    return None


def verdict(cell: NotebookNode, calls: list[CheckCall]) -> str | None:
    """None if every check of the cell passes on its observation, else the student's message."""
    observations = _observations(cell)
    for call in calls:
        judge = judge_for(call)
        match = next((o for o in observations if o.get("check") == call.key), None)
        if match is None:
            error = _cell_error(cell)
            return (f"The hidden check {call.name} did not run to the end, so this test earns no points."
                    + (f"\nThe cell stopped with {error}" if error else "")
                    + "\nHint: run the notebook top to bottom in a fresh kernel and fix the first error.")
        observations.remove(match)
        try:
            judge(match.get("observation"), **call.kwargs)
        except CheckFailed as failure:
            return str(failure)
        except Exception as error:  # noqa: BLE001 -- a judge that trips on a well-shaped observation fails the test
            # (report.judged already failed every observation without its observer's declared shape).
            return f"The hidden check {call.name} could not read what your code produced ({type(error).__name__})."
    return None


def _is_test_cell(cell: NotebookNode) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and meta.get("grade", False) and not meta.get("solution", False)


def apply(executed: NotebookNode, trusted: NotebookNode) -> NotebookNode:
    """`executed` with every judged test cell's outputs replaced by the judge's verdict.

    `trusted` is the sanitised notebook nbgrader is grading: its test cells come from the gradebook."""
    for cell, source_cell in zip(executed.cells, trusted.cells, strict=True):
        if not _is_test_cell(source_cell):
            continue
        calls = check_calls(source_cell.source)
        if not calls:
            continue  # an instructor's plain nbgrader test (asserts): nbgrader scores it as it always has
        unjudged = [call.key for call in calls if judge_for(call) is None]
        # Fail closed: a course check with no judge would be decided by what the kernel printed.
        failure = (f"The grader has no judge for {', '.join(unjudged)}, so it cannot be sure of this test: "
                   "0 points until the instructor fixes the course's checks." if unjudged else verdict(cell, calls))
        kept = [o for o in cell.get("outputs", []) if o.get("output_type") in ("stream", "display_data",
                                                                              "execute_result")
                and MIME not in o.get("data", {})]
        if failure is not None:
            kept.append(NotebookNode(output_type="error", ename=ENAME, evalue=failure,
                                     traceback=[f"\x1b[0;31m{ENAME}\x1b[0m: {failure}"]))
        cell.outputs = kept
    return executed
