"""Do the hidden checks of exercise 07 accept correct code, explain each wrong answer, and score the trained
model on the reserved digits themselves rather than trusting the kernel?"""

import json
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from check_helpers import Observations, encoded, fails_with, unsolved
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from grader import course, notebooks
from grader.checks import capstone, digits
from grader.observation import as_json
from grader.observers import digits as observers

# The reference answers (as in solutions/07_digits) and correct variants ------------------------------


class SmallCNN(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 2 * 2, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class FunctionalCNN(nn.Module):
    """The PyTorch MNIST example's style: functions in forward, dropout, log_softmax at the end."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3)
        self.dropout = nn.Dropout(0.1)
        self.fc = nn.Linear(32 * 3 * 3, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = self.dropout(x.view(x.size(0), -1))
        return F.log_softmax(self.fc(x), dim=1)


class BatchNormCNN(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                                  nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(128, num_classes))

    def forward(self, x):
        return self.body(x)


def predict_classes(model, X, device="cpu"):
    model = model.to(device)
    model.eval()
    with torch.no_grad():
        logits = model(X.to(device))
    return logits.argmax(dim=1).cpu()


def with_torch_max(model, X, device="cpu"):
    model.to(device).eval()
    with torch.inference_mode():
        return torch.max(model(X.to(device)), 1).indices.cpu()


def with_softmax_last_dim(model, X, device="cpu"):
    model.eval()
    with torch.no_grad():
        return torch.softmax(model.to(device)(X.to(device)), dim=-1).max(dim=1)[1].to("cpu")


def confusion_matrix(y_true, y_pred, num_classes):
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for i, j in zip(y_true.tolist(), y_pred.tolist(), strict=True):
        matrix[i, j] += 1
    return matrix


def bincount_confusion(y_true, y_pred, num_classes):
    return torch.bincount(y_true * num_classes + y_pred, minlength=num_classes ** 2).view(num_classes, num_classes)


def index_put_confusion(y_true, y_pred, num_classes):
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    return matrix.index_put_((y_true, y_pred), torch.ones_like(y_true), accumulate=True)


def _fit(model, X_train, y_train, epochs=10, lr=1e-2, loss=None):
    loader = DataLoader(TensorDataset(X_train, y_train), batch_size=64, shuffle=True)
    criterion = loss or nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        model.train()
        for X, y in loader:
            optimizer.zero_grad()
            criterion(model(X), y).backward()
            optimizer.step()
    return model


def train_digits(X_train, y_train):
    torch.manual_seed(0)
    return _fit(SmallCNN(), X_train, y_train)


def train_functional(X_train, y_train):
    torch.manual_seed(0)
    return _fit(FunctionalCNN(), X_train, y_train)


def train_batch_norm(X_train, y_train):
    torch.manual_seed(0)
    return _fit(BatchNormCNN(), X_train, y_train)


# The split ------------------------------------------------------------------------------------------

def _cells(assignment="07_digits") -> dict:
    nb = notebooks.read(course.SOLUTIONS / assignment / f"{assignment}.ipynb")
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}


def test_notebook_setup_makes_the_same_split():
    """Does the locked setup cell split the digits with the constants the checks use?"""
    setup = _cells()["setup"].source
    assert f"test_size={digits.RESERVED_FRACTION}, random_state={digits.RESERVED_SEED}" in setup
    assert f"test_size={digits.VAL_FRACTION}, random_state={digits.VAL_SEED}" in setup
    assert "del digits, X_reserved, y_reserved" in setup and "X / 16.0" in setup and "unsqueeze(1)" in setup


def test_splits_are_disjoint_and_complete():
    """Do the training, validation and reserved parts cover the 1,797 digits exactly once?"""
    parts = digits.splits()
    sizes = [len(parts[k]) for k in ("X_train", "X_val", "X_reserved")]
    assert sizes == [1077, 360, 360]
    rows = {r.tobytes() for k in ("X_train", "X_val", "X_reserved") for r in parts[k]}
    assert len(rows) == 1797 == len(np.unique(load_digits().data, axis=0))


def test_the_notebook_lists_what_the_judge_accepts():
    """Does Part D state the training budget and name every image layer the judge rebuilds beyond the capstone's?"""
    text = "".join(c.source for c in _cells().values() if c.cell_type == "markdown")
    assert f"{digits.TRAINING_BUDGET_S} s" in text and "everything the capstone accepts" in text
    missing = [kind for kind in digits.REBUILDS if kind not in capstone.REBUILDS and f"`{kind}`" not in text]
    assert not missing, f"Part D does not name these layers the judge accepts: {missing}"


# Part A ------------------------------------------------------------------------------------------

class BatchNorm1dHead(SmallCNN):
    def __init__(self, num_classes=10):
        super().__init__(num_classes)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(128, 32), nn.BatchNorm1d(32), nn.ReLU(),
                                        nn.Linear(32, num_classes))


