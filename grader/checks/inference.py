"""Hidden checks for exercise 06 (inference): from logits to labels, precision/recall, and a threshold chosen
for the costs of the two kinds of error.

Each check is judged here, in the trusted process, from what grader.observers.inference saw the
student's functions return. The judge rebuilds the same models and rows from the same seeds and
computes the labels itself; only the spy's records of each forward pass (mode, grad mode, device)
come from the kernel, and wrong labels fail whatever those records say.
"""

import math

import torch
from torch import nn

from grader.checks.report import expect, fail, judged, returned, type_name
from grader.observers.inference import (
    label_cases,
    observe_choose_threshold,
    observe_precision_recall,
    observe_predict_labels,
    observe_predict_mode,
    precision_recall_cases,
    seeded,
    threshold_cases,
)

LECTURE = "lecture 06"
# Rows of a random network whose probability is this close to the threshold are not judged: a correct
# predict may compare logits with logit(threshold), or run with other threads, and land on either side.
MARGIN = 1e-3


def either_rule(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """Rows where the two correct rules, sigmoid(logit) >= threshold and logit >= logit(threshold), disagree.

    In float32 that happens only for logits a hair below the boundary (for threshold 0.5: about -1.8e-7 to
    0), where the sigmoid rounds to exactly the threshold; either label is right there.
    """
    by_probability = torch.sigmoid(logits) >= threshold
    by_logit = logits >= torch.logit(torch.tensor(threshold, dtype=logits.dtype))
    return by_probability != by_logit


def reference_labels(model: nn.Module, X: torch.Tensor, threshold: float) -> torch.Tensor:
    """The labels predict must give (grader.checks.capstone judges with it too)."""
    model.eval()
    with torch.no_grad():
        return (torch.sigmoid(model(X)).squeeze(1) >= threshold).long()


def _labels(entry: dict, n: int, what: str) -> torch.Tensor:
    """The labels one captured predict call returned, after checking their type, shape and dtype."""
    y_hat = returned(entry, what)
    expect(
        isinstance(y_hat, torch.Tensor),
        f"{what} should return a torch.Tensor of labels.",
        "torch.Tensor",
        type_name(y_hat),
        f"build the labels with tensor operations and return the tensor "
        f"({LECTURE}, 'From logits to probabilities to labels').",
    )
    if tuple(y_hat.shape) == (n, 1):
        fail(
            f"{what} returned one column per row instead of one label per row.",
            (n,),
            tuple(y_hat.shape),
            "the model's logits have shape (N, 1); flatten them with .squeeze(1) (or .flatten()) so the "
            "labels have shape (N,).",
        )
    expect(tuple(y_hat.shape) == (n,), f"{what} has the wrong shape.", (n,), tuple(y_hat.shape),
           "return one label per row of X: shape (N,).")
    if y_hat.dtype == torch.bool:
        fail(
            f"{what} returned a bool tensor (True/False) instead of int64 labels 0/1.",
            torch.int64,
            torch.bool,
            "a comparison like probs >= threshold gives bools: convert them with .long().",
        )
    if y_hat.is_floating_point():
        between = (y_hat > 0) & (y_hat < 1)
        if bool(between.any()):
            fail(
                f"{what} returned probabilities, not labels.",
                "int64 labels 0 or 1",
                f"{y_hat.dtype} values such as {y_hat[between][:3].tolist()}",
                "compare the probabilities with threshold (probs >= threshold) and convert with .long().",
            )
        fail(
            f"{what} returned float labels.",
            torch.int64,
            y_hat.dtype,
            "labels are whole numbers: convert the comparison with .long(), not .float().",
        )
    expect(y_hat.dtype == torch.int64, f"{what} has the wrong dtype.", torch.int64, y_hat.dtype,
           "convert the comparison with .long().")
    device = y_hat.observed["device"]
    expect(
        device == "cpu",
        f"{what} returned a tensor on {device}, not on the CPU.",
        "cpu",
        device,
        "finish with .cpu() so the labels can be compared with NumPy arrays and y on the CPU.",
    )
    expect(not y_hat.observed["requires_grad"], f"{what} returned a tensor that is part of a graph.", False, True,
           "compute the labels inside `with torch.no_grad():`.")
    return y_hat


def _values_hint(y_hat, logits, threshold, keep) -> str:
    """Name the most likely mistake behind wrong labels."""
    probs = torch.sigmoid(logits)
    guesses = [
        (probs > threshold).long(), "use >= : a probability exactly equal to threshold is labelled 1 (the contract "
        "says 1 where the probability is >= threshold; lecture 06, 'The boundary case')",
    ], [
        torch.round(probs).long(), "torch.round sends a probability of exactly 0.5 to 0 (and ignores threshold): "
        "compare probs >= threshold instead",
    ], [
        (logits >= threshold).long(), "you compared the raw logits with threshold; apply torch.sigmoid first, "
        "then compare the probabilities",
    ], [
        (probs >= 0.5).long(), "the labels ignore the threshold argument: compare with threshold, not 0.5",
    ], [
        torch.zeros_like(logits, dtype=torch.long), "every label is 0: compute the labels from model(X)",
    ], [
        torch.ones_like(logits, dtype=torch.long), "every label is 1: compute the labels from model(X)",
    ]
    matches = [hint for guess, hint in guesses if torch.equal(y_hat[keep], guess[keep])]
    if matches:
        return "; or, ".join(matches)
    return (f"labels must be 1 where torch.sigmoid(model(X)) >= threshold and 0 elsewhere; use the model and X "
            f"you are given, not a global model ({LECTURE}, 'From logits to probabilities to labels')")


def _expect_labels(entry, model, X, threshold, what, exact: bool) -> None:
    """The captured call returned the labels of `model` on `X`; `exact` when no row is near the threshold
    by accident (the boundary rows are meant to sit exactly on it). Rows where the two correct rules
    disagree (see either_rule) accept either label."""
    threshold = 0.5 if threshold is None else threshold
    y_hat = _labels(entry, X.shape[0], what)
    model.eval()
    with torch.no_grad():
        logits = model(X).squeeze(1)
    probs = torch.sigmoid(logits)
    expected = (probs >= threshold).long()
    keep = torch.ones_like(expected, dtype=torch.bool) if exact else (probs - threshold).abs() > MARGIN
    keep &= ~either_rule(logits, threshold)
    if torch.equal(y_hat[keep], expected[keep]):
        return
    wrong = ((y_hat != expected) & keep).nonzero().flatten()[:3].tolist()
    fail(
        f"{what} gave wrong labels (rows {wrong} with logits {[float(f'{logits[i].item():.4g}') for i in wrong]}, "
        f"probabilities {[round(probs[i].item(), 4) for i in wrong]}).",
        expected.tolist(),
        y_hat.tolist(),
        _values_hint(y_hat, logits, threshold, keep),
    )


def judge_predict_labels(observed: dict, **kwargs) -> None:
    """predict(model, X, threshold=0.5): int64 (N,) labels, 1 where sigmoid(logits) >= threshold."""
    cases = label_cases()
    for entry, case in zip(observed["calls"], cases, strict=True):
        _expect_labels(entry, case.model, case.X, case.threshold, case.what, case.exact)


check_predict_labels = judged(observe_predict_labels, judge_predict_labels)


def _all_false(flags: list[bool]) -> bool:
    """Every module's training flag is off (a forward pass that recorded no module proves nothing)."""
    return bool(flags) and not any(flags)


def judge_predict_mode(observed: dict, **kwargs) -> None:
    """predict runs the model in eval mode without a graph, deterministically, and returns CPU labels."""
    inner = seeded(5, lambda: nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 1)))
    X = torch.randn(64, 2, generator=torch.Generator().manual_seed(4)) * 2
    what = "predict(model, X) for a model with dropout that starts in training mode"
    first_call, second_call = observed["calls"]
    first = _labels(first_call["result"], len(X), what)
    forwards = list(first_call["forwards"])
    expect(len(forwards) > 0, f"{what} never called the model.", "at least one call of model(X)", "none",
           "compute the logits with model(X) on the model you are given, not a global model.")
    forwards += second_call["forwards"]
    expect(
        all(_all_false(f["training"]) for f in forwards),
        f"{what} ran the model in training mode, so dropout changed the logits.",
        "model.training == False during the forward pass",
        "model.training == True",
        f"call model.eval() before computing the logits ({LECTURE}, 'Switching off the training machinery').",
    )
    expect(
        all(not f["grad"] and f.get("graph") is False for f in forwards),  # no "graph": the forward pass raised
        f"{what} built a computation graph (gradients were enabled during the forward pass).",
        "torch.is_grad_enabled() == False inside predict",
        "True",
        f"wrap the forward pass in `with torch.no_grad():` or `with torch.inference_mode():` "
        f"({LECTURE}, 'Switching off the training machinery').",
    )
    second = _labels(second_call["result"], len(X), what + " (second call)")
    expect(torch.equal(first, second), f"{what} gave different labels on two calls with the same X.",
           first.tolist(), second.tolist(), "call model.eval() so dropout is switched off.")
    _expect_eval_labels(first, inner, X, what)
    if observed["cuda"]:
        _judge_on_gpu(observed)


