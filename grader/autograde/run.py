"""Grade a whole class: preflight every submission, execute in parallel, then let nbgrader
record every grade, one at a time, in the instructor's gradebook.

What nbgrader autograde reads from nbgrader_config.py is read here too, with the command line's
`--Class.trait=value` options and the kit's own flags overriding it: Execute.timeout (the cell
timeout), CourseDirectory's student_id, notebook_id, student_id_exclude, ignore, db_url and
folders, Autograde.exclude_overwriting and create_student, and everything nbgrader's own
converter applies when it records (late penalties, IgnorePattern, LimitOutput, hooks).
"""

import dataclasses
import fnmatch
import hashlib
import json
import os
import queue
import re
import shutil
import stat
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import nbgrader
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters.autograde import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute
from nbgrader.utils import find_all_files, parse_utc
from tqdm.auto import tqdm
from traitlets.config import Config

import grader
from grader import course, late, notebooks, release
from grader.autograde import feedback, intake, preflight, report, sandbox
from grader.autograde import trusted as trusted_side
from grader.autograde import worker as worker_side
from grader.autograde.replay import ReplayExecute, executed_path
from grader.autograde.report import Status
from grader.autograde.unexecuted import ENAME, mark_unexecuted
from grader.autograde.worker import KERNEL_DIED, Worker
from grader.nbgrader_api import api, load_config


@dataclass
class Job:
    student: str
    assignment: str
    notebook: str
    sanitized: Path
    files: list[tuple[str, Path]] = field(default_factory=list)  # (path in the work folder, file copied there)
    status: str = Status.OK
    detail: str = ""
    seconds: float = 0.0
    span: tuple[float, float] = (0.0, 0.0)  # when its kernel ran (time.monotonic)
    judge_seconds: float = 0.0
    language: str = "en"  # the edition the hand-in was made from: its feedback page is in that language


REMOTE_THREADS = 64  # submissions awaited from a cluster at once (each thread then judges its own)
LOGS = "logs"  # OUT/logs/<student>/<assignment>/: each submission's driver log and nbgrader's log
VERSIONS = "versions.json"  # OUT/work/: the grader's and each assignment's version at the last run
MAX_STUDENT_FILES = 1000


def _ensure_assignments(names: list[str], db_url: str) -> dict[str, str]:
    """nbgrader grades against the cells recorded in the gradebook: bring its copy of each assignment up to
    date with solutions/ first, as `nbgrader generate_assignment --force` does, so no test is graded stale.
    Returns, for each assignment nbgrader refused to update, why."""
    return release.update_gradebook(names, db_url) if names else {}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def grader_version(limits: sandbox.Limits, overrides: Config | None) -> str:
    """What a grade depends on besides the hand-in and the assignment: this grader's code (judges and
    observers included), the course's nbgrader_config.py, nbgrader, the limits and the command line's options."""
    package = Path(grader.__file__).resolve().parent
    parts = [f"{path.relative_to(package).as_posix()}:{_digest(path.read_bytes())}"
             for path in sorted(package.rglob("*.py")) if "__pycache__" not in path.parts]
    config_file = course.ROOT / "nbgrader_config.py"
    parts += [_digest(config_file.read_bytes()) if config_file.exists() else "", nbgrader.__version__,
              repr(limits), json.dumps(overrides or {}, sort_keys=True, default=str)]
    return _digest("\n".join(parts).encode())


def assignment_version(db_url: str, course_id: str, assignment: str, excluded: list[str], ignore: list[str]) -> str:
    """The assignment as grading sees it: the gradebook's cells (tests, points, locked sources) and the files
    of its source folder that each submission's folder receives."""
    parts = [json.dumps(sorted(excluded))]
    with Gradebook(db_url, course_id=course_id) as gradebook:
        try:
            record = gradebook.find_assignment(assignment)
        except MissingEntry:
            return ""
        for notebook in sorted(record.notebooks, key=lambda n: n.name):
            parts.append(notebook.name)
            parts += sorted(f"grade {c.name} {c.cell_type} {c.max_score}" for c in notebook.grade_cells)
            parts += sorted(f"source {c.name} {c.cell_type} {c.locked} {c.checksum} {c.source}"
                            for c in notebook.source_cells)
    for relative, path in _source_files(assignment, excluded, ignore):
        parts.append(f"file {relative} {_digest(path.read_bytes())}")
    return _digest("\n".join(parts).encode())


def _changes(work: Path, grader_key: str, assignment_keys: dict[str, str]) -> list[str]:
    """What changed since the last run into this folder (the grader, an assignment's tests): the reason the
    submissions graded then are graded again. Records this run's versions."""
    path = work / VERSIONS
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        before = {}
    before = before if isinstance(before, dict) else {}
    recorded = before.get("assignments") if isinstance(before.get("assignments"), dict) else {}
    changed = ["the grader or its settings changed"] if before.get("grader") not in (None, grader_key) else []
    changed += [f"the tests of {name} changed" for name, key in sorted(assignment_keys.items())
                if recorded.get(name) not in (None, key)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"grader": grader_key, "assignments": {**recorded, **assignment_keys}}, indent=1))
    return changed


def _source_files(assignment: str, excluded: list[str], ignore: list[str]) -> list[tuple[str, Path]]:
    """The assignment's own files (data, modules, in any subfolder) that nbgrader copies over each submission's
    folder, less those `Autograde.exclude_overwriting` leaves to the student."""
    source = course.SOLUTIONS / assignment
    found = []
    for name in sorted(find_all_files(str(source), ignore + ["*.ipynb"])):
        relative = Path(name).relative_to(source).as_posix()
        if relative not in {Path(x).as_posix() for x in excluded}:
            found.append((relative, Path(name)))
    return found


def _student_files(folder: Path | None, ignore: list[str], max_bytes: int) -> tuple[list[tuple[str, Path]], list[str]]:
    """The other files of a student's assignment folder (nbgrader's layout), as nbgrader copies them: every
    regular file but notebooks, in any subfolder. Links are never followed; a file over the size cap is left out.
    Returns the files and notes on what was left out."""
    if folder is None:
        return [], []
    files, notes = [], []
    for name in sorted(find_all_files(str(folder), ignore + ["*.ipynb"])):
        relative = Path(name).relative_to(folder).as_posix()
        info = os.lstat(name)
        if not stat.S_ISREG(info.st_mode):
            notes.append(f"left out {relative} (a link, not a file)")
        elif info.st_size > max_bytes:
            notes.append(f"left out {relative} ({info.st_size / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} MiB "
                         "limit)")
        elif len(files) >= MAX_STUDENT_FILES:
            notes.append(f"left out {relative} (more than {MAX_STUDENT_FILES} files)")
        else:
            files.append((relative, Path(name)))
    return files, notes


