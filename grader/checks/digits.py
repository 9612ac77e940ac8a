"""Hidden checks for exercise 07 (digits): a small CNN, class predictions, a confusion matrix, and a
digit classifier scored on images it never saw.

The notebook's locked setup cell splits `load_digits()` exactly as `splits()` does: 20% of the images
(stratified, RESERVED_SEED) are reserved for grading and never used in the notebook; the rest is split
again into the training and validation parts the student works with.

Each check is judged here, in the trusted process, from what grader.observers.digits recorded in the
kernel. The judge rebuilds the grader's models and inputs from the same seeds and recomputes every
expected value. For the reserved images it never takes the kernel's word for predictions: as the
capstone's judge does (grader.checks.capstone), it rebuilds the trained network from the recorded
steps of its forward pass (the capstone's layers plus convolutions, 2-D pooling and batch norm,
flatten and softmax: see `REBUILDS`), scores that network itself, and fails a model whose recorded
steps do not explain the logits it reported.
"""

import torch
import torch.nn.functional as F

from grader.checks import capstone
from grader.checks.capstone import _tensors, _Unreadable, expect_explained, expect_rebuildable, replay
from grader.checks.inference import _all_false
from grader.checks.report import expect, fail, judged, returned, type_name
from grader.observation import decode
from grader.observers import digits as observers
from grader.observers.digits import (
    CNN_CASES,
    N_CLASSES,
    RESERVED_FRACTION,
    RESERVED_SEED,
    VAL_FRACTION,
    VAL_SEED,
    class_cases,
    confusion_cases,
    dropout_input,
    dropout_model,
    observe_confusion_matrix,
    observe_predict_classes,
    observe_predict_mode,
    observe_reserved_accuracy,
    observe_small_cnn,
    observe_train_digits,
    splits,
)

__all__ = ["RESERVED_FRACTION", "RESERVED_SEED", "VAL_FRACTION", "VAL_SEED", "splits", "REBUILDS",
           "check_small_cnn", "check_predict_classes", "check_predict_mode", "check_confusion_matrix",
           "check_train_digits", "check_reserved_accuracy"]

LECTURE = "lecture 07"
TRAINING_BUDGET_S = 30
# Rows whose two largest logits are this close are not judged: another thread count may swap them.
MARGIN = 1e-4


# Part A: SmallCNN --------------------------------------------------------------------------------

def _cnn_name(num_classes) -> str:
    return "SmallCNN()" if num_classes is None else f"SmallCNN(num_classes={num_classes})"


def _expect_logits(entry, what: str, shape: tuple) -> torch.Tensor:
    logits = returned(entry, what)
    expect(isinstance(logits, torch.Tensor), f"{what} should return a tensor of logits.", "torch.Tensor",
           type_name(logits), "return the last layer's output.")
    expect(tuple(logits.shape) == shape, f"{what} returned logits of the wrong shape.", shape, tuple(logits.shape),
           "one row of num_classes logits per image: size the last nn.Linear with num_classes, and flatten each "
           f"image with nn.Flatten() (or x.flatten(1)) so the batch dimension stays "
           f"({LECTURE}, 'Pooling and Flatten').")
    expect(logits.is_floating_point() and bool(torch.isfinite(logits).all()), f"{what} returned non-float or "
           "non-finite logits.", "finite float logits", f"{logits.dtype}", "return raw logits: no argmax, no rounding.")
    return logits


