"""Grade a whole class: preflight every submission, execute in parallel, then let nbgrader
record every grade, one at a time, in the instructor's gradebook."""

import json
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters.autograde import Autograde
from tqdm.auto import tqdm

from grader import course, release
from grader.autograde import feedback, intake, preflight, report, sandbox
from grader.autograde.replay import ReplayExecute, executed_path
from grader.autograde.unexecuted import ENAME, mark_unexecuted
from grader.nbgrader_api import api, load_config

KERNEL_DIED = "the kernel died"


@dataclass
class Job:
    student: str
    assignment: str
    notebook: str
    sanitized: Path
    status: str = "ok"
    detail: str = ""
    seconds: float = 0.0


def _ensure_assignments(names: list[str], db_url: str) -> None:
    """nbgrader grades against the cells recorded in the gradebook: record any missing assignment."""
    with Gradebook(db_url, course_id=load_config().CourseDirectory.course_id) as gradebook:
        known = {a.name for a in gradebook.assignments}
    missing = [name for name in names if name not in known]
    if missing:
        with tempfile.TemporaryDirectory() as scratch:
            release.generate(Path(scratch), assignments=missing, db_url=db_url)


def _nbgrader_default(name: str) -> list:
    """nbgrader's own list of preprocessors for a step of `nbgrader autograde`."""
    return list(Autograde.class_traits()[name].default())


def _sanitize(nb, config, db_url: str, student: str, assignment: str, notebook: str):
    """nbgrader's own sanitising step (restore locked and test cells from the gradebook, ...)."""
    resources = {"nbgrader": {"db_url": db_url, "assignment": assignment, "notebook": notebook, "student": student}}
    for preprocessor in _nbgrader_default("sanitize_preprocessors"):
        nb, resources = preprocessor(config=config).preprocess(nb, resources)
    return nb