def default_limits(config: Config, cell_timeout_s: int | None = None, notebook_timeout_s: int | None = None,
                   **others) -> sandbox.Limits:
    """The limits of a run: the command line's, else nbgrader_config.py's `Execute.timeout` for a cell (the
    whole notebook then gets at least five times as long), else the sandbox's defaults."""
    defaults = sandbox.Limits()
    if cell_timeout_s is None:
        cell_timeout_s = Execute(config=config).timeout
        if cell_timeout_s is not None and cell_timeout_s <= 0:
            cell_timeout_s = None  # nbclient: no limit per cell; the notebook's limit still holds
        if notebook_timeout_s is None and cell_timeout_s:
            notebook_timeout_s = max(defaults.notebook_timeout_s, 5 * cell_timeout_s)
    values = {"cell_timeout_s": cell_timeout_s,
              "notebook_timeout_s": notebook_timeout_s or defaults.notebook_timeout_s,
              **{name: value for name, value in others.items() if value is not None}}
    return dataclasses.replace(defaults, **values)


def _nbgrader_default(name: str) -> list:
    """nbgrader's own list of preprocessors for a step of `nbgrader autograde`."""
    return list(Autograde.class_traits()[name].default())


class SanitizeError(RuntimeError):
    """One of nbgrader's own sanitising steps stopped on a notebook that was read fine."""


def _sanitize(nb, config, db_url: str, student: str, assignment: str, notebook: str):
    """nbgrader's own sanitising step (restore locked and test cells from the gradebook, ...)."""
    resources = {"nbgrader": {"db_url": db_url, "assignment": assignment, "notebook": notebook, "student": student}}
    for preprocessor in _nbgrader_default("sanitize_preprocessors"):
        try:
            nb, resources = preprocessor(config=config).preprocess(nb, resources)
        except Exception as error:  # noqa: BLE001 -- named and reported as this submission's error
            raise SanitizeError(f"nbgrader's {preprocessor.__name__} stopped on it "
                                f"({type(error).__name__}: {str(error)[:300]})") from error
    return nb


def _execute(job: Job, slot: int, worker: Worker, run_sandbox: sandbox.Sandbox, limits: sandbox.Limits,
             skip_tag: str, out_dir: Path, hidden: list[str] | None, logs: Path | None = None) -> Job:
    """Run one notebook in a throwaway folder under the slot's user and limits."""
    # The student's folder and the trusted driver's files live side by side: the driver never writes, and this
    # process never reads, anything at a path the student's code could have replaced.
    job_root = Path(tempfile.mkdtemp(prefix="grading-"))
    job_root.chmod(0o711)  # the slot's user may pass through to its folder, never list or enter `trusted`
    workdir, trusted = job_root / "work", job_root / "trusted"
    workdir.mkdir()
    trusted.mkdir(mode=0o700)
    box = run_sandbox.submission(slot)  # a fresh cgroup (if the containment has one), the slot's user of this run
    try:
        (workdir / ".home").mkdir()
        shutil.copy(job.sanitized, workdir / f"{job.notebook}.ipynb")
        shutil.copy(job.sanitized, trusted / worker_side.SUBMISSION)
        for relative, source in job.files:  # the student's files, then the assignment's, as in nbgrader's autograded/
            (workdir / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, workdir / relative)
        spec = worker_side.job_spec(workdir, trusted, limits, skip_tag, box, hidden)
        if box.uid is not None:
            for path in [workdir, *workdir.rglob("*")]:
                shutil.chown(path, box.uid, box.gid)
        start = time.monotonic()
        finished = worker.run(spec, limits.notebook_timeout_s,
                              on_timeout=box.kill)
        job.span = (start, time.monotonic())
        job.seconds = job.span[1] - start
        log = trusted_side.read_capped(trusted / worker_side.DRIVER_LOG, 2**20) or b""
        if logs is not None:  # kept for the instructor: why a kernel died, what the driver saw
            _write_log(logs / job.student / job.assignment / f"{job.notebook}.driver.log", log)
        nb = _collect(job, trusted, not finished, log, limits)
        target = executed_path(out_dir, job.student, job.assignment, job.notebook)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(nbformat.writes(nb), encoding="utf-8")
    finally:
        box.close()  # nothing of this submission outlives its grading, however it detached
        shutil.rmtree(job_root, ignore_errors=True)
    return job


def _write_log(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _failed(job: Job, detail: str, judged_dir: Path) -> Job:
    """A failure of the grading machinery on one submission (a worker that died or stopped answering, a file
    that could not be copied, a judge that crashed or ran too long): that submission scores 0 with the reason,
    and the class goes on."""
    job.status, job.detail = Status.ERROR, detail
    try:
        nb = mark_unexecuted(nbformat.read(job.sanitized, as_version=4), 0, "the grader failed: " + job.detail)
        target = executed_path(judged_dir, job.student, job.assignment, job.notebook)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(nbformat.writes(nb), encoding="utf-8")
    except Exception:  # noqa: BLE001 -- then nbgrader cannot record it either, which is caught there
        pass
    return job


def _read_notebook(path: Path, limit: int) -> nbformat.NotebookNode | None:
    data = trusted_side.read_capped(path, limit)
    try:
        return nbformat.reads(data.decode("utf-8"), as_version=4) if data is not None else None
    except Exception:  # noqa: BLE001 -- a half-written checkpoint is as good as none
        return None


def _collect(job: Job, trusted: Path, timed_out: bool, stderr: bytes, limits: sandbox.Limits):
    """The executed notebook, or as much of it as ran, with every unrun cell marked as such."""
    cap = limits.max_executed_bytes
    executed = None if timed_out else _read_notebook(trusted / worker_side.EXECUTED, cap)
    if executed is not None:
        nb = executed
        if any(o.get("ename") == ENAME and KERNEL_DIED in o.get("evalue", "") for c in nb.cells
               for o in c.get("outputs", [])):
            job.status, job.detail = Status.KERNEL_DIED, "the kernel died; cells after that point score 0"
    elif (trusted / worker_side.EXECUTED).exists() and (trusted / worker_side.EXECUTED).stat().st_size > cap:
        nb = nbformat.read(job.sanitized, as_version=4)
        job.status = Status.TOO_LARGE
        job.detail = (f"its outputs made the executed notebook larger than {cap // 2**20} MiB; print less "
                      "(every cell scores 0)")
        mark_unexecuted(nb, 0, job.detail)
    else:
        nb = _read_notebook(trusted / worker_side.PARTIAL, cap) or nbformat.read(job.sanitized, as_version=4)
        unrun = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()
                 and c.execution_count is None]
        ran = unrun[0] if unrun else len(nb.cells)
        if timed_out:
            job.status = Status.TIMEOUT
            job.detail = f"the notebook ran longer than {limits.notebook_timeout_s} s; cells after that score 0"
            mark_unexecuted(nb, ran, f"grading stopped after {limits.notebook_timeout_s} s")
        else:
            tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
            job.status, job.detail = Status.KERNEL_DIED, f"grading process ended early ({tail[0][:200]})"
            mark_unexecuted(nb, ran, "the kernel could not start or the grading process failed")
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("ename") == "CellTimeoutError" and job.status == Status.OK:
                job.status = Status.TIMEOUT
                job.detail = f"a cell ran longer than {limits.cell_timeout_s} s (Execute.timeout) and scored 0"
    return nb


