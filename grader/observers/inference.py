"""Observers for exercise 06 (inference): predict and precision_recall on the grader's inputs.

The judge (grader.checks.inference) builds the same models and rows from the same definitions
(label_cases, precision_recall_cases) and fixed seeds, and reads only what the student's functions
returned and what the spy saw during each forward pass.
"""

import functools
from typing import NamedTuple

import torch
from torch import nn

from grader.observation import CALL, ListOf, OneOf, OrMissing, call_with, capture, observes

# Logits a hair from 0. The float32 sigmoid rounds the first four to exactly 0.5 (on a typical CPU), so for
# the two negative ones p >= 0.5 says 1 and logit >= 0 says 0; the last two are clear of that sliver.
TINY_LOGITS = (-1.5e-7, -1e-8, 0.0, 1e-8, -1e-6, 1e-6)


# torch's own grad-mode and requires_grad readers, kept when the grading kernel imports this module, before any
# student code runs: a predict that replaces torch.is_grad_enabled (or Tensor.requires_grad) cannot change them.
_GRAD_ENABLED = torch._C.is_grad_enabled
_REQUIRES_GRAD = torch._C.TensorBase.requires_grad.__get__


class _Spy(nn.Module):
    """Wraps a model and records, for every forward call, every submodule's mode, the grad mode, the input device
    and whether the output is part of a graph (requires grad), all read with the functions saved above."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.calls: list[dict] = []

    def forward(self, X):
        call = {"training": [bool(m.training) for m in self.modules()], "grad": bool(_GRAD_ENABLED()),
                "device": X.device.type}
        self.calls.append(call)
        out = self.model(X)
        call["graph"] = isinstance(out, torch.Tensor) and bool(_REQUIRES_GRAD(out))
        return out


# What `_Spy` records of one forward pass ("graph" once the model returned).
FORWARD = {"training": [bool], "grad": bool, "device": str, "graph": OrMissing(bool)}
# A captured predict call with the spy's record of its forward passes.
SPIED_CALL = {"result": CALL, "forwards": [FORWARD]}


def fixed_linear(weight: list[float], bias: float) -> nn.Linear:
    layer = nn.Linear(len(weight), 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weight]))
        layer.bias.fill_(bias)
    return layer


def seeded(seed: int, build):
    """`build()` under torch.manual_seed(seed), leaving the kernel's own random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _keeps_rng(observe):
    """The kernel's global random state is the same after the hidden test as before it."""

    @functools.wraps(observe)
    def run(*args, **kwargs):
        with torch.random.fork_rng(devices=[]):
            return observe(*args, **kwargs)

    return run


class LabelCase(NamedTuple):
    """One call of predict: the judge (grader.checks.inference) rebuilds the same list."""

    model: nn.Module
    X: torch.Tensor
    threshold: float | None  # None: predict's default
    what: str  # how a failure message names the call
    exact: bool  # every row is judged (False: rows whose probability is near the threshold are not)


