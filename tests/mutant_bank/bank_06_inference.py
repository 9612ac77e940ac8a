from mutant_bank import Correct, Mutant

ASSIGNMENT = "06_inference"


def _predict(body: str) -> str:
    return 'def predict(model, X, threshold=0.5, device="cpu"):\n' + body


MUTANTS = [
    Mutant(
        name="strict_greater_than",
        cells={"predict": _predict("""
    model.to(device).eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(X.to(device))).squeeze(1)
    return (probs > threshold).long().cpu()
""")},
        loses={"test_predict_labels": "logit 0 -> probability 0.5 -> 1"},
    ),
    Mutant(
        name="torch_round",
        cells={"predict": _predict("""
    model.to(device).eval()
    with torch.no_grad():
        return torch.round(torch.sigmoid(model(X.to(device)))).squeeze(1).long().cpu()
""")},
        loses={"test_predict_labels": "logit 0 -> probability 0.5 -> 1"},
    ),
    Mutant(
        name="threshold_on_logits",
        cells={"predict": _predict("""
    model.to(device).eval()
    with torch.no_grad():
        logits = model(X.to(device)).squeeze(1)
    return (logits >= threshold).long().cpu()
""")},
        loses={"test_predict_labels": "expected [0, 1, 1, 1]"},
    ),
    Mutant(
        name="strict_greater_on_logits",
        cells={"predict": _predict("""
    model.to(device).eval()
    with torch.no_grad():
        logits = model(X.to(device)).squeeze(1)
    return (logits > torch.logit(torch.tensor(threshold))).long().cpu()
""")},
        loses={"test_predict_labels": "logit 0 -> probability 0.5 -> 1"},
    ),
    Mutant(
        name="ignores_threshold",
        cells={"predict": _predict("""
    model.to(device).eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(X.to(device))).squeeze(1)
    return (probs >= 0.5).long().cpu()
""")},
        loses={"test_predict_labels": "threshold=0.7 should give [0, 0, 0, 1]"},
    ),
    Mutant(
        name="returns_probabilities",
        cells={"predict": _predict("""
    model.to(device).eval()
    with torch.no_grad():
        return torch.sigmoid(model(X.to(device))).squeeze(1).cpu()
""")},
        loses={"test_predict_labels": "expected int64 labels, got torch.float32"},
    ),
    Mutant(
        name="returns_bool",
        cells={"predict": _predict("""
    model.to(device).eval()
    with torch.no_grad():
        return (torch.sigmoid(model(X.to(device))).squeeze(1) >= threshold).cpu()
""")},
        loses={"test_predict_labels": "got torch.bool"},
    ),
    Mutant(
        name="returns_int32",
        cells={"predict": _predict("""
    model.to(device).eval()
    with torch.no_grad():
        return (torch.sigmoid(model(X.to(device))).squeeze(1) >= threshold).int().cpu()
""")},
        loses={"test_predict_labels": "got torch.int32"},
    ),
    Mutant(
        name="returns_column",
        cells={"predict": _predict("""
    model.to(device).eval()
    with torch.no_grad():
        return (torch.sigmoid(model(X.to(device))) >= threshold).long().cpu()
""")},
        loses={"test_predict_labels": "expected shape (4,), got (4, 1)"},
    ),
    Mutant(
        name="squeeze_without_dim",
        cells={"predict": _predict("""
    model.to(device).eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(X.to(device))).squeeze()
    return (probs >= threshold).long().cpu()
""")},
        loses={"test_predict_labels": "for a single row has the wrong shape"},
    ),
    Mutant(
        name="no_eval",
        cells={"predict": _predict("""
    model.to(device)
    with torch.no_grad():
        probs = torch.sigmoid(model(X.to(device))).squeeze(1)
    return (probs >= threshold).long().cpu()
""")},
        loses={"test_predict_mode": "model.eval()"},
    ),
    Mutant(
        name="builds_graph",
        cells={"predict": _predict("""
    model.to(device).eval()
    probs = torch.sigmoid(model(X.to(device))).squeeze(1)
    return (probs >= threshold).long().cpu()
""")},
        loses={"test_predict_mode": "built a computation graph"},
    ),
    Mutant(
        name="uses_global_model",
        cells={"predict": """
def predict(net, X, threshold=0.5, device="cpu"):
    model.to(device).eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(X.to(device))).squeeze(1)
    return (probs >= threshold).long().cpu()
"""},
        loses={"test_predict_labels": "shapes cannot be multiplied", "test_predict_mode": "never called the model"},
    ),
    Mutant(
        name="all_zeros",
        cells={"predict": _predict("""
    return torch.zeros(len(X), dtype=torch.long)
""")},
        loses={"test_predict_labels": "expected [0, 1, 1, 1]", "test_predict_mode": "accuracy on the moons is only"},
    ),
    Mutant(
        name="precision_recall_swapped",
        cells={"precision_recall": """
def precision_recall(y_hat, y):
    tp = ((y_hat == 1) & (y == 1)).sum().item()
    predicted, actual = (y_hat == 1).sum().item(), (y == 1).sum().item()
    return (tp / actual if actual else 0.0), (tp / predicted if predicted else 0.0)
"""},
        loses={"test_precision_recall": "precision should be 1/3"},
    ),
    Mutant(
        name="precision_recall_tensors",
        cells={"precision_recall": """
def precision_recall(y_hat, y):
    tp = ((y_hat == 1) & (y == 1)).sum()
    return tp / (y_hat == 1).sum().clamp(min=1), tp / (y == 1).sum().clamp(min=1)
"""},
        loses={"test_precision_recall": "return two Python floats"},
    ),
    Mutant(
        name="precision_recall_nan_when_nothing_predicted",
        cells={"precision_recall": """
def precision_recall(y_hat, y):
    tp = ((y_hat == 1) & (y == 1)).sum()
    return (tp / (y_hat == 1).sum()).item(), (tp / (y == 1).sum()).item()
"""},
        loses={"test_precision_recall": "with no predicted positives, precision should be 0.0"},
    ),
    Mutant(
        name="recall_divides_by_zero",
        cells={"precision_recall": """
def precision_recall(y_hat, y):
    tp = ((y_hat == 1) & (y == 1)).sum().item()
    predicted = (y_hat == 1).sum().item()
    precision = tp / predicted if predicted else 0.0
    return precision, tp / (y == 1).sum().item()
"""},
        loses={"test_precision_recall": "raised ZeroDivisionError"},
    ),
    Mutant(
        name="precision_recall_is_accuracy",
        cells={"precision_recall": """
def precision_recall(y_hat, y):
    accuracy = (y_hat == y).float().mean().item()
    return accuracy, accuracy
"""},
        loses={"test_precision_recall": "precision should be 1/3"},
    ),
]