def _record_zero(db_url: str, course_id: str, student: str, assignment: str) -> None:
    """A submission nbgrader cannot read still gets a row in the gradebook: zero, not absent."""
    with Gradebook(db_url, course_id=course_id) as gradebook:
        gradebook.update_or_create_student(student)
        submission = gradebook.update_or_create_submission(assignment, student)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
        gradebook.db.commit()


def _grading_config(out: Path, db_url: str | None, autograded: Path | None, overrides: Config | None = None,
                    notebook: str | None = None):
    """The course's nbgrader config (then the command line's `--Class.trait=value` options), pointed at this
    run's staging folders, with Execute replayed."""
    work = out / "work"
    folders = {"submitted_directory": str(work / "submitted")}
    if db_url:
        folders["db_url"] = db_url
    if autograded:
        folders["autograded_directory"] = str(Path(autograded).resolve())
    if notebook:
        folders["notebook_id"] = notebook
    config = load_config(overrides, **folders)
    config.Autograde.autograde_preprocessors = [
        ReplayExecute if p.__name__ == "Execute" else p for p in _nbgrader_default("autograde_preprocessors")
    ]
    config.ReplayExecute.judged_directory = str(work / "judged")
    steps = config.Autograde.autograde_preprocessors
    if ReplayExecute not in steps or any(p.__name__ == "Execute" for p in steps):
        # Fail closed: without the swap nbgrader would run student code itself, unjailed, and score what it printed.
        raise RuntimeError(f"this nbgrader's autograde steps ({[p.__name__ for p in steps]}) cannot be replayed: "
                           "its Execute step was not replaced, so grading stops here")
    return config


@dataclass
class _Settings:
    """What preparing a submission needs to know about this run."""

    config: Config
    db_url: str
    course_id: str
    work: Path
    limits: sandbox.Limits
    notebook: str  # nbgrader's --notebook: a glob of the notebooks graded in this run ("*": all)
    excluded_files: dict[str, list[str]]  # Autograde.exclude_overwriting: the student's version is used
    ignore: list[str]  # CourseDirectory.ignore: files never copied
    grader_key: str
    assignment_keys: dict[str, str]
    refused: dict[str, str]  # assignments whose gradebook copy nbgrader would not update, and why
    create_student: bool
    known_students: set[str]


@dataclass
class _Pending:
    """A submission graded in this run."""

    prepared: list[preflight.Prepared]
    key: str = ""  # resume key for grades.csv ("" never resumes)
    problem: tuple[str, str] | None = None  # (status, detail) when it is not graded at all
    notes: list[str] = field(default_factory=list)
    staged: bool = False  # in the staging submitted/ folder: nbgrader records it
    marked_late: bool = False  # the LMS says it came in late


def _problem(submission: intake.Submission, files: list[tuple[str, Path]], settings: _Settings):
    """Why a submission is not graded at all, as nbgrader autograde would refuse it too (None if it is)."""
    if submission.assignment in settings.refused:
        return Status.ERROR, (f"not graded: nbgrader could not update the gradebook's copy of {submission.assignment} "
                         f"from solutions/ ({settings.refused[submission.assignment]}), and old tests are never used")
    if not settings.create_student and submission.student not in settings.known_students:
        return Status.ERROR, ("not graded: no such student in the gradebook, and Autograde.create_student is False "
                         "(nbgrader autograde refuses it too): add the student, then rerun")
    stamp = dict(files).get("timestamp.txt")
    if stamp is not None:
        text = stamp.read_text(encoding="utf-8", errors="replace").strip()
        try:
            if text:
                parse_utc(text)
        except Exception:  # noqa: BLE001 -- nbgrader stops the whole run here; we stop this submission only
            return Status.ERROR, (f"not graded: its timestamp.txt holds {text[:60]!r}, which is not a date nbgrader "
                                  "can read: correct it and rerun")
    return None


def _prepare(taken: intake.Intake, previous, settings: _Settings, pending: dict, start, prepared) -> dict:
    """Preflight, sanitise and stage every submission not graded before, assignment by assignment, into `pending`.
    Each notebook goes to `start` as soon as its submission is ready, so kernels run while the rest is prepared,
    and `prepared(assignment, entries)` is called once all of an assignment is, with its entries in `pending`.
    Returns the resumed rows."""
    resumed: dict[tuple[str, str], report.Row] = {}
    released = {path.relative_to(course.EXERCISES).with_suffix("").as_posix(): notebooks.read(path)
                for path in course.exercise_paths()}
    ordered = sorted(taken.submissions, key=lambda s: (s.assignment, s.student))
    for index, submission in enumerate(ordered):
        key = submission.student, submission.assignment
        if index and ordered[index - 1].assignment != submission.assignment:
            prepared(ordered[index - 1].assignment, _entries_of(pending, ordered[index - 1].assignment))
        jobs: list[Job] = []
        try:
            _prepare_one(submission, taken, previous, settings, released, resumed, pending, jobs)
        except Exception as error:  # noqa: BLE001 -- a file that cannot be read or staged costs this submission only
            shutil.rmtree(settings.work / "submitted" / submission.student / submission.assignment, ignore_errors=True)
            resumed.pop(key, None)
            pending[key] = _Pending(pending[key].prepared if key in pending else [], problem=(
                Status.ERROR, f"could not be prepared for grading ({type(error).__name__}: {str(error)[:200]}); rerun"))
            continue
        for job in jobs:
            start(job)
    if ordered:
        prepared(ordered[-1].assignment, _entries_of(pending, ordered[-1].assignment))
    return resumed


