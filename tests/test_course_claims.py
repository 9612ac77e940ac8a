"""Does the course say one thing everywhere, and do its notebooks prove their own claims?

Fast, static checks of the text (nothing is executed), except the one marked `notebook`, which runs
lectures 05 and 06 and compares the numbers lecture 06 promises to repeat:

- every cross-reference resolves: a hint or a cell that cites "(lecture 03, 'The module registry')" or
  "lecture 02, section 7.1" names a heading that exists in that lecture, a lecture's "section 7" exists
  in that lecture, and every relative link points at a file (and heading) that exists;
- every heading starts its own markdown cell, so Jupyter's table of contents points at the right cell;
- every lecture ends with a "Further reading" cell, and every notebook's header states a student time;
- every stub's "see the docstring above" has a docstring above it;
- every "the same numbers as lecture NN" claim is one that the executing test below checks.
"""

import re
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest
from standalone_kernel import errors, kernel_specs, run_alone

from grader import course, notebooks

CHECKS = sorted((course.ROOT / "grader" / "checks").glob("*.py"))
TEXT_FILES = [course.ROOT / "README.md", course.ROOT / "READING.md"]
NOTEBOOKS = course.lecture_paths() + course.solution_paths(course.units())

_CITE = re.compile(r"lecture (\d\d),\s*'([^']+)'", re.I)
_CITE_SECTION = re.compile(r"lecture (\d\d),?\s+sections?\s+(\d+(?:\.\d+)*)", re.I)
_SECTION_NUMBER = r"\d+(?:\.\d+)*"
_BARE_SECTIONS = re.compile(  # "section 7", "sections 6, 8 and 9", but not "lecture 02, section 7.1"
    rf"(?<!\d\d, )(?<!\d\d )\bsections?\s+({_SECTION_NUMBER}(?:(?:,\s*|\s+and\s+|\s+or\s+){_SECTION_NUMBER})*)")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_NUMBER = re.compile(r"^(\d+(?:\.\d+)*)\.?\s+")
_FENCE = re.compile(r"^\s*(```|~~~)")

# "The same numbers as lecture NN" claims that test_lecture_06_repeats_lecture_05s_numbers checks.
CHECKED_CLAIMS = {("lectures/06_inference.ipynb", "05")}
_SAME_CLAIM = re.compile(r"[^.\n]*\bsame\b[^.\n]*\blecture (\d\d)\b[^.\n]*", re.I)


def _name(path: Path) -> str:
    return path.relative_to(course.ROOT).as_posix()


def _lecture(number: str) -> Path | None:
    found = sorted(course.LECTURES.glob(f"{number}_*.ipynb"))
    return found[0] if found else None


def _markdown_lines(source: str):
    """(index, line) of a markdown cell's lines outside fenced code blocks."""
    fenced = False
    for index, line in enumerate(source.splitlines()):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield index, line


def _plain(text: str) -> str:
    """A heading or a citation as words: no markdown emphasis or code marks, lower case, single spaces."""
    text = re.sub(r"[`*]", "", text)
    text = re.sub(r"\\(.)", r"\1", text)
    return " ".join(text.split()).lower()


def _headings(path: Path) -> list[tuple[str | None, str]]:
    """(section number or None, heading text without its number) for every heading of a notebook or .md file."""
    if path.suffix == ".ipynb":
        sources = [cell.source for cell in notebooks.read(path).cells if cell.cell_type == "markdown"]
    else:
        sources = [path.read_text(encoding="utf-8")]
    found = []
    for source in sources:
        for _, line in _markdown_lines(source):
            heading = _HEADING.match(line)
            if heading:
                text = heading.group(2)
                number = _NUMBER.match(text)
                found.append((number.group(1) if number else None, text[number.end():] if number else text))
    return found


def _names_heading(cited: str, headings) -> bool:
    """Does `cited` ("3.1 float64 data meets a float32 layer", "Choosing the device") name one of `headings`?
    It must be the heading's text, or its start up to a word boundary ("Indexing" for "Indexing, slicing and
    boolean masks"); a number in the citation must be the heading's number."""
    number = _NUMBER.match(cited)
    words = _plain(cited[number.end():] if number else cited)
    for heading_number, text in headings:
        if number and number.group(1) != heading_number:
            continue
        heading = _plain(text)
        if heading == words or (heading.startswith(words) and not heading[len(words)].isalnum()):
            return True
    return False