CORRECT = [
    Correct(
        name="inference_mode_and_masks",
        cells={
            "predict": _predict("""
    model.to(device).eval()
    with torch.inference_mode():
        logits = model(X.to(device))
    return (torch.sigmoid(logits) >= threshold).long().flatten().cpu()
"""),
            "precision_recall": """
def precision_recall(y_hat, y):
    predicted, actual = y_hat == 1, y == 1
    tp = (predicted & actual).sum()
    precision = (tp / predicted.sum()).item() if predicted.any() else 0.0
    recall = (tp / actual.sum()).item() if actual.any() else 0.0
    return precision, recall
""",
        },
    ),
    Correct(
        name="logit_threshold",
        cells={"predict": _predict("""
    model.eval()
    model.to(device)
    with torch.no_grad():
        logits = model(X.to(device)).squeeze(1)
        return (logits >= torch.logit(torch.tensor(threshold))).to(torch.int64).cpu()
""")},
    ),
    Correct(
        name="torch_where_and_loops",
        cells={
            "predict": _predict("""
    model.eval()
    with torch.no_grad():
        p = model.to(device)(X.to(device)).sigmoid().view(-1)
    return torch.where(p >= threshold, 1, 0).to("cpu")
"""),
            "precision_recall": """
def precision_recall(y_hat, y):
    pairs = list(zip(y_hat.tolist(), y.tolist()))
    tp = sum(1 for p, t in pairs if p == 1 and t == 1)
    predicted = sum(p for p, _ in pairs)
    actual = sum(t for _, t in pairs)
    return (tp / predicted if predicted else 0.0), (tp / actual if actual else 0.0)
""",
        },
    ),
    Correct(
        name="restores_training_mode",
        cells={"predict": _predict("""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            probs = torch.sigmoid(model.to(device)(X.to(device)))[:, 0]
    finally:
        model.train(was_training)
    return (probs >= threshold).long().cpu()
""")},
    ),
    # In float32, p >= 0.5 and logit >= 0 disagree for logits in about (-1.8e-7, 0): all three are right.
    Correct(
        name="float64_probabilities",
        cells={"predict": _predict("""
    model.to(device).eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(X.to(device)).double()).squeeze(1)
    return (probs >= threshold).long().cpu()
""")},
    ),
    Correct(
        name="math_log_odds_threshold",
        cells={"predict": "import math\n\n" + _predict("""
    model.to(device).eval()
    with torch.no_grad():
        logits = model(X.to(device))[:, 0]
    return (logits >= math.log(threshold / (1 - threshold))).long().cpu()
""")},
    ),
    Correct(
        name="one_minus_below",
        cells={"predict": _predict("""
    model.to(device).eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(X.to(device))).flatten()
    return 1 - (probs < threshold).long().cpu()
""")},
    ),
]

