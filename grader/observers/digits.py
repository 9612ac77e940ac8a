"""Observers for exercise 07 (digits): SmallCNN, predict_classes, confusion_matrix and train_digits.

The input builders here (the data splits, the grader's small models and rows) are shared with the
judge (grader.checks.digits), which calls them again in the trusted process. For train_digits the
observer records what the judge needs to rebuild the trained network itself, as the capstone's
observer does: the steps of its forward pass on the reserved images in the order they run (every
leaf module with its class, parameters, buffers and settings, and the activation, pooling, flatten
and softmax functions called outside modules), its logits there, and every distinct image it was
trained on. The judge decides which of those images are reserved, rebuilds the network and scores it.
"""

import copy
import time
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from grader.observation import CALL, RAISED, ListOf, OneOf, capture, encode, observes
from grader.observers import capstone as capstone_observers
from grader.observers.capstone import (
    FORWARD_RECORD,
    STATUS,
    ModelInputs,
    _call,
    _layer,
    _one_thread,
    _plain,
    _seeded,
    _status,
    _Steps,
)
from grader.observers.inference import FORWARD, _Spy

# The notebook's locked setup cell splits the data with these (tests/test_checks_digits.py checks it).
RESERVED_FRACTION = 0.2
RESERVED_SEED = 7
VAL_FRACTION = 0.25
VAL_SEED = 0
IMAGE_SHAPE = (1, 8, 8)
N_CLASSES = 10
MAX_SEEN_ROWS = capstone_observers.MAX_SEEN_ROWS
MAX_STEPS = capstone_observers.MAX_STEPS


def images(raw: np.ndarray) -> torch.Tensor:
    """8x8 digit images with pixel values 0..16 as the float32 (N, 1, 8, 8) inputs the notebook uses."""
    return torch.tensor(np.asarray(raw).reshape(-1, 8, 8) / 16.0, dtype=torch.float32).unsqueeze(1)


_splits: dict[str, np.ndarray] = {}


def splits() -> dict[str, np.ndarray]:
    """The same parts as the notebook's setup cell (raw 8x8 images, labels), plus the reserved part."""
    if not _splits:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        data = load_digits()
        X_dev, X_reserved, y_dev, y_reserved = train_test_split(
            data.images, data.target, test_size=RESERVED_FRACTION, random_state=RESERVED_SEED, stratify=data.target)
        X_train, X_val, y_train, y_val = train_test_split(
            X_dev, y_dev, test_size=VAL_FRACTION, random_state=VAL_SEED, stratify=y_dev)
        _splits.update(X_train=X_train, y_train=y_train, X_val=X_val, y_val=y_val, X_reserved=X_reserved,
                       y_reserved=y_reserved)
    return _splits


# Part A: SmallCNN --------------------------------------------------------------------------------

# SmallCNN(num_classes=k) (None: the default), and the batch sizes its forward pass is called with in
# evaluation mode; in training mode it is called once on TRAIN_BATCH images (BatchNorm needs 2 or more).
CNN_CASES = [(None, (4,)), (10, (1, 5, 8, 33)), (3, (2, 8)), (7, (1, 6))]
TRAIN_BATCH = 4


def cnn_input(n: int) -> torch.Tensor:
    return torch.rand(n, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(n))


