"""Per-student feedback: each test's verdict and message, never the hidden test code.

The autograded notebook is rewritten before rendering: test cells show only the behaviour they
check (their docstring) and a verdict; student outputs keep plain text and small images, capped,
and lose HTML and scripts. nbconvert renders it with our sanitiser in place of its own
`clean_html` filter, which escapes every tag it does not know (`<h1>`, `<p>`, `<img>`, tables) into
visible text instead of keeping or removing it. The page is self-contained and runs no script at all:
nbconvert's own (MathJax, require.js, mermaid, widgets, all from a CDN) are left out, and a
Content-Security-Policy forbids any script, frame or request that would still get through.
"""

import copy
import functools
import html
import re
from pathlib import Path

import bleach
import jinja2
import nbformat
from bleach import html5lib_shim
from nbconvert import HTMLExporter
from nbgrader import utils

from grader import book, course, notebooks
from grader.autograde.report import Status
from grader.translation import edition, handin, messages

SOURCE_LANGUAGE = messages.SOURCE_LANGUAGE

MAX_TEXT = 4_000
MAX_IMAGE_BASE64 = 300_000
KEEP_MIME = ("text/plain", "image/png", "image/jpeg")


# What markdown renders to, and nothing that runs, embeds another document or restyles the page.
ALLOWED_TAGS = frozenset({
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "div", "span", "blockquote", "pre", "code",
    "kbd", "samp", "var", "ul", "ol", "li", "dl", "dt", "dd", "table", "caption", "thead", "tbody",
    "tfoot", "tr", "th", "td", "a", "img", "strong", "b", "em", "i", "u", "s", "del", "ins", "sub",
    "sup", "mark", "small", "abbr", "details", "summary", "figure", "figcaption",
})
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto", "data"})  # data: only for images, below
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*", re.IGNORECASE)
_TAG_ATTRIBUTES = {"a": {"href"}, "img": {"alt", "width", "height"}, "th": {"colspan", "rowspan", "align"},
                   "td": {"colspan", "rowspan", "align"}, "ol": {"start"}}


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    """Keep an attribute only if it cannot run code, load anything, or hold a huge inline image."""
    if name in ("class", "id", "title"):
        return True
    if tag == "img" and name == "src":
        return bool(_DATA_IMAGE.fullmatch(value.strip())) and len(value) <= MAX_IMAGE_BASE64
    if tag == "a" and name == "href":  # normalised as bleach does before it checks the protocol
        url = re.sub(r"[`\000-\040\177-\240\s]+", "", html5lib_shim.convert_entities(value)).lower()
        return not url.startswith("data:")
    return name in _TAG_ATTRIBUTES.get(tag, ())


class _ImagesWithoutSourceAsText(html5lib_shim.Filter):
    """An image the page may not load (a remote or local file, an attachment) becomes its alt text:
    viewing the feedback never fetches anything."""

    def __iter__(self):
        for token in super().__iter__():
            if token["type"] in ("StartTag", "EmptyTag") and token["name"] == "img":
                attributes = {name: value for (_, name), value in token["data"].items()}
                if "src" not in attributes:
                    alt = attributes.get("alt", "").strip()
                    if alt:
                        yield {"type": "Characters", "data": f"[{alt}]"}
                    continue
            yield token


_CLEANER = bleach.Cleaner(tags=ALLOWED_TAGS, attributes=_allowed_attribute, protocols=ALLOWED_PROTOCOLS,
                          strip=True, strip_comments=True, filters=[_ImagesWithoutSourceAsText])


def clean_html(fragment) -> str:
    """Sanitise HTML from a notebook (rendered markdown, highlighted code, a raw cell).

    Replaces nbconvert's `clean_html` filter, which passes `strip=False` to bleach with a list of
    inline tags only, so every heading, paragraph, image and table of a markdown cell showed up as
    escaped text. Here a tag that is not allowed is removed (its text stays, inert), as are event
    handlers, `style`, `javascript:` and other URLs that are neither web, mail nor inline images.
    """
    text = fragment.decode() if isinstance(fragment, bytes) else str(fragment)
    return _CLEANER.clean(text)


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


def _verdict(score: float | None, max_score: float) -> str:
    if score is None:
        return f"TO BE GRADED BY HAND: ? / {max_score:g} points"
    if score >= max_score:
        return f"PASSED: {score:g} / {max_score:g} points"
    if score > 0:
        return f"PARTIAL CREDIT: {score:g} / {max_score:g} points"
    return f"FAILED: {score:g} / {max_score:g} points"


def _in_edition(nb: nbformat.NotebookNode, released: nbformat.NotebookNode | None) -> nbformat.NotebookNode:
    """`nb` with each locked cell (instructions, tests) as the translated release shows it: grading put them back
    in the English the gradebook holds; the student's own cells are as handed in."""
    if released is None:
        return nb
    translated = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in released.cells
                  if c.metadata.get("nbgrader", {}).get("locked")}
    for cell in nb.cells:
        ours = translated.get(cell.metadata.get("nbgrader", {}).get("grade_id"))
        if ours is not None and ours.cell_type == cell.cell_type:
            cell.source = ours.source
    return nb


