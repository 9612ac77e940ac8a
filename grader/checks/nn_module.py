"""Hidden checks for exercise 03 (nn.Module): the MLP's architecture, checked by behaviour, and the loss
and targets chosen for a task.

Each check is an observer (grader.observers.nn_module, in the student's kernel) and a judge (here, in
the trusted process). The judge rebuilds the inputs, rebuilds an MLP of its own from the parameters
the observer recorded and recomputes the logits and gradients, so a model only passes by computing them.
"""

import numpy as np
import torch
from torch import nn

from grader.checks.report import expect, fail, judged, returned, type_name
from grader.observation import decode
from grader.observers.nn_module import (
    FORWARD_CASES,
    PARAMETER_CASES,
    SIZES_CASES,
    TASKS,
    UNKNOWN_TASKS,
    count_cases,
    criterion_inputs,
    fill_values,
    input_batches,
    observe_count_parameters,
    observe_make_criterion,
    observe_mlp_forward,
    observe_mlp_parameters,
    observe_mlp_sizes,
    observe_prepare_targets,
    target_cases,
)

LECTURE = "lecture 03"
CLOSE = {"rtol": 1e-4, "atol": 1e-5}
# Gradients sum over a batch: allow for another summation order (the judge may run more threads).
GRAD_CLOSE = {"rtol": 1e-3, "atol": 1e-5}


def _label(in_features, hidden, out_features) -> str:
    return f"MLP(in_features={in_features}, hidden={hidden}, out_features={out_features})"


def _built(record: dict, in_features, hidden, out_features) -> tuple[dict, str]:
    """The observer's description of the constructed model, once it is known to be an nn.Module."""
    label = _label(in_features, hidden, out_features)
    if "raised" in record:
        kind, text = record["raised"]
        hint = None
        if "__init__() call" in text:
            hint = f"call super().__init__() first in __init__ ({LECTURE}, 'Your own model: subclassing nn.Module')."
        elif kind == "IndexError" or len(hidden) != 2:
            hint = (
                f"hidden={hidden} has {len(hidden)} hidden layer(s): loop over hidden instead of assuming "
                "exactly two (nn.ModuleList or nn.Sequential)."
            )
        fail(f"Calling {label} raised {kind}: {text}", hint=hint)
    built = record["built"]
    expect(
        built["module"] is True,
        f"{label} should be an nn.Module.",
        "an nn.Module",
        built["type"],
        f"subclass nn.Module and call super().__init__() first ({LECTURE}, 'Your own model: subclassing nn.Module').",
    )
    return built, label


def _registered_linears(built: dict, label: str) -> list[dict]:
    """The nn.Linear entries of the module tree in registration order, each with its weight tensor."""
    parameters = [decode(tensor) for _, tensor in built["parameters"]]
    layers = []
    for entry in (m for m in built["modules"] if m["linear"]):
        expect(entry["weight"] is not None, f"{label}: the weight of nn.Linear {entry['name']!r} is not registered.",
               hint="create layers with nn.Linear(n_in, n_out) and do not replace their weight.")
        layers.append({**entry, "weight_value": parameters[entry["weight"]],
                       "bias_value": None if entry["bias"] is None else parameters[entry["bias"]]})
    return layers


