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


# The pictures of lectures 01, 02, 03 and 05 (drawn by tests/lecture_figures.py) -----------------------------

_MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)")


def test_lecture_figures_are_embedded_attachments():
    """Is every picture of tests/lecture_figures.py in its lecture as a PNG attachment that its cell shows, and does
    no lecture load an image from a file next to it (which a notebook opened alone in Colab does not have)?"""
    import base64

    import lecture_figures

    problems = []
    for figure in lecture_figures.FIGURES:
        cells = {cell.id: cell for cell in notebooks.read(course.LECTURES / figure.lecture).cells}
        cell = cells.get(figure.cell_id)
        if cell is None:
            problems.append(f"{figure.lecture}: no cell {figure.cell_id}; run `python tests/lecture_figures.py`")
            continue
        data = cell.get("attachments", {}).get(figure.name, {}).get("image/png", "")
        if not base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n"):
            problems.append(f"{figure.lecture} cell {figure.cell_id}: no PNG attachment {figure.name}")
        if f"(attachment:{figure.name})" not in cell.source:
            problems.append(f"{figure.lecture} cell {figure.cell_id} does not show attachment:{figure.name}")
    for path in course.lecture_paths():
        for where, kind, text in _texts(path):
            for target in _MARKDOWN_IMAGE.findall(text) if kind == "markdown" else ():
                if not target.startswith(("attachment:", "https:")):
                    problems.append(f"{where}: image {target} is a separate file; embed it as an attachment")
    assert not problems, "\n".join(problems)


def test_lecture_figures_survive_release_and_render_in_the_book():
    """Does `python -m grader release` (notebooks.clean) keep the attachments, and does the book's exporter turn
    each one into an embedded image, with no link left that the book reports as broken?"""
    import lecture_figures

    from grader import book

    for lecture in sorted({figure.lecture for figure in lecture_figures.FIGURES}):
        path = course.LECTURES / lecture
        nb = notebooks.read(path)
        cleaned = notebooks.clean(nb)
        names = [figure.name for figure in lecture_figures.FIGURES if figure.lecture == lecture]
        kept = {name for cell in cleaned.cells for name in cell.get("attachments", {})}
        assert set(names) <= kept, f"release drops attachments of {lecture}: {set(names) - kept}"
        only_markdown = nbformat.v4.new_notebook(cells=[c for c in cleaned.cells if c.cell_type == "markdown"])
        only_markdown.metadata.update(course.NOTEBOOK_METADATA)
        html, _ = book._exporter().from_notebook_node(only_markdown)
        assert "attachment:" not in html, f"the book leaves an attachment of {lecture} unresolved"
        assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', html)) >= len(names), lecture
        _, broken = book.relink(html, path.resolve(), {})
        assert not [link for link in broken if "attachment" in link or link.endswith(".png")], broken


def test_what_the_figures_say_is_what_torch_does():
    """The node names drawn in lecture 02's graphs, the gradients of c = a * b, the parameter count of lecture 03's
    10 -> 32 -> 64 -> 1 picture and the sums in lecture 01's broadcasting picture."""
    import torch
    from torch import nn

    a, b = torch.tensor(15.0, requires_grad=True), torch.tensor(20.0, requires_grad=True)
    c = a * b
    assert c.grad_fn.name() == "MulBackward0"
    c.backward()
    assert (a.grad.item(), b.grad.item()) == (20.0, 15.0)
    x, p, y = torch.linspace(0.5, 2.0, 5), torch.tensor(1.0, requires_grad=True), torch.ones(5)
    node, names = ((x ** p - y) ** 2).mean().grad_fn, []
    while node is not None:
        names.append(node.name())
        inner = [fn for fn, _ in node.next_functions if fn is not None and not fn.name().endswith("AccumulateGrad")]
        node = inner[0] if inner else None
    assert names == ["MeanBackward0", "PowBackward0", "SubBackward0", "PowBackward1"], names
    mlp = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 1))
    assert [p.numel() for p in mlp.parameters()] == [320, 32, 2048, 64, 64, 1]
    assert sum(p.numel() for p in mlp.parameters()) == 2529
    col, row = torch.tensor([[0.0], [10.0], [20.0]]), torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert (col + row).tolist() == [[1, 2, 3, 4], [11, 12, 13, 14], [21, 22, 23, 24]]


# Executed: what lectures 04, 05 and 06 say about their later sections ----------------------------------------

_SWEEP = re.compile(r"lr ([\d.e-]+): validation loss after 5 epochs (\d\.\d{4}), lowest (\d\.\d{4}) in epoch (\d+), "
                    r"after 40 epochs (\d\.\d{4})")


