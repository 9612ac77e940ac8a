"""A course edition in another language, built from the English notebooks and the catalogs.

`course.EDITIONS[language]` lists the source notebooks an edition holds. For each one,
translations/<language>/ has its catalog (`lectures/01_tensors.po`, `solutions/01_tensors/01_tensors.po`)
and `grader.po` translates the text nbgrader writes into exercises (the stub that replaces an answer).
`build` writes:

- <language>/lectures/NN_topic.ipynb: the lecture, translated;
- <language>/exercises/NN_topic/NN_topic.ipynb: the solution translated in a scratch course folder,
  then released by nbgrader's own generate step with the translated stub, so it has exactly the English
  exercise's cells, grade ids, points and locked cells, and its code differs only in comments and strings.

Each notebook records its language and the English notebook it translates (`metadata.course`), its Colab
badge opens its own path, and a link to a notebook the edition has goes to the translation, any other
link to the English file. A listed notebook whose catalog is not complete is not built (its previous
build, if any, stays) and is reported, so that a release never publishes English holes.
"""

import os
import shutil
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from traitlets.config import Config

from grader import course, notebooks
from grader.nbgrader_api import api, load_config
from grader.translation import catalog, messages, segments

GRADER_CATALOG = "grader.po"
STUB_CONTEXT = "ClearSolutions.code_stub"


class EditionError(RuntimeError):
    pass


def root(language: str) -> Path:
    return course.ROOT / language


def relative(path: Path) -> str:
    return Path(path).resolve().relative_to(course.ROOT).as_posix()


def sources(language: str) -> list[Path]:
    """The source notebooks (lectures/, solutions/) the edition holds."""
    return [course.ROOT / name for name in course.EDITIONS.get(language, [])]


def all_sources() -> list[Path]:
    """Every notebook a catalog can be made for."""
    return course.lecture_paths() + course.solution_paths()


def catalog_path(language: str, source: Path) -> Path:
    return (course.TRANSLATIONS / language / relative(source)).with_suffix(".po")


def grader_catalog_path(language: str) -> Path:
    return course.TRANSLATIONS / language / GRADER_CATALOG


def student_path(source: Path) -> Path:
    """The English notebook students get for a source: the lecture itself, or the released exercise."""
    source = Path(source).resolve()
    if source.is_relative_to(course.SOLUTIONS):
        return course.EXERCISES / source.relative_to(course.SOLUTIONS)
    return source


def published_path(language: str, source: Path) -> Path:
    """Where the edition's copy of a source notebook is committed: <language>/lectures/..., <language>/exercises/..."""
    return root(language) / relative(student_path(source))


def _read_catalog(path: Path):
    return catalog.read(path) if path.exists() else None


def notebook_status(language: str, source: Path) -> catalog.Status:
    """How complete the catalog of one source notebook is."""
    found = catalog.units(notebooks.read(source))
    return catalog.status(_read_catalog(catalog_path(language, source)), found, relative(source))


def stub_units() -> list[catalog.Unit]:
    """The text of nbgrader's answer stub (nbgrader_config.py's ClearSolutions.code_stub)."""
    stub = load_config().ClearSolutions.code_stub["python"]
    return [catalog.Unit(STUB_CONTEXT, 0, segment) for segment in segments.code_segments(stub)]


def grader_units() -> list[catalog.Unit]:
    """What grader.po translates: the answer stub and every message a feedback page can show."""
    return stub_units() + messages.units()


def grader_status(language: str) -> catalog.Status:
    return catalog.status(_read_catalog(grader_catalog_path(language)), grader_units(), GRADER_CATALOG)


def update_catalogs(language: str) -> list[catalog.Status]:
    """Create or merge the catalog of every lecture and solution, and the grader's: new English gets an empty
    entry, changed English a fuzzy one with its old translation, removed English becomes obsolete."""
    updated = []
    jobs = [(catalog_path(language, source), catalog.units(notebooks.read(source)), relative(source), relative(source))
            for source in all_sources()]
    jobs.append((grader_catalog_path(language), grader_units(), "nbgrader_config.py", GRADER_CATALOG))
    for path, found, source, name in jobs:
        merged = catalog.merge(_read_catalog(path), found, source, language)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = str(merged)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8", newline="\n")
        updated.append(catalog.status(merged, found, name))
    return updated


