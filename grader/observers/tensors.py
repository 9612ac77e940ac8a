"""Observers for exercise 01 (tensors): what the student's functions return on the grader's inputs.

The input builders are shared with the judge (grader.checks.tensors), which calls them again in the
trusted process rather than reading inputs back from the observation.
"""

import numpy as np
import torch

from grader.observation import capture, encode

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


def observe_make_grid(make_grid, **kwargs) -> dict:
    return {"calls": [capture(make_grid, n_rows, n_cols) for n_rows, n_cols in GRID_SIZES]}


def observe_standardize_columns(standardize_columns, **kwargs) -> dict:
    calls = []
    for X in standardize_inputs():
        result = capture(standardize_columns, X)
        calls.append({"result": result, "X_after": encode(X)})
    return {"calls": calls}


def observe_rows_where(rows_where, **kwargs) -> dict:
    X, y = rows_inputs()
    return {"calls": [capture(rows_where, X, y, label) for label in ROW_LABELS]}


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


def observe_pick_device(pick_device, **kwargs) -> dict:
    """pick_device() while torch.cuda.is_available() answers True, then False."""
    original = torch.cuda.is_available
    calls = {}
    try:
        for available, key in [(True, "gpu_present"), (False, "gpu_absent")]:
            torch.cuda.is_available = lambda available=available: available
            calls[key] = capture(pick_device)
    finally:
        torch.cuda.is_available = original
    return calls