@pytest.mark.parametrize("cnn", [SmallCNN, FunctionalCNN, BatchNormCNN, BatchNorm1dHead])
def test_small_cnn_accepts_correct_variants(cnn):
    digits.check_small_cnn(cnn)


class OnlyBatch8(SmallCNN):
    def forward(self, x):
        return self.classifier[1](self.features(x).view(8, -1))


class TenClasses(SmallCNN):
    def __init__(self, num_classes=10):
        super().__init__(10)


class MixesTheBatch(SmallCNN):
    def forward(self, x):
        return self.classifier[1](self.features(x).transpose(0, 1).reshape(len(x), -1))


class NoConv(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))

    def forward(self, x):
        return self.net(x)


class UnusedConv(NoConv):
    def __init__(self, num_classes=10):
        super().__init__(num_classes)
        self.conv = nn.Conv2d(1, 4, 3)


class Detached(SmallCNN):
    def forward(self, x):
        return super().forward(x).detach()


class NotAModule:
    def __init__(self, num_classes=10):
        pass


@pytest.mark.parametrize("wrong, fragments", [
    (OnlyBatch8, ["raised RuntimeError", "(4, 1, 8, 8)"]),
    (TenClasses, ["SmallCNN(num_classes=3)", "wrong shape", "(4, 3)", "size the last nn.Linear"]),
    (MixesTheBatch, ["other logits alone than in a batch", "nn.Flatten()"]),
    (NoConv, ["has no nn.Conv2d layer"]),
    (UnusedConv, ["do not depend on its nn.Conv2d"]),
    (Detached, ["not part of a graph"]),
    (NotAModule, ["should be an nn.Module"]),
], ids=lambda v: v.__name__ if isinstance(v, type) else "")
def test_small_cnn_explains_mistakes(wrong, fragments):
    fails_with(digits.check_small_cnn, wrong, *fragments)


# Part B ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("right", [predict_classes, with_torch_max, with_softmax_last_dim])
def test_predict_classes_accepts_correct_variants(right):
    digits.check_predict_classes(right)
    digits.check_predict_mode(right)


def _predict(transform, eval_mode=True, grad=False):
    def predict(model, X, device="cpu"):
        if eval_mode:
            model.eval()
        with torch.set_grad_enabled(grad):
            return transform(model(X))
    return predict


