"""Does the trusted judge decide every graded test cell from observations alone, whatever the
kernel printed, and does every test cell of the course have a judge?"""

import ast
import json

import nbformat
import pytest
import torch

from grader import course
from grader.autograde import judge, observing
from grader.checks import tensors
from grader.observation import MIME

HIDDEN = ("### BEGIN HIDDEN TESTS\nfrom grader.checks import tensors; tensors.check_make_grid(make_grid)\n"
          "### END HIDDEN TESTS")


def right_grid(n_rows, n_cols):
    return torch.arange(n_rows * n_cols, dtype=torch.float32).reshape(n_rows, n_cols)


def wrong_grid(n_rows, n_cols):
    return torch.arange(n_rows * n_cols).reshape(n_rows, n_cols)  # int64


def _test_cell(outputs):
    cell = nbformat.v4.new_code_cell("assert True\n" + HIDDEN)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": "t", "points": 2,
                                 "schema_version": 3}
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def _observation(function, key="tensors.check_make_grid"):
    data = json.loads(json.dumps({"check": key, "observation": tensors.check_make_grid.observe(function)}))
    return {"output_type": "display_data", "metadata": {}, "data": {MIME: data, "text/plain": "observed"}}


def _judged(outputs):
    trusted = nbformat.v4.new_notebook(cells=[_test_cell([])])
    executed = nbformat.v4.new_notebook(cells=[_test_cell(outputs)])
    return judge.apply(executed, trusted).cells[0].outputs


def _errors(outputs):
    return [o for o in outputs if o["output_type"] == "error"]


def test_a_right_observation_passes_and_leaves_no_observation():
    outputs = _judged([{"output_type": "stream", "name": "stdout", "text": "hi\n"}, _observation(right_grid)])
    assert not _errors(outputs), _errors(outputs)
    assert all(MIME not in o.get("data", {}) for o in outputs), "the observation was left in the graded notebook"


def test_a_wrong_observation_fails_with_the_judges_message():
    errors = _errors(_judged([_observation(wrong_grid)]))
    assert len(errors) == 1 and errors[0]["ename"] == judge.ENAME and "dtype" in errors[0]["evalue"], errors


@pytest.mark.parametrize("kernel_said", [
    [],  # a blanked cell: nothing ran, nothing failed
    [{"output_type": "error", "ename": "NameError", "evalue": "name 'make_grid' is not defined", "traceback": []}],
])
def test_no_observation_is_no_pass(kernel_said):
    errors = _errors(_judged(kernel_said))
    assert len(errors) == 1 and "did not run" in errors[0]["evalue"], errors
    if kernel_said:
        assert "NameError" in errors[0]["evalue"], "the student is not told what stopped the cell"


@pytest.mark.parametrize("observation", [
    {"check": "tensors.check_make_grid", "observation": {"nonsense": 1}},
    {"check": "tensors.check_make_grid", "observation": None},
    {"check": "tensors.check_make_grid", "observation": {"__tensor__": "x"}},
])
def test_a_forged_or_malformed_observation_fails(observation):
    output = {"output_type": "display_data", "metadata": {}, "data": {MIME: observation}}
    errors = _errors(_judged([output]))
    assert len(errors) == 1, f"a malformed observation was not failed: {errors}"


def _right_observation() -> dict:
    return _observation(right_grid)["data"][MIME]["observation"]


def _missing_field(observation):
    observation["calls"][1].pop("value")


def _wrong_type(observation):
    observation["calls"][0]["value"]["__tensor__"]["shape"] = "2x3"


def _short_list(observation):
    observation["calls"].pop()  # the 3 x 7 grid the kernel could not make, left out


@pytest.mark.parametrize("damage, where", [
    (_missing_field, "calls[1].value is missing"),
    (_wrong_type, "calls[0].value.__tensor__.shape should be a list, not a string"),
    (_short_list, "calls should hold 5 items, not 4"),
], ids=lambda v: v.__name__ if callable(v) else "")
def test_a_malformed_observation_scores_nothing_and_says_where(damage, where):
    """Does a right answer's observation with a record missing, mistyped or left out earn no points, with a message
    naming the check and the place, before the judge reads it?"""
    observation = _right_observation()
    damage(observation)
    output = {"output_type": "display_data", "metadata": {},
              "data": {MIME: {"check": "tensors.check_make_grid", "observation": observation}}}
    errors = _errors(_judged([output]))
    assert len(errors) == 1, errors
    message = errors[0]["evalue"]
    assert "check_make_grid could not read what your code produced" in message and where in message, message


