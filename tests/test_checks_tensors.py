"""Do the hidden checks of exercise 01 accept correct code and explain each wrong answer?"""

import json

import numpy as np
import pytest
import torch
from check_helpers import fails_with as _fails_with
from check_helpers import observed

from grader import observation
from grader.checks import tensors
from grader.checks.report import CheckFailed

# make_grid ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("right", [
    lambda r, c: torch.arange(r * c, dtype=torch.float32).reshape(r, c),
    lambda r, c: torch.arange(r * c).float().view(r, c),
    lambda r, c: torch.tensor([[i * c + j for j in range(c)] for i in range(r)], dtype=torch.float32),
])
def test_make_grid_accepts_correct_variants(right):
    """Is every correct make_grid accepted however it is written?"""
    tensors.check_make_grid(right)


@pytest.mark.parametrize("wrong, fragments", [
    (lambda r, c: torch.arange(r * c).reshape(r, c), ["wrong dtype", "dtype=torch.float32"]),
    (lambda r, c: torch.arange(r * c, dtype=torch.float32), ["wrong shape", "(2, 3)"]),
    (lambda r, c: torch.arange(r * c, dtype=torch.float32).reshape(c, r).T, ["wrong values", "row"]),
    (lambda r, c: np.arange(r * c, dtype=np.float32).reshape(r, c), ["torch.Tensor", "ndarray"]),
    (lambda r, c: torch.arange(6, dtype=torch.float32).reshape(2, 3), ["make_grid(1, 1)", "wrong shape"]),
    (lambda r, c: 1 / 0, ["raised ZeroDivisionError"]),
])
def test_make_grid_explains_mistakes(wrong, fragments):
    """Does each wrong make_grid fail with a message naming the mistake?"""
    _fails_with(tensors.check_make_grid, wrong, *fragments)


def test_not_implemented_passes_through_unchanged():
    """Does an unsolved stub still raise NotImplementedError, not a check failure?"""
    def stub(*args):
        raise NotImplementedError("Replace this line")

    with pytest.raises(NotImplementedError):
        tensors.check_make_grid(stub)


def test_failure_traceback_hides_the_check_code():
    """Does a failure's traceback stop at the wrapper instead of listing the check's lines?"""
    import traceback

    with pytest.raises(CheckFailed) as failure:
        tensors.check_make_grid(lambda r, c: torch.zeros(1))
    frames = [frame.name for frame in traceback.extract_tb(failure.value.__traceback__)]
    # The wrapper's own frame (its code is named `check`) is the last: no judge's or helper's line shows.
    assert frames[-1] == "check" and not any(name.startswith("judge_") for name in frames), frames
    assert failure.value.__cause__ is None and failure.value.__context__ is None


# standardize_columns -----------------------------------------------------------------------------

def test_standardize_accepts_correct_variants():
    """Are the broadcasting and the explicit-keepdim versions both accepted?"""
    tensors.check_standardize_columns(lambda X: (X - X.mean(0)) / X.std(0))
    tensors.check_standardize_columns(lambda X: (X - X.mean(0, keepdim=True)) / X.std(0, keepdim=True))


def _in_place(X):
    X -= X.mean(dim=0)
    X /= X.std(dim=0)
    return X


@pytest.mark.parametrize("wrong, fragments", [
    (_in_place, ["changed its input", "in place"]),
    (lambda X: (X - X.mean()) / X.std(), ["one mean and std for the whole tensor"]),
    (lambda X: (X - X.mean(0)) / X.std(0, correction=0), ["N - 1"]),
    (lambda X: (X - X.mean(1, keepdim=True)) / X.std(1, keepdim=True), ["wrong values", "dim=0"]),
    (lambda X: X - X.mean(0), ["wrong values"]),
])
def test_standardize_explains_mistakes(wrong, fragments):
    """Does each wrong standardisation fail with a message naming the mistake?"""
    _fails_with(tensors.check_standardize_columns, wrong, *fragments)


# rows_where --------------------------------------------------------------------------------------

def test_rows_where_accepts_correct_variants():
    """Are a mask, nonzero indices and torch.where all accepted?"""
    tensors.check_rows_where(lambda X, y, label: X[y == label])
    tensors.check_rows_where(lambda X, y, label: X[(y == label).nonzero().squeeze(1)])
    tensors.check_rows_where(lambda X, y, label: X[torch.where(y == label)[0]])