def _entries_of(pending: dict, assignment: str) -> dict:
    """The entries of one assignment, copied here, in the thread that fills `pending`, so that the recorder's
    thread never reads a dict that grows."""
    return {key: entry for key, entry in pending.items() if key[1] == assignment}


def _prepare_one(submission: intake.Submission, taken: intake.Intake, previous, settings: _Settings, released,
                 resumed: dict, pending: dict, jobs: list) -> None:
    """Preflight, sanitise and stage one submission, unless it is unchanged since it was graded."""
    key = student, assignment = submission.student, submission.assignment
    expected = sorted(p.stem for p in (course.SOLUTIONS / assignment).glob("*.ipynb"))
    prepared = []
    chosen = preflight.choose_files(submission.files, expected)
    for path in set(submission.files) - {path for path, _ in chosen.values()}:
        graded = ", ".join(sorted(p.name for p, _ in chosen.values() if p))
        taken.ignore(path, f"another file was graded for this assignment ({graded or 'none'})"
                     if graded else f"matches none of the assignment's notebooks ({', '.join(expected)})")
    selected = {name for name in expected if fnmatch.fnmatchcase(name, settings.notebook)}
    for name, (path, note) in chosen.items():
        if path is not None and name not in selected:
            taken.ignore(path, f"not selected by --notebook {settings.notebook}: its earlier grade stays")
        try:
            item = preflight.prepare(path, name, settings.limits.max_submission_bytes,
                                     released.get(f"{assignment}/{name}"))
        except OSError as error:  # unreadable: this hand-in only
            item = preflight.Prepared(name, Status.ERROR, f"{path.name} could not be read ({error})")
        item.notes = ([note] if note else []) + item.notes
        prepared.append(item)
    files, file_notes = _student_files(submission.folder, settings.ignore, settings.limits.max_submission_bytes)
    stamp = None  # when nbgrader's own timestamp.txt is absent: the LMS's time, in timestamp.txt's format
    if submission.submitted_at and "timestamp.txt" not in dict(files):
        stamp = late.timestamp_text(submission.submitted_at)
    handed_in = ([f"{p.notebook}:{p.sha256}" for p in prepared]
                 + [f"{relative}:{_digest(path.read_bytes())}" for relative, path in files]
                 + [f"time:{stamp}", f"marked late:{submission.marked_late}"])
    resume_key = "" if settings.notebook != "*" else _digest(json.dumps(
        [handed_in, settings.grader_key, settings.assignment_keys.get(assignment, "")]).encode())
    if resume_key and key in previous and previous[key].sha256 == resume_key:
        resumed[key] = previous[key]  # graded before, and nothing it depends on has changed: resume
        return
    entry = pending[key] = _Pending(prepared, resume_key, notes=file_notes, marked_late=submission.marked_late)
    entry.problem = _problem(submission, files, settings)
    if entry.problem:
        return
    sanitized = {}
    for item in prepared:
        if item.status == Status.OK and item.notebook in selected:
            try:
                sanitized[item.notebook] = _sanitize(item.nb, settings.config, settings.db_url, student,
                                                     assignment, item.notebook)
            except SanitizeError as error:  # a readable notebook nbgrader's own steps refuse: this one only
                item.status = Status.ERROR
                item.detail = f"{error}; open it in Jupyter, check its cells, hand it in again"
    if not sanitized:
        return  # nothing to run: recorded as zero, with the reason
    # Staged as nbgrader's submitted/<student>/<assignment>/: the student's files (timestamp.txt included),
    # then every notebook to keep (one left out would be zeroed as missing).
    staged = settings.work / "submitted" / student / assignment
    for relative, source in files:
        (staged / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, staged / relative)
    if stamp:
        staged.mkdir(parents=True, exist_ok=True)
        (staged / "timestamp.txt").write_text(stamp, encoding="utf-8")  # nbgrader reads the time from here
    for item in prepared:
        if item.status == Status.OK:
            notebooks_path = staged / f"{item.notebook}.ipynb"
            notebooks_path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(item.nb, notebooks_path)
    entry.staged = True
    # The kernel's folder is nbgrader's autograded/ folder: the student's files, then the assignment's own
    # over them, except those Autograde.exclude_overwriting leaves to the student.
    given = {relative: staged / relative for relative, _ in files}
    given.update(_source_files(assignment, settings.excluded_files.get(assignment, []), settings.ignore))
    languages = {item.notebook: item.language for item in prepared}
    for name, nb in sanitized.items():
        target = settings.work / "sanitized" / student / assignment / f"{name}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        jobs.append(Job(student, assignment, name, target, files=sorted(given.items()), language=languages[name]))


