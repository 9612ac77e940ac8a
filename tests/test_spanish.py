"""Is the Spanish edition (es/) exactly what the English notebooks and the catalogs build, complete, faithful to
the English code, runnable, and graded like the English one?"""

import csv
import json

import nbformat
import polib
import pytest
from bs4 import BeautifulSoup
from mutant_bank.grading import reference_answers, submission
from nbgrader.api import Gradebook
from standalone_kernel import errors, run_alone
from standalone_kernel import kernel_specs as _kernel_specs

from grader import course, execute, hygiene, notebooks
from grader.autograde import preflight, run, sandbox
from grader.nbgrader_api import load_config
from grader.translation import catalog, edition, glossary, messages, segments

LANGUAGE = "es"
LISTED = edition.sources(LANGUAGE)
ASSIGNMENT = "01_tensors"
SOURCE = course.SOLUTIONS / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def _name(path):
    return path.relative_to(course.ROOT).as_posix()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """The Spanish edition built from scratch, as `python -m grader release` builds it."""
    out = tmp_path_factory.mktemp("es")
    built = edition.build(LANGUAGE, out)
    return out, built


@pytest.mark.parametrize("source", LISTED, ids=_name)
def test_listed_catalog_is_complete_and_current(source):
    """Does every segment of the listed notebook have a reviewed translation of its current English?"""
    state = edition.notebook_status(LANGUAGE, source)
    assert state.complete, f"{_name(source)} is in course.EDITIONS[{LANGUAGE!r}] but its catalog is not usable:\n" \
        + "\n".join(state.problems)


def test_grader_catalog_is_complete():
    """Is the answer stub nbgrader writes into Spanish exercises translated?"""
    state = edition.grader_status(LANGUAGE)
    assert state.complete, "\n".join(state.problems)


def test_spanish_tree_is_in_sync_with_a_fresh_build(fresh):
    """Is es/ byte-identical to what the English notebooks and the catalogs build now?"""
    out, built = fresh
    assert not built.skipped, [state.problems[:3] for state in built.skipped]
    assert {path.relative_to(out).as_posix() for path in built.written} == {
        edition.published_path(LANGUAGE, source).relative_to(edition.root(LANGUAGE)).as_posix() for source in LISTED}
    problems = edition.sync_problems(LANGUAGE, out)
    assert not problems, "es/ has drifted:\n" + "\n".join(problems)


@pytest.mark.parametrize("source", LISTED, ids=_name)
def test_spanish_code_is_the_english_code(source):
    """Does each Spanish notebook have the English one's cells, ids and grading metadata, and code tokens that differ
    only in comments and strings?"""
    english = notebooks.read(edition.student_path(source))
    spanish = notebooks.read(edition.published_path(LANGUAGE, source))
    assert [(c.id, c.cell_type) for c in spanish.cells] == [(c.id, c.cell_type) for c in english.cells]
    for ours, theirs in zip(spanish.cells, english.cells, strict=True):
        if "nbgrader" in theirs.metadata:
            expected = {k: v for k, v in theirs.metadata.nbgrader.items() if k != "checksum"}
            assert {k: v for k, v in ours.metadata.nbgrader.items() if k != "checksum"} == expected, ours.id
        if theirs.cell_type == "code":
            assert segments.code_tokens(ours.source) == segments.code_tokens(theirs.source), (
                f"cell {ours.id} of {_name(edition.published_path(LANGUAGE, source))} differs from the English in "
                "more than comments and strings")
    assert spanish.metadata.course == {"language": LANGUAGE, "translation_of": _name(edition.student_path(source))}
    assert notebooks.badge_target(spanish) == notebooks.colab_url(edition.published_path(LANGUAGE, source))


