"""The course book: every lecture executed and rendered to static HTML, with a syllabus page, in English
and in each translated edition (course.EDITIONS: `es/lectures/...` becomes the Spanish book in `es/`).

`build()` runs each lecture top to bottom in a fresh kernel in an empty temporary folder (headless:
matplotlib's inline backend draws figures into the outputs, no display needed), then renders it
with nbconvert's HTMLExporter, figures embedded, into one page per lecture. The index page is
itself a notebook of markdown rendered by the same exporter: each lecture's title and learning
objectives, read from its opening markdown, and a link to its page.
Committed notebooks stay clean; the executed results are published here instead.

Each edition's pages sit in their own folder (English at the book's root, Spanish in `es/`) under the same
names, and every page, index included, links to the same page in each other edition (to that edition's
syllabus where it lacks the lecture). What the book itself says (its title, the syllabus's words) is in
WORDING, one entry per language; the lectures bring their own text.

A lecture's relative links are written for the repository (`../exercises/05_training_loop/...`), where
they work in JupyterLab; in the book each one is rewritten to what the book can reach: the page of a
lecture, or the notebook in the students' repository (course.STUDENT_REPOSITORY), opened in Colab
like the badges. A link the students' repository cannot serve (solutions/, a missing file) is an error.
"""

import os
import posixpath
import re
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
from bs4 import BeautifulSoup
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from grader import course, execute, notebooks
from grader.translation import edition

INDEX = "index.html"
# Headless and still drawing: the kernel's inline backend renders each figure to a PNG output.
# (MPLBACKEND=Agg, which the test suite sets, would drop every figure from the book.)
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
ENGLISH = "en"
_HEADING = re.compile(r"^#\s+(.+?)\s*$", re.M)
# The bullets after a lecture's objectives label ("**Learning objectives.**"), wrapped lines included.
_OBJECTIVES = r"^\*\*{label}\.?\*\*.*?$\n((?:[ \t]*[-*] .*(?:\n|$)|[ \t]+\S.*(?:\n|$))+)"


@dataclass(frozen=True)
class Wording:
    """What the book itself says in one language."""
    name: str  # the language's name in itself: the text of the links to this edition
    title: str
    introduction: str
    syllabus: str
    after_the_lecture: str  # introduces a lecture's objectives on the syllabus
    objectives_label: str  # how the language's lectures label their objectives, as the edition writes it


WORDING = {
    ENGLISH: Wording(
        name="English",
        title="Intro to PyTorch: the course book",
        introduction="Every lecture below was run top to bottom, on a CPU, when this book was built: the pages show "
        "its outputs and figures. To run a lecture yourself, open it in JupyterLab or use the *Open in Colab* badge "
        "at its top.",
        syllabus="Syllabus",
        after_the_lecture="After this lecture you can:",
        objectives_label="Learning objectives",
    ),
    "es": Wording(
        name="Español",
        title="Introducción a PyTorch: el libro del curso",
        introduction="Cada clase de esta lista se ejecutó de principio a fin, en una CPU, al generar este libro: sus "
        "páginas muestran los resultados y los gráficos. Para ejecutar una clase tú mismo, ábrela en JupyterLab o usa "
        "la insignia *Open in Colab* de su comienzo.",
        syllabus="Programa",
        after_the_lecture="Después de esta clase puedes:",
        objectives_label="Objetivos de aprendizaje",
    ),
}


class BookError(RuntimeError):
    """A lecture raised or links what the book cannot reach (its page is still written, error and all)."""


@dataclass
class Lecture:
    path: Path
    title: str
    objectives: list[str]
    page: str  # file name of its page, next to its edition's index.html
    language: str = ENGLISH
    seconds: float = 0.0
    errors: tuple = ()
    broken_links: tuple = ()

    @property
    def name(self) -> str:
        """How the build's report names it: `01_tensors.ipynb`, or `es/01_tensors.ipynb` for a translation."""
        return self.path.name if self.language == ENGLISH else f"{self.language}/{self.path.name}"


