"""Do the hidden checks of exercise 04 accept correct datasets and explain each wrong one?"""

import json

import numpy as np
import pytest
import torch
from check_helpers import encoded, observed
from check_helpers import fails_with as _fails_with
from mutant_bank.bank_04_data import CORRECT_CELLS, MISTAKES
from mutant_bank.grading import reference_answers
from torch.utils.data import Dataset

from grader.checks import data
from grader.observation import as_json, decode

REFERENCE = reference_answers("04_data")["tabular_dataset"]


def _load(source):
    """The TabularDataset class a notebook cell defines (with the notebook's globals)."""
    rng = np.random.default_rng(0)
    namespace = {"np": np, "torch": torch, "Dataset": Dataset,
                 "X_train": rng.normal(size=(426, 30)), "y_train": rng.integers(0, 2, 426)}
    exec(source, namespace)
    return namespace["TabularDataset"]


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


# observer and judge ------------------------------------------------------------------------------

CHECKS = [data.check_dataset, data.check_loader_batches]


def _observe(check, source=REFERENCE):
    """What the observer records for a cell's TabularDataset, after the JSON round trip of grading."""
    return observed(check, _load(source))


def _rejects(check, obs, *fragments):
    _fails_with(check.judge, obs, *fragments)


@pytest.mark.parametrize("name", ["reference", *sorted(MISTAKES)])
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_observations_are_strict_json(check, name):
    """Does the observation of every right and wrong TabularDataset survive strict JSON unchanged?"""
    obs = check.observe(_load(REFERENCE if name == "reference" else MISTAKES[name][0]))
    assert json.loads(as_json(obs)) == json.loads(json.dumps(obs)), f"{check.__name__}: observation changed in JSON"


def test_not_a_dataset_is_observed_without_calling_it():
    """Is an object that is no Dataset (and has no __getitem__) recorded as such, not crashed on?"""
    class NotADataset:
        def __init__(self, X, y):
            pass

    for check in CHECKS:
        _fails_with(check, NotADataset, "is not a torch Dataset", "object")


def test_forged_item_values_are_rejected():
    """Are items with the right shapes and dtypes but another row's values rejected with the off-by-one hint?"""
    obs = _observe(data.check_dataset)
    items = obs["cases"][0]["items"]
    items[0]["value"] = items[1]["value"]  # dataset[0] claims row 1
    _rejects(data.check_dataset, obs, "dataset[0]", "wrong features", "returned row 1 for index 0")


def test_forged_target_is_rejected():
    """Is a flipped label rejected, though everything else about the item is right?"""
    obs = _observe(data.check_dataset)
    features, target = decode(obs["float32"]["items"][0]["value"])
    obs["float32"]["items"][0]["value"] = encoded((features, 1 - target))
    _rejects(data.check_dataset, obs, "dataset[0]", "float32 X", "wrong target")


def test_forged_length_is_rejected():
    """Is a length that is not the number of rows rejected?"""
    obs = _observe(data.check_dataset)
    obs["cases"][1]["len"] = {"value": 5}
    _rejects(data.check_dataset, obs, "len() of TabularDataset(X, y) for X of shape (4, 30)", "is wrong")


def test_forged_batches_are_rejected():
    """Are batches of the right shapes that repeat a row, or pair rows with other labels, rejected?"""
    obs = _observe(data.check_loader_batches)
    batches = decode(obs["cases"][0]["batches"]["value"])
    batches[0][0][1] = batches[0][0][0]
    obs["cases"][0]["batches"]["value"] = encoded(batches)
    _rejects(data.check_loader_batches, obs, "did not give every row exactly once")
    obs = _observe(data.check_loader_batches)
    batches = decode(obs["cases"][1]["batches"]["value"])
    batches[0][1] = 1 - batches[0][1]
    obs["cases"][1]["batches"]["value"] = encoded(batches)
    _rejects(data.check_loader_batches, obs, "paired rows with the wrong labels")


def test_forged_non_tensor_batches_are_rejected():
    """Is a batch of objects that only describe tensors rejected as not tensors?"""
    obs = _observe(data.check_loader_batches)
    batches = obs["cases"][0]["batches"]["value"]["__list__"]
    batches[0]["__list__"][0] = {"__object__": {"type": "fake.Tensor", "repr": "tensor([...])"}}
    _rejects(data.check_loader_batches, obs, "not tensors", "Tensor")
