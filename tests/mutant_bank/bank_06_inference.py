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
