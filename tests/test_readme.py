"""Do the README's commands work, exactly as written, on a fresh clone?

The commands are read from README.md's ```bash blocks, found by their program prefix (RUN below)
and run verbatim (`bash -c LINE`) from the root of a copy of the working tree (what
`git ls-files -co --exclude-standard` lists: uncommitted work included, nothing git ignores: no
.venv, no gradebook.db, no grading/), in the order of a term: release, student-repo, autograde a
mixed LMS download as a folder (twice: the second run resumes) and as a zip, nbgrader export,
every `export --lms` line (into a roster of the download's students, written where the line's
--roster says), feedback-bundle and similarity, book, and the students' `jupyter lab` in the
folder student-repo wrote. A README command that
breaks fails here; a README command this test neither runs nor lists in NOT_RUN fails here too,
so a README edit changes what this test runs. `python -m grader` run from the copy's root
imports the copy's `grader` (the working directory comes first on sys.path, ahead of the editable
install); test_commands_run_the_clones_grader checks it."""

import csv
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from lms_class import roster_for_the_download
from lms_downloads import ASSIGNMENT, FULL, MAX_SCORE, PARTIAL, ZERO, write_mixed_download, zip_folder

pytestmark = pytest.mark.notebook

REPO = Path(__file__).resolve().parent.parent
ENV_BIN = str(Path(sys.executable).parent)

# Each README command this test runs, found by its program prefix.
RELEASE = "python -m grader release"
STUDENT_REPO = "python -m grader student-repo"
AUTOGRADE = "python -m grader autograde"
EXPORT = "nbgrader export"
BOOK = "python -m grader book"
LAB = "jupyter lab"
LMS_EXPORT = "python -m grader export"
BUNDLE = "python -m grader feedback-bundle"
SIMILARITY = "python -m grader similarity"
AFTER_GRADING = (LMS_EXPORT, BUNDLE, SIMILARITY)  # every README line of these runs, after autograde
RUN = (RELEASE, STUDENT_REPO, AUTOGRADE, EXPORT, BOOK, LAB, *AFTER_GRADING)
# README commands deliberately not run here, and why.
NOT_RUN = {
    "pip install": "the environment running this test was set up with it (.ci/run runs it in a fresh venv)",
    "git clone": "needs the network: `jupyter lab` runs in the folder `python -m grader student-repo` wrote instead",
    "pytest": "that is this test suite",
    "python -m pytest": "that is this test suite",
    "bash .ci/run": "that is CI itself",
    "conda env create": "conda is not part of CI",
}
# Errors the README promises are reported fast, with a message naming the problem.
ERRORS = {
    "no such folder": ("python -m grader autograde nowhere/ --out grading/", ["nowhere"]),
    "unknown assignment": ("python -m grader autograde {folder} --out grading/ --assignment nope",
                           ["nope", ASSIGNMENT]),
    "empty folder": ("python -m grader autograde nothing-here/ --out grading/", ["nothing-here"]),
}
FAST_ERROR_S = 15  # measured ~5 s; the margin keeps a loaded CI machine from flaking
LAB_START_S = 30


# --- the README ------------------------------------------------------------------------------------

def readme_blocks(readme: Path) -> list[list[str]]:
    """The command lines of each ```bash block of the README, trailing `# comments` stripped."""
    blocks, block, pending = [], None, ""
    for raw in readme.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if block is None:
            if line.startswith("```bash"):
                block = []
            continue
        if line.startswith("```"):
            blocks.append(block)
            block = None
            continue
        line = re.sub(r"(^|\s+)#.*$", "", line).strip()
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line, pending = (pending + line).strip(), ""
        if line:
            block.append(line)
    return blocks


def readme_commands(readme: Path) -> list[str]:
    return [line for block in readme_blocks(readme) for line in block]


def starts_with(command: str, prefix: str) -> bool:
    return command == prefix or command.startswith(prefix + " ")