class _Execution:
    """Each notebook runs on the next free worker slot as soon as it is prepared; the trusted pool judges it while
    the slot takes the next one."""

    def __init__(self, workers: list[Worker], judges: trusted_side.Pool, limits: sandbox.Limits, skip_tag: str,
                 work: Path, progress: bool, hidden: list[str] | None, logs: Path, containment: str, remote=None):
        self.workers, self.judges, self.limits, self.skip_tag = workers, judges, limits, skip_tag
        self.remote = remote  # a cluster.Dispatch: notebooks execute on a Dask cluster, not in `workers`
        self.executed, self.judged, self.hidden, self.logs = work / "executed", work / "judged", hidden, logs
        self.slots: queue.Queue[tuple[int, Worker]] = queue.Queue()
        for slot, worker in enumerate(workers):
            self.slots.put((slot, worker))
        # slot users no other run shares (a cluster's worker nodes have their own)
        self.sandbox = sandbox.Sandbox(containment, len(workers), limits) if remote is None else None
        # On a cluster a thread waits for each submission in flight, however many nodes run them.
        self.threads = ThreadPoolExecutor(max_workers=(len(workers) or REMOTE_THREADS) + judges.processes)
        self.futures = []
        self.by_assignment: dict[str, list] = {}
        self.bar = tqdm(total=0, desc="grading", unit="nb", disable=not progress)

    def start(self, job: Job) -> None:
        self.bar.total += 1
        future = self.threads.submit(self._grade, job, self.remote.submit(job) if self.remote else None)
        self.futures.append(future)
        self.by_assignment.setdefault(job.assignment, []).append(future)

    def futures_of(self, assignment: str) -> list:
        return list(self.by_assignment.get(assignment, []))

    def _grade(self, job: Job, remote_result=None) -> Job:
        try:
            if remote_result is not None:
                try:
                    self.remote.collect(job, remote_result, self.executed, self.logs)
                except Exception as error:  # noqa: BLE001 -- a shard lost or refused costs its submissions only
                    return _failed(job, f"not executed on the cluster: {str(error)[:400]}; rerun", self.judged)
            else:
                slot, worker = self.slots.get()
                try:
                    _execute(job, slot, worker, self.sandbox, self.limits, self.skip_tag, self.executed,
                             self.hidden, self.logs)
                except Exception as error:  # noqa: BLE001 -- one submission can never cost the class
                    if worker.busy:
                        worker.kill()  # it failed mid-job, in a state nobody knows: the slot's next job starts afresh
                    return _failed(job, f"grading failed before its cells could run ({type(error).__name__}: "
                                        f"{str(error)[:200]}); rerun", self.judged)
                finally:
                    self.slots.put((slot, worker))
            paths = [executed_path(root, job.student, job.assignment, job.notebook)
                     for root in (self.executed, self.judged)]
            try:
                job.judge_seconds = self.judges.judge(paths[0], job.sanitized, paths[1],
                                                      self.limits.max_executed_bytes)
            except Exception as error:  # noqa: BLE001 -- fail closed: no verdict, no points, and the reason
                _write_log(self.logs / job.student / job.assignment / f"{job.notebook}.judge.log",
                           "".join(traceback.format_exception(error)).encode())
                return _failed(job, f"its tests could not be judged ({type(error).__name__}: {str(error)[:200]}); "
                                    "rerun, and tell the course's maintainers if it happens again", self.judged)
            return job
        finally:
            self.bar.update(1)

    def finish(self) -> list[Job]:
        """Every job, once executed and judged (waits for them)."""
        if self.remote is not None:
            self.remote.flush()  # the last shard leaves now, not after its wait
        return [future.result() for future in self.futures]

    def close(self) -> None:
        """Once the jobs running now are done (after a failure, none more starts): let the run's slots go."""
        self.threads.shutdown(cancel_futures=True)
        self.bar.close()
        if self.sandbox is not None:
            self.sandbox.close()


_LOG_RECORD = re.compile(r"^\[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\] ", re.M)


def split_nbgrader_log(text: str, assignment: str) -> dict[str, tuple[str, str]]:
    """nbgrader's log of one assignment's autograde, per student: {student: (their part, the error it ended
    with, or "")}. A record belongs to the student whose folder or id it names, else to the one before."""
    mentions = re.compile(r"[/\\](?:submitted|autograded)[/\\](?P<path>[^/\\\n]+)[/\\]" + re.escape(assignment)
                          + r"(?:[/\\\s']|$)|student with ID '(?P<id>[^'\n]+)'")
    parts: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    current, failing = None, False
    starts = [m.start() for m in _LOG_RECORD.finditer(text)] + [len(text)]
    for begin, end in zip(starts, starts[1:]):
        record = text[begin:end]
        found = mentions.search(record)
        if found and not failing:
            current = found["path"] or found["id"]
        if current is None:
            continue
        parts.setdefault(current, []).append(record)
        if "There was an error processing assignment" in record:
            failing = True  # the traceback that follows is this student's
            errors[current] = "nbgrader could not record this submission"
        elif failing and record.startswith("[ERROR]"):
            lines = [line.strip() for line in record.strip().splitlines() if line.strip()]
            errors[current] = f"nbgrader could not record this submission ({lines[-1][:300]})"
            failing = False
    return {student: ("".join(records), errors.get(student, "")) for student, records in parts.items()}


class _Recorder:
    """nbgrader's own autograde converter writes the grades, one assignment at a time, in one thread of this
    process, as soon as every notebook of that assignment is executed and judged (while the next assignment's
    kernels run); `finish_assignment` then makes that assignment's rows. Submissions are prepared assignment by
    assignment for this."""

    def __init__(self, nbgrader_api, execution: "_Execution", settings: _Settings, logs: Path, finish_assignment):
        self.api, self.execution, self.settings, self.logs = nbgrader_api, execution, settings, logs
        self.finish_assignment = finish_assignment
        self.thread = ThreadPoolExecutor(max_workers=1)  # one writer of the gradebook
        self.recordings = []

    def prepared(self, assignment: str, entries: dict) -> None:
        """Every submission of `assignment` (`entries`) is prepared: record it once its notebooks are graded."""
        self.recordings.append(self.thread.submit(self._record, assignment, entries,
                                                  self.execution.futures_of(assignment)))

    def _record(self, assignment: str, entries: dict, futures) -> dict:
        wait(futures)
        reasons = self._convert(assignment, entries) if any(entry.staged for entry in entries.values()) else {}
        return self.finish_assignment(entries, [future.result() for future in futures], reasons)

    def _convert(self, assignment: str, entries: dict) -> dict[tuple[str, str], str]:
        """Run nbgrader's converter on the assignment; returns each submission it could not record, with why."""
        # One converter per assignment, not per student: its start-up dominates recording a grade.
        # A submission it fails on is skipped by nbgrader and caught by _check_recorded.
        try:
            result = self.api.autograde(assignment, "*", force=True, create=self.settings.create_student)
            text = (result.get("log") or "") + (f"\n{result['error']}" if result.get("error") else "")
        except Exception:  # noqa: BLE001 -- whatever it was, it is this assignment's, and it is kept
            text = traceback.format_exc()
        _write_log(self.logs / "nbgrader" / f"{assignment}.log", text.encode())
        reasons = {}
        for student, (part, error) in split_nbgrader_log(text, assignment).items():
            if (student, assignment) in entries:
                _write_log(self.logs / student / assignment / "nbgrader.log", part.encode())
            if error:
                reasons[student, assignment] = error
        return reasons

    def finish(self) -> dict:
        """Once every assignment is recorded: what `finish_assignment` made of each, merged."""
        try:
            return {key: made for recording in self.recordings for key, made in recording.result().items()}
        finally:
            self.thread.shutdown()


