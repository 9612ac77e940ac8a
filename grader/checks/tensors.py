"""Hidden checks for exercise 01 (tensors): judges of what grader.observers.tensors observed."""

import re

import numpy as np
import torch

from grader.checks.report import expect, judged, returned, type_name
from grader.observation import Opaque, decode
from grader.observers import tensors as observers
from grader.observers.tensors import (
    observe_make_grid,
    observe_pick_device,
    observe_rows_where,
    observe_standardize_columns,
    observe_to_float32_tensor,
)

LECTURE = "lecture 01"


def _expect_tensor(value, what: str) -> None:
    expect(
        isinstance(value, torch.Tensor),
        f"{what} should return a torch.Tensor.",
        expected="torch.Tensor",
        found=type_name(value),
        hint=f"build the result with torch functions ({LECTURE}, '1. Creating tensors').",
    )


def _expect_dtype(value: torch.Tensor, dtype: torch.dtype, what: str, hint: str) -> None:
    expect(value.dtype == dtype, f"{what} has the wrong dtype.", dtype, value.dtype, hint)


def judge_make_grid(obs: dict, **kwargs) -> None:
    """make_grid(n_rows, n_cols): float32 (n_rows, n_cols) counting 0, 1, 2, ... row by row."""
    for (n_rows, n_cols), call in zip(observers.GRID_SIZES, obs["calls"], strict=True):
        what = f"make_grid({n_rows}, {n_cols})"
        grid = returned(call, what)
        _expect_tensor(grid, what)
        expect(
            tuple(grid.shape) == (n_rows, n_cols),
            f"{what} has the wrong shape.",
            (n_rows, n_cols),
            tuple(grid.shape),
            "reshape a flat range into rows and columns "
            f"({LECTURE}, '3. Shapes: `reshape`, `view`, `unsqueeze`, `squeeze`, `flatten`').",
        )
        _expect_dtype(
            grid, torch.float32, what, "torch.arange gives int64 for whole numbers: pass dtype=torch.float32."
        )
        expected = torch.arange(n_rows * n_cols, dtype=torch.float32).reshape(n_rows, n_cols)
        expect(
            torch.equal(grid, expected),
            f"{what} holds the wrong values.",
            expected.tolist(),
            grid.tolist(),
            "the numbers should run along each row first: row 0 is 0, 1, ..., n_cols - 1.",
        )


def judge_standardize_columns(obs: dict, **kwargs) -> None:
    """standardize_columns(X): each column minus its mean, divided by its std; X unchanged."""
    for X, call in zip(observers.standardize_inputs(), obs["calls"], strict=True):
        shape = tuple(X.shape)
        what = f"standardize_columns(X) for X of shape {shape}"
        Z = returned(call["result"], what)
        _expect_tensor(Z, what)
        X_after = decode(call["X_after"])
        expect(
            isinstance(X_after, torch.Tensor) and X_after.shape == X.shape and torch.equal(X_after, X),
            f"{what} changed its input X.",
            hint="operators like -= and /= work in place and overwrite the caller's data; "
            "compute a new tensor instead.",
        )
        expect(
            tuple(Z.shape) == shape,
            f"{what} has the wrong shape.",
            shape,
            tuple(Z.shape),
            f"keep the shape: broadcasting stretches the (n_features,) mean over the rows "
            f"({LECTURE}, '5. Broadcasting').",
        )
        Z = Z.to(torch.float32)
        expected = (X - X.mean(dim=0)) / X.std(dim=0)
        close = torch.allclose(Z, expected, atol=1e-4, rtol=1e-4)
        hint = "take the mean and std over the rows (dim=0), one value per column."
        if torch.allclose(Z, (X - X.mean()) / X.std(), atol=1e-4):
            hint = "you used one mean and std for the whole tensor; use one per column (dim=0)."
        elif torch.allclose(Z, (X - X.mean(dim=0)) / X.std(dim=0, correction=0), atol=1e-4):
            hint = "use torch's default .std(), which divides by N - 1."
        expect(close, f"{what} holds the wrong values.", expected[0].tolist(), Z[0].tolist(), hint)


