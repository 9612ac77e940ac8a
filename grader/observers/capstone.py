"""Observers for exercise 08 (capstone): the building blocks, train_capstone, predict_raw and the checkpoint.

The input builders here (the data splits, the grader's small models and rows) are shared with the
judge, which calls them again in the trusted process instead of reading inputs back from an
observation. For train_capstone the observer records what the judge needs to rebuild the trained
model itself: the steps of its forward pass in the order they run (every leaf module, with its
class, parameters, buffers and settings, and every torch.nn.functional or torch activation called
outside a module, such as F.relu), the mean and std it returns, and its logits on the reserved rows;
plus every distinct row the model was trained on. The judge decides which of those rows are reserved,
which steps it can rebuild, and scores the rebuilt model.
"""

import copy
import functools
import os
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from grader.observation import CALL, ENCODED, RAISED, DictOf, ListOf, OneOf, OrMissing, capture, encode, observes
from grader.observers import inference

# The notebook's locked setup cell splits the data with these (tests/test_checks_capstone.py checks it).
RESERVED_FRACTION = 0.2
RESERVED_SEED = 7
VAL_FRACTION = 0.25
VAL_SEED = 0
N_FEATURES = 30
# More distinct training rows than this are not sent (the count is): the observation stays a few MB.
MAX_SEEN_ROWS = 20_000
# torch's own grad-mode reader, saved when the kernel imports this module, before any student code: a
# train_capstone that replaces torch.is_grad_enabled cannot hide what it trained on.
_GRAD_ENABLED = torch._C.is_grad_enabled
# A forward pass with more steps than this is not sent in full (the judge then cannot rebuild it).
MAX_STEPS = 500


def _one_thread(observe):
    """Run an observer with one torch thread (tiny models: on a busy 2-core machine thread hand-offs make
    every small op many times slower) and leave the kernel's thread count and random state as they were."""

    @functools.wraps(observe)
    def run(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng(devices=[]):
                return observe(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return run


def _seeded(seed: int, build):
    """`build()` under torch.manual_seed(seed), leaving the caller's random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _call(function, *args, **kwargs) -> tuple[dict, object]:
    """`capture(function, ...)` and the raw result (None if it raised), for observing the result further."""
    kept = []

    def keep(*a, **k):
        kept.append(function(*a, **k))
        return kept[0]

    record = capture(keep, *args, **kwargs)
    return record, (kept[0] if kept else None)


# What `_status` leaves of a call that returned.
STATUS = {"value": None}


def _status(record: dict) -> dict:
    """A captured call without its value: whether it raised is all that is needed."""
    return record if "raised" in record else {"value": None}


def _state(model) -> list | None:
    """[name, tensor] for every entry of the model's state_dict, or None if it has none to give."""
    try:
        return [[name, encode(value)] for name, value in model.state_dict().items()]
    except Exception:  # noqa: BLE001 -- whatever the student's object is, it is described, not trusted
        return None


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


def reserved_inputs(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """The reserved rows standardised with the given statistics, as float32 model inputs."""
    X = torch.tensor(splits()["X_reserved"], dtype=torch.float64)
    return ((X - mean.detach().to("cpu", torch.float64)) / std.detach().to("cpu", torch.float64)).float()


# Part A: the building blocks ---------------------------------------------------------------------

# MLP(*args), and the width of the rows it is called on.
MLP_DEFAULTS = (10, (32, 64), 1)  # MLP(in_features=10, hidden=(32, 64), out_features=1), as the exercise states
MLP_CASES = [((), 10), ((30,), 30), ((5, (7,), 2), 5), ((30, (16, 8, 4)), 30)]  # (MLP's arguments, input width)


def mlp_widths(args: tuple) -> tuple[int, ...]:
    """The widths MLP(*args) must chain: in_features, each hidden layer's, out_features."""
    in_features, hidden, out_features = (*args, *MLP_DEFAULTS[len(args):])
    return (in_features, *hidden, out_features)


def mlp_input(width: int) -> torch.Tensor:
    return torch.randn(16, width, generator=torch.Generator().manual_seed(1)) * 3


def dataset_input() -> tuple[np.ndarray, np.ndarray]:
    return np.arange(21, dtype=np.float64).reshape(7, 3) / 4, np.array([0, 1, 1, 0, 1, 0, 0])


def epoch_case() -> tuple[nn.Module, torch.utils.data.DataLoader]:
    """A model (fresh weights from seed 3 on every call) and 10 rows in batches of 4, not shuffled."""
    model = _seeded(3, lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.0), nn.Linear(4, 1)))
    X = torch.randn(10, 3, generator=torch.Generator().manual_seed(3))
    y = (X[:, :1] > 0).float()
    return model, torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=4)