@pytest.mark.parametrize("wrong, fragments", [
    (lambda X, y, label: X[y == label][0], ["wrong shape"]),
    (lambda X, y, label: X[y == label] if (y == label).any() else torch.tensor([]), ["rows_where(X, y, 5)", "empty"]),
    (lambda X, y, label: X[y != label], ["wrong rows", "not !="]),
    (lambda X, y, label: X[y == label].flip(0), ["wrong rows", "original order"]),
    (lambda X, y, label: X[:, 0][y == label], ["wrong shape"]),
])
def test_rows_where_explains_mistakes(wrong, fragments):
    """Does each wrong selection fail with a message naming the mistake?"""
    _fails_with(tensors.check_rows_where, wrong, *fragments)


# to_float32_tensor -------------------------------------------------------------------------------

def test_to_float32_accepts_correct_variants():
    """Are the copying conversions accepted?"""
    tensors.check_to_float32_tensor(lambda a: torch.tensor(a, dtype=torch.float32))
    tensors.check_to_float32_tensor(lambda a: torch.from_numpy(a).float().clone())
    tensors.check_to_float32_tensor(lambda a: torch.as_tensor(a.astype(np.float32, copy=True)))


@pytest.mark.parametrize("wrong, fragments", [
    (lambda a: torch.from_numpy(a), ["wrong dtype", "float64"]),
    (lambda a: torch.from_numpy(a).float(), ["shares memory"]),
    (lambda a: torch.as_tensor(a, dtype=torch.float32), ["shares memory"]),
    (lambda a: a.astype(np.float32), ["torch.Tensor"]),
    (lambda a: torch.tensor(a, dtype=torch.float32).flatten(), ["wrong shape"]),
])
def test_to_float32_explains_mistakes(wrong, fragments):
    """Does each wrong conversion fail with a message naming the mistake?"""
    _fails_with(tensors.check_to_float32_tensor, wrong, *fragments)


# pick_device -------------------------------------------------------------------------------------

# Every correct way to ask torch for the device: the check simulates the machine, not one function.
DEVICE_VARIANTS = {
    "one_line": 'def pick_device():\n    return torch.device("cuda" if torch.cuda.is_available() else "cpu")',
    "if_else": 'def pick_device():\n    if torch.cuda.is_available():\n        return torch.device("cuda")\n'
               '    return torch.device("cpu")',
    "device_count": 'def pick_device():\n    return torch.device("cuda" if torch.cuda.device_count() > 0 else "cpu")',
    "imported_early": 'from torch.cuda import is_available\n\ndef pick_device():\n'
                      '    return torch.device("cuda:0") if is_available() else torch.device("cpu")',
    "module_alias": 'import torch.cuda as tc\n\ndef pick_device():\n'
                    '    return torch.device("cuda", 0) if tc.is_available() else torch.device(type="cpu")',
    "mps_first": 'def pick_device():\n    if torch.backends.mps.is_available():\n        return torch.device("mps")\n'
                 '    return torch.device("cuda" if torch.cuda.is_available() else "cpu")',
    "accelerator_checked": 'def pick_device():\n    accelerator = torch.accelerator.current_accelerator('
                           'check_available=True)\n    return accelerator or torch.device("cpu")',
    "accelerator_is_available": 'def pick_device():\n'
                                '    if torch.accelerator.is_available():\n'
                                '        return torch.accelerator.current_accelerator()\n'
                                '    return torch.device("cpu")',
}
DEVICE_MISTAKES = {
    "a_string": ('def pick_device():\n    return "cuda" if torch.cuda.is_available() else "cpu"',
                 ["torch.device", "str"]),
    "always_cpu": ('def pick_device():\n    return torch.device("cpu")', ["with a GPU present", "cuda"]),
    "always_cuda": ('def pick_device():\n    return torch.device("cuda")', ["with no GPU", "cpu"]),
    "decided_once_before": ('DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")\n\n'
                            'def pick_device():\n    return DEVICE', ["with a GPU present", "each time it is called"]),
    # On a CUDA build, current_accelerator() names CUDA even when no GPU is there (Colab's CPU runtime).
    "accelerator_unchecked": ('def pick_device():\n    return torch.accelerator.current_accelerator() or '
                              'torch.device("cpu")', ["as on Colab's CPU runtime", "check_available=True"]),
}
_NEEDS_ACCELERATOR = {"accelerator_checked", "accelerator_is_available", "accelerator_unchecked"}


