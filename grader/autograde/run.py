"""Grade a whole class: preflight every submission, execute in parallel, then let nbgrader
record every grade, one at a time, in the instructor's gradebook."""

import os
import queue
import shutil
import stat
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters.autograde import Autograde
from nbgrader.coursedir import CourseDirectory
from tqdm.auto import tqdm

from grader import course, notebooks, release
from grader.autograde import feedback, intake, preflight, report, sandbox
from grader.autograde.replay import ReplayExecute, executed_path
from grader.autograde.unexecuted import ENAME, mark_unexecuted
from grader.autograde.worker import KERNEL_DIED, Worker
from grader.nbgrader_api import api, load_config


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


def _execute(job: Job, slot: int, worker: Worker, cgroup: sandbox.SlotCgroup | None, limits: sandbox.Limits,
             skip_tag: str, out_dir: Path, hidden: list[str] | None) -> Job:
    """Run one notebook in a throwaway folder under the slot's user and limits."""
    user = sandbox.slot_user(slot)
    # Without a cgroup, the slot's user is how we find what the submission detached. With one, the cgroup
    # is exact, and a user-wide kill could hit another grading run on this machine that shares the uid.
    owner = user[0] if user and not cgroup else None
    # The student's folder and the trusted driver's files live side by side: the driver never writes, and this
    # process never reads, anything at a path the student's code could have replaced.
    job_root = Path(tempfile.mkdtemp(prefix="grading-"))
    job_root.chmod(0o711)  # the slot's user may pass through to its folder, never list or enter `trusted`
    workdir, trusted = job_root / "work", job_root / "trusted"
    workdir.mkdir()
    trusted.mkdir(mode=0o700)
    try:
        (workdir / ".home").mkdir()
        shutil.copy(job.sanitized, workdir / f"{job.notebook}.ipynb")
        shutil.copy(job.sanitized, trusted / "submission.ipynb")
        for extra in sorted((course.SOLUTIONS / job.assignment).iterdir()):
            if extra.is_file() and extra.suffix != ".ipynb":
                shutil.copy(extra, workdir / extra.name)  # the assignment's own data files only
        spec = {
            "workdir": str(workdir), "notebook": str(trusted / "submission.ipynb"),
            "executed": str(trusted / "executed.ipynb"), "partial": str(trusted / "partial.ipynb"),
            "log": str(trusted / "driver.log"),
            "cell_timeout": limits.cell_timeout_s, "skip_tag": skip_tag,
            "memory_bytes": limits.memory_bytes, "max_processes": limits.max_processes,
            "max_file_bytes": limits.max_file_bytes,
            "uid": user[0] if user else None, "gid": user[1] if user else None,
            "cgroups": cgroup.procs_files if cgroup else [],
            "hide": hidden,
        }
        if user:
            for path in [workdir, *workdir.rglob("*")]:
                shutil.chown(path, user[0], user[1])
        start = time.perf_counter()
        finished = worker.run(spec, limits.notebook_timeout_s,
                              on_timeout=lambda driver: sandbox.kill_everything(driver, owner))
        job.seconds = time.perf_counter() - start
        log = trusted / "driver.log"
        nb = _collect(job, trusted, not finished, _read_capped(log, 2**20) or b"", limits)
        target = executed_path(out_dir, job.student, job.assignment, job.notebook)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(nbformat.writes(nb), encoding="utf-8")
    finally:
        # Nothing of this submission outlives its grading, however it detached.
        if cgroup:
            cgroup.kill_all()
        if owner is not None:
            sandbox.kill_everything(-1, owner)
        shutil.rmtree(job_root, ignore_errors=True)
    return job


