"""Cells that never ran must score zero, with the reason, instead of nbgrader's "no error: full marks"."""

from nbformat import NotebookNode

ENAME = "NotGraded"


def mark_unexecuted(nb: NotebookNode, executed: int, reason: str) -> NotebookNode:
    """Give every code cell from index `executed` on an error output that says why it did not run."""
    for cell in nb.cells[executed:]:
        if cell.cell_type == "code":
            cell.outputs = [
                NotebookNode(
                    output_type="error",
                    ename=ENAME,
                    evalue=f"this cell did not run: {reason}",
                    traceback=[f"{ENAME}: this cell did not run: {reason}"],
                )
            ]
    return nb