def autograde_paths(command: str) -> tuple[str, str]:
    """The submissions argument and the --out folder of an autograde command line."""
    args = shlex.split(command)[len(shlex.split(AUTOGRADE)):]
    source, out, skip = None, None, False
    for index, arg in enumerate(args):
        if skip:
            skip = False
        elif arg == "--out":
            out, skip = args[index + 1], True
        elif arg.startswith("--out="):
            out = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            skip = "=" not in arg and arg not in ("--force",)
        elif source is None:
            source = arg
    return source, out


def lab_folder(blocks: list[list[str]], root: Path, student_repo: Path) -> tuple[Path, str | None]:
    """Where the README runs `jupyter lab`, and the folder its block `git clone`s into (None if it
    clones nothing). The test cannot download the students' repository, so it stands the folder
    `python -m grader student-repo` wrote in for that clone."""
    for block in blocks:
        for index, line in enumerate(block):
            if not starts_with(line, LAB):
                continue
            cwd, cloned = root, None
            for before in block[:index]:
                for part in re.split(r"\s*(?:&&|;)\s*", before):
                    args = shlex.split(part)
                    positional = [a for a in args[2:] if not a.startswith("-")]
                    if args[:2] == ["git", "clone"] and positional:
                        cloned = positional[1] if len(positional) > 1 else positional[0].rsplit("/", 1)[-1]
                        cloned = cloned.removesuffix(".git")
                    elif args[:1] == ["cd"] and len(args) == 2:
                        cwd = student_repo if args[1] == cloned == student_repo.name else cwd / args[1]
            return cwd, cloned
    return root, None


# --- running commands in the clone -------------------------------------------------------------------

@dataclass
class Step:
    command: str | None
    rc: int | None = None
    output: str = ""
    seconds: float = 0.0
    missing: str = ""  # why the command was not run: the README lacks it

    def tail(self, chars: int = 3000) -> str:
        return self.output[-chars:]


def _env(**extra: str) -> dict[str, str]:
    """The caller's environment as an instructor's shell has it: the venv's bin/ on PATH (nbgrader
    runs `alembic`), none of the test suite's own settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "MPLBACKEND"}
    env["PATH"] = ENV_BIN + os.pathsep + env.get("PATH", "")
    env["CI"] = "true"
    return {**env, **extra}


def _run(command: str, cwd: Path, timeout: int = 600) -> Step:
    started = time.monotonic()
    try:
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout)
        rc, output = done.returncode, done.stdout
    except subprocess.TimeoutExpired as expired:
        rc, output = None, f"{expired.output or ''}\n[killed after {timeout} s]"
    return Step(command, rc, output, time.monotonic() - started)


def _clone(destination: Path) -> Path:
    """A fresh clone: the files `git ls-files -co --exclude-standard` lists, committed to a new repository."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name, follow_symlinks=False)
    git = ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.invalid", "-c", "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "fresh clone"]):
        subprocess.run(git + args, cwd=destination, check=True, capture_output=True)
    return destination


def _porcelain(clone: Path, *paths: str) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=clone, check=True,
                          capture_output=True, text=True).stdout


def _snapshot(out: Path) -> dict[str, str]:
    return {name: (out / name).read_text(encoding="utf-8") if (out / name).is_file() else ""
            for name in ("grades.csv", "intake.csv")}


