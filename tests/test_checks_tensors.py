"""Do the hidden checks of exercise 01 accept correct code and explain each wrong answer?"""

import numpy as np
import pytest
import torch

from grader.checks import tensors
from grader.checks.report import CheckFailed


def _fails_with(check, candidate, *fragments):
    with pytest.raises(CheckFailed) as failure:
        check(candidate)
    for fragment in fragments:
        assert fragment in str(failure.value), f"message lacks {fragment!r}:\n{failure.value}"
    return str(failure.value)


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
    assert "check_make_grid" not in frames and "expect" not in frames, frames
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

def test_pick_device_accepts_correct_variants():
    """Are the one-line and if/else versions accepted, and is torch.cuda restored afterwards?"""
    original = torch.cuda.is_available
    tensors.check_pick_device(lambda: torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    tensors.check_pick_device(lambda: torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    assert torch.cuda.is_available is original


@pytest.mark.parametrize("wrong, fragments", [
    (lambda: "cuda" if torch.cuda.is_available() else "cpu", ["torch.device", "str"]),
    (lambda: torch.device("cpu"), ["GPU present", "cuda"]),
    (lambda: torch.device("cuda"), ["GPU absent", "cpu"]),
])
def test_pick_device_explains_mistakes(wrong, fragments):
    """Does each wrong device choice fail with a message naming the mistake?"""
    _fails_with(tensors.check_pick_device, wrong, *fragments)