def test_an_observation_for_another_check_does_not_count():
    errors = _errors(_judged([_observation(right_grid, key="tensors.check_rows_where")]))
    assert len(errors) == 1 and "did not run" in errors[0]["evalue"], errors


def test_check_calls_reads_keyword_literals_and_ignores_other_calls():
    source = ("from grader.checks import capstone as c\nprint('check_x')\nc.check_reserved_accuracy(f, minimum=0.95)\n"
              "other.check_thing(1)")
    assert judge.check_calls(source) == [judge.CheckCall("c", "check_reserved_accuracy", {"minimum": 0.95})]


def _test_cells():
    for path in course.solution_paths():
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
                yield path.parent.name, meta["grade_id"], cell.source


@pytest.mark.parametrize("assignment, grade_id, source", list(_test_cells()),
                         ids=lambda v: v if isinstance(v, str) and "\n" not in v else "")
def test_every_test_cell_is_judged_outside_the_kernel(assignment, grade_id, source):
    """Does every graded test cell call at least one check, each with a judge and a kernel-side observer?"""
    calls = judge.check_calls(source)
    assert calls, f"{assignment}/{grade_id} calls no hidden check: its verdict would come from the student's kernel"
    stand_ins = observing.stand_in_modules()
    for call in calls:
        assert judge.judge_for(call) is not None, f"{assignment}/{grade_id}: {call.key} has no judge"
        module = stand_ins.get(f"grader.checks.{call.unit}")
        assert module is not None and hasattr(module, call.name), (
            f"{assignment}/{grade_id}: no observer for {call.key} in grader/observers/{call.unit}.py")


def test_observers_hold_no_judge():
    """Do the observer modules (all a grading kernel has) import nothing that judges?"""
    for path in (course.ROOT / "grader" / "observers").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not any(name and name.startswith("grader.checks") for name in imported), (
            f"{path.name} imports judging code; a grading kernel must hold observers only")
        judges = [node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                  and node.name.startswith(("judge_", "_reference", "reference"))]
        assert not judges, f"{path.name} defines {judges}: reference answers belong to the judge"


def test_a_check_without_a_judge_fails_closed():
    """Does a test cell calling a course check that has no judge score 0, whatever the kernel printed?"""
    cell = _test_cell([])
    cell.source = cell.source.replace("check_make_grid", "check_nothing_judges_this")
    trusted = nbformat.v4.new_notebook(cells=[cell])
    executed = nbformat.v4.new_notebook(cells=[nbformat.from_dict({**cell, "outputs": [
        {"output_type": "stream", "name": "stdout", "text": "all tests passed\n"}]})])
    errors = _errors(judge.apply(executed, trusted).cells[0].outputs)
    assert len(errors) == 1 and "no judge for tensors.check_nothing_judges_this" in errors[0]["evalue"], errors


def test_points_come_from_the_trusted_notebook_not_the_executed_copy(tmp_path):
    """Does a forged executed notebook (points 1000, a wrong answer's observation) earn nothing, through the
    trusted judging step and then nbgrader's replay?"""
    from nbgrader.utils import determine_grade

    from grader.autograde import trusted
    from grader.autograde.replay import ReplayExecute, executed_path

    trusted_nb = nbformat.v4.new_notebook(cells=[_test_cell([])])
    forged = nbformat.v4.new_notebook(cells=[_test_cell([_observation(wrong_grid)])])
    forged.cells[0].metadata["nbgrader"]["points"] = 1000
    paths = {name: executed_path(tmp_path / name, "mallory", "01_tensors", "01_tensors")
             for name in ("trusted", "executed", "judged")}
    for name, nb in (("trusted", trusted_nb), ("executed", forged)):
        paths[name].parent.mkdir(parents=True)
        nbformat.write(nb, paths[name])
    trusted.judge_notebook(str(paths["executed"]), str(paths["trusted"]), str(paths["judged"]), 2**20)
    judged = nbformat.read(paths["judged"], as_version=4)
    assert determine_grade(judged.cells[0]) == (0, 2), "the executed copy's metadata decided the points"
    judged.cells[0].metadata["nbgrader"]["points"] = 1000  # even a judged copy never decides the points
    judged.cells[0].outputs = []
    nbformat.write(judged, paths["judged"])
    replay = ReplayExecute(judged_directory=str(tmp_path / "judged"))
    ids = {"student": "mallory", "assignment": "01_tensors", "notebook": "01_tensors"}
    replayed, _ = replay.preprocess(trusted_nb, {"nbgrader": ids})
    assert determine_grade(replayed.cells[0]) == (2, 2) and replayed.cells[0].metadata.nbgrader.points == 2