def label_cases() -> list[LabelCase]:
    """Every predict call of the labels check, in order; built from fixed seeds, so observer and judge agree."""
    boundary = fixed_linear([1.0, 0.0], 0.0)  # logits exactly -2, -0.3, 0, 0, 0.3, 2 on X
    X = torch.tensor([[-2.0, 5.0], [-0.3, 1.0], [0.0, -4.0], [0.0, 7.0], [0.3, 0.0], [2.0, 3.0]])
    logits = "logits -2, -0.3, 0, 0, 0.3, 2"
    zero = fixed_linear([0.0, 0.0, 0.0], 0.0)  # every logit exactly 0, every probability exactly 0.5
    X_zero = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    deep = seeded(11, lambda: nn.Sequential(nn.Linear(7, 16), nn.ReLU(), nn.Linear(16, 1)))
    X7 = torch.randn(40, 7, generator=torch.Generator().manual_seed(3)) * 3
    flipped = fixed_linear([-1.0, 0.0], 0.0)
    return [
        LabelCase(boundary, X, None, f"predict(model, X) with {logits}", True),
        LabelCase(zero, X_zero, None,
                  "predict(model, X) for a model whose logits are all exactly 0 (probability 0.5)", True),
        LabelCase(boundary, X, 0.5, f"predict(model, X, threshold=0.5) with {logits}", True),
        # Other thresholds: the probabilities stay well away from them, so any correct comparison agrees.
        *[LabelCase(boundary, X, t, f"predict(model, X, threshold={t})", True) for t in (0.8, 0.2, 0.6, 0.05)],
        *[LabelCase(deep, X7, t, f"predict(model, X, threshold={t}) for a 2-layer network and 7 features", False)
          for t in (0.5, 0.3, 0.7)],
        LabelCase(deep, X7[:1], None, "predict(model, X) for a single row", False),
        # Logits within float32's reach of 0: sigmoid rounds the ones in (-1.8e-7, 0) to exactly 0.5, where
        # p >= 0.5 and logit >= 0 disagree (the judge accepts either label there); the rest must be exact.
        LabelCase(boundary, torch.tensor([[v, 0.0] for v in TINY_LOGITS]), None,
                  f"predict(model, X) with logits {', '.join(f'{v:g}' for v in TINY_LOGITS)}", True),
        # A second model on the same rows must give its own labels.
        LabelCase(flipped, X, None, "predict(model, X) for a second model (logits 2, 0.3, 0, 0, -0.3, -2)", True),
    ]


def _predict_call(predict, model, X, threshold=None, **kwargs) -> dict:
    kwargs = kwargs if threshold is None else {**kwargs, "threshold": threshold}
    return capture(predict, model, X.clone(), **kwargs)


@observes({"calls": ListOf(CALL, length=len(label_cases()))})
@_keeps_rng
def observe_predict_labels(predict, **kwargs) -> dict:
    """predict's labels for every grader model, row set and threshold."""
    return {"calls": [_predict_call(predict, case.model, case.X, case.threshold) for case in label_cases()]}


@observes(OneOf({"calls": ListOf(SPIED_CALL, length=2), "cuda": False},
                 {"calls": ListOf(SPIED_CALL, length=2), "cuda": True, "device_calls": ListOf(SPIED_CALL, length=1)}))
@_keeps_rng
def observe_predict_mode(predict, **kwargs) -> dict:
    """Two calls of predict on a dropout model left in training mode (and, with a GPU, one with device="cuda"),
    each with the spy's record of its forward passes."""
    inner = seeded(5, lambda: nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 1)))
    spy = _Spy(inner)
    spy.train()
    X = torch.randn(64, 2, generator=torch.Generator().manual_seed(4)) * 2
    calls = []
    for _ in range(2):
        spy.calls = []
        result = _predict_call(predict, spy, X)
        calls.append({"result": result, "forwards": spy.calls})
    observed = {"calls": calls, "cuda": torch.cuda.is_available()}
    if observed["cuda"]:
        observed["device_calls"] = [_observe_on_gpu(predict)]
    return observed


def _observe_on_gpu(predict) -> dict:
    spy = _Spy(seeded(6, lambda: nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))))
    X = torch.randn(10, 3, generator=torch.Generator().manual_seed(6))
    result = _predict_call(predict, spy, X, device="cuda")
    spy.to("cpu")
    return {"result": result, "forwards": spy.calls}


