"""Observers for exercise 05 (the training loop): train_one_epoch, evaluate, fixed_fit and
fit_with_early_stopping, run behind spies.

Each observer builds the grader's own seeded models, loaders, criteria and optimizers (`config`),
runs the student's function on them and records what happened as plain data:

- `_Spy` wraps the model and records, for every forward pass, the mode of every submodule, the
  grad mode (read with torch's own function, saved before any student code ran) and the batch's
  device, and for the whole-loop checks the batch itself and whether the output requires grad; it
  also records calls of `model.zero_grad()`;
- `_SpyOptimizer` wraps a real optimizer and records `zero_grad()` and `step()`, with the
  gradients present at each step;
- `_Criterion` records each loss value it returns;
- `_Loader` yields batches as `_Tracked` tensors, which count `.to(...)` calls, so a loop that
  ignores `device` is seen even on a machine without a GPU.

The global random state is seeded with `TRAIN_SEED` (or the epoch number in `observe_fit`) right
before the student's function runs, and the judge seeds it the same way before its reference run,
so dropout draws the same masks in both.
"""

import functools

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from grader.observation import CALL, ENCODED, RAISED, ListOf, OneOf, OrMissing, capture, encode, observes

# The configurations train_one_epoch runs on, and whether the model starts in eval mode.
TRAIN_RUNS = (("mlp_dropout_sgd", True), ("linear_mse_adam", False), ("deep_dropout_adam", True))
EVALUATE_RUNS = ("mlp_dropout_sgd", "linear_mse_adam", "deep_dropout_adam")
FIT_KIND, FIT_EPOCHS, FIT_VALIDATION = "deep_dropout_adam", 5, (17, 5)  # validation: first 17 samples, batches of 5
TRAIN_SEED = 100
FIXED_FIT_EPOCHS = 3
_moves: list[str] = []
# torch's own grad-mode and requires_grad readers, kept before any student code runs (see _Spy).
_GRAD_ENABLED = torch._C.is_grad_enabled
_REQUIRES_GRAD = torch._C.TensorBase.requires_grad.__get__


def one_thread(function):
    """Run with one torch thread and its own random state, both restored afterwards.

    These tensors are tiny, and on a busy 2-core machine thread hand-offs made each small op ~100x slower.
    Seeding for dropout must not leak: fork_rng gives the notebook its random state back.
    """

    @functools.wraps(function)
    def run(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng():
                return function(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return run


def config(kind: str):
    """A seeded model, data loader, criterion and optimizer factory. Batch sizes never divide the data."""
    generator = torch.Generator().manual_seed(len(kind))
    if kind == "mlp_dropout_sgd":
        torch.manual_seed(1)
        model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
        X = torch.randn(30, 3, generator=generator)
        y = (X[:, :1] * X[:, 1:2] > 0).float()
        loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True,
                            generator=torch.Generator().manual_seed(2))
        return model, loader, nn.BCEWithLogitsLoss(), lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9)
    if kind == "linear_mse_adam":
        torch.manual_seed(3)
        model = nn.Linear(5, 2)
        X = torch.randn(25, 5, generator=generator)
        y = X[:, :2] * 3 - 1 + 0.1 * torch.randn(25, 2, generator=generator)
        loader = DataLoader(TensorDataset(X, y), batch_size=7)
        return model, loader, nn.MSELoss(), lambda p: torch.optim.Adam(p, lr=0.05)
    if kind == "deep_dropout_adam":
        torch.manual_seed(4)
        model = nn.Sequential(nn.Linear(4, 12), nn.ReLU(), nn.Dropout(0.5), nn.Linear(12, 8), nn.ReLU(),
                              nn.Linear(8, 1))
        X = torch.randn(41, 4, generator=generator)
        y = (X.sum(1, keepdim=True) > 0).float()
        loader = DataLoader(TensorDataset(X, y), batch_size=10, shuffle=True,
                            generator=torch.Generator().manual_seed(5))
        return model, loader, nn.BCEWithLogitsLoss(), lambda p: torch.optim.Adam(p, lr=0.02)
    raise ValueError(kind)


