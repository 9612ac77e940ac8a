"""Hidden checks for exercise 08 (capstone): a breast-cancer classifier scored on rows it never saw.

The notebook's locked setup cell splits `load_breast_cancer()` exactly as `splits()` does: 20% of
the rows (stratified, RESERVED_SEED) are reserved for grading and never used in the notebook; the
rest is split again into the training and validation parts the student works with.

Each check is judged here, in the trusted process, from what grader.observers.capstone recorded in
the kernel. The judge rebuilds the grader's models and rows from the same seeds and recomputes every
expected value. For the reserved rows it never takes the kernel's word for predictions: it rebuilds
the trained network from the recorded steps of its forward pass (standard layers with their recorded
parameters, buffers and settings, and activation functions, applied one after the other: see
`REBUILDS`), standardises the reserved rows with the recorded mean and std, scores that network
itself, and fails a model whose recorded steps do not explain the logits it reported. Which rows the
model was trained on is decided here too, from the rows the kernel saw go through the model in
training mode.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from grader.checks import inference
from grader.checks.report import expect, fail, judged, returned, type_name
from grader.checks.training import _stops_after, stopping_mistake
from grader.observation import decode
from grader.observers import capstone as observers
from grader.observers.capstone import (
    N_FEATURES,
    RESERVED_FRACTION,
    RESERVED_SEED,
    VAL_FRACTION,
    VAL_SEED,
    observe_building_blocks,
    observe_checkpoint,
    observe_early_stopping,
    observe_predict_raw,
    observe_reserved_accuracy,
    observe_train_capstone,
    observe_validation_threshold,
    splits,
)

__all__ = ["N_FEATURES", "RESERVED_FRACTION", "RESERVED_SEED", "VAL_FRACTION", "VAL_SEED", "splits",
           "check_building_blocks", "check_train_capstone", "check_predict_raw", "check_checkpoint",
           "check_reserved_accuracy", "check_early_stopping", "check_validation_threshold"]

TRAINING_BUDGET_S = 30
MLP_HINT = ("build the model as a chain of layers the grader can rebuild, applied one after the other: nn.Linear, "
            "nn.BatchNorm1d, nn.LayerNorm, nn.Dropout and the usual activations (nn.ReLU, nn.GELU, nn.Tanh, ... or "
            "their torch.nn.functional forms), ending in a raw logit (Part E of the notebook lists them).")


def _head(value, n: int = 3):
    return value[:n].flatten().tolist() if isinstance(value, torch.Tensor) else type_name(value)


# Rebuilding a trained model from the recorded steps of its forward pass ------------------------------
# Each step is {"kind": the torch.nn class (or the layer an activation function stands for), "parameters",
# "buffers", "config"}; the judge applies them in order, in evaluation mode and in float64.


class _Unreadable(ValueError):
    """A recorded step the judge cannot use (a tampered or unusual record)."""


def _setting(step: dict, name: str, default, kind=float):
    value = step["config"].get(name, default)
    if kind is float and type(value) in (int, float) and math.isfinite(value):
        return float(value)
    if kind is int and type(value) is int:
        return value
    if kind is bool and type(value) is bool:
        return value
    if kind is str and isinstance(value, str):
        return value
    if kind is tuple and isinstance(value, list) and value and all(type(v) is int and v > 0 for v in value):
        return tuple(value)
    raise _Unreadable(f"the setting {name}={value!r}")


def _tensors(step: dict, group: str, names: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
    """The step's recorded tensors of `names` (float64), None for the ones it does not have."""
    recorded = step[group]
    found = {}
    for name in names:
        value = decode(recorded[name]) if name in recorded else None
        if value is not None and not (isinstance(value, torch.Tensor) and value.is_floating_point()):
            raise _Unreadable(f"the {name} tensor")
        if value is None and name in required:
            raise _Unreadable(f"no {name} tensor")
        found[name] = None if value is None else value.double()
    return found


def _linear(h, step):
    t = _tensors(step, "parameters", ("weight", "bias"), required=("weight",))
    return F.linear(h, t["weight"], t["bias"])


def _batch_norm(h, step):
    t = _tensors(step, "parameters", ("weight", "bias"))
    stats = _tensors(step, "buffers", ("running_mean", "running_var"))
    tracked = _setting(step, "track_running_stats", True, bool) and stats["running_mean"] is not None
    # In evaluation mode a batch norm with running statistics uses them; without, it uses the batch's own.
    return F.batch_norm(h, stats["running_mean"], stats["running_var"], t["weight"], t["bias"],
                        training=not tracked, eps=_setting(step, "eps", 1e-5))


def _layer_norm(h, step):
    t = _tensors(step, "parameters", ("weight", "bias"))
    return F.layer_norm(h, _setting(step, "normalized_shape", None, tuple), t["weight"], t["bias"],
                        _setting(step, "eps", 1e-5))


def _rms_norm(h, step):
    eps = step["config"].get("eps")
    return F.rms_norm(h, _setting(step, "normalized_shape", None, tuple),
                      _tensors(step, "parameters", ("weight",))["weight"],
                      None if eps is None else _setting(step, "eps", None))


def _dropout(h, step):
    if step.get("functional") and step["config"].get("training", True) and step["config"].get("p", 0.5):
        raise _Unreadable("F.dropout(x, p) called with training=True: it drops values even in evaluation mode")
    return h


def _identity(h, step):
    return h


def _activation(function):
    return lambda h, step: function(h)


