"""Does `python -m grader book` render every executed lecture, figures included, behind a syllabus?"""

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from grader import book, course

_BUILT: dict[str, Path] = {}
_STDERR_BLOCK = re.compile(
    r'<div class="[^"]*jp-OutputArea-output[^"]*" data-mime-type="application/vnd\.jupyter\.stderr"[^>]*>(.*?)</div>',
    re.S)
_PNG = re.compile(r'<img[^>]+src="data:image/png;base64,')


def book_once(tmp_path_factory) -> Path:
    """Build the book once per test session (the browser tests open the same one); its index.html."""
    if "index" not in _BUILT:
        _BUILT["index"] = book.build(tmp_path_factory.mktemp("book"))
    return _BUILT["index"]


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href")
        if tag == "a" and href and not href.startswith(("http:", "https:", "#")):
            self.hrefs.append(href)


def local_links(page: Path) -> list[str]:
    """The links of a page to other pages of the book, in order, without repeats."""
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return list(dict.fromkeys(parser.hrefs))


def draws_figures(lecture: Path) -> bool:
    """Does the lecture's code draw with matplotlib?"""
    nb = nbformat.read(lecture, as_version=4)
    return any(re.search(r"\bplt\.|\.plot\(|\bimshow\(", cell.source) for cell in nb.cells if cell.cell_type == "code")


def error_outputs(page_html: str) -> list[str]:
    """Error outputs on a rendered page: stderr blocks holding a traceback or an exception name
    (a warning or a progress bar on stderr is not an error)."""
    found = []
    for block in _STDERR_BLOCK.findall(page_html):
        text = html.unescape(re.sub(r"<[^>]+>", "", block))
        if "Traceback" in text or re.search(r"\b\w+Error\b", text):
            found.append(text.strip()[:300])
    return found


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return book_once(tmp_path_factory)


@pytest.mark.notebook
def test_index_is_the_syllabus(index):
    """Does the index link every lecture, in order, under its title, with its learning objectives?"""
    page = index.read_text(encoding="utf-8")
    lectures = course.lecture_paths()
    assert local_links(index) == [f"{path.stem}.html" for path in lectures]
    for path in lectures:
        entry = book.syllabus_entry(path)
        assert html.escape(entry.title, quote=False) in page, f"the syllabus lacks the title {entry.title!r}"
        assert entry.objectives, f"{path.name} has no '**Learning objectives.**' list in its opening markdown"
        first_words = re.sub(r"[`*_]", "", entry.objectives[0]).split()[:3]
        assert " ".join(first_words) in re.sub(r"<[^>]+>", "", page), f"objectives of {path.name} not listed"


@pytest.mark.notebook
@pytest.mark.parametrize("lecture", course.lecture_paths(), ids=lambda p: p.stem)
def test_lecture_page_shows_outputs_and_figures(index, lecture):
    """Does each lecture's page exist, show its figures as embedded images, and hold no error output?"""
    page_path = index.parent / f"{lecture.stem}.html"
    assert page_path.is_file(), f"the index links {page_path.name}, which was not written"
    page = page_path.read_text(encoding="utf-8")
    assert "jp-OutputArea-output" in page, f"{page_path.name} shows no outputs: was the lecture executed?"
    if draws_figures(lecture):
        assert _PNG.search(page), f"{lecture.name} draws figures but {page_path.name} embeds no image"
    assert "Traceback" not in page and not error_outputs(page), f"{page_path.name}: {error_outputs(page)}"
    assert "index.html" in local_links(page_path), f"{page_path.name} has no link back to the syllabus"