def _check_recorded(pending: dict, by_key: dict, reasons: dict, autograded_root: Path, since: float,
                    settings: _Settings) -> None:
    """Every submission has its grade in the gradebook: those nbgrader could not record get nbgrader's reason and
    a zero, and those with nothing to run a zero."""
    for key, entry in pending.items():
        student, assignment = key
        if entry.problem:
            continue  # not graded at all: the gradebook keeps what it had
        if not entry.staged:  # nothing could run (missing, unreadable, too large): zero, and no stale copy left
            if settings.create_student or student in settings.known_students:
                _record_zero(settings.db_url, settings.course_id, student, assignment)
            shutil.rmtree(autograded_root / student / assignment, ignore_errors=True)
            continue
        recorded = [autograded_root / student / assignment / f"{job.notebook}.ipynb" for job in by_key.get(key, [])]
        if not all(path.exists() and path.stat().st_mtime >= since for path in recorded):
            job = by_key[key][0]
            job.status = Status.ERROR
            job.detail = reasons.get(key, "nbgrader could not record this submission") + f"; see {LOGS}/"
            _record_zero(settings.db_url, settings.course_id, student, assignment)


def _rows_of(entries: dict, jobs: list[Job], reasons: dict, autograded_root: Path, since: float,
             settings: _Settings) -> dict[tuple[str, str], report.Row]:
    """The rows of one assignment's submissions once nbgrader has recorded it: what the gradebook holds, and the
    first problem met on the way (else the notes)."""
    by_key: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        by_key.setdefault((job.student, job.assignment), []).append(job)
    _check_recorded(entries, by_key, reasons, autograded_root, since, settings)
    unread = ""
    try:
        scores = _scores(settings.db_url, settings.course_id, set(entries))
    except Exception as error:  # noqa: BLE001 -- the rows are still written, saying so
        scores, unread = {}, f"; the gradebook could not be read back ({type(error).__name__}: {str(error)[:200]})"
    rows = {}
    for key, entry in entries.items():
        problems = [entry.problem] if entry.problem else []
        problems += [(p.status, p.detail) for p in entry.prepared if p.status != Status.OK]
        problems += [(j.status, j.detail) for j in by_key.get(key, []) if j.status != Status.OK]
        notes = [n for p in entry.prepared for n in p.notes] + entry.notes
        found = {"score": 0.0, "max_score": 0.0, **scores.get(key, {})}
        if entry.marked_late and not (found.get("submitted_at") and found.get("due")):
            found["late"] = True  # the LMS knows; the gradebook cannot tell how late
            why = ("gives no time (the entries of the LMS's zip download carry it)" if not found.get("submitted_at")
                   else f"{key[1]} has no due date (DueDates.dates in nbgrader_config.py)")
            notes.append(f"the LMS marks it late but {why}: no late penalty was taken")
        status, detail = problems[0] if problems else (Status.OK, "; ".join(notes))
        rows[key] = report.Row(*key, status=status, detail=detail + unread, **found,
                               # a failure of the grader itself is retried by the next run
                               sha256=entry.key if status != Status.ERROR else "")
    return rows


def _take_in(submissions: Path, known: list[str], single: bool, out: Path, filename_regex: str | None,
             students: list[str] | None = None, exclude: set[str] | frozenset[str] = frozenset(), zone=None):
    """Read the hand-in and account for every notebook in OUT/intake.csv; refuse a hand-in with nothing to grade."""
    taken = intake.collect(Path(submissions), set(known), out / "work", filename_regex, single_assignment=single,
                           students=students, exclude=exclude, zone=zone)
    taken.write_csv(out / intake.INTAKE_CSV)
    if not taken.found and not taken.submissions:
        raise intake.IntakeError(f"no notebook (.ipynb) found in {submissions}")
    if not any(s.files for s in taken.submissions):
        reasons = sorted({f.reason for f in taken.found.values()})
        raise intake.IntakeError(
            f"{len(taken.found)} notebook(s) found in {submissions} but none could be placed with a student and "
            f"an assignment: {'; '.join(reasons)}. Each is listed in {out / intake.INTAKE_CSV}")
    return taken


def _record_due_dates(db_url: str, course_id: str, due: dict, assignments: list[str]) -> None:
    """nbgrader_config.py's due dates go into the gradebook, where nbgrader's late penalty and formgrader read
    them (a due date set with `nbgrader db assignment add --duedate` stays unless the config names one)."""
    with Gradebook(db_url, course_id=course_id) as gradebook:
        for name in assignments:
            if name in due:
                gradebook.update_or_create_assignment(name, duedate=due[name].replace(tzinfo=None))


def _record_names(db_url: str, course_id: str, names: dict[str, tuple[str, str]]) -> None:
    """Names a download gives (Moodle's folders) go into the gradebook, where formgrader shows them."""
    with Gradebook(db_url, course_id=course_id) as gradebook:
        for student, (first, last) in names.items():
            gradebook.update_or_create_student(student, first_name=first, last_name=last)


def _publish_submitted(work: Path, submitted_root: Path, submissions: Path, pending) -> None:
    """nbgrader's views count a submission by its folder in the course's submitted/: put each graded one there,
    unless the hand-in is that folder (never modified)."""
    given, submitted_root = Path(submissions).resolve(), submitted_root.resolve()
    if given.is_relative_to(submitted_root) or submitted_root.is_relative_to(given):
        return
    for (student, assignment), entry in pending.items():
        staged, target = work / "submitted" / student / assignment, submitted_root / student / assignment
        if entry.problem or not (staged.is_dir() or any(p.status != Status.MISSING for p in entry.prepared)):
            continue  # not graded in this run, or nothing handed in: what the course's submitted/ holds stays
        try:
            shutil.rmtree(target, ignore_errors=True)  # a new hand-in that could not be graded leaves no stale copy
            if staged.is_dir():
                shutil.copytree(staged, target)
        except OSError:
            pass  # formgrader's count only: the grade is recorded