def _judge_cnn_case(case: dict, num_classes, sizes) -> None:
    name = _cnn_name(num_classes)
    k = N_CLASSES if num_classes is None else num_classes
    returned(case["made"], name)
    expect(case["module"], f"{name} should be an nn.Module.", "nn.Module", case["type"],
           "subclass nn.Module and call super().__init__() first (lecture 03).")
    expect(case["convs"] >= 1, f"{name} has no nn.Conv2d layer.",
           "at least one nn.Conv2d", "none", f"start with nn.Conv2d(1, channels, kernel_size=3, padding=1) "
           f"({LECTURE}, 'Conv2d').")
    train_what = f"{name}(X) in training mode for X of shape ({observers.TRAIN_BATCH}, 1, 8, 8)"
    _expect_logits(case["train_mode"], train_what, (observers.TRAIN_BATCH, k))
    expect(case["requires_grad"], f"{train_what} returned logits that are not part of a graph.",
           "logits that depend on the parameters", "a tensor without grad", "return the layers' output itself: "
           "no .detach(), .item(), NumPy or torch.no_grad() inside forward.")
    expect(case["conv_used"] is True, f"{name}'s logits do not depend on its nn.Conv2d layer.",
           "a gradient on the Conv2d weight", "none", "apply the convolution in forward and feed its output on.")
    batches = [_expect_logits(entry, f"{name}(X) for X of shape ({n}, 1, 8, 8)", (n, k))
               for entry, n in zip(case["logits"], sizes, strict=True)]
    alone = _expect_logits(case["alone"], f"{name}(X) for a single image", (1, k))
    expect(torch.allclose(alone, batches[-1][-1:], rtol=1e-4, atol=1e-5),
           f"{name} gives an image other logits alone than in a batch of {sizes[-1]} (in evaluation mode).",
           _head(batches[-1][-1]), _head(alone[0]),
           "each image's logits must depend on that image only: flatten with nn.Flatten() (start_dim=1), never "
           "across the batch, and do not mix rows.")


def _head(values: torch.Tensor, n: int = 4) -> list:
    return [round(v, 4) for v in values.flatten()[:n].tolist()]


def judge_small_cnn(observed: dict, **kwargs) -> None:
    """SmallCNN(num_classes) maps (N, 1, 8, 8) float32 images to (N, num_classes) logits through a Conv2d."""
    for case, (num_classes, sizes) in zip(observed["cases"], CNN_CASES, strict=True):
        _judge_cnn_case(case, num_classes, sizes)


check_small_cnn = judged(observe_small_cnn, judge_small_cnn)


# Part B: predict_classes -------------------------------------------------------------------------

def _classes(entry, n: int, what: str) -> torch.Tensor:
    """The classes one captured call returned, after checking their type, shape, dtype and device."""
    y_hat = returned(entry, what)
    expect(isinstance(y_hat, torch.Tensor), f"{what} should return a tensor of class indices.", "torch.Tensor",
           type_name(y_hat), f"return logits.argmax(dim=1) ({LECTURE}, 'argmax').")
    expect(tuple(y_hat.shape) == (n,), f"{what} has the wrong shape.", (n,), tuple(y_hat.shape),
           "take the argmax over the class dimension, dim=1, which leaves one class per row: shape (N,).")
    expect(not y_hat.is_floating_point(), f"{what} returned float classes.", torch.int64, y_hat.dtype,
           "class indices are whole numbers: argmax already gives int64, do not convert them to float.")
    expect(y_hat.dtype == torch.int64, f"{what} has the wrong dtype.", torch.int64, y_hat.dtype,
           "keep argmax's int64 (or convert with .long()).")
    device = y_hat.observed["device"]
    expect(device == "cpu", f"{what} returned a tensor on {device}, not on the CPU.", "cpu", device,
           "finish with .cpu().")
    expect(not y_hat.observed["requires_grad"], f"{what} returned a tensor that is part of a graph.", False, True,
           "compute the logits inside `with torch.no_grad():`.")
    return y_hat


def _classes_hint(y_hat: torch.Tensor, logits: torch.Tensor, keep: torch.Tensor) -> str:
    guesses = [
        (torch.softmax(logits, dim=0).argmax(dim=1), "you took the softmax over dim=0, the batch: each row's "
         f"probabilities come from softmax(logits, dim=1), and argmax needs no softmax at all ({LECTURE}, "
         "'Softmax and the dim mistake')"),
        (logits.argmin(dim=1), "that is argmin: the predicted class has the largest logit"),
    ]
    if logits.shape[0] == logits.shape[1]:
        guesses.append((logits.argmax(dim=0), "you took the argmax over dim=0, the batch: take it over dim=1, "
                        "the classes"))
    for guess, hint in guesses:
        if torch.equal(y_hat[keep], guess[keep]):
            return hint
    return f"return model(X).argmax(dim=1) for the model and X you are given ({LECTURE}, 'argmax')"