def _device_function(source):
    namespace = {"torch": torch}
    exec(source, namespace)
    return namespace["pick_device"]


def _cuda_state():
    return (torch.cuda.is_available, torch.cuda.device_count, getattr(torch._C, "_cuda_getDeviceCount", None),
            torch.cuda._is_compiled(), torch.cuda.is_available(), torch.cuda.device_count(),
            torch.accelerator.current_accelerator() if hasattr(torch, "accelerator") else None)


@pytest.mark.parametrize("name", sorted(DEVICE_VARIANTS))
def test_pick_device_accepts_every_correct_way(name):
    """Is each correct way of choosing the device accepted, and is torch left exactly as it was?"""
    if name in _NEEDS_ACCELERATOR and not hasattr(torch, "accelerator"):
        pytest.skip("torch.accelerator needs torch 2.6")
    before = _cuda_state()
    tensors.check_pick_device(_device_function(DEVICE_VARIANTS[name]))
    assert _cuda_state() == before


@pytest.mark.parametrize("name", sorted(DEVICE_MISTAKES))
def test_pick_device_explains_mistakes(name):
    """Does each wrong device choice fail with a message naming the mistake?"""
    if name in _NEEDS_ACCELERATOR and not hasattr(torch, "accelerator"):
        pytest.skip("torch.accelerator needs torch 2.6")
    source, fragments = DEVICE_MISTAKES[name]
    before = _cuda_state()
    _fails_with(tensors.check_pick_device, _device_function(source), *fragments)
    assert _cuda_state() == before


# observations and forgeries ----------------------------------------------------------------------
# The judge runs in the trusted process on whatever the kernel reported: it must rebuild its inputs and
# recompute, so a plausible observation with one wrong detail fails, and every observation is strict JSON.

RIGHT = {
    "make_grid": lambda r, c: torch.arange(r * c, dtype=torch.float32).reshape(r, c),
    "standardize_columns": lambda X: (X - X.mean(0)) / X.std(0),
    "rows_where": lambda X, y, label: X[y == label],
    "to_float32_tensor": lambda a: torch.tensor(a, dtype=torch.float32),
    "pick_device": lambda: torch.device("cuda" if torch.cuda.is_available() else "cpu"),
}


class _Liar:
    """Claims to equal everything, like a forged result would."""

    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


WRONG = {
    "make_grid": lambda r, c: _Liar(),
    "standardize_columns": lambda X: X / 0 - X,  # inf and NaN must survive strict JSON
    "rows_where": lambda X, y, label: np.asarray(X[y == label]),
    "to_float32_tensor": lambda a: torch.from_numpy(a),
    "pick_device": lambda: "cuda",
}


def _observed(name, candidate):
    """What the kernel would send for `candidate`, after the JSON round trip."""
    return observed(getattr(tensors, f"check_{name}"), candidate)


def _judge_rejects(name, obs, *fragments):
    _fails_with(getattr(tensors, f"check_{name}").judge, obs, *fragments)


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_observation_is_strict_json_and_judged_right(name):
    """Does every observation, right or wrong, survive strict JSON, and does the right one pass the judge?"""
    for candidate in (RIGHT[name], WRONG[name]):
        text = observation.as_json(getattr(tensors, f"check_{name}").observe(candidate))
        assert json.loads(text) is not None, f"{name}: observation did not round-trip"
    getattr(tensors, f"check_{name}").judge(_observed(name, RIGHT[name]))


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_truncated_observation_is_never_a_pass(name):
    """Does an observation missing its last record fail instead of passing on what is left?"""
    obs = _observed(name, RIGHT[name])
    if "calls" in obs:
        obs["calls"].pop()
    else:
        obs.pop("gpu_absent")
    try:
        getattr(tensors, f"check_{name}").judge(obs)
    except Exception:  # noqa: BLE001 -- any failure is right (the engine reports it); only a pass is wrong
        return
    pytest.fail(f"{name}: an observation missing its last record passed the judge")


def test_forged_make_grid_values_are_recomputed():
    """Is a make_grid observation with one wrong number in the last grid rejected?"""
    obs = _observed("make_grid", RIGHT["make_grid"])
    grid = torch.arange(21, dtype=torch.float32).reshape(3, 7)
    grid[2, 6] = 21
    obs["calls"][-1] = {"value": observation.encode(grid)}
    _judge_rejects("make_grid", obs, "make_grid(3, 7) holds the wrong values")