REBUILDS = {
    "Linear": _linear,
    "BatchNorm1d": _batch_norm,
    "LayerNorm": _layer_norm,
    "Identity": _identity,
    "Flatten": lambda h, step: torch.flatten(h, _setting(step, "start_dim", 1, int),
                                             _setting(step, "end_dim", -1, int)),
    # In evaluation mode every dropout layer passes its input through unchanged.
    "Dropout": _dropout,
    "AlphaDropout": _dropout,
    "FeatureAlphaDropout": _dropout,
    "ReLU": _activation(F.relu),
    "LeakyReLU": lambda h, step: F.leaky_relu(h, _setting(step, "negative_slope", 0.01)),
    "PReLU": lambda h, step: F.prelu(h, _tensors(step, "parameters", ("weight",), required=("weight",))["weight"]),
    "ReLU6": _activation(F.relu6),
    "ELU": lambda h, step: F.elu(h, _setting(step, "alpha", 1.0)),
    "CELU": lambda h, step: F.celu(h, _setting(step, "alpha", 1.0)),
    "SELU": _activation(F.selu),
    "GELU": lambda h, step: F.gelu(h, approximate=_setting(step, "approximate", "none", str)),
    "SiLU": _activation(F.silu),
    "Mish": _activation(F.mish),
    "Softplus": lambda h, step: F.softplus(h, _setting(step, "beta", 1.0), _setting(step, "threshold", 20.0)),
    "Tanh": _activation(torch.tanh),
    "Sigmoid": _activation(torch.sigmoid),
    "Hardtanh": lambda h, step: F.hardtanh(h, _setting(step, "min_val", -1.0), _setting(step, "max_val", 1.0)),
    "Hardswish": _activation(F.hardswish),
    "Hardsigmoid": _activation(F.hardsigmoid),
    "Softsign": _activation(F.softsign),
    "Tanhshrink": _activation(F.tanhshrink),
}
if hasattr(F, "rms_norm"):  # torch 2.4 and later
    REBUILDS["RMSNorm"] = _rms_norm


def expect_rebuildable(steps: list[dict], rebuilds: dict, who: str, scored: str, hint: str) -> None:
    """Every recorded step is of a kind `rebuilds` can rebuild (`scored`: what the rebuilt network is scored on)."""
    unknown = sorted({step["type"] for step in steps if step["kind"] not in rebuilds})
    expect(not unknown, f"the model {who} returns has layers {scored} cannot score.",
           f"layers the grader can rebuild: {', '.join(sorted(rebuilds))}", unknown, hint)


