"""The course book: every lecture executed and rendered to static HTML, with a syllabus page.

`build()` runs each lecture top to bottom in a fresh kernel in an empty temporary folder (headless:
matplotlib's inline backend draws figures into the outputs, no display needed), then renders it
with nbconvert's HTMLExporter, figures embedded, into one page per lecture. The index page is
itself a notebook of markdown rendered by the same exporter: each lecture's title and learning
objectives, read from its opening markdown, and a link to its page.
Committed notebooks stay clean; the executed results are published here instead.

A lecture's relative links are written for the repository (`../exercises/05_training_loop/...`), where
they work in JupyterLab; in the book each one is rewritten to what the book can reach: the page of a
lecture, or the notebook in the students' repository (course.STUDENT_REPOSITORY), opened in Colab
like the badges. A link the students' repository cannot serve (solutions/, a missing file) is an error.
"""

import os
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

INDEX = "index.html"
# Headless and still drawing: the kernel's inline backend renders each figure to a PNG output.
# (MPLBACKEND=Agg, which the test suite sets, would drop every figure from the book.)
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
BOOK_TITLE = "Intro to PyTorch: the course book"
_HEADING = re.compile(r"^#\s+(.+?)\s*$", re.M)
_OBJECTIVES = re.compile(r"^\*\*Learning objectives\.?\*\*.*?$\n((?:[ \t]*[-*] .*(?:\n|$)|[ \t]+\S.*(?:\n|$))+)", re.M)


class BookError(RuntimeError):
    """A lecture raised or links what the book cannot reach (its page is still written, error and all)."""


@dataclass
class Lecture:
    path: Path
    title: str
    objectives: list[str]
    page: str  # file name of its page, next to index.html
    seconds: float = 0.0
    errors: tuple = ()
    broken_links: tuple = ()


def _opening_markdown(nb: nbformat.NotebookNode) -> list[str]:
    """The markdown cells before the first code cell, the Colab badge left out."""
    opening = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            break
        if cell.cell_type == "markdown" and cell.metadata.get("course", {}).get("role") != notebooks.BADGE_MARKER:
            opening.append(cell.source)
    return opening


def syllabus_entry(path: Path) -> Lecture:
    """A lecture's title (its first `# ` heading) and learning objectives (the bullets after
    "**Learning objectives.**"), read from its opening markdown cells."""
    nb = nbformat.read(path, as_version=4)
    text = "\n\n".join(_opening_markdown(nb))
    heading = _HEADING.search(text)
    title = heading.group(1) if heading else Path(path).stem.replace("_", " ")
    objectives = []
    found = _OBJECTIVES.search(text)
    if found:
        for line in found.group(1).splitlines():
            if re.match(r"^[ \t]*[-*] ", line):
                objectives.append(re.sub(r"^[ \t]*[-*] ", "", line).strip())
            elif line.strip() and objectives:
                objectives[-1] += " " + line.strip()  # a bullet wrapped onto the next line
    return Lecture(Path(path), title, objectives, f"{Path(path).stem}.html")


def student_url(target: Path) -> str | None:
    """Where a file of this repository is in the students' repository: a notebook opens in Colab,
    anything else on GitHub. None for what students do not get (solutions/, grader/, a missing file)."""
    from grader.student_repo import AS_IS  # the files the students' repository copies as they are

    given = any(target.is_relative_to(folder) for folder in (course.LECTURES, course.EXERCISES)) or target in AS_IS
    if not target.exists() or not given:
        return None
    if target.suffix == ".ipynb":
        return notebooks.colab_url(target)
    kind = "tree" if target.is_dir() else "blob"
    relative = target.relative_to(course.ROOT).as_posix()
    return f"https://github.com/{course.STUDENT_REPOSITORY}/{kind}/{course.STUDENT_BRANCH}/{relative}"


def relink(page: str, source: Path, pages: dict[Path, str]) -> tuple[str, list[str]]:
    """Rewrite the relative links of a rendered notebook for the book.

    `source` is the notebook's path in the repository, which its links are relative to; `pages`
    maps each lecture's path to its page in the book. A link to a lecture goes to its page, one to
    another file of lectures/ or exercises/ to the students' repository (`student_url`). Returns the
    page and what it could not rewrite, left as it was: a link to anything else, and any image
    still loaded from a file (markdown images are embedded; an HTML <img> in markdown is not).
    """
    soup = BeautifulSoup(page, "html.parser")
    book_pages = {INDEX, *pages.values()}
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