# Issue 17's attack: a predict that builds a graph while torch.is_grad_enabled claims it does not, and detaches
# the labels so that they look clean. The spy reads torch's own function, saved before any student code ran.
FORGES_GRAD_MODE = _predict("""
    model.to(device).eval()
    real = torch.is_grad_enabled
    torch.is_grad_enabled = lambda: False
    try:
        probs = torch.sigmoid(model(X.to(device))).squeeze(1)
    finally:
        torch.is_grad_enabled = real
    return (probs >= threshold).long().detach().cpu()
""")
MUTANTS.append(Mutant(name="forges_grad_mode", cells={"predict": FORGES_GRAD_MODE},
                      loses={"test_predict_mode": "built a computation graph"}))

# Part D, choose_threshold: a whole answer cell, the hidden check's message fragment, the notebook's fragment.
_THRESHOLD = "def choose_threshold(probs, y, cost_fn=10.0, cost_fp=1.0):\n"
_SCAN = """
    best_t, best_cost = 1.0, None
    for t in CANDIDATES:
        y_hat = probs >= t
        total = cost_fn * ((~y_hat) & (y == 1)).sum().item() + cost_fp * (y_hat & (y == 0)).sum().item()
        if best_cost is None or total < best_cost:
            best_t, best_cost = t, total
    return float(best_t)
"""


def _scan(candidates="[1.0, *torch.unique(probs).tolist()]", *replacements) -> str:
    body = _SCAN.replace("CANDIDATES", candidates)
    for old, new in replacements:
        assert old in body, old
        body = body.replace(old, new)
    return _THRESHOLD + body


THRESHOLD_MISTAKES = {
    "grid_of_101": (_scan("[i / 100 for i in range(101)]"), "a grid of thresholds can miss", "a grid of thresholds"),
    "strict_labels_while_scanning": (_scan("[0.0, *torch.unique(probs).tolist()]", ("probs >= t", "probs > t")),
                                     "labels probs >= t as 1", "the lowest is 1"),
    "costs_swapped": (_scan("[1.0, *torch.unique(probs).tolist()]",
                            ("cost_fn * ((~y_hat)", "cost_fp * ((~y_hat)"), ("cost_fp * (y_hat", "cost_fn * (y_hat")),
                      "you swapped the two costs", "the lowest is 1"),
    "ignores_the_costs": (_scan("[1.0, *torch.unique(probs).tolist()]", ("total = cost_fn *", "total = 10.0 *"),
                                ("+ cost_fp *", "+ 1.0 *")),
                          "use the cost_fn and cost_fp you are given", "use the cost_fn and cost_fp you are given"),
    "counts_errors_not_costs": (_scan("[1.0, *torch.unique(probs).tolist()]", ("total = cost_fn *", "total = "),
                                      ("+ cost_fp *", "+ ")),
                                "cost is not the lowest", "cost is not the lowest"),
    "always_half": (_THRESHOLD + "    return 0.5\n", "cost is not the lowest", "the lowest is 1"),
    "returns_tensor": (_scan("[1.0, *torch.unique(probs)]", ("return float(best_t)", "return best_t")),
                       "returned a tensor", "expected a Python float"),
    "nothing_labelled_above_one": (_scan("[1.01, *torch.unique(probs).tolist()]"), "outside [0, 1]",
                                   "outside [0, 1]"),
}

CORRECT_THRESHOLD = {
    "midpoints_and_numpy": _THRESHOLD + """
    import numpy as np
    p, labels = probs.numpy().astype(np.float64), y.numpy()
    values = np.unique(p)
    candidates = [0.0, *((values[:-1] + values[1:]) / 2), min(1.0, float(values[-1]) + 1e-9) if values[-1] < 1 else 1.0]
    costs = [cost_fn * np.sum((p < t) & (labels == 1)) + cost_fp * np.sum((p >= t) & (labels == 0))
             for t in candidates]
    return float(candidates[int(np.argmin(costs))])
""",
    "sorted_cumulative_sums": _THRESHOLD + """
    order = torch.argsort(probs, descending=True)
    p, labels = probs[order], y[order]
    fp = torch.cumsum(labels == 0, 0)           # labelling the first k + 1 rows 1
    fn = (labels == 1).sum() - torch.cumsum(labels == 1, 0)
    costs = cost_fn * fn + cost_fp * fp
    last = torch.tensor([True] * len(p)) if len(p) < 2 else torch.cat([p[1:] != p[:-1], torch.tensor([True])])
    costs = torch.where(last, costs.double(), torch.tensor(float("inf"), dtype=torch.float64))
    none = cost_fn * (labels == 1).sum().item()
    k = int(torch.argmin(costs))
    if none <= costs[k].item() and p.max().item() < 1.0:
        return 1.0
    return p[k].item()
""",
}

MUTANTS += [Mutant(name=f"threshold_{name}", cells={"choose_threshold": cell},
                   loses={"test_choose_threshold": notebook})
            for name, (cell, _check, notebook) in THRESHOLD_MISTAKES.items()]
CORRECT += [Correct(name=f"threshold_{name}", cells={"choose_threshold": cell})
            for name, cell in CORRECT_THRESHOLD.items()]