def autograde_class(
    submissions: Path, out: Path, workers: int, assignments: list[str] | None = None, force: bool = False,
    limits: sandbox.Limits | None = None, db_url: str | None = None, autograded: Path | None = None,
    filename_regex: str | None = None, progress: bool = True, containment: str = "auto",
    students: list[str] | None = None, notebook: str | None = None, overrides: Config | None = None,
    scheduler=None, shard_size: int | None = None,
) -> "report.Graded":
    """Grade every submission under `submissions`; returns the rows written to OUT/grades.csv.

    With `scheduler` (a Dask scheduler's address, or a cluster.Cluster already connected to one) the notebooks
    execute on that cluster's worker nodes, `shard_size` to a task; `workers` is then the number of judging
    processes here.

    `students` and `notebook` are nbgrader's --student and --notebook selections (globs), `overrides` its
    `--Class.trait=value` options; each falls back on nbgrader_config.py, as nbgrader autograde's do. Rows of
    an earlier run outside this run's selection (other assignments, other students) stay in grades.csv."""
    intake.check_inputs(submissions, assignments)
    sandbox.probe_jail_soon()  # answered by the time a kernel needs it, not before anything else starts
    out = Path(out).resolve()
    work, logs = out / "work", out / LOGS
    for stale in ("submitted", "sanitized", "executed", "unzipped"):
        shutil.rmtree(work / stale, ignore_errors=True)  # this run stages only what it grades
    config = _grading_config(out, db_url, autograded, overrides, notebook)
    directory = CourseDirectory(config=config)  # the settings with nbgrader's defaults filled in
    converter = Autograde(coursedir=directory, config=config)  # its settings: exclude_overwriting, create_student
    db_url, course_id = directory.db_url, directory.course_id
    autograded_root = Path(directory.root) / directory.autograded_directory
    limits = limits or default_limits(config)
    zone, due = late.course_zone(config), late.due_dates(config, course.assignments())  # a bad date: stop now
    if students is None and directory.student_id not in ("", "*"):
        students = [directory.student_id]
    exclude = {s.strip() for s in directory.student_id_exclude.split(",") if s.strip()}
    phases: dict[str, float] = {}
    since = clock = time.time()
    taken = _take_in(submissions, assignments or course.assignments(), len(assignments or []) == 1, out,
                     filename_regex, students, exclude, zone)
    graded = sorted({s.assignment for s in taken.submissions})
    earlier = report.read_rows(out / report.GRADES_CSV)
    rows = {key: row for key, row in earlier.items() if not _selected(key, graded, students, exclude)}
    resumed, pending, finished, settings, changed = {}, {}, [], None, []
    recorded: dict[tuple[str, str], report.Row] = {}
    # Workers import torch and friends, and the trusted processes the judges, while submissions are prepared.
    pool_of_workers = [] if scheduler else [Worker() for _ in range(max(workers, 1))]
    for worker in pool_of_workers:
        worker.start()
    judges = trusted_side.Pool(max(workers, 1), limits.memory_bytes)
    pages = _Feedback(judges, out, autograded_root)
    execution = recorder = remote = None
    own_cluster = isinstance(scheduler, str)
    try:
        try:
            refused = _ensure_assignments(graded, db_url)
            _record_due_dates(db_url, course_id, due, graded)
            _record_names(db_url, course_id, taken.names)
            with Gradebook(db_url, course_id=course_id) as gradebook:
                known_students = {student.id for student in gradebook.students}
            excluded_files = {name: list(files) for name, files in converter.exclude_overwriting.items()}
            settings = _Settings(
                config, db_url, course_id, work, limits, directory.notebook_id or "*", excluded_files,
                list(directory.ignore), grader_version(limits, overrides),
                {a: assignment_version(db_url, course_id, a, excluded_files.get(a, []), list(directory.ignore))
                 for a in graded}, refused, converter.create_student, known_students)
            changed = _changes(work, settings.grader_key, settings.assignment_keys)
            # nbgrader_config.py draws a fresh random tag per run: no cell can be tagged to skip execution.
            hidden = _hidden_paths(submissions, out, autograded_root, db_url) if sandbox.jail_available() else None
            # The phases overlap: a submission executes once prepared, is judged once executed, and each
            # assignment is recorded once all of it is judged, while the next one's kernels run.
            if scheduler:
                from grader.autograde import cluster

                if own_cluster:
                    scheduler = cluster.Cluster(scheduler, containment, log=logs / "cluster.log")
                remote = cluster.Dispatch(scheduler, limits, config.Execute.skip_cells_with_tag, containment,
                                          shard_size or cluster.DEFAULT_SHARD_SIZE)
            execution = _Execution(pool_of_workers, judges, limits, config.Execute.skip_cells_with_tag, work,
                                   progress, hidden, logs, containment, remote)

            def finish_assignment(entries: dict, jobs: list[Job], reasons: dict) -> dict:
                made = _rows_of(entries, jobs, reasons, autograded_root, since, settings)
                ran = {(job.student, job.assignment) for job in jobs}
                languages = {(job.student, job.assignment, job.notebook): job.language for job in jobs}
                pages.render([(row, key in ran) for key, row in made.items()], settings.notebook, languages)
                return made

            recorder = _Recorder(api(config), execution, settings, logs, finish_assignment)
            resumed = _prepare(taken, {} if force or converter.force else earlier, settings, pending,
                               execution.start, recorder.prepared)
            rows.update(resumed)
            taken.write_csv(out / intake.INTAKE_CSV)
            phases["prepare"], clock = time.time() - clock, time.time()
            finished = execution.finish()
            phases["execute"], clock = time.time() - clock, time.time()  # what was left of it once all was prepared
            recorded = recorder.finish()
            phases["record"], clock = time.time() - clock, time.time()  # what was left of it once all had run
        finally:
            started = bool(execution and execution.futures)
            if execution is not None:
                execution.close()  # after a failure too, once its running kernels are done
            if own_cluster and not isinstance(scheduler, str):
                scheduler.close()  # the bridge cancels whatever a failed run left on the cluster
            if recorder is not None:
                recorder.thread.shutdown()  # nothing writes the gradebook behind this process's back
            for worker in pool_of_workers:
                # nothing executed (or a failure before): the workers' import is not worth waiting for
                worker.stop() if started else worker.kill()
        _publish_submitted(work, autograded_root.parent / load_config().CourseDirectory.submitted_directory,
                           submissions, pending)
    except Exception as error:
        # Whatever stopped the run, grades.csv still says, for every submission of the hand-in, what became of it.
        for submission in taken.submissions:
            rows.setdefault((submission.student, submission.assignment), report.Row(
                submission.student, submission.assignment, 0.0, 0.0, Status.ERROR,
                f"the run stopped before this submission was recorded ({type(error).__name__}: {str(error)[:200]})"))
        report.write_rows(out / report.GRADES_CSV, [rows[k] for k in sorted(rows)])
        pages.finish()
        judges.close()
        raise
    try:
        earlier_scores = _scores(db_url, course_id, set(rows) - set(recorded))
    except Exception:  # noqa: BLE001 -- those rows keep what grades.csv said
        earlier_scores = {}
    for key, row in list(rows.items()):  # graded before: what the gradebook says now (a TA may have graded since)
        if key in earlier_scores:
            rows[key] = dataclasses.replace(row, **earlier_scores[key])
    rows.update(recorded)
    ordered = [rows[k] for k in sorted(rows)]
    report.write_rows(out / report.GRADES_CSV, ordered)
    phases["rows"], clock = time.time() - clock, time.time()
    try:
        pages.render([(row, True) for key, row in rows.items() if key in resumed and not _has_feedback(out, row)])
        pages.finish()
    finally:
        judges.close()
    phases["feedback"] = time.time() - clock
    wall = time.time() - since
    timing = report.Timing(len(finished), phases["execute"], [j.seconds for j in finished], phases,
                           sorted(f"{s}/{a}" for s, a in resumed), changed, round(wall, 3),
                           round(_union([j.span for j in finished if j.span[1]]), 3),
                           [round(j.judge_seconds, 3) for j in finished])
    timing.save(out)  # for the instructor and the benchmark
    return report.Graded(ordered, timing)