def _read_capped(path: Path, limit: int) -> bytes | None:
    """A regular file's bytes, read without following a link; None if it is absent, not a regular file, or
    larger than `limit`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        return f.read(limit + 1)[:limit]


def _read_notebook(path: Path, limit: int) -> nbformat.NotebookNode | None:
    data = _read_capped(path, limit)
    try:
        return nbformat.reads(data.decode("utf-8"), as_version=4) if data is not None else None
    except Exception:  # noqa: BLE001 -- a half-written checkpoint is as good as none
        return None


def _collect(job: Job, trusted: Path, timed_out: bool, stderr: bytes, limits: sandbox.Limits):
    """The executed notebook, or as much of it as ran, with every unrun cell marked as such."""
    cap = limits.max_executed_bytes
    executed = None if timed_out else _read_notebook(trusted / "executed.ipynb", cap)
    if executed is not None:
        nb = executed
        if any(o.get("ename") == ENAME and KERNEL_DIED in o.get("evalue", "") for c in nb.cells
               for o in c.get("outputs", [])):
            job.status, job.detail = "kernel-died", "the kernel died; cells after that point score 0"
    elif (trusted / "executed.ipynb").stat().st_size > cap if (trusted / "executed.ipynb").exists() else False:
        nb = nbformat.read(job.sanitized, as_version=4)
        job.status = "too-large"
        job.detail = (f"its outputs made the executed notebook larger than {cap // 2**20} MiB; print less "
                      "(every cell scores 0)")
        mark_unexecuted(nb, 0, job.detail)
    else:
        nb = _read_notebook(trusted / "partial.ipynb", cap) or nbformat.read(job.sanitized, as_version=4)
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
            mark_unexecuted(nb, ran, "the kernel could not start or the grading process failed")
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


def _grading_config(out: Path, db_url: str | None, autograded: Path | None):
    """The course's nbgrader config, pointed at this run's staging folders, with Execute replayed."""
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
    steps = config.Autograde.autograde_preprocessors
    if ReplayExecute not in steps or any(p.__name__ == "Execute" for p in steps):
        # Fail closed: without the swap nbgrader would run student code itself, unjailed, and score what it printed.
        raise RuntimeError(f"this nbgrader's autograde steps ({[p.__name__ for p in steps]}) cannot be replayed: "
                           "its Execute step was not replaced, so grading stops here")
    return config


def _prepare(taken: intake.Intake, previous, limits, config, db_url, work):
    """Preflight and sanitise every submission not graded before; returns (resumed rows, pending, jobs)."""
    resumed, pending, jobs = {}, {}, []
    released = {path.relative_to(course.EXERCISES).with_suffix("").as_posix(): notebooks.read(path)
                for path in course.exercise_paths()}
    for submission in taken.submissions:
        key = (submission.student, submission.assignment)
        expected = sorted(p.stem for p in (course.SOLUTIONS / submission.assignment).glob("*.ipynb"))
        prepared = []
        chosen = preflight.choose_files(submission.files, expected)
        for path in set(submission.files) - {path for path, _ in chosen.values()}:
            graded = ", ".join(sorted(p.name for p, _ in chosen.values() if p))
            taken.ignore(path, f"another file was graded for this assignment ({graded or 'none'})"
                         if graded else f"matches none of the assignment's notebooks ({', '.join(expected)})")
        for name, (path, note) in chosen.items():
            item = preflight.prepare(path, name, limits.max_submission_bytes,
                                     released.get(f"{submission.assignment}/{name}"))
            item.notes = ([note] if note else []) + item.notes
            prepared.append(item)
        if key in previous and previous[key].sha256 == ",".join(p.sha256 for p in prepared):
            resumed[key] = previous[key]  # graded before, unchanged since: resume, don't regrade
            continue
        pending[key] = prepared
        for item in (p for p in prepared if p.status == "ok"):
            relative = Path(submission.student) / submission.assignment / f"{item.notebook}.ipynb"
            try:
                sanitized = _sanitize(item.nb, config, db_url, submission.student, submission.assignment,
                                      item.notebook)
            except Exception as error:  # noqa: BLE001 -- one odd notebook must not stop the class
                item.status, item.detail = "unparseable", f"nbgrader could not read its cells ({error!r:.200})"
                continue
            for folder, nb in [("submitted", item.nb), ("sanitized", sanitized)]:
                (work / folder / relative).parent.mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, work / folder / relative)
            jobs.append(Job(submission.student, submission.assignment, item.notebook, work / "sanitized" / relative))
    return resumed, pending, jobs


def _execute_all(jobs: list[Job], pool_of_workers: list[Worker], limits, skip_tag: str, executed_dir: Path,
                 progress: bool, hidden: list[str] | None) -> list[Job]:
    """Execute every job on the pool of workers, each slot with its own user."""
    slots: queue.Queue[tuple[int, Worker, sandbox.SlotCgroup | None]] = queue.Queue()
    cgroups = [sandbox.slot_cgroup(slot, limits) for slot in range(len(pool_of_workers))]
    for slot, worker in enumerate(pool_of_workers):
        slots.put((slot, worker, cgroups[slot]))

    def run_one(job: Job) -> Job:
        slot, worker, cgroup = slots.get()
        try:
            return _execute(job, slot, worker, cgroup, limits, skip_tag, executed_dir, hidden)
        finally:
            slots.put((slot, worker, cgroup))

    try:
        with ThreadPoolExecutor(max_workers=len(pool_of_workers)) as pool:
            return list(tqdm(pool.map(run_one, jobs), total=len(jobs), desc="grading", unit="nb",
                             disable=not progress))
    finally:
        for cgroup in filter(None, cgroups):
            cgroup.remove()


def _record(nbgrader, pending, by_key, autograded_root: Path, since: float, db_url: str, course_id: str) -> None:
    """nbgrader's own autograde converter writes every grade, one assignment at a time."""
    for assignment in sorted({a for _, a in by_key}):
        # One converter per assignment, not per student: its start-up dominates recording a grade.
        # A submission it fails on is skipped by nbgrader and caught below.
        nbgrader.autograde(assignment, "*", force=True, create=True)
    for key in pending:
        student, assignment = key
        recorded = [autograded_root / student / assignment / f"{job.notebook}.ipynb" for job in by_key.get(key, [])]
        if key not in by_key:
            _record_zero(db_url, course_id, student, assignment)
        elif not all(path.exists() and path.stat().st_mtime >= since for path in recorded):
            by_key[key][0].status, by_key[key][0].detail = "error", "nbgrader could not record this submission"
            _record_zero(db_url, course_id, student, assignment)