def replay(steps: list[dict], X: torch.Tensor, rebuilds: dict, who: str, hint: str) -> torch.Tensor:
    """The rebuilt model's output on X: every recorded step applied in order, in float64; a step that cannot be
    applied fails the check."""
    h = X.double()
    try:
        for step in steps:
            h = rebuilds[step["kind"]](h, step)
    except _Unreadable as problem:
        fail(f"the grader could not rebuild the model {who} returns: {problem}.", hint=hint)
    except (RuntimeError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        fail(f"the grader could not rebuild the model {who} returns from its layers applied one after the "
             f"other ({type(error).__name__}: {str(error)[:120]}).", hint=hint)
    return h


def sequence(observed: dict) -> str:
    """The recorded steps of the forward pass, by kind, for a message."""
    names = [step["kind"] or step["type"] for step in observed["layers"]]
    return " -> ".join(map(str, names[:12])) + (" -> ..." if len(names) > 12 else "")


def expect_explained(observed: dict, reported, logits: torch.Tensor, who: str, scored: str, hint: str,
                     tolerance: float = 1e-4, shown=None) -> None:
    """The logits the kernel reported are those of the network rebuilt from its recorded steps (`logits`): a model
    whose steps do not explain its own logits does something the rebuilt network does not, so it is not scored.
    `shown(tensor)` is how a message shows logits."""
    shown = shown or _head
    explained = (isinstance(reported, torch.Tensor) and reported.shape == logits.shape
                 and torch.allclose(reported.double(), logits, rtol=tolerance, atol=tolerance, equal_nan=True))
    others = observed["other_operations"]
    if others:
        hint = (f"its forward pass also does {', '.join(map(str, others[:6]))} outside any layer, which the grader "
                f"cannot rebuild; {hint}")
    expect(explained, f"the model {who} returns does not compute its logits from its layers applied one after the "
           f"other ({sequence(observed)}), so {scored} cannot score it.", shown(logits), shown(reported), hint)


def _forward(linears: list[tuple[torch.Tensor, torch.Tensor | None]], X: torch.Tensor) -> torch.Tensor:
    """Linear -> ReLU -> ... -> Linear with the given (weight, bias) pairs, in float64."""
    h = X.double()
    for i, (weight, bias) in enumerate(linears):
        h = F.linear(h, weight.double(), None if bias is None else bias.double())
        if i < len(linears) - 1:
            h = torch.relu(h)
    return h


def _linear_pair(weight, bias) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """(weight, bias) if they are the tensors of an nn.Linear, else None."""
    if not (isinstance(weight, torch.Tensor) and weight.dim() == 2 and weight.is_floating_point()):
        return None
    if bias is not None and not (isinstance(bias, torch.Tensor) and tuple(bias.shape) == (weight.shape[0],)):
        return None
    return weight, bias


# Part A: the building blocks ---------------------------------------------------------------------

def _judge_mlp(cases: list[dict]) -> None:
    for ((args, width), case) in zip(observers.MLP_CASES, cases, strict=True):
        sizes = observers.mlp_widths(args)
        what = f"MLP{args if len(args) != 1 else f'({args[0]})'}"
        returned(case["made"], what)
        expect(case["module"], f"{what} should be an nn.Module.", "nn.Module", case["type"],
               "subclass nn.Module and call super().__init__() first (lecture 03).")
        linears = [_linear_pair(decode(m["weight"]), decode(m["bias"])) for m in case["linears"]]
        found = [linears[0][0].shape[1]] + [w.shape[0] for w, _ in linears] if None not in linears and linears else []
        expect(
            tuple(found) == sizes,
            f"{what} has the wrong nn.Linear layers (in_features, then each layer's out_features).",
            sizes,
            tuple(found),
            "build one nn.Linear per step from in_features through hidden to out_features, registered as "
            "submodules (nn.Sequential or nn.ModuleList, not a plain Python list: "
            "lecture 03, '5. Pitfall: layers in a plain Python list').",
        )
        logits = returned(case["logits"], f"{what}(X) for X of shape (16, {sizes[0]})")
        expect(isinstance(logits, torch.Tensor) and tuple(logits.shape) == (16, sizes[-1]),
               f"{what}(X) has the wrong output shape.", (16, sizes[-1]),
               tuple(getattr(logits, "shape", ())), "return the last layer's output as it is.")
        expected = _forward(linears, observers.mlp_input(width))
        expect(
            torch.allclose(logits.double(), expected, atol=1e-5),
            f"{what}(X) does not compute Linear -> ReLU -> ... -> Linear.",
            expected[:2].flatten().tolist(),
            logits[:2].flatten().tolist(),
            "put a ReLU after every hidden layer and nothing after the last one: the model returns raw logits.",
        )


def _judge_dataset(observed: dict) -> None:
    X, y = observers.dataset_input()
    what = "TabularDataset(X, y) for 7 rows and 3 features"
    returned(observed["made"], what)
    n = returned(observed["len"], f"len({what})")
    expect(n == 7, f"len({what}) is wrong.", 7, n, "__len__ returns the number of rows, len(X), not the feature count.")
    item = returned(observed["item"], f"{what}[5]")
    expect(isinstance(item, tuple) and len(item) == 2, f"{what}[5] should be a (features, target) tuple.",
           "a tuple of 2 tensors", repr(item)[:80])
    features, target = item
    for name, value, shape, expected in [("features", features, (3,), X[5]), ("target", target, (1,), [y[5]])]:
        expect(isinstance(value, torch.Tensor) and value.dtype == torch.float32,
               f"the {name} of {what}[5] should be a float32 tensor.", "float32 tensor",
               getattr(value, "dtype", type_name(value)), "convert with torch.tensor(..., dtype=torch.float32).")
        expect(tuple(value.shape) == shape, f"the {name} of {what}[5] have the wrong shape.", shape,
               tuple(value.shape), "the target is a (1,) tensor, like the model's (1,) logit per row.")
        expect(np.allclose(value.numpy(), np.asarray(expected, dtype=np.float32)),
               f"the {name} of {what}[5] hold the wrong values.", list(np.asarray(expected)), value.tolist())


def _judge_epoch(observed: dict) -> None:
    reference, loader = observers.epoch_case()
    criterion = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.5)
    losses, sizes = [], []
    reference.train()
    for X_batch, y_batch in loader:
        optimizer.zero_grad()
        loss = criterion(reference(X_batch), y_batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        sizes.append(len(X_batch))
    what = "train_one_epoch(model, loader, criterion, optimizer) on 10 rows in batches of 4"
    result = returned(observed["result"], what)
    expect(isinstance(result, float), f"{what} should return a Python float.", "float", type_name(result),
           "return the mean of the per-batch loss.item() values.")
    expect(observed["training"] is True, f"{what} left the model in evaluation mode: it never called model.train().",
           hint="call model.train() at the start of the epoch (lecture 05).")
    found = [decode(p) for p in observed["parameters"]]
    expected = [p.detach().double() for p in reference.parameters()]
    same = len(found) == len(expected) and all(
        isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a.double(), b, atol=1e-5)
        for a, b in zip(found, expected))
    expect(same, f"{what} updated the parameters differently from one zero_grad/forward/backward/step per batch.",
           hint="for every batch: optimizer.zero_grad(), loss = criterion(model(X), y), loss.backward(), "
           "optimizer.step() (lecture 05).")
    # Exercise 05's convention: the mean of the batch losses; the mean per sample is accepted too.
    plain = sum(losses) / len(losses)
    per_sample = sum(loss * n for loss, n in zip(losses, sizes, strict=True)) / sum(sizes)
    expect(any(math.isclose(result, value, rel_tol=1e-4) for value in (plain, per_sample)),
           f"{what} returned the wrong loss.", f"{plain} (or the mean per sample, {per_sample})", result,
           "return the mean over all batches of loss.item(), not the last batch's loss.")


def judge_building_blocks(observed: dict, **kwargs) -> None:
    """The re-implemented MLP, TabularDataset, train_one_epoch and predict keep their contracts."""
    _judge_mlp(observed["mlp"])
    _judge_dataset(observed["dataset"])
    _judge_epoch(observed["epoch"])
    inference.judge_predict_labels(observed["labels"])
    inference.judge_predict_mode(observed["mode"])


check_building_blocks = judged(observe_building_blocks, judge_building_blocks)


# Parts B and E: the training run -----------------------------------------------------------------

