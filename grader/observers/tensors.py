"""Observers for exercise 01 (tensors): what the student's functions return on the grader's inputs.

The input builders are shared with the judge (grader.checks.tensors), which calls them again in the
trusted process rather than reading inputs back from the observation.
"""

import numpy as np
import torch

from grader.observation import CALL, ENCODED, ListOf, capture, encode, observes

GRID_SIZES = [(2, 3), (1, 1), (4, 1), (1, 5), (3, 7)]
STANDARDIZE_SHAPES = [(5, 3), (50, 1), (2, 8), (100, 30)]
ROW_LABELS = [0, 1, 2, 5]


def standardize_inputs() -> list[torch.Tensor]:
    """Columns on very different scales, so one mean/std for the whole tensor is visibly wrong."""
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(shape, generator=generator) * torch.linspace(1, 20, shape[1]) + 7
            for shape in STANDARDIZE_SHAPES]


def rows_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Labels out of order, with one label (5) that never occurs."""
    return torch.arange(24, dtype=torch.float32).reshape(8, 3), torch.tensor([0, 1, 1, 0, 2, 1, 0, 0])


def float32_inputs() -> dict[str, np.ndarray]:
    """Fresh arrays (the observer overwrites them to detect shared memory)."""
    return {
        "a float64 array": np.linspace(0, 1, 6).reshape(2, 3),
        "an int64 array": np.arange(5),
        "a float32 array": np.ones((3, 2), dtype=np.float32),
    }


@observes({"calls": ListOf(CALL, length=len(GRID_SIZES))})
def observe_make_grid(make_grid, **kwargs) -> dict:
    return {"calls": [capture(make_grid, n_rows, n_cols) for n_rows, n_cols in GRID_SIZES]}


@observes({"calls": ListOf({"result": CALL, "X_after": ENCODED}, length=len(STANDARDIZE_SHAPES))})
def observe_standardize_columns(standardize_columns, **kwargs) -> dict:
    calls = []
    for X in standardize_inputs():
        result = capture(standardize_columns, X)
        calls.append({"result": result, "X_after": encode(X)})
    return {"calls": calls}


@observes({"calls": ListOf(CALL, length=len(ROW_LABELS))})
def observe_rows_where(rows_where, **kwargs) -> dict:
    X, y = rows_inputs()
    return {"calls": [capture(rows_where, X, y, label) for label in ROW_LABELS]}


@observes({"calls": ListOf({"result": CALL, "after_array_changed": ENCODED}, length=len(float32_inputs()))})
def observe_to_float32_tensor(to_float32_tensor, **kwargs) -> dict:
    calls = []
    for array in float32_inputs().values():
        kept = []

        def keep(array, kept=kept):
            kept.append(to_float32_tensor(array))
            return kept[0]

        result = capture(keep, array)
        # Overwrite the caller's array: a result that shares its memory changes with it.
        array[...] = 42
        calls.append({"result": result, "after_array_changed": encode(kept[0]) if kept else None})
    return {"calls": calls}


# The machines pick_device is called on: (key, a compiled-in CUDA accelerator, the number of visible CUDA GPUs).
DEVICE_SCENARIOS = (
    ("gpu_present", True, 1),             # a CUDA build with one GPU (Colab's GPU runtime)
    ("gpu_absent", False, 0),             # a CPU-only build (a laptop with pip's CPU wheel)
    ("gpu_absent_cuda_build", True, 0),   # a CUDA build and no GPU (Colab's CPU runtime)
)


class _Missing:
    """Stands for an attribute a module did not have."""


def _set(owner, name, value, saved: list) -> None:
    saved.append((owner, name, getattr(owner, name, _Missing)))
    setattr(owner, name, value)


def _restore(saved: list) -> None:
    for owner, name, value in reversed(saved):
        if value is _Missing:
            if hasattr(owner, name):
                delattr(owner, name)
        else:
            setattr(owner, name, value)


def _simulated(compiled: bool, count: int) -> list:
    """Make every public way of asking torch about GPUs answer as on that machine, and return what to restore.

    The primitives that torch.cuda.is_available, torch.cuda.device_count and torch.accelerator consult at
    call time are replaced, not the public functions, so a function imported early (`from torch.cuda import
    is_available`) answers the same as `torch.cuda.is_available()`.
    """
    saved: list = [(torch._C, "_cuda_getDeviceCount", getattr(torch._C, "_cuda_getDeviceCount", _Missing))]
    if compiled:
        torch._C._cuda_getDeviceCount = lambda: count
    elif hasattr(torch._C, "_cuda_getDeviceCount"):
        del torch._C._cuda_getDeviceCount  # torch.cuda._is_compiled() now answers False
    _set(torch.cuda, "_nvml_based_avail", lambda: False, saved)
    _set(torch.cuda, "_device_count_nvml", lambda: -1, saved)
    _set(torch.cuda, "_cached_device_count", None, saved)
    if hasattr(torch._C, "_accelerator_getAccelerator"):
        accelerator = torch.device("cuda") if compiled else None
        _set(torch._C, "_accelerator_getAccelerator", lambda: accelerator, saved)
    return saved


@observes({key: CALL for key, _, _ in DEVICE_SCENARIOS})
def observe_pick_device(pick_device, **kwargs) -> dict:
    """pick_device() on each simulated machine of DEVICE_SCENARIOS."""
    calls = {}
    for key, compiled, count in DEVICE_SCENARIOS:
        saved = _simulated(compiled, count)
        try:
            calls[key] = capture(pick_device)
        finally:
            _restore(saved)
    return calls