def used_model(kind: str) -> nn.Module:
    """The model of `kind` as evaluate receives it: moved off its initial weights, with leftover gradients."""
    model = config(kind)[0]
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=generator))
            p.grad = torch.randn(p.shape, generator=generator)
    return model


def fit_validation(loader: DataLoader) -> DataLoader:
    """The first samples of `loader`'s data, unshuffled. Its own generator: iterating a DataLoader without one
    draws from the global random state, so an extra validation pass would shift the dropout masks of training."""
    size, batch_size = FIT_VALIDATION
    return DataLoader(TensorDataset(*[t[:size] for t in loader.dataset.tensors]), batch_size=batch_size,
                      generator=torch.Generator().manual_seed(6))


class _Tracked(torch.Tensor):
    """A batch tensor that records every .to(...) / .cuda() called on it or on tensors computed from it."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in ("to", "cuda"):
            _moves.append(func.__name__)
        return super().__torch_function__(func, types, args, kwargs or {})


class _Loader:
    """Iterates a real DataLoader, handing out its batches as _Tracked tensors."""

    def __init__(self, loader: DataLoader, track: bool = True):
        self.loader, self.track, self.dataset, self.batch_size = loader, track, loader.dataset, loader.batch_size

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for X, y in self.loader:
            yield (X.as_subclass(_Tracked), y.as_subclass(_Tracked)) if self.track else (X, y)


class _Spy(nn.Module):
    """Wraps a model; records each forward pass's modes, grad mode and device (and, with `inputs`, its batch and
    whether its output requires grad), and calls of model.zero_grad().

    The grad mode is read with torch's own functions saved when this module was imported, before any student
    code ran: a notebook that replaces torch.is_grad_enabled (or Tensor.requires_grad) cannot change the record.
    """

    def __init__(self, model: nn.Module, log: list, inputs: bool = False):
        super().__init__()
        self.model, self.log, self.inputs = model, log, inputs

    def forward(self, X):
        entry = {"event": "forward", "training": [bool(m.training) for m in self.modules()],
                 "grad": bool(_GRAD_ENABLED()), "device": str(getattr(X, "device", "none"))}
        self.log.append(entry)
        out = self.model(X)
        if self.inputs:
            entry["X"] = encode(X) if isinstance(X, torch.Tensor) else None
            entry["graph"] = isinstance(out, torch.Tensor) and bool(_REQUIRES_GRAD(out))
        return out

    def zero_grad(self, set_to_none: bool = True):
        self.log.append({"event": "zero_grad"})
        super().zero_grad(set_to_none=set_to_none)


class _SpyOptimizer:
    """Wraps a real optimizer; records zero_grad() and step() with the gradients seen at each step."""

    def __init__(self, optimizer: torch.optim.Optimizer, log: list):
        self.optimizer, self.log = optimizer, log

    def zero_grad(self, *args, **kwargs):
        self.log.append({"event": "zero_grad"})
        return self.optimizer.zero_grad(*args, **kwargs)

    def step(self, *args, **kwargs):
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.log.append({"event": "step", "grads": [None if p.grad is None else encode(p.grad) for p in params]})
        return self.optimizer.step(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.optimizer, name)


class _Criterion(nn.Module):
    """Wraps a loss function and records the values it returned."""

    def __init__(self, criterion: nn.Module, log: list):
        super().__init__()
        self.criterion, self.log = criterion, log

    def forward(self, y_hat, y):
        loss = self.criterion(y_hat, y)
        value = loss.detach().item() if isinstance(loss, torch.Tensor) and loss.numel() == 1 else None
        self.log.append({"event": "loss", "value": encode(value)})
        return loss


# What the spies log: forward passes (with `inputs`, the batch, and whether the output requires grad once the model
# returned), zero_grad and step calls, and the criterion's values.
LOG = [OneOf({"event": "forward", "training": [bool], "grad": bool, "device": str, "X": OrMissing(ENCODED),
              "graph": OrMissing(bool)},
             {"event": "zero_grad"},
             {"event": "step", "grads": [ENCODED]},
             {"event": "loss", "value": ENCODED})]


def _state(model: nn.Module) -> dict:
    return encode({k: v.detach().clone() for k, v in model.state_dict().items()})


def _grads(model: nn.Module) -> list:
    return [None if p.grad is None else encode(p.grad) for p in model.parameters()]


# train_one_epoch -------------------------------------------------------------------------------


def _observe_train_run(train_one_epoch, kind, start_eval):
    model, loader, criterion, make_optimizer = config(kind)
    initial = _state(model)
    log: list = []
    spy = _Spy(model, log)
    optimizer = _SpyOptimizer(make_optimizer(spy.parameters()), log)
    if start_eval:
        spy.eval()  # as a previous evaluate() would leave it
    moves_before = len(_moves)
    torch.manual_seed(TRAIN_SEED)
    result = capture(train_one_epoch, spy, _Loader(loader), _Criterion(criterion, log), optimizer, device="cpu")
    return {"initial": initial, "result": result, "after": _state(model), "log": log,
            "moves": len(_moves) - moves_before}


def _observe_train_on_gpu(train_one_epoch):
    model, loader, criterion, make_optimizer = config("mlp_dropout_sgd")
    log: list = []
    spy = _Spy(model, log).to("cuda")
    optimizer = make_optimizer(spy.parameters())
    result = capture(train_one_epoch, spy, loader, criterion, optimizer, device="cuda")
    return {"result": result, "devices": [entry["device"] for entry in log if entry["event"] == "forward"]}


@observes({"runs": {kind: {"initial": ENCODED, "result": CALL, "after": ENCODED, "log": LOG, "moves": int}
                    for kind, _ in TRAIN_RUNS},
           "gpu": OneOf(None, {"result": CALL, "devices": [str]})})
@one_thread
def observe_train_one_epoch(train_one_epoch, **kwargs) -> dict:
    """Run train_one_epoch once on each grader configuration (and on the GPU if there is one)."""
    runs = {kind: _observe_train_run(train_one_epoch, kind, start_eval) for kind, start_eval in TRAIN_RUNS}
    gpu = _observe_train_on_gpu(train_one_epoch) if torch.cuda.is_available() else None
    return {"runs": runs, "gpu": gpu}


# evaluate --------------------------------------------------------------------------------------


def _observe_evaluate_run(evaluate, kind):
    _, loader, criterion, _ = config(kind)
    model = used_model(kind)
    before = _state(model)
    log: list = []
    spy = _Spy(model, log)
    spy.train()  # as train_one_epoch leaves it
    moves_before = len(_moves)
    torch.manual_seed(TRAIN_SEED)  # a loop left in train mode then draws the same dropout masks every run
    result = capture(evaluate, spy, _Loader(loader), _Criterion(criterion, log), device="cpu")
    return {"before": before, "result": result, "after": _state(model), "grads": _grads(model), "log": log,
            "moves": len(_moves) - moves_before}


@observes({"runs": {kind: {"before": ENCODED, "result": CALL, "after": ENCODED, "grads": [ENCODED], "log": LOG,
                           "moves": int} for kind in EVALUATE_RUNS},
           "notebook": OneOf(None, {"before": ENCODED, "result": CALL, "after": ENCODED}),
           "gpu": OneOf(None, {"result": CALL})})
@one_thread
def observe_evaluate(evaluate, model=None, loader=None, criterion=None, **kwargs) -> dict:
    """Run evaluate on each grader configuration; with the notebook's model, record its state around one call."""
    runs = {kind: _observe_evaluate_run(evaluate, kind) for kind in EVALUATE_RUNS}
    notebook = None
    if model is not None:
        before = _state(model)
        result = capture(evaluate, model, loader, criterion, device=next(model.parameters()).device)
        notebook = {"before": before, "result": result, "after": _state(model)}
    gpu = None
    if torch.cuda.is_available():
        net, loader_, criterion_, _ = config("linear_mse_adam")
        gpu = {"result": capture(evaluate, net.to("cuda"), loader_, criterion_, device="cuda")}
    return {"runs": runs, "notebook": notebook, "gpu": gpu}