def _start_lab(command: str, cwd: Path, scratch: Path) -> Step:
    """Start the README's `jupyter lab` line (plus --allow-root as root, as the README says) in `cwd`,
    find its URL and token in its log, list lectures/ through its REST API, stop it."""
    if os.geteuid() == 0:
        command += " --allow-root"
    config = scratch / "jupyter-config"
    config.mkdir(parents=True)
    (config / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"open_browser": False}}))
    env = _env(JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(scratch / "jupyter-runtime"), BROWSER="true")
    started = time.monotonic()
    lab = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    log: list[str] = []

    def read_log():
        for line in lab.stdout:
            log.append(line)

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    found, listing = None, ""
    try:
        while time.monotonic() - started < LAB_START_S and lab.poll() is None and not found:
            found = re.search(r"(http://[\w.\[\]:-]+:\d+)/lab\?token=(\w+)", "".join(log))
            time.sleep(0.2)
        if found:
            base, token = found.groups()
            request = urllib.request.Request(f"{base}/api/contents/lectures",
                                             headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                listing = response.read().decode()
    except OSError as error:
        listing = f"[request failed: {error}]"
    finally:
        rc = lab.poll()
        if rc is None:
            os.killpg(lab.pid, signal.SIGTERM)
            try:
                lab.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(lab.pid, signal.SIGKILL)
                lab.wait()
        reader.join(timeout=5)
    output = "".join(log) + ("" if found else f"\n[no server URL in the log after {LAB_START_S} s]")
    return Step(command, rc, output + "\nLISTING:" + listing, time.monotonic() - started)


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """Clone the working tree and run the README's commands once, in the README's order of use."""
    top = tmp_path_factory.mktemp("readme")
    clone = _clone(top / "course")
    blocks = readme_blocks(clone / "README.md")
    commands = [line for block in blocks for line in block]
    steps: dict[str, Step] = {}
    run_lines: set[str] = set()  # the README lines this test ran

    def found(prefix: str, which: str = "") -> str | None:
        lines = [c for c in commands if starts_with(c, prefix)]
        if prefix == AUTOGRADE:
            lines = [c for c in lines if (autograde_paths(c)[0] or "").endswith(".zip") == (which == "zip")]
        if lines:
            run_lines.add(lines[0])
        return lines[0] if lines else None

    def missing(prefix: str, which: str = "") -> Step:
        kind = {"zip": " whose input is a .zip", "folder": " whose input is a folder"}.get(which, "")
        return Step(None, missing=f"README.md has no `{prefix} ...` line{kind} in a ```bash block")

    def run(name: str, prefix: str, which: str = "", timeout: int = 600) -> Step:
        command = found(prefix, which)
        steps[name] = _run(command, clone, timeout) if command else missing(prefix, which)
        return steps[name]

    steps["which grader"] = _run("python -c 'import grader.course as c; print(c.ROOT)'", clone, 60)

    run("release", RELEASE, timeout=300)
    release_changes = _porcelain(clone, "exercises/")
    student_repo_command = found(STUDENT_REPO)
    student_repo = (clone / shlex.split(student_repo_command)[-1]).resolve() if student_repo_command else None
    run("student-repo", STUDENT_REPO, timeout=300)

    folder_command, zip_command = found(AUTOGRADE, "folder"), found(AUTOGRADE, "zip")
    folder, out = autograde_paths(folder_command) if folder_command else ("submissions/", "grading/")
    zip_path = autograde_paths(zip_command)[0] if zip_command else "submissions.zip"
    download = write_mixed_download(clone / folder)
    zip_folder(clone / folder, clone / zip_path)
    out = clone / (out or "grading/")

    (clone / "nothing-here").mkdir()
    errors = {name: _run(command.format(folder=folder), clone, 120) for name, (command, _) in ERRORS.items()}
    grades_after_errors = (out / "grades.csv").exists()

    snapshots = {}
    for name, which in (("autograde", "folder"), ("autograde again", "folder"), ("autograde zip", "zip")):
        run(name, AUTOGRADE, which)
        snapshots[name] = _snapshot(out)
    run("export", EXPORT, timeout=300)
    # Grades into the LMS (a roster written where each line's --roster says, for this download's students),
    # feedback zipped for it, similarity: every such README line, as written.
    after = {}
    for line in [c for c in commands if any(starts_with(c, prefix) for prefix in AFTER_GRADING)]:
        if line not in after:
            write_roster(clone, line)
            after[line] = _run(line, clone, 300)
            run_lines.add(line)
    if not any(starts_with(c, LMS_EXPORT) for c in after):
        steps["lms export"] = missing(LMS_EXPORT)
    run("book", BOOK)

    lab_command = found(LAB)
    lab_cwd, lab_cloned = lab_folder(blocks, clone, student_repo or top / "course-student")
    if not lab_command:
        steps["lab"] = missing(LAB)
    elif student_repo and lab_cloned and lab_cloned != student_repo.name:
        steps["lab"] = Step(lab_command, missing=f"the README's `{LAB}` block clones the students' repository into "
                            f"{lab_cloned}/, but `{student_repo_command}` writes {student_repo.name}/")
    elif not lab_cwd.is_dir():
        steps["lab"] = Step(lab_command, missing=f"the README runs `{LAB}` in {lab_cwd}, which does not exist")
    else:
        steps["lab"] = _start_lab(lab_command, lab_cwd, top)

    left_to_commit = _porcelain(clone)
    print("\n".join(f"{name:18} {s.seconds:6.1f} s  rc={s.rc}  {s.command or s.missing}"
                    for name, s in {**steps, **errors, **{c[:40]: s for c, s in after.items()}}.items()))
    return dict(left_to_commit=left_to_commit, after=after,
                top=top, clone=clone, commands=commands, run_lines=run_lines, steps=steps, download=download,
                out=out, snapshots=snapshots, errors=errors, grades_after_errors=grades_after_errors,
                release_changes=release_changes, student_repo=student_repo, lab_cwd=lab_cwd)


def write_roster(clone: Path, command: str) -> None:
    """The LMS's own export that a `python -m grader export` line reads, built as that LMS writes it, for the
    mixed download's students (lms_class.ROSTERS_FOR_THE_DOWNLOAD)."""
    args = shlex.split(command)
    if not starts_with(command, LMS_EXPORT) or "--roster" not in args or "--lms" not in args:
        return
    roster = clone / args[args.index("--roster") + 1]
    roster.parent.mkdir(parents=True, exist_ok=True)
    roster.write_bytes(roster_for_the_download(args[args.index("--lms") + 1]))


def ran(step: Step) -> Step:
    """The step, after checking that the README has its command and that it exited 0."""
    if step.missing:
        pytest.fail(step.missing)
    assert step.rc == 0, f"`{step.command}` exited {step.rc} in a fresh clone:\n{step.tail()}"
    return step


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(text.splitlines()))