def test_forged_make_grid_object_that_equals_everything_is_rejected():
    """Does a result whose == is always True fail the type check instead of passing comparisons?"""
    _judge_rejects("make_grid", _observed("make_grid", WRONG["make_grid"]), "torch.Tensor", "_Liar")


def test_forged_standardize_on_other_inputs_is_rejected(monkeypatch):
    """If the kernel's torch builds other X (patched randn), do correct-looking outputs for them fail?"""
    honest = _observed("standardize_columns", RIGHT["standardize_columns"])
    randn = torch.randn
    # Shuffled rows: per-column shifts or scales would standardise to the same result.
    monkeypatch.setattr(torch, "randn", lambda *shape, **kw: randn(*shape, **kw).flip(0))
    obs = _observed("standardize_columns", RIGHT["standardize_columns"])
    monkeypatch.undo()
    for call, honest_call in zip(obs["calls"], honest["calls"], strict=True):
        call["X_after"] = honest_call["X_after"]  # claim the grader's X was used and left alone
    _judge_rejects("standardize_columns", obs, "(5, 3) holds the wrong values")


def test_forged_standardize_input_change_is_caught():
    """Is an observation whose X after the call differs from the grader's X rejected?"""
    obs = _observed("standardize_columns", RIGHT["standardize_columns"])
    obs["calls"][1]["X_after"] = observation.encode(torch.zeros(50, 1))
    _judge_rejects("standardize_columns", obs, "(50, 1) changed its input X")


def test_forged_rows_where_order_is_recomputed():
    """Is a rows_where observation with right rows in the wrong order rejected?"""
    obs = _observed("rows_where", RIGHT["rows_where"])
    X, y = torch.arange(24, dtype=torch.float32).reshape(8, 3), torch.tensor([0, 1, 1, 0, 2, 1, 0, 0])
    obs["calls"][1] = {"value": observation.encode(X[y == 1].flip(0))}
    _judge_rejects("rows_where", obs, "rows_where(X, y, 1) holds the wrong rows", "original order")


def test_forged_to_float32_shared_memory_is_caught():
    """Does a tensor that changed with the array fail even if its first values were right?"""
    obs = _observed("to_float32_tensor", RIGHT["to_float32_tensor"])
    obs["calls"][2]["after_array_changed"] = observation.encode(torch.full((3, 2), 42.0))
    _judge_rejects("to_float32_tensor", obs, "a float32 array", "shares memory")


def test_forged_to_float32_dtype_is_checked():
    """Is a right-valued float64 result rejected for its dtype?"""
    obs = _observed("to_float32_tensor", RIGHT["to_float32_tensor"])
    obs["calls"][0]["result"] = {"value": observation.encode(torch.linspace(0, 1, 6, dtype=torch.float64)
                                                             .reshape(2, 3))}
    _judge_rejects("to_float32_tensor", obs, "wrong dtype", "float64")


def test_forged_pick_device_is_judged_per_patched_answer():
    """Is an observation claiming 'cuda' whatever is_available answered rejected, and a look-alike type too?"""
    obs = _observed("pick_device", RIGHT["pick_device"])
    obs["gpu_absent"] = obs["gpu_present"]
    _judge_rejects("pick_device", obs, "with no GPU", "cuda")
    obs = _observed("pick_device", RIGHT["pick_device"])
    obs["gpu_present"] = {"value": {"__object__": {"type": "builtins.str", "repr": "device(type='cuda')"}}}
    _judge_rejects("pick_device", obs, "torch.device", "str")


def test_pick_device_observer_simulates_each_machine_and_restores_torch():
    """Does the observer call pick_device on each simulated machine, where every way of asking agrees, and put
    torch back as it was?"""
    before, seen = _cuda_state(), []

    def spy():
        seen.append((torch.cuda.is_available(), torch.cuda.device_count(), torch.cuda._is_compiled()))
        return torch.device("cpu")

    obs = tensors.check_pick_device.observe(spy)
    assert seen == [(True, 1, True), (False, 0, False), (False, 0, True)], seen
    assert set(obs) == {"gpu_present", "gpu_absent", "gpu_absent_cuda_build"}, obs
    assert _cuda_state() == before


def test_observer_module_imports_nothing_that_judges():
    """Does the grading kernel's observer module stay free of grader.checks (the judges and references)?"""
    import ast
    import inspect

    from grader.observers import tensors as observers

    tree = ast.parse(inspect.getsource(observers))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"numpy", "torch", "grader.observation"}, f"observer imports {imported}"