def _linears(built: dict, label: str, in_features, hidden, out_features) -> list[dict]:
    """The model's registered nn.Linear layers in forward order, checked against the contract's sizes."""
    sizes = [in_features, *hidden, out_features]
    expected = [(sizes[i + 1], sizes[i]) for i in range(len(sizes) - 1)]
    names = [name for name, _ in built["parameters"]]
    params = [decode(tensor) for _, tensor in built["parameters"]]
    expect(
        len(params) > 0,
        f"{label} has no registered parameters (model.parameters() is empty).",
        f"{2 * len(expected)} parameter tensors",
        "0",
        "layers kept in a plain Python list are invisible to nn.Module: use nn.ModuleList or "
        f"nn.Sequential ({LECTURE}, 'Pitfall: layers in a plain Python list').",
    )
    linears = _registered_linears(built, label)
    found = [tuple(m["weight_value"].shape) for m in linears]
    hint = (
        "build one nn.Linear per step of [in_features, *hidden, out_features]; do not hard-code "
        f"the sizes, and loop over hidden so that any number of hidden layers works ({LECTURE}, "
        "'Your own model: subclassing nn.Module')."
    )
    expect(
        len(linears) == len(expected),
        f"{label} has the wrong number of registered nn.Linear layers.",
        f"{len(expected)} layers with weight shapes {expected}",
        f"{len(linears)} layers with weight shapes {found}",
        hint,
    )
    if found != expected and sorted(found) == sorted(expected):
        # registered in another order (e.g. the output layer first): put them in forward order by shape
        remaining = list(linears)
        linears = []
        for shape in expected:
            layer = next(m for m in remaining if tuple(m["weight_value"].shape) == shape)
            remaining.remove(layer)
            linears.append(layer)
        found = [tuple(m["weight_value"].shape) for m in linears]
    expect(
        found == expected,
        f"{label} has nn.Linear layers of the wrong sizes (weight shapes are (out, in), in forward order).",
        expected,
        found,
        hint,
    )
    missing = [i for i, m in enumerate(linears) if m["bias"] is None]
    expect(
        not missing,
        f"{label}: nn.Linear layer(s) {missing} have no bias.",
        "every nn.Linear with a bias",
        "bias=None",
        f"keep the default bias=True ({LECTURE}, 'nn.Linear: an affine map').",
    )
    own = {i for m in linears for i in (m["weight"], m["bias"])}
    extra = [tuple(p.shape) for i, p in enumerate(params) if i not in own]
    expect(
        not extra and len(params) == 2 * len(expected),
        f"{label} registers parameters that belong to no nn.Linear layer (or registers one twice).",
        f"{2 * len(expected)} tensors: a weight and a bias per layer",
        f"{len(params)} tensors, extra shapes {extra}",
        "the MLP holds nn.Linear layers and nothing else with parameters.",
    )
    dtypes = sorted({str(p.dtype) for p in params})
    expect(
        dtypes == ["torch.float32"],
        f"{label} has parameters of the wrong dtype.",
        "torch.float32",
        ", ".join(dtypes),
        "keep nn.Linear's default float32: no .double() and no dtype=torch.float64.",
    )
    frozen = [name for name, p in zip(names, params, strict=True) if not p.observed["requires_grad"]]
    expect(not frozen, f"{label} has parameters that do not require grad: {frozen}.", hint="leave them trainable.")
    return linears


def _expect_filled(built: dict, label: str, seed: int) -> None:
    """The recorded parameters are the values the observer was to give the layers (rebuilt here)."""
    registered = _registered_linears(built, label)
    values = fill_values([tuple(m["weight_value"].shape) for m in registered], seed)
    for layer, (weight, bias) in zip(registered, values, strict=True):
        expect(
            layer["bias_value"].shape == bias.shape
            and torch.allclose(layer["weight_value"], weight, rtol=1e-6, atol=1e-7)
            and torch.allclose(layer["bias_value"], bias, rtol=1e-6, atol=1e-7),
            f"{label} does not hold the weights the check gave its nn.Linear layers.",
            hint="leave the layers' parameters alone outside training: do not replace or modify them in forward.",
        )


def _reference(linears: list[dict]) -> nn.Sequential:
    """An MLP of the judge's own: Linear, ReLU, ..., Linear, holding the recorded parameters."""
    modules = []
    for layer in linears:
        n_out, n_in = layer["weight_value"].shape
        linear = nn.Linear(n_in, n_out)
        with torch.no_grad():
            linear.weight.copy_(layer["weight_value"])
            linear.bias.copy_(layer["bias_value"])
        modules += [linear, nn.ReLU()]
    return nn.Sequential(*modules[:-1])


def _no_activation(reference: nn.Sequential, X):
    h = X
    for module in reference:
        if isinstance(module, nn.Linear):
            h = module(h)
    return h


def _expect_logits(got, expected, reference, X, what) -> None:
    if torch.allclose(got, expected, **CLOSE):
        return
    hint = (
        "apply the nn.Linear layers in order with a ReLU after every hidden layer and nothing after "
        f"the last ({LECTURE}, 'Non-linearity: nn.ReLU')."
    )
    if torch.allclose(got, torch.sigmoid(expected), **CLOSE):
        hint = (
            "you applied a sigmoid after the output layer: return raw logits; the loss "
            f"(BCEWithLogitsLoss) applies the sigmoid itself ({LECTURE}, 'BCEWithLogitsLoss vs BCELoss')."
        )
    elif torch.allclose(got, torch.relu(expected), **CLOSE) or ((expected < 0).sum() >= 3 and not (got < 0).any()):
        hint = (
            "your outputs are never negative: there is a ReLU after the output layer. Logits can be any "
            f"real number; return the last layer's output with no activation ({LECTURE}, "
            "'Your own model: subclassing nn.Module')."
        )
    elif torch.allclose(got, _no_activation(reference, X), **CLOSE):
        hint = (
            "the output is an affine function of X: there is no activation between the layers. Put a ReLU "
            f"after every hidden layer ({LECTURE}, 'Non-linearity: nn.ReLU')."
        )
    fail(f"{what} computed the wrong logits.", expected[0].tolist(), got[0].tolist(), hint)