def _unpack(observed: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and std train_capstone returned (float64), once its result has the right form."""
    result = returned(observed["result"], "train_capstone(X_train, y_train)")
    expect(isinstance(result, tuple) and len(result) == 3, "train_capstone should return (model, mean, std).",
           "a tuple of 3", repr(result)[:80])
    model, mean, std = result
    expect(observed.get("module") is True, "the model train_capstone returns should be an nn.Module.", "nn.Module",
           type_name(model))
    _expect_statistics(mean, std, "train_capstone")
    return mean.to(torch.float64), std.to(torch.float64)


def _expect_statistics(mean, std, who: str) -> None:
    """`who` returned a mean and a std with one value per feature column."""
    for name, value in (("mean", mean), ("std", std)):
        expect(isinstance(value, torch.Tensor) and tuple(value.shape) == (N_FEATURES,),
               f"the {name} {who} returns should be a tensor of shape ({N_FEATURES},).",
               f"tensor of shape ({N_FEATURES},)",
               tuple(value.shape) if isinstance(value, torch.Tensor) else type_name(value),
               "return one value per feature column, as a float32 tensor.")


def _matches(values: torch.Tensor, X: np.ndarray, ddofs=(1, 0), stat="mean") -> bool:
    X = torch.tensor(X, dtype=torch.float64)
    candidates = [X.mean(0)] if stat == "mean" else [X.std(0, correction=d) for d in ddofs]
    return any(torch.allclose(values, c, rtol=1e-4, atol=1e-6) for c in candidates)


def _statistics_problem(mean, std) -> str | None:
    """None if mean and std are the training part's; else a message naming where they came from."""
    parts = splits()
    if _matches(mean, parts["X_train"]) and _matches(std, parts["X_train"], stat="std"):
        return None
    for name, X in (("all 569 rows of the data set, reserved rows included", parts["X_all"]),
                    ("the training and validation parts together", parts["X_dev"]),
                    ("the validation part", parts["X_val"])):
        if _matches(mean, X) or _matches(std, X, stat="std"):
            return f"the mean and std were computed on {name}, not on X_train alone"
    if torch.allclose(mean, torch.zeros_like(mean)) and torch.allclose(std, torch.ones_like(std)):
        return "the mean is all 0 and the std all 1: the features were not standardised"
    return "the mean and std are not X_train's column means and standard deviations"


def _seen(observed: dict, kind: str = "seen") -> tuple[torch.Tensor, int]:
    """The distinct rows the model was trained on (`seen`: run with gradients) or evaluated on (`looked`), as
    float64, and how many there were in all."""
    seen, total = decode(observed[kind]), observed[f"{kind}_total"]
    # More rows than the observer ever sends would only make this process compute large distance matrices.
    expect(isinstance(seen, torch.Tensor) and seen.dim() == 2 and seen.shape[1] == N_FEATURES
           and seen.shape[0] <= observers.MAX_SEEN_ROWS,
           "The hidden check could not read the rows train_capstone trained on.",
           hint="run the notebook top to bottom in a fresh kernel and do not change the grader's modules.")
    return seen.to(torch.float64), max(total, seen.shape[0])


def _rows_problem(seen: torch.Tensor, total: int, mean, std) -> str | None:
    """None if every row the model trained on is a standardised training row; else what else it saw."""
    parts = splits()
    if total == 0:
        return "the model never ran with gradients on rows of 30 features: it was not trained"

    def near(X: np.ndarray) -> torch.Tensor:
        standardised = (torch.tensor(X, dtype=torch.float64) - mean) / std
        distance = torch.cdist(seen, standardised, p=float("inf"))
        return (distance.min(dim=1).values < 1e-3)

    foreign = ~near(parts["X_train"]) if seen.shape[0] else torch.zeros(0, dtype=torch.bool)
    reserved = near(parts["X_reserved"])[foreign].sum().item() if foreign.any() else 0
    if reserved:
        return (f"the model was trained on {reserved} rows of the reserved part, which no one may train on "
                "(did you reload the data set inside train_capstone?)")
    val = near(parts["X_val"])[foreign].sum().item() if foreign.any() else 0
    if val:
        return f"the model was trained on {val} rows of the validation part: train only on the rows you are given"
    if foreign.any():
        return (f"the model was trained on {int(foreign.sum())} rows that are not rows of X_train standardised with "
                "the mean and std you return (did you forget to standardise, or standardise differently?)")
    if total > seen.shape[0]:
        return (f"the model was trained on {total} different rows, far more than the {len(parts['X_train'])} rows "
                "of X_train (did you add noise to the rows?)")
    return None


def judge_train_capstone(observed: dict, **kwargs) -> None:
    """train_capstone trains on the standardised training rows only, with X_train's mean and std."""
    mean, std = _unpack(observed)
    stats = _statistics_problem(mean, std)
    expect(stats is None, f"train_capstone(X_train, y_train): {stats}.",
           "X_train.mean(axis=0) and X_train.std(axis=0)", f"mean[:3] = {mean[:3].tolist()}",
           "fit the standardisation on the training part only, then apply that same mean and std to every "
           "other part (lecture 04, '5. Train, validation and test splits, and scaling without leakage').")
    rows = _rows_problem(*_seen(observed), mean, std) or _peeked(observed, mean, std)
    expect(rows is None, f"train_capstone(X_train, y_train): {rows}.",
           hint="standardise X_train with its own mean and std, wrap it in your TabularDataset and DataLoader, "
           "and train with train_one_epoch.")
    seconds = observed["seconds"]
    expect(seconds < TRAINING_BUDGET_S, f"train_capstone(X_train, y_train) took {seconds:.1f} s.",
           f"under {TRAINING_BUDGET_S} s", f"{seconds:.1f} s", "train for fewer epochs or with larger batches.")


check_train_capstone = judged(observe_train_capstone, judge_train_capstone)


def _peeked(observed: dict, mean, std) -> str | None:
    """A message if train_capstone evaluated its model on reserved rows (to choose an epoch, say)."""
    looked, _ = _seen(observed, "looked")
    if not looked.shape[0]:
        return None
    standardised = (torch.tensor(splits()["X_reserved"], dtype=torch.float64) - mean) / std
    peeked = (torch.cdist(looked, standardised, p=float("inf")).min(dim=1).values < 1e-3).sum().item()
    return (f"train_capstone ran the model on {peeked} rows of the reserved part, which no one may look at while "
            "training (did you reload the data set to choose an epoch or a threshold?)") if peeked else None


def _leak(observed: dict, mean, std) -> str | None:
    """A message if the model saw reserved rows or its statistics came from them."""
    rows = _rows_problem(*_seen(observed), mean, std) or _peeked(observed, mean, std)
    if rows and "reserved" in rows:
        return rows
    stats = _statistics_problem(mean, std)
    if stats and "reserved" in stats:
        return stats
    return None


def _read_steps(observed: dict, who: str = "train_capstone") -> list[dict]:
    steps = observed.get("layers")  # none: the returned statistics could not standardise the rows
    expect(steps is not None and len(steps) <= observers.MAX_STEPS,
           f"The hidden check could not read the layers of the model {who} returns.",
           hint="run the notebook top to bottom in a fresh kernel and do not change the grader's modules; a model "
           f"of more than {observers.MAX_STEPS} steps is too large for this exercise.")
    return steps


def _rebuilt_logits(observed: dict, X: torch.Tensor, who: str = "train_capstone") -> torch.Tensor:
    """The logits of the network the recorded steps describe, computed here: the kernel's are not trusted."""
    steps = _read_steps(observed, who)
    expect_rebuildable(steps, REBUILDS, who, "the reserved rows", MLP_HINT)
    linears = [_linear_pair(decode(step["parameters"].get("weight")), decode(step["parameters"].get("bias")))
               for step in steps if step["kind"] == "Linear"]
    shapes = [tuple(pair[0].shape) if pair else None for pair in linears]
    chained = bool(linears) and None not in linears and shapes[0][1] == N_FEATURES and shapes[-1][0] == 1 and all(
        a[0] == b[1] for a, b in zip(shapes, shapes[1:]))
    expect(chained, f"the model {who} returns is not a chain of nn.Linear layers from {N_FEATURES} "
           "features to 1 logit.", f"weights of shape (h1, {N_FEATURES}), (h2, h1), ..., (1, hk)", shapes, MLP_HINT)
    return replay(steps, X, REBUILDS, who, MLP_HINT)


def judge_reserved_accuracy(observed: dict, minimum: float, **kwargs) -> None:
    """The model train_capstone builds scores at least `minimum` accuracy on the reserved rows."""
    mean, std = _unpack(observed)
    leak = _leak(observed, mean, std)
    expect(leak is None, f"the reserved rows cannot score this model: {leak}.",
           hint="train and standardise on X_train only; the reserved rows measure a model that never saw them.")
    reported = returned(observed["logits"], "the model train_capstone returns, on the standardised reserved rows,")
    X = observers.reserved_inputs(mean, std)
    logits = _rebuilt_logits(observed, X)
    expect_explained(observed, reported, logits, "train_capstone", "the reserved rows", MLP_HINT)
    expect(logits.dim() == 2 and logits.shape[1] == 1,
           "the model train_capstone returns should give one logit per row.", (len(X), 1), tuple(logits.shape),
           MLP_HINT)
    y_hat = (torch.sigmoid(logits.float()).squeeze(1) >= 0.5).long().numpy()
    accuracy = float((y_hat == splits()["y_reserved"]).mean())
    hint = ("check your validation accuracy first; standardise with the training mean and std, train for more epochs "
            "or with a larger learning rate (Adam with lr=1e-2 for 20 epochs is plenty), and keep the output a raw "
            "logit trained with BCEWithLogitsLoss.")
    if observed["layers"] and observed["layers"][-1]["kind"] == "Sigmoid":
        hint = ("the model ends with a sigmoid, so it outputs probabilities, and predict applies a second sigmoid: "
                "every probability becomes >= 0.5. Remove the final sigmoid, keep the raw logit and train it with "
                "BCEWithLogitsLoss.")
    expect(accuracy >= minimum,
           f"the model train_capstone(X_train, y_train) builds scores {accuracy:.3f} accuracy on the "
           f"{len(y_hat)} reserved rows.", f">= {minimum:.2f}", f"{accuracy:.3f}", hint)


check_reserved_accuracy = judged(observe_reserved_accuracy, judge_reserved_accuracy)


# Part C: predictions from raw features ----------------------------------------------------------

def judge_predict_raw(observed: dict, **kwargs) -> None:
    """predict_raw(model, mean, std, X_raw) standardises with the given mean and std, then predicts."""
    model, mean, std, rows = observers.predict_raw_case()
    for X_raw, entry in zip(rows, observed["calls"], strict=True):
        n = len(X_raw)
        what = f"predict_raw(model, mean, std, X_raw) for {n} raw row{'s' if n > 1 else ''}"
        y_hat = returned(entry, what)
        expect(isinstance(y_hat, torch.Tensor) and y_hat.dtype == torch.int64 and tuple(y_hat.shape) == (n,),
               f"{what} should return int64 labels of shape ({n},).", f"int64 tensor of shape ({n},)",
               f"{getattr(y_hat, 'dtype', type_name(y_hat))} {tuple(getattr(y_hat, 'shape', ()))}",
               "return what your predict returns.")
        X_std = (torch.tensor(X_raw, dtype=torch.float32) - mean) / std
        expected = inference.reference_labels(model, X_std, 0.5)
        if torch.equal(y_hat, expected):
            continue
        hint = ("standardise with the mean and std you are given, (X_raw - mean) / std, then call predict "
                "(lecture 06, '7. Predicting on new raw data: the same fitted scaler').")
        raw = inference.reference_labels(model, torch.tensor(X_raw, dtype=torch.float32), 0.5)
        own = torch.tensor(X_raw, dtype=torch.float32)
        if n > 1:
            own = inference.reference_labels(model, (own - own.mean(0)) / own.std(0), 0.5)
        if torch.equal(y_hat, raw):
            hint = "you did not standardise X_raw: the model was trained on standardised features."
        elif n > 1 and torch.equal(y_hat, own):
            hint = ("you standardised X_raw with its own mean and std; use the training part's mean and std you "
                    "are given, so one row is scaled the same way alone or in a batch.")
        fail(f"{what} gave the wrong labels.", expected.tolist()[:10], y_hat.tolist()[:10], hint)


check_predict_raw = judged(observe_predict_raw, judge_predict_raw)


# Part D: save and load --------------------------------------------------------------------------

def _same_state(saved, loaded) -> bool:
    """Whether two recorded state_dicts hold the same tensors, in the same order."""
    if not (isinstance(saved, list) and isinstance(loaded, list) and len(saved) == len(loaded) and saved):
        return False
    for (_, a), (_, b) in zip(saved, loaded):
        a, b = decode(a), decode(b)
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                and torch.allclose(a.double(), b.double(), atol=1e-6)):
            return False
    return True


