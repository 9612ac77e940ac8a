"""Does a feedback page render the notebook's markdown as HTML while nothing a student wrote can run,
embed another page or load anything? (String level; tests/browser/test_feedback_browser.py opens
the same page in Chromium.)"""

import base64
import struct
import zlib
from html.parser import HTMLParser

import nbformat
import pytest

from grader.autograde import feedback

HEADING = "Feedback heading"
MARKDOWN = f"""# {HEADING}

A paragraph with `inline_code()` and **bold** words.

- first item
- second item

| column | value |
|---|---|
| alpha | 1 |

![a red square]({{png}})

![remote badge](https://example.invalid/badge.svg)
"""
HOSTILE_MARKDOWN = """<script>alert(1)</script>

<img src=x onerror=alert(2)>

[click me](javascript:alert(3)) and <a href="jav&#x09;ascript:alert(4)">raw link</a>

<iframe src="https://example.invalid/"></iframe><object data="https://example.invalid/x"></object>

<style>.student-rule { display: none }</style>

<div onclick="alert(5)" style="color: red">a styled div</div>
"""
HOSTILE_HTML_OUTPUT = "<script>alert(6)</script><b onmouseover=alert(7)>rich repr</b>"


def png(width: int = 40, height: int = 20, rgb: tuple[int, int, int] = (220, 30, 30)) -> str:
    """A small solid PNG, base64: enough to see that an image is drawn, no imaging library needed."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    raw = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return base64.b64encode(raw).decode()


def hostile_notebook() -> nbformat.NotebookNode:
    """An autograded notebook as a student may hand it in: course markdown (heading, paragraph, inline
    code, list, table, images) and script hidden in markdown, a raw cell, an HTML output and metadata."""
    outputs = [
        nbformat.v4.new_output("execute_result", execution_count=1,
                               data={"text/html": HOSTILE_HTML_OUTPUT, "text/plain": "plain repr"}),
        nbformat.v4.new_output("display_data", data={"image/png": png(rgb=(30, 30, 220)), "text/plain": "<Figure>"}),
    ]
    code = nbformat.v4.new_code_cell("show()", execution_count=1, outputs=outputs)
    test = nbformat.v4.new_code_cell('"""Check that make_grid counts row by row"""\ncheck(make_grid)',
                                     metadata={"nbgrader": {"grade": True, "grade_id": "test_a", "points": 2,
                                                            "solution": False, "locked": True}},
                                     outputs=[nbformat.v4.new_output("error", ename="AssertionError",
                                                                     evalue="expected float32", traceback=[])])
    raw = nbformat.v4.new_raw_cell("<script>alert(8)</script><p>raw text</p>")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(MARKDOWN.replace("{png}", "data:image/png;base64," + png())),
        nbformat.v4.new_markdown_cell(HOSTILE_MARKDOWN), code, test, raw])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    return nb


class _Elements(HTMLParser):
    """Every element of a page as (tag, attributes), and the text inside each <style>."""

    def __init__(self):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def parse(page: str) -> _Elements:
    parser = _Elements()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def page() -> str:
    return feedback.render(feedback.feedback_notebook(hostile_notebook(), "# Feedback for alice\n\n**Score: 0 / 2**"))


def test_markdown_renders_as_html_not_as_text(page):
    """Do headings, paragraphs, code, lists, tables and inline images come out as elements, none escaped?"""
    for escaped in ("&lt;h1", "&lt;h2", "&lt;p&gt;", "&lt;img", "&lt;table", "&lt;li"):
        assert escaped not in page, f"markdown shows as text: {escaped!r} is in the page"
    tags = [tag for tag, _ in parse(page).elements]
    for tag in ("h1", "p", "code", "ul", "li", "table", "th", "td", "strong"):
        assert tag in tags, f"no <{tag}> in the page"
    assert f'{HEADING}<a class="anchor-link"' in page
    images = [attrs["src"] for tag, attrs in parse(page).elements if tag == "img"]
    assert len(images) == 2 and all(src.startswith("data:image/png;base64,") for src in images), images
    assert "[remote badge]" in page, "an image the page may not load should become its alt text"
    assert "PASSED" not in page and "FAILED: 0 / 2 points" in page and "expected float32" in page


def test_no_student_script_handler_or_embed_survives(page):
    """Is the page free of scripts (the student's and nbconvert's), handlers, javascript: URLs and embeds?"""
    elements = parse(page)
    tags = {tag for tag, _ in elements.elements}
    assert not tags & {"script", "iframe", "object", "embed", "form", "input", "svg", "math"}, tags
    for tag, attrs in elements.elements:
        assert not [name for name in attrs if name.startswith("on")], f"<{tag}> keeps an event handler: {attrs}"
        for name in ("href", "src", "action", "data"):
            value = (attrs.get(name) or "").replace("\t", "").lower()
            assert not value.startswith(("javascript:", "vbscript:")), f"<{tag} {name}={value!r}>"
            assert not (value.startswith("data:") and tag != "img"), f"<{tag} {name}> is a data: URL"
        if tag not in ("meta", "style", "body", "html", "head", "title"):
            assert "style" not in attrs, f"<{tag}> keeps a style attribute from the notebook: {attrs}"
    assert not any("student-rule" in style for style in elements.styles), "a student's <style> reached the page"
    assert "cdnjs" not in page and "widget-state" not in page, "nbconvert's CDN scripts are still linked"
    assert "rich repr" not in page and "plain repr" in page, "an HTML output should fall back to its text"


def test_page_forbids_scripts_and_requests(page):
    """Does the page carry a Content-Security-Policy that allows no script and no request?"""
    metas = [attrs for tag, attrs in parse(page).elements
             if tag == "meta" and attrs.get("http-equiv", "").lower() == "content-security-policy"]
    assert len(metas) == 1, "no Content-Security-Policy"
    policy = metas[0]["content"]
    assert "default-src 'none'" in policy and "script-src" not in policy, policy


@pytest.mark.parametrize(("fragment", "expected"), [
    ('<h2 id="a">Part A</h2><p>text</p>', '<h2 id="a">Part A</h2><p>text</p>'),
    ("<table><tr><td>1</td></tr></table>", "<table><tbody><tr><td>1</td></tr></tbody></table>"),
    ('<img src="x" onerror="alert(1)">', ""),
    ('<img alt="badge" src="https://example.invalid/b.svg">', "[badge]"),
    ('<img alt="svg" src="data:image/svg+xml;base64,PHN2Zz4=">', "[svg]"),
    ('<a href="javascript:alert(1)">x</a>', "<a>x</a>"),
    ('<a href="&#100;ata:text/html,x">x</a>', "<a>x</a>"),
    ('<a href="https://pytorch.org/docs">docs</a>', '<a href="https://pytorch.org/docs">docs</a>'),
    ('<p onclick="alert(1)" style="color: red">q</p>', "<p>q</p>"),
    ("<script>alert(1)</script>", "alert(1)"),
    ('<iframe src="https://example.invalid"></iframe><object data="x"></object><embed src="x">', ""),
    ("<!-- a comment --><b>kept</b>", "<b>kept</b>"),
])
def test_clean_html(fragment, expected):
    """Does the sanitiser keep what markdown renders to and remove what could run or load?"""
    assert feedback.clean_html(fragment) == expected


def test_caps_still_apply():
    """Are long text outputs cut and oversized images (outputs and inline markdown) left out?"""
    big_png = "A" * (feedback.MAX_IMAGE_BASE64 + 1)
    cell = nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="y" * (feedback.MAX_TEXT * 3)),
        nbformat.v4.new_output("display_data", data={"image/png": big_png})])
    markdown = nbformat.v4.new_markdown_cell(f"![huge](data:image/png;base64,{big_png})")
    page = feedback.render(feedback.feedback_notebook(nbformat.v4.new_notebook(cells=[cell, markdown]), "# t"))
    assert "more characters cut" in page and "y" * (feedback.MAX_TEXT + 1) not in page
    assert big_png not in page and "[huge]" in page
    assert len(page) < 1_000_000


def test_answers_graded_by_hand_await_a_person():
    """Does a page with answers graded by hand (a written answer with a pasted image, a code answer) render,
    each marked as waiting for a person, the image shown, where it used to stop the run with a TypeError?"""
    meta = {"grade": True, "solution": True, "locked": False, "points": 2, "grade_id": "explain",
            "schema_version": 3, "checksum": "not the answer's"}
    written = nbformat.v4.new_markdown_cell("My plot:\n\n![plot](attachment:plot.png)", metadata={"nbgrader": meta})
    written["attachments"] = {"plot.png": {"image/png": png()}}
    code = nbformat.v4.new_code_cell("answer = 42", metadata={"nbgrader": {**meta, "grade_id": "code", "points": 3}})
    page = feedback.render(feedback.feedback_notebook(nbformat.v4.new_notebook(cells=[written, code]), "# t"))
    assert "TO BE GRADED BY HAND: ? / 2 points" in page and "TO BE GRADED BY HAND: ? / 3 points" in page
    assert 'src="data:image/png;base64,' in page and ">answer<" in page


def test_the_notebooks_own_links_lead_somewhere(tmp_path):
    """Do the exercise's links ("Prerequisites: Lecture 01") open the lecture from the students' repository,
    instead of pointing at a file beside the feedback page that does not exist?"""
    from grader import course, notebooks

    graded = tmp_path / "autograded" / "alice" / "01_tensors" / "01_tensors.ipynb"
    graded.parent.mkdir(parents=True)
    graded.write_bytes((course.EXERCISES / "01_tensors" / "01_tensors.ipynb").read_bytes())
    page_path = tmp_path / "feedback" / "alice.html"
    feedback.write(page_path, graded, "01_tensors: feedback for alice", 0, 10, "ok", "")
    page = page_path.read_text()
    assert 'href="../' not in page, "a relative link that leads nowhere from the feedback page"
    assert f'href="{notebooks.colab_url(course.LECTURES / "01_tensors.ipynb")}"' in page