def _judge_case(record: dict, in_features, hidden, out_features, seed) -> None:
    """One seeded forward case: structure, logits on each batch, then gradients of mean(logits ** 2)."""
    built, label = _built(record, in_features, hidden, out_features)
    linears = _linears(built, label, in_features, hidden, out_features)
    _expect_filled(built, label, seed)
    reference = _reference(linears)
    batches = input_batches(in_features, seed)
    for k, X in enumerate(batches):
        n = len(X)
        what = f"{label} called on X of shape {(n, in_features)}"
        call = record["calls"][k]
        out = returned(call, what)
        expect(isinstance(out, torch.Tensor), f"{what} should return a tensor.", "torch.Tensor", type_name(out))
        expect(torch.equal(decode(call["input_after"]), X), f"{what} changed its input X.",
               hint="compute new tensors, not in place.")
        expect(
            tuple(out.shape) == (n, out_features),
            f"{what} returned the wrong shape.",
            (n, out_features),
            tuple(out.shape),
            "return the last layer's output as it is, shape (N, out_features): no squeeze, no flatten.",
        )
        expect(
            out.dtype == torch.float32,
            f"{what} returned the wrong dtype.",
            torch.float32,
            out.dtype,
            "keep everything float32 (nn.Linear's default): no .double() and no dtype=torch.float64.",
        )
        with torch.no_grad():
            _expect_logits(out, reference(X), reference, X, what)
    expect(
        out.observed["requires_grad"] and "grads" in record,
        f"the output of {label} does not require grad, so no parameter can learn.",
        hint="do not use torch.no_grad(), .detach() or .item() inside forward.",
    )
    if "raised" in record["backward"]:
        kind, text = record["backward"]["raised"]
        fail(f"backward() through {label} raised {kind}: {text}",
             hint="build the output from the layers' parameters with ordinary tensor operations.")
    names = [name for name, _ in built["parameters"]]
    grads = record["grads"]
    dead = [name for name, grad in zip(names, grads, strict=True) if grad is None]
    expect(
        not dead,
        f"after backward() through {label}, these parameters got no gradient: {dead}.",
        hint="every registered layer must be used in forward.",
    )
    reference(batches[-1]).pow(2).mean().backward()
    for layer, own in zip(linears, (m for m in reference if isinstance(m, nn.Linear)), strict=True):
        for index, mine in ((layer["weight"], own.weight.grad), (layer["bias"], own.bias.grad)):
            expect(
                torch.allclose(decode(grads[index]), mine, **GRAD_CLOSE),
                f"after backward() through {label}, the gradient of {names[index]} is wrong.",
                hint="let autograd follow forward: no .detach(), .data or hand-written backward inside forward.",
            )


def judge_mlp_parameters(obs: dict, **kwargs) -> None:
    """MLP registers one biased nn.Linear per layer, sized from its arguments."""
    for record, (in_features, hidden, out_features) in zip(obs["cases"], PARAMETER_CASES, strict=True):
        built, label = _built(record, in_features, hidden, out_features)
        linears = _linears(built, label, in_features, hidden, out_features)
        sizes = [in_features, *hidden, out_features]
        total = sum((sizes[i] + 1) * sizes[i + 1] for i in range(len(sizes) - 1))
        found = sum(m["weight_value"].numel() + m["bias_value"].numel() for m in linears)
        expect(found == total, f"{label} has the wrong number of parameters.", total, found)
    default = obs["default"]
    if "raised" in default:
        returned(default, "MLP()")
    built = default["built"]
    shapes = (sorted(tuple(m["weight_value"].shape) for m in _registered_linears(built, "MLP()"))
              if built["module"] is True else None)
    expect(
        shapes == sorted([(32, 10), (64, 32), (1, 64)]),
        "MLP() without arguments should use the defaults in_features=10, hidden=(32, 64), out_features=1.",
        hint="keep the signature __init__(self, in_features=10, hidden=(32, 64), out_features=1).",
    )


