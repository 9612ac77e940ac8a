"""Is the students' repository that `python -m grader student-repo DIR` writes complete, free of every
answer and hidden check, runnable on its own, safe to rerun into its git checkout, and never written
into this repository?"""

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from standalone_kernel import errors, installs, run_in_place
from standalone_kernel import kernel_specs as _kernel_specs

from grader import cli, course, notebooks, student_repo
from grader.translation import edition

STUDENT_FILES = {".gitignore", student_repo.MANIFEST, "README.md", "requirements.txt", "environment.yml", "LICENSE",
                 "LICENSE-CONTENT.md", "READING.md", "binder/requirements.txt", ".devcontainer/devcontainer.json"}
_SECRET_REGION = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.S)
_LINK = re.compile(r"\]\(([^)\s]+)\)")
# Executed here, in the students' repository; the others are byte-identical to the notebooks that
# tests/test_colab_standalone.py runs alone in the same guarded kernel (every lecture, every unsolved
# exercise), which test_student_notebooks_are_the_ones_run_standalone proves.
EXECUTED_HERE = ["lectures/01_tensors.ipynb", "exercises/01_tensors/01_tensors.ipynb"]

PROBE = """try:
    import grader
    print("grader is importable")
except ModuleNotFoundError:
    print("grader is hidden")"""


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("student") / "course-student"
    student_repo.build(target)
    return target


def _files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in
            p.relative_to(root).parts}


