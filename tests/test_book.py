"""Does `python -m grader book` render every executed lecture, figures included, behind a syllabus, in English
and in Spanish, each page linking the same page in the other edition?"""

import html
import re
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from grader import book, course, notebooks, student_repo
from grader.translation import edition

_BUILT: dict[str, Path] = {}
_STDERR_BLOCK = re.compile(
    r'<div class="[^"]*jp-OutputArea-output[^"]*" data-mime-type="application/vnd\.jupyter\.stderr"[^>]*>(.*?)</div>',
    re.S)
_PNG = re.compile(r'<img[^>]+src="data:image/png;base64,')
# A notebook or file on GitHub, opened in Colab or browsed: (owner/name, branch, path).
_REPOSITORY_URL = re.compile(r"^https://(?:colab\.research\.google\.com/github|github\.com)/([^/]+/[^/]+)/(?:blob|tree)/"
                             r"([^/]+)/([^?#]*)")


SPANISH = "es"
SPANISH_LECTURES = sorted((edition.root(SPANISH) / "lectures").glob("[0-9][0-9]_*.ipynb"))
# The Spanish book is built from its two shortest lectures (a few seconds each), not all seven again: they
# have figures, links to their exercises and to each other, and leave English pages whose Spanish page is
# not built (those link the Spanish syllabus). Every Spanish lecture runs in tests/test_spanish.py.
SPANISH_BUILT = SPANISH_LECTURES[:2]


def book_once(tmp_path_factory) -> Path:
    """Build the book once per test session (the browser tests open the same one): every English lecture and
    SPANISH_BUILT; the English index.html."""
    if "index" not in _BUILT:
        _BUILT["index"] = book.build(tmp_path_factory.mktemp("book"), lectures=course.lecture_paths() + SPANISH_BUILT)
    return _BUILT["index"]


def edition_index(index: Path, language: str) -> Path:
    return index if language == book.ENGLISH else index.parent / language / book.INDEX


def built_lectures(language: str) -> list[Path]:
    return course.lecture_paths() if language == book.ENGLISH else SPANISH_BUILT


def lecture_id(lecture: Path) -> str:
    """`01_tensors` for an English lecture (as before there was a Spanish book), `es-01_tensors` for a Spanish one."""
    return f"{SPANISH}-{lecture.stem}" if lecture in SPANISH_LECTURES else lecture.stem


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.editions: dict[str, str] = {}  # language -> href of each link to another edition (hreflang)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        href = attributes.get("href")
        if tag != "a" or not href or href.startswith(("http:", "https:", "#")):
            return
        if attributes.get("hreflang"):
            self.editions[attributes["hreflang"]] = href
        else:
            self.hrefs.append(href)