def _conv_used(model: nn.Module, logits) -> bool | None:
    """Whether some nn.Conv2d weight gets a gradient from the logits (None if that cannot be tried)."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs or not isinstance(logits, torch.Tensor) or not logits.requires_grad:
        return None
    try:
        model.zero_grad()
        logits.float().sum().backward()
    except Exception:  # noqa: BLE001 -- a student's graph that cannot be differentiated is reported as unused
        return False
    return any(m.weight.grad is not None and bool(m.weight.grad.abs().sum() > 0) for m in convs)


def _observe_cnn(SmallCNN, num_classes, sizes) -> dict:
    torch.manual_seed(0)
    record, model = _call(SmallCNN) if num_classes is None else _call(SmallCNN, num_classes=num_classes)
    if "raised" in record:
        return {"made": record}
    case = {"made": _status(record), "module": isinstance(model, nn.Module), "type": type(model).__name__}
    if not case["module"]:
        return case
    case["convs"] = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    model.train()
    first, raw = _call(model, cnn_input(TRAIN_BATCH))
    case["requires_grad"] = bool(getattr(raw, "requires_grad", False))
    case["conv_used"] = _conv_used(model, raw)
    model.eval()
    with torch.no_grad():
        case["logits"] = [capture(model, cnn_input(n)) for n in sizes]
        case["alone"] = capture(model, cnn_input(sizes[-1])[-1:])  # the last row of the last batch, alone
    case["train_mode"] = {"value": encode(raw)} if "value" in first else first
    return case


def cnn_case(n_batches: int) -> OneOf:
    """What `_observe_cnn` records for a case whose eval-mode forward pass runs on `n_batches` batches."""
    return OneOf({"made": RAISED}, {"made": STATUS, "module": False, "type": str},
                 {"made": STATUS, "module": True, "type": str, "convs": int, "requires_grad": bool,
                  "conv_used": OneOf(bool, None), "logits": ListOf(CALL, length=n_batches), "alone": CALL,
                  "train_mode": CALL})


@observes({"cases": tuple(cnn_case(len(sizes)) for _, sizes in CNN_CASES)})
@_one_thread
def observe_small_cnn(SmallCNN, **kwargs) -> dict:
    """SmallCNN for several num_classes: whether it is a module with an nn.Conv2d that the logits depend on,
    and its logits (eval mode) for several batch sizes, plus the last row of a batch alone."""
    return {"cases": [_observe_cnn(SmallCNN, k, sizes) for k, sizes in CNN_CASES]}


# Part B: predict_classes -------------------------------------------------------------------------

class ClassCase(NamedTuple):
    """One call of predict_classes: the judge (grader.checks.digits) rebuilds the same list."""

    model: nn.Module
    X: torch.Tensor
    what: str


def _fixed(weight: list[list[float]], bias: list[float]) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))
    return layer


def tiny_cnn(num_classes: int = 10) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, num_classes))


def class_cases() -> list[ClassCase]:
    """Every predict_classes call of the labels check, in order; built from fixed seeds."""
    # Logits equal to X: column scales differ a lot, so a softmax over the batch changes the winners.
    identity = _fixed([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [0.0, 0.0, 0.0])
    square = torch.tensor([[5.0, 0.0, 1.0], [4.0, 4.5, 0.0], [9.0, 0.0, 8.5]])  # winners 0, 1, 0
    wide = torch.tensor([[0.0, 1.0, 0.5], [0.2, 0.0, 3.0], [9.0, 8.0, 0.0], [-1.0, -2.0, -0.5], [2.0, 2.5, 0.0]])
    deep = _seeded(13, lambda: nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 5)))
    X6 = torch.randn(40, 6, generator=torch.Generator().manual_seed(13)) * 2
    cnn = _seeded(14, tiny_cnn)
    X_img = torch.rand(30, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(14))
    return [
        ClassCase(identity, square, "predict_classes(model, X) for 3 rows and 3 classes (logits [[5, 0, 1], "
                  "[4, 4.5, 0], [9, 0, 8.5]])"),
        ClassCase(identity, wide, "predict_classes(model, X) for 5 rows and 3 classes"),
        ClassCase(deep, X6, "predict_classes(model, X) for a 2-layer network, 40 rows and 5 classes"),
        ClassCase(deep, X6[:1], "predict_classes(model, X) for a single row"),
        ClassCase(cnn, X_img, "predict_classes(model, X) for a small CNN on 30 images of shape (1, 8, 8)"),
    ]


@observes({"calls": ListOf(CALL, length=len(class_cases()))})
@_one_thread
def observe_predict_classes(predict_classes, **kwargs) -> dict:
    """predict_classes' labels for every grader model and row set."""
    return {"calls": [capture(predict_classes, case.model, case.X.clone()) for case in class_cases()]}