def _opening_markdown(nb: nbformat.NotebookNode) -> list[str]:
    """The markdown cells before the first code cell, the Colab badge left out."""
    opening = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            break
        if cell.cell_type == "markdown" and cell.metadata.get("course", {}).get("role") != notebooks.BADGE_MARKER:
            opening.append(cell.source)
    return opening


def language_of(nb: nbformat.NotebookNode) -> str:
    """The language a translated notebook records (`metadata.course.language`); English otherwise."""
    return nb.metadata.get("course", {}).get("language", ENGLISH)


def syllabus_entry(path: Path) -> Lecture:
    """A lecture's title (its first `# ` heading) and learning objectives (the bullets after
    "**Learning objectives.**", or its language's label), read from its opening markdown cells."""
    nb = nbformat.read(path, as_version=4)
    language = language_of(nb)
    if language not in WORDING:
        raise BookError(f"{path} is in {language!r}, which grader/book.py's WORDING does not speak: add its entry")
    text = "\n\n".join(_opening_markdown(nb))
    heading = _HEADING.search(text)
    title = heading.group(1) if heading else Path(path).stem.replace("_", " ")
    objectives = []
    label = re.escape(WORDING[language].objectives_label)
    found = re.search(_OBJECTIVES.format(label=label), text, re.M)
    if found:
        for line in found.group(1).splitlines():
            if re.match(r"^[ \t]*[-*] ", line):
                objectives.append(re.sub(r"^[ \t]*[-*] ", "", line).strip())
            elif line.strip() and objectives:
                objectives[-1] += " " + line.strip()  # a bullet wrapped onto the next line
    return Lecture(Path(path), title, objectives, f"{Path(path).stem}.html", language)


def student_url(target: Path) -> str | None:
    """Where a file of this repository is in the students' repository: a notebook opens in Colab,
    anything else on GitHub. None for what students do not get (solutions/, grader/, a missing file)."""
    from grader.student_repo import AS_IS  # the files the students' repository copies as they are

    folders = (course.LECTURES, course.EXERCISES, *(edition.root(language) for language in course.EDITIONS))
    given = any(target.is_relative_to(folder) for folder in folders) or target in AS_IS
    if not target.exists() or not given:
        return None
    if target.suffix == ".ipynb":
        return notebooks.colab_url(target)
    kind = "tree" if target.is_dir() else "blob"
    relative = target.relative_to(course.ROOT).as_posix()
    return f"https://github.com/{course.STUDENT_REPOSITORY}/{kind}/{course.STUDENT_BRANCH}/{relative}"


def relink(page: str, source: Path, pages: dict[Path, str],
           book_pages: frozenset[str] = frozenset()) -> tuple[str, list[str]]:
    """Rewrite the relative links of a rendered notebook for the book.

    `source` is the notebook's path in the repository, which its links are relative to; `pages`
    maps each lecture's path to its page in the book, and links already to a page of the book (those
    pages, index.html, and `book_pages`) stay. A link to a lecture goes to its page, one to another
    file of lectures/, exercises/ or an edition (es/) to the students' repository (`student_url`). Returns the
    page and what it could not rewrite, left as it was: a link to anything else, and any image
    still loaded from a file (markdown images are embedded; an HTML <img> in markdown is not).
    """
    soup = BeautifulSoup(page, "html.parser")
    book_pages = {INDEX, *pages.values(), *book_pages}
    broken, changed = [], False
    for tag, attribute in (("a", "href"), ("img", "src")):
        for element in soup.find_all(tag, attrs={attribute: True}):
            url = urllib.parse.urlsplit(element[attribute])
            if url.scheme or url.netloc or not url.path or url.path in book_pages:
                continue  # web, mail, data:, an anchor in the page, or already a page of the book
            target = (source.parent / urllib.parse.unquote(url.path)).resolve()
            new = (pages.get(target) or student_url(target)) if tag == "a" else None
            if new is None:
                broken.append(element[attribute])
            else:
                element[attribute] = new + (f"#{url.fragment}" if url.fragment else "")
                changed = True
    return (str(soup) if changed else page), broken


