"""Do the hidden checks of exercise 06 accept correct code and explain each wrong answer?"""

import time

import pytest
import torch

from grader.checks import inference
from grader.checks.report import CheckFailed


def _fails_with(check, candidate, *fragments):
    with pytest.raises(CheckFailed) as failure:
        check(candidate)
    for fragment in fragments:
        assert fragment in str(failure.value), f"message lacks {fragment!r}:\n{failure.value}"
    return str(failure.value)


# predict: right ---------------------------------------------------------------------------------

def reference(model, X, threshold=0.5, device="cpu"):
    model = model.to(device)
    model.eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(X.to(device))).squeeze(1)
    return (probs >= threshold).long().cpu()


def with_inference_mode(model, X, threshold=0.5, device="cpu"):
    model.to(device).eval()
    with torch.inference_mode():
        logits = model(X.to(device))
    return (torch.sigmoid(logits) >= threshold).long().flatten().cpu()


def with_logit_threshold(model, X, threshold=0.5, device="cpu"):
    model.eval()
    model.to(device)
    with torch.no_grad():
        logits = model(X.to(device)).squeeze(1)
        return (logits >= torch.logit(torch.tensor(threshold))).to(torch.int64).cpu()


def with_where(model, X, threshold=0.5, device="cpu"):
    model.eval()
    with torch.no_grad():
        p = model.to(device)(X.to(device)).sigmoid().view(-1)
    return torch.where(p >= threshold, 1, 0).to("cpu")


def restoring_mode(model, X, threshold=0.5, device="cpu"):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            probs = torch.sigmoid(model.to(device)(X.to(device)))[:, 0]
    finally:
        model.train(was_training)
    return (probs >= threshold).long().cpu()


RIGHT = [reference, with_inference_mode, with_logit_threshold, with_where, restoring_mode]


@pytest.mark.parametrize("right", RIGHT, ids=lambda f: f.__name__)
def test_predict_accepts_correct_variants(right):
    """Is every correct predict accepted by both predict checks however it is written?"""
    inference.check_predict_labels(right)
    inference.check_predict_mode(right)


@pytest.mark.parametrize("seed", range(20))
def test_reference_passes_under_any_global_seed(seed):
    """Does the reference pass whatever the global seed was before the checks?"""
    torch.manual_seed(seed)
    inference.check_predict_labels(reference)
    inference.check_predict_mode(reference)


def test_predict_checks_are_fast():
    """Do both predict checks together run in well under a second?"""
    start = time.perf_counter()
    inference.check_predict_labels(reference)
    inference.check_predict_mode(reference)
    assert time.perf_counter() - start < 1.5


# predict: wrong ---------------------------------------------------------------------------------

def strict_greater(model, X, threshold=0.5, device="cpu"):
    model.eval()
    with torch.no_grad():
        return (torch.sigmoid(model(X)).squeeze(1) > threshold).long()


def rounds(model, X, threshold=0.5, device="cpu"):
    model.eval()
    with torch.no_grad():
        return torch.round(torch.sigmoid(model(X))).squeeze(1).long()


def logits_vs_threshold(model, X, threshold=0.5, device="cpu"):
    model.eval()
    with torch.no_grad():
        return (model(X).squeeze(1) >= threshold).long()


def ignores_threshold(model, X, threshold=0.5, device="cpu"):
    model.eval()
    with torch.no_grad():
        return (torch.sigmoid(model(X)).squeeze(1) >= 0.5).long()


def returns_probabilities(model, X, threshold=0.5, device="cpu"):
    model.eval()
    with torch.no_grad():
        return torch.sigmoid(model(X)).squeeze(1)


def returns_bool(model, X, threshold=0.5, device="cpu"):
    model.eval()
    with torch.no_grad():
        return torch.sigmoid(model(X)).squeeze(1) >= threshold


def returns_column(model, X, threshold=0.5, device="cpu"):
    model.eval()
    with torch.no_grad():
        return (torch.sigmoid(model(X)) >= threshold).long()


def returns_float_labels(model, X, threshold=0.5, device="cpu"):
    model.eval()
    with torch.no_grad():
        return (torch.sigmoid(model(X)).squeeze(1) >= threshold).float()


def returns_list(model, X, threshold=0.5, device="cpu"):
    return reference(model, X, threshold).tolist()


def no_eval(model, X, threshold=0.5, device="cpu"):
    with torch.no_grad():
        return (torch.sigmoid(model(X)).squeeze(1) >= threshold).long()


def builds_graph(model, X, threshold=0.5, device="cpu"):
    model.eval()
    return (torch.sigmoid(model(X)).squeeze(1) >= threshold).long()


def zeros(model, X, threshold=0.5, device="cpu"):
    return torch.zeros(X.shape[0], dtype=torch.long)


_GLOBAL_MODEL = torch.nn.Linear(2, 1)


def global_model(model, X, threshold=0.5, device="cpu"):
    _GLOBAL_MODEL.eval()
    with torch.no_grad():
        return (torch.sigmoid(_GLOBAL_MODEL(X[:, :2])).squeeze(1) >= threshold).long()


def crashes(model, X, threshold=0.5, device="cpu"):
    return model(X).numpy()


