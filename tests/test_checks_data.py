"""Do the hidden checks of exercise 04 accept correct datasets and explain each wrong one?"""

import numpy as np
import pytest
import torch
from mutant_bank.bank_04_data import CORRECT_CELLS, MISTAKES
from torch.utils.data import Dataset

from grader.checks import data
from grader.checks.report import CheckFailed

REFERENCE = """
class TabularDataset(Dataset):
    def __init__(self, X, y):
        self.X = torch.tensor(X, dtype=torch.float32)
        self.y = torch.tensor(y, dtype=torch.float32).reshape(-1, 1)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]
"""


def _load(source):
    """The TabularDataset class a notebook cell defines (with the notebook's globals)."""
    rng = np.random.default_rng(0)
    namespace = {"np": np, "torch": torch, "Dataset": Dataset,
                 "X_train": rng.normal(size=(426, 30)), "y_train": rng.integers(0, 2, 426)}
    exec(source, namespace)
    return namespace["TabularDataset"]


def _fails_with(check, candidate, *fragments):
    with pytest.raises(CheckFailed) as failure:
        check(candidate)
    for fragment in fragments:
        assert fragment in str(failure.value), f"message lacks {fragment!r}:\n{failure.value}"
    return str(failure.value)


@pytest.mark.parametrize("name", ["reference", *CORRECT_CELLS])
def test_dataset_checks_accept_correct_variants(name):
    """Is every correct TabularDataset accepted, however it converts and reshapes?"""
    TabularDataset = _load(REFERENCE if name == "reference" else CORRECT_CELLS[name])
    data.check_dataset(TabularDataset)
    data.check_loader_batches(TabularDataset)


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_dataset_check_explains_each_mistake(name):
    """Does each wrong TabularDataset fail check_dataset with a message naming the mistake?"""
    source, fragment, _notebook = MISTAKES[name]
    _fails_with(data.check_dataset, _load(source), fragment)


@pytest.mark.parametrize("name, fragments", [
    ("scalar_target", ["(B,) instead of (B, 1)", "shape (1,)"]),
    ("float64_features", ["wrong dtype", "torch.float64"]),
    ("target_int64", ["wrong dtype", "torch.int64"]),
    ("len_is_feature_count", ["wrong number of batches", "__len__"]),
    ("len_hard_coded", ["raised IndexError", "__len__"]),
    ("off_by_one_plus", ["raised IndexError"]),
    ("returns_dict", ["dict batches"]),
    ("features_targets_swapped", ["X batch of the wrong shape"]),
    ("squeeze_in_init", ["X batch of the wrong shape", "(3, 1)"]),
])
def test_loader_check_explains_mistakes(name, fragments):
    """Does a DataLoader over a wrong TabularDataset fail with a message about the batches?"""
    _fails_with(data.check_loader_batches, _load(MISTAKES[name][0]), *fragments)


def test_hints_name_the_likely_mistake():
    """Do the hints point at the fix (from_numpy keeps float64, a scalar needs reshaping, i not i - 1)?"""
    def message(name):
        return _fails_with(data.check_dataset, _load(MISTAKES[name][0]))

    assert "torch.from_numpy keeps that dtype" in message("float64_features")
    assert "reshape y to a column" in message("scalar_target")
    assert "returned row 1 for index 0" in message("off_by_one_plus")
    assert "returned row 11 for index 0" in message("off_by_one_minus")


def test_not_implemented_passes_through_unchanged():
    """Does an unsolved stub still raise NotImplementedError, not a check failure?"""
    class Stub(Dataset):
        def __init__(self, X, y):
            raise NotImplementedError("Replace this line")

    for check in (data.check_dataset, data.check_loader_batches):
        with pytest.raises(NotImplementedError):
            check(Stub)


@pytest.mark.parametrize("seed", range(20))
def test_reference_passes_under_any_global_seed(seed):
    """Does the reference pass whatever the global random state is?"""
    torch.manual_seed(seed)
    np.random.seed(seed)
    TabularDataset = _load(REFERENCE)
    data.check_dataset(TabularDataset)
    data.check_loader_batches(TabularDataset)