def _observe_mlp(MLP) -> list[dict]:
    cases = []
    for args, width in MLP_CASES:
        torch.manual_seed(0)
        record, model = _call(MLP, *args)
        if "raised" in record:
            cases.append({"made": record})
            continue
        case = {"made": _status(record), "module": isinstance(model, nn.Module), "type": type(model).__name__}
        if case["module"]:
            # Every nn.Linear the module registers, in registration order, with its parameters.
            case["linears"] = [{"weight": encode(m.weight), "bias": None if m.bias is None else encode(m.bias)}
                               for m in model.modules() if isinstance(m, nn.Linear)]
            case["logits"] = capture(model, mlp_input(width))
        cases.append(case)
    return cases


def _observe_dataset(TabularDataset) -> dict:
    X, y = dataset_input()
    record, dataset = _call(TabularDataset, X.copy(), y.copy())
    if "raised" in record:
        return {"made": record}
    return {"made": _status(record), "len": capture(len, dataset), "item": capture(lambda i: dataset[i], 5)}


def _observe_epoch(train_one_epoch) -> dict:
    model, loader = epoch_case()
    model.eval()  # train_one_epoch must switch it back with model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    result = capture(train_one_epoch, model, loader, nn.BCEWithLogitsLoss(), optimizer)
    return {"result": result, "training": bool(model.training),
            "parameters": [encode(p) for p in model.parameters()]}


_MLP_CASE = OneOf({"made": RAISED}, {"made": STATUS, "module": False, "type": str},
                  {"made": STATUS, "module": True, "type": str, "linears": [{"weight": ENCODED, "bias": ENCODED}],
                   "logits": CALL})


@observes({"mlp": ListOf(_MLP_CASE, length=len(MLP_CASES)),
           "dataset": OneOf({"made": RAISED}, {"made": STATUS, "len": CALL, "item": CALL}),
           "epoch": {"result": CALL, "training": bool, "parameters": [ENCODED]},
           "labels": inference.observe_predict_labels.shape, "mode": inference.observe_predict_mode.shape})
@_one_thread
def observe_building_blocks(MLP, TabularDataset, train_one_epoch, predict, **kwargs) -> dict:
    """MLP's layers and logits, TabularDataset's length and item, the parameters after one train_one_epoch,
    and predict's labels (with a spy's record of the forward passes)."""
    return {"mlp": _observe_mlp(MLP), "dataset": _observe_dataset(TabularDataset),
            "epoch": _observe_epoch(train_one_epoch), "labels": inference.observe_predict_labels(predict),
            "mode": inference.observe_predict_mode(predict)}


# Parts B and E: one training run, observed once ----------------------------------------------------

_runs: dict[int, tuple] = {}


def forget_runs() -> None:
    """Drop the cached training run (the next observation trains again)."""
    _runs.clear()


# Settings that define what a layer computes in evaluation mode; recorded when they are plain values.
_SETTINGS = ("eps", "negative_slope", "alpha", "approximate", "beta", "threshold", "min_val", "max_val", "lambd",
             "normalized_shape", "track_running_stats", "start_dim", "end_dim", "p")