def _outcome(score: float, max_score: float) -> str:
    if max_score == MAX_SCORE and score == max_score:
        return FULL
    if max_score == MAX_SCORE and score == 0:
        return ZERO
    return PARTIAL if 0 < score < max_score else f"{score} / {max_score}"


# --- the tests -------------------------------------------------------------------------------------

def test_readme_has_every_command_this_test_runs(readme_run):
    """Does the README show, in ```bash blocks, each command CI runs, and does CI run each one it shows?"""
    problems = [step.missing for step in readme_run["steps"].values() if step.missing]
    problems += [f"README.md shows `{c}`, which this test does not run: make it the same command as one it runs, "
                 "or teach tests/test_readme.py to run it" for c in readme_run["commands"]
                 if c not in readme_run["run_lines"] and not any(starts_with(c, prefix) for prefix in NOT_RUN)]
    assert not problems, "\n".join(problems)


def test_commands_run_the_clones_grader(readme_run):
    """Does `python -m grader` in the clone import the clone's grader, not the editable install's?"""
    step = ran(readme_run["steps"]["which grader"])
    assert Path(step.output.strip()) == readme_run["clone"], step.output


def test_release_changes_nothing_in_a_fresh_clone(readme_run):
    """Does the README's release command regenerate exercises/ byte for byte as committed?"""
    ran(readme_run["steps"]["release"])
    assert readme_run["release_changes"] == "", f"release changed exercises/:\n{readme_run['release_changes']}"