def _links(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def local_links(page: Path) -> list[str]:
    """The links of a page to other pages of its edition's book, in order, without repeats."""
    return list(dict.fromkeys(_links(page).hrefs))


def edition_links(page: Path) -> dict[str, str]:
    """The links of a page to the other editions of the book: language -> href."""
    return _links(page).editions


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


@pytest.mark.parametrize("lecture", course.lecture_paths() + SPANISH_LECTURES, ids=lecture_id)
def test_every_lecture_has_a_title_and_objectives_in_its_language(lecture):
    """Does each lecture, English or Spanish, open with a `# ` title and its objectives under its language's
    label ("**Learning objectives.**", "**Objetivos de aprendizaje.**"), as the syllabus reads them?"""
    entry = book.syllabus_entry(lecture)
    label = book.WORDING[entry.language].objectives_label
    assert entry.language == (SPANISH if lecture in SPANISH_LECTURES else book.ENGLISH), entry.language
    assert entry.title != lecture.stem.replace("_", " "), f"{lecture.name} has no `# ` title in its opening markdown"
    assert entry.objectives, f"{edition.relative(lecture)} has no '**{label}.**' list in its opening markdown"


@pytest.mark.notebook
@pytest.mark.parametrize("language", [book.ENGLISH, SPANISH])
def test_index_is_the_syllabus(index, language):
    """Does each edition's index, in its language, link every lecture, in order, under its title (as the
    lecture of that language writes it), with its learning objectives?"""
    index = edition_index(index, language)
    page = index.read_text(encoding="utf-8")
    lectures = built_lectures(language)
    assert f'<html lang="{language}">' in page
    assert f"<title>{html.escape(book.WORDING[language].title, quote=False)}</title>" in page
    assert local_links(index) == [f"{path.stem}.html" for path in lectures]
    for path in lectures:
        entry = book.syllabus_entry(path)
        assert html.escape(entry.title, quote=False) in page, f"the syllabus lacks the title {entry.title!r}"
        first_words = re.sub(r"[`*_]", "", entry.objectives[0]).split()[:3]
        assert " ".join(first_words) in re.sub(r"<[^>]+>", "", page), f"objectives of {path.name} not listed"


def _page_of(index: Path, lecture: Path) -> Path:
    """The page a lecture's notebook becomes, in its edition's folder."""
    language = SPANISH if lecture in SPANISH_LECTURES else book.ENGLISH
    return edition_index(index, language).parent / f"{lecture.stem}.html"


@pytest.mark.notebook
@pytest.mark.parametrize("lecture", course.lecture_paths() + SPANISH_BUILT, ids=lecture_id)
def test_lecture_page_shows_outputs_and_figures(index, lecture):
    """Does each lecture's page, English or Spanish, exist, show its figures as embedded images, and hold no
    error output?"""
    page_path = _page_of(index, lecture)
    assert page_path.is_file(), f"the index links {page_path.name}, which was not written"
    page = page_path.read_text(encoding="utf-8")
    assert "jp-OutputArea-output" in page, f"{page_path.name} shows no outputs: was the lecture executed?"
    if draws_figures(lecture):
        assert _PNG.search(page), f"{lecture.name} draws figures but {page_path.name} embeds no image"
    assert "Traceback" not in page and not error_outputs(page), f"{page_path.name}: {error_outputs(page)}"
    assert "index.html" in local_links(page_path), f"{page_path.name} has no link back to the syllabus"


def book_pages(index: Path) -> list[Path]:
    """Every page of the book, both editions."""
    return sorted(index.parent.glob("*.html")) + sorted((index.parent / SPANISH).glob("*.html"))


@pytest.mark.notebook
def test_every_page_links_the_same_page_in_the_other_edition(index):
    """Does every page, index included, link the page of the same name in the other edition (its syllabus
    where that edition lacks the lecture), with the link opening a page that links back?"""
    english, spanish = index.parent, index.parent / SPANISH
    spanish_pages = {page.name for page in spanish.glob("*.html")}
    assert spanish_pages == {book.INDEX, *(f"{path.stem}.html" for path in SPANISH_BUILT)}, spanish_pages
    for page in book_pages(index):
        language, other_language, other_folder = ((SPANISH, book.ENGLISH, english) if page.parent == spanish
                                                  else (book.ENGLISH, SPANISH, spanish))
        links = edition_links(page)
        where = f"{page.relative_to(english)}"
        assert list(links) == [other_language], f"{where} links these editions: {links}"
        target = (page.parent / links[other_language]).resolve()
        expected = other_folder / (page.name if (other_folder / page.name).is_file() else book.INDEX)
        assert target == expected.resolve(), f"{where} links {links[other_language]}, expected {expected}"
        if target.name == page.name:
            back = (target.parent / edition_links(target)[language]).resolve()
            assert back == page.resolve(), f"{target.relative_to(english)} does not link back to {where}"


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


def test_relink_points_a_spanish_lecture_at_spanish_pages_and_the_spanish_exercise():
    """In a Spanish lecture, does a link to its exercise open the Spanish exercise (es/exercises/...) from
    the students' repository, a link to another Spanish lecture its Spanish page, a file both editions share
    (READING.md) its GitHub page, and a link to a page of the other edition stay?"""
    source = edition.root(SPANISH) / "lectures" / "01_tensors.ipynb"
    english_pages = {path.resolve(): f"../{path.stem}.html" for path in course.lecture_paths()}
    pages = english_pages | {path.resolve(): f"{path.stem}.html" for path in SPANISH_LECTURES}
    links = ['<a href="../exercises/01_tensors/01_tensors.ipynb">ejercicio</a>',
             '<a href="02_autograd.ipynb">clase</a>', '<a href="../../READING.md">lecturas</a>',
             '<a href="../01_tensors.html">English</a>',
             '<a href="../index.html">English</a>', '<a href="../../solutions/01_tensors/01_tensors.ipynb">x</a>']
    page, broken = book.relink("<p>" + " ".join(links) + "</p>", source, pages, frozenset({"../index.html"}))
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs == [notebooks.colab_url(edition.root(SPANISH) / "exercises" / "01_tensors" / "01_tensors.ipynb"),
                     "02_autograd.html",
                     f"https://github.com/{course.STUDENT_REPOSITORY}/blob/{course.STUDENT_BRANCH}/READING.md",
                     "../01_tensors.html", "../index.html", "../../solutions/01_tensors/01_tensors.ipynb"]
    assert "/es/exercises/01_tensors/01_tensors.ipynb" in hrefs[0]
    assert broken == ["../../solutions/01_tensors/01_tensors.ipynb"]


@pytest.mark.notebook
def test_every_link_in_the_book_resolves(index):
    """Does every relative link of the book open a file of the book (and its anchor), every link to a
    course notebook on GitHub or Colab name the students' repository and a file it has, and each
    lecture's link to its exercise survive as such a link?"""
    pages = book_pages(index)
    ids = {page.resolve(): _parse(page).ids for page in pages}
    given = ("lectures/", "exercises/", *(f"{language}/" for language in course.EDITIONS))
    for page in pages:
        for tag, value in _parse(page).urls:
            url = urllib.parse.urlsplit(value)
            where = f"{page.relative_to(index.parent)}: <{tag}> {value[:120]}"
            if url.scheme in ("http", "https"):
                found = _REPOSITORY_URL.match(value)
                if found or "colab.research.google.com/github/" in value:
                    assert found, f"{where}: not a notebook of a repository"
                    repository, branch, path = found.groups()
                    if repository.split("/")[0] == course.STUDENT_REPOSITORY.split("/")[0] or path.startswith(given):
                        assert (repository, branch) == (course.STUDENT_REPOSITORY, course.STUDENT_BRANCH), where
                        given_as_is = {f.relative_to(course.ROOT).as_posix() for f in student_repo.AS_IS}
                        assert path.startswith(given) or path in given_as_is, (
                            f"{where}: students get no such file")
                        assert (course.ROOT / urllib.parse.unquote(path)).exists(), f"{where}: no such file"
                continue
            assert not url.scheme or url.scheme in ("data", "mailto"), where
            if url.scheme:
                continue
            target = (page.parent / urllib.parse.unquote(url.path)).resolve() if url.path else page.resolve()
            assert target in ids, f"{where}: no such page in the book"
            if url.fragment:
                assert {url.fragment, urllib.parse.unquote(url.fragment)} & ids[target], f"{where}: no such anchor"
    for lecture in course.lecture_paths() + SPANISH_BUILT:
        source = "\n".join(c.source for c in nbformat.read(lecture, as_version=4).cells if c.cell_type == "markdown")
        page = _page_of(index, lecture)
        hrefs = [value for _, value in _parse(page).urls]
        for exercise in re.findall(r"\]\((\.\./exercises/[^)#]+\.ipynb)\)", source):
            colab = notebooks.colab_url((lecture.parent / exercise).resolve())
            assert colab in hrefs, f"{page.name} lost the link to {exercise}: expected {colab}"