@pytest.mark.parametrize("wrong, fragments", [
    (strict_greater, ["wrong labels", "use >="]),
    (rounds, ["wrong labels", "torch.round"]),
    (logits_vs_threshold, ["wrong labels", "raw logits"]),
    (ignores_threshold, ["threshold=0.8", "ignore the threshold"]),
    (returns_probabilities, ["probabilities"]),
    (returns_bool, ["bool", ".long()"]),
    (returns_column, ["one column per row", "squeeze"]),
    (returns_float_labels, ["float labels", ".long()"]),
    (returns_list, ["torch.Tensor", "list"]),
    (zeros, ["wrong labels", "every label is 0"]),
    (global_model, ["wrong labels", "not a global model"]),
    (crashes, ["raised RuntimeError"]),
])
def test_predict_labels_explains_mistakes(wrong, fragments):
    """Does each wrong predict fail the labels check with a message naming the mistake?"""
    _fails_with(inference.check_predict_labels, wrong, *fragments)


@pytest.mark.parametrize("wrong, fragments", [
    (no_eval, ["training mode", "model.eval()"]),
    (builds_graph, ["computation graph", "torch.no_grad()"]),
    (zeros, ["never called the model"]),
    (global_model, ["never called the model"]),
    (returns_column, ["one column per row"]),
])
def test_predict_mode_explains_mistakes(wrong, fragments):
    """Does each predict that runs the model the wrong way fail the mode check with a useful message?"""
    _fails_with(inference.check_predict_mode, wrong, *fragments)


def test_not_implemented_passes_through_unchanged():
    """Does an unsolved stub still raise NotImplementedError, not a check failure?"""
    def stub(*args, **kwargs):
        raise NotImplementedError("Replace this line")

    for check in (inference.check_predict_labels, inference.check_predict_mode, inference.check_precision_recall):
        with pytest.raises(NotImplementedError):
            check(stub)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_predict_on_gpu_must_return_cpu_labels():
    """On a GPU machine, is a predict that leaves its labels on the GPU caught?"""
    inference.check_predict_mode(reference)

    def stays_on_device(model, X, threshold=0.5, device="cpu"):
        model.to(device).eval()
        with torch.no_grad():
            return (torch.sigmoid(model(X.to(device))).squeeze(1) >= threshold).long()

    _fails_with(inference.check_predict_mode, stays_on_device, "not on the CPU")


# precision_recall -------------------------------------------------------------------------------

def pr_reference(y_hat, y):
    tp = ((y_hat == 1) & (y == 1)).sum().item()
    fp = ((y_hat == 1) & (y == 0)).sum().item()
    fn = ((y_hat == 0) & (y == 1)).sum().item()
    return (tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0)


def pr_with_masks(y_hat, y):
    predicted, actual = y_hat == 1, y == 1
    tp = (predicted & actual).sum()
    precision = (tp / predicted.sum()).item() if predicted.any() else 0.0
    recall = (tp / actual.sum()).item() if actual.any() else 0.0
    return precision, recall


def pr_with_loops(y_hat, y):
    pairs = list(zip(y_hat.tolist(), y.tolist(), strict=True))
    tp = sum(1 for p, t in pairs if p == 1 and t == 1)
    predicted = sum(p for p, _ in pairs)
    actual = sum(t for _, t in pairs)
    return (tp / predicted if predicted else 0.0), (tp / actual if actual else 0.0)


@pytest.mark.parametrize("right", [pr_reference, pr_with_masks, pr_with_loops], ids=lambda f: f.__name__)
def test_precision_recall_accepts_correct_variants(right):
    """Are counting, masks and plain loops all accepted?"""
    inference.check_precision_recall(right)


def _swapped(y_hat, y):
    precision, recall = pr_reference(y_hat, y)
    return recall, precision


def _unguarded(y_hat, y):
    tp = ((y_hat == 1) & (y == 1)).sum().item()
    return tp / (y_hat == 1).sum().item(), tp / (y == 1).sum().item()


def _tensors(y_hat, y):
    tp = ((y_hat == 1) & (y == 1)).sum()
    return tp / (y_hat == 1).sum().clamp(min=1), tp / (y == 1).sum().clamp(min=1)


def _nan(y_hat, y):
    tp = ((y_hat == 1) & (y == 1)).sum()
    return (tp / (y_hat == 1).sum()).item(), (tp / (y == 1).sum()).item()


def _accuracy(y_hat, y):
    accuracy = (y_hat == y).float().mean().item()
    return accuracy, accuracy


@pytest.mark.parametrize("wrong, fragments", [
    (_swapped, ["wrong values", "swapped"]),
    (_unguarded, ["raised ZeroDivisionError"]),
    (_tensors, ["not a Python float", ".item()"]),
    (_nan, ["nan", "return 0.0"]),
    (_accuracy, ["wrong values", "accuracy"]),
    (lambda y_hat, y: [1.0, 1.0], ["tuple (precision, recall)"]),
])
def test_precision_recall_explains_mistakes(wrong, fragments):
    """Does each wrong precision_recall fail with a message naming the mistake?"""
    _fails_with(inference.check_precision_recall, wrong, *fragments)