@pytest.mark.parametrize("wrong, check, fragments", [
    (_predict(lambda z: torch.softmax(z, dim=0).argmax(dim=1)), digits.check_predict_classes,
     ["wrong classes", "softmax over dim=0"]),
    (_predict(lambda z: z.argmax(dim=0)), digits.check_predict_classes, ["wrong classes", "over dim=0, the batch"]),
    (_predict(lambda z: z.argmax()), digits.check_predict_classes, ["wrong shape", "(3,)", "()"]),
    (_predict(lambda z: z.argmin(dim=1)), digits.check_predict_classes, ["that is argmin"]),
    (_predict(lambda z: z.argmax(dim=1).float()), digits.check_predict_classes, ["float classes"]),
    (_predict(lambda z: z.argmax(dim=1).int()), digits.check_predict_classes, ["wrong dtype", "int32"]),
    (_predict(lambda z: torch.softmax(z, dim=1)), digits.check_predict_classes, ["wrong shape"]),
    (_predict(lambda z: z.argmax(dim=1), eval_mode=False), digits.check_predict_mode, ["model.eval()"]),
    (_predict(lambda z: z.argmax(dim=1), grad=True), digits.check_predict_mode, ["built a computation graph"]),
], ids=lambda v: "" if callable(v) or isinstance(v, list) else str(v))
def test_predict_classes_explains_mistakes(wrong, check, fragments):
    fails_with(check, wrong, *fragments)


# Part C ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("right", [confusion_matrix, bincount_confusion, index_put_confusion])
def test_confusion_matrix_accepts_correct_variants(right):
    digits.check_confusion_matrix(right)


def transposed(y_true, y_pred, num_classes):
    return confusion_matrix(y_true, y_pred, num_classes).T


def sized_by_labels(y_true, y_pred, num_classes):
    return confusion_matrix(y_true, y_pred, int(max(y_true.max(), y_pred.max())) + 1)


def float_counts(y_true, y_pred, num_classes):
    return confusion_matrix(y_true, y_pred, num_classes).float()


def numpy_matrix(y_true, y_pred, num_classes):
    return confusion_matrix(y_true, y_pred, num_classes).numpy()


def counts_twice(y_true, y_pred, num_classes):
    return confusion_matrix(y_true, y_pred, num_classes) * 2


@pytest.mark.parametrize("wrong, fragments", [
    (transposed, ["wrong counts", "transposed", "rows are the true classes"]),
    (sized_by_labels, ["wrong shape", "(5, 5)", "never occur"]),
    (float_counts, ["wrong dtype", "float32"]),
    (numpy_matrix, ["should return a torch.Tensor", "ndarray"]),
    (counts_twice, ["wrong counts", "add up to the number of examples (7)"]),
], ids=lambda v: v.__name__ if callable(v) else "")
def test_confusion_matrix_explains_mistakes(wrong, fragments):
    fails_with(digits.check_confusion_matrix, wrong, *fragments)


# Part D ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("right", [train_digits, train_functional, train_batch_norm])
def test_training_accepts_correct_variants(right):
    observers.forget_runs()
    digits.check_train_digits(right)
    digits.check_reserved_accuracy(right, minimum=0.95)


@pytest.mark.parametrize("seed", range(20))
def test_reference_passes_under_any_global_seed(seed):
    """Does the reference get every Part D point whatever the global seed was before the checks?"""
    torch.manual_seed(seed)
    observers.forget_runs()
    digits.check_train_digits(train_digits)
    digits.check_reserved_accuracy(train_digits, minimum=0.95)


def trains_on_everything(X_train, y_train):
    torch.manual_seed(0)
    data = load_digits()
    X = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    return _fit(SmallCNN(), X, torch.tensor(data.target), epochs=3)


def trains_on_validation_too(X_train, y_train):
    parts = digits.splits()
    X_val = observers.images(parts["X_val"])
    torch.manual_seed(0)
    return _fit(SmallCNN(), torch.cat([X_train, X_val]), torch.cat([y_train, torch.tensor(parts["y_val"])]), epochs=3)


def untrained(X_train, y_train):
    torch.manual_seed(0)
    return SmallCNN()


def float_labels(X_train, y_train):
    torch.manual_seed(0)
    return _fit(SmallCNN(), X_train, y_train.float(), epochs=1)


def returns_a_tuple(X_train, y_train):
    return train_digits(X_train, y_train), 0.99