def _union(spans: list[tuple[float, float]]) -> float:
    """Seconds during which at least one of `spans` was running."""
    total, end = 0.0, float("-inf")
    for begin, finish in sorted(spans):
        if finish > end:
            total += finish - max(begin, end)
            end = finish
    return total


def _selected(key: tuple[str, str], assignments: list[str], students: list[str] | None, exclude) -> bool:
    """Is a row of an earlier run one this run grades again (its assignment and student are selected)?"""
    student, assignment = key
    return (assignment in assignments and student not in exclude
            and (students is None or any(fnmatch.fnmatchcase(student, pattern) for pattern in students)))


def _feedback_pages(out: Path, row: report.Row, pattern: str) -> list[tuple[str, Path]]:
    names = sorted(p.stem for p in (course.SOLUTIONS / row.assignment).glob("*.ipynb")
                   if fnmatch.fnmatchcase(p.stem, pattern))
    return [(name, out / "feedback" / row.student_id / row.assignment / f"{name}.html") for name in names]


def _has_feedback(out: Path, row: report.Row) -> bool:
    return all(page.exists() for _, page in _feedback_pages(out, row, "*"))


class _Feedback:
    """Each notebook's feedback page, rendered by the trusted processes as soon as its row is known (while later
    assignments still run); one that cannot be rendered (or takes too long) costs that page only, never the run."""

    def __init__(self, judges: trusted_side.Pool, out: Path, autograded_root: Path):
        self.judges, self.out, self.autograded_root = judges, out, autograded_root
        self.threads = ThreadPoolExecutor(max_workers=judges.processes)
        self.futures = []

    def render(self, rows: list[tuple[report.Row, bool]], pattern: str = "*", languages: dict | None = None) -> None:
        """Pages for `rows`, each paired with whether it was graded in this run (else its page has no notebook);
        `languages` gives a notebook's edition by (student, assignment, notebook), else its own metadata does."""
        for row, graded in rows:
            for name, page in _feedback_pages(self.out, row, pattern):
                notebook = self.autograded_root / row.student_id / row.assignment / f"{name}.ipynb" if graded else None
                title = f"{row.assignment} / {name}: feedback for {row.student_id}"
                language = (languages or {}).get((row.student_id, row.assignment, name))
                self.futures.append(self.threads.submit(self._write, page, notebook, title, row, language))

    def _write(self, page: Path, notebook: Path | None, title: str, row: report.Row, language: str | None) -> None:
        arguments = (row.score, row.max_score, row.status, row.detail)
        try:
            self.judges.page(str(page), str(notebook) if notebook else None, title, *arguments,
                             row.needs_manual_grade, row.penalty, language)
        except Exception as error:  # noqa: BLE001 -- the page says so instead
            try:
                feedback.write(page, None, title, *arguments[:3],
                               f"{row.detail} (the feedback page could not be rendered: {type(error).__name__})",
                               language=language)
            except Exception:  # noqa: BLE001 -- the grade is recorded; only this page is missing
                pass

    def finish(self) -> None:
        """Once every page asked for is written."""
        wait(self.futures)
        self.threads.shutdown()


def _hidden_paths(submissions: Path, out: Path, autograded_root: Path, db_url: str) -> list[str]:
    """What a kernel must not see: the course (solutions, hidden tests, gradebook), every hand-in,
    every graded notebook and this run's records."""
    paths = {course.ROOT, Path(submissions).resolve(), out, Path(autograded_root).resolve()}
    if db_url.startswith("sqlite:///"):
        paths.add(Path(db_url.removeprefix("sqlite:///")).resolve())
    return sorted(str(p) for p in paths)


def _scores(db_url: str, course_id: str, keys) -> dict[tuple[str, str], dict]:
    """What the gradebook holds for each (student, assignment), as `nbgrader export` reports it: the score less
    the late penalty (never below 0) beside the raw score, whether answers await manual grading, when it was
    handed in and due, and whether it was late. A submission the gradebook does not have scores 0 of the
    assignment's maximum."""
    found = {}
    with Gradebook(db_url, course_id=course_id) as gradebook:
        for student, assignment in keys:
            try:
                submission = gradebook.find_submission(assignment, student)
            except MissingEntry:
                try:
                    record = gradebook.find_assignment(assignment)
                except MissingEntry:
                    continue
                found[student, assignment] = dict(score=0.0, max_score=float(record.max_score),
                                                  due=_utc(record.duedate))
                continue
            penalty = float(submission.late_submission_penalty or 0.0)
            found[student, assignment] = dict(
                score=max(0.0, float(submission.score) - penalty), raw_score=float(submission.score),
                max_score=float(submission.max_score), needs_manual_grade=bool(submission.needs_manual_grade),
                submitted_at=_utc(submission.timestamp), due=_utc(submission.duedate),
                late=submission.total_seconds_late > 0, penalty=penalty)
    return found


def _utc(moment) -> str:
    """A gradebook time (naive, UTC) as grades.csv shows it."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""