# a few epochs ----------------------------------------------------------------------------------


def _modes(log):
    return [entry["training"] for entry in log if entry["event"] == "forward"]


# The epochs stop after the first call that raised (then there is no validation loss to record).
@observes({"epochs": ListOf({"train": CALL, "val": OneOf(None, CALL), "train_modes": [[bool]], "val_modes": [[bool]]},
                            at_least=1, at_most=FIT_EPOCHS),
           "after": ENCODED})
@one_thread
def observe_fit(train_one_epoch, evaluate, **kwargs) -> dict:
    """Alternate train_one_epoch and evaluate for FIT_EPOCHS epochs; record each loss, the modes and the end state."""
    model, loader, criterion, make_optimizer = config(FIT_KIND)
    val = fit_validation(loader)
    log: list = []
    spy = _Spy(model, log)
    optimizer = make_optimizer(spy.parameters())
    epochs = []
    for epoch in range(1, FIT_EPOCHS + 1):
        torch.manual_seed(epoch)
        log.clear()
        train = capture(train_one_epoch, spy, _Loader(loader, track=False), criterion, optimizer)
        train_modes = _modes(log)
        log.clear()
        val_loss = capture(evaluate, spy, val, criterion) if "value" in train else None
        epochs.append({"train": train, "val": val_loss, "train_modes": train_modes, "val_modes": _modes(log)})
        if "value" not in train or "value" not in val_loss:
            break  # the judge stops at the first call that raised
    return {"epochs": epochs, "after": _state(model)}