def test_student_repo_is_created_next_to_the_clone(readme_run):
    """Does the README's student-repo command write the students' repository beside the course, with no solutions?"""
    ran(readme_run["steps"]["student-repo"])
    student = readme_run["student_repo"]
    assert student.parent == readme_run["top"], f"{student} is not next to the clone"
    assert (student / "README.md").is_file(), sorted(p.name for p in readme_run["top"].iterdir())
    assert not (student / "solutions").exists(), "the student repository holds solutions/"
    leaking = [p for p in student.rglob("*.ipynb") if "BEGIN SOLUTION" in p.read_text(errors="replace")]
    assert not leaking, f"notebooks with solutions in the student repository: {leaking}"


@pytest.mark.parametrize("problem", list(ERRORS))
def test_autograde_errors_are_fast_and_named(readme_run, problem):
    """Does autograde stop at once, non-zero, with a message naming the problem instead of a traceback?"""
    step, (_, words) = readme_run["errors"][problem], ERRORS[problem]
    assert step.rc not in (0, None), f"`{step.command}` exited {step.rc}:\n{step.tail()}"
    assert step.seconds < FAST_ERROR_S, f"`{step.command}` took {step.seconds:.1f} s to report an error"
    assert "Traceback" not in step.output, f"`{step.command}` crashed instead of explaining:\n{step.tail()}"
    for word in words:
        assert word in step.output, f"`{step.command}`: its message does not name {word!r}:\n{step.tail()}"
    if problem == "empty folder":
        assert re.search(r"\bno\b.*(notebook|\.ipynb)|empty", step.output, re.I), step.tail()
    assert not readme_run["grades_after_errors"], "a run that failed wrote grades.csv"


@pytest.mark.parametrize("run", ["autograde", "autograde zip"])
def test_every_student_gets_the_expected_grade(readme_run, run):
    """Does every student of every LMS convention get one row in grades.csv, with the score their notebook earned?"""
    ran(readme_run["steps"][run])
    rows = {r["student_id"]: r for r in _csv(readme_run["snapshots"][run]["grades.csv"])
            if r["assignment"] == ASSIGNMENT}
    expected = readme_run["download"].expected
    assert sorted(rows) == sorted(expected), "grades.csv has the wrong students"
    got = {s: _outcome(float(r["score"]), float(r["max_score"])) for s, r in rows.items()}
    assert got == expected
    assert {s: r["status"] for s, r in rows.items() if r["status"] != "ok"} == {}


@pytest.mark.parametrize("run", ["autograde", "autograde zip"])
def test_intake_lists_every_notebook_and_why_it_was_ignored(readme_run, run):
    """Does intake.csv give each notebook in the download one row, and a reason for each one ignored?"""
    ran(readme_run["steps"][run])
    rows = _csv(readme_run["snapshots"][run]["intake.csv"])
    assert rows, "no intake.csv (or an empty one) in the --out folder"
    download = readme_run["download"]

    def rows_for(relative: str) -> list[dict[str, str]]:
        return [r for r in rows if r["path"] == relative or r["path"].endswith("/" + relative)]

    for relative, student in download.graded.items():
        matching = rows_for(relative)
        assert len(matching) == 1, f"intake.csv has {len(matching)} rows for {relative!r}"
        assert (matching[0]["outcome"], matching[0]["student_id"]) == ("graded", student), matching[0]
    for relative, word in download.ignored.items():
        matching = rows_for(relative)
        assert len(matching) == 1, f"intake.csv has {len(matching)} rows for {relative!r}"
        row = matching[0]
        assert row["outcome"] == "ignored" and row["reason"].strip(), f"{relative}: {row}"
        assert word.lower() in row["reason"].lower(), f"{relative}: reason {row['reason']!r} lacks {word!r}"
    assert len(rows) == len(download.graded) + len(download.ignored), "intake.csv lists notebooks not in the download"


