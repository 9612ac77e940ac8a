"""Does every observation have a declared shape that the trusted process reads before any judge, so that a
malformed one (a kernel can publish any JSON) fails with the place it went wrong, and a correct one passes?"""

import importlib
import inspect
import json
import pkgutil

import numpy as np
import pytest
import test_checks_autograd
import test_checks_capstone
import test_checks_data
import test_checks_digits
import test_checks_inference
import test_checks_nn_module
import test_checks_tensors
import test_checks_training
import torch
from check_helpers import encoded, fails_with, observed

import grader.checks
import grader.observers
from grader import observation
from grader.observation import (
    CALL,
    ENCODED,
    DictOf,
    ListOf,
    MalformedObservation,
    OneOf,
    OrMissing,
    call_with,
    read,
)

# The vocabulary ------------------------------------------------------------------------------------

SHAPE = {
    "name": str, "count": int, "seconds": float, "flag": bool, "none": None, "device": "cpu", "cuda": True,
    "calls": ListOf(CALL, length=2), "log": [OneOf({"event": "step"}, {"event": "loss", "value": ENCODED})],
    "pair": (str, int), "params": DictOf(ENCODED), "maybe": OrMissing(int),
    "some": ListOf(int, at_least=1, at_most=3), "checked": call_with(unchanged=bool),
}


def _good() -> dict:
    return {"name": "x", "count": 3, "seconds": 2, "flag": False, "none": None, "device": "cpu", "cuda": True,
            "calls": [observation.capture(lambda: torch.ones(2, 3)), observation.capture(lambda: 1 / 0)],
            "log": [{"event": "step"}, {"event": "loss", "value": encoded(float("nan"))}],
            "pair": ["a", 1], "params": {"weight": encoded(np.arange(3)), "bias": None}, "some": [1, 2],
            "checked": {**observation.capture(lambda: (1, [2.5], {"k": np.float32(1)})), "unchanged": True}}


def test_read_accepts_every_kind_of_shape():
    """Is a well-formed observation of every shape kind returned as it is, an optional field present or not?"""
    data = observed_json(_good())
    assert read(SHAPE, data) is data
    assert read(SHAPE, {**data, "maybe": 4}) is not None


def test_read_accepts_everything_encode_writes():
    """Is every value `encode` describes (tensors of any dtype, arrays, NumPy scalars, non-finite floats, nested
    containers, an object it does not trust) an encoded value?"""
    values = [torch.zeros(0, 4), torch.tensor(3, dtype=torch.bfloat16), torch.tensor([1 + 2j]), torch.tensor([True]),
              np.array([[1, 2]], dtype=np.int32), np.float64(float("inf")), np.bool_(True), float("-inf"),
              {"a": [(1, None)]}, np.array([object()]), object(), "text", 7, None]
    for value in values:
        read(ENCODED, encoded(value))


def observed_json(data):
    """`data` as the trusted process receives it."""
    return json.loads(observation.as_json(data))


def _malformed(change) -> dict:
    data = observed_json(_good())
    change(data)
    return data


@pytest.mark.parametrize("change, where", [
    (lambda d: d.pop("name"), "name is missing"),
    (lambda d: d.update(extra=1), "extra is not a field"),
    (lambda d: d.update(count="3"), "count should be an integer, not a string"),
    (lambda d: d.update(count=True), "count should be an integer, not a boolean"),
    (lambda d: d.update(seconds=None), "seconds should be a number"),
    (lambda d: d.update(flag=0), "flag should be a boolean"),
    (lambda d: d.update(none=0), "none should be null"),
    (lambda d: d.update(device="cuda"), 'device should be "cpu"'),
    (lambda d: d.update(cuda=False), "cuda should be true"),
    (lambda d: d["calls"].pop(), "calls should hold 2 items, not 1"),
    (lambda d: d["calls"].append(d["calls"][0]), "calls should hold 2 items, not 3"),
    (lambda d: d.update(calls={}), "calls should be a list"),
    (lambda d: d["calls"][1].update(raised=["ZeroDivisionError"]), "calls[1].raised should hold 2 items"),
    (lambda d: d["calls"][0].update(raised=["a", "b"]), "calls[0].raised is not a field"),
    (lambda d: d["calls"][0]["value"]["__tensor__"].pop("shape"), "calls[0].value.__tensor__.shape is missing"),
    (lambda d: d["calls"][0]["value"]["__tensor__"].update(shape=[3, 3]),
     "calls[0].value.__tensor__.data holds 24 bytes, not the 9 elements"),
    (lambda d: d["calls"][0]["value"]["__tensor__"].update(shape=[-2, -3]), "__tensor__.shape has a negative size"),
    (lambda d: d["calls"][0]["value"]["__tensor__"].update(array_dtype="O"), "is not a numeric dtype"),
    (lambda d: d["calls"][0]["value"]["__tensor__"].update(array_dtype="nonsense"), "names no dtype"),
    (lambda d: d["calls"][0]["value"]["__tensor__"].update(data="***"), "__tensor__.data is not base64"),
    (lambda d: d["calls"][0].update(value={"__pickle__": "x"}), "unknown encoding '__pickle__'"),
    (lambda d: d["calls"][0].update(value={"rows": 1}), "calls[0].value"),
    (lambda d: d["log"].append({"event": "forward"}), "log[2].event"),
    (lambda d: d["log"][1].pop("value"), "log[1].value is missing"),
    (lambda d: d.update(pair=["a"]), "pair should hold 2 items, not 1"),
    (lambda d: d["params"].update(bias=[1]), "params.bias should be an encoded value"),
    (lambda d: d.update(maybe=1.5), "maybe should be an integer"),
    (lambda d: d.update(some=[]), "some should hold 1 to 3 items, not 0"),
    (lambda d: d["checked"].pop("unchanged"), "checked.unchanged is missing"),
    (lambda d: d["checked"]["value"]["__tuple__"][1]["__list__"].append({"__float__": "many"}),
     "checked.value.__tuple__[1].__list__[1].__float__ is not a number"),
])
def test_read_names_where_an_observation_is_malformed(change, where):
    """Does each malformation (missing, unknown or mistyped field, short or long list, an encoded tensor whose bytes
    do not match its shape, a tag `encode` never writes) raise MalformedObservation naming its place?"""
    with pytest.raises(MalformedObservation) as problem:
        read(SHAPE, _malformed(change))
    assert where in str(problem.value), str(problem.value)