def test_an_executed_copy_of_other_cells_is_refused(tmp_path):
    """Does judging refuse an executed notebook whose cells are not the submission's (fail closed)?"""
    from grader.autograde import trusted

    other = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('not the submission')")])
    nbformat.write(nbformat.v4.new_notebook(cells=[_test_cell([])]), tmp_path / "trusted.ipynb")
    nbformat.write(other, tmp_path / "executed.ipynb")
    with pytest.raises(trusted.ReplayMismatch):
        trusted.judge_notebook(str(tmp_path / "executed.ipynb"), str(tmp_path / "trusted.ipynb"),
                               str(tmp_path / "judged.ipynb"), 2**20)
    assert not (tmp_path / "judged.ipynb").exists()


def test_grading_stops_when_nbgrader_would_execute_student_code_itself(monkeypatch, tmp_path):
    """If nbgrader's Execute step cannot be swapped for the replay, does grading refuse to start?"""
    from nbgrader.preprocessors import NbGraderPreprocessor

    from grader.autograde import run

    class RunCells(NbGraderPreprocessor):
        """A future nbgrader's executing step under another name."""

    monkeypatch.setattr(run, "_nbgrader_default", lambda name: [RunCells])
    with pytest.raises(RuntimeError, match="cannot be replayed"):
        run._grading_config(tmp_path, None, None)


def test_nbgrader_steps_are_the_ones_the_grader_was_built_for(tmp_path):
    """Does nbgrader run exactly the sanitising and autograde steps the replay was written against (Execute
    replaced, nothing added or reordered)? A new nbgrader that changes them must be reviewed, not trusted."""
    from grader.autograde import run

    config = run._grading_config(tmp_path, None, None)
    assert [p.__name__ for p in run._nbgrader_default("sanitize_preprocessors")] == [
        "ClearOutput", "DeduplicateIds", "OverwriteKernelspec", "OverwriteCells", "CheckCellMetadata"]
    assert [p.__name__ for p in config.Autograde.autograde_preprocessors] == [
        "ReplayExecute", "IgnorePattern", "ClearMetadataPreprocessor", "LimitOutput", "SaveAutoGrades",
        "AssignLatePenalties", "CheckCellMetadata"]


def test_kernel_adoption_relies_on_a_tested_jupyter_client():
    """Is jupyter_client inside the range requirements.txt pins, with the internals a forked kernel is adopted
    through (grader.autograde.kernel.AdoptedKernelManager)?"""
    import inspect

    import jupyter_client
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning.local_provisioner import LocalProvisioner
    from packaging.requirements import Requirement

    from grader import course

    pins = [Requirement(line.split("#")[0]) for line in (course.ROOT / "requirements.txt").read_text().splitlines()
            if line.startswith("jupyter_client")]
    assert pins and pins[0].specifier.contains(jupyter_client.__version__), (pins, jupyter_client.__version__)
    for name in ("load_connection_file", "get_connection_info", "kernel_spec"):
        assert hasattr(AsyncKernelManager, name), name
    # The adopted kernel is driven through these attributes of the provisioner (polled, signalled, killed).
    source = inspect.getsource(LocalProvisioner)
    for name in ("self.process", "self.pid", "self.pgid", "self.connection_info"):
        assert name in source, f"jupyter_client's LocalProvisioner no longer uses {name}"