def translate(nb: nbformat.NotebookNode, translated: dict[tuple[str, str], str], name: str) -> nbformat.NotebookNode:
    """A copy of `nb` with every segment replaced by its translation (all of them must have one)."""
    nb = nbformat.from_dict(nb)
    for index, cell in enumerate(nb.cells):
        if cell.get("metadata", {}).get("course", {}).get("role") == notebooks.BADGE_MARKER:
            continue
        found = segments.segments(cell)
        if not found:
            continue
        try:
            texts = [translated[(cell.id, segment.text)] for segment in found]
            cell.source = segments.apply(cell.source, found, texts, code=cell.cell_type == "code")
        except KeyError as missing:
            raise EditionError(f"{name}, cell {index}: no translation for {missing.args[0][1][:80]!r}") from None
        except segments.SegmentError as error:
            raise EditionError(f"{name}, cell {index} ({cell.id}): {error}") from None
    return nb


def translated_stub(language: str) -> str:
    stub = load_config().ClearSolutions.code_stub["python"]
    po = _read_catalog(grader_catalog_path(language))
    found = segments.code_segments(stub)
    texts = catalog.translations(po) if po is not None else {}
    try:
        return segments.apply(stub, found, [texts[(STUB_CONTEXT, s.text)] for s in found], code=True)
    except KeyError as missing:
        raise EditionError(f"{GRADER_CATALOG}: no translation for the answer stub's {missing.args[0][1]!r}") from None


def _relink(nb: nbformat.NotebookNode, english: Path, translated: Path, editions: dict[Path, Path]) -> None:
    """Point each relative link of a translated notebook at the translation of its target where the edition
    has one (`editions`: English student path -> translated path), else at the English file."""

    def target(match):
        url = next(group for group in match.groups() if group)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme or parts.netloc or not parts.path or url.startswith("#"):
            return match.group(0)
        resolved = Path(os.path.normpath(english.parent / urllib.parse.unquote(parts.path)))
        new_target = editions.get(resolved, resolved)
        new = Path(os.path.relpath(new_target, translated.parent)).as_posix()
        new_url = urllib.parse.quote(new) + (f"#{parts.fragment}" if parts.fragment else "")
        return match.group(0).replace(url, new_url, 1)

    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.metadata.get("course", {}).get("role") != notebooks.BADGE_MARKER:
            cell.source = segments.LINK_TARGET.sub(target, cell.source)


def _finish(nb: nbformat.NotebookNode, language: str, source: Path) -> nbformat.NotebookNode:
    nb = notebooks.clean(nb)
    nb.metadata["course"] = {"language": language, "translation_of": relative(student_path(source))}
    return notebooks.with_colab_badge(nb, published_path(language, source))


@dataclass
class Built:
    written: list[Path] = field(default_factory=list)
    skipped: list[catalog.Status] = field(default_factory=list)


def build(language: str, out: Path | None = None) -> Built:
    """Write the edition into `out` (default: <language>/ at the course root). Badges and links always use
    the published paths, so a copy built elsewhere (the sync test) is byte-identical to the committed one."""
    out = Path(out or root(language)).resolve()
    built = Built()
    ready = []
    for source in sources(language):
        if not source.exists():
            raise EditionError(f"course.EDITIONS[{language!r}] lists {relative(source)}, which does not exist")
        state = notebook_status(language, source)
        (ready.append(source) if state.complete else built.skipped.append(state))
    stub_state = catalog.status(_read_catalog(grader_catalog_path(language)), stub_units(), GRADER_CATALOG)
    if not stub_state.complete:
        built.skipped.append(stub_state)
        ready = [source for source in ready if not source.resolve().is_relative_to(course.SOLUTIONS)]
    editions = {student_path(source): published_path(language, source) for source in ready}

    def place(nb: nbformat.NotebookNode, source: Path) -> None:
        target = out / relative(published_path(language, source)).removeprefix(f"{language}/")
        notebooks.write(_finish(nb, language, source), target)
        built.written.append(target)

    assignments: dict[str, list[tuple[Path, nbformat.NotebookNode]]] = {}
    for source in ready:
        po = catalog.read(catalog_path(language, source))
        nb = translate(notebooks.read(source), catalog.translations(po), relative(source))
        # Before nbgrader's generate step, which checksums the locked cells these links are in.
        _relink(nb, student_path(source), published_path(language, source), editions)
        if source.resolve().is_relative_to(course.SOLUTIONS):
            assignments.setdefault(source.resolve().parent.name, []).append((source, nb))
        else:
            place(nb, source)
    if assignments:
        stub = translated_stub(language)
        for name, translated in sorted(assignments.items()):
            for released, source in _release(name, translated, stub):
                place(released, source)
            built.written += _copy_files(name, out / "exercises" / name)
    _remove_stale(out, built, language)
    return built