def test_a_malformed_observation_fails_its_check_with_the_place_named():
    """Does a judge behind `report.judged` never see a malformed observation: the check fails, naming itself and
    the place, before the judge runs?"""
    data = observed(test_checks_tensors.tensors.check_make_grid, test_checks_tensors.RIGHT["make_grid"])
    data["calls"][2] = {"value": 1, "raised": ["E", "m"]}
    fails_with(test_checks_tensors.tensors.check_make_grid.judge, data, "check_make_grid could not read",
               "calls[2].raised is not a field", "earns no points")


# Every check's observation of a correct answer ---------------------------------------------------------

def _checks() -> dict[str, object]:
    found = {}
    for info in pkgutil.iter_modules(grader.checks.__path__):
        module = importlib.import_module(f"grader.checks.{info.name}")
        found.update({f"{info.name}.{name}": check for name, check in vars(module).items()
                      if name.startswith("check_") and check.__module__ == module.__name__})
    return found


def _training_loops():
    train, evaluate = test_checks_training._reference_functions()
    return train, evaluate


REFERENCES = {  # each check: the arguments its observer gets from the correct answers the unit tests use
    **{f"tensors.check_{name}": lambda name=name: (test_checks_tensors.RIGHT[name],)
       for name in test_checks_tensors.RIGHT},
    **{f"autograd.check_{name}": lambda name=name: (test_checks_autograd.RIGHT[name],)
       for name in test_checks_autograd.RIGHT},
    "nn_module.check_mlp_parameters": lambda: (test_checks_nn_module.SequentialMLP,),
    "nn_module.check_mlp_forward": lambda: (test_checks_nn_module.SequentialMLP,),
    "nn_module.check_mlp_sizes": lambda: (test_checks_nn_module.SequentialMLP,),
    "nn_module.check_count_parameters": lambda: (test_checks_nn_module._correct_count,),
    **{f"nn_module.check_{name}": lambda name=name: (
        test_checks_nn_module._answer(test_checks_nn_module._REFERENCE[name], name),)
       for name in ("make_criterion", "prepare_targets")},
    **{f"data.check_{name}": lambda: (test_checks_data._load(test_checks_data.REFERENCE),)
       for name in ("dataset", "loader_batches")},
    "training.check_train_one_epoch": lambda: _training_loops()[:1],
    "training.check_evaluate": lambda: _training_loops()[1:],
    "training.check_fit": _training_loops,
    "training.check_fixed_fit": lambda: (
        test_checks_training._loop(test_checks_training.REFERENCE_FIXED_FIT, "fixed_fit"),),
    "training.check_fit_with_early_stopping": lambda: (
        test_checks_training._loop(test_checks_training.REFERENCE_STOPPING, "fit_with_early_stopping"),),
    "inference.check_predict_labels": lambda: (test_checks_inference.reference,),
    "inference.check_predict_mode": lambda: (test_checks_inference.reference,),
    "inference.check_precision_recall": lambda: (test_checks_inference.pr_reference,),
    "inference.check_choose_threshold": lambda: (
        test_checks_inference._threshold(test_checks_inference.THRESHOLD_RIGHT[0][1]),),
    **{f"digits.{check.__name__}": lambda args=args: args for check, args in test_checks_digits.CHECKS.values()},
    "digits.check_train_digits": lambda: (test_checks_digits.train_digits,),
    **{f"capstone.{check.__name__}": lambda args=args: args for check, args in test_checks_capstone.CHECKS.values()},
    **{f"capstone.{check.__name__}": lambda args=args: args for check, args in test_checks_capstone.PART_F.values()},
}


def test_every_check_is_read_against_a_declared_shape_here():
    """Does every hidden check have a declared shape, and a correct answer in this file to read it on?"""
    checks = _checks()
    assert sorted(REFERENCES) == sorted(checks), "checks without a correct answer here, or answers without a check"
    assert all(check.observe.shape is not None for check in checks.values())


def test_every_observer_declares_its_shape():
    """Does every observer a grading kernel exposes (`observe_*`) declare the shape of what it returns?"""
    for info in pkgutil.iter_modules(grader.observers.__path__):
        module = importlib.import_module(f"grader.observers.{info.name}")
        for name, observe in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("observe_"):
                assert hasattr(observe, "shape"), f"grader/observers/{info.name}.py: {name} declares no shape"


@pytest.mark.parametrize("key", sorted(REFERENCES))
def test_a_correct_answers_observation_has_its_declared_shape(key):
    """Does the real observation of a correct answer pass its check's declared shape, after the JSON round trip?"""
    check = _checks()[key]
    read(check.observe.shape, observed(check, *REFERENCES[key]()))