def _expect_classes(y_hat: torch.Tensor, model, X: torch.Tensor, what: str) -> None:
    """y_hat is the argmax of model(X) over the classes, except in rows whose two best logits nearly tie."""
    model.eval()
    with torch.no_grad():
        logits = model(X)
    top = logits.topk(2, dim=1).values
    keep = (top[:, 0] - top[:, 1]) > MARGIN
    expected = logits.argmax(dim=1)
    if not torch.equal(y_hat[keep], expected[keep]):
        fail(f"{what} gave the wrong classes.", expected.tolist()[:12], y_hat.tolist()[:12],
             _classes_hint(y_hat, logits, keep))


def judge_predict_classes(observed: dict, **kwargs) -> None:
    """predict_classes(model, X): int64 (N,) CPU tensor, the argmax of the logits over dim 1."""
    cases = class_cases()
    for entry, case in zip(observed["calls"], cases, strict=True):
        _expect_classes(_classes(entry, case.X.shape[0], case.what), case.model, case.X, case.what)


check_predict_classes = judged(observe_predict_classes, judge_predict_classes)


def judge_predict_mode(observed: dict, **kwargs) -> None:
    """predict_classes runs the model in eval mode without a graph, on `device`, and returns CPU classes."""
    X = dropout_input()
    what = "predict_classes(model, X) for a model with dropout that starts in training mode"
    results = []
    for call in observed["calls"]:
        device = call["device"]
        call_what = what if device == "cpu" else f'{what}, device="cuda"'
        forwards = call["forwards"]
        expect(len(forwards) > 0, f"{call_what} never called the model.", "at least one call of model(X)", "none",
               "compute the logits with model(X) on the model you are given, not a global model.")
        expect(all(_all_false(f["training"]) for f in forwards),
               f"{call_what} ran the model in training mode, so dropout changed the logits.",
               "model.training == False during the forward pass", "model.training == True",
               "call model.eval() before computing the logits (lecture 06, 'Switching off the training machinery').")
        expect(not any(f["grad"] for f in forwards),
               f"{call_what} built a computation graph (gradients were enabled during the forward pass).",
               "torch.is_grad_enabled() == False inside predict_classes", "True",
               "wrap the forward pass in `with torch.no_grad():` or `with torch.inference_mode():`.")
        expect(all(f["device"] == device for f in forwards), f"{call_what} did not run the model on {device}.",
               device, [f["device"] for f in forwards], "move the model and X with .to(device).")
        results.append(_classes(call["result"], len(X), call_what))
    expect(torch.equal(results[0], results[1]), f"{what} gave different classes on two calls with the same X.",
           results[0].tolist()[:12], results[1].tolist()[:12], "call model.eval() so dropout is switched off.")
    for y_hat in results:
        _expect_classes(y_hat, dropout_model(), X, what)


check_predict_mode = judged(observe_predict_mode, judge_predict_mode)


# Part C: confusion_matrix ------------------------------------------------------------------------