def feedback_notebook(autograded: nbformat.NotebookNode, header: str, language: str = SOURCE_LANGUAGE,
                      released: nbformat.NotebookNode | None = None) -> nbformat.NotebookNode:
    """The page's notebook, in `language`: `released` is the translated release of the exercise (or None)."""
    def tr(text: str) -> str:
        return messages.translate(text, language)

    nb = _in_edition(copy.deepcopy(autograded), released)
    nb.metadata = {"language_info": {"name": "python"}}  # nothing of the hand-in's (widgets pull scripts)
    cells = [nbformat.v4.new_markdown_cell(header)]
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.metadata.get("course", {}).get("role") == notebooks.BADGE_MARKER:
            continue  # "Open in Colab" opens the blank exercise: no use in feedback
        if cell.cell_type == "code" and meta.get("grade") and meta.get("solution"):
            # An answer graded by hand: the student's code and output, then its verdict (none yet).
            score, max_score = utils.determine_grade(cell)
            cell.outputs = _safe_outputs(cell.outputs)
            cell.metadata = {}
            cells += [cell, nbformat.v4.new_markdown_cell(f"**{tr(_verdict(score, max_score))}**"
                                                          + (tr(" (no answer)") if score == 0 else ""))]
        elif cell.cell_type == "markdown" and meta.get("grade"):
            # A written answer: shown as written (pasted images included), with its verdict.
            score, max_score = utils.determine_grade(cell)
            cell.metadata = {}
            cells += [cell, nbformat.v4.new_markdown_cell(f"**{tr(_verdict(score, max_score))}**"
                                                          + (tr(" (no answer)") if score == 0 else ""))]
        elif cell.cell_type == "code" and meta.get("grade"):
            score, max_score = utils.determine_grade(cell)
            errors = [o for o in cell.outputs if o.output_type == "error"]
            verdict = tr(_verdict(score, max_score))
            message = "\n".join(f"{e.ename}: {tr(e.evalue)}" for e in errors)
            test = nbformat.v4.new_code_cell(tr(f"# Test: {_behaviour(cell.source)}"))
            report = _text(f"{verdict}\n{message}".strip())
            test.outputs = [nbformat.v4.new_output("stream", name="stdout", text=report)]
            cells.append(test)
        elif cell.cell_type == "code":
            cell.outputs = _safe_outputs(cell.outputs)
            cell.metadata = {}
            cells.append(cell)
        else:
            if cell.cell_type != "markdown":
                cell.pop("attachments", None)
            cell.metadata = {}
            cells.append(cell)
    nb.cells = cells
    return nb


# No script, frame, object, form or request of any kind; inline styles (the lab theme) and images only.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
                           "base-uri 'none'; form-action 'none'")
# nbconvert's lab page with its script blocks left empty and the policy first in <head>.
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head -%}
<meta http-equiv="Content-Security-Policy" content="{policy}">
{{ super() }}
{%- endblock html_head -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block data_javascript -%}{%- endblock data_javascript -%}
{%- block data_widget_view -%}{%- endblock data_widget_view -%}
""".replace("{policy}", CONTENT_SECURITY_POLICY)


@functools.cache
def _exporter() -> HTMLExporter:
    # Built once: loading the templates costs ten times more than rendering one notebook.
    return HTMLExporter(template_name="lab", template_file="feedback.html.j2",
                        extra_loaders=[jinja2.DictLoader({"feedback.html.j2": _TEMPLATE})],
                        filters={"clean_html": clean_html}, sanitize_html=True, embed_images=False,
                        exclude_input_prompt=True, exclude_output_prompt=True)


def render(nb: nbformat.NotebookNode) -> str:
    body, _ = _exporter().from_notebook_node(nb)
    return body


def _declared_language(nb: nbformat.NotebookNode) -> str:
    declared = nb.metadata.get("course", {})
    language = declared.get("language") if isinstance(declared, dict) else None
    return language if language in course.EDITIONS else SOURCE_LANGUAGE


def write(path: Path, autograded: Path | None, title: str, score: float, max_score: float, status: str,
          detail: str, needs_manual_grade: bool = False, late_penalty: float = 0.0,
          language: str | None = None) -> None:
    """The feedback page at `path`, in `language` (None: the one the graded notebook declares, else English)."""
    nb = nbformat.read(autograded, as_version=4) if autograded is not None and autograded.exists() else None
    language = language or (_declared_language(nb) if nb is not None else SOURCE_LANGUAGE)

    def tr(text: str) -> str:
        return messages.translate(text, language)

    header = tr(f"# {title}\n\n**Score: {score:g} / {max_score:g}**")
    if late_penalty:
        header += tr(f" (after a late penalty of {late_penalty:g} points)")
    if needs_manual_grade:
        header += tr("\n\nSome answers are graded by hand and are not graded yet: this score can still rise.")
    if status != Status.OK:
        header += tr(f"\n\n**Status: {status}**. {detail}")
    elif detail:
        header += "\n\n" + tr(detail)
    header = html.escape(header, quote=False)  # markdown, but nothing of a title or a detail is a tag
    if nb is not None:
        english = course.EXERCISES / autograded.parent.name / autograded.name
        released = None
        if language != SOURCE_LANGUAGE and english.exists():
            released = handin.translated_releases(autograded.stem, notebooks.read(english)).get(language)
        nb = feedback_notebook(nb, header, language, released)
        # The notebook's own links ("Prerequisites: Lecture 01") are relative to where it was released.
        where = english if released is None else edition.published_path(language, english)
        page, _ = book.relink(render(nb), where, {})
    else:
        page = render(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(header)]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
