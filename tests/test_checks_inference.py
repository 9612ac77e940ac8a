"""Do the hidden checks of exercise 06 accept correct code and explain each wrong answer?"""

import ast
import copy
import inspect
import json
import math
import time

import pytest
import torch
from check_helpers import fails_with as _fails_with
from check_helpers import observed as _observed
from mutant_bank.bank_06_inference import CORRECT_THRESHOLD, FORGES_GRAD_MODE, THRESHOLD_MISTAKES
from mutant_bank.grading import reference_answers

from grader import observation
from grader.checks import inference
from grader.observers import inference as observers

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


def with_float64_probabilities(model, X, threshold=0.5, device="cpu"):
    model.eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(X.to(device)).double()).squeeze(1)
    return (probs >= threshold).long().cpu()


def with_math_logit(model, X, threshold=0.5, device="cpu"):
    model.eval()
    with torch.no_grad():
        logits = model(X.to(device))[:, 0]
    return (logits >= math.log(threshold / (1 - threshold))).long().cpu()


def not_below(model, X, threshold=0.5, device="cpu"):
    model.eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(X.to(device))).flatten()
    return 1 - (probs < threshold).long().cpu()


RIGHT = [reference, with_inference_mode, with_logit_threshold, with_where, restoring_mode,
         with_float64_probabilities, with_math_logit, not_below]


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


# Fixed weights: a randomly initialised global model sometimes happens to give all-0 or all-1 labels.
_GLOBAL_MODEL = torch.nn.Linear(2, 1)
with torch.no_grad():
    _GLOBAL_MODEL.weight.copy_(torch.tensor([[0.3, -0.8]]))
    _GLOBAL_MODEL.bias.fill_(0.1)


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


# observers and judges ---------------------------------------------------------------------------

@pytest.mark.parametrize("observe, candidates", [
    (observers.observe_predict_labels, [reference, returns_list, returns_bool, crashes, global_model]),
    (observers.observe_predict_mode, [reference, no_eval, builds_graph, zeros]),
    (observers.observe_precision_recall, [pr_reference, _nan, _tensors, lambda y_hat, y: [1.0, 1.0]]),
], ids=["predict_labels", "predict_mode", "precision_recall"])
def test_observations_are_strict_json(observe, candidates):
    """Does every observer's record (right or wrong code, nan included) survive strict JSON?"""
    for candidate in candidates:
        text = observation.as_json(observe(candidate))
        assert json.loads(text), f"{observe.__name__} recorded nothing for {candidate}"


def test_observers_import_no_judge_and_keep_the_global_seed():
    """Do the observers stay free of grader.checks, and leave the kernel's random state as they found it?"""
    tree = ast.parse(inspect.getsource(observers))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not any(name.startswith("grader.checks") for name in imported), \
        f"the observer imports a judge, which a grading kernel must not contain: {sorted(imported)}"
    torch.manual_seed(123)
    before = torch.get_rng_state()
    observers.observe_predict_labels(reference)
    observers.observe_predict_mode(reference)
    assert torch.equal(before, torch.get_rng_state()), "an observer changed the kernel's global random state"


def test_predict_labels_judge_rejects_forged_observations():
    """Are labels that are not the right model's labels, or missing calls, rejected however they were produced?"""
    right = _observed(inference.check_predict_labels, reference)
    inference.judge_predict_labels(copy.deepcopy(right))

    # A predict that ignores its model: the second model gets the first model's labels.
    forged = copy.deepcopy(right)
    forged["calls"][-1] = forged["calls"][0]
    _fails_with(inference.judge_predict_labels, forged, "for a second model", "wrong labels")

    # Right labels for the easy calls only: the calls it could not answer are left out.
    forged = copy.deepcopy(right)
    forged["calls"] = forged["calls"][:3]
    _fails_with(inference.check_predict_labels.judge, forged, "could not read", "calls should hold 13 items, not 3")

    # One label flipped in the 2-layer network's rows.
    forged = copy.deepcopy(right)
    labels = observation.decode(forged["calls"][7]["value"]).clone()
    labels[0] = 1 - labels[0]
    forged["calls"][7] = {"value": observation.encode(labels)}
    _fails_with(inference.judge_predict_labels, forged, "2-layer network", "wrong labels")

    # The right values claimed from the GPU, or as a plain list.
    forged = copy.deepcopy(right)
    forged["calls"][0]["value"]["__tensor__"]["device"] = "cuda"
    _fails_with(inference.judge_predict_labels, forged, "not on the CPU")
    forged = copy.deepcopy(right)
    forged["calls"][0] = {"value": observation.encode([0, 0, 1, 1, 1, 1])}
    _fails_with(inference.judge_predict_labels, forged, "torch.Tensor", "list")


