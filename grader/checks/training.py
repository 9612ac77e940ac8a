"""Hidden checks for exercise 05 (the training loop): train_one_epoch and evaluate.

The checks build their own models, loaders, criteria and optimizers, run the student's function
on them behind spies, and compare everything with a reference run from the same initial state:

- `_Spy` wraps the model and records, for every forward pass, the mode of every submodule and
  `torch.is_grad_enabled()`; it also records calls of `model.zero_grad()`;
- `_SpyOptimizer` wraps a real optimizer and records `zero_grad()` and `step()`, with the
  gradients present at each step;
- `_Loader` yields batches as `_Tracked` tensors, which count `.to(...)` calls, so a loop that
  ignores `device` is seen even on a machine without a GPU.

The contract for the returned value is the plain mean of the per-batch `loss.item()` values
(not weighted by batch size), as a Python float.
"""

import copy
import functools
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from grader.checks.report import call, expect, fail, student_check

LECTURE = "lecture 05"
_moves: list[str] = []


def _one_thread(check):
    """Run a check with one torch thread and its own random state, both restored afterwards.

    These tensors are tiny, and on a busy 2-core machine thread hand-offs made each small op ~100x slower.
    The checks seed torch for their reference runs; fork_rng gives the notebook its random state back.
    """

    @functools.wraps(check)
    def run(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng():
                return check(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return run


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
    """Wraps a model; records each forward pass's modes and grad mode, and calls of model.zero_grad()."""

    def __init__(self, model: nn.Module, log: list):
        super().__init__()
        self.model, self.log = model, log

    def forward(self, X):
        self.log.append(("forward", {"training": [m.training for m in self.modules()],
                                     "grad": torch.is_grad_enabled(), "device": X.device}))
        return self.model(X)

    def zero_grad(self, set_to_none: bool = True):
        self.log.append(("zero_grad", None))
        super().zero_grad(set_to_none=set_to_none)


class _SpyOptimizer:
    """Wraps a real optimizer; records zero_grad() and step() with the gradients seen at each step."""

    def __init__(self, optimizer: torch.optim.Optimizer, log: list):
        self.optimizer, self.log = optimizer, log

    def zero_grad(self, *args, **kwargs):
        self.log.append(("zero_grad", None))
        return self.optimizer.zero_grad(*args, **kwargs)

    def step(self, *args, **kwargs):
        grads = [None if p.grad is None else p.grad.detach().clone() for p in _params(self.optimizer)]
        self.log.append(("step", grads))
        return self.optimizer.step(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.optimizer, name)


def _params(optimizer):
    return [p for group in optimizer.param_groups for p in group["params"]]


class _Criterion(nn.Module):
    """Wraps a loss function and records the values it returned."""

    def __init__(self, criterion: nn.Module, log: list):
        super().__init__()
        self.criterion, self.log = criterion, log

    def forward(self, y_hat, y):
        loss = self.criterion(y_hat, y)
        self.log.append(("loss", loss.detach().item() if loss.numel() == 1 else math.nan))
        return loss


# Configurations --------------------------------------------------------------------------------


def _config(kind: str):
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


def _fresh_loader(loader: DataLoader) -> DataLoader:
    """The same batches in the same order as a fresh copy of `loader` (its shuffle generator reseeded)."""
    generator = None
    if loader.generator is not None:
        generator = torch.Generator().manual_seed(loader.generator.initial_seed())
    return DataLoader(loader.dataset, batch_size=loader.batch_size, shuffle=generator is not None,
                      generator=generator)


def _reference_train(model, loader, criterion, optimizer, seed):
    torch.manual_seed(seed)
    model.train()
    losses, grads = [], []
    for X, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        grads.append([p.grad.detach().clone() for p in _params(optimizer)])
        optimizer.step()
        losses.append(loss.item())
    return losses, grads


def _reference_evaluate(model, loader, criterion):
    model.eval()
    with torch.no_grad():
        return [criterion(model(X), y).item() for X, y in loader]


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same_state(a, b, atol=1e-6):
    return all(torch.allclose(a[k], b[k], atol=atol, rtol=1e-5) for k in a)


def _loss_hint(result, losses, loader, name):
    """Name the likely mistake behind a wrong returned loss."""
    sizes = [len(X) for X, _ in loader]
    weighted = sum(loss * n for loss, n in zip(losses, sizes, strict=True)) / sum(sizes)
    guesses = [
        (losses[-1], "you returned the last batch's loss; return the mean over all batches"),
        (sum(losses), "you returned the sum of the batch losses; divide by the number of batches"),
        (weighted, "you weighted each batch by its size; the contract is the plain mean of the per-batch "
         "loss.item() values (sum of the values / number of batches)"),
        (losses[0], "you returned the first batch's loss; average over all batches"),
    ]
    for value, hint in guesses:
        if math.isclose(result, value, rel_tol=1e-5, abs_tol=1e-6):
            return hint
    return (f"{name} must return sum(batch_losses) / len(batch_losses), where each batch loss is loss.item() "
            f"({LECTURE}, '3. One epoch: a pass over the whole training loader').")


def _expect_float(result, what):
    if isinstance(result, torch.Tensor):
        graph = " that holds the computation graph" if result.requires_grad else ""
        fail(f"{what} returned a torch.Tensor{graph}, not a Python float.", "float", repr(result)[:90],
             "append loss.item() (a float) for each batch, not loss: keeping the tensors keeps every batch's "
             "graph in memory, and the result must be a plain number.")
    expect(isinstance(result, float), f"{what} returned a {type(result).__name__}, not a Python float.", "float",
           type(result).__name__, "return a float such as sum(losses) / len(losses) of loss.item() values.")
    expect(math.isfinite(result), f"{what} returned {result}.", "a finite mean loss", result)


def _expect_moved(moves_before, n_batches, what, device):
    moved = len(_moves) - moves_before
    expect(
        moved >= 2 * n_batches,
        f"{what} did not move every batch to device.",
        f"X.to(device) and y.to(device) for each of the {n_batches} batches (at least {2 * n_batches} moves)",
        f"{moved} calls of .to(...)",
        f"inside the loop write X, y = X.to(device), y.to(device); with device={device!r} this costs nothing on "
        "the CPU and is what makes the same code run on a GPU.",
    )


def _run_train(train_one_epoch, kind, start_eval=True):
    """Run the student's train_one_epoch on a fresh configuration; return everything the spies saw."""
    model, loader, criterion, make_optimizer = _config(kind)
    initial = _state(model)
    log: list = []
    spy = _Spy(model, log)
    optimizer = _SpyOptimizer(make_optimizer(spy.parameters()), log)
    if start_eval:
        spy.eval()  # as a previous evaluate() would leave it
    what = f"train_one_epoch on a {kind.replace('_', ' ')} model starting in {'eval' if start_eval else 'train'} mode"
    moves_before = len(_moves)
    torch.manual_seed(100)
    result = call(train_one_epoch, spy, _Loader(loader), _Criterion(criterion, log), optimizer, device="cpu",
                  what=what)
    return {"model": model, "loader": loader, "criterion": criterion, "make_optimizer": make_optimizer,
            "initial": initial, "log": log, "result": result, "what": what, "moves": moves_before}


def _reference_of(run):
    model = copy.deepcopy(run["model"])
    model.load_state_dict(run["initial"])
    optimizer = run["make_optimizer"](model.parameters())
    losses, grads = _reference_train(model, _fresh_loader(run["loader"]), run["criterion"], optimizer, 100)
    return model, losses, grads


def _check_train_run(run):
    what, log = run["what"], run["log"]
    n_batches = len(run["loader"])
    forwards = [info for event, info in log if event == "forward"]
    steps = [info for event, info in log if event == "step"]
    zero_grads = sum(event == "zero_grad" for event, _ in log)
    expect(forwards, f"{what} never called the model.", f"{n_batches} forward passes", 0,
           "compute y_hat = model(X) with the model you are given, not a global one.")
    expect(all(all(f["training"]) for f in forwards), f"{what} ran the model in evaluation mode.",
           "model.training == True in every forward pass", "model.training == False",
           f"call model.train() at the start of train_one_epoch: evaluate() leaves the model in eval mode, "
           f"which switches dropout off ({LECTURE}, '5. Why dropout and batch norm behave differently in the two "
           "modes').")
    expect(all(f["grad"] for f in forwards), f"{what} ran the model with gradients disabled.",
           "torch.is_grad_enabled() == True", False, "do not wrap the training step in torch.no_grad().")
    expect(len(forwards) == n_batches, f"{what} made the wrong number of forward passes.", n_batches,
           len(forwards), "call the model once per batch: for X, y in loader: y_hat = model(X) ...")
    expect(steps, f"{what} never called optimizer.step(), so the model did not learn.",
           f"{n_batches} calls (one per batch)", 0,
           "after loss.backward(), call optimizer.step() on the optimizer you are given.")
    expect(len(steps) == n_batches, f"{what} called optimizer.step() the wrong number of times.", n_batches,
           len(steps), "step once per batch, inside the loop.")
    reference, ref_losses, ref_grads = _reference_of(run)
    if any(g is None for g in steps[0]) or all(float(g.abs().sum()) == 0 for g in steps[0] if g is not None):
        fail(f"{what} called optimizer.step() without gradients.", "gradients from loss.backward()",
             "no gradients (None or all zero)",
             "call loss.backward() before optimizer.step(), and zero the gradients before backward, not between "
             f"backward and step ({LECTURE}, '3. One epoch: a pass over the whole training loader').")
    expect(zero_grads > 0, f"{what} never zeroed the gradients, so they accumulated across batches.",
           f"optimizer.zero_grad() once per batch ({n_batches})", 0,
           "call optimizer.zero_grad() (or model.zero_grad()) for every batch, before loss.backward().")
    for k, (seen, expected) in enumerate(zip(steps, ref_grads, strict=True)):
        same = all(s is not None and torch.allclose(s, e, atol=1e-5, rtol=1e-4)
                   for s, e in zip(seen, expected, strict=True))
        if not same:
            leaked = k > 0 and all(
                s is not None and torch.allclose(s, sum(g[i] for g in ref_grads[: k + 1]), atol=1e-4, rtol=1e-3)
                for i, s in enumerate(seen)
            )
            fail(
                f"{what}: the gradients at optimizer.step() for batch {k + 1} of {n_batches} are wrong.",
                "the gradient of this batch's loss only",
                "the sum over this and earlier batches" if leaked else "different gradients",
                "gradients add up across backward() calls: call optimizer.zero_grad() in every iteration, before "
                "loss.backward()" if leaked else
                "for each batch: zero_grad, y_hat = model(X), loss = criterion(y_hat, y), loss.backward(), step "
                "(use the criterion you are given)",
            )
    _expect_float(run["result"], what)
    expected = sum(ref_losses) / len(ref_losses)
    expect(math.isclose(run["result"], expected, rel_tol=1e-4, abs_tol=1e-6), f"{what} returned the wrong loss.",
           f"{expected:.6f} (mean of the {n_batches} batch losses {[round(x, 4) for x in ref_losses]})",
           f"{run['result']:.6f}", _loss_hint(run["result"], ref_losses, run["loader"], "train_one_epoch"))
    expect(_same_state(_state(run["model"]), _state(reference)),
           f"{what} left the parameters different from one correct epoch from the same start.",
           hint="one zero_grad / forward / loss / backward / step per batch, nothing else changing the weights.")
    _expect_moved(run["moves"], n_batches, what, "cpu")


@student_check
@_one_thread
def check_train_one_epoch(train_one_epoch) -> None:
    """train_one_epoch: train mode, one zero_grad/forward/backward/step per batch, mean batch loss as a float."""
    _moves.clear()
    for kind, start_eval in [("mlp_dropout_sgd", True), ("linear_mse_adam", False), ("deep_dropout_adam", True)]:
        _check_train_run(_run_train(train_one_epoch, kind, start_eval))
    if torch.cuda.is_available():
        _check_train_on_gpu(train_one_epoch)


def _check_train_on_gpu(train_one_epoch):
    model, loader, criterion, make_optimizer = _config("mlp_dropout_sgd")
    log: list = []
    spy = _Spy(model, log).to("cuda")
    optimizer = make_optimizer(spy.parameters())
    what = 'train_one_epoch(..., device="cuda") for a model on the GPU and batches on the CPU'
    result = call(train_one_epoch, spy, loader, criterion, optimizer, device="cuda", what=what)
    _expect_float(result, what)
    expect(all(info["device"].type == "cuda" for event, info in log if event == "forward"),
           f"{what} did not move the batches to the GPU.", "cuda", "cpu", "X, y = X.to(device), y.to(device)")


# evaluate --------------------------------------------------------------------------------------


def _check_evaluate_run(evaluate, kind):
    model, loader, criterion, make_optimizer = _config(kind)
    # Train a little first, so the model has momentum state and leftover gradients like a real one.
    optimizer = make_optimizer(model.parameters())
    _reference_train(model, _fresh_loader(loader), criterion, optimizer, 7)
    grads_before = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    before = _state(model)
    log: list = []
    spy = _Spy(model, log)
    spy.train()  # as train_one_epoch leaves it
    what = f"evaluate on a {kind.replace('_', ' ')} model starting in train mode"
    moves_before = len(_moves)
    result = call(evaluate, spy, _Loader(loader), _Criterion(criterion, log), device="cpu", what=what)
    forwards = [info for event, info in log if event == "forward"]
    n_batches = len(loader)
    expect(forwards, f"{what} never called the model.", f"{n_batches} forward passes", 0,
           "compute model(X) with the model you are given.")
    expect(not any(any(f["training"]) for f in forwards), f"{what} ran the model in training mode.",
           "model.training == False in every forward pass", "model.training == True",
           f"call model.eval() at the start of evaluate, so dropout is off ({LECTURE}, '4. The validation loop: "
           "`model.eval()` and `torch.no_grad()`').")
    expect(not any(f["grad"] for f in forwards), f"{what} built a computation graph.",
           "torch.is_grad_enabled() == False during the forward passes", True,
           "wrap the loop in `with torch.no_grad():` (or torch.inference_mode()): evaluation needs no "
           "gradients, and a graph costs memory.")
    expect(_same_state(_state(model), before, atol=0), f"{what} changed the model's parameters.",
           "the same parameters before and after", "different parameters",
           "evaluate must not call backward() or optimizer.step(): it only measures the loss.")
    grads_after = [None if p.grad is None else p.grad for p in model.parameters()]
    expect(all((a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))
               for a, b in zip(grads_before, grads_after, strict=True)),
           f"{what} changed the gradients.", "the gradients left as they were", "different gradients",
           "evaluate must not call backward() or zero_grad(): it only measures the loss.")
    expect(len(forwards) == n_batches, f"{what} made the wrong number of forward passes.", n_batches,
           len(forwards), "call the model once per batch.")
    _expect_float(result, what)
    losses = _reference_evaluate(model, _fresh_loader(loader), criterion)
    expected = sum(losses) / len(losses)
    expect(math.isclose(result, expected, rel_tol=1e-4, abs_tol=1e-6), f"{what} returned the wrong loss.",
           f"{expected:.6f} (mean of the {n_batches} batch losses {[round(x, 4) for x in losses]})",
           f"{result:.6f}", _loss_hint(result, losses, loader, "evaluate"))
    _expect_moved(moves_before, n_batches, what, "cpu")


@student_check
@_one_thread
def check_evaluate(evaluate, model=None, loader=None, criterion=None) -> None:
    """evaluate: eval mode, no graph, parameters unchanged, the plain mean batch loss as a float.

    With the notebook's own model, loader and criterion, also checks that they are left unchanged.
    """
    _moves.clear()
    for kind in ("mlp_dropout_sgd", "linear_mse_adam", "deep_dropout_adam"):
        _check_evaluate_run(evaluate, kind)
    if model is not None:
        before = _state(model)
        call(evaluate, model, loader, criterion, device=next(model.parameters()).device,
             what="evaluate(model, val_loader, criterion) on the notebook's model")
        expect(_same_state(_state(model), before, atol=0),
               "evaluate(model, val_loader, criterion) changed the notebook model's parameters.",
               hint="evaluate must not call optimizer.step() (not even a global optimizer's) or change weights.")
    if torch.cuda.is_available():
        net, loader_, criterion_, _ = _config("linear_mse_adam")
        net.to("cuda")
        what = 'evaluate(..., device="cuda") for a model on the GPU and batches on the CPU'
        _expect_float(call(evaluate, net, loader_, criterion_, device="cuda", what=what), what)


# a few epochs ----------------------------------------------------------------------------------


@student_check
@_one_thread
def check_fit(train_one_epoch, evaluate) -> None:
    """Alternating train_one_epoch and evaluate for several epochs matches the reference history exactly."""
    model, loader, criterion, make_optimizer = _config("deep_dropout_adam")
    val = DataLoader(TensorDataset(*[t[:17] for t in loader.dataset.tensors]), batch_size=5)
    reference = copy.deepcopy(model)
    log: list = []
    spy = _Spy(model, log)
    optimizer = make_optimizer(spy.parameters())
    ref_optimizer = make_optimizer(reference.parameters())
    ref_loader = _fresh_loader(loader)
    for epoch in range(1, 6):
        what = f"epoch {epoch} of 5 (train_one_epoch, then evaluate) on a model with dropout"
        torch.manual_seed(epoch)
        log.clear()
        train_loss = call(train_one_epoch, spy, _Loader(loader, track=False), criterion, optimizer, what=what)
        train_modes = [info["training"] for event, info in log if event == "forward"]
        log.clear()
        val_loss = call(evaluate, spy, val, criterion, what=what)
        val_modes = [info["training"] for event, info in log if event == "forward"]
        _expect_float(train_loss, what)
        _expect_float(val_loss, what)
        expect(all(all(modes) for modes in train_modes), f"{what}: train_one_epoch ran the model in eval mode.",
               "model.training == True while training", "model.training == False",
               "evaluate() leaves the model in eval mode, so train_one_epoch must call model.train() itself "
               f"({LECTURE}, '5. Why dropout and batch norm behave differently in the two modes').")
        expect(not any(any(modes) for modes in val_modes), f"{what}: evaluate ran the model in training mode.",
               "model.training == False while evaluating", "model.training == True", "call model.eval() in evaluate.")
        ref_losses, _ = _reference_train(reference, ref_loader, criterion, ref_optimizer, epoch)
        ref_val = _reference_evaluate(reference, val, criterion)
        expected = (sum(ref_losses) / len(ref_losses), sum(ref_val) / len(ref_val))
        for name, found, value, hint in (
            ("training loss (train_one_epoch)", train_loss, expected[0],
             "one zero_grad / forward / loss / backward / step per batch; return the plain mean of loss.item()"),
            ("validation loss (evaluate)", val_loss, expected[1],
             "evaluate must return the plain mean of loss.item() and change nothing: no backward, no step"),
        ):
            expect(math.isclose(found, value, rel_tol=1e-4, abs_tol=1e-6),
                   f"{what}: the {name} differs from a correct loop's.", f"{value:.5f}", f"{found:.5f}", hint)
    expect(expected[0] < 0.6, "five epochs did not make the reference learn (a bug in the check).", "< 0.6",
           expected[0])