def _text(path: Path) -> str:
    """The file's text; for a notebook also its cells' sources, unescaped from JSON."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".ipynb":
        text += "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
    return text


def _secret_lines() -> set[str]:
    """Every line of 12 characters or more written between the solution or hidden-test markers of
    solutions/, except those the course shows students anyway: lines of the public part of any
    solution notebook (given code, visible tests; `for X, y in loader:` is given in exercise 04 and
    an answer in 05) and lines of the lectures (lecture 03 writes the MLP that exercise 03 asks for)."""
    secret, public = set(), [_text(path) for path in course.lecture_paths()]
    for path in course.solution_paths():
        for cell in nbformat.read(path, as_version=4).cells:
            secret |= {line.strip() for _, region in _SECRET_REGION.findall(cell.source)
                       for line in region.splitlines() if len(line.strip()) >= 12}
            public.append(_SECRET_REGION.sub("", cell.source))
    public_text = "\n".join(public)
    return {line for line in secret if line not in public_text}


MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "grader.checks")


def _leaks(texts: dict[str, str], secret: set[str]) -> list[str]:
    """What each text reveals: a marker, or a secret line (anywhere in it, indented or not)."""
    leaks = []
    for name, text in texts.items():
        leaks += [f"{name}: {marker!r}" for marker in MARKERS if marker in text]
        leaks += [f"{name}: solution or hidden-test line {line!r}" for line in sorted(secret) if line in text]
    return leaks


def test_holds_lectures_exercises_and_student_set_up_only(student):
    """Does it hold the lectures and exercises as they are here, the students' files, and nothing else
    (no solutions/, grader/, tests/, nbgrader_config.py or gradebook)?"""
    files = _files(student)
    course_notebooks = {p.relative_to(course.ROOT).as_posix() for p in course.lecture_paths() + course.exercise_paths()}
    course_notebooks |= {edition.published_path(language, source).relative_to(course.ROOT).as_posix()
                         for language in course.EDITIONS for source in edition.sources(language)}
    editions = {name for language in course.EDITIONS
                for name in (f"README.{language}.md", f"translations/{language}/glossary.csv")}
    assert set(files) == course_notebooks | STUDENT_FILES | editions
    for name in course_notebooks:
        assert files[name].read_bytes() == (course.ROOT / name).read_bytes(), f"{name} differs from this repository's"
    forbidden = [name for name in files if name.split("/")[0] in {"solutions", "grader", "tests", "submitted",
                                                                  "autograded", "feedback"}
                 or "gradebook" in name or name.endswith(("nbgrader_config.py", ".py"))]
    assert not forbidden, f"the students' repository holds {forbidden}"


def test_no_file_reveals_a_solution_or_a_hidden_test(student):
    """Does no file hold a solution or hidden-test marker, `grader.checks`, or any answer line?"""
    secret = _secret_lines()
    assert len(secret) >= 30, f"only {len(secret)} secret lines to look for: is the extraction broken?"
    # The check is not vacuous: a solution notebook with every marker line and hidden test taken out
    # (what a careless copy would publish) is still caught by its answer lines.
    for path in course.solution_paths():
        unmarked = "\n".join(line for line in _text(path).splitlines() if not any(m in line for m in MARKERS))
        assert _leaks({path.name: unmarked}, secret), f"the leak check finds no answer of {path.name}"
    leaks = _leaks({name: _text(path) for name, path in _files(student).items()}, secret)
    assert not leaks, "the students' repository reveals:\n" + "\n".join(leaks)


def test_badges_and_readme_links_open_files_of_the_student_repository(student):
    """Does every Colab badge and README link open a notebook that exists in the students' repository?"""
    prefix = notebooks.colab_prefix()
    assert course.STUDENT_REPOSITORY in prefix
    for name, path in _files(student).items():
        if path.suffix == ".ipynb":
            target = notebooks.badge_target(nbformat.read(path, as_version=4))
            assert target == prefix + name, f"{name}: badge opens {target!r}"
    readme = (student / "README.md").read_text(encoding="utf-8")
    links = _LINK.findall(readme)
    assert len([link for link in links if link.startswith(prefix)]) == len(course.lecture_paths() +
                                                                         course.exercise_paths(course.units()))
    launchers = {student_repo.binder_url(), student_repo.codespaces_url(), "https://mybinder.org/badge_logo.svg"}
    assert {student_repo.binder_url(), student_repo.codespaces_url()} <= set(links), "no Binder or Codespaces badge"
    for link in links:
        if link in launchers:
            continue
        if link.startswith("https://"):
            assert link.startswith(prefix) or link.startswith("https://github.com/"), link
            link = link.removeprefix(prefix)
        if not link.startswith("https://"):
            assert (student / link).is_file(), f"README.md links to {link}, which the students' repository lacks"
    assert "$" not in readme, "README template placeholder left unfilled"
    for language in course.EDITIONS:
        translated = (student / f"README.{language}.md").read_text(encoding="utf-8")
        opened = [link.removeprefix(prefix) for link in _LINK.findall(translated)
                  if link.startswith(prefix) or not link.startswith(("https://", "http://", "#", "mailto:"))]
        assert opened, f"README.{language}.md opens no notebook"
        for link in opened:
            assert (student / link.split("#")[0]).exists(), f"README.{language}.md links to {link}, which it lacks"
    for needed in ("pip install -r requirements.txt", "jupyter lab", "--allow-root", "my-work/", "git pull",
                   "Save a copy in Drive", "Validate", f"git clone https://github.com/{course.STUDENT_REPOSITORY}.git"):
        assert needed in readme, f"the students' README does not say {needed!r}"