@pytest.mark.parametrize("path", sorted(edition.root(LANGUAGE).rglob("*.ipynb")), ids=_name)
def test_spanish_notebook_is_clean_and_leaks_nothing(path):
    """Is each Spanish notebook valid, without outputs, and free of solutions and hidden tests?"""
    assert not hygiene.notebook_problems(path)
    text = path.read_text(encoding="utf-8")
    leaked = [marker for marker in hygiene.SECRET_MARKERS + (hygiene.HIDDEN_CHECK_IMPORT,) if marker in text]
    assert not leaked, f"{_name(path)} contains {leaked}"
    for answer in reference_answers(ASSIGNMENT).values() if "exercises" in path.parts else []:
        body = [json.dumps(line.strip())[1:-1] for line in answer.splitlines()[2:] if len(line.strip()) > 12]
        assert not any(line in text for line in body), f"{_name(path)} shows a solution line"


def test_glossary_terms_are_used_in_every_listed_catalog():
    """Does every listed catalog use the glossary's fixed terms and none of their forbidden variants?"""
    terms = glossary.read(LANGUAGE)
    assert {"época", "lote", "tasa de aprendizaje", "función de pérdida", "umbral", "sobreajuste", "fuga de datos",
            "logit", "conjunto de validación", "conjunto de prueba"} <= {term.spanish[0] for term in terms}
    found = []
    for source in LISTED:
        found += glossary.problems(terms, catalog.read(edition.catalog_path(LANGUAGE, source)), _name(source))
    found += glossary.problems(terms, catalog.read(edition.grader_catalog_path(LANGUAGE)), edition.GRADER_CATALOG)
    assert not found, "\n".join(found)


def test_glossary_check_catches_a_wrong_term():
    """Would the glossary test fail on a translation that says "tanda" for "batch", or drops "época"?"""
    terms = glossary.read(LANGUAGE)
    entries = [polib.POEntry(msgctxt="c", msgid="one batch per epoch", msgstr="una tanda por cada pasada"),
               polib.POEntry(msgctxt="c", msgid="`batch_size` rows", msgstr="filas de `batch_size`")]
    found = glossary.problems(terms, entries, "probe")
    assert any("'tanda'" in problem for problem in found) and any("época" in problem for problem in found)
    assert all("batch_size" not in problem for problem in found), found


def test_changed_english_makes_the_catalog_stale_and_the_merge_keeps_the_old_translation(tmp_path):
    """When an English sentence changes, does the check fail naming it, and does `translations` offer the old
    translation as fuzzy with the old English beside it, and keep removed English as obsolete?"""
    nb = notebooks.read(course.LECTURES / "01_tensors.ipynb")
    po = catalog.read(edition.catalog_path(LANGUAGE, course.LECTURES / "01_tensors.ipynb"))
    cell = next(c for c in nb.cells if c.source.startswith("## 1. Creating tensors"))
    old = "A single number gives a 0-dimensional tensor, a *scalar*."
    assert old in cell.source
    cell.source = cell.source.replace(old, "A single number gives a tensor with no dimensions, a *scalar*.")
    removed = next(c for c in nb.cells if c.source.startswith("Mixing up the two"))
    nb.cells.remove(removed)
    changed = catalog.units(nb)
    state = catalog.status(po, changed, "lectures/01_tensors.ipynb")
    assert not state.complete
    assert any("stale: the English changed" in problem and cell.id in problem for problem in state.problems), \
        state.problems
    merged = catalog.merge(po, changed, "lectures/01_tensors.ipynb", LANGUAGE)
    merged.save(str(tmp_path / "01_tensors.po"))
    reread = catalog.read(tmp_path / "01_tensors.po")
    fuzzy = [e for e in reread if "fuzzy" in e.flags]
    assert len(fuzzy) == 1 and "no dimensions" in fuzzy[0].msgid and "escalar" in fuzzy[0].msgstr
    assert "0-dimensional" in fuzzy[0].previous_msgid
    assert [e.msgid[:17] for e in reread.obsolete_entries()] == ["Mixing up the two"]
    assert "fuzzy" in "\n".join(catalog.status(reread, changed, "lectures/01_tensors.ipynb").problems)