def judge_mlp_forward(obs: dict, **kwargs) -> None:
    """MLP.forward returns float32 (N, out_features) logits: Linear, ReLU, ..., Linear."""
    for record, case in zip(obs["cases"], FORWARD_CASES, strict=True):
        _judge_case(record, *case)


def judge_mlp_sizes(obs: dict, **kwargs) -> None:
    """MLP works for any number of hidden layers and any sizes."""
    for record, case in zip(obs["cases"], SIZES_CASES, strict=True):
        _judge_case(record, *case)


check_mlp_parameters = judged(observe_mlp_parameters, judge_mlp_parameters)
check_mlp_forward = judged(observe_mlp_forward, judge_mlp_forward)
check_mlp_sizes = judged(observe_mlp_sizes, judge_mlp_sizes)


# count_parameters --------------------------------------------------------------------------------

def judge_count_parameters(obs: dict, **kwargs) -> None:
    """count_parameters(model): the number of trainable scalars, as a Python int."""
    with torch.random.fork_rng(devices=[]):
        cases = count_cases()
    for (name, model), record in zip(cases, obs["cases"], strict=True):
        what = f"count_parameters({name})"
        result = returned(record, what)
        expect(
            isinstance(result, int) and not isinstance(result, bool),
            f"{what} should return a Python int.",
            "int",
            type_name(result),
            "add up p.numel() (an int) for each parameter; call .item() if you summed tensors.",
        )
        expect(
            record["requires_grad_after"] == [p.requires_grad for p in model.parameters()],
            f"{what} changed which parameters require grad.",
            hint="only read the model.",
        )
        expected = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if result == expected:
            continue
        hint = f"sum p.numel() over model.parameters() that require grad ({LECTURE}, 'The module registry')."
        if result == len([p for p in model.parameters() if p.requires_grad]) or result == len(list(model.parameters())):
            hint = "you counted parameter tensors; count the numbers inside them with p.numel()."
        elif result == sum(p.numel() for p in model.parameters()):
            hint = "frozen parameters (requires_grad=False) are not trainable: leave them out."
        elif result == sum(t.numel() for t in model.state_dict().values()):
            hint = "state_dict() also holds buffers (BatchNorm's running statistics); count model.parameters()."
        fail(f"{what} returned the wrong count.", expected, result, hint)


check_count_parameters = judged(observe_count_parameters, judge_count_parameters)


# make_criterion and prepare_targets --------------------------------------------------------------

_LOSS_SECTION = f"({LECTURE}, 'Choosing the loss (the criterion)')"
EXPECTED_LOSS = {"binary": nn.BCEWithLogitsLoss, "multiclass": nn.CrossEntropyLoss, "regression": nn.MSELoss}
# The loss a student picked instead, for a task: why it is the wrong one.
_WRONG_LOSS = {
    ("binary", "BCELoss"): "BCELoss expects probabilities, but the model returns raw logits: BCEWithLogitsLoss "
    "applies the sigmoid itself, in a numerically stable way",
    ("binary", "CrossEntropyLoss"): "one logit per row is a binary problem: CrossEntropyLoss needs one logit per "
    "class; use BCEWithLogitsLoss",
    ("multiclass", "NLLLoss"): "NLLLoss expects log-probabilities (after log_softmax); the model returns raw logits, "
    "which CrossEntropyLoss takes directly",
    ("multiclass", "BCEWithLogitsLoss"): "BCEWithLogitsLoss is for one yes/no logit per row; several classes with "
    "one label each need CrossEntropyLoss",
    ("regression", "L1Loss"): "the contract asks for the mean squared error, nn.MSELoss",
    ("regression", "HuberLoss"): "the contract asks for the mean squared error, nn.MSELoss",
    ("regression", "SmoothL1Loss"): "the contract asks for the mean squared error, nn.MSELoss",
}


def _valid_tasks_hint() -> str:
    return ("end with raise ValueError(f\"unknown task {task!r}: expected 'binary', 'multiclass' or "
            "'regression'\")")


def _expect_value_error(record: dict, what: str) -> None:
    """`record` (an observation.capture) raised ValueError whose message names the three valid tasks."""
    if "raised" not in record:
        fail(f"{what} returned {returned(record, what)!r} instead of raising ValueError.", "ValueError",
             "no exception", _valid_tasks_hint())
    kind, text = record["raised"]
    expect(kind == "ValueError", f"{what} raised {kind} instead of ValueError.", "ValueError", f"{kind}: {text}",
           f"check the task yourself and raise the error the contract names: {_valid_tasks_hint()}.")
    missing = [task for task in TASKS if task not in text]
    expect(not missing, f"{what} raised ValueError, but its message does not name every valid task.",
           f"a message naming {', '.join(TASKS)}", text, f"add {missing} to the message: {_valid_tasks_hint()}.")