# fixed_fit and fit_with_early_stopping ----------------------------------------------------------

# The early-stopping runs: (name, max_epochs, patience). "dropout" trains the FIT_KIND model; the scripted
# ones train a one-weight model whose validation loss after epoch e is exactly SCRIPTS[name][e] ** 2.
STOPPING_RUNS = (("dropout", 7, 2), ("scripted", 10, 2), ("improving", 4, 1))
# Each epoch's training batch is the single row x = 1, y = t; SGD with lr 0.5 on the MSE moves the weight
# from w to exactly t, and the validation rows (x = -1, y = 0) then cost exactly t ** 2. The "scripted" run
# improves, worsens, improves again, worsens and then ties the best (not an improvement): with patience 2 a
# correct loop stops after epoch 6.
SCRIPTS = {"scripted": (1.0, 0.5, 0.75, 0.25, 0.5, -0.25, 0.75, 1.0, 0.5, 0.125),
           "improving": (1.0, 0.5, 0.25, 0.125)}


class ScriptedLoader:
    """A training loader whose k-th pass yields the single batch (x = 1, y = script[k])."""

    def __init__(self, script):
        self.script, self.passes, self.batch_size = script, 0, 1
        self.dataset = TensorDataset(torch.ones(1, 1), torch.zeros(1, 1))

    def __len__(self):
        return 1

    def __iter__(self):
        target = self.script[min(self.passes, len(self.script) - 1)]
        self.passes += 1
        yield torch.ones(1, 1), torch.full((1, 1), target)


def stopping_config(name: str):
    """(model, train loader, validation loader, criterion, optimizer factory) of an early-stopping run."""
    if name == "dropout":
        model, loader, criterion, make_optimizer = config(FIT_KIND)
        return model, loader, fit_validation(loader), criterion, make_optimizer
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(2.0)
    val = DataLoader(TensorDataset(-torch.ones(3, 1), torch.zeros(3, 1)), batch_size=2,
                     generator=torch.Generator().manual_seed(6))
    return model, ScriptedLoader(SCRIPTS[name]), val, nn.MSELoss(), lambda p: torch.optim.SGD(p, lr=0.5)


