"""Does `python -m grader book` render every executed lecture, figures included, behind a syllabus?"""

import html
import re
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from grader import book, course, notebooks, student_repo

_BUILT: dict[str, Path] = {}
_STDERR_BLOCK = re.compile(
    r'<div class="[^"]*jp-OutputArea-output[^"]*" data-mime-type="application/vnd\.jupyter\.stderr"[^>]*>(.*?)</div>',
    re.S)
_PNG = re.compile(r'<img[^>]+src="data:image/png;base64,')
# A notebook or file on GitHub, opened in Colab or browsed: (owner/name, branch, path).
_REPOSITORY_URL = re.compile(r"^https://(?:colab\.research\.google\.com/github|github\.com)/([^/]+/[^/]+)/(?:blob|tree)/"
                             r"([^/]+)/([^?#]*)")


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


class _Urls(HTMLParser):
    """Every URL a page links or loads (href and src of any element), and the ids it defines."""

    def __init__(self):
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.urls.append((tag, value))
            elif name == "id" and value:
                self.ids.add(value)


def _parse(page: Path) -> _Urls:
    parser = _Urls()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_relink_points_lectures_at_pages_and_the_rest_at_the_students_repository():
    """Is a lecture's link to an exercise, a lecture or a folder rewritten to what the book can reach,
    and a link to what students never get (solutions/, a missing file) or an image the page would
    load from a file reported and left alone?"""
    pages = {path.resolve(): f"{path.stem}.html" for path in course.lecture_paths()}
    source = course.LECTURES / "05_training_loop.ipynb"
    exercise = course.EXERCISES / "05_training_loop" / "05_training_loop.ipynb"
    links = ['<a href="../exercises/05_training_loop/05_training_loop.ipynb">exercise</a>',
             '<a href="04_data.ipynb#Part-A">lecture</a>', '<a href="index.html">syllabus</a>',
             '<a href="#Objectives">anchor</a>', '<a href="https://pytorch.org/docs/">docs</a>',
             '<a href="../exercises/05_training_loop">folder</a>',
             '<a href="../solutions/05_training_loop/05_training_loop.ipynb">solution</a>', '<img src="gone.png"/>',
             '<img src="../exercises/05_training_loop/05_training_loop.ipynb"/>']
    page, broken = book.relink("<p>" + " ".join(links) + "</p>", source, pages)
    hrefs = re.findall(r'(?:href|src)="([^"]*)"', page)
    assert hrefs == [notebooks.colab_url(exercise), "04_data.html#Part-A", "index.html", "#Objectives",
                     "https://pytorch.org/docs/",
                     f"https://github.com/{course.STUDENT_REPOSITORY}/tree/{course.STUDENT_BRANCH}/exercises/05_training_loop",
                     "../solutions/05_training_loop/05_training_loop.ipynb", "gone.png",
                     "../exercises/05_training_loop/05_training_loop.ipynb"]
    assert broken == ["../solutions/05_training_loop/05_training_loop.ipynb", "gone.png",
                      "../exercises/05_training_loop/05_training_loop.ipynb"]


@pytest.mark.notebook
def test_every_link_in_the_book_resolves(index):
    """Does every relative link of the book open a file of the book (and its anchor), every link to a
    course notebook on GitHub or Colab name the students' repository and a file it has, and each
    lecture's link to its exercise survive as such a link?"""
    pages = sorted(index.parent.glob("*.html"))
    ids = {page.name: _parse(page).ids for page in pages}
    for page in pages:
        for tag, value in _parse(page).urls:
            url = urllib.parse.urlsplit(value)
            where = f"{page.name}: <{tag}> {value[:120]}"
            if url.scheme in ("http", "https"):
                found = _REPOSITORY_URL.match(value)
                if found or "colab.research.google.com/github/" in value:
                    assert found, f"{where}: not a notebook of a repository"
                    repository, branch, path = found.groups()
                    if repository.split("/")[0] == course.STUDENT_REPOSITORY.split("/")[0] or path.startswith(
                            ("lectures/", "exercises/")):
                        assert (repository, branch) == (course.STUDENT_REPOSITORY, course.STUDENT_BRANCH), where
                        given_as_is = {f.relative_to(course.ROOT).as_posix() for f in student_repo.AS_IS}
                        assert path.startswith(("lectures/", "exercises/")) or path in given_as_is, (
                            f"{where}: students get no such file")
                        assert (course.ROOT / urllib.parse.unquote(path)).exists(), f"{where}: no such file"
                continue
            assert not url.scheme or url.scheme in ("data", "mailto"), where
            if url.scheme:
                continue
            target = (page.parent / urllib.parse.unquote(url.path)).resolve() if url.path else page
            assert target.is_file() and target.parent == index.parent, f"{where}: no such file in the book"
            if url.fragment and target.suffix == ".html":
                assert {url.fragment, urllib.parse.unquote(url.fragment)} & ids[target.name], f"{where}: no such anchor"
    for lecture in course.lecture_paths():
        source = "\n".join(c.source for c in nbformat.read(lecture, as_version=4).cells if c.cell_type == "markdown")
        page = index.parent / f"{lecture.stem}.html"
        hrefs = [value for _, value in _parse(page).urls]
        for exercise in re.findall(r"\]\((\.\./exercises/[^)#]+\.ipynb)\)", source):
            colab = notebooks.colab_url((lecture.parent / exercise).resolve())
            assert colab in hrefs, f"{page.name} lost the link to {exercise}: expected {colab}"