def _take_in(submissions: Path, known: list[str], single: bool, out: Path, filename_regex: str | None):
    """Read the hand-in and account for every notebook in OUT/intake.csv; refuse a hand-in with nothing to grade."""
    taken = intake.collect(Path(submissions), set(known), out / "work", filename_regex, single_assignment=single)
    taken.write_csv(out / intake.INTAKE_CSV)
    if not taken.found and not taken.submissions:
        raise intake.IntakeError(f"no notebook (.ipynb) found in {submissions}")
    if not any(s.files for s in taken.submissions):
        reasons = sorted({f.reason for f in taken.found.values()})
        raise intake.IntakeError(
            f"{len(taken.found)} notebook(s) found in {submissions} but none could be placed with a student and "
            f"an assignment: {'; '.join(reasons)}. Each is listed in {out / intake.INTAKE_CSV}")
    return taken


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
    for student, assignment in pending:
        staged = work / "submitted" / student / assignment
        if staged.is_dir():
            target = submitted_root / student / assignment
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(staged, target)


def autograde_class(
    submissions: Path, out: Path, workers: int, assignments: list[str] | None = None, force: bool = False,
    limits: sandbox.Limits | None = None, db_url: str | None = None, autograded: Path | None = None,
    filename_regex: str | None = None, progress: bool = True,
) -> list[report.Row]:
    """Grade every submission under `submissions`; returns the rows written to OUT/grades.csv."""
    intake.check_inputs(submissions, assignments)
    limits = limits or sandbox.Limits()
    out = Path(out).resolve()
    work = out / "work"
    for stale in ("submitted", "sanitized", "executed", "unzipped"):
        shutil.rmtree(work / stale, ignore_errors=True)  # this run stages only what it grades
    config = _grading_config(out, db_url, autograded)
    directory = CourseDirectory(config=config)  # the settings with nbgrader's defaults filled in
    db_url, course_id = directory.db_url, directory.course_id
    autograded_root = Path(directory.root) / directory.autograded_directory
    phases: dict[str, float] = {}
    since = clock = time.time()
    taken = _take_in(submissions, assignments or course.assignments(), len(assignments or []) == 1, out,
                     filename_regex)
    # Workers import torch and friends while the submissions are being prepared.
    pool_of_workers = [Worker() for _ in range(max(workers, 1))]
    for worker in pool_of_workers:
        worker.start()
    needed = False  # a failure, or nothing to execute: the workers' import is not worth waiting for
    try:
        _ensure_assignments(sorted({s.assignment for s in taken.submissions}), db_url)
        _record_names(db_url, course_id, taken.names)
        previous = {} if force else report.read_rows(out / report.GRADES_CSV)
        rows, pending, jobs = _prepare(taken, previous, limits, config, db_url, work)
        taken.write_csv(out / intake.INTAKE_CSV)
        phases["prepare"], clock = time.time() - clock, time.time()
        # nbgrader_config.py draws a fresh random tag per run: no cell can be tagged to skip execution.
        hidden = _hidden_paths(submissions, out, autograded_root, db_url) if sandbox.jail_available() else None
        finished = _execute_all(jobs, pool_of_workers, limits, config.Execute.skip_cells_with_tag,
                                work / "executed", progress, hidden)
        needed = bool(jobs)
    finally:
        for worker in pool_of_workers:
            worker.stop() if needed else worker.kill()
    phases["execute"], clock = time.time() - clock, time.time()
    by_key: dict[tuple[str, str], list[Job]] = {}
    for job in finished:
        by_key.setdefault((job.student, job.assignment), []).append(job)

    # Only this process writes grades, after every kernel of the run is gone.
    _record(api(config), pending, by_key, autograded_root, since, db_url, course_id)
    _publish_submitted(work, autograded_root.parent / load_config().CourseDirectory.submitted_directory,
                       submissions, pending)
    for key, prepared in pending.items():
        problems = [(p.status, p.detail) for p in prepared if p.status != "ok"]
        problems += [(j.status, j.detail) for j in by_key.get(key, []) if j.status != "ok"]
        status, detail = problems[0] if problems else ("ok", "; ".join(n for p in prepared for n in p.notes))
        score, max_score = _scores(db_url, course_id, *key)
        rows[key] = report.Row(*key, score, max_score, status, detail, ",".join(p.sha256 for p in prepared))
    ordered = [rows[k] for k in sorted(rows)]
    report.write_rows(out / report.GRADES_CSV, ordered)
    phases["record"], clock = time.time() - clock, time.time()

    for (student, assignment), prepared in pending.items():
        row = rows[student, assignment]
        for item in prepared:
            graded = autograded_root / student / assignment / f"{item.notebook}.ipynb"
            feedback.write(out / "feedback" / student / assignment / f"{item.notebook}.html",
                           graded if (student, assignment) in by_key else None,
                           f"{assignment} / {item.notebook}: feedback for {student}", row.score, row.max_score,
                           row.status, row.detail)
    phases["feedback"] = time.time() - clock
    resumed = sorted(f"{s}/{a}" for s, a in rows if (s, a) not in pending)
    report.Timing(len(jobs), phases["execute"], [j.seconds for j in finished], phases, resumed).save(out)
    return ordered


def _hidden_paths(submissions: Path, out: Path, autograded_root: Path, db_url: str) -> list[str]:
    """What a kernel must not see: the course (solutions, hidden tests, gradebook), every hand-in,
    every graded notebook and this run's records."""
    paths = {course.ROOT, Path(submissions).resolve(), out, Path(autograded_root).resolve()}
    if db_url.startswith("sqlite:///"):
        paths.add(Path(db_url.removeprefix("sqlite:///")).resolve())
    return sorted(str(p) for p in paths)


def _scores(db_url: str, course_id: str, student: str, assignment: str) -> tuple[float, float]:
    with Gradebook(db_url, course_id=course_id) as gradebook:
        try:
            submission = gradebook.find_submission(assignment, student)
        except MissingEntry:
            return 0.0, gradebook.find_assignment(assignment).max_score
        return float(submission.score), float(submission.max_score)
