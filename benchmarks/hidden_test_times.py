"""How long each exercise's test cells take, hidden tests included, on the reference solution.

Runs every solution notebook in a fresh kernel with nbclient's per-cell timing and prints, per
notebook, the time spent in its grade cells (visible and hidden tests) and in the whole notebook.
The hidden tests of one notebook should take well under 10 s on a 2-core CPU. Not a test: run it
by hand, `python benchmarks/hidden_test_times.py`.
"""

import os
import sys
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader import course  # noqa: E402


def _seconds(cell) -> float:
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    return (datetime.fromisoformat(end.replace("Z", "+00:00")) - datetime.fromisoformat(start.replace("Z", "+00:00"))
            ).total_seconds()


def main() -> int:
    os.environ["MPLBACKEND"] = "Agg"
    print(f"{'notebook':32} {'test cells':>10} {'slowest test cell':>28} {'whole notebook':>15}")
    for path in course.solution_paths():
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=300, kernel_name="python3", record_timing=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        tests = [(c.metadata["nbgrader"]["grade_id"], _seconds(c)) for c in nb.cells
                 if c.metadata.get("nbgrader", {}).get("grade")]
        slowest = max(tests, key=lambda t: t[1])
        total = sum(_seconds(c) for c in nb.cells)
        print(f"{path.parent.name:32} {sum(t for _, t in tests):9.2f}s {slowest[0]:>21} {slowest[1]:5.2f}s "
              f"{total:14.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