@dataclass
class Book:
    """One edition's book: its language, its lectures in course order, and the folder its pages go in."""
    language: str
    lectures: list[Lecture]

    @property
    def folder(self) -> str:
        """Relative to the book's root: English at the root, a translation in its language's folder."""
        return "." if self.language == ENGLISH else self.language

    def url(self, page: str, seen_from: "Book") -> str:
        """The link to one of this edition's pages from a page of `seen_from`."""
        return posixpath.relpath(posixpath.join(self.folder, page), seen_from.folder)

    def counterpart(self, page: str, seen_from: "Book") -> str:
        """The link to this edition's page of the same name, or to its syllabus where it has no such page."""
        has_it = page in {lecture.page for lecture in self.lectures}
        return self.url(page if has_it else INDEX, seen_from)


def all_lectures() -> list[Path]:
    """Every lecture of the course, English first, then each edition's translations."""
    translated = [path for language in course.EDITIONS
                  for path in sorted((edition.root(language) / "lectures").glob("[0-9][0-9]_*.ipynb"))]
    return course.lecture_paths() + translated


def _books(entries: list[Lecture]) -> list[Book]:
    """The entries grouped by language into one book each, English first, each book's lectures in course order."""
    languages = list(dict.fromkeys([ENGLISH, *course.EDITIONS, *(entry.language for entry in entries)]))
    books = [Book(language, sorted((e for e in entries if e.language == language), key=lambda e: e.page))
             for language in languages]
    return [book for book in books if book.lectures]


def _edition_links(page: str, current: Book, books: list[Book]) -> str:
    """A paragraph of HTML linking the same page in every other edition ("" if there is none). HTML, to say
    the target's language (hreflang); a block of its own, because nbconvert, embedding images, closes an <a>
    written inline in markdown at once and leaves the link empty."""
    links = [f'<a href="{other.counterpart(page, current)}" hreflang="{other.language}" lang="{other.language}">'
             f'{WORDING[other.language].name}</a>' for other in books if other is not current]
    return f"<p>{' · '.join(links)}</p>" if links else ""


def _exporter(language: str = ENGLISH) -> HTMLExporter:
    exporter = HTMLExporter(template_name="lab")
    exporter.embed_images = True  # markdown images become data URIs: each page stands alone
    exporter.language_code = language  # <html lang="es">: screen readers and browsers read the right language
    return exporter


def _run(lecture: Lecture, timeout: int) -> nbformat.NotebookNode:
    """Execute a lecture as the test suite does (fresh kernel, empty folder, headless); errors are kept."""
    nb = nbformat.read(lecture.path, as_version=4)  # joins sources saved as lists of lines
    with tempfile.TemporaryDirectory(prefix="book-") as scratch:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": scratch}})
        started = time.perf_counter()
        client.execute(env={**os.environ, "MPLBACKEND": INLINE_BACKEND})
    run = execute.Run(lecture.path, nb, time.perf_counter() - started)
    lecture.seconds, lecture.errors = run.seconds, tuple(run.errors())
    return nb


def _page(lecture: Lecture, nb: nbformat.NotebookNode, current: Book, books: list[Book],
          pages: dict[Path, str]) -> str:
    position = current.lectures.index(lecture)
    previous = current.lectures[position - 1] if position > 0 else None
    following = current.lectures[position + 1] if position + 1 < len(current.lectures) else None
    links = [f"[↑ {WORDING[current.language].syllabus}]({INDEX})"]
    if previous:
        links.insert(0, f"[← {previous.title}]({previous.page})")
    if following:
        links.append(f"[{following.title} →]({following.page})")
    other_editions = _edition_links(lecture.page, current, books)
    nav = nbformat.v4.new_markdown_cell("\n\n".join(filter(None, [other_editions, " · ".join(links)])),
                                        metadata={"course": {"role": "book-nav"}})
    nb.cells.insert(0, nav)
    nb.cells.append(nbformat.v4.new_markdown_cell(" · ".join(links)))
    # The lecture's folder: a relative markdown image is embedded from there.
    metadata = {"name": lecture.title, "path": str(lecture.path.resolve().parent)}
    body, _ = _exporter(current.language).from_notebook_node(nb, resources={"metadata": metadata})
    other_indexes = frozenset(other.url(INDEX, current) for other in books)
    body, broken = relink(body, lecture.path.resolve(), pages, other_indexes)
    lecture.broken_links = tuple(broken)
    return body