def one_epoch_tiny_lr(X_train, y_train):
    torch.manual_seed(0)
    return _fit(SmallCNN(), X_train, y_train, epochs=1, lr=1e-5)


class Clamped(SmallCNN):
    def forward(self, x):
        return self.classifier(self.features(x).clamp(max=0.5))


def home_made_operation(X_train, y_train):
    torch.manual_seed(0)
    return _fit(Clamped(), X_train, y_train, epochs=2)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

    def forward(self, x):
        return self.head(x + self.conv(x))


def skip_connection(X_train, y_train):
    torch.manual_seed(0)
    return _fit(Residual(), X_train, y_train, epochs=1)


class ReflectPadded(SmallCNN):
    def __init__(self):
        super().__init__()
        self.features[0] = nn.Conv2d(1, 16, 3, padding=1, padding_mode="reflect")


def reflect_padding(X_train, y_train):
    torch.manual_seed(0)
    return _fit(ReflectPadded(), X_train, y_train, epochs=1)


@pytest.mark.parametrize("wrong, fragments", [
    (trains_on_everything, ["images of the reserved part", "reload the data set"]),
    (trains_on_validation_too, ["images of the validation part"]),
    (untrained, ["was not trained"]),
    (float_labels, ["raised RuntimeError", "Float"]),
    (returns_a_tuple, ["should return the trained model", "tuple"]),
], ids=lambda v: v.__name__ if callable(v) else "")
def test_training_explains_mistakes(wrong, fragments):
    observers.forget_runs()
    fails_with(digits.check_train_digits, wrong, *fragments)


@pytest.mark.parametrize("wrong, fragments", [
    (trains_on_everything, ["reserved images cannot score this model", "reserved part"]),
    (one_epoch_tiny_lr, ["accuracy on the 360 reserved images", ">= 0.95"]),
    (home_made_operation, ["does not compute its logits from its layers", "clamp"]),
    (skip_connection, ["does not compute its logits from its layers", "add"]),
    (reflect_padding, ["could not rebuild", "padding_mode"]),
], ids=lambda v: v.__name__ if callable(v) else "")
def test_accuracy_explains_mistakes(wrong, fragments):
    observers.forget_runs()
    fails_with(lambda f: digits.check_reserved_accuracy(f, minimum=0.95), wrong, *fragments)


def test_hidden_training_runs_once_per_function():
    """Do the two Part D checks share one training run of the same function?"""
    calls = []

    def counted(X_train, y_train):
        calls.append(1)
        return train_digits(X_train, y_train)

    observers.forget_runs()
    digits.check_train_digits(counted)
    digits.check_reserved_accuracy(counted, minimum=0.95)
    assert len(calls) == 1


def test_all_hidden_checks_are_fast():
    """Do all hidden checks of the notebook together, one training run included, run in well under 15 s?"""
    observers.forget_runs()
    start = time.perf_counter()
    digits.check_small_cnn(SmallCNN)
    digits.check_predict_classes(predict_classes)
    digits.check_predict_mode(predict_classes)
    digits.check_confusion_matrix(confusion_matrix)
    digits.check_train_digits(train_digits)
    digits.check_reserved_accuracy(train_digits, minimum=0.95)
    assert time.perf_counter() - start < 15


def test_not_implemented_passes_through_unchanged():
    """Does an unsolved stub still raise NotImplementedError, not a check failure?"""
    for check in (digits.check_small_cnn, digits.check_predict_classes, digits.check_predict_mode,
                  digits.check_confusion_matrix, digits.check_train_digits):
        with pytest.raises(NotImplementedError):
            check(unsolved)


# Observations and forged observations -----------------------------------------------------------