def precision_recall_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, y_hat, y) for every precision_recall call, in order; the judge rebuilds the same list."""
    generator = torch.Generator().manual_seed(8)
    return [
        ("y_hat = [1, 1, 0, 1, 0, 0, 1], y = [1, 0, 0, 1, 1, 0, 1]",
         torch.tensor([1, 1, 0, 1, 0, 0, 1]), torch.tensor([1, 0, 0, 1, 1, 0, 1])),
        ("y_hat = [1, 1, 1, 0, 0], y = [1, 0, 0, 0, 1]", torch.tensor([1, 1, 1, 0, 0]), torch.tensor([1, 0, 0, 0, 1])),
        ("y_hat = [1, 0, 0, 0], y = [1, 1, 1, 0]", torch.tensor([1, 0, 0, 0]), torch.tensor([1, 1, 1, 0])),
        ("y_hat all 0 (no predicted positives)", torch.zeros(6, dtype=torch.long), torch.tensor([1, 0, 1, 0, 0, 1])),
        ("y all 0 (no actual positives)", torch.tensor([1, 0, 1, 0]), torch.zeros(4, dtype=torch.long)),
        ("200 random labels", torch.randint(0, 2, (200,), generator=generator),
         torch.randint(0, 2, (200,), generator=generator)),
    ]


@observes({"calls": ListOf(CALL, length=len(precision_recall_cases()))})
@_keeps_rng
def observe_precision_recall(precision_recall, **kwargs) -> dict:
    """precision_recall's result for every grader label set."""
    return {"calls": [capture(precision_recall, y_hat.clone(), y.clone())
                      for _, y_hat, y in precision_recall_cases()]}


class ThresholdCase(NamedTuple):
    """One call of choose_threshold: the judge (grader.checks.inference) rebuilds the same list."""

    probs: torch.Tensor
    y: torch.Tensor
    costs: dict  # the keyword arguments given (empty: the defaults cost_fn=10.0, cost_fp=1.0)
    what: str


def threshold_cases() -> list[ThresholdCase]:
    """Every choose_threshold call, in order; built from fixed seeds, so observer and judge agree."""
    generator = torch.Generator().manual_seed(12)
    probs = torch.rand(60, generator=generator)
    y = (torch.rand(60, generator=generator) < probs).long()
    rounded = (probs * 10).round() / 10  # many rows share each probability
    # Probabilities 1e-4 apart: the best threshold lies between two of them, which no grid of 0.01 steps finds.
    close = torch.tensor([0.3, 0.3001, 0.3002, 0.3003, 0.3004, 0.3005, 0.3006, 0.9])
    close_y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    ends = torch.tensor([0.0, 0.2, 0.5, 0.5, 0.8, 1.0])
    return [
        ThresholdCase(probs, y, {}, "60 rows with the default costs (cost_fn=10.0, cost_fp=1.0)"),
        ThresholdCase(probs, y, {"cost_fn": 1.0, "cost_fp": 5.0}, "the same rows with cost_fn=1.0, cost_fp=5.0"),
        ThresholdCase(probs, y, {"cost_fn": 1.0, "cost_fp": 1.0}, "the same rows with equal costs"),
        ThresholdCase(rounded, y, {"cost_fn": 3.0, "cost_fp": 2.0}, "probabilities rounded to 0.1, so many tie"),
        ThresholdCase(close, close_y, {"cost_fn": 2.0, "cost_fp": 1.0}, "probabilities 0.0001 apart"),
        ThresholdCase(ends, torch.tensor([0, 0, 1, 0, 1, 1]), {}, "probabilities including exactly 0 and 1"),
        ThresholdCase(probs[:10], torch.zeros(10, dtype=torch.long), {}, "no positive row (label nothing 1)"),
        ThresholdCase(probs[:10], torch.ones(10, dtype=torch.long), {"cost_fn": 1.0, "cost_fp": 10.0},
                      "only positive rows (label everything 1)"),
    ]


@observes({"calls": ListOf(call_with(unchanged=bool), length=len(threshold_cases()))})
@_keeps_rng
def observe_choose_threshold(choose_threshold, **kwargs) -> dict:
    """choose_threshold's result for every grader case, and whether it left its inputs as they were."""
    calls = []
    for case in threshold_cases():
        probs, y = case.probs.clone(), case.y.clone()
        call = capture(choose_threshold, probs, y, **case.costs)
        call["unchanged"] = bool(torch.equal(probs, case.probs) and torch.equal(y, case.y))
        calls.append(call)
    return {"calls": calls}