def _expect_eval_labels(y_hat, model, X, what) -> None:
    model.eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(X)).squeeze(1)
    expected = (probs >= 0.5).long()
    keep = (probs - 0.5).abs() > MARGIN
    expect(torch.equal(y_hat[keep], expected[keep]), f"{what} gave wrong labels.", expected.tolist(), y_hat.tolist(),
           "labels are 1 where torch.sigmoid(model(X)) >= threshold, computed in eval mode.")


def _judge_on_gpu(observed: dict) -> None:
    """On a GPU machine: the model ran on `device` and the labels came back on the CPU."""
    model = seeded(6, lambda: nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1)))
    X = torch.randn(10, 3, generator=torch.Generator().manual_seed(6))
    what = 'predict(model, X, device="cuda") for a model and X on the CPU'
    (entry,) = observed["device_calls"]
    y_hat = returned(entry["result"], what)
    devices = [f["device"] for f in entry["forwards"]]
    expect(devices and all(d == "cuda" for d in devices), f"{what} did not run on the GPU.", "cuda", devices,
           "move the model and X with .to(device).")
    expect(isinstance(y_hat, torch.Tensor) and y_hat.observed["device"] == "cpu",
           f"{what} returned labels that are not on the CPU.", "cpu",
           y_hat.observed["device"] if isinstance(y_hat, torch.Tensor) else type_name(y_hat), "finish with .cpu().")
    _expect_eval_labels(_labels(entry["result"], len(X), what), model, X, what)