def dropout_model() -> nn.Module:
    return _seeded(15, lambda: nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 6)))


def dropout_input() -> torch.Tensor:
    return torch.randn(50, 4, generator=torch.Generator().manual_seed(15)) * 2


@observes({"calls": ListOf({"result": CALL, "forwards": [FORWARD], "device": str}, at_least=2, at_most=3)})
@_one_thread
def observe_predict_mode(predict_classes, **kwargs) -> dict:
    """Two calls of predict_classes on a dropout model left in training mode (and, with a GPU, one with
    device="cuda"), each with the spy's record of its forward passes."""
    calls = []
    for device in ("cpu", "cpu", "cuda") if torch.cuda.is_available() else ("cpu", "cpu"):
        spy = _Spy(dropout_model())
        spy.train()
        result = capture(predict_classes, spy, dropout_input(), device=device)
        spy.to("cpu")
        calls.append({"result": result, "forwards": spy.calls, "device": device})
    return {"calls": calls}


# Part C: confusion_matrix ------------------------------------------------------------------------

def confusion_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, int]]:
    """(name, y_true, y_pred, num_classes) for every confusion_matrix call, in order."""
    generator = torch.Generator().manual_seed(16)
    return [
        ("y_true = [0, 1, 2, 2, 1, 0, 2], y_pred = [0, 2, 2, 2, 1, 1, 0], num_classes = 3",
         torch.tensor([0, 1, 2, 2, 1, 0, 2]), torch.tensor([0, 2, 2, 2, 1, 1, 0]), 3),
        ("y_true = [3, 3, 0, 1], y_pred = [3, 0, 0, 3], num_classes = 5 (classes 2 and 4 never occur)",
         torch.tensor([3, 3, 0, 1]), torch.tensor([3, 0, 0, 3]), 5),
        ("y_true = [1, 1, 1], y_pred = [1, 1, 1], num_classes = 4",
         torch.tensor([1, 1, 1]), torch.tensor([1, 1, 1]), 4),
        ("a single example of class 9 predicted as 0, num_classes = 10", torch.tensor([9]), torch.tensor([0]), 10),
        ("500 random labels of 10 classes", torch.randint(0, 10, (500,), generator=generator),
         torch.randint(0, 10, (500,), generator=generator), 10),
    ]


@observes({"calls": ListOf(CALL, length=len(confusion_cases()))})
@_one_thread
def observe_confusion_matrix(confusion_matrix, **kwargs) -> dict:
    """confusion_matrix's result for every grader label set."""
    return {"calls": [capture(confusion_matrix, y_true.clone(), y_pred.clone(), k)
                      for _, y_true, y_pred, k in confusion_cases()]}


# Part D: train_digits, observed once -------------------------------------------------------------

_runs: dict[int, tuple] = {}


def forget_runs() -> None:
    """Drop the cached training run (the next observation trains again)."""
    _runs.clear()


# Settings of the image layers, recorded on top of the capstone's.
_IMAGE_SETTINGS = ("stride", "padding", "dilation", "groups", "padding_mode", "kernel_size", "ceil_mode",
                   "count_include_pad", "output_size", "dim")


def _image_layer(module: nn.Module) -> dict:
    step = _layer(module)
    for name in _IMAGE_SETTINGS:
        value = _plain(getattr(module, name, None))
        if value is not None:
            step["config"].setdefault(name, value)
    return step


def _image_functionals() -> dict:
    """Functions a CNN's forward pass may call outside modules, besides the capstone's activations."""
    table = {}
    pool = (("kernel_size", None), ("stride", None), ("padding", 0))
    tensor = torch.Tensor
    for kind, names, functions in [
        ("MaxPool2d", (*pool, ("dilation", 1), ("ceil_mode", False)), (F.max_pool2d,)),
        ("AvgPool2d", (*pool, ("ceil_mode", False), ("count_include_pad", True)), (F.avg_pool2d,)),
        ("AdaptiveAvgPool2d", (("output_size", None),), (F.adaptive_avg_pool2d,)),
        ("AdaptiveMaxPool2d", (("output_size", None),), (F.adaptive_max_pool2d,)),
        ("Softmax", (("dim", None),), (F.softmax, torch.softmax, tensor.softmax)),
        ("LogSoftmax", (("dim", None),), (F.log_softmax, torch.log_softmax, tensor.log_softmax)),
        ("Dropout", (("p", 0.5), ("training", True)), (F.dropout2d,)),
    ]:
        for function in functions:
            table[function] = (kind, names)
    return table


