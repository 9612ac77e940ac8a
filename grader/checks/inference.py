"""Hidden checks for exercise 06 (inference): from logits to labels, and precision/recall."""

import math

import torch
from torch import nn

from grader.checks.report import call, expect, fail, student_check

LECTURE = "lecture 06"


class _Spy(nn.Module):
    """Wraps a model and records, for every forward call, its mode, grad mode and input device."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.calls: list[dict] = []

    def forward(self, X):
        self.calls.append(
            {"training": self.training, "inner_training": self.model.training, "grad": torch.is_grad_enabled(),
             "device": X.device}
        )
        return self.model(X)


def _linear(weight: list[float], bias: float) -> nn.Linear:
    layer = nn.Linear(len(weight), 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weight]))
        layer.bias.fill_(bias)
    return layer


def _boundary_case():
    """A model and rows whose logits are exactly -2, -0.3, 0, 0, 0.3, 2 (probabilities 0.12 ... 0.88)."""
    model = _linear([1.0, 0.0], 0.0)
    X = torch.tensor([[-2.0, 5.0], [-0.3, 1.0], [0.0, -4.0], [0.0, 7.0], [0.3, 0.0], [2.0, 3.0]])
    return model, X


def _reference(model: nn.Module, X: torch.Tensor, threshold: float) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return (torch.sigmoid(model(X)).squeeze(1) >= threshold).long()


def _labels(predict, model, X, threshold, what) -> torch.Tensor:
    """Call predict and check the type, shape and dtype of what it returns."""
    args = {} if threshold is None else {"threshold": threshold}
    y_hat = call(predict, model, X, what=what, **args)
    n = X.shape[0]
    expect(
        isinstance(y_hat, torch.Tensor),
        f"{what} should return a torch.Tensor of labels.",
        "torch.Tensor",
        type(y_hat).__name__,
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
        values = y_hat.detach().cpu()
        if bool(((values > 0) & (values < 1)).any()):
            fail(
                f"{what} returned probabilities, not labels.",
                "int64 labels 0 or 1",
                f"{y_hat.dtype} values such as {values[(values > 0) & (values < 1)][:3].tolist()}",
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
    expect(
        y_hat.device.type == "cpu",
        f"{what} returned a tensor on {y_hat.device}, not on the CPU.",
        "cpu",
        y_hat.device,
        "finish with .cpu() so the labels can be compared with NumPy arrays and y on the CPU.",
    )
    expect(not y_hat.requires_grad, f"{what} returned a tensor that is part of a graph.", False, True,
           "compute the labels inside `with torch.no_grad():`.")
    return y_hat


def _values_hint(y_hat, model, X, threshold) -> str:
    """Name the most likely mistake behind wrong labels."""
    with torch.no_grad():
        logits = model(X).squeeze(1)
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
    matches = [hint for guess, hint in guesses if torch.equal(y_hat, guess)]
    if matches:
        return "; or, ".join(matches)
    return (f"labels must be 1 where torch.sigmoid(model(X)) >= threshold and 0 elsewhere; use the model and X "
            f"you are given, not a global model ({LECTURE}, 'From logits to probabilities to labels')")


def _expect_labels(predict, model, X, threshold, what) -> None:
    y_hat = _labels(predict, model, X, threshold, what)
    expected = _reference(model, X, 0.5 if threshold is None else threshold)
    if not torch.equal(y_hat, expected):
        wrong = (y_hat != expected).nonzero().flatten()[:3].tolist()
        with torch.no_grad():
            probs = torch.sigmoid(model(X).squeeze(1))
        fail(
            f"{what} gave wrong labels (rows {wrong} with probabilities {[round(probs[i].item(), 4) for i in wrong]}).",
            expected.tolist(),
            y_hat.tolist(),
            _values_hint(y_hat, model, X, 0.5 if threshold is None else threshold),
        )


@student_check
def check_predict_labels(predict) -> None:
    """predict(model, X, threshold=0.5): int64 (N,) labels, 1 where sigmoid(logits) >= threshold."""
    model, X = _boundary_case()
    _expect_labels(predict, model, X, None, "predict(model, X) with logits -2, -0.3, 0, 0, 0.3, 2")
    # A model with zero weights and bias: every logit is exactly 0, every probability exactly 0.5.
    zero = _linear([0.0, 0.0, 0.0], 0.0)
    _expect_labels(predict, zero, torch.randn(5, 3, generator=torch.Generator().manual_seed(0)), None,
                   "predict(model, X) for a model whose logits are all exactly 0 (probability 0.5)")
    _expect_labels(predict, model, X, 0.5, "predict(model, X, threshold=0.5) with logits -2, -0.3, 0, 0, 0.3, 2")
    # Other thresholds: probabilities stay well away from the threshold, so any correct comparison agrees.
    for threshold in (0.8, 0.2, 0.6, 0.05):
        _expect_labels(predict, model, X, threshold, f"predict(model, X, threshold={threshold})")
    # More configurations: a wider input, a two-layer network, one row.
    generator = torch.Generator().manual_seed(3)
    torch.manual_seed(11)
    deep = nn.Sequential(nn.Linear(7, 16), nn.ReLU(), nn.Linear(16, 1))
    X7 = torch.randn(40, 7, generator=generator) * 3
    probs = _reference_probs(deep, X7)
    for threshold in (0.5, 0.3, 0.7):
        keep = (probs - threshold).abs() > 1e-3
        _expect_labels(predict, deep, X7[keep], threshold,
                       f"predict(model, X, threshold={threshold}) for a 2-layer network and 7 features")
    _expect_labels(predict, deep, X7[:1], None, "predict(model, X) for a single row")
    # Two models on the same rows must give each model's own labels.
    flipped = _linear([-1.0, 0.0], 0.0)
    _expect_labels(predict, flipped, X, None, "predict(model, X) for a second model (logits 2, 0.3, 0, 0, -0.3, -2)")


def _reference_probs(model, X):
    with torch.no_grad():
        return torch.sigmoid(model(X).squeeze(1))


@student_check
def check_predict_mode(predict) -> None:
    """predict runs the model in eval mode without a graph, deterministically, and returns CPU labels."""
    torch.manual_seed(5)
    inner = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 1))
    spy = _Spy(inner)
    spy.train()
    X = torch.randn(64, 2, generator=torch.Generator().manual_seed(4)) * 2
    what = "predict(model, X) for a model with dropout that starts in training mode"
    first = _labels(predict, spy, X, None, what)
    expect(len(spy.calls) > 0, f"{what} never called the model.", "at least one call of model(X)", "none",
           "compute the logits with model(X) on the model you are given, not a global model.")
    expect(
        not any(c["training"] or c["inner_training"] for c in spy.calls),
        f"{what} ran the model in training mode, so dropout changed the logits.",
        "model.training == False during the forward pass",
        "model.training == True",
        f"call model.eval() before computing the logits ({LECTURE}, 'Switching off the training machinery').",
    )
    expect(
        not any(c["grad"] for c in spy.calls),
        f"{what} built a computation graph (gradients were enabled during the forward pass).",
        "torch.is_grad_enabled() == False inside predict",
        "True",
        f"wrap the forward pass in `with torch.no_grad():` or `with torch.inference_mode():` "
        f"({LECTURE}, 'Switching off the training machinery').",
    )
    second = _labels(predict, spy, X, None, what + " (second call)")
    expect(torch.equal(first, second), f"{what} gave different labels on two calls with the same X.",
           first.tolist(), second.tolist(), "call model.eval() so dropout is switched off.")
    expected = _reference(inner, X, 0.5)
    expect(torch.equal(first, expected), f"{what} gave wrong labels.", expected.tolist(), first.tolist(),
           "labels are 1 where torch.sigmoid(model(X)) >= threshold, computed in eval mode.")
    if torch.cuda.is_available():
        _check_device(predict)


def _check_device(predict) -> None:
    """On a GPU machine: the model runs on `device` and the labels come back on the CPU."""
    torch.manual_seed(6)
    spy = _Spy(nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1)))
    X = torch.randn(10, 3, generator=torch.Generator().manual_seed(6))
    what = 'predict(model, X, device="cuda") for a model and X on the CPU'
    y_hat = call(predict, spy, X, device="cuda", what=what)
    expect(all(c["device"].type == "cuda" for c in spy.calls) and spy.calls, f"{what} did not run on the GPU.",
           "cuda", [c["device"] for c in spy.calls], "move the model and X with .to(device).")
    expect(isinstance(y_hat, torch.Tensor) and y_hat.device.type == "cpu",
           f"{what} returned labels that are not on the CPU.", "cpu",
           getattr(y_hat, "device", type(y_hat).__name__), "finish with .cpu().")
    spy.to("cpu")


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
            f"{what} returned {name} as {type(value).__name__}, not a Python float.",
            "float",
            type(value).__name__,
            "turn a one-element tensor into a float with .item() or float(...).",
        )
        expect(not math.isnan(value), f"{what} returned {name} = nan.", "0.0 when nothing is counted", value,
               "when the denominator is 0 (no predicted positives, or no actual positives) return 0.0.")


@student_check
def check_precision_recall(precision_recall) -> None:
    """precision_recall(y_hat, y) -> (precision, recall) as floats; 0.0 when a denominator is 0."""
    generator = torch.Generator().manual_seed(8)
    cases = [
        ("y_hat = [1, 1, 0, 1, 0, 0, 1], y = [1, 0, 0, 1, 1, 0, 1]",
         torch.tensor([1, 1, 0, 1, 0, 0, 1]), torch.tensor([1, 0, 0, 1, 1, 0, 1])),
        ("y_hat = [1, 1, 1, 0, 0], y = [1, 0, 0, 0, 1]", torch.tensor([1, 1, 1, 0, 0]), torch.tensor([1, 0, 0, 0, 1])),
        ("y_hat = [1, 0, 0, 0], y = [1, 1, 1, 0]", torch.tensor([1, 0, 0, 0]), torch.tensor([1, 1, 1, 0])),
        ("y_hat all 0 (no predicted positives)", torch.zeros(6, dtype=torch.long), torch.tensor([1, 0, 1, 0, 0, 1])),
        ("y all 0 (no actual positives)", torch.tensor([1, 0, 1, 0]), torch.zeros(4, dtype=torch.long)),
        ("200 random labels", torch.randint(0, 2, (200,), generator=generator),
         torch.randint(0, 2, (200,), generator=generator)),
    ]
    for name, y_hat, y in cases:
        what = f"precision_recall(y_hat, y) for {name}"
        result = call(precision_recall, y_hat.clone(), y.clone(), what=what)
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