def judge_make_criterion(obs: dict, **kwargs) -> None:
    """make_criterion(task): BCEWithLogitsLoss, CrossEntropyLoss or MSELoss with their defaults; ValueError else."""
    for record, task in zip(obs["cases"], TASKS, strict=True):
        what = f"make_criterion({task!r})"
        wanted = EXPECTED_LOSS[task]
        if "type" not in record:
            returned(record, what)  # it raised: say so
        found = str(record["type"])
        name = found.rsplit(".", 1)[-1]
        expect(found == f"{wanted.__module__}.{wanted.__qualname__}", f"{what} returned the wrong loss.",
               f"nn.{wanted.__name__}()", name,
               f"{_WRONG_LOSS.get((task, name), f'a {task} task takes nn.{wanted.__name__}')} {_LOSS_SECTION}.")
        output, target = criterion_inputs(task)
        loss = returned(record["loss"], f"the loss {what} returned, called on a batch")
        expected = wanted()(output, target)
        ok = isinstance(loss, torch.Tensor) and loss.shape == expected.shape and torch.allclose(
            loss.float(), expected, rtol=1e-5, atol=1e-6)
        if not ok:
            summed = wanted(reduction="sum")(output, target)
            hint = ("you set reduction='sum'; keep the default reduction='mean'"
                    if isinstance(loss, torch.Tensor) and loss.shape == summed.shape
                    and torch.allclose(loss.float(), summed, rtol=1e-5) else
                    "return the loss with its default settings: no weight, pos_weight or reduction arguments")
            fail(f"{what} returned an nn.{name} that computes another loss on a batch.", expected.item(),
                 loss.tolist() if isinstance(loss, torch.Tensor) else type_name(loss), hint)
    for record, task in zip(obs["unknown"], UNKNOWN_TASKS, strict=True):
        _expect_value_error(record, f"make_criterion({task!r})")


check_make_criterion = judged(observe_make_criterion, judge_make_criterion)


def expected_targets(y, task: str) -> torch.Tensor:
    """What prepare_targets(y, task) must return for a valid task."""
    y = torch.as_tensor(y)
    return y.long() if task == "multiclass" else y.float().reshape(-1, 1)


_TARGET_HINTS = {
    "binary": "BCEWithLogitsLoss compares each logit with a float32 target of the same shape (N, 1): "
              "torch.as_tensor(y).float().reshape(-1, 1)",
    "multiclass": "CrossEntropyLoss wants one class index per row, int64 of shape (N,): torch.as_tensor(y).long()",
    "regression": "MSELoss wants float32 values shaped like the model's output (N, 1): "
                  "torch.as_tensor(y).float().reshape(-1, 1). With (N,) against (N, 1) it broadcasts to (N, N) and "
                  "silently computes the wrong loss",
}


def judge_prepare_targets(obs: dict, **kwargs) -> None:
    """prepare_targets(y, task): float32 (N, 1), int64 (N,), float32 (N, 1); ValueError for an unknown task."""
    for record, (task, y, description) in zip(obs["cases"], target_cases(), strict=True):
        what = f"prepare_targets(y, {task!r}) for {description}"
        if task not in TASKS:
            _expect_value_error(record, what)
            continue
        result = returned(record, what)
        after = decode(record["input_after"])
        expect(type(after) is type(y) and np.array_equal(np.asarray(after), np.asarray(y)),
               f"{what} changed y in place.", hint="build a new tensor; do not modify the input.")
        hint = f"{_TARGET_HINTS[task]} {_LOSS_SECTION}."
        expect(isinstance(result, torch.Tensor), f"{what} should return a torch.Tensor.", "torch.Tensor",
               type_name(result), "convert NumPy arrays and tensors alike with torch.as_tensor(y).")
        expected = expected_targets(y, task)
        expect(result.dtype == expected.dtype, f"{what} returned the wrong dtype.", expected.dtype, result.dtype, hint)
        expect(tuple(result.shape) == tuple(expected.shape), f"{what} returned the wrong shape.",
               tuple(expected.shape), tuple(result.shape), hint)
        expect(torch.equal(result, expected), f"{what} changed the values.", expected.flatten().tolist(),
               result.flatten().tolist(), "keep each label or value as it is: change only its dtype and shape.")


check_prepare_targets = judged(observe_prepare_targets, judge_prepare_targets)