def _texts(path: Path) -> list[tuple[str, str, str]]:
    """(where, kind, text) pieces of a file in which references are looked for."""
    if path.suffix == ".ipynb":
        return [(f"{_name(path)} cell {index}", cell.cell_type, cell.source)
                for index, cell in enumerate(notebooks.read(path).cells)
                if cell.metadata.get("course", {}).get("role") != notebooks.BADGE_MARKER]
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        constant = re.search(r'^LECTURE = "(lecture \d\d)"', text, re.M)
        if constant:
            text = text.replace("{LECTURE}", constant.group(1))
        text = re.sub(r"([\"'])\s*\n\s*[rf]?\1", "", text)  # a hint split over lines: "...two " "modes'"
    return [(_name(path), "markdown" if path.suffix == ".md" else "code", text)]


def _unresolved_references(path: Path) -> list[str]:
    problems = []
    own_number = path.name[:2] if path.parent == course.LECTURES else None
    for where, kind, text in _texts(path):
        for number, cited in _CITE.findall(text):
            lecture = _lecture(number)
            if lecture is None:
                problems.append(f"{where}: cites lecture {number}, which does not exist")
            elif not _names_heading(cited, _headings(lecture)):
                problems.append(f"{where}: cites (lecture {number}, '{cited}'), but {lecture.name} has no such "
                                f"heading; its headings are {[t for _, t in _headings(lecture)]}")
        for number, section in _CITE_SECTION.findall(text):
            lecture = _lecture(number)
            if lecture is None or section not in {n for n, _ in _headings(lecture)}:
                problems.append(f"{where}: cites lecture {number}, section {section}, which does not exist")
        if own_number and kind == "markdown":
            own = {n for n, _ in _headings(path)}
            for listed in _BARE_SECTIONS.findall(text):
                for section in re.findall(r"\d+(?:\.\d+)*", listed):
                    if section not in own:
                        problems.append(f"{where}: refers to section {section}, which {path.name} does not have")
    return problems


@pytest.mark.parametrize("path", CHECKS + NOTEBOOKS + TEXT_FILES, ids=_name)
def test_every_cited_lecture_section_exists(path):
    """Does every "(lecture NN, 'Heading')", "lecture NN, section N" and lecture-internal "section N" name a
    heading that exists in that lecture?"""
    problems = _unresolved_references(path)
    assert not problems, "\n".join(problems)


def _anchors(path: Path) -> set[str]:
    """The ids Jupyter (heading text, spaces as '-') and GitHub (lower case, punctuation dropped) give headings."""
    ids = set()
    for number, text in _headings(path):
        full = f"{number}. {text}" if number and path.suffix == ".ipynb" else text
        plain = re.sub(r"[`*]", "", full)
        ids.add(plain.replace(" ", "-"))
        ids.add(re.sub(r"[^\w\- ]", "", plain.lower()).replace(" ", "-"))
    return ids


def _broken_links(path: Path) -> list[str]:
    problems = []
    for where, kind, text in _texts(path):
        if kind != "markdown":
            continue
        for target in _LINK.findall(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:, ...
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / unquote(file_part)).resolve() if file_part else path
            if not linked.exists():
                problems.append(f"{where}: links to {target}, which does not exist")
            elif anchor and linked.suffix in (".ipynb", ".md") and unquote(anchor) not in _anchors(linked):
                problems.append(f"{where}: links to {target}, but {linked.name} has no heading #{anchor}")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS + TEXT_FILES, ids=_name)
def test_every_relative_link_resolves(path):
    """Does every relative link point at a file that exists (and, with #anchor, at a heading in it)?"""
    problems = _broken_links(path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_name)
def test_every_heading_starts_its_own_markdown_cell(path):
    """Is every heading the first line of its markdown cell, so a table of contents points at the right cell?"""
    problems = []
    for index, cell in enumerate(notebooks.read(path).cells):
        if cell.cell_type != "markdown":
            continue
        for line_number, line in _markdown_lines(cell.source):
            if line_number > 0 and _HEADING.match(line):
                problems.append(f"cell {index}, line {line_number + 1}: {line.strip()!r}")
    assert not problems, f"{_name(path)} has headings in the middle of a cell; split the cells there:\n" + "\n".join(
        problems)


@pytest.mark.parametrize("path", course.lecture_paths(), ids=_name)
def test_lecture_ends_with_further_reading(path):
    """Does the lecture end with a "Further reading" cell?"""
    markdown = [cell for cell in notebooks.read(path).cells if cell.cell_type == "markdown"]
    first_line = markdown[-1].source.strip().splitlines()[0] if markdown else ""
    heading = _HEADING.match(first_line)
    assert heading and _plain(heading.group(2)) == "further reading", (
        f"{_name(path)} should end with a markdown cell headed '## Further reading' that links the official "
        f"documentation it used; its last markdown cell starts {first_line!r}"
    )