@pytest.mark.notebook
def test_later_sections_of_lectures_04_to_06_print_what_their_text_says(tmp_path):
    """Lecture 05: 3e-4 still falling and far behind after 40 epochs, 3e-2 best after 5 epochs then climbing,
    three TensorBoard runs logged; lr 0.5 turns the loss into nan and 0.05 does not; "overfit one batch" reaches
    a tiny loss and the stale optimizer leaves it unchanged; the out-of-range label and the anomaly are readable;
    GPU-only cells say they skipped. Lecture 06: the resumed run matches exactly and the exported program gives
    identical logits. Lecture 04: a batch of dictionaries keeps the keys, stacks tensors and lists strings."""
    import torch

    specs = kernel_specs(tmp_path / "kernels")
    printed = {}
    for number in ("04", "05", "06"):
        path = _lecture(number)
        nb, _ = run_alone(nbformat.read(path, as_version=4), path.name, tmp_path / number, specs)
        assert not errors(nb), f"{path.name} raised: {errors(nb)}"
        printed[number] = _printed(nb)
    text = printed["05"]
    sweep = {float(lr): (float(v5), float(low), int(at), float(last)) for lr, v5, low, at, last in _SWEEP.findall(text)}
    assert set(sweep) == {3e-4, 3e-3, 3e-2}, text
    assert sweep[3e-4][2] == 40 and sweep[3e-4][3] > 3 * sweep[3e-3][1], "3e-4 should still fall and lag far behind"
    assert sweep[3e-3][1] < sweep[3e-2][1] < sweep[3e-4][1], "3e-3 should reach the lowest validation loss"
    assert sweep[3e-2][0] < min(sweep[3e-3][0], sweep[3e-4][0]), "3e-2 should be the lowest after 5 epochs"
    assert sweep[3e-2][3] > 2 * sweep[3e-2][1], "3e-2's validation loss should climb after its minimum"
    assert "runs logged: ['lr=0.0003', 'lr=0.003', 'lr=0.03']" in text
    assert re.search(r"lr 0\.05: .*first non-finite loss at step None", text)
    assert re.search(r"lr 0\.5: .*after 100 steps nan \| first non-finite loss at step \d+", text)
    before, after = map(float, re.search(r"correct loop: loss on the batch (\d\.\d{4}) -> (\d\.\d{4})", text).groups())
    assert after < 0.01 < before
    stale = re.search(r"stale optimizer: loss on the batch (\d\.\d{4}) -> (\d\.\d{4})", text).groups()
    assert stale[0] == stale[1]
    assert "IndexError: Target 3 is out of bounds." in text
    assert "RuntimeError: Function 'SqrtBackward0' returned nan values" in text
    assert "autocast to torch.bfloat16: weights torch.float32, logits torch.bfloat16, loss torch.float32" in text \
        or torch.cuda.is_available()
    if not torch.cuda.is_available():
        assert text.count("No CUDA GPU here") == 2, "each GPU-only cell should say it skipped"
    assert "largest weight difference to the uninterrupted run: 0.0\n" in printed["06"]
    assert "exported program, all 114 test rows, identical logits: True" in printed["06"]
    assert "x      -> tensor (4, 30) torch.float32" in printed["04"]
    assert "source -> list ['breast_cancer', 'breast_cancer', 'breast_cancer', 'breast_cancer']" in printed["04"]


# Executed: lecture 07 states parameter counts, split sizes and which model wins -------------------------

_ACCURACY_07 = re.compile(r"(MLP|CNN): ([\d,]+) parameters, test accuracy (\d\.\d{4})")
_TOP_07 = re.compile(r"top-1 accuracy (\d\.\d{4}), top-2 accuracy (\d\.\d{4})")


@pytest.mark.notebook
def test_lecture_07_states_what_it_prints(tmp_path):
    """Do lecture 07's statements (split sizes, parameter counts, the CNN beating the MLP by a few digits, top-2
    beating top-1) match what it prints when run alone, and does it run within its budget?"""
    path = _lecture("07")
    text = "\n".join(cell.source for cell in notebooks.read(path).cells if cell.cell_type == "markdown")
    nb, seconds = run_alone(nbformat.read(path, as_version=4), path.name, tmp_path / "07", kernel_specs(tmp_path / "k"))
    assert not errors(nb), f"{path.name} raised: {errors(nb)}"
    printed = _printed(nb)
    found = {name: (count, float(accuracy)) for name, count, accuracy in _ACCURACY_07.findall(printed)}
    assert set(found) == {"MLP", "CNN"}, f"lecture 07 should print both models' parameters and accuracy: {found}"
    for name, (count, _) in found.items():
        assert f"{name}'s {count}" in text or f"{name} has {count}" in text, f"the text should state {name}: {count}"
    assert "1,797" in text and "(1,437 images)" in text and "(360 images)" in text
    assert "train (1437, 1, 8, 8)  test (360, 1, 8, 8)" in printed
    digits_better = round((found["CNN"][1] - found["MLP"][1]) * 360)
    assert 1 <= digits_better <= 10, f"the text says the CNN gets a few more test digits right: {digits_better}"
    counts = {name: int(count.replace(",", "")) for name, (count, _) in found.items()}
    assert counts["CNN"] < counts["MLP"] and "about two thirds of the parameters" in text
    assert round(counts["CNN"] / counts["MLP"], 1) in (0.6, 0.7)
    top1, top2 = map(float, _TOP_07.search(printed).groups())
    assert top2 > top1, "the text says the two best guesses are right more often than the first"
    measured = re.search(r"measured: ([\d.]+) s in a fresh kernel", text)
    assert measured and float(measured.group(1)) < course.LECTURE_BUDGET_S and seconds < course.LECTURE_BUDGET_S * 2
