"""Per-student feedback: each test's verdict and message, never the hidden test code.

The autograded notebook is rewritten before rendering: test cells show only the behaviour they
check (their docstring) and a verdict; student outputs keep plain text and small images, capped,
and lose HTML and scripts. nbconvert renders it with its HTML sanitiser on.
"""

import copy
import functools
import html
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbgrader import utils

MAX_TEXT = 4_000
MAX_IMAGE_BASE64 = 300_000
KEEP_MIME = ("text/plain", "image/png", "image/jpeg")


def _text(value) -> str:
    text = "".join(value) if isinstance(value, list) else str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"\n... ({len(text) - MAX_TEXT} more characters cut)"


def _safe_outputs(outputs: list) -> list:
    kept = []
    for output in outputs:
        if output.output_type == "stream":
            kept.append(nbformat.v4.new_output("stream", name=output.name, text=_text(output.text)))
        elif output.output_type in ("display_data", "execute_result"):
            data = {}
            for mime in KEEP_MIME:
                if mime in output.get("data", {}):
                    value = output.data[mime]
                    if mime == "text/plain":
                        data[mime] = _text(value)
                    elif len(value) <= MAX_IMAGE_BASE64:
                        data[mime] = value
            if data:
                kept.append(nbformat.v4.new_output("display_data", data=data))
        elif output.output_type == "error":
            kept.append(nbformat.v4.new_output("stream", name="stderr", text=_text(f"{output.ename}: {output.evalue}")))
    return kept


def _behaviour(source: str) -> str:
    first = source.strip().splitlines()[0] if source.strip() else ""
    return first.strip('"').strip("'").strip() or "test"


def feedback_notebook(autograded: nbformat.NotebookNode, header: str) -> nbformat.NotebookNode:
    nb = copy.deepcopy(autograded)
    cells = [nbformat.v4.new_markdown_cell(header)]
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            score, max_score = utils.determine_grade(cell)
            errors = [o for o in cell.outputs if o.output_type == "error"]
            verdict = f"{'PASSED' if score == max_score else 'FAILED'}: {score:g} / {max_score:g} points"
            message = "\n".join(f"{e.ename}: {e.evalue}" for e in errors)
            test = nbformat.v4.new_code_cell(f"# Test: {_behaviour(cell.source)}")
            report = _text(f"{verdict}\n{message}".strip())
            test.outputs = [nbformat.v4.new_output("stream", name="stdout", text=report)]
            cells.append(test)
        elif cell.cell_type == "code":
            cell.outputs = _safe_outputs(cell.outputs)
            cell.metadata = {}
            cells.append(cell)
        else:
            cell.pop("attachments", None)
            cell.metadata = {}
            cells.append(cell)
    nb.cells = cells
    return nb


@functools.cache
def _exporter() -> HTMLExporter:
    # Built once: loading the templates costs ten times more than rendering one notebook.
    return HTMLExporter(template_name="lab", sanitize_html=True, exclude_input_prompt=True,
                        exclude_output_prompt=True)


def render(nb: nbformat.NotebookNode) -> str:
    body, _ = _exporter().from_notebook_node(nb)
    return body


def write(path: Path, autograded: Path | None, title: str, score: float, max_score: float, status: str,
          detail: str) -> None:
    header = f"# {html.escape(title)}\n\n**Score: {score:g} / {max_score:g}**"
    if status != "ok":
        header += f"\n\n**Status: {html.escape(status)}**. {html.escape(detail)}"
    elif detail:
        header += f"\n\n{html.escape(detail)}"
    if autograded is not None and autograded.exists():
        nb = feedback_notebook(nbformat.read(autograded, as_version=4), header)
    else:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(header)])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(nb), encoding="utf-8")