def judge_checkpoint(observed: dict, **kwargs) -> None:
    """save_checkpoint writes a state_dict-based file; load_checkpoint restores model, mean and std."""
    mean, std, _ = observers.checkpoint_inputs()
    what = f"MLP({N_FEATURES}, (12, 6))"
    returned(observed["made"], what)
    saved = returned(observed["saved_logits"], f"model(X) for the {what} to save")
    returned(observed["save"], "save_checkpoint(model, mean, std, path)")
    expect(observed["file"] is True, "save_checkpoint(model, mean, std, path) wrote no file at path.",
           hint="torch.save(..., path)")
    if observed["weights_only"] is not None:
        fail("the file save_checkpoint wrote cannot be loaded with torch.load(path, weights_only=True).",
             "a dict of tensors (model.state_dict(), mean, std)", f"{observed['weights_only']}",
             "save model.state_dict(), not the model object itself "
             "(lecture 06, '8. Saving and loading a `state_dict` for inference').")
    returned(observed["fresh"], what)
    result = returned(observed["load"], f"load_checkpoint(path, {what})")
    expect(isinstance(result, tuple) and len(result) == 3, "load_checkpoint should return (model, mean, std).",
           "a tuple of 3", repr(result)[:80])
    loaded, loaded_mean, loaded_std = result
    expect(observed.get("loaded_module") is True, "the model load_checkpoint returns should be an nn.Module.",
           "nn.Module", type_name(loaded))
    found = returned(observed["loaded_logits"], "the model load_checkpoint returns, on the saved model's rows,")
    same = (isinstance(saved, torch.Tensor) and isinstance(found, torch.Tensor) and saved.shape == found.shape
            and torch.allclose(found.double(), saved.double(), atol=1e-6)
            and _same_state(observed["saved_state"], observed["loaded_state"]))
    expect(same, "the loaded model gives different logits from the saved one.", _head(saved), _head(found),
           "load the saved weights into the fresh model with model.load_state_dict(...) and return it.")
    for name, value, expected in (("mean", loaded_mean, mean), ("std", loaded_std, std)):
        expect(isinstance(value, torch.Tensor) and value.shape == expected.shape
               and torch.allclose(value.float(), expected),
               f"load_checkpoint returned a different {name} from the one saved.", expected[:3].tolist(),
               value[:3].tolist() if isinstance(value, torch.Tensor) else type_name(value),
               "save the mean and std in the same file as the weights, and return them from load_checkpoint.")