def test_rerun_says_how_many_it_resumed(readme_run):
    """Does running the README's autograde command again skip the graded submissions and say how many?"""
    step = ran(readme_run["steps"]["autograde again"])
    count = len(readme_run["download"].expected)
    said = re.search(rf"(?<!\d){count}(?!\d)[^\n]*\bresumed\b|\bresumed\b[^\n]*(?<!\d){count}(?!\d)",
                     step.output, re.I)
    assert said, f"the second run does not say it resumed {count} submissions:\n{step.tail()}"


def test_every_student_gets_feedback(readme_run):
    """Is there a feedback page for every student graded?"""
    ran(readme_run["steps"]["autograde"])
    feedback = readme_run["out"] / "feedback"
    without = [s for s in readme_run["download"].expected if not list((feedback / s).rglob("*.html"))]
    assert not without, f"no feedback HTML under {feedback} for {without}"


def test_nbgrader_export_matches_grades_csv(readme_run):
    """Does `nbgrader export`, from the clone's root, give each student the score grades.csv gives?"""
    ran(readme_run["steps"]["export"])
    exported = [r for r in _csv((readme_run["clone"] / "grades.csv").read_text()) if r["assignment"] == ASSIGNMENT]
    ours = {r["student_id"]: (float(r["score"]), float(r["max_score"]))
            for r in _csv(readme_run["snapshots"]["autograde zip"]["grades.csv"]) if r["assignment"] == ASSIGNMENT}
    assert sorted(r["student_id"] for r in exported) == sorted(readme_run["download"].expected)
    assert {r["student_id"]: (float(r["score"]), float(r["max_score"])) for r in exported} == ours
    by_id = {r["student_id"]: r for r in exported}
    for student, (first, last) in readme_run["download"].names.items():
        assert (by_id[student]["first_name"], by_id[student]["last_name"]) == (first, last), by_id[student]


def test_formgrader_counts_every_submission(readme_run):
    """Do nbgrader's own views (formgrader) count each graded student's submission, as grades.csv does?"""
    probe = ("from nbgrader.apps import NbGraderAPI; from nbgrader.coursedir import CourseDirectory;"
             "from grader.nbgrader_api import load_config; c = load_config();"
             f"print(NbGraderAPI(coursedir=CourseDirectory(config=c), config=c).get_assignment({ASSIGNMENT!r})"
             "['num_submissions'])")
    step = ran(_run(f"python -c {shlex.quote(probe)}", readme_run["clone"], timeout=120))
    assert step.output.strip().splitlines()[-1] == str(len(readme_run["download"].expected)), step.output


def test_book_is_built_in_the_clone(readme_run):
    """Does the README's book command write _build/book/index.html in the clone?"""
    ran(readme_run["steps"]["book"])
    assert (readme_run["clone"] / "_build" / "book" / "index.html").is_file()


def test_nothing_the_commands_wrote_can_be_committed(readme_run):
    """After the whole term (release, hand-ins, grading, export, book), does git see nothing to commit,
    as the README promises: students' work and grades never reach a commit?"""
    assert readme_run["left_to_commit"] == "", f"git status in the clone:\n{readme_run['left_to_commit']}"


def test_jupyter_lab_serves_the_lectures(readme_run):
    """Does the README's `jupyter lab`, where the README runs it, start and list lectures/ within 30 s?"""
    step = readme_run["steps"]["lab"]
    if step.missing:
        pytest.fail(step.missing)
    listing = step.output.rsplit("\nLISTING:", 1)[1]
    assert listing.startswith("{"), f"`{step.command}` in {readme_run['lab_cwd']} served nothing:\n{step.tail()}"
    names = {item["name"] for item in json.loads(listing)["content"]}
    lectures = {p.name for p in (readme_run["clone"] / "lectures").glob("[0-9][0-9]_*.ipynb")}
    assert lectures and lectures <= names, f"lectures/ lists {sorted(names)}"


