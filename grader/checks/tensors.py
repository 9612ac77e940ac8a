"""Hidden checks for exercise 01 (tensors)."""

import numpy as np
import torch

from grader.checks.report import call, expect, patched, student_check

LECTURE = "lecture 01"


def _expect_tensor(value, what: str) -> None:
    expect(
        isinstance(value, torch.Tensor),
        f"{what} should return a torch.Tensor.",
        expected="torch.Tensor",
        found=type(value).__name__,
        hint=f"build the result with torch functions ({LECTURE}, 'Creating tensors').",
    )


def _expect_dtype(value: torch.Tensor, dtype: torch.dtype, what: str, hint: str) -> None:
    expect(value.dtype == dtype, f"{what} has the wrong dtype.", dtype, value.dtype, hint)


@student_check
def check_make_grid(make_grid) -> None:
    """make_grid(n_rows, n_cols): float32 (n_rows, n_cols) counting 0, 1, 2, ... row by row."""
    for n_rows, n_cols in [(2, 3), (1, 1), (4, 1), (1, 5), (3, 7)]:
        what = f"make_grid({n_rows}, {n_cols})"
        grid = call(make_grid, n_rows, n_cols, what=what)
        _expect_tensor(grid, what)
        expect(
            tuple(grid.shape) == (n_rows, n_cols),
            f"{what} has the wrong shape.",
            (n_rows, n_cols),
            tuple(grid.shape),
            f"reshape a flat range into rows and columns ({LECTURE}, 'Shape and reshape').",
        )
        _expect_dtype(
            grid, torch.float32, what, "torch.arange gives int64 for whole numbers: pass dtype=torch.float32."
        )
        expected = torch.arange(n_rows * n_cols, dtype=torch.float32).reshape(n_rows, n_cols)
        expect(
            torch.equal(grid.cpu(), expected),
            f"{what} holds the wrong values.",
            expected.tolist(),
            grid.tolist(),
            "the numbers should run along each row first: row 0 is 0, 1, ..., n_cols - 1.",
        )


@student_check
def check_standardize_columns(standardize_columns) -> None:
    """standardize_columns(X): each column minus its mean, divided by its std; X unchanged."""
    generator = torch.Generator().manual_seed(1)
    for shape in [(5, 3), (50, 1), (2, 8), (100, 30)]:
        X = torch.randn(shape, generator=generator) * torch.linspace(1, 20, shape[1]) + 7
        original = X.clone()
        what = f"standardize_columns(X) for X of shape {shape}"
        Z = call(standardize_columns, X, what=what)
        _expect_tensor(Z, what)
        expect(
            torch.equal(X, original),
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
            f"({LECTURE}, 'Broadcasting').",
        )
        expected = (X - X.mean(dim=0)) / X.std(dim=0)
        close = torch.allclose(Z.to(torch.float32), expected, atol=1e-4, rtol=1e-4)
        hint = "take the mean and std over the rows (dim=0), one value per column."
        if torch.allclose(Z.to(torch.float32), (X - X.mean()) / X.std(), atol=1e-4):
            hint = "you used one mean and std for the whole tensor; use one per column (dim=0)."
        elif torch.allclose(Z.to(torch.float32), (X - X.mean(dim=0)) / X.std(dim=0, correction=0), atol=1e-4):
            hint = "use torch's default .std(), which divides by N - 1."
        expect(close, f"{what} holds the wrong values.", expected[0].tolist(), Z[0].tolist(), hint)


@student_check
def check_rows_where(rows_where) -> None:
    """rows_where(X, y, label): the rows of X whose entry in y equals label, in order."""
    X = torch.arange(24, dtype=torch.float32).reshape(8, 3)
    y = torch.tensor([0, 1, 1, 0, 2, 1, 0, 0])
    for label in [0, 1, 2, 5]:
        what = f"rows_where(X, y, {label})"
        rows = call(rows_where, X, y, label, what=what)
        _expect_tensor(rows, what)
        expected = X[y == label]
        expect(
            tuple(rows.shape) == tuple(expected.shape),
            f"{what} has the wrong shape.",
            tuple(expected.shape),
            tuple(rows.shape),
            "index X with a boolean mask (y == label) to keep whole rows; with no match the result "
            f"is an empty (0, n_features) tensor ({LECTURE}, 'Indexing').",
        )
        hint = "keep the rows in their original order"
        if rows.shape == X[y != label].shape and torch.equal(rows, X[y != label]):
            hint = "you kept the rows whose label differs: compare with ==, not !="
        expect(torch.equal(rows, expected), f"{what} holds the wrong rows.", expected.tolist(), rows.tolist(), hint)


@student_check
def check_to_float32_tensor(to_float32_tensor) -> None:
    """to_float32_tensor(array): float32 tensor with the array's values that does not share memory."""
    cases = {
        "a float64 array": np.linspace(0, 1, 6).reshape(2, 3),
        "an int64 array": np.arange(5),
        "a float32 array": np.ones((3, 2), dtype=np.float32),
    }
    for name, array in cases.items():
        what = f"to_float32_tensor({name})"
        result = call(to_float32_tensor, array, what=what)
        _expect_tensor(result, what)
        _expect_dtype(
            result, torch.float32, what,
            f"NumPy arrays are float64 by default, but nn layers expect float32 ({LECTURE}, 'NumPy').",
        )
        expect(tuple(result.shape) == array.shape, f"{what} has the wrong shape.", array.shape, tuple(result.shape))
        expect(
            np.allclose(result.cpu().numpy(), array.astype(np.float32)),
            f"{what} holds the wrong values.",
            array.tolist(),
            result.tolist(),
        )
        array[...] = 42
        expect(
            not bool((result == 42).all()),
            f"{what} still shares memory with the array: changing the array changed your tensor.",
            hint="torch.from_numpy shares memory, and .float() is a no-op on float32 data; "
            "use torch.tensor(array, dtype=torch.float32), which always copies.",
        )


@student_check
def check_pick_device(pick_device) -> None:
    """pick_device(): torch.device("cuda") when a GPU is available, else torch.device("cpu")."""
    for available, expected in [(True, "cuda"), (False, "cpu")]:
        with patched(torch.cuda, "is_available", lambda available=available: available):
            device = call(pick_device, what=f"pick_device() with a GPU {'present' if available else 'absent'}")
        expect(
            isinstance(device, torch.device),
            "pick_device() should return a torch.device.",
            "torch.device",
            type(device).__name__,
            "wrap the name: torch.device('cuda') or torch.device('cpu').",
        )
        expect(
            device.type == expected,
            f"pick_device() with a GPU {'present' if available else 'absent'} chose the wrong device.",
            expected,
            device.type,
            f"ask torch.cuda.is_available() every time you are called ({LECTURE}, 'Choosing the device').",
        )