def _tiny_case():
    """The index and case of the labels check's call whose logits sit a hair from 0."""
    (found,) = [(i, case) for i, case in enumerate(observers.label_cases()) if "-1.5e-07" in case.what]
    return found


def test_float32_sliver_exists_here():
    """Is the premise of the tiny-logit case true on this machine: sigmoid rounds a logit of -1.5e-7 to 0.5?"""
    _, case = _tiny_case()
    logits = case.model(case.X).detach().squeeze(1)
    assert torch.equal(logits, torch.tensor(observers.TINY_LOGITS)), "the case's model should pass X through exactly"
    disagree = inference.either_rule(logits, 0.5)
    assert disagree.tolist() == [True, True, False, False, False, False], (
        f"p >= 0.5 and logit >= 0 disagree on rows {disagree.tolist()} of logits {observers.TINY_LOGITS}"
    )


def test_predict_labels_judge_accepts_either_rule_only_in_the_sliver():
    """Are both labels accepted for logits just below 0 (where sigmoid rounds to 0.5), and only there?"""
    index, _ = _tiny_case()
    right = _observed(inference.check_predict_labels, reference)
    by_probability = observation.decode(right["calls"][index]["value"])
    assert by_probability.tolist() == [1, 1, 1, 1, 0, 1]

    by_logit = by_probability.clone()
    by_logit[:2] = 0
    forged = copy.deepcopy(right)
    forged["calls"][index] = {"value": observation.encode(by_logit)}
    inference.judge_predict_labels(forged)

    for row in (2, 3, 4, 5):  # logits 0 and 1e-8 (p is exactly 0.5: label 1), -1e-6 and 1e-6
        wrong = by_probability.clone()
        wrong[row] = 1 - wrong[row]
        forged = copy.deepcopy(right)
        forged["calls"][index] = {"value": observation.encode(wrong)}
        _fails_with(inference.judge_predict_labels, forged, "-1.5e-07", "wrong labels")


def test_predict_mode_judge_rejects_forged_observations():
    """Is a predict without model.eval() caught by its labels even when its spy records are faked?"""
    right = _observed(inference.check_predict_mode, reference)
    inference.judge_predict_mode(copy.deepcopy(right))

    # Training-mode labels with forward records claiming eval mode and no graph.
    forged = _observed(inference.check_predict_mode, no_eval)
    for call in forged["calls"]:
        call["forwards"] = copy.deepcopy(right["calls"][0]["forwards"])
    forged["calls"][1]["result"] = forged["calls"][0]["result"]
    _fails_with(inference.judge_predict_mode, forged, "wrong labels", "eval mode")

    # All-zero labels with a forged record of the model being called.
    forged = _observed(inference.check_predict_mode, zeros)
    for call in forged["calls"]:
        call["forwards"] = copy.deepcopy(right["calls"][0]["forwards"])
    _fails_with(inference.judge_predict_mode, forged, "wrong labels")

    # A record of a forward pass that does not say it ran in eval mode counts as training mode.
    forged = copy.deepcopy(right)
    forged["calls"][0]["forwards"] = [{"training": [], "grad": False, "device": "cpu", "graph": False}]
    _fails_with(inference.judge_predict_mode, forged, "training mode")

    # A GPU kernel that reports no call with device="cuda".
    forged = copy.deepcopy(right)
    forged["cuda"] = True
    forged.pop("device_calls", None)
    _fails_with(inference.check_predict_mode.judge, forged, "could not read", "device_calls is missing")


def test_precision_recall_judge_rejects_forged_observations():
    """Are wrong values, lying floats and missing calls rejected from the observation alone?"""
    right = _observed(inference.check_precision_recall, pr_reference)
    inference.judge_precision_recall(copy.deepcopy(right))

    forged = copy.deepcopy(right)
    forged["calls"][-1] = {"value": observation.encode((0.5, 0.5))}
    _fails_with(inference.judge_precision_recall, forged, "200 random labels", "wrong values")

    class AlwaysEqual(float):
        def __eq__(self, other):
            return True

    forged = copy.deepcopy(right)
    forged["calls"][0] = {"value": observation.encode((AlwaysEqual(0.0), AlwaysEqual(0.0)))}
    _fails_with(inference.judge_precision_recall, forged, "not a Python float", "AlwaysEqual")

    forged = copy.deepcopy(right)
    forged["calls"] = forged["calls"][:5]
    _fails_with(inference.check_precision_recall.judge, forged, "could not read", "calls should hold 6 items, not 5")