check_checkpoint = judged(observe_checkpoint, judge_checkpoint)


# Part F: early stopping, a threshold chosen on validation ----------------------------------------

_STOPPING_SECTION = "(lecture 05, 'Keeping the best model, and early stopping'; exercise 05)"
_THRESHOLD_SECTION = "(lecture 06, 'Moving the threshold: the precision-recall trade-off'; exercise 06)"
ROUNDING = 1e-5
FIT_CALL = (f"fit_capstone(X_train, y_train, X_val, y_val, max_epochs={observers.GRADED_MAX_EPOCHS}, "
            f"patience={observers.GRADED_PATIENCE})")


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)


def _fit_parts(observed: dict) -> tuple[list[tuple[float, float]], torch.Tensor, torch.Tensor]:
    """The history, mean and std fit_capstone returned (mean and std in float64), once its result has the right
    form."""
    returned(observed["result"], FIT_CALL)
    if "parts" not in observed:
        value = returned(observed["result"], FIT_CALL)
        fail("fit_capstone should return (model, mean, std, history).", "a tuple of 4", repr(value)[:80],
             "return the model holding the best epoch's weights, X_train's mean and std, and the history.")
    history, mean, std = (returned(part, FIT_CALL) for part in observed["parts"])
    expect(observed.get("module") is True, "the model fit_capstone returns should be an nn.Module.", "nn.Module")
    _expect_statistics(mean, std, "fit_capstone")
    expect(isinstance(history, list | tuple) and history and all(
        isinstance(pair, list | tuple) and len(pair) == 2
        and all(isinstance(v, float | int) and not isinstance(v, bool) and math.isfinite(v) for v in pair)
        for pair in history),
        f"{FIT_CALL} should return a history with one (train_loss, val_loss) pair of floats per epoch that ran.",
        "[(train_loss, val_loss), ...]", repr(history)[:120],
        "append (train_loss, val_loss) after each epoch, as Python floats (loss.item()).")
    return [(float(a), float(b)) for a, b in history], mean.to(torch.float64), std.to(torch.float64)