def _execute(job: Job, slot: int, limits: sandbox.Limits, skip_tag: str, out_dir: Path) -> Job:
    """Run one notebook in a throwaway folder under the slot's user and limits."""
    user = sandbox.slot_user(slot)
    workdir = Path(tempfile.mkdtemp(prefix="grading-"))
    try:
        (workdir / ".home").mkdir()
        shutil.copy(job.sanitized, workdir / f"{job.notebook}.ipynb")
        for extra in sorted((course.SOLUTIONS / job.assignment).iterdir()):
            if extra.is_file() and extra.suffix != ".ipynb":
                shutil.copy(extra, workdir / extra.name)  # the assignment's own data files only
        spec = {
            "workdir": str(workdir), "notebook": str(workdir / f"{job.notebook}.ipynb"),
            "executed": str(workdir / ".executed.ipynb"), "partial": str(workdir / ".partial.ipynb"),
            "cell_timeout": limits.cell_timeout_s, "skip_tag": skip_tag,
            "memory_bytes": limits.memory_bytes, "max_processes": limits.max_processes,
            "max_file_bytes": limits.max_file_bytes,
            "uid": user[0] if user else None, "gid": user[1] if user else None,
        }
        job_file = workdir / ".job.json"
        job_file.write_text(json.dumps(spec))
        if user:
            for path in [workdir, *workdir.rglob("*")]:
                shutil.chown(path, user[0], user[1])
        start = time.perf_counter()
        worker = subprocess.Popen(
            [sys.executable, "-m", "grader.autograde.worker", str(job_file)],
            cwd=workdir, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            _, stderr = worker.communicate(timeout=limits.notebook_timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            stderr = b""
        sandbox.kill_everything(worker.pid, user[0] if user else None)
        worker.wait()
        job.seconds = time.perf_counter() - start
        nb = _collect(job, workdir, timed_out, stderr, limits)
        target = executed_path(out_dir, job.student, job.assignment, job.notebook)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(nbformat.writes(nb), encoding="utf-8")
    finally:
        if user:
            sandbox.kill_everything(-1, user[0])  # nothing of this submission outlives its grading
        shutil.rmtree(workdir, ignore_errors=True)
    return job


def _collect(job: Job, workdir: Path, timed_out: bool, stderr: bytes, limits: sandbox.Limits):
    """The executed notebook, or as much of it as ran, with every unrun cell marked as such."""
    executed, partial = workdir / ".executed.ipynb", workdir / ".partial.ipynb"
    if executed.exists() and not timed_out:
        nb = nbformat.read(executed, as_version=4)
        if any(o.get("ename") == ENAME and KERNEL_DIED in o.get("evalue", "") for c in nb.cells
               for o in c.get("outputs", [])):
            job.status, job.detail = "kernel-died", "the kernel died; cells after that point score 0"
    else:
        nb = nbformat.read(job.sanitized, as_version=4)
        if partial.exists():
            nb = nbformat.read(partial, as_version=4)
        unrun = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()
                 and c.execution_count is None]
        ran = unrun[0] if unrun else len(nb.cells)
        if timed_out:
            job.status = "timeout"
            job.detail = f"the notebook ran longer than {limits.notebook_timeout_s} s; cells after that score 0"
            mark_unexecuted(nb, ran, f"grading stopped after {limits.notebook_timeout_s} s")
        else:
            tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
            job.status, job.detail = "kernel-died", f"grading process ended early ({tail[0][:200]})"
            mark_unexecuted(nb, ran, f"{KERNEL_DIED} or could not start")
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("ename") == "CellTimeoutError" and job.status == "ok":
                job.status = "timeout"
                job.detail = f"a cell ran longer than {limits.cell_timeout_s} s and scored 0"
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


def autograde_class(
    submissions: Path, out: Path, workers: int, assignments: list[str] | None = None, force: bool = False,
    limits: sandbox.Limits | None = None, db_url: str | None = None, autograded: Path | None = None,
    filename_regex: str = intake.DEFAULT_FILENAME_REGEX, progress: bool = True,
) -> list[report.Row]:
    limits = limits or sandbox.Limits()
    out = Path(out).resolve()
    work = out / "work"
    overrides = {"submitted_directory": str(work / "submitted")}
    if db_url:
        overrides["db_url"] = db_url
    if autograded:
        overrides["autograded_directory"] = str(Path(autograded).resolve())
    config = load_config(**overrides)
    config.Autograde.autograde_preprocessors = [
        ReplayExecute if p.__name__ == "Execute" else p for p in _nbgrader_default("autograde_preprocessors")
    ]
    config.ReplayExecute.executed_directory = str(work / "executed")
    db_url = config.CourseDirectory.db_url or f"sqlite:///{course.ROOT}/gradebook.db"
    course_id = config.CourseDirectory.course_id
    known = assignments or course.assignments()

    handed_in = intake.collect(Path(submissions), set(known), work)
    _ensure_assignments(sorted({s.assignment for s in handed_in}), db_url)
    previous = {} if force else report.read_rows(out / report.GRADES_CSV)

    rows: dict[tuple[str, str], report.Row] = {}
    jobs: list[Job] = []
    pending: dict[tuple[str, str], list[preflight.Prepared]] = {}
    for submission in handed_in:
        key = (submission.student, submission.assignment)
        expected = sorted(p.stem for p in (course.SOLUTIONS / submission.assignment).glob("*.ipynb"))
        chosen = preflight.choose_files(submission.files, expected)
        prepared = []
        for name, (path, note) in chosen.items():
            item = preflight.prepare(path, name, limits.max_submission_bytes)
            item.notes = ([note] if note else []) + item.notes
            prepared.append(item)
        fingerprint = ",".join(p.sha256 for p in prepared)
        if key in previous and previous[key].sha256 == fingerprint:
            rows[key] = previous[key]  # graded before, unchanged since: resume, don't regrade
            continue
        pending[key] = prepared
        for item in prepared:
            if item.status != "ok":
                continue
            staged = work / "submitted" / submission.student / submission.assignment / f"{item.notebook}.ipynb"
            staged.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(item.nb, staged)
            sanitized = work / "sanitized" / submission.student / submission.assignment / f"{item.notebook}.ipynb"
            sanitized.parent.mkdir(parents=True, exist_ok=True)
            nb = _sanitize(item.nb, config, db_url, submission.student, submission.assignment, item.notebook)
            nbformat.write(nb, sanitized)
            jobs.append(Job(submission.student, submission.assignment, item.notebook, sanitized))

    # Each grading run gets a fresh random tag: no cell can be tagged to skip execution.
    skip_tag = config.Execute.skip_cells_with_tag
    slots: queue.Queue[int] = queue.Queue()
    for slot in range(workers):
        slots.put(slot)

    def run_one(job: Job) -> Job:
        slot = slots.get()
        try:
            return _execute(job, slot, limits, skip_tag, work / "executed")
        finally:
            slots.put(slot)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        finished = list(tqdm(pool.map(run_one, jobs), total=len(jobs), desc="grading", unit="nb",
                             disable=not progress))
    execute_seconds = time.perf_counter() - started
    by_key: dict[tuple[str, str], list[Job]] = {}
    for job in finished:
        by_key.setdefault((job.student, job.assignment), []).append(job)

    nbgrader = api(config)
    autograded_root = Path(config.CourseDirectory.root) / config.CourseDirectory.autograded_directory
    for key, prepared in pending.items():
        student, assignment = key
        if key in by_key:
            result = nbgrader.autograde(assignment, student, force=True, create=True)
            if not result["success"]:
                by_key[key][0].status = "error"
                by_key[key][0].detail = "nbgrader could not record this submission; see the log"
                _record_zero(db_url, course_id, student, assignment)
        else:
            _record_zero(db_url, course_id, student, assignment)
        problems = [(p.status, p.detail) for p in prepared if p.status != "ok"]
        problems += [(j.status, j.detail) for j in by_key.get(key, []) if j.status != "ok"]
        notes = [n for p in prepared for n in p.notes]
        status, detail = problems[0] if problems else ("ok", "; ".join(notes))
        score, max_score = _scores(db_url, course_id, student, assignment)
        rows[key] = report.Row(student, assignment, score, max_score, status, detail,
                               ",".join(p.sha256 for p in prepared))
        for item in prepared:
            graded = autograded_root / student / assignment / f"{item.notebook}.ipynb" if key in by_key else None
            feedback.write(out / "feedback" / student / assignment / f"{item.notebook}.html", graded,
                           f"{assignment} / {item.notebook}: feedback for {student}", score, max_score, status, detail)
    ordered = [rows[k] for k in sorted(rows)]
    report.write_rows(out / report.GRADES_CSV, ordered)
    report.Timing(len(jobs), execute_seconds, [j.seconds for j in finished]).save(out)
    return ordered


def _scores(db_url: str, course_id: str, student: str, assignment: str) -> tuple[float, float]:
    with Gradebook(db_url, course_id=course_id) as gradebook:
        try:
            submission = gradebook.find_submission(assignment, student)
        except MissingEntry:
            return 0.0, gradebook.find_assignment(assignment).max_score
        return float(submission.score), float(submission.max_score)