def _plain(value):
    """A setting as JSON can carry it, or None."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)) and all(type(v) is int for v in value):
        return list(value)
    return None


def _kind(module: nn.Module) -> str | None:
    """The torch.nn class a module is (the first one in its class hierarchy), e.g. "ReLU" for a subclass of it."""
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn.modules.") and cls is not nn.Module:
            return cls.__name__
    return None


def _layer(module: nn.Module) -> dict:
    settings = {name: _plain(getattr(module, name)) for name in _SETTINGS if hasattr(module, name)}
    return {"type": type(module).__name__, "kind": _kind(module),
            "parameters": {name: encode(p) for name, p in module.named_parameters(recurse=False)},
            "buffers": {name: encode(b) for name, b in module.named_buffers(recurse=False) if b is not None},
            "config": {name: value for name, value in settings.items() if value is not None}}


def _functionals() -> dict:
    """Activations a forward pass may call as functions: the function, its layer kind, and its settings in
    positional order after the input, with their defaults."""
    table = {}

    def add(kind, names, *functions):
        for function in functions:
            if function is not None:
                table[function] = (kind, names)

    tensor = torch.Tensor
    add("ReLU", (), F.relu, torch.relu, tensor.relu, getattr(F, "relu_", None), torch.relu_, tensor.relu_)
    add("LeakyReLU", (("negative_slope", 0.01),), F.leaky_relu)
    add("ELU", (("alpha", 1.0),), F.elu)
    add("CELU", (("alpha", 1.0),), F.celu)
    add("SELU", (), F.selu, torch.selu)
    add("GELU", (("approximate", "none"),), F.gelu)
    add("SiLU", (), F.silu)
    add("Mish", (), F.mish)
    add("Softplus", (("beta", 1.0), ("threshold", 20.0)), F.softplus)
    add("Tanh", (), torch.tanh, tensor.tanh)
    add("Sigmoid", (), torch.sigmoid, tensor.sigmoid)
    add("ReLU6", (), F.relu6)
    add("Hardtanh", (("min_val", -1.0), ("max_val", 1.0)), F.hardtanh)
    add("Hardswish", (), F.hardswish)
    add("Hardsigmoid", (), F.hardsigmoid)
    add("Softsign", (), F.softsign)
    add("Dropout", (("p", 0.5), ("training", True)), F.dropout)
    return table


_FUNCTIONALS = _functionals()
# Calls that only look at a tensor: left out of the unknown operations a message names.
_LOOKS = {"__get__", "size", "dim", "numel", "__len__", "is_floating_point", "is_contiguous"}


class _Steps(TorchFunctionMode):
    """Records, in order, every leaf module called (through the hooks) and every activation function called
    outside a leaf module; names the other operations done outside modules, for the judge's message."""

    def __init__(self):
        super().__init__()
        self.steps: list = []  # a leaf module (described after the forward pass, outside this mode) or a dict
        self.others: list[str] = []
        self.inside = 0  # how many leaf modules are running

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.inside == 0:
            known = _FUNCTIONALS.get(func)
            if known is not None:
                self.add_functional(func, args, kwargs, *known)
            else:
                name = getattr(func, "__name__", type(func).__name__)
                if name not in _LOOKS and name not in self.others and len(self.others) < 20:
                    self.others.append(name)
        return func(*args, **kwargs)

    def add(self, step) -> None:
        if len(self.steps) <= MAX_STEPS:
            self.steps.append(step)

    def add_functional(self, func, args, kwargs, kind: str, names) -> None:
        """A step that is a function (`torch.relu`, `F.max_pool2d`), with the settings it was called with."""
        config = {}
        for i, (name, default) in enumerate(names, start=1):
            value = _plain(args[i] if len(args) > i else kwargs.get(name, default))
            if value is not None:
                config[name] = value
        self.add({"type": f"{getattr(func, '__module__', None) or 'torch'}.{func.__name__}", "kind": kind,
                  "functional": True, "parameters": {}, "buffers": {}, "config": config})

    def before(self, module, inputs):
        if next(module.children(), None) is None:
            self.inside += 1

    def after(self, module, inputs, output):
        if next(module.children(), None) is None:
            self.inside -= 1
            if self.inside == 0:
                self.add(module)

    def described(self) -> list[dict]:
        return [_layer(step) if isinstance(step, nn.Module) else step for step in self.steps]