def reference_confusion(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.bincount(y_true * num_classes + y_pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def judge_confusion_matrix(observed: dict, **kwargs) -> None:
    """confusion_matrix(y_true, y_pred, num_classes): int64 (C, C), entry [i, j] counts true i predicted j."""
    cases = confusion_cases()
    for entry, (name, y_true, y_pred, k) in zip(observed["calls"], cases, strict=True):
        what = f"confusion_matrix(y_true, y_pred, num_classes) for {name}"
        found = returned(entry, what)
        expect(isinstance(found, torch.Tensor), f"{what} should return a torch.Tensor.", "torch.Tensor",
               type_name(found), "build the matrix with torch (torch.zeros then counting, or torch.bincount).")
        expect(tuple(found.shape) == (k, k), f"{what} has the wrong shape.", (k, k), tuple(found.shape),
               "the matrix has num_classes rows and columns, even for classes that never occur: size it with "
               "num_classes, not with the largest label seen.")
        expect(found.dtype == torch.int64, f"{what} has the wrong dtype.", torch.int64, found.dtype,
               "counts are whole numbers: create the matrix with dtype=torch.int64 (or convert with .long()).")
        expected = reference_confusion(y_true, y_pred, k)
        if torch.equal(found, expected):
            continue
        hint = "entry [i, j] counts the examples whose true class is i and predicted class is j"
        if torch.equal(found, expected.T):
            hint = ("your matrix is transposed: rows are the true classes and columns the predicted ones "
                    f"(scikit-learn's convention; {LECTURE}, 'The confusion matrix')")
        elif int(found.sum()) != len(y_true):
            hint = f"the entries should add up to the number of examples ({len(y_true)}): count each example once"
        fail(f"{what} gave the wrong counts.", expected.tolist() if k <= 5 else f"{expected.diag().tolist()} on the "
             "diagonal", found.tolist() if k <= 5 else f"{found.diag().tolist()} on the diagonal", hint)


check_confusion_matrix = judged(observe_confusion_matrix, judge_confusion_matrix)


# Part D: the training run ------------------------------------------------------------------------

def _pair(step: dict, name: str, default):
    """An int or a list of non-negative ints (kernel sizes, strides, paddings), or a padding mode string."""
    value = step["config"].get(name, default)
    if value is None or (type(value) is int and value >= 0):
        return value
    if isinstance(value, list) and value and all(type(v) is int and v >= 0 for v in value):
        return tuple(value)
    if name == "padding" and value in ("same", "valid"):
        return value
    raise _Unreadable(f"the setting {name}={value!r}")


def _flag(step: dict, name: str, default: bool) -> bool:
    value = step["config"].get(name, default)
    if type(value) is not bool:
        raise _Unreadable(f"the setting {name}={value!r}")
    return value


def _conv2d(h, step):
    if step["config"].get("padding_mode", "zeros") != "zeros":
        raise _Unreadable("a padding_mode other than 'zeros'")
    t = _tensors(step, "parameters", ("weight", "bias"), required=("weight",))
    groups = _pair(step, "groups", 1)
    return F.conv2d(h, t["weight"], t["bias"], _pair(step, "stride", 1), _pair(step, "padding", 0),
                    _pair(step, "dilation", 1), 1 if groups is None else groups)


def _max_pool2d(h, step):
    return F.max_pool2d(h, _pair(step, "kernel_size", None), _pair(step, "stride", None), _pair(step, "padding", 0),
                        _pair(step, "dilation", 1), ceil_mode=_flag(step, "ceil_mode", False))


def _avg_pool2d(h, step):
    return F.avg_pool2d(h, _pair(step, "kernel_size", None), _pair(step, "stride", None), _pair(step, "padding", 0),
                        _flag(step, "ceil_mode", False), _flag(step, "count_include_pad", True))


def _softmax(function):
    def apply(h, step):
        dim = step["config"].get("dim")
        if type(dim) is not int:
            raise _Unreadable("a softmax without an explicit dim")
        return function(h, dim)
    return apply


REBUILDS = {
    **capstone.REBUILDS,
    "Conv2d": _conv2d,
    "BatchNorm2d": capstone.REBUILDS["BatchNorm1d"],
    "MaxPool2d": _max_pool2d,
    "AvgPool2d": _avg_pool2d,
    "AdaptiveAvgPool2d": lambda h, step: F.adaptive_avg_pool2d(h, _pair(step, "output_size", None)),
    "AdaptiveMaxPool2d": lambda h, step: F.adaptive_max_pool2d(h, _pair(step, "output_size", None)),
    "Dropout2d": capstone.REBUILDS["Dropout"],
    "Softmax": _softmax(torch.softmax),
    "LogSoftmax": _softmax(torch.log_softmax),
}
CNN_HINT = ("build the model as a chain of layers the grader can rebuild, applied one after the other: nn.Conv2d, "
            "nn.MaxPool2d, nn.AvgPool2d, nn.BatchNorm2d, nn.Flatten, nn.Linear, nn.Dropout and the usual activations "
            "(as modules, or F.relu, F.max_pool2d, torch.flatten(x, 1) in forward), ending in raw logits "
            "(Part D of the notebook lists them).")


def _seen(observed: dict, kind: str = "seen") -> torch.Tensor:
    """The images the model ran on with gradients (`seen`: trained on) or without (`looked`: evaluated on)."""
    seen = decode(observed[kind])
    expect(isinstance(seen, torch.Tensor) and seen.dim() == 2 and seen.shape[1] == 64
           and seen.shape[0] <= observers.MAX_SEEN_ROWS,
           "The hidden check could not read the images train_digits trained on.",
           hint="run the notebook top to bottom in a fresh kernel and do not change the grader's modules.")
    return seen


def _leak(observed: dict) -> str | None:
    """A message if the model was trained on reserved or validation images, or evaluated on reserved ones."""
    parts = splits()
    for kind, part, name, where in (
            ("seen", "X_reserved", "was trained on {} images of the reserved part", "which no one may train on "
             "(did you reload the data set inside train_digits?)"),
            ("seen", "X_val", "was trained on {} images of the validation part", "train only on the images you "
             "are given"),
            ("looked", "X_reserved", "ran on {} images of the reserved part", "which no one may look at while "
             "training (did you reload the data set to choose an epoch?)")):
        seen = _seen(observed, kind)
        if not seen.shape[0]:
            continue
        X = observers.images(parts[part]).reshape(-1, 64)
        count = int((torch.cdist(X, seen, p=float("inf")).min(dim=1).values < 1e-6).sum())
        if count:
            return f"the model {name.format(count)}, {where}"
    return None


def _module(observed: dict) -> None:
    returned(observed["result"], "train_digits(X_train, y_train)")
    expect(observed["module"], "train_digits should return the trained model, an nn.Module.",
           "nn.Module", observed["type"], "return model at the end of train_digits.")


def judge_train_digits(observed: dict, **kwargs) -> None:
    """train_digits trains a model on the training images only, within the time budget."""
    _module(observed)
    leak = _leak(observed)
    expect(leak is None, f"train_digits(X_train, y_train): {leak}.")
    expect(observed["seen_total"] > 0, "train_digits(X_train, y_train) never ran the model with gradients "
           "on the images: it was not trained.", hint="loop over epochs and batches with model.train(), "
           "CrossEntropyLoss, loss.backward() and optimizer.step().")
    seconds = observed["seconds"]
    expect(seconds < TRAINING_BUDGET_S, f"train_digits(X_train, y_train) took {seconds:.1f} s.",
           f"under {TRAINING_BUDGET_S} s", f"{seconds:.1f} s", "train for fewer epochs or with larger batches.")


check_train_digits = judged(observe_train_digits, judge_train_digits)


def _rebuilt_logits(observed: dict, X: torch.Tensor) -> torch.Tensor:
    steps = observed["layers"]
    expect(0 < len(steps) <= observers.MAX_STEPS,
           "The hidden check could not read the layers of the model train_digits returns.",
           hint="run the notebook top to bottom in a fresh kernel and do not change the grader's modules.")
    expect_rebuildable(steps, REBUILDS, "train_digits", "the reserved images", CNN_HINT)
    return replay(steps, X, REBUILDS, "train_digits", CNN_HINT)


def _first_row(logits) -> list | str:
    """How a message shows a model's logits: the first image's, rounded."""
    return _head(logits[0]) if isinstance(logits, torch.Tensor) and logits.dim() else type_name(logits)


def judge_reserved_accuracy(observed: dict, minimum: float, **kwargs) -> None:
    """The model train_digits returns scores at least `minimum` accuracy on the reserved images."""
    _module(observed)
    leak = _leak(observed)
    expect(leak is None, f"the reserved images cannot score this model: {leak}.",
           hint="train on X_train only; the reserved images measure a model that never saw them.")
    reported = returned(observed["logits"], "the model train_digits returns, on the reserved images,")
    X = observers.reserved_inputs()
    logits = _rebuilt_logits(observed, X)
    # Looser than the capstone's 1e-4: a CNN's float32 logits sum many more products than a small MLP's.
    expect_explained(observed, reported, logits, "train_digits", "the reserved images", CNN_HINT, tolerance=1e-3,
                     shown=_first_row)
    expect(logits.dim() == 2 and logits.shape[1] == N_CLASSES,
           "the model train_digits returns should give 10 logits per image.", (len(X), N_CLASSES),
           tuple(logits.shape), "end with nn.Linear(..., 10).")
    accuracy = float((logits.argmax(dim=1).numpy() == splits()["y_reserved"]).mean())
    expect(accuracy >= minimum,
           f"the model train_digits(X_train, y_train) returns scores {accuracy:.3f} accuracy on the "
           f"{len(X)} reserved images.", f">= {minimum:.2f}", f"{accuracy:.3f}",
           "check your validation accuracy first; train for more epochs or with a larger learning rate (Adam with "
           "lr=1e-2 for 10 epochs is plenty), with CrossEntropyLoss on raw logits and int64 labels.")


check_reserved_accuracy = judged(observe_reserved_accuracy, judge_reserved_accuracy)