def _validation_passes(observed: dict, mean, std) -> list[tuple[torch.Tensor, list[float]]]:
    """Every complete pass over the validation rows the model made with gradients off, in order: its logits in the
    order of X_val, and the losses it may have reported (the mean per sample, the mean of its batches' means)."""
    parts = splits()
    X_val = observers.validation_inputs(mean, std).double()
    y_val = torch.tensor(parts["y_val"], dtype=torch.float64)
    passes, batches, covered = [], [], set()
    for call in observed["evaluations"]:
        X, out = decode(call["X"]), decode(call["out"])
        if not (isinstance(X, torch.Tensor) and isinstance(out, torch.Tensor) and X.dim() == 2
                and X.shape[1] == N_FEATURES and out.numel() == X.shape[0] and X.shape[0] <= len(X_val)):
            continue
        distance, index = torch.cdist(X.double(), X_val, p=float("inf")).min(dim=1)
        if not bool((distance < 1e-3).all()):
            batches, covered = [], set()  # not validation rows: whatever was gathered is no pass
            continue
        rows = index.tolist()
        if covered & set(rows):
            batches, covered = [], set()
        batches.append((rows, out.double().reshape(-1)))
        covered |= set(rows)
        if len(covered) == len(X_val):
            logits = torch.empty(len(X_val), dtype=torch.float64)
            means = []
            for rows_, out_ in batches:
                logits[rows_] = out_
                means.append(F.binary_cross_entropy_with_logits(out_, y_val[rows_]).item())
            per_sample = F.binary_cross_entropy_with_logits(logits, y_val).item()
            passes.append((logits, [per_sample, sum(means) / len(means)]))
            batches, covered = [], set()
    return passes


def _rule_hint(val_losses: list[float], ran: int, patience: int) -> str:
    """Why an early-stopping loop ran `ran` epochs on its own validation curve, where a known mistake explains it."""
    mistake = stopping_mistake(val_losses, ran, patience)
    if mistake:
        return f"{mistake} {_STOPPING_SECTION}."
    if ran == observers.GRADED_MAX_EPOCHS:
        return ("the loop ran every epoch: after each epoch compare the validation loss with the best so far and "
                f"stop after `patience` epochs in a row without a strictly lower one {_STOPPING_SECTION}.")
    return ("use the patience you are given (not a number of your own), and after each epoch: if the validation loss "
            "is strictly lower than the best so far, remember it and reset the count; otherwise count one more epoch "
            f"and stop when the count reaches patience {_STOPPING_SECTION}.")