# What `record_forward` records: a step is a leaf module or an activation function ("functional"); a forward pass
# longer than MAX_STEPS keeps one step more, which tells the judge it was cut.
STEP = {"type": str, "kind": OneOf(str, None), "functional": OrMissing(True), "parameters": DictOf(ENCODED),
        "buffers": DictOf(ENCODED), "config": DictOf(OneOf(bool, int, float, str, [int]))}
FORWARD_RECORD = {"logits": CALL, "layers": ListOf(STEP, at_most=MAX_STEPS + 1), "other_operations": [str]}


class _WatchingForwards:
    """Within `with`, `before` and `after` run around every module's forward pass, whichever model it is."""

    def __init__(self, before, after):
        self.before, self.after = before, after

    def __enter__(self):
        self.handles = [torch.nn.modules.module.register_module_forward_pre_hook(self.before),
                        torch.nn.modules.module.register_module_forward_hook(self.after)]
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


def record_forward(model: nn.Module, steps: _Steps, X: torch.Tensor) -> dict:
    """The model's logits on `X` (in evaluation mode, on the CPU), and the steps of its forward pass in order, as
    `steps` records and describes them."""
    def logits(X):
        model.to("cpu")
        model.eval()
        with _WatchingForwards(steps.before, steps.after), torch.no_grad(), steps:
            return model(X)

    observed = {"logits": capture(logits, X)}
    observed["layers"] = steps.described()
    observed["other_operations"] = steps.others
    return observed


def _observe_model(model: nn.Module, mean, std) -> dict:
    """The model's logits on the standardised reserved rows, and the steps of its forward pass in order."""
    try:
        X = reserved_inputs(mean, std)
    except Exception:  # noqa: BLE001 -- statistics that are not (30,) tensors: the judge stops before scoring
        return {}
    return record_forward(model, _Steps(), X)


class ModelInputs(_WatchingForwards):
    """Within `with`, every batch a model is run on (the outermost module call, not its layers) that `wanted(X)`
    accepts, as 2-D rows `shape(X)`: `trained` with gradients on, in training or evaluation mode alike (a model
    can be trained in eval mode), `looked` with them off. Grad mode is read with torch's own function, saved
    before student code ran."""

    def __init__(self, wanted, shape):
        super().__init__(self._before, self._after)
        self.wanted, self.shape = wanted, shape
        self.trained: list[torch.Tensor] = []
        self.looked: list[torch.Tensor] = []
        self.depth = 0

    def _before(self, module, inputs):
        if self.depth == 0 and inputs and isinstance(inputs[0], torch.Tensor) and self.wanted(inputs[0]):
            rows = self.shape(inputs[0].detach().to("cpu", torch.float32))
            (self.trained if _GRAD_ENABLED() else self.looked).append(rows)
        self.depth += 1

    def _after(self, module, inputs, output):
        self.depth -= 1


    # What `observed` records.
    SHAPE = {"seen": ENCODED, "seen_total": int, "looked": ENCODED, "looked_total": int}

    def observed(self, width: int) -> dict:
        """The distinct rows of each kind (at most MAX_SEEN_ROWS) and how many there were."""
        found = {}
        for name, kind in (("seen", self.trained), ("looked", self.looked)):
            rows = torch.unique(torch.cat(kind), dim=0) if kind else torch.empty(0, width)
            found[name], found[f"{name}_total"] = encode(rows[:MAX_SEEN_ROWS]), int(rows.shape[0])
        return found