def test_set_up_files_install_what_students_need_and_nothing_of_the_instructor(student):
    """Does requirements.txt name the course's packages, JupyterLab and nbgrader (Validate) with this
    repository's version ranges, and no editable install, pytest or ruff?"""
    ours = student_repo._requirement_lines((course.ROOT / "requirements.txt").read_text())
    lines = [line for line in (student / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines == [ours[name] for name in student_repo.STUDENT_PACKAGES]
    assert not any(line.startswith("-") or re.match(r"(pytest|ruff)\b", line) for line in lines), lines
    assert {"torch", "jupyterlab", "nbgrader", "ipykernel"} <= set(student_repo.STUDENT_PACKAGES)
    environment = (student / "environment.yml").read_text()
    assert "- -r requirements.txt" in environment and "grader" not in environment.replace("nbgrader", "")


def test_binder_and_codespaces_open_the_student_repository_with_torchs_cpu_build(student):
    """Do the Binder and Codespaces badges open the students' repository at its branch, and do binder/ and
    .devcontainer/ install PyTorch's CPU build and then the students' own requirements, nothing else?"""
    assert student_repo.binder_url() == (f"https://mybinder.org/v2/gh/{course.STUDENT_REPOSITORY}/"
                                         f"{course.STUDENT_BRANCH}?urlpath=lab")
    assert student_repo.codespaces_url().startswith(f"https://codespaces.new/{course.STUDENT_REPOSITORY}?")
    binder = [line for line in (student / "binder" / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    students = [line for line in (student / "requirements.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert binder == [f"--extra-index-url {student_repo.CPU_TORCH_INDEX}"] + students
    assert student_repo.CPU_TORCH_INDEX == "https://download.pytorch.org/whl/cpu"
    container = json.loads((student / ".devcontainer" / "devcontainer.json").read_text())
    steps = [step.strip() for step in container["onCreateCommand"].split("&&")]
    assert steps[0].startswith("pip install") and steps[0].endswith(f"torch --index-url {student_repo.CPU_TORCH_INDEX}")
    assert steps[1].startswith("pip install") and steps[1].endswith("-r requirements.txt")
    assert 8888 in container["forwardPorts"] and "ms-toolsai.jupyter" in container["customizations"]["vscode"][
        "extensions"]
    readme = (student / "README.md").read_text(encoding="utf-8")
    for needed in ("keeps nothing", "Download", "my-work/", "does not enforce nbgrader's locks", "jupyter lab"):
        assert needed in readme, f"the students' README does not say {needed!r}"
    # The instructor's own .devcontainer/ installs the same CPU build first.
    ours = json.loads((course.ROOT / ".devcontainer" / "devcontainer.json").read_text())
    assert ours["onCreateCommand"].startswith(f"pip install --no-cache-dir torch --index-url "
                                              f"{student_repo.CPU_TORCH_INDEX} && ")


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory):
    """A kernelspec whose Python starts with the import guard of tests/standalone_kernel.py."""
    return _kernel_specs(tmp_path_factory.mktemp("kernels"))


def test_student_notebooks_are_the_ones_run_standalone(student):
    """Is every notebook of the students' repository byte-identical to one that test_colab_standalone runs
    alone (so running only EXECUTED_HERE again, in the repository's own folders, is enough)?"""
    run_standalone = {p.relative_to(course.ROOT).as_posix(): p
                      for p in course.lecture_paths() + course.exercise_paths()}
    # The translated editions' notebooks: test_spanish runs them, and proves their code is the English code.
    translated = [edition.published_path(language, source) for language in course.EDITIONS
                  for source in edition.sources(language)]
    run_standalone |= {path.relative_to(course.ROOT).as_posix(): path for path in translated}
    for name, path in _files(student).items():
        if path.suffix == ".ipynb":
            assert name in run_standalone and path.read_bytes() == run_standalone[name].read_bytes(), name
    assert set(EXECUTED_HERE) <= set(run_standalone)


@pytest.mark.notebook
@pytest.mark.parametrize("name", EXECUTED_HERE)
def test_notebook_runs_in_a_copy_of_the_student_repository_alone(name, student, kernel_specs, tmp_path,
                                                                 record_property):
    """Copied out with only the students' repository, and with this repository out of the kernel's reach,
    does the lecture run without error, and the unsolved exercise stop only at NotImplementedError?"""
    clone = tmp_path / "clone"
    shutil.copytree(student, clone)
    # A last cell (in the copy only) shows that this very kernel cannot import the instructor's code.
    copy = nbformat.read(clone / name, as_version=4)
    copy.cells.append(nbformat.v4.new_code_cell(PROBE))
    nbformat.write(copy, clone / name)
    nb, seconds = run_in_place(clone / name, kernel_specs)
    record_property("notebook_seconds", (f"student repo {name}", seconds, course.LECTURE_BUDGET_S))
    # A kernel may send one print as several stream messages: compare what was printed, not how it was split.
    printed = "".join(out.get("text", "") for out in nb.cells[-1].outputs if out.get("output_type") == "stream")
    assert printed == "grader is hidden\n", nb.cells[-1].outputs
    assert not installs(nb), f"{name} installs something: {installs(nb)}"
    if name.startswith("lectures/"):
        assert not errors(nb), f"{name} raised: {errors(nb)}"
    else:
        assert errors(nb), f"{name} raised no NotImplementedError: are its stubs missing?"
        unexpected = [e for e in errors(nb) if e[1] != "NotImplementedError"]
        assert not unexpected, f"{name} raised: {unexpected}"


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=Instructor", "-c", "user.email=instructor@example.org",
                           "-c", "init.defaultBranch=main", *args], cwd=folder, check=True, capture_output=True,
                          text=True).stdout


def _tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_rerun_into_its_git_checkout_keeps_git_and_removes_only_stale_files(tmp_path):
    """Rerun into the students' git repository after a unit was deleted: is that unit's file removed, a
    file the instructor added kept, .git untouched, and a second rerun a no-op for git?"""
    target = tmp_path / "course-student"
    files = student_repo.contents()
    student_repo.write(target, {**files, "exercises/08_deleted/08_deleted.ipynb": b"{}\n"})
    (target / "CONTRIBUTING.md").write_text("Ask in the forum first.\n")
    _git(target, "init")
    _git(target, "add", "-A")
    _git(target, "commit", "-m", "The course, with unit 08")
    git_before = _tree_digest(target / ".git")

    written = student_repo.build(target)

    assert written.removed == ["exercises/08_deleted/08_deleted.ipynb"]
    assert written.new == written.updated == []
    assert not (target / "exercises" / "08_deleted").exists()
    assert (target / "CONTRIBUTING.md").read_text() == "Ask in the forum first.\n"
    assert _tree_digest(target / ".git") == git_before, "the command changed something under .git"
    assert set(_git(target, "status", "--porcelain").splitlines()) == {
        f" M {student_repo.MANIFEST}", " D exercises/08_deleted/08_deleted.ipynb"}
    _git(target, "commit", "-am", "Unit 08 removed")

    again = student_repo.build(target)
    assert again.new == again.updated == again.removed == []
    assert _git(target, "status", "--porcelain") == "", "a rerun with nothing changed left changes behind"
    assert "next: cd" in again.hint() and "git init" not in again.hint()

    # Students' own copies in my-work/ are ignored, so `git pull` never meets them.
    (target / "my-work" / "01_tensors").mkdir(parents=True)
    shutil.copy(target / "exercises" / "01_tensors" / "01_tensors.ipynb", target / "my-work" / "01_tensors")
    assert _git(target, "status", "--porcelain") == ""


def test_refuses_to_write_into_or_around_the_instructor_repository(tmp_path, capsys):
    """Does the command refuse this repository, a folder inside it, a folder holding it, and a foreign
    non-empty folder, writing nothing?"""
    inside = course.ROOT / "_build" / "student-repo-refused"
    foreign = tmp_path / "not-a-student-repo"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine\n")
    for target, reason in [(course.ROOT, "instructor's repository"), (inside, "instructor's repository"),
                           (course.ROOT / "lectures", "instructor's repository"),
                           (course.ROOT.parent, "holds the instructor's repository"), (foreign, "not empty")]:
        assert cli.main(["student-repo", str(target)]) == 1
        assert reason in capsys.readouterr().out
    assert not inside.exists()
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_command_prints_what_it_wrote_and_how_to_publish_it(tmp_path, capsys):
    """Does `python -m grader student-repo DIR` list the files and end with the git commands to publish?"""
    target = tmp_path / "course-student"
    assert cli.main(["student-repo", str(target)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "new       lectures/01_tensors.ipynb" in out and "new       README.md" in out
    assert out[-1].startswith(f"next: cd {target} && git init")
    assert f"https://github.com/{course.STUDENT_REPOSITORY}.git" in out[-1]


def test_refuses_to_write_a_file_that_would_leak(tmp_path, monkeypatch):
    """If a file it writes held a solution marker or a hidden check's import, does it write nothing at all?"""
    monkeypatch.setattr(student_repo, "readme", lambda: "### BEGIN SOLUTION\nfrom grader.checks import tensors\n")
    target = tmp_path / "course-student"
    with pytest.raises(student_repo.StudentRepoError, match="README.md: contains 'BEGIN SOLUTION'"):
        student_repo.build(target)
    assert not target.exists()