check_predict_mode = judged(observe_predict_mode, judge_predict_mode)


def _expect_pair(result, what):
    expect(
        isinstance(result, tuple) and len(result) == 2,
        f"{what} should return a tuple (precision, recall).",
        "a tuple of 2 floats",
        repr(result)[:80],
        "return precision, recall",
    )
    for name, value in zip(("precision", "recall"), result, strict=True):
        expect(
            isinstance(value, float),
            f"{what} returned {name} as {type_name(value)}, not a Python float.",
            "float",
            type_name(value),
            "turn a one-element tensor into a float with .item() or float(...).",
        )
        expect(not math.isnan(value), f"{what} returned {name} = nan.", "0.0 when nothing is counted", value,
               "when the denominator is 0 (no predicted positives, or no actual positives) return 0.0.")


def judge_precision_recall(observed: dict, **kwargs) -> None:
    """precision_recall(y_hat, y) -> (precision, recall) as floats; 0.0 when a denominator is 0."""
    cases = precision_recall_cases()
    for entry, (name, y_hat, y) in zip(observed["calls"], cases, strict=True):
        what = f"precision_recall(y_hat, y) for {name}"
        result = returned(entry, what)
        _expect_pair(result, what)
        tp = int(((y_hat == 1) & (y == 1)).sum())
        fp = int(((y_hat == 1) & (y == 0)).sum())
        fn = int(((y_hat == 0) & (y == 1)).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        got = tuple(result)
        if math.isclose(got[0], precision, abs_tol=1e-6) and math.isclose(got[1], recall, abs_tol=1e-6):
            continue
        hint = "precision = TP / (TP + FP) and recall = TP / (TP + FN)"
        accuracy = float((y_hat == y).float().mean())
        if math.isclose(got[0], recall, abs_tol=1e-6) and math.isclose(got[1], precision, abs_tol=1e-6):
            hint = "you swapped them: precision divides by the predicted positives, recall by the actual positives"
        elif math.isclose(got[0], accuracy, abs_tol=1e-6) or math.isclose(got[1], accuracy, abs_tol=1e-6):
            hint = "that is the accuracy; count only the rows predicted positive (precision) or actually positive"
        fail(f"{what} gave the wrong values.", (round(precision, 4), round(recall, 4)),
             (round(got[0], 4), round(got[1], 4)),
             f"{hint} ({LECTURE}, 'Accuracy, confusion matrix, precision and recall').")


check_precision_recall = judged(observe_precision_recall, judge_precision_recall)


# choose_threshold --------------------------------------------------------------------------------

_THRESHOLD_SECTION = f"({LECTURE}, 'Moving the threshold: the precision-recall trade-off')"


def cost(probs: torch.Tensor, y: torch.Tensor, t: float, cost_fn: float = 10.0, cost_fp: float = 1.0,
         strict: bool = False) -> float:
    """cost_fn * FN + cost_fp * FP when rows with probs >= t (or > t, `strict`) are labelled 1."""
    y_hat = probs > t if strict else probs >= t
    fn = int((~y_hat & (y == 1)).sum())
    fp = int((y_hat & (y == 0)).sum())
    return cost_fn * fn + cost_fp * fp


def best_cost(probs, y, cost_fn=10.0, cost_fp=1.0) -> float:
    """The lowest cost any t in [0, 1] reaches: t = 0, t = 1 and every distinct probability are all the
    labellings there are."""
    candidates = {0.0, 1.0, *probs.tolist()}
    return min(cost(probs, y, t, cost_fn, cost_fp) for t in candidates if 0.0 <= t <= 1.0)


def _threshold_hint(probs, y, t, cost_fn, cost_fp) -> str:
    """Name the likely mistake behind a threshold that does not reach the minimum cost."""
    if math.isclose(cost(probs, y, t, cost_fn, cost_fp, strict=True), best_cost(probs, y, cost_fn, cost_fp)):
        return ("you chose t for labels probs > t, but the contract labels probs >= t as 1: a row whose probability "
                "equals t is labelled 1")
    if cost_fn != cost_fp and math.isclose(cost(probs, y, t, cost_fp, cost_fn), best_cost(probs, y, cost_fp, cost_fn)):
        return "you swapped the two costs: a false negative (y = 1 labelled 0) costs cost_fn, a false positive cost_fp"
    if cost_fn != 10.0 and math.isclose(cost(probs, y, t), best_cost(probs, y)):
        return "use the cost_fn and cost_fp you are given, not the defaults"
    return ("try every distinct probability as t (and 1.0, which labels nothing 1), compute the cost of each and "
            "keep a t of the lowest: a grid of thresholds can miss the best one when probabilities are close "
            f"{_THRESHOLD_SECTION}")


def returned_threshold(t, what: str, float_hint: str, range_hint: str | None = None) -> float:
    """The threshold a function returned, as a float, once it is a Python number in [0, 1]."""
    if isinstance(t, torch.Tensor):
        fail(f"{what} returned a tensor, not a Python float.", "float", repr(t)[:60],
             "turn the chosen threshold into a number with float(...) or .item().")
    expect(isinstance(t, float | int) and not isinstance(t, bool), f"{what} should return a float.", "float",
           type_name(t), float_hint)
    t = float(t)
    expect(0.0 <= t <= 1.0, f"{what} returned a threshold outside [0, 1].", "0 <= t <= 1", t, range_hint)
    return t


def judge_choose_threshold(observed: dict, **kwargs) -> None:
    """choose_threshold(probs, y, cost_fn, cost_fp): a float t in [0, 1] whose labels probs >= t reach the lowest
    cost_fn * FN + cost_fp * FP."""
    cases = threshold_cases()
    for entry, case in zip(observed["calls"], cases, strict=True):
        costs = {"cost_fn": 10.0, "cost_fp": 1.0, **case.costs}
        args = ", ".join(f"{k}={v}" for k, v in case.costs.items())
        what = f"choose_threshold(probs, y{', ' + args if args else ''}) for {case.what}"
        t = returned(entry, what)
        expect(entry["unchanged"], f"{what} changed probs or y.", hint="only read its inputs.")
        t = returned_threshold(t, what, "return the threshold itself as a float, not a list or the labels.",
                               "to label nothing 1, t = 1.0 is enough when every probability is below 1.")
        lowest = best_cost(case.probs, case.y, **costs)
        # probs >= t compared in float32 (torch's way with a float32 tensor) or in float64 (NumPy's, or Python's):
        # a t within float32 rounding of a probability may label that row either way, and both count.
        found = min(cost(case.probs, case.y, t, **costs), cost(case.probs.double(), case.y, t, **costs))
        if not math.isclose(found, lowest):
            fail(f"{what} returned a threshold whose cost is not the lowest.",
                 f"a cost of {lowest:g} (cost_fn * FN + cost_fp * FP)", f"a cost of {found:g} at t = {t:.6g}",
                 _threshold_hint(case.probs, case.y, t, costs["cost_fn"], costs["cost_fp"]))


check_choose_threshold = judged(observe_choose_threshold, judge_choose_threshold)