def _observe_training(train_capstone) -> dict:
    """Run train_capstone on the training part once per function, recording every row it trains on."""
    key = id(train_capstone)
    if key in _runs and _runs[key][0] is train_capstone:
        return copy.deepcopy(_runs[key][1])
    parts = splits()
    width = parts["X_train"].shape[1]
    start = time.perf_counter()
    with ModelInputs(lambda X: X.dim() == 2 and X.shape[-1] == width, lambda X: X) as inputs:
        record, result = _call(train_capstone, parts["X_train"].copy(), parts["y_train"].copy())
    observed = {"result": record, "seconds": time.perf_counter() - start, **inputs.observed(width)}
    if type(result) is tuple and len(result) == 3:
        model, mean, std = result
        observed["module"] = isinstance(model, nn.Module)
        if observed["module"] and isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor):
            observed.update(_observe_model(model, mean, std))
    _runs.clear()
    _runs[key] = (train_capstone, observed)
    return copy.deepcopy(observed)


# What a training run records: what train_capstone returned, and, when that was a model with a mean and std that
# standardise the reserved rows, the model's forward pass on them.
_TRAINED = {"result": CALL, "seconds": float, **ModelInputs.SHAPE}
TRAINED = OneOf(_TRAINED, {**_TRAINED, "module": bool}, {**_TRAINED, "module": True, **FORWARD_RECORD})


@observes(TRAINED)
@_one_thread
def observe_train_capstone(train_capstone, **kwargs) -> dict:
    """train_capstone(X_train, y_train): what it returned, the rows it trained on, how long it took, and
    the returned model's layers and logits on the reserved rows."""
    return _observe_training(train_capstone)


@observes(TRAINED)
@_one_thread
def observe_reserved_accuracy(train_capstone, **kwargs) -> dict:
    """The same observation as observe_train_capstone (the same cached training run)."""
    return _observe_training(train_capstone)


# Part C: predictions from raw features ----------------------------------------------------------

# How many raw rows predict_raw is called on, call by call.
RAW_ROWS = (50, 3, 1)


def predict_raw_case() -> tuple[nn.Module, torch.Tensor, torch.Tensor, list[np.ndarray]]:
    """A model (fresh weights from seed 12), the statistics to pass, and RAW_ROWS raw rows."""
    model = _seeded(12, lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)))
    mean = torch.tensor([10.0, -5.0, 100.0, 0.5])
    std = torch.tensor([2.0, 0.5, 30.0, 0.1])
    generator = torch.Generator().manual_seed(12)
    rows = [(torch.randn(n, 4, generator=generator) * std * 1.5 + mean + 0.3 * std).numpy().astype(np.float64)
            for n in RAW_ROWS]
    return model, mean, std, rows


@observes({"calls": ListOf(CALL, length=len(RAW_ROWS))})
@_one_thread
def observe_predict_raw(predict_raw, **kwargs) -> dict:
    """predict_raw's labels for 50, 3 and 1 raw rows, the model left in training mode before each call."""
    model, mean, std, rows = predict_raw_case()
    calls = []
    for X_raw in rows:
        model.train()
        calls.append(capture(predict_raw, model, mean.clone(), std.clone(), X_raw.copy()))
    return {"calls": calls}


# Part D: save and load --------------------------------------------------------------------------

