"""Observers for exercise 03 (nn.Module): what the student's MLP is made of and what it computes, and which
loss (and targets for it) the student chooses for a task."""

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from grader.observation import CALL, ENCODED, RAISED, ListOf, OneOf, call_with, capture, encode, observes

DEFAULT = (10, (32, 64), 1)
# (in_features, hidden, out_features) that check_mlp_parameters builds, and the seeded ones the forward checks run.
# The seeds are chosen so that every output unit's logits on the 64-row batch are 20-80 % negative: a ReLU or a
# sigmoid after the output layer then changes them (tests/test_checks_nn_module.py keeps this true).
PARAMETER_CASES = [DEFAULT, (3, (5, 7), 2), (6, (4, 9), 1)]
FORWARD_CASES = [(*DEFAULT, 5), (4, (16, 8), 3, 1)]
SIZES_CASES = [(3, (8,), 2, 10), (5, (16, 16, 16), 1, 17), (2, (4, 6, 5, 3), 4, 14), (7, (12, 12), 1, 13)]
BATCH_SIZES = (1, 7, 64)
GRADIENT_BATCH = 32


def attempt(function: Callable, *args: Any, **kwargs: Any) -> tuple[Any, dict]:
    """Call the student's `function`: (result, record), the record as `observation.capture` makes it."""
    try:
        result = function(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as error:  # noqa: BLE001 -- any error in student code is recorded, not crashed on
        return None, {"raised": [type(error).__name__, str(error)[:500]]}
    return result, {"value": encode(result)}


_MODULE = {"name": str, "type": str, "linear": False}
_LINEAR = {"name": str, "type": str, "linear": True, "weight": OneOf(int, None), "bias": OneOf(int, None)}
# What `describe` records.
DESCRIBED = OneOf({"module": False, "type": str},
                  {"module": True, "type": str, "modules": [OneOf(_MODULE, _LINEAR)], "parameters": [(str, ENCODED)]})


def describe(model: Any) -> dict:
    """The module tree (named_modules, in order), its parameters (named_parameters, values encoded) and
    which registered parameters each nn.Linear holds (indices into `parameters`)."""
    if not isinstance(model, nn.Module):
        return {"module": False, "type": type(model).__qualname__}
    named = list(model.named_parameters())
    index = {id(p): i for i, (_, p) in enumerate(named)}
    modules = []
    for name, module in model.named_modules():
        entry = {"name": name, "type": f"{type(module).__module__}.{type(module).__qualname__}",
                 "linear": isinstance(module, nn.Linear)}
        if entry["linear"]:
            entry["weight"] = index.get(id(module.weight))
            entry["bias"] = None if module.bias is None else index.get(id(module.bias))
        modules.append(entry)
    return {"module": True, "type": type(model).__qualname__, "modules": modules,
            "parameters": [[name, encode(p)] for name, p in named]}


def linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def fill_values(shapes: list[tuple[int, int]], seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Known, well-scaled (weight, bias) values for nn.Linear layers of these weight shapes, in this order."""
    generator = torch.Generator().manual_seed(seed)
    values = []
    for n_out, n_in in shapes:
        weight = torch.randn(n_out, n_in, generator=generator) * (2.0 / n_in) ** 0.5
        values.append((weight, 0.1 * torch.randn(n_out, generator=generator)))
    return values


def fill(model: nn.Module, seed: int) -> None:
    """Give the model's nn.Linear layers (registration order) the values of `fill_values`."""
    layers = linears(model)
    with torch.no_grad():
        for layer, (weight, bias) in zip(layers, fill_values([tuple(m.weight.shape) for m in layers], seed)):
            layer.weight.copy_(weight)
            if layer.bias is not None and layer.bias.shape == bias.shape:
                layer.bias.copy_(bias)


def input_batches(in_features: int, seed: int) -> list[torch.Tensor]:
    """The X batches a forward case runs, BATCH_SIZES then the batch the gradients come from."""
    generator = torch.Generator().manual_seed(1000 + seed)
    return [torch.randn(n, in_features, generator=generator) for n in (*BATCH_SIZES, GRADIENT_BATCH)]


def build(MLP, *sizes) -> tuple[Any, dict]:
    """MLP(in_features=..., hidden=..., out_features=...), or MLP() when no sizes are given:
    (model, {}) or (None, {"raised": [type, message]})."""
    names = ("in_features", "hidden", "out_features")
    model, record = attempt(MLP, **dict(zip(names, sizes, strict=False)))
    return (None, record) if "raised" in record else (model, {})


_FORWARD_CALLS = ListOf(call_with(input_after=ENCODED), at_least=1, at_most=len(BATCH_SIZES) + 1)
# What `mlp_case` records: it stops after a call that raised, and differentiates only an output that requires grad.
MLP_CASE = OneOf(RAISED, {"built": DESCRIBED}, {"built": DESCRIBED, "calls": _FORWARD_CALLS},
                 {"built": DESCRIBED, "calls": _FORWARD_CALLS, "backward": CALL, "grads": [ENCODED]})


def mlp_case(MLP, in_features, hidden, out_features, seed) -> dict:
    """One seeded case: the structure with filled parameters, each batch's output and the input after the
    call, then (on the last batch) backward() of mean(output ** 2) and every parameter's gradient."""
    model, record = build(MLP, in_features, hidden, out_features)
    if model is None:
        return record
    if not isinstance(model, nn.Module):
        return {"built": describe(model)}
    fill(model, seed)
    record["built"] = describe(model)
    parameters = [p for _, p in model.named_parameters()]
    for p in parameters:
        p.grad = None
    calls = []
    for X in input_batches(in_features, seed):
        out, call = attempt(model, X)
        call["input_after"] = encode(X)
        calls.append(call)
        if "raised" in call:
            break
    record["calls"] = calls
    if "raised" not in calls[-1] and isinstance(out, torch.Tensor) and out.requires_grad:
        _, record["backward"] = attempt(lambda: out.pow(2).mean().backward())
        record["grads"] = [None if p.grad is None else encode(p.grad) for p in parameters]
    return record


@observes({"cases": ListOf(OneOf(RAISED, {"built": DESCRIBED}), length=len(PARAMETER_CASES)),
           "default": OneOf(RAISED, {"built": DESCRIBED})})
def observe_mlp_parameters(MLP, **kwargs) -> dict:
    cases = []
    for sizes in [*PARAMETER_CASES, ()]:  # () is MLP() with its default sizes
        model, record = build(MLP, *sizes)
        cases.append(record if model is None else {"built": describe(model)})
    return {"cases": cases[:-1], "default": cases[-1]}


@observes({"cases": ListOf(MLP_CASE, length=len(FORWARD_CASES))})
def observe_mlp_forward(MLP, **kwargs) -> dict:
    return {"cases": [mlp_case(MLP, *case) for case in FORWARD_CASES]}


@observes({"cases": ListOf(MLP_CASE, length=len(SIZES_CASES))})
def observe_mlp_sizes(MLP, **kwargs) -> dict:
    return {"cases": [mlp_case(MLP, *case) for case in SIZES_CASES]}


# count_parameters --------------------------------------------------------------------------------

# The models count_parameters is tried on, by the name a message gives them (count_cases builds them).
COUNT_CASES = ("nn.Linear(3, 2)", "nn.Linear(6, 4, bias=False)",
               "a Sequential with BatchNorm1d (buffers are not parameters)", "a Sequential whose first layer is frozen",
               "a Sequential that reuses one layer twice")


def count_cases() -> list[tuple[str, nn.Module]]:
    """(name, model) for COUNT_CASES (seeded: the same models in every process)."""
    torch.manual_seed(0)
    frozen = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    frozen[0].requires_grad_(False)
    shared = nn.Linear(5, 5)
    models = [nn.Linear(3, 2), nn.Linear(6, 4, bias=False),
              nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 1)), frozen,
              nn.Sequential(shared, nn.ReLU(), shared)]
    return list(zip(COUNT_CASES, models, strict=True))