def _release(assignment: str, translated: list, stub: str) -> list[tuple[nbformat.NotebookNode, Path]]:
    """nbgrader's generate step on translated solutions, in a scratch course folder with the translated stub."""
    with tempfile.TemporaryDirectory(prefix=f"edition-{assignment}-") as scratch:
        scratch = Path(scratch)
        for source, nb in translated:
            notebooks.write(nb, scratch / "source" / assignment / source.name)
        overrides = Config()
        overrides.ClearSolutions.code_stub = {"python": stub}
        config = load_config(overrides, source_directory=str(scratch / "source"),
                             release_directory=str(scratch / "release"), db_url=f"sqlite:///{scratch}/gradebook.db")
        result = api(config).generate_assignment(assignment, force=True, create=True)
        if not result["success"]:
            raise EditionError(f"nbgrader could not generate the translated {assignment}:\n"
                               f"{result.get('error') or result.get('log')}")
        return [(notebooks.read(scratch / "release" / assignment / source.name), source) for source, _ in translated]


def _copy_files(assignment: str, target: Path) -> list[Path]:
    """The assignment's other files (data, modules), as the English release has them."""
    copied = []
    for path in sorted((course.EXERCISES / assignment).rglob("*")):
        if path.is_file() and path.suffix != ".ipynb":
            destination = target / path.relative_to(course.EXERCISES / assignment)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
            copied.append(destination)
    return copied


def _remove_stale(out: Path, built: Built, language: str) -> None:
    """Remove what the edition no longer holds; a listed notebook that was not rebuilt keeps its last build."""
    kept = set(built.written) | {out / relative(published_path(language, course.ROOT / state.name)).removeprefix(
        f"{language}/") for state in built.skipped if state.name != GRADER_CATALOG}
    for path in sorted(out.rglob("*"), reverse=True):
        if path.is_file() and path not in kept:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def sync_problems(language: str, fresh: Path) -> list[str]:
    """Differences between a fresh build into `fresh` and the committed <language>/ tree."""
    committed = root(language)
    left = {p.relative_to(fresh).as_posix() for p in fresh.rglob("*") if p.is_file()}
    right = {p.relative_to(committed).as_posix() for p in committed.rglob("*") if p.is_file()} \
        if committed.exists() else set()
    problems = [f"{language}/{name} is missing: run `python -m grader release`" for name in sorted(left - right)]
    problems += [f"{language}/{name} is not built from any listed notebook: run `python -m grader release`"
                 for name in sorted(right - left)]
    problems += [f"{language}/{name} differs from what the English and the catalogs build: never edit it by hand; "
                 "edit the catalog or the English, then run `python -m grader release`"
                 for name in sorted(left & right) if (fresh / name).read_bytes() != (committed / name).read_bytes()]
    return problems


def release_report(language: str) -> list[str]:
    """What `python -m grader release` says about an edition: each notebook written, each listed one held back."""
    lines = [f"generated {relative(path)}" for path in sorted(root(language).rglob("*.ipynb"))]
    for source in sources(language):
        state = notebook_status(language, source) if source.exists() else None
        if state is not None and not state.complete:
            lines.append(f"WARNING: {published_path(language, source).relative_to(course.ROOT)} was not rebuilt: its "
                         f"catalog {relative(catalog_path(language, source))} is not complete "
                         f"({state.translated}/{state.total}); first problem: {state.problems[0]}")
    return lines


def catalog_states(language: str) -> list[catalog.Status]:
    """How complete every catalog is, as `update_catalogs` would report it, writing nothing."""
    states = [notebook_status(language, source) for source in all_sources()]
    return states + [grader_status(language)]