def checkpoint_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The mean and std to save, and the rows the saved and the loaded model are compared on."""
    return (torch.linspace(-3, 40, N_FEATURES), torch.linspace(0.5, 9, N_FEATURES),
            torch.randn(8, N_FEATURES, generator=torch.Generator().manual_seed(21)))


def _logits(model, X):
    with torch.no_grad():
        model.eval()
        return model.to("cpu")(X)


_STATE = OneOf(None, [(str, ENCODED)])
_SAVED = {"made": STATUS, "saved_logits": CALL, "saved_state": _STATE}
_WRITTEN = {**_SAVED, "save": STATUS, "file": True}
_LOADED = {**_WRITTEN, "weights_only": None, "fresh": STATUS, "load": CALL}
# Each place the observation stops: MLP raised; save raised or wrote no file; the file is not plain tensors; the
# fresh MLP raised; load_checkpoint returned something other than three things, not a module, or a module.
CHECKPOINT = OneOf({"made": RAISED}, {**_SAVED, "save": RAISED, "file": bool},
                   {**_SAVED, "save": STATUS, "file": False}, {**_WRITTEN, "weights_only": str},
                   {**_WRITTEN, "weights_only": None, "fresh": RAISED},
                   _LOADED, {**_LOADED, "loaded_module": False},
                   {**_LOADED, "loaded_module": True, "loaded_logits": CALL, "loaded_state": _STATE})


@observes(CHECKPOINT)
@_one_thread
def observe_checkpoint(MLP, save_checkpoint, load_checkpoint, **kwargs) -> dict:
    """The saved model's state and logits, whether the file exists and loads with weights_only=True, and the
    loaded model's state and logits with the mean and std load_checkpoint returns."""
    with tempfile.TemporaryDirectory(prefix="capstone-check-") as folder:
        return _observe_checkpoint_in(folder, MLP, save_checkpoint, load_checkpoint)


def _observe_checkpoint_in(folder, MLP, save_checkpoint, load_checkpoint) -> dict:
    mean, std, X = checkpoint_inputs()
    torch.manual_seed(21)
    record, model = _call(MLP, N_FEATURES, (12, 6))
    observed = {"made": _status(record)}
    if "raised" in record:
        return observed
    observed["saved_logits"] = capture(_logits, model, X)
    observed["saved_state"] = _state(model)
    path = os.path.join(folder, "capstone_model.pt")
    observed["save"] = _status(capture(save_checkpoint, model, mean.clone(), std.clone(), path))
    observed["file"] = os.path.isfile(path)
    if "raised" in observed["save"] or not observed["file"]:
        return observed
    try:
        torch.load(path, weights_only=True)
        observed["weights_only"] = None
    except Exception as error:  # noqa: BLE001 -- any failure means the file is not plain tensors
        observed["weights_only"] = type(error).__name__
        return observed
    torch.manual_seed(99)
    record, fresh = _call(MLP, N_FEATURES, (12, 6))
    observed["fresh"] = _status(record)
    if "raised" in record:
        return observed
    record, result = _call(load_checkpoint, path, fresh)
    observed["load"] = record
    if type(result) is tuple and len(result) == 3:
        observed["loaded_module"] = isinstance(result[0], nn.Module)
        if observed["loaded_module"]:
            observed["loaded_logits"] = capture(_logits, result[0], X)
            observed["loaded_state"] = _state(result[0])
    return observed


# Part F: early stopping, a threshold chosen on validation ----------------------------------------

# fit_capstone is graded with these (the notebook's defaults are other values: a fixed patience shows).
GRADED_MAX_EPOCHS = 60
GRADED_PATIENCE = 3
# More evaluations on validation rows than this are not sent (the count is).
MAX_EVALUATIONS = 2_000


class _Evaluations(_WatchingForwards):
    """Within `with`, every batch a model is run on with gradients off (the outermost module call): its rows and
    its outputs, in order, for the judge to tell which were validation passes and what loss they had."""

    def __init__(self, width: int):
        super().__init__(self._before, self._after)
        self.width = width
        self.calls: list[dict] = []
        self.dropped = 0
        self.depth = 0

    def _before(self, module, inputs):
        self.depth += 1

    def _after(self, module, inputs, output):
        self.depth -= 1
        if self.depth or _GRAD_ENABLED() or not inputs or not isinstance(inputs[0], torch.Tensor):
            return
        X = inputs[0]
        if not (X.dim() == 2 and X.shape[-1] == self.width and isinstance(output, torch.Tensor)):
            return
        if len(self.calls) >= MAX_EVALUATIONS:
            self.dropped += 1
            return
        self.calls.append({"X": encode(X.detach().to("cpu", torch.float32)),
                           "out": encode(output.detach().to("cpu", torch.float32))})