@observes({"cases": ListOf(call_with(requires_grad_after=[bool]), length=len(COUNT_CASES))})
def observe_count_parameters(count_parameters, **kwargs) -> dict:
    """Each case's result and which parameters require grad after the call."""
    cases = []
    for _, model in count_cases():
        _, record = attempt(count_parameters, model)
        record["requires_grad_after"] = [p.requires_grad for p in model.parameters()]
        cases.append(record)
    return {"cases": cases}


# make_criterion and prepare_targets --------------------------------------------------------------

TASKS = ("binary", "multiclass", "regression")
UNKNOWN_TASKS = ("multi-class", "classification", "")


def criterion_inputs(task: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(model output, target) that a criterion for `task` is applied to: 5 rows, fixed seed."""
    generator = torch.Generator().manual_seed(len(task))
    if task == "binary":
        return torch.randn(5, 1, generator=generator) * 2, torch.tensor([[1.0], [0.0], [0.0], [1.0], [1.0]])
    if task == "multiclass":
        return torch.randn(5, 4, generator=generator) * 2, torch.tensor([3, 0, 1, 1, 2])
    return torch.randn(5, 1, generator=generator) * 2, torch.randn(5, 1, generator=generator)


@observes({"cases": ListOf(OneOf(RAISED, {"type": str, "loss": CALL}), length=len(TASKS)),
           "unknown": ListOf(CALL, length=len(UNKNOWN_TASKS))})
def observe_make_criterion(make_criterion, **kwargs) -> dict:
    """For each task: the class of what came back and its loss on criterion_inputs; for each unknown task:
    what it returned or raised."""
    cases = []
    for task in TASKS:
        criterion, record = attempt(make_criterion, task)
        if "value" in record:
            record = {"type": f"{type(criterion).__module__}.{type(criterion).__qualname__}",
                      "loss": capture(criterion, *criterion_inputs(task))}
        cases.append(record)
    return {"cases": cases, "unknown": [attempt(make_criterion, task)[1] for task in UNKNOWN_TASKS]}


def target_cases() -> list[tuple[str, Any, str]]:
    """(task, y, description) for every prepare_targets call, in order; the judge rebuilds the same list."""
    return [
        ("binary", torch.tensor([0, 1, 1, 0, 1]), "binary labels as an int64 tensor"),
        ("binary", np.array([1, 0, 0, 1, 1, 0], dtype=np.int32), "binary labels as a NumPy int32 array"),
        ("binary", np.array([0.0, 1.0, 1.0]), "binary labels as a NumPy float64 array"),
        ("multiclass", torch.tensor([2, 0, 1, 3, 1]), "class labels as an int64 tensor"),
        ("multiclass", np.array([0, 2, 1, 2], dtype=np.int32), "class labels as a NumPy int32 array"),
        ("multiclass", torch.tensor([1.0, 0.0, 2.0]), "class labels as a float32 tensor"),
        ("regression", np.array([1.5, -0.25, 3.75, 2.1]), "values as a NumPy float64 array"),
        ("regression", torch.tensor([0.5, 2.0, -1.0], dtype=torch.float64), "values as a float64 tensor"),
        ("regression", torch.tensor([3, 1, 4]), "whole-number values as an int64 tensor"),
        ("ranking", torch.tensor([0, 1]), "an unknown task"),
    ]


def _copy(y):
    return y.clone() if isinstance(y, torch.Tensor) else y.copy()


@observes({"cases": ListOf(call_with(input_after=ENCODED), length=len(target_cases()))})
def observe_prepare_targets(prepare_targets, **kwargs) -> dict:
    """Each case's result, and its input afterwards (it must not be changed in place)."""
    cases = []
    for task, y, _ in target_cases():
        y = _copy(y)
        record = capture(prepare_targets, y, task)
        record["input_after"] = encode(y)
        cases.append(record)
    return {"cases": cases}