def judge_early_stopping(observed: dict, **kwargs) -> None:
    """fit_capstone trains on the standardised training rows only, measures the validation loss after every epoch,
    stops by the patience rule and returns the model holding the best epoch's weights."""
    history, mean, std = _fit_parts(observed)
    stats = _statistics_problem(mean, std)
    expect(stats is None, f"{FIT_CALL}: {stats}.", "X_train.mean(axis=0) and X_train.std(axis=0)",
           f"mean[:3] = {mean[:3].tolist()}",
           "fit the standardisation on X_train only and apply it to X_val too (lecture 04).")
    rows = _rows_problem(*_seen(observed), mean, std) or _peeked(observed, mean, std)
    expect(rows is None, f"{FIT_CALL}: {rows.replace('train_capstone', 'fit_capstone') if rows else rows}.",
           hint="train on the standardised X_train only; X_val is for the validation loss, never for a step.")
    max_epochs, patience = observers.GRADED_MAX_EPOCHS, observers.GRADED_PATIENCE
    expect(len(history) <= max_epochs, f"{FIT_CALL} ran more than max_epochs epochs.", f"at most {max_epochs}",
           len(history), "run at most max_epochs epochs.")
    passes = _validation_passes(observed, mean, std)
    expect(passes, f"{FIT_CALL} never ran the model on the whole validation part with gradients off.",
           "one pass over X_val (standardised with X_train's mean and std) after every epoch", "none",
           "after each epoch, in model.eval() and under torch.no_grad(), compute the loss on all of X_val, "
           "standardised with the training mean and std " + _STOPPING_SECTION + ".")
    matched, j = [], 0
    for epoch, (_, val_loss) in enumerate(history, start=1):
        k = next((k for k in range(j, len(passes)) if any(_close(val_loss, v) for v in passes[k][1])), None)
        if k is None:
            recent = passes[min(j, len(passes) - 1)][1][0]
            fail(f"{FIT_CALL}: the validation loss of epoch {epoch} is not the loss of the model on the validation "
                 "rows.", f"{recent:.5f} (BCEWithLogitsLoss on all of X_val, measured after that epoch)",
                 f"{val_loss:.5f}",
                 "after each epoch compute the mean BCEWithLogitsLoss over all the standardised X_val rows with the "
                 "model in eval mode under torch.no_grad(), and record that value (not the training loss, nor the "
                 "loss on the training rows) " + _STOPPING_SECTION + ".")
        matched.append(k)
        j = k + 1
    val_losses = [v for _, v in history]
    expected = _stops_after(val_losses, patience)
    if expected == len(val_losses) and _stops_after([*val_losses, math.inf], patience) > expected:
        expected = max_epochs  # the rule had not stopped it yet: it should have gone on
    expect(len(history) == expected, f"{FIT_CALL} ran the wrong number of epochs for its validation losses.",
           f"{expected} epochs (then {patience} in a row without a strictly lower validation loss)"
           if expected < max_epochs else f"all {max_epochs} epochs (the rule never stopped it)",
           f"{len(history)} epochs", _rule_hint(val_losses, len(history), patience))
    best = min(range(len(val_losses)), key=lambda i: (val_losses[i], i))
    X_val = observers.validation_inputs(mean, std)
    logits = _rebuilt_logits(observed, X_val, "fit_capstone").reshape(-1)
    reported = returned(observed["logits"], "the model fit_capstone returns, on the standardised validation rows,")
    expect(isinstance(reported, torch.Tensor) and reported.numel() == logits.numel()
           and torch.allclose(reported.double().reshape(-1), logits, rtol=1e-4, atol=1e-4, equal_nan=True),
           "the model fit_capstone returns does not compute its logits from its layers applied one after the other "
           f"({sequence(observed)}).", _head(logits), _head(reported), MLP_HINT)
    expect(torch.allclose(logits, passes[matched[best]][0], rtol=1e-4, atol=1e-4),
           f"{FIT_CALL} returned a model that does not hold the weights of its best epoch.",
           f"the model as it was after epoch {best + 1} (the lowest validation loss, {val_losses[best]:.5f})",
           "other weights (the last epoch's?)",
           "keep copy.deepcopy(model.state_dict()) whenever the validation loss is strictly lower than the best so "
           f"far, and call model.load_state_dict(best_state) before returning {_STOPPING_SECTION}.")
    seconds = observed["seconds"]
    expect(seconds < TRAINING_BUDGET_S, f"{FIT_CALL} took too long.",
           f"under {TRAINING_BUDGET_S} s", seconds, "train with larger batches or a larger learning rate.")


check_early_stopping = judged(observe_early_stopping, judge_early_stopping)


def _near(seen: torch.Tensor, X: np.ndarray, mean, std) -> int:
    if not seen.shape[0]:
        return 0
    standardised = (torch.tensor(X, dtype=torch.float64) - mean) / std
    return int((torch.cdist(seen, standardised, p=float("inf")).min(dim=1).values < 1e-3).sum())


def judge_validation_threshold(observed: dict, **kwargs) -> None:
    """choose_capstone_threshold(model, mean, std, X_val, y_val) returns a t in [0, 1] whose labels probs >= t reach
    the lowest cost_fn * FN + cost_fp * FP on the validation rows, having run the model on no reserved row."""
    what = "choose_capstone_threshold(model, mean, std, X_val, y_val) for the grader's model"
    t = returned(observed["result"], what)
    model, mean, std = observers.threshold_model()
    mean, std = mean.double(), std.double()
    parts = splits()
    seen = torch.cat([_seen(observed, kind)[0] for kind in ("seen", "looked")])
    reserved = _near(seen, parts["X_reserved"], mean, std)
    expect(not reserved, f"{what} ran the model on {reserved} rows of the reserved part, which no one may look at.",
           hint="choose the threshold on the validation rows you are given: never reload the data set.")
    t = inference.returned_threshold(t, what, "return the threshold itself as a float.")
    with torch.no_grad():
        probs = torch.sigmoid(model(observers.validation_inputs(mean, std))).squeeze(1)
    y = torch.tensor(parts["y_val"])
    lowest = inference.best_cost(probs, y)
    # Probabilities computed another way (float64, NumPy) differ from these by rounding: a t within ROUNDING of a
    # probability may label that row either way, and both count.
    found = min(inference.cost(probs.double(), y, t + shift) for shift in (-ROUNDING, 0.0, ROUNDING))
    if math.isclose(found, lowest):
        return
    hint = inference._threshold_hint(probs, y, t, 10.0, 1.0)
    if _near(seen, parts["X_train"], mean, std) and not _near(seen, parts["X_val"], mean, std):
        hint = ("the model was run on the training rows, not on the validation rows: choose the threshold on X_val "
                "(standardised with the mean and std you are given) and y_val")
    elif t == 0.5:
        hint = ("0.5 is the default threshold, not one chosen by cost: try every validation probability as t (and "
                f"1.0) and keep one of the lowest cost {_THRESHOLD_SECTION}")
    fail(f"{what} returned a threshold whose cost on the validation rows is not the lowest.",
         f"a cost of {lowest:g} (10 * FN + 1 * FP on X_val)", f"a cost of {found:g} at t = {t:.6g}", hint)


check_validation_threshold = judged(observe_validation_threshold, judge_validation_threshold)