def _index(current: Book, books: list[Book]) -> str:
    wording = WORDING[current.language]
    other_editions = _edition_links(INDEX, current, books)
    lines = [other_editions, ""] if other_editions else []
    lines += [f"# {wording.title}", "", wording.introduction, "", f"## {wording.syllabus}"]
    for lecture in current.lectures:
        lines += ["", f"### [{lecture.title}]({lecture.page})", ""]
        if lecture.objectives:
            lines += [wording.after_the_lecture, ""] + [f"- {objective}" for objective in lecture.objectives]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("\n".join(lines))])
    nb.metadata.update(course.NOTEBOOK_METADATA)
    body, _ = _exporter(current.language).from_notebook_node(nb, resources={"metadata": {"name": wording.title}})
    return body


def build(out: Path = Path("_build/book"), lectures: list[Path] | None = None, workers: int = 2,
          timeout: int = 300, strict: bool = True) -> Path:
    """Execute every lecture and write the book into `out`; returns the path of its index.html
    (the English one, where English lectures were built).

    `lectures` defaults to every lecture of every edition (`all_lectures`); a translated lecture
    (es/lectures/...) goes to its edition's book (`out`/es/). `workers` kernels run at once, across
    editions. With `strict`, a lecture that raised makes this raise BookError once every page is written.
    """
    started = time.perf_counter()
    out = Path(out)
    entries = [syllabus_entry(path) for path in (all_lectures() if lectures is None else lectures)]
    if not entries:
        raise BookError(f"no lecture to build a book from in {course.LECTURES}")
    books = _books(entries)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        executed = dict(zip((lecture.path.resolve() for lecture in entries),
                            pool.map(lambda lecture: _run(lecture, timeout), entries), strict=True))
    for current in books:
        folder = out / current.folder
        folder.mkdir(parents=True, exist_ok=True)
        # Every edition's lectures, seen from this one: a translation's link to an English lecture it lacks
        # goes to the English page.
        pages = {lecture.path.resolve(): other.url(lecture.page, current)
                 for other in books for lecture in other.lectures}
        for lecture in current.lectures:
            page = _page(lecture, executed[lecture.path.resolve()], current, books, pages)
            (folder / lecture.page).write_text(page, encoding="utf-8")
        (folder / INDEX).write_text(_index(current, books), encoding="utf-8")
    total = time.perf_counter() - started
    for lecture in entries:
        problems = f"  ERRORS: {list(lecture.errors)}" if lecture.errors else ""
        if lecture.broken_links:
            problems += f"  BROKEN LINKS: {list(lecture.broken_links)}"
        print(f"{lecture.seconds:6.1f} s  {lecture.name}{problems}")
    indexes = [out / current.folder / INDEX for current in books]
    print(f"book: {len(entries)} lectures built in {total:.1f} s ({workers} at a time) -> "
          + ", ".join(str(path) for path in indexes))
    failed = [lecture for lecture in entries if lecture.errors]
    if failed and strict:
        raise BookError("these lectures raised while the book was built (cell, exception, message): "
                        + "; ".join(f"{lecture.name}: {list(lecture.errors)}" for lecture in failed))
    unlinked = [lecture for lecture in entries if lecture.broken_links]
    if unlinked and strict:
        raise BookError("these lectures link files that are neither a page of the book nor in the students' "
                        "repository (lectures/, exercises/, es/); fix the link in the lecture: "
                        + "; ".join(f"{lecture.name}: {list(lecture.broken_links)}" for lecture in unlinked))
    return indexes[0]
