"""Does a student's feedback page read right in Chromium: markdown drawn as headings, lists, tables
and images, and nothing the student wrote (script, handler, javascript: link, HTML output) able to
run or to load anything?"""

import re

import nbformat
import pytest
from test_feedback import HEADING, hostile_notebook

from grader.autograde import feedback

pytestmark = pytest.mark.browser

EVENT_HANDLERS = "() => [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]" \
                 ".filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name))"
DRAWN_IMAGES = "() => [...document.images].filter(i => i.complete && i.naturalWidth > 0).length"


@pytest.fixture
def feedback_page(tmp_path):
    """The feedback page of a hand-in carrying course markdown and hostile content, as the grader writes it."""
    autograded = tmp_path / "autograded" / "01_tensors.ipynb"
    autograded.parent.mkdir()
    nbformat.write(hostile_notebook(), autograded)
    page = tmp_path / "feedback" / "alice" / "01_tensors" / "01_tensors.html"
    feedback.write(page, autograded, "01_tensors / 01_tensors: feedback for alice", 0, 2, "ok", "")
    return page


def test_feedback_page_renders_markdown_and_runs_nothing(page, feedback_page, artifacts):
    """Opened in Chromium: is the markdown real HTML, and does no dialog, script or request happen?"""
    dialogs, requests = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: requests.append(request.url))
    page.route(re.compile(r"^(https?|wss?|ftp):"), lambda route: route.abort())
    page.goto(feedback_page.as_uri(), wait_until="load")
    page.wait_for_timeout(500)  # a handler or a late script would have fired by now
    page.screenshot(path=artifacts / "feedback.png", full_page=True)

    text = page.inner_text("body")
    for shown in ("<h1", "<h2", "<p>", "&lt;", "<img", "<table", "<li", "<script", "<iframe"):
        assert shown not in text, f"the page shows {shown!r} as text"
    heading = page.locator("h1, h2", has_text=HEADING)
    assert heading.count() == 1 and heading.evaluate("e => e.tagName") == "H1", "the markdown heading is no <h1>"
    assert page.locator("li").all_inner_texts() == ["first item", "second item"]
    assert page.locator("td").all_inner_texts() == ["alpha", "1"]
    assert page.locator("p code", has_text="inline_code()").count() == 1
    assert page.evaluate(DRAWN_IMAGES) == 2, "the markdown image and the output image should both be drawn"
    assert "FAILED: 0 / 2 points" in text and "[remote badge]" in text

    assert not dialogs, f"a student's script ran: {dialogs}"
    assert page.locator("script").count() == 0, "the page holds a <script>"
    assert page.locator("iframe, object, embed, form").count() == 0
    assert page.evaluate(EVENT_HANDLERS) == []
    assert page.locator("a[href*='script:' i]").count() == 0, "a javascript: link survived"
    assert page.locator("b", has_text="rich repr").count() == 0, "a text/html output was rendered"
    assert page.evaluate("getComputedStyle(document.body).display") != "none"
    assert requests == [feedback_page.as_uri()], f"viewing the feedback made requests: {requests}"