def validation_inputs(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """The validation rows standardised with the given statistics, as float32 model inputs."""
    X = torch.tensor(splits()["X_val"], dtype=torch.float64)
    return ((X - mean.detach().to("cpu", torch.float64)) / std.detach().to("cpu", torch.float64)).float()


_FITTED = {"result": CALL, "seconds": float, **ModelInputs.SHAPE,
           "evaluations": ListOf({"X": ENCODED, "out": ENCODED}, at_most=MAX_EVALUATIONS), "evaluations_dropped": int}
_PARTS = {"parts": (CALL, CALL, CALL)}


# What fit_capstone returned and, when that was (model, mean, std, history), the model's forward pass on the
# validation rows.
@observes(OneOf(_FITTED, {**_FITTED, **_PARTS, "module": bool},
                {**_FITTED, **_PARTS, "module": True, **FORWARD_RECORD}))
@_one_thread
def observe_early_stopping(fit_capstone, **kwargs) -> dict:
    """fit_capstone(X_train, y_train, X_val, y_val, max_epochs, patience): what it returned, the rows it trained
    on, every batch it evaluated with gradients off (rows and outputs), how long it took, and the returned model's
    layers and logits on the standardised validation rows."""
    parts = splits()
    width = parts["X_train"].shape[1]
    start = time.perf_counter()
    with ModelInputs(lambda X: X.dim() == 2 and X.shape[-1] == width, lambda X: X) as inputs, \
            _Evaluations(width) as evaluations:
        record, result = _call(fit_capstone, parts["X_train"].copy(), parts["y_train"].copy(), parts["X_val"].copy(),
                               parts["y_val"].copy(), max_epochs=GRADED_MAX_EPOCHS, patience=GRADED_PATIENCE)
    observed = {"result": _status(record), "seconds": time.perf_counter() - start, **inputs.observed(width),
                "evaluations": evaluations.calls, "evaluations_dropped": evaluations.dropped}
    if type(result) is tuple and len(result) == 4:
        model, mean, std, history = result
        observed["parts"] = [capture(lambda v: v, history), capture(lambda v: v, mean), capture(lambda v: v, std)]
        observed["module"] = isinstance(model, nn.Module)
        if observed["module"] and isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor):
            try:
                X = validation_inputs(mean, std)
            except Exception:  # noqa: BLE001 -- statistics that are not (30,) tensors: the judge stops before
                X = None
            if X is not None:
                observed.update(record_forward(model, _Steps(), X))
    elif "raised" not in record:
        observed["result"] = record
    return observed


def threshold_model() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The grader's model for choose_capstone_threshold (one linear layer along the class means' difference, weak
    enough that the best threshold matters) and X_train's mean and std."""
    parts = splits()
    mean = torch.tensor(parts["X_train"].mean(axis=0), dtype=torch.float32)
    std = torch.tensor(parts["X_train"].std(axis=0), dtype=torch.float32)
    X = (torch.tensor(parts["X_train"], dtype=torch.float32) - mean) / std
    y = torch.tensor(parts["y_train"])
    direction = X[y == 1].mean(0) - X[y == 0].mean(0)
    model = nn.Linear(N_FEATURES, 1)
    with torch.no_grad():
        model.weight.copy_(0.15 * direction / direction.norm())
        model.bias.fill_(0.4)
    return model, mean, std


@observes({"result": CALL, **ModelInputs.SHAPE})
@_one_thread
def observe_validation_threshold(choose_capstone_threshold, **kwargs) -> dict:
    """choose_capstone_threshold(model, mean, std, X_val, y_val) for the grader's model, and every row the model
    was run on meanwhile."""
    parts = splits()
    model, mean, std = threshold_model()
    with ModelInputs(lambda X: X.dim() == 2 and X.shape[-1] == N_FEATURES, lambda X: X) as inputs:
        record = capture(choose_capstone_threshold, model, mean.clone(), std.clone(), parts["X_val"].copy(),
                         parts["y_val"].copy())
    return {"result": record, **inputs.observed(N_FEATURES)}