_STUDENT_TIME = re.compile(r"student time\W{0,6}(about |around |roughly |up to )?\d+\s*(–|-|to)?\s*\d*\s*"
                           r"(minutes|min|hours?)\b", re.I)


def _header(path: Path) -> str:
    """The notebook's first markdown cell that is not the Colab badge."""
    for cell in notebooks.read(path).cells:
        if cell.cell_type == "markdown" and cell.metadata.get("course", {}).get("role") != notebooks.BADGE_MARKER:
            return cell.source
    return ""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_name)
def test_header_states_student_time(path):
    """Does the notebook's header say how long a student needs (not only how long the machine takes)?"""
    assert _STUDENT_TIME.search(_header(path)), (
        f"{_name(path)}'s header should state the expected student time, e.g. "
        "'**Expected student time:** about 60 minutes.'"
    )


@pytest.mark.parametrize("path", course.exercise_paths(course.units()), ids=_name)
def test_every_stub_has_the_docstring_it_points_to(path):
    """Every stub says "see the docstring above": is there one above it, in its cell?"""
    problems = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        for stub in re.finditer(r"raise NotImplementedError\(", cell.source):
            before = cell.source[:stub.start()]
            if "docstring above" in cell.source[stub.start():] and '"""' not in before and "'''" not in before:
                problems.append(f"cell {index}: {cell.source[:80]!r}")
    assert not problems, f"stubs in {_name(path)} point at a docstring that is not there:\n" + "\n".join(problems)


def test_same_number_claims_are_checked():
    """Is every "the same ... as lecture NN" claim about printed numbers one that the executing test checks?"""
    found = set()
    for path in NOTEBOOKS:
        for _where, kind, text in _texts(path):
            if kind != "markdown":
                continue
            for claim in _SAME_CLAIM.finditer(text):
                about_numbers = re.search(r"print|report|number|loss|accura|epoch", claim.group(0))
                if claim.group(1) != path.name[:2] and about_numbers:
                    found.add((_name(path), claim.group(1)))
    unchecked = found - CHECKED_CLAIMS
    assert not unchecked, (
        f"these notebooks promise the same numbers as another lecture, and no test checks it: {sorted(unchecked)}; "
        "compare the printed numbers in test_lecture_06_repeats_lecture_05s_numbers (or a test like it), or "
        "remove the claim"
    )


# Executed: lecture 06 retrains lecture 05's classifier and promises the same numbers --------------------

_BEST = re.compile(r"best epoch (\d+), validation loss (\d+\.\d{4})")
_TEST_ACCURACY = re.compile(r"test accuracy: (\d\.\d{4})")


def _printed(nb) -> str:
    return "\n".join(output.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                     for output in cell.get("outputs", []) if output.output_type == "stream")


def _one(pattern: re.Pattern, text: str, name: str):
    values = set(pattern.findall(text))
    assert len(values) == 1, f"{name} should print {pattern.pattern!r} exactly one way; it printed {sorted(values)}"
    return values.pop()


@pytest.mark.notebook
def test_lecture_06_repeats_lecture_05s_numbers(tmp_path):
    """Does lecture 06, which retrains lecture 05's classifier, print the same best epoch, validation loss and
    test accuracy as lecture 05, as it says it does?"""
    specs = kernel_specs(tmp_path / "kernels")
    printed = {}
    for number in ("05", "06"):
        path = _lecture(number)
        nb, _ = run_alone(nbformat.read(path, as_version=4), path.name, tmp_path / number, specs)
        assert not errors(nb), f"{path.name} raised: {errors(nb)}"
        printed[number] = _printed(nb)
    best = {number: _one(_BEST, text, f"lecture {number}") for number, text in printed.items()}
    assert best["05"] == best["06"], (
        f"lecture 06 promises lecture 05's best epoch and validation loss: lecture 05 printed {best['05']}, "
        f"lecture 06 {best['06']}"
    )
    accuracy = {number: _one(_TEST_ACCURACY, text, f"lecture {number}") for number, text in printed.items()}
    assert accuracy["05"] == accuracy["06"], f"test accuracy: lecture 05 printed {accuracy['05']}, 06 {accuracy['06']}"