def test_a_translation_that_breaks_code_or_fields_is_refused():
    """Is a translated string that changes code (an unescaped quote) or drops an f-string field refused?"""
    source = 'print(f"expected shape {x.shape}")  # the shape\n'
    found = segments.code_segments(source)
    assert [s.kind for s in found] == ["string", "comment"]
    with pytest.raises(segments.SegmentError, match="fields"):
        segments.apply(source, found, ["forma esperada", "la forma"], code=True)
    with pytest.raises(segments.SegmentError):
        segments.apply(source, found, ['forma "esperada" {x.shape}', "la forma"], code=True)
    assert segments.apply(source, found, ["forma esperada {x.shape}", "la forma"], code=True) == \
        'print(f"forma esperada {x.shape}")  # la forma\n'
    # A python example's comment is translated like a cell's; its code and the math are not text.
    markdown = "Some text.\n\n```python\nx = 1  # a comment\n```\n\n$$a = b$$"
    found = segments.markdown_segments(markdown)
    assert [(s.kind, s.text) for s in found] == [("markdown", "Some text."), ("comment", "a comment")]
    assert segments.apply(markdown, found, ["Un texto.", "un comentario"], code=False) == \
        "Un texto.\n\n```python\nx = 1  # un comentario\n```\n\n$$a = b$$"


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory):
    return _kernel_specs(tmp_path_factory.mktemp("kernels"))


@pytest.mark.notebook
@pytest.mark.parametrize("path", sorted((edition.root(LANGUAGE) / "lectures").glob("*.ipynb")), ids=_name)
def test_spanish_lecture_runs_alone(path, kernel_specs, tmp_path, record_property):
    """Does the Spanish lecture run alone in an empty folder, headless, within the lecture budget?"""
    nb, seconds = run_alone(nbformat.read(path, as_version=4), path.name, tmp_path / "alone", kernel_specs)
    record_property("notebook_seconds", (f"standalone {_name(path)}", seconds, course.LECTURE_BUDGET_S))
    assert not errors(nb), f"{_name(path)} raised: {errors(nb)}"
    assert seconds < course.LECTURE_BUDGET_S


@pytest.mark.notebook
@pytest.mark.parametrize("source", [s for s in LISTED if s.is_relative_to(course.SOLUTIONS)], ids=_name)
def test_spanish_solution_passes_every_test(source, tmp_path, record_property):
    """Does the translated solution pass every test cell, hidden ones included? (The unsolved Spanish exercise passes
    none: its code tokens are the English exercise's, which test_notebooks_run runs unsolved.)"""
    po = catalog.read(edition.catalog_path(LANGUAGE, source))
    solved = edition.translate(notebooks.read(source), catalog.translations(po), _name(source))
    notebooks.write(solved, tmp_path / "solution" / source.name)
    result = execute.validate(tmp_path / "solution" / source.name)
    record_property("notebook_seconds", (f"es {_name(source)}", result.seconds, course.EXERCISE_BUDGET_S))
    assert result.results == {} and not result.errors(), (result.results, result.errors())


def _spanish_submission(cells: dict[str, str]) -> nbformat.NotebookNode:
    """The Spanish student copy with every answer cell filled, as `submission` fills the English one."""
    answers = {**reference_answers(ASSIGNMENT), **cells}
    nb = notebooks.read(edition.published_path(LANGUAGE, SOURCE))
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = answers[grade_id].strip("\n")
    return nb