def _after(readme_run, prefix: str) -> list[Step]:
    steps = [step for command, step in readme_run["after"].items() if starts_with(command, prefix)]
    if not steps:
        pytest.fail(f"README.md has no `{prefix} ...` line in a ```bash block")
    return [ran(step) for step in steps]


def test_grades_go_into_the_lms_gradebooks(readme_run):
    """Does each README `export` line fill its LMS's gradebook with grades.csv's scores for the download's
    Canvas, Moodle and other students, and name those it could not place?"""
    grades = {r["student_id"]: r["score"] for r in _csv((readme_run["out"] / "grades.csv").read_text())}
    for step in _after(readme_run, LMS_EXPORT):
        args = shlex.split(step.command)
        lms, out = args[args.index("--lms") + 1], readme_run["clone"] / args[args.index("--out") + 1]
        rows = list(csv.reader(out.read_text(encoding="utf-8-sig").splitlines()))
        if lms == "canvas":  # Student, ID, SIS User ID, SIS Login ID, Section, 01_tensors (...)
            got = {r[3]: r[5] for r in rows[2:] if r[3]}  # not Canvas's test student, who has no login
            expected = {"jsmith": grades["smithjohn_4242"], "jdoe": grades["doejane_4243"],
                        "mary_ann": grades["mary_ann"], "cokafor": ""}
        else:  # First name, Last name, ID number, Institution, Department, Email address, Assignment: ...
            got = {r[5]: r[6] for r in rows[1:]}
            expected = {"john.smith@uni.example.edu": grades["john_smith_123"],
                        "jose.perez@uni.example.edu": grades["jose_perez_124"],
                        "jdoe7@uni.example.edu": grades["jdoe7"], "chidi.okafor@uni.example.edu": "-"}
        assert {k: v and float(v) if v != "-" else v for k, v in got.items()} == {
            k: v and float(v) if v != "-" else v for k, v in expected.items()}, step.output
        assert "NOT IN THE ROSTER" in step.output and "Okafor" in step.output, step.output


def test_feedback_bundle_zips_each_lms_s_pages(readme_run):
    """Does the README's feedback-bundle line zip the Canvas hand-ins' pages with their download prefix, the
    Moodle ones in their download folders, and every other student's pages in their own zip?"""
    import zipfile

    (step,) = _after(readme_run, BUNDLE)
    args = shlex.split(step.command)
    out = readme_run["clone"] / args[args.index("--out") + 1]
    names = {p.relative_to(out).as_posix(): sorted(zipfile.ZipFile(p).namelist()) for p in out.rglob("*.zip")}
    assert names.pop(f"canvas/{ASSIGNMENT}.zip") == [f"doejane_LATE_4243_998878_{ASSIGNMENT}-feedback.html",
                                                      f"smithjohn_4242_998877_{ASSIGNMENT}-feedback.html"]
    assert names.pop(f"moodle/{ASSIGNMENT}.zip") == [
        f"John Smith_123_assignsubmission_file_/{ASSIGNMENT}-feedback.html",
        f"José Pérez_124_assignsubmission_file_/{ASSIGNMENT}-feedback.html"]
    graded = {r["student_id"] for r in _csv((readme_run["out"] / "grades.csv").read_text())}
    others = graded - {"smithjohn_4242", "doejane_4243", "john_smith_123", "jose_perez_124"}
    assert names == {f"students/{s}.zip": [f"{ASSIGNMENT}/{ASSIGNMENT}.html"] for s in others}


def test_similarity_report_of_the_class(readme_run):
    """Does the README's similarity line compare the download's solved notebooks (identical copies of one
    solution: the top pairs share everything) and leave out the unsolved ones, writing its report?"""
    (step,) = _after(readme_run, SIMILARITY)
    assert re.search(r"1\. \S+\s+\S+\s+100%\s+100%", step.output), step.output
    for unsolved in ("jose_perez_124", "john_doe"):
        assert f"not compared: {unsolved}" in step.output
    assert (readme_run["out"] / "similarity" / f"{ASSIGNMENT}.html").is_file()