def test_predict_mode_judge_on_a_gpu_kernel():
    """Without a GPU here: is the judge's device="cuda" branch right about what a GPU kernel would report?"""
    def on_cpu(model, X, threshold=0.5, device="cpu"):
        return reference(model, X, threshold)

    right = _observed(inference.check_predict_mode, reference)
    right["cuda"] = True
    right["device_calls"] = [json.loads(observation.as_json(observers._observe_on_gpu(on_cpu)))]
    ignored_device = copy.deepcopy(right)
    _fails_with(inference.judge_predict_mode, ignored_device, "did not run on the GPU")

    for forward in right["device_calls"][0]["forwards"]:
        forward["device"] = "cuda"
    inference.judge_predict_mode(copy.deepcopy(right))

    left_on_gpu = copy.deepcopy(right)
    left_on_gpu["device_calls"][0]["result"]["value"]["__tensor__"]["device"] = "cuda"
    _fails_with(inference.judge_predict_mode, left_on_gpu, "not on the CPU")

    wrong = copy.deepcopy(right)
    wrong["device_calls"][0]["result"] = {"value": observation.encode(torch.zeros(10, dtype=torch.long))}
    _fails_with(inference.judge_predict_mode, wrong, 'device="cuda"', "wrong labels")


# Issue 17: a predict that patches torch.is_grad_enabled cannot forge the "no graph" record ------------------


def test_patched_grad_mode_cannot_forge_the_no_graph_check():
    """A predict that builds a graph while torch.is_grad_enabled says False (and detaches its labels) still fails:
    the spy reads torch's own function, saved before student code ran, and whether the model's output requires
    grad."""
    namespace = {"torch": torch}
    exec(FORGES_GRAD_MODE, namespace)
    observed = _observed(inference.check_predict_mode, namespace["predict"])
    assert torch.is_grad_enabled is torch._C.is_grad_enabled
    forwards = [f for call in observed["calls"] for f in call["forwards"]]
    assert forwards and all(f["grad"] is True and f["graph"] is True for f in forwards), forwards
    _fails_with(inference.judge_predict_mode, observed, "computation graph")


def test_a_forward_record_without_the_graph_flag_fails():
    """A forward record that says no grad but omits whether the output was part of a graph is not a pass."""
    right = _observed(inference.check_predict_mode, reference)
    for call in right["calls"]:
        for forward in call["forwards"]:
            forward.pop("graph")
    _fails_with(inference.judge_predict_mode, right, "computation graph")


# choose_threshold ---------------------------------------------------------------------------------------


def _threshold(cell):
    namespace = {"torch": torch}
    exec(cell, namespace)
    return namespace["choose_threshold"]


THRESHOLD_RIGHT = [("reference", reference_answers("06_inference")["choose_threshold"]), *CORRECT_THRESHOLD.items()]


@pytest.mark.parametrize("name, cell", THRESHOLD_RIGHT, ids=[n for n, _ in THRESHOLD_RIGHT])
def test_choose_threshold_accepts_correct_variants(name, cell):
    """Is every threshold that reaches the lowest cost accepted (a probability, a midpoint, a cumulative scan)?"""
    inference.check_choose_threshold(_threshold(cell))


@pytest.mark.parametrize("name", sorted(THRESHOLD_MISTAKES))
def test_choose_threshold_explains_each_mistake(name):
    """Does each wrong threshold fail with a message naming the mistake?"""
    cell, fragment, _notebook_fragment = THRESHOLD_MISTAKES[name]
    _fails_with(inference.check_choose_threshold, _threshold(cell), fragment)


@pytest.mark.parametrize("seed", range(20))
def test_choose_threshold_passes_under_any_global_seed(seed):
    torch.manual_seed(seed)
    inference.check_choose_threshold(_threshold(THRESHOLD_RIGHT[0][1]))


def test_every_threshold_case_has_a_point():
    """Does each case test something: a grid of 0.01 misses the close case, and the extreme cases need t = 0 or
    a t above every probability?"""
    cases = observers.threshold_cases()
    close = cases[4]
    grid = min(inference.cost(close.probs, close.y, i / 100, **close.costs) for i in range(101))
    assert grid > inference.best_cost(close.probs, close.y, **close.costs)
    assert inference.best_cost(cases[6].probs, cases[6].y) == 0 and cases[6].probs.max() < 1
    assert len({tuple(c.costs.items()) for c in cases}) >= 4


def test_choose_threshold_judge_recomputes_the_cost():
    """A record of a plausible threshold that is not the cheapest fails; the judge never trusts a reported cost."""
    observed = _observed(inference.check_choose_threshold, _threshold(THRESHOLD_RIGHT[0][1]))
    inference.judge_choose_threshold(copy.deepcopy(observed))
    observed["calls"][0]["value"] = 0.5
    _fails_with(inference.judge_choose_threshold, observed, "cost is not the lowest")
    observed["calls"].pop()
    _fails_with(inference.check_choose_threshold.judge, observed, "could not read", "calls should hold")