def _as_colab_saves_it(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Colab keeps sources but drops nbgrader's cell metadata, the cell ids and the course's notebook metadata."""
    saved = nbformat.from_dict(nb)
    saved.metadata = nbformat.from_dict({"colab": {"provenance": []}, "kernelspec": nb.metadata.kernelspec})
    for index, cell in enumerate(saved.cells):
        cell.metadata = nbformat.from_dict({})
        cell.id = f"colab{index}"
    return saved


# int64 instead of float32: loses part A's 2 points in either language.
WRONG_DTYPE = {"make_grid": "def make_grid(n_rows, n_cols):\n"
                            "    return torch.arange(n_rows * n_cols).reshape(n_rows, n_cols)"}


@pytest.fixture(scope="module")
def mixed_class(tmp_path_factory):
    """One class run with English and Spanish hand-ins of unit 01: the same wrong answer in both languages, a solved
    Spanish notebook, and a solved Spanish notebook saved by Colab. (A solved English one gets 10: test_autograde.)"""
    root = tmp_path_factory.mktemp("mixed")
    hand_ins = {
        "ana_es": _spanish_submission({}), "carla_colab_es": _as_colab_saves_it(_spanish_submission({})),
        "beto_en": submission(ASSIGNMENT, WRONG_DTYPE), "beto_es": _spanish_submission(WRONG_DTYPE),
    }
    for student, nb in hand_ins.items():
        notebooks.write(nb, root / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    limits = sandbox.Limits(cell_timeout_s=20, notebook_timeout_s=60)
    rows = run.autograde_class(root / "submitted", root / "out", workers=2, assignments=[ASSIGNMENT], limits=limits,
                               db_url=f"sqlite:///{root}/gradebook.db", autograded=root / "autograded", progress=False)
    return {row.student_id: row for row in rows}, root


@pytest.mark.notebook
def test_english_and_spanish_hand_ins_get_the_same_rows(mixed_class):
    """Does the same code earn the same row in either language: full marks when solved, the same loss when wrong?"""
    rows, root = mixed_class
    scores = {student: (row.score, row.max_score, row.status, row.detail) for student, row in rows.items()}
    assert scores["ana_es"] == (10, 10, "ok", ""), scores
    assert scores["beto_en"] == scores["beto_es"] == (8, 10, "ok", ""), scores
    assert scores["carla_colab_es"][:3] == (10, 10, "ok"), scores  # its detail says the metadata was restored
    with open(root / "out" / "grades.csv", newline="", encoding="utf-8") as f:
        assert sorted(r["student_id"] for r in csv.DictReader(f)) == sorted(rows)
    with Gradebook(f"sqlite:///{root}/gradebook.db", course_id=load_config().CourseDirectory.course_id) as gradebook:
        cells = {student: {grade.name: grade.score for grade in
                           gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student).grades}
                 for student in ("beto_en", "beto_es")}
    assert cells["beto_en"] == cells["beto_es"] and cells["beto_es"]["test_make_grid"] == 0, cells


@pytest.mark.notebook
def test_no_spanish_cell_is_reported_as_changed(mixed_class):
    """Does nbgrader find every locked cell of a Spanish hand-in as released (no "has changed" report)?"""
    _, root = mixed_class
    for student in ("ana_es", "beto_es", "carla_colab_es"):
        log = (root / "out" / "logs" / student / ASSIGNMENT / "nbgrader.log").read_text(encoding="utf-8")
        assert "has changed" not in log and "does not exist in the database" not in log, f"{student}:\n{log}"


@pytest.mark.notebook
def test_feedback_is_in_the_language_of_the_hand_in(mixed_class):
    """Is the feedback of a Spanish hand-in in Spanish (the page, its instructions and tests as the Spanish release
    shows them, the hidden check's message) and that of the English one in English, for the same mistake?"""
    _, root = mixed_class
    pages = {student: BeautifulSoup((root / "out" / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html")
                                    .read_text(encoding="utf-8"), "html.parser").get_text(" ")
             for student in ("beto_en", "beto_es", "carla_colab_es")}
    # The visible test stops at its own assert (int64 is not float32) before the hidden check runs.
    english_message = ("The hidden check check_make_grid did not run to the end, so this test earns no points.\n"
                       "The cell stopped with AssertionError: expected float32, got torch.int64\n"
                       "Hint: run the notebook top to bottom in a fresh kernel and fix the first error.")
    spanish_message = messages.translate(english_message, LANGUAGE)
    assert not [words for words in ("hidden check", "cell stopped", "expected", "Hint") if words in spanish_message]
    assert english_message in pages["beto_en"] and "Score: 8 / 10" in pages["beto_en"]
    for student in ("beto_es", "carla_colab_es"):
        assert "hidden check" not in pages[student] and "Score:" not in pages[student], student
    assert spanish_message in pages["beto_es"] and "Puntaje: 8 / 10" in pages["beto_es"], pages["beto_es"][:3000]
    spanish_release = notebooks.read(edition.published_path(LANGUAGE, SOURCE))
    heading = next(c.source for c in spanish_release.cells if c.source.startswith("## Parte A"))
    assert heading.splitlines()[0].lstrip("# ") in pages["beto_es"], "the instructions are not the Spanish ones"


def test_every_message_template_translates_as_its_own_translation():
    """Does a message written from any template, with any values, come back as that template's translation with
    the same values (so no other template captures it, and the values land in the right places)?"""
    translations = catalog.translations(catalog.read(edition.grader_catalog_path(LANGUAGE)))
    wrong = []
    for unit in messages.units():
        spanish = translations.get(unit.key)
        fields = messages.placeholders(unit.segment.text)
        if spanish is None or not fields or not messages.standalone(unit.segment.text):
            continue  # a template of placeholders and a word ("{n} epochs") only translates values inside messages
        values = {field: (messages.choices(field) or [f"«value{index}»"])[0]
                  for index, field in enumerate(dict.fromkeys(fields))}
        english, expected = messages.fill(unit.segment.text, values), messages.fill(spanish, values)
        if messages.translate(english, LANGUAGE).strip("\n") != expected.strip("\n"):
            wrong.append(f"{unit.context}:{unit.cell_index} {unit.segment.text[:70]!r}")
    assert not wrong, f"{len(wrong)} templates translate as another one:\n" + "\n".join(wrong[:20])


def test_preflight_recognises_a_spanish_hand_in_even_without_its_metadata(tmp_path):
    """Is a Colab-saved Spanish notebook matched to the Spanish release and its untouched locked cells put back in
    English, while a locked cell the student edited stays as handed in (for nbgrader to restore and report)?"""
    english = notebooks.read(course.EXERCISES / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    saved = _as_colab_saves_it(_spanish_submission({}))
    edited = next(c for c in saved.cells if c.source.startswith("## Parte A"))
    edited.source += "\n\nMis notas."
    path = tmp_path / f"Copy of {ASSIGNMENT}.ipynb"
    path.write_text(nbformat.writes(saved), encoding="utf-8")
    prepared = preflight.prepare(path, ASSIGNMENT, 2**24, english)
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in prepared.nb.cells}
    released = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in english.cells}
    for grade_id in ("header", "setup", "test_make_grid", "footer"):
        assert by_id[grade_id].source == released[grade_id].source, grade_id
    assert by_id["part_a"].source.endswith("Mis notas."), "an edited locked cell must reach nbgrader as handed in"
    assert by_id["make_grid"].source == reference_answers(ASSIGNMENT)["make_grid"].strip("\n")


def test_spanish_readme_links_resolve_and_list_the_edition():
    """Does every relative link of README.es.md open a file of this repository, and does it link each Spanish
    notebook the edition holds?"""
    text = (course.ROOT / "README.es.md").read_text(encoding="utf-8")
    targets = [t for t in segments.link_targets(text) if "://" not in t]
    missing = [t for t in targets if not (course.ROOT / t.split("#")[0]).exists()]
    assert not missing, f"README.es.md links files that do not exist: {missing}"
    for source in LISTED:
        assert _name(edition.published_path(LANGUAGE, source)) in targets, f"README.es.md does not link {_name(source)}"