CHECKS = {
    "small_cnn": (digits.check_small_cnn, (SmallCNN,)),
    "predict_classes": (digits.check_predict_classes, (predict_classes,)),
    "predict_mode": (digits.check_predict_mode, (predict_classes,)),
    "confusion_matrix": (digits.check_confusion_matrix, (confusion_matrix,)),
    "reserved_accuracy": (digits.check_reserved_accuracy, (train_digits,)),
}
_observation = Observations(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_observation_is_strict_json_and_judged_as_a_pass(name):
    check, args = CHECKS[name]
    text = as_json(check.observe(*args))
    assert len(text) < 1_000_000, f"the {name} observation is {len(text)} characters: too big to send per cell"
    check.judge(json.loads(text), **({"minimum": 0.95} if name == "reserved_accuracy" else {}))


def _forge_reserved_logits(observed):
    """Logits that score perfectly, from layers that do not produce them."""
    observed["logits"] = {"value": encoded(nn.functional.one_hot(torch.tensor(digits.splits()["y_reserved"]),
                                                                10).float() * 10)}


def _forge_untrained_layers_with_good_logits(observed):
    untrained_model = untrained(None, None)
    for step, module in zip([s for s in observed["layers"] if s["kind"] in ("Conv2d", "Linear")],
                            [m for m in untrained_model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))],
                            strict=True):
        step["parameters"] = {name: encoded(p) for name, p in module.named_parameters()}


def _forge_seen_reserved(observed):
    observed["seen"] = encoded(observers.images(digits.splits()["X_reserved"][:5]).reshape(-1, 64))


def _forge_seen_unreadable(observed):
    observed["seen"] = "everything"


def _forge_unknown_layer(observed):
    observed["layers"][1]["kind"] = "Mystery"
    observed["layers"][1]["type"] = "Mystery"


@pytest.mark.parametrize("forge, fragments", [
    (_forge_reserved_logits, ["does not compute its logits from its layers"]),
    (_forge_untrained_layers_with_good_logits, ["does not compute its logits from its layers"]),
    (_forge_seen_reserved, ["5 images of the reserved part"]),
    (_forge_seen_unreadable, ["could not read the images"]),
    (_forge_unknown_layer, ["layers the reserved images cannot score", "Mystery"]),
], ids=lambda v: v.__name__ if callable(v) else "")
def test_forged_reserved_observation_is_rejected(forge, fragments):
    observed = _observation("reserved_accuracy")
    forge(observed)
    fails_with(digits.judge_reserved_accuracy, observed, *fragments, minimum=0.95)


def _forge_classes(observed):
    observed["calls"][0] = {"value": encoded(torch.tensor([0, 0, 0]))}


def _forge_mode_training(observed):
    for call in observed["calls"]:
        call["forwards"] = [{**forward, "training": [True] * len(forward["training"])} for forward in call["forwards"]]


def _forge_gpu_run_on_cpu(observed):
    """What a GPU kernel reports when predict_classes ignores device="cuda" (judged on any machine)."""
    observed["calls"].append({**observed["calls"][0], "device": "cuda"})


@pytest.mark.parametrize("name, forge, fragments", [
    ("predict_classes", _forge_classes, ["wrong classes"]),
    ("predict_mode", _forge_mode_training, ["ran the model in training mode"]),
    ("predict_mode", _forge_gpu_run_on_cpu, ['device="cuda"', "did not run the model on cuda"]),
], ids=lambda v: v.__name__ if callable(v) else str(v) if isinstance(v, str) else "")
def test_forged_predictions_are_rejected(name, forge, fragments):
    observed = _observation(name)
    forge(observed)
    fails_with(CHECKS[name][0].judge, observed, *fragments)


def test_gpu_records_of_a_correct_predict_are_accepted():
    """Is a GPU kernel's record of a predict_classes that ran on the GPU and returned CPU classes a pass here?"""
    observed = _observation("predict_mode")
    gpu = json.loads(json.dumps(observed["calls"][0]))
    gpu["device"] = "cuda"
    gpu["forwards"] = [{**forward, "device": "cuda"} for forward in gpu["forwards"]]
    observed["calls"].append(gpu)
    digits.judge_predict_mode(observed)