_FUNCTIONALS = _image_functionals()
_RESHAPES = {torch.flatten, torch.Tensor.flatten, torch.Tensor.view, torch.Tensor.reshape, torch.reshape}


class _ImageSteps(_Steps):
    """The capstone's record of a forward pass, plus pooling, softmax and flatten functions (a view or
    reshape to (N, everything else) is a Flatten)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.inside == 0 and func in _FUNCTIONALS:
            self.add_functional(func, args, kwargs, *_FUNCTIONALS[func])
            return func(*args, **kwargs)
        if self.inside == 0 and func in _RESHAPES:
            result = func(*args, **kwargs)
            x = args[0] if args else None
            if (isinstance(x, torch.Tensor) and isinstance(result, torch.Tensor) and x.dim() >= 2 and result.dim() == 2
                    and result.shape[0] == x.shape[0]):
                self.add({"type": f"torch.{func.__name__}", "kind": "Flatten", "functional": True,
                          "parameters": {}, "buffers": {}, "config": {"start_dim": 1, "end_dim": -1}})
            elif not (isinstance(x, torch.Tensor) and isinstance(result, torch.Tensor) and x.shape == result.shape):
                self.others.append(func.__name__)
            return result
        return super().__torch_function__(func, types, args, kwargs)

    def described(self) -> list[dict]:
        return [_image_layer(step) if isinstance(step, nn.Module) else step for step in self.steps]


def reserved_inputs() -> torch.Tensor:
    return images(splits()["X_reserved"])


def _observe_model(model: nn.Module) -> dict:
    """The model's logits on the reserved images, and the steps of its forward pass in order."""
    return capstone_observers.record_forward(model, _ImageSteps(), reserved_inputs())


def _observe_training(train_digits) -> dict:
    """Run train_digits on the training part once per function, recording every image it trains on."""
    key = id(train_digits)
    if key in _runs and _runs[key][0] is train_digits:
        return copy.deepcopy(_runs[key][1])
    parts = splits()
    start = time.perf_counter()
    with capstone_observers.ModelInputs(lambda X: X.dim() >= 2 and X[0].numel() == 64,
                                        lambda X: X.reshape(-1, 64)) as inputs:
        record, model = _call(train_digits, images(parts["X_train"]),
                              torch.tensor(parts["y_train"], dtype=torch.int64))
    observed = {"result": _status(record), "seconds": time.perf_counter() - start, **inputs.observed(64),
                "module": isinstance(model, nn.Module),
                "type": type(model).__name__}
    if observed["module"]:
        observed.update(_observe_model(model))
    _runs.clear()
    _runs[key] = (train_digits, observed)
    return copy.deepcopy(observed)


_TRAINED = {"result": CALL, "seconds": float, **ModelInputs.SHAPE, "type": str}
# What a training run records: whether train_digits returned a module, and that module's forward pass.
TRAINED = OneOf({**_TRAINED, "module": False}, {**_TRAINED, "module": True, **FORWARD_RECORD})


@observes(TRAINED)
@_one_thread
def observe_train_digits(train_digits, **kwargs) -> dict:
    """train_digits(X_train, y_train): whether it returned a module, the images it trained on, how long it
    took, and the returned model's steps and logits on the reserved images."""
    return _observe_training(train_digits)


@observes(TRAINED)
@_one_thread
def observe_reserved_accuracy(train_digits, **kwargs) -> dict:
    """The same observation as observe_train_digits (the same cached training run)."""
    return _observe_training(train_digits)