def _run_spied(function, model, loader, val, criterion, make_optimizer, *args):
    """Call function(spied model, loader, val, criterion, spied optimizer, *args) after seeding as the judge does."""
    log: list = []
    spy = _Spy(model, log, inputs=True)
    optimizer = _SpyOptimizer(make_optimizer(spy.parameters()), log)
    moves_before = len(_moves)
    torch.manual_seed(TRAIN_SEED)
    try:
        result = function(spy, _Loader(loader), _Loader(val), _Criterion(criterion, log), optimizer, *args,
                          device="cpu")
    except NotImplementedError:
        raise
    except Exception as error:  # noqa: BLE001 -- any error in student code is recorded, not crashed on
        return None, {"raised": [type(error).__name__, str(error)[:500]], "log": log}
    return result, {"log": log, "moves": len(_moves) - moves_before}


# `_run_spied` records the spies' log and what the call raised, or how often batches moved.
@observes(OneOf({"initial": ENCODED, **RAISED, "log": LOG, "after": ENCODED},
                {"initial": ENCODED, "log": LOG, "moves": int, "result": CALL, "after": ENCODED}))
@one_thread
def observe_fixed_fit(fixed_fit, **kwargs) -> dict:
    """fixed_fit for FIXED_FIT_EPOCHS epochs on the FIT_KIND model: its history, every forward pass (batch, modes,
    grad mode), zero_grad and step, and the weights at the end."""
    model, loader, val, criterion, make_optimizer = stopping_config("dropout")
    initial = _state(model)
    result, record = _run_spied(fixed_fit, model, loader, val, criterion, make_optimizer, FIXED_FIT_EPOCHS)
    if "raised" not in record:
        record["result"] = capture(lambda: result)
    return {"initial": initial, **record, "after": _state(model)}


def _mapping_state(state) -> dict:
    """A returned best_state as a plain dict (a state_dict is an OrderedDict), or its description."""
    if isinstance(state, dict) and all(isinstance(key, str) for key in state):
        return {"__dict__": {key: encode(value) for key, value in state.items()}}
    return encode(state)


def _observe_stopping_run(fit_with_early_stopping, name, max_epochs, patience) -> dict:
    model, loader, val, criterion, make_optimizer = stopping_config(name)
    result, record = _run_spied(fit_with_early_stopping, model, loader, val, criterion, make_optimizer,
                                max_epochs, patience)
    record["model_after"] = _state(model)
    if "raised" in record:
        return record
    if not (isinstance(result, tuple | list) and len(result) == 2):
        record["result"] = capture(lambda: result)
        return record
    best_state, history = result
    record.update(best=_mapping_state(best_state), history=capture(lambda: history))
    with torch.no_grad():  # training on after the call must not change the copy
        for p in model.parameters():
            p.add_(1.0)
    record["best_later"] = _mapping_state(best_state)
    return record


# A run that raised; one that returned something other than a pair; one that returned (best_state, history).
STOPPING_RUN = OneOf({**RAISED, "log": LOG, "model_after": ENCODED},
                     {"log": LOG, "moves": int, "model_after": ENCODED, "result": CALL},
                     {"log": LOG, "moves": int, "model_after": ENCODED, "best": ENCODED, "history": CALL,
                      "best_later": ENCODED})


@observes({"runs": {name: STOPPING_RUN for name, _, _ in STOPPING_RUNS}})
@one_thread
def observe_fit_with_early_stopping(fit_with_early_stopping, **kwargs) -> dict:
    """Each STOPPING_RUNS run: the history, best_state (again after the model's weights change), the model's
    weights at return, and the spies' records."""
    return {"runs": {name: _observe_stopping_run(fit_with_early_stopping, name, max_epochs, patience)
                     for name, max_epochs, patience in STOPPING_RUNS}}