def _exporter() -> HTMLExporter:
    exporter = HTMLExporter(template_name="lab")
    exporter.embed_images = True  # markdown images become data URIs: each page stands alone
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


def _page(lecture: Lecture, nb: nbformat.NotebookNode, previous: Lecture | None, following: Lecture | None,
          pages: dict[Path, str]) -> str:
    links = [f"[↑ Syllabus]({INDEX})"]
    if previous:
        links.insert(0, f"[← {previous.title}]({previous.page})")
    if following:
        links.append(f"[{following.title} →]({following.page})")
    nav = nbformat.v4.new_markdown_cell(" · ".join(links), metadata={"course": {"role": "book-nav"}})
    nb.cells.insert(0, nav)
    nb.cells.append(nbformat.v4.new_markdown_cell(" · ".join(links)))
    # The lecture's folder: a relative markdown image is embedded from there.
    metadata = {"name": lecture.title, "path": str(lecture.path.resolve().parent)}
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": metadata})
    body, broken = relink(body, lecture.path.resolve(), pages)
    lecture.broken_links = tuple(broken)
    return body


def _index(lectures: list[Lecture]) -> str:
    lines = [
        f"# {BOOK_TITLE}",
        "",
        "Every lecture below was run top to bottom, on a CPU, when this book was built: the pages show "
        "its outputs and figures. To run a lecture yourself, open it in JupyterLab or use the "
        "*Open in Colab* badge at its top.",
        "",
        "## Syllabus",
    ]
    for lecture in lectures:
        lines += ["", f"### [{lecture.title}]({lecture.page})", ""]
        if lecture.objectives:
            lines += ["After this lecture you can:", ""] + [f"- {objective}" for objective in lecture.objectives]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("\n".join(lines))])
    nb.metadata.update(course.NOTEBOOK_METADATA)
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"name": BOOK_TITLE}})
    return body


def build(out: Path = Path("_build/book"), lectures: list[Path] | None = None, workers: int = 2,
          timeout: int = 300, strict: bool = True) -> Path:
    """Execute every lecture and write the book into `out`; returns the path of its index.html.

    `lectures` defaults to every lecture of the course; `workers` kernels run at once. With
    `strict`, a lecture that raised makes this raise BookError once every page is written.
    """
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = [syllabus_entry(path) for path in (course.lecture_paths() if lectures is None else lectures)]
    if not entries:
        raise BookError(f"no lecture to build a book from in {course.LECTURES}")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        executed = list(pool.map(lambda lecture: _run(lecture, timeout), entries))
    pages = {lecture.path.resolve(): lecture.page for lecture in entries}
    for index, (lecture, nb) in enumerate(zip(entries, executed, strict=True)):
        previous = entries[index - 1] if index > 0 else None
        following = entries[index + 1] if index + 1 < len(entries) else None
        (out / lecture.page).write_text(_page(lecture, nb, previous, following, pages), encoding="utf-8")
    index_path = out / INDEX
    index_path.write_text(_index(entries), encoding="utf-8")
    total = time.perf_counter() - started
    for lecture in entries:
        problems = f"  ERRORS: {list(lecture.errors)}" if lecture.errors else ""
        if lecture.broken_links:
            problems += f"  BROKEN LINKS: {list(lecture.broken_links)}"
        print(f"{lecture.seconds:6.1f} s  {lecture.path.name}{problems}")
    print(f"book: {len(entries)} lectures built in {total:.1f} s ({workers} at a time) -> {index_path}")
    failed = [lecture for lecture in entries if lecture.errors]
    if failed and strict:
        raise BookError("these lectures raised while the book was built (cell, exception, message): "
                        + "; ".join(f"{lecture.path.name}: {list(lecture.errors)}" for lecture in failed))
    unlinked = [lecture for lecture in entries if lecture.broken_links]
    if unlinked and strict:
        raise BookError("these lectures link files that are neither a page of the book nor in the students' "
                        "repository (lectures/, exercises/); fix the link in the lecture: "
                        + "; ".join(f"{lecture.path.name}: {list(lecture.broken_links)}" for lecture in unlinked))
    return index_path