def judge_rows_where(obs: dict, **kwargs) -> None:
    """rows_where(X, y, label): the rows of X whose entry in y equals label, in order."""
    X, y = observers.rows_inputs()
    for label, call in zip(observers.ROW_LABELS, obs["calls"], strict=True):
        what = f"rows_where(X, y, {label})"
        rows = returned(call, what)
        _expect_tensor(rows, what)
        expected = X[y == label]
        expect(
            tuple(rows.shape) == tuple(expected.shape),
            f"{what} has the wrong shape.",
            tuple(expected.shape),
            tuple(rows.shape),
            "index X with a boolean mask (y == label) to keep whole rows; with no match the result "
            f"is an empty (0, n_features) tensor ({LECTURE}, '4. Indexing, slicing and boolean masks').",
        )
        hint = "keep the rows in their original order"
        if rows.shape == X[y != label].shape and torch.equal(rows, X[y != label]):
            hint = "you kept the rows whose label differs: compare with ==, not !="
        expect(torch.equal(rows, expected), f"{what} holds the wrong rows.", expected.tolist(), rows.tolist(), hint)


def judge_to_float32_tensor(obs: dict, **kwargs) -> None:
    """to_float32_tensor(array): float32 tensor with the array's values that does not share memory."""
    for (name, array), call in zip(observers.float32_inputs().items(), obs["calls"], strict=True):
        what = f"to_float32_tensor({name})"
        result = returned(call["result"], what)
        _expect_tensor(result, what)
        _expect_dtype(
            result, torch.float32, what,
            "NumPy arrays are float64 by default, but nn layers expect float32 "
            f"({LECTURE}, '8. NumPy interoperability').",
        )
        expect(tuple(result.shape) == array.shape, f"{what} has the wrong shape.", array.shape, tuple(result.shape))
        expect(
            np.allclose(result.numpy(), array.astype(np.float32)),
            f"{what} holds the wrong values.",
            array.tolist(),
            result.tolist(),
        )
        # The observer overwrote the array with 42 after the call; an independent copy kept its values.
        after = decode(call["after_array_changed"])
        expect(
            isinstance(after, torch.Tensor) and after.dtype == result.dtype and after.shape == result.shape
            and torch.equal(after, result),
            f"{what} still shares memory with the array: changing the array changed your tensor.",
            hint="torch.from_numpy shares memory, and .float() is a no-op on float32 data; "
            "use torch.tensor(array, dtype=torch.float32), which always copies.",
        )


_DEVICE_REPR = re.compile(r"device\(type='(\w+)'(?:, index=\d+)?\)")


def _device_type(value) -> str | None:
    """The type of an observed torch.device ('cuda', 'cpu'), None for anything else."""
    if isinstance(value, Opaque) and value.type_name == "torch.device":
        match = _DEVICE_REPR.fullmatch(value.text)
        return match[1] if match else None
    return None


def judge_pick_device(obs: dict, **kwargs) -> None:
    """pick_device(): torch.device("cuda") when a CUDA GPU is available, else torch.device("cpu"), however torch is
    asked (torch.cuda.is_available, torch.cuda.device_count, torch.accelerator, ...)."""
    machines = {
        "gpu_present": ("with a GPU present", "cuda"),
        "gpu_absent": ("with no GPU (a CPU-only PyTorch)", "cpu"),
        "gpu_absent_cuda_build": ("with no GPU (a PyTorch built for CUDA, as on Colab's CPU runtime)", "cpu"),
    }
    for key, _compiled, _count in observers.DEVICE_SCENARIOS:
        where, expected = machines[key]
        device = returned(obs[key], f"pick_device() {where}")
        kind = _device_type(device)
        expect(
            kind is not None,
            "pick_device() should return a torch.device.",
            "torch.device",
            type_name(device),
            "wrap the name: torch.device('cuda') or torch.device('cpu').",
        )
        expect(
            kind == expected,
            f"pick_device() {where} chose the wrong device.",
            expected,
            kind,
            "ask torch whether a GPU is available inside pick_device, each time it is called: "
            "torch.cuda.is_available(), torch.cuda.device_count() > 0 or "
            "torch.accelerator.current_accelerator(check_available=True) all work "
            f"({LECTURE}, '9. Choosing the device: CPU or GPU').",
        )


check_make_grid = judged(observe_make_grid, judge_make_grid)
check_standardize_columns = judged(observe_standardize_columns, judge_standardize_columns)
check_rows_where = judged(observe_rows_where, judge_rows_where)
check_to_float32_tensor = judged(observe_to_float32_tensor, judge_to_float32_tensor)
check_pick_device = judged(observe_pick_device, judge_pick_device)
