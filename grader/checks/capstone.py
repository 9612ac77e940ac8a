"""Hidden checks for exercise 07 (capstone): a breast-cancer classifier scored on rows it never saw.

The notebook's locked setup cell splits `load_breast_cancer()` exactly as `splits()` does below:
20% of the rows (stratified, RESERVED_SEED) are reserved for grading and never used in the
notebook; the rest is split again into the training and validation parts the student works with.
The hidden checks re-create every part here, train the student's `train_capstone` once (cached)
while a forward hook records every row the model is trained on, and score the model on the
reserved rows.
"""

import copy
import functools
import math
import os
import tempfile
import time

import numpy as np
import torch
from torch import nn

from grader.checks import inference
from grader.checks.report import call, expect, fail, student_check

RESERVED_FRACTION = 0.2
RESERVED_SEED = 7
VAL_FRACTION = 0.25
VAL_SEED = 0
N_FEATURES = 30
FULL_MARKS_ACCURACY = 0.95
PARTIAL_ACCURACY = 0.90
TRAINING_BUDGET_S = 30


def _one_thread(check):
    """Run a check with one torch thread: the models are tiny, and on a busy 2-core machine thread hand-offs
    make every small op many times slower. The previous setting is restored."""

    @functools.wraps(check)
    def run(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return check(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return run


@functools.lru_cache(maxsize=1)
def splits() -> dict[str, np.ndarray]:
    """The same parts as the notebook's setup cell, plus the reserved part the notebook never sees."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    X_dev, X_reserved, y_dev, y_reserved = train_test_split(
        data.data, data.target, test_size=RESERVED_FRACTION, random_state=RESERVED_SEED, stratify=data.target
    )
    X_train, X_val, y_train, y_val = train_test_split(
        X_dev, y_dev, test_size=VAL_FRACTION, random_state=VAL_SEED, stratify=y_dev
    )
    return {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val,
            "X_reserved": X_reserved, "y_reserved": y_reserved, "X_dev": X_dev, "X_all": data.data}


# Part A: the building blocks ---------------------------------------------------------------------

def _check_mlp(MLP) -> None:
    for args, sizes in [((), (10, 32, 64, 1)), ((30,), (30, 32, 64, 1)), ((5, (7,), 2), (5, 7, 2)),
                        ((30, (16, 8, 4)), (30, 16, 8, 4, 1))]:
        what = f"MLP{args if len(args) != 1 else f'({args[0]})'}"
        torch.manual_seed(0)
        model = call(MLP, *args, what=what)
        expect(isinstance(model, nn.Module), f"{what} should be an nn.Module.", "nn.Module", type(model).__name__,
               "subclass nn.Module and call super().__init__() first (lecture 03).")
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        found = [linears[0].in_features] + [m.out_features for m in linears] if linears else []
        expect(
            tuple(found) == sizes,
            f"{what} has the wrong nn.Linear layers (in_features, then each layer's out_features).",
            sizes,
            tuple(found),
            "build one nn.Linear per step from in_features through hidden to out_features, registered as "
            "submodules (nn.Sequential or nn.ModuleList, not a plain Python list: lecture 03, "
            "'Pitfall: layers in a plain Python list').",
        )
        X = torch.randn(16, sizes[0], generator=torch.Generator().manual_seed(1)) * 3
        logits = call(model, X, what=f"{what}(X) for X of shape (16, {sizes[0]})")
        expect(isinstance(logits, torch.Tensor) and tuple(logits.shape) == (16, sizes[-1]),
               f"{what}(X) has the wrong output shape.", (16, sizes[-1]),
               tuple(getattr(logits, "shape", ())), "return the last layer's output as it is.")
        h = X
        with torch.no_grad():
            for layer in linears[:-1]:
                h = torch.relu(layer(h))
            expected = linears[-1](h)
        expect(
            torch.allclose(logits.detach(), expected, atol=1e-5),
            f"{what}(X) does not compute Linear -> ReLU -> ... -> Linear.",
            expected[:2].flatten().tolist(),
            logits[:2].detach().flatten().tolist(),
            "put a ReLU after every hidden layer and nothing after the last one: the model returns raw logits.",
        )


def _check_dataset(TabularDataset) -> None:
    X = np.arange(21, dtype=np.float64).reshape(7, 3) / 4
    y = np.array([0, 1, 1, 0, 1, 0, 0])
    what = "TabularDataset(X, y) for 7 rows and 3 features"
    dataset = call(TabularDataset, X, y, what=what)
    n = call(len, dataset, what=f"len({what})")
    expect(n == 7, f"len({what}) is wrong.", 7, n, "__len__ returns the number of rows, len(X), not the feature count.")
    item = call(dataset.__getitem__, 5, what=f"{what}[5]")
    expect(isinstance(item, tuple) and len(item) == 2, f"{what}[5] should be a (features, target) tuple.",
           "a tuple of 2 tensors", repr(item)[:80])
    features, target = item
    for name, value, shape, expected in [("features", features, (3,), X[5]), ("target", target, (1,), [y[5]])]:
        expect(isinstance(value, torch.Tensor) and value.dtype == torch.float32,
               f"the {name} of {what}[5] should be a float32 tensor.", "float32 tensor",
               getattr(value, "dtype", type(value).__name__), "convert with torch.tensor(..., dtype=torch.float32).")
        expect(tuple(value.shape) == shape, f"the {name} of {what}[5] have the wrong shape.", shape,
               tuple(value.shape), "the target is a (1,) tensor, like the model's (1,) logit per row.")
        expect(np.allclose(value.numpy(), np.asarray(expected, dtype=np.float32)),
               f"the {name} of {what}[5] hold the wrong values.", list(np.asarray(expected)), value.tolist())


def _check_train_one_epoch(train_one_epoch) -> None:
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.0), nn.Linear(4, 1))
    X = torch.randn(10, 3, generator=torch.Generator().manual_seed(3))
    y = (X[:, :1] > 0).float()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=4)
    reference, criterion = copy.deepcopy(model), nn.BCEWithLogitsLoss()
    ref_optimizer = torch.optim.SGD(reference.parameters(), lr=0.5)
    losses = []
    reference.train()
    for X_batch, y_batch in loader:
        ref_optimizer.zero_grad()
        loss = criterion(reference(X_batch), y_batch)
        loss.backward()
        ref_optimizer.step()
        losses.append(loss.item())
    model.eval()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    what = "train_one_epoch(model, loader, criterion, optimizer) on 10 rows in batches of 4"
    result = call(train_one_epoch, model, loader, criterion, optimizer, what=what)
    expect(isinstance(result, float), f"{what} should return a Python float.", "float", type(result).__name__,
           "return the mean of the per-batch loss.item() values.")
    expect(model.training, f"{what} left the model in evaluation mode: it never called model.train().",
           hint="call model.train() at the start of the epoch (lecture 05).")
    same = all(torch.allclose(a, b, atol=1e-5) for a, b in zip(model.parameters(), reference.parameters(), strict=True))
    expect(same, f"{what} updated the parameters differently from one zero_grad/forward/backward/step per batch.",
           hint="for every batch: optimizer.zero_grad(), loss = criterion(model(X), y), loss.backward(), "
           "optimizer.step() (lecture 05).")
    expect(math.isclose(result, sum(losses) / len(losses), rel_tol=1e-4),
           f"{what} returned the wrong loss.", sum(losses) / len(losses), result,
           "return the mean over all batches of loss.item(), not the last batch's loss.")


@student_check
@_one_thread
def check_building_blocks(MLP, TabularDataset, train_one_epoch, predict) -> None:
    """The re-implemented MLP, TabularDataset, train_one_epoch and predict keep their contracts."""
    _check_mlp(MLP)
    _check_dataset(TabularDataset)
    _check_train_one_epoch(train_one_epoch)
    inference.check_predict_labels(predict)
    inference.check_predict_mode(predict)


# Part B: train on the training rows only --------------------------------------------------------

_runs: dict[int, tuple] = {}


def _train_under_spy(train_capstone):
    """Run train_capstone on the training part once per function, recording every training batch."""
    key = id(train_capstone)
    if key in _runs and _runs[key][0] is train_capstone:
        return _runs[key][1]
    parts = splits()
    rows: list[torch.Tensor] = []
    depth = [0]

    def before(module, inputs):
        # Record only the outermost module call (the model itself), not its layers' inputs.
        if depth[0] == 0 and module.training and torch.is_grad_enabled() and inputs:
            X = inputs[0]
            if isinstance(X, torch.Tensor) and X.dim() == 2 and X.shape[-1] == N_FEATURES:
                rows.append(X.detach().to("cpu", torch.float64))
        depth[0] += 1

    def after(module, inputs, output):
        depth[0] -= 1

    handles = [torch.nn.modules.module.register_module_forward_pre_hook(before),
               torch.nn.modules.module.register_module_forward_hook(after)]
    start = time.perf_counter()
    try:
        result = call(train_capstone, parts["X_train"].copy(), parts["y_train"].copy(),
                      what="train_capstone(X_train, y_train)")
    finally:
        for handle in handles:
            handle.remove()
    seconds = time.perf_counter() - start
    seen = torch.unique(torch.cat(rows), dim=0) if rows else torch.empty(0, N_FEATURES, dtype=torch.float64)
    run = (result, seen, seconds)
    _runs.clear()
    _runs[key] = (train_capstone, run)
    return run


def _unpack(result):
    expect(isinstance(result, tuple) and len(result) == 3, "train_capstone should return (model, mean, std).",
           "a tuple of 3", repr(result)[:80])
    model, mean, std = result
    expect(isinstance(model, nn.Module), "the model train_capstone returns should be an nn.Module.", "nn.Module",
           type(model).__name__)
    for name, value in (("mean", mean), ("std", std)):
        expect(isinstance(value, torch.Tensor) and tuple(value.shape) == (N_FEATURES,),
               f"the {name} train_capstone returns should be a tensor of shape ({N_FEATURES},).",
               f"tensor of shape ({N_FEATURES},)",
               tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__,
               "return one value per feature column, as a float32 tensor.")
    return model.to("cpu"), mean.detach().to("cpu", torch.float64), std.detach().to("cpu", torch.float64)


def _matches(values: torch.Tensor, X: np.ndarray, ddofs=(1, 0), stat="mean") -> bool:
    X = torch.tensor(X, dtype=torch.float64)
    candidates = [X.mean(0)] if stat == "mean" else [X.std(0, correction=d) for d in ddofs]
    return any(torch.allclose(values, c, rtol=1e-4, atol=1e-6) for c in candidates)


def _statistics_problem(mean, std) -> str | None:
    """None if mean and std are the training part's; else a message naming where they came from."""
    parts = splits()
    if _matches(mean, parts["X_train"]) and _matches(std, parts["X_train"], stat="std"):
        return None
    for name, X in (("all 569 rows of the data set, reserved rows included", parts["X_all"]),
                    ("the training and validation parts together", parts["X_dev"]),
                    ("the validation part", parts["X_val"])):
        if _matches(mean, X) or _matches(std, X, stat="std"):
            return f"the mean and std were computed on {name}, not on X_train alone"
    if torch.allclose(mean, torch.zeros_like(mean)) and torch.allclose(std, torch.ones_like(std)):
        return "the mean is all 0 and the std all 1: the features were not standardised"
    return "the mean and std are not X_train's column means and standard deviations"


def _rows_problem(seen: torch.Tensor, mean, std) -> str | None:
    """None if every row the model trained on is a standardised training row; else what else it saw."""
    parts = splits()
    if seen.shape[0] == 0:
        return ("the model never ran in training mode with gradients on rows of 30 features: "
                "it was not trained")

    def near(X: np.ndarray) -> torch.Tensor:
        standardised = (torch.tensor(X, dtype=torch.float64) - mean) / std
        distance = torch.cdist(seen, standardised, p=float("inf"))
        return (distance.min(dim=1).values < 1e-3)

    foreign = ~near(parts["X_train"])
    if not foreign.any():
        return None
    seen_foreign = seen[foreign]
    reserved = near(parts["X_reserved"])[foreign].sum().item()
    if reserved:
        return (f"the model was trained on {reserved} rows of the reserved part, which no one may train on "
                "(did you reload the data set inside train_capstone?)")
    val = near(parts["X_val"])[foreign].sum().item()
    if val:
        return f"the model was trained on {val} rows of the validation part: train only on the rows you are given"
    return (f"the model was trained on {seen_foreign.shape[0]} rows that are not rows of X_train standardised with "
            "the mean and std you return (did you forget to standardise, or standardise differently?)")


def _leak(run) -> str | None:
    """A message if the model saw reserved rows or its statistics came from them."""
    model, mean, std = _unpack(run[0])
    rows = _rows_problem(run[1], mean, std)
    if rows and "reserved" in rows:
        return rows
    stats = _statistics_problem(mean, std)
    if stats and "reserved" in stats:
        return stats
    return None


@student_check
@_one_thread
def check_train_capstone(train_capstone) -> None:
    """train_capstone trains on the standardised training rows only, with X_train's mean and std."""
    run = _train_under_spy(train_capstone)
    model, mean, std = _unpack(run[0])
    stats = _statistics_problem(mean, std)
    expect(stats is None, f"train_capstone(X_train, y_train): {stats}.",
           "X_train.mean(axis=0) and X_train.std(axis=0)", f"mean[:3] = {mean[:3].tolist()}",
           "fit the standardisation on the training part only, then apply that same mean and std to every "
           "other part (lecture 04, 'Train, validation and test splits, and scaling without leakage').")
    rows = _rows_problem(run[1], mean, std)
    expect(rows is None, f"train_capstone(X_train, y_train): {rows}.",
           hint="standardise X_train with its own mean and std, wrap it in your TabularDataset and DataLoader, "
           "and train with train_one_epoch.")
    expect(run[2] < TRAINING_BUDGET_S, f"train_capstone(X_train, y_train) took {run[2]:.1f} s.",
           f"under {TRAINING_BUDGET_S} s", f"{run[2]:.1f} s", "train for fewer epochs or with larger batches.")


# Part C: predictions from raw features ----------------------------------------------------------

@student_check
@_one_thread
def check_predict_raw(predict_raw) -> None:
    """predict_raw(model, mean, std, X_raw) standardises with the given mean and std, then predicts."""
    generator = torch.Generator().manual_seed(12)
    torch.manual_seed(12)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    mean = torch.tensor([10.0, -5.0, 100.0, 0.5])
    std = torch.tensor([2.0, 0.5, 30.0, 0.1])
    for n in (50, 3, 1):
        X_raw = (torch.randn(n, 4, generator=generator) * std * 1.5 + mean + 0.3 * std).numpy().astype(np.float64)
        what = f"predict_raw(model, mean, std, X_raw) for {n} raw row{'s' if n > 1 else ''}"
        model.train()
        y_hat = call(predict_raw, model, mean.clone(), std.clone(), X_raw.copy(), what=what)
        expect(isinstance(y_hat, torch.Tensor) and y_hat.dtype == torch.int64 and tuple(y_hat.shape) == (n,),
               f"{what} should return int64 labels of shape ({n},).", f"int64 tensor of shape ({n},)",
               f"{getattr(y_hat, 'dtype', type(y_hat).__name__)} {tuple(getattr(y_hat, 'shape', ()))}",
               "return what your predict returns.")
        X_std = (torch.tensor(X_raw, dtype=torch.float32) - mean) / std
        expected = inference._reference(model, X_std, 0.5)
        if torch.equal(y_hat.cpu(), expected):
            continue
        hint = ("standardise with the mean and std you are given, (X_raw - mean) / std, then call predict "
                "(lecture 06, 'Predicting on new raw data: the same fitted scaler').")
        raw = inference._reference(model, torch.tensor(X_raw, dtype=torch.float32), 0.5)
        own = torch.tensor(X_raw, dtype=torch.float32)
        if n > 1:
            own = inference._reference(model, (own - own.mean(0)) / own.std(0), 0.5)
        if torch.equal(y_hat.cpu(), raw):
            hint = "you did not standardise X_raw: the model was trained on standardised features."
        elif n > 1 and torch.equal(y_hat.cpu(), own):
            hint = ("you standardised X_raw with its own mean and std; use the training part's mean and std you "
                    "are given, so one row is scaled the same way alone or in a batch.")
        fail(f"{what} gave the wrong labels.", expected.tolist()[:10], y_hat.tolist()[:10], hint)


# Part D: save and load --------------------------------------------------------------------------

@student_check
@_one_thread
def check_checkpoint(MLP, save_checkpoint, load_checkpoint) -> None:
    """save_checkpoint writes a state_dict-based file; load_checkpoint restores model, mean and std."""
    with tempfile.TemporaryDirectory(prefix="capstone-check-") as folder:
        _check_checkpoint_in(folder, MLP, save_checkpoint, load_checkpoint)


def _check_checkpoint_in(folder, MLP, save_checkpoint, load_checkpoint) -> None:
    torch.manual_seed(21)
    model = call(MLP, N_FEATURES, (12, 6), what=f"MLP({N_FEATURES}, (12, 6))")
    mean = torch.linspace(-3, 40, N_FEATURES)
    std = torch.linspace(0.5, 9, N_FEATURES)
    X = torch.randn(8, N_FEATURES, generator=torch.Generator().manual_seed(21))
    with torch.no_grad():
        model.eval()
        expected = model(X)
    path = os.path.join(folder, "capstone_model.pt")
    call(save_checkpoint, model, mean.clone(), std.clone(), path, what="save_checkpoint(model, mean, std, path)")
    expect(os.path.isfile(path), "save_checkpoint(model, mean, std, path) wrote no file at path.",
           hint="torch.save(..., path)")
    try:
        torch.load(path, weights_only=True)
    except Exception as error:  # noqa: BLE001 -- any failure means the file is not plain tensors
        fail("the file save_checkpoint wrote cannot be loaded with torch.load(path, weights_only=True).",
             "a dict of tensors (model.state_dict(), mean, std)", f"{type(error).__name__}",
             "save model.state_dict(), not the model object itself "
             "(lecture 06, 'Saving and loading a state_dict for inference').")
    torch.manual_seed(99)
    fresh = call(MLP, N_FEATURES, (12, 6), what=f"MLP({N_FEATURES}, (12, 6))")
    result = call(load_checkpoint, path, fresh, what="load_checkpoint(path, MLP(30, (12, 6)))")
    expect(isinstance(result, tuple) and len(result) == 3, "load_checkpoint should return (model, mean, std).",
           "a tuple of 3", repr(result)[:80])
    loaded, loaded_mean, loaded_std = result
    expect(isinstance(loaded, nn.Module), "the model load_checkpoint returns should be an nn.Module.",
           "nn.Module", type(loaded).__name__)
    with torch.no_grad():
        loaded.eval()
        found = loaded.to("cpu")(X)
    expect(torch.allclose(found, expected, atol=1e-6),
           "the loaded model gives different logits from the saved one.", expected[:3].flatten().tolist(),
           found[:3].flatten().tolist(),
           "load the saved weights into the fresh model with model.load_state_dict(...) and return it.")
    for name, value, saved in (("mean", loaded_mean, mean), ("std", loaded_std, std)):
        expect(isinstance(value, torch.Tensor) and torch.allclose(value.cpu().float(), saved),
               f"load_checkpoint returned a different {name} from the one saved.", saved[:3].tolist(),
               value[:3].tolist() if isinstance(value, torch.Tensor) else type(value).__name__,
               "save the mean and std in the same file as the weights, and return them from load_checkpoint.")


# Part E: accuracy on the reserved rows ----------------------------------------------------------

@student_check
@_one_thread
def check_reserved_accuracy(train_capstone, minimum: float) -> None:
    """The model train_capstone builds scores at least `minimum` accuracy on the reserved rows."""
    run = _train_under_spy(train_capstone)
    model, mean, std = _unpack(run[0])
    leak = _leak(run)
    expect(leak is None, f"the reserved rows cannot score this model: {leak}.",
           hint="train and standardise on X_train only; the reserved rows measure a model that never saw them.")
    parts = splits()
    X = (torch.tensor(parts["X_reserved"], dtype=torch.float64) - mean) / std
    y_hat = inference._reference(model, X.float(), 0.5).numpy()
    accuracy = float((y_hat == parts["y_reserved"]).mean())
    expect(
        accuracy >= minimum,
        f"the model train_capstone(X_train, y_train) builds scores {accuracy:.3f} accuracy on the "
        f"{len(y_hat)} reserved rows.",
        f">= {minimum:.2f}",
        f"{accuracy:.3f}",
        "check your validation accuracy first; standardise with the training mean and std, train for more epochs "
        "or with a larger learning rate (Adam with lr=1e-2 for 20 epochs is plenty), and keep the output a raw logit "
        "trained with BCEWithLogitsLoss.",
    )
