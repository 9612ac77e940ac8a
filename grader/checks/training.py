"""Hidden checks for exercise 05 (the training loop): judges of train_one_epoch, evaluate, the repaired loop
fixed_fit and fit_with_early_stopping.

The observers (`grader.observers.training`) run the student's functions on seeded configurations
behind spies. Each judge here rebuilds the same models, loaders and batches itself, runs a
reference loop from the same initial weights (seeding the global random state exactly as the
observer did before the student's call, so dropout draws the same masks) and compares the
recorded parameters and returned mean loss with it. The spies' records (modes, grad mode,
zero_grad/step calls, gradients at each step, `.to(...)` calls) choose the message; the verdict on
a run always rests on values the judge recomputed.

The course's loss convention decides the returned values (lecture 05, sections 3 and 4), as Python
floats: train_one_epoch returns the mean of the per-batch `loss.item()` values (a training curve);
the mean weighted by batch size, what Keras and Lightning show, is accepted too. evaluate returns
the exact mean per sample (sum of `loss.item() * len(X)` over the batches / number of samples),
which does not depend on the batch size; the plain mean of the batch losses fails, with a message
saying why. fixed_fit and fit_with_early_stopping return one (train_loss, val_loss) pair per epoch with the same
conventions; their judges replay a correct loop seeded once before the first epoch, as the observer seeds the
student's, and name the bug a wrong epoch points to. Early stopping also runs on a one-weight model whose
validation curve is scripted exactly (`SCRIPTS`), ties included, so each wrong stopping rule stops at its own epoch.
"""

import contextlib
import math

import torch

from grader import observation
from grader.checks.report import expect, fail, judged, returned, type_name
from grader.observers.training import (
    EVALUATE_RUNS,
    FIT_EPOCHS,
    FIT_KIND,
    FIXED_FIT_EPOCHS,
    SCRIPTS,
    STOPPING_RUNS,
    TRAIN_RUNS,
    TRAIN_SEED,
    config,
    fit_validation,
    observe_evaluate,
    observe_fit,
    observe_fit_with_early_stopping,
    observe_fixed_fit,
    observe_train_one_epoch,
    one_thread,
    stopping_config,
    used_model,
)

LECTURE = "lecture 05"
_TRAIN_SECTION = f"({LECTURE}, '3. One epoch: a pass over the whole training loader')"
_EVALUATE_SECTION = f"({LECTURE}, '4. The validation loop: `model.eval()` and `torch.no_grad()`')"
_MODES_SECTION = f"({LECTURE}, '5. Why dropout and batch norm behave differently in the two modes')"


# Reading an observation ------------------------------------------------------------------------


@contextlib.contextmanager
def _reading(what):
    """A record that has its declared shape but does not fit the grader's model (other state_dict keys or tensor
    shapes, a cut log; only a tampered kernel makes one) fails the check instead of crashing the judge."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        fail(f"The grader could not read what {what} did: its record is incomplete or malformed "
             f"({type(error).__name__}: {error}).")


def _tensor(value, shape):
    """A decoded value that must be a tensor of `shape`."""
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(shape):
        raise ValueError(f"expected a tensor of shape {tuple(shape)}")
    return value.float()


def _read_state(data, like: dict) -> dict:
    """A recorded state_dict with exactly the keys and shapes of `like`."""
    state = observation.decode(data)
    if not isinstance(state, dict) or sorted(state) != sorted(like):
        raise ValueError("a state_dict with other keys")
    return {key: _tensor(state[key], like[key].shape) for key in like}


def _read_grads(data, shapes) -> list:
    if not isinstance(data, list) or len(data) != len(shapes):
        raise ValueError("a list of gradients of the wrong length")
    return [None if g is None else _tensor(observation.decode(g), shape) for g, shape in zip(data, shapes, strict=True)]


def _read_log(log, shapes) -> dict:
    """Forward passes (modes, grad mode, device), zero_grad calls, the gradients at each step, criterion calls."""
    events = [entry["event"] for entry in log]
    return {"forwards": [entry for entry in log if entry["event"] == "forward"],
            "steps": [_read_grads(entry["grads"], shapes) for entry in log if entry["event"] == "step"],
            "zero_grads": events.count("zero_grad"), "losses": events.count("loss")}


# Reference loops -------------------------------------------------------------------------------


def _params(optimizer):
    return [p for group in optimizer.param_groups for p in group["params"]]


def _reference_train(model, loader, criterion, optimizer, seed=None):
    """One correct epoch: its (batch loss, batch size) pairs and the gradients at each step (seeded first unless
    `seed` is None)."""
    if seed is not None:
        torch.manual_seed(seed)
    model.train()
    losses, grads = [], []
    for X, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        grads.append([p.grad.detach().clone() for p in _params(optimizer)])
        optimizer.step()
        losses.append((loss.item(), len(X)))
    return losses, grads


def _reference_evaluate(model, loader, criterion):
    """One correct evaluation pass: its (batch loss, batch size) pairs."""
    model.eval()
    with torch.no_grad():
        return [(criterion(model(X), y).item(), len(X)) for X, y in loader]


def _plain_mean(losses) -> float:
    """The training-curve convention: the mean of the per-batch losses."""
    return sum(loss for loss, _ in losses) / len(losses)


def _per_sample_mean(losses) -> float:
    """The evaluation convention: every sample counts once, whatever the batch it came in."""
    return sum(loss * n for loss, n in losses) / sum(n for _, n in losses)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same_state(a, b, atol=1e-6):
    return all(torch.allclose(a[k], b[k], atol=atol, rtol=1e-5) for k in a)


def _expect_started_from(recorded, state, what):
    expect(_same_state(recorded, state, atol=0), f"{what} did not get the grader's model: its starting weights differ.",
           hint="do not change how torch seeds, draws random numbers or initializes modules in your notebook.")


# Messages --------------------------------------------------------------------------------------


EVALUATE_PLAIN_MEAN_HINT = (
    "you returned the plain mean of the per-batch losses. evaluate must return the mean per sample: add up "
    "loss.item() * len(X) over the batches and divide by the number of samples. The plain mean gives a smaller last "
    "batch as much weight as a full one, so it changes with the batch size; the validation loss you compare and "
    f"report must not {_EVALUATE_SECTION}.")


def _loss_hint(result, losses, name):
    """Name the likely mistake behind a wrong returned loss."""
    values = [loss for loss, _ in losses]
    summed = sum(loss * n for loss, n in losses)
    guesses = [
        (values[-1], "you returned the last batch's loss; return the mean over all batches"),
        (values[0], "you returned the first batch's loss; average over all batches"),
    ]
    if name == "evaluate":
        guesses += [
            (_plain_mean(losses), EVALUATE_PLAIN_MEAN_HINT),
            (summed, "you returned the summed loss of all samples; divide it by the number of samples"),
            (summed / len(losses), "you divided the summed loss by the number of batches; divide by the number of "
             "samples"),
            (sum(values), "you returned the sum of the batch losses; weight each by its batch size and divide by the "
             "number of samples"),
        ]
    else:
        guesses += [(sum(values), "you returned the sum of the batch losses; divide by the number of batches")]
    for value, hint in guesses:
        if math.isclose(result, value, rel_tol=1e-5, abs_tol=1e-6):
            return hint
    if name == "evaluate":
        return (f"evaluate must return the mean per sample, sum(loss.item() * len(X)) / (number of samples), "
                f"{_EVALUATE_SECTION}.")
    return (f"train_one_epoch must return sum(batch_losses) / len(batch_losses), where each batch loss is loss.item() "
            f"{_TRAIN_SECTION}.")


def _expect_float(result, what):
    if isinstance(result, torch.Tensor):
        grad_fn = result.observed["grad_fn"]
        graph = " that holds the computation graph" if result.observed["requires_grad"] else ""
        found = repr(result)[:70] + (f" (grad_fn={grad_fn})" if grad_fn else "")
        fail(f"{what} returned a torch.Tensor{graph}, not a Python float.", "float", found,
             "append loss.item() (a float) for each batch, not loss: keeping the tensors keeps every batch's "
             "graph in memory, and the result must be a plain number.")
    expect(isinstance(result, float), f"{what} returned a {type_name(result)}, not a Python float.", "float",
           type_name(result), "return a Python float computed from the loss.item() values, not a tensor or a list.")
    expect(math.isfinite(result), f"{what} returned {result}.", "a finite mean loss", result)


def _expect_moved(moved, n_batches, what, device):
    expect(
        moved >= 2 * n_batches,
        f"{what} did not move every batch to device.",
        f"X.to(device) and y.to(device) for each of the {n_batches} batches (at least {2 * n_batches} moves)",
        f"{moved} calls of .to(...)",
        f"inside the loop write X, y = X.to(device), y.to(device); with device={device!r} this costs nothing on "
        "the CPU and is what makes the same code run on a GPU.",
    )


def _close(a, b) -> bool:
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)


def _expect_train_mean(result, losses, what):
    """The mean of the batch losses; the mean per sample (Keras's and Lightning's epoch loss) is accepted too."""
    plain, per_sample = _plain_mean(losses), _per_sample_mean(losses)
    expect(_close(result, plain) or _close(result, per_sample), f"{what} returned the wrong loss.",
           f"{plain:.6f}, the mean of the {len(losses)} batch losses {[round(x, 4) for x, _ in losses]} "
           f"(or {per_sample:.6f}, the mean per sample, also accepted)",
           f"{result:.6f}", _loss_hint(result, losses, "train_one_epoch"))


def _expect_evaluate_mean(result, losses, what):
    """The exact mean per sample: it does not depend on how the samples are batched."""
    expected = _per_sample_mean(losses)
    sizes = [n for _, n in losses]
    expect(_close(result, expected), f"{what} returned the wrong loss.",
           f"{expected:.6f}, the mean per sample over {sum(sizes)} samples in batches of {sizes}",
           f"{result:.6f}", _loss_hint(result, losses, "evaluate"))


# train_one_epoch -------------------------------------------------------------------------------


def _judge_train_run(raw, kind, start_eval):
    what = f"train_one_epoch on a {kind.replace('_', ' ')} model starting in {'eval' if start_eval else 'train'} mode"
    model, loader, criterion, make_optimizer = config(kind)
    initial = _state(model)
    with _reading(what):
        shapes = [p.shape for p in model.parameters()]
        recorded_initial = _read_state(raw["initial"], initial)
        after = _read_state(raw["after"], initial)
        log = _read_log(raw["log"], shapes)
    moved, captured = raw["moves"], raw["result"]
    _expect_started_from(recorded_initial, initial, what)
    result = returned(captured, what)
    n_batches = len(loader)
    forwards, steps, zero_grads = log["forwards"], log["steps"], log["zero_grads"]
    expect(forwards, f"{what} never called the model.", f"{n_batches} forward passes", 0,
           "compute y_hat = model(X) with the model you are given, not a global one.")
    expect(all(all(f["training"]) for f in forwards), f"{what} ran the model in evaluation mode.",
           "model.training == True in every forward pass", "model.training == False",
           "call model.train() at the start of train_one_epoch: evaluate() leaves the model in eval mode, which "
           f"switches dropout off {_MODES_SECTION}.")
    expect(all(f["grad"] for f in forwards), f"{what} ran the model with gradients disabled.",
           "torch.is_grad_enabled() == True", False, "do not wrap the training step in torch.no_grad().")
    expect(len(forwards) == n_batches, f"{what} made the wrong number of forward passes.", n_batches,
           len(forwards), "call the model once per batch: for X, y in loader: y_hat = model(X) ...")
    expect(steps, f"{what} never called optimizer.step(), so the model did not learn.",
           f"{n_batches} calls (one per batch)", 0,
           "after loss.backward(), call optimizer.step() on the optimizer you are given.")
    expect(len(steps) == n_batches, f"{what} called optimizer.step() the wrong number of times.", n_batches,
           len(steps), "step once per batch, inside the loop.")
    ref_losses, ref_grads = _reference_train(model, loader, criterion, make_optimizer(model.parameters()), TRAIN_SEED)
    if any(g is None for g in steps[0]) or all(float(g.abs().sum()) == 0 for g in steps[0]):
        fail(f"{what} called optimizer.step() without gradients.", "gradients from loss.backward()",
             "no gradients (None or all zero)",
             "call loss.backward() before optimizer.step(), and zero the gradients before backward, not between "
             f"backward and step {_TRAIN_SECTION}.")
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
            if leaked:
                hint = ("gradients add up across backward() calls: call optimizer.zero_grad() in every iteration, "
                        "before loss.backward()")
            elif log["losses"] < n_batches:  # the spy criterion only picks the hint; the gradients decided
                hint = ("use the criterion you are given: this loop did not call it for every batch, so the "
                        "loss it minimized is not the one passed in")
            else:
                hint = ("for each batch: zero_grad, y_hat = model(X), loss = criterion(y_hat, y), loss.backward(), "
                        "step (use the criterion you are given)")
            fail(f"{what}: the gradients at optimizer.step() for batch {k + 1} of {n_batches} are wrong.",
                 "the gradient of this batch's loss only",
                 "the sum over this and earlier batches" if leaked else "different gradients", hint)
    _expect_float(result, what)
    _expect_train_mean(result, ref_losses, what)
    expect(_same_state(after, _state(model)),
           f"{what} left the parameters different from one correct epoch from the same start.",
           hint="one zero_grad / forward / loss / backward / step per batch, nothing else changing the weights.")
    _expect_moved(moved, n_batches, what, "cpu")


def _judge_on_gpu(raw, what, forward_devices: bool):
    devices = raw["devices"] if forward_devices else []
    _expect_float(returned(raw["result"], what), what)
    expect(all(device.startswith("cuda") for device in devices), f"{what} did not move the batches to the GPU.",
           "cuda", "cpu", "X, y = X.to(device), y.to(device)")


@one_thread
def judge_train_one_epoch(obs: dict, **kwargs) -> None:
    """train_one_epoch: train mode, one zero_grad/forward/backward/step per batch, mean batch loss as a float
    (the mean per sample is accepted too)."""
    for kind, start_eval in TRAIN_RUNS:
        _judge_train_run(obs["runs"][kind], kind, start_eval)
    if obs["gpu"] is not None:
        _judge_on_gpu(obs["gpu"], 'train_one_epoch(..., device="cuda") for a model on the GPU and batches on the CPU',
                      True)


check_train_one_epoch = judged(observe_train_one_epoch, judge_train_one_epoch)


# evaluate --------------------------------------------------------------------------------------


def _judge_evaluate_run(raw, kind):
    what = f"evaluate on a {kind.replace('_', ' ')} model starting in train mode"
    _, loader, criterion, _ = config(kind)
    model = used_model(kind)
    before = _state(model)
    grads_before = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    with _reading(what):
        shapes = [p.shape for p in model.parameters()]
        recorded_before = _read_state(raw["before"], before)
        after = _read_state(raw["after"], before)
        grads_after = _read_grads(raw["grads"], shapes)
        forwards = _read_log(raw["log"], shapes)["forwards"]
    moved, captured = raw["moves"], raw["result"]
    _expect_started_from(recorded_before, before, what)
    result = returned(captured, what)
    n_batches = len(loader)
    expect(forwards, f"{what} never called the model.", f"{n_batches} forward passes", 0,
           "compute model(X) with the model you are given.")
    expect(not any(any(f["training"]) for f in forwards), f"{what} ran the model in training mode.",
           "model.training == False in every forward pass", "model.training == True",
           f"call model.eval() at the start of evaluate, so dropout is off {_EVALUATE_SECTION}.")
    expect(not any(f["grad"] for f in forwards), f"{what} built a computation graph.",
           "torch.is_grad_enabled() == False during the forward passes", True,
           "wrap the loop in `with torch.no_grad():` (or torch.inference_mode()): evaluation needs no "
           "gradients, and a graph costs memory.")
    expect(_same_state(after, before, atol=0), f"{what} changed the model's parameters.",
           "the same parameters before and after", "different parameters",
           "evaluate must not call backward() or optimizer.step(): it only measures the loss.")
    expect(all((a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))
               for a, b in zip(grads_before, grads_after, strict=True)),
           f"{what} changed the gradients.", "the gradients left as they were", "different gradients",
           "evaluate must not call backward() or zero_grad(): it only measures the loss.")
    expect(len(forwards) == n_batches, f"{what} made the wrong number of forward passes.", n_batches,
           len(forwards), "call the model once per batch.")
    _expect_float(result, what)
    _expect_evaluate_mean(result, _reference_evaluate(model, loader, criterion), what)
    _expect_moved(moved, n_batches, what, "cpu")


def _read_any_state(data) -> dict:
    state = observation.decode(data)
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise TypeError("a state_dict that is not a dict of tensors")
    return state


def _judge_notebook(raw):
    """The notebook's own model: the judge cannot rebuild it, so only its recorded state around the call is compared."""
    what = "evaluate(model, val_loader, criterion) on the notebook's model"
    with _reading(what):
        before, after = _read_any_state(raw["before"]), _read_any_state(raw["after"])
    returned(raw["result"], what)
    expect(sorted(before) == sorted(after) and all(torch.equal(before[k], after[k]) for k in before),
           "evaluate(model, val_loader, criterion) changed the notebook model's parameters.",
           hint="evaluate must not call optimizer.step() (not even a global optimizer's) or change weights.")


@one_thread
def judge_evaluate(obs: dict, **kwargs) -> None:
    """evaluate: eval mode, no graph, parameters unchanged, the exact mean loss per sample as a float.

    With the notebook's own model, loader and criterion, also checks that its weights are left unchanged.
    """
    for kind in EVALUATE_RUNS:
        _judge_evaluate_run(obs["runs"][kind], kind)
    if obs["notebook"] is not None:
        _judge_notebook(obs["notebook"])
    if obs["gpu"] is not None:
        _judge_on_gpu(obs["gpu"], 'evaluate(..., device="cuda") for a model on the GPU and batches on the CPU', False)


check_evaluate = judged(observe_evaluate, judge_evaluate)


# a few epochs ----------------------------------------------------------------------------------


@one_thread
def judge_fit(obs: dict, **kwargs) -> None:
    """Alternating train_one_epoch and evaluate for several epochs matches the reference history exactly."""
    model, loader, criterion, make_optimizer = config(FIT_KIND)
    val = fit_validation(loader)
    optimizer = make_optimizer(model.parameters())
    epochs = obs["epochs"]  # cut short only after a call that raised, which the judge stops at
    for epoch in range(1, FIT_EPOCHS + 1):
        what = f"epoch {epoch} of {FIT_EPOCHS} (train_one_epoch, then evaluate) on a model with dropout"
        with _reading(what):
            record = epochs[epoch - 1]
            captured_train, captured_val = record["train"], record["val"]
            train_modes, val_modes = record["train_modes"], record["val_modes"]
        train_loss = returned(captured_train, what)
        val_loss = returned(captured_val, what)
        _expect_float(train_loss, what)
        _expect_float(val_loss, what)
        expect(all(all(modes) for modes in train_modes), f"{what}: train_one_epoch ran the model in eval mode.",
               "model.training == True while training", "model.training == False",
               "evaluate() leaves the model in eval mode, so train_one_epoch must call model.train() itself "
               f"{_MODES_SECTION}.")
        expect(not any(any(modes) for modes in val_modes), f"{what}: evaluate ran the model in training mode.",
               "model.training == False while evaluating", "model.training == True", "call model.eval() in evaluate.")
        ref_losses, _ = _reference_train(model, loader, criterion, optimizer, epoch)
        ref_val = _reference_evaluate(model, val, criterion)
        train_plain, train_per_sample = _plain_mean(ref_losses), _per_sample_mean(ref_losses)
        expect(_close(train_loss, train_plain) or _close(train_loss, train_per_sample),
               f"{what}: the training loss (train_one_epoch) differs from a correct loop's.",
               f"{train_plain:.5f} (or the mean per sample, {train_per_sample:.5f})", f"{train_loss:.5f}",
               "one zero_grad / forward / loss / backward / step per batch; return the mean of the batches' "
               "loss.item()")
        val_expected = _per_sample_mean(ref_val)
        hint = "evaluate must return the mean loss per sample and change nothing: no backward, no step"
        if _close(val_loss, _plain_mean(ref_val)):
            hint = EVALUATE_PLAIN_MEAN_HINT
        expect(_close(val_loss, val_expected),
               f"{what}: the validation loss (evaluate) differs from a correct loop's.", f"{val_expected:.5f}",
               f"{val_loss:.5f}", hint)
    with _reading(f"{FIT_EPOCHS} epochs of train_one_epoch and evaluate"):
        after = _read_state(obs["after"], _state(model))
    expect(_same_state(after, _state(model)),
           f"after {FIT_EPOCHS} epochs (train_one_epoch, then evaluate) the weights differ from a correct loop's.",
           hint="one zero_grad / forward / loss / backward / step per batch in train_one_epoch; "
                "evaluate changes nothing.")
    expect(train_plain < 0.6, "five epochs did not make the reference learn (a bug in the check).", "< 0.6",
           train_plain)


check_fit = judged(observe_fit, judge_fit)


# fixed_fit and fit_with_early_stopping ---------------------------------------------------------

_BUG_SECTION = f"({LECTURE}, 'A bug from the wild: the validation loop that reads `batch`')"
_STOPPING_SECTION = f"({LECTURE}, 'Keeping the best model, and early stopping')"


def _reference_history(model, loader, val, criterion, optimizer, max_epochs, patience=None):
    """A correct loop seeded as the observer seeds the student's: its history, and with `patience` the best state.

    The history holds (training loss pairs, validation loss pairs) per epoch; early stopping keeps the state of
    the epoch with the strictly lowest validation loss and stops after `patience` epochs without one."""
    torch.manual_seed(TRAIN_SEED)
    history, best, best_state, waited = [], math.inf, None, 0
    for _ in range(max_epochs):
        losses, _ = _reference_train(model, loader, criterion, optimizer)
        val_losses = _reference_evaluate(model, val, criterion)
        history.append((losses, val_losses))
        if patience is None:
            continue
        if _per_sample_mean(val_losses) < best:
            best, best_state, waited = _per_sample_mean(val_losses), _state(model), 0
        else:
            waited += 1
            if waited >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history, best_state


def _read_history(captured, what, epochs=None) -> list:
    """The returned history: a list of (train_loss, val_loss) Python floats, `epochs` long when given."""
    history = returned(captured, what)
    expect(isinstance(history, list | tuple) and all(isinstance(h, list | tuple) and len(h) == 2 for h in history),
           f"{what} should return a list with one (train_loss, val_loss) pair per epoch.",
           "[(train_loss, val_loss), ...]", repr(history)[:120],
           "append (train_loss, val_loss) to a list after each epoch and return the list.")
    for epoch, (train_loss, val_loss) in enumerate(history, start=1):
        _expect_float(train_loss, f"{what}: the training loss of epoch {epoch}")
        _expect_float(val_loss, f"{what}: the validation loss of epoch {epoch}")
    if epochs is not None:
        expect(len(history) == epochs, f"{what} returned a history of the wrong length.", f"{epochs} epochs",
               len(history), "run `epochs` epochs and append one (train_loss, val_loss) pair after each.")
    return [tuple(pair) for pair in history]


def _val_batches(val) -> list:
    return [X for X, _ in val]


def _forwards_on(log, batches) -> list:
    """The recorded forward passes whose input was one of `batches`."""
    return [f for f in log["forwards"] if f["X"] is not None and any(
        f["X"].shape == X.shape and torch.equal(f["X"], X) for X in batches)]


def _read_spied(raw, model, what) -> dict:
    """The spies' records of a run made by `_run_spied`: forward passes with their batches, steps, zero_grads."""
    with _reading(what):
        shapes = [p.shape for p in model.parameters()]
        log = _read_log([{k: v for k, v in e.items() if k not in ("X", "graph")} for e in raw["log"]], shapes)
        inputs = [e for e in raw["log"] if e["event"] == "forward"]
        for forward, entry in zip(log["forwards"], inputs, strict=True):
            X = observation.decode(entry["X"])
            forward["X"] = X.float() if isinstance(X, torch.Tensor) else None
            forward["graph"] = entry["graph"]
    return log


def _expect_history(history, reference, log, val, what) -> None:
    """Every epoch's losses match a correct loop's; a difference is explained from the spies' records."""
    on_val = _forwards_on(log, _val_batches(val))
    for epoch, ((train_loss, val_loss), (ref_train, ref_val)) in enumerate(zip(history, reference), start=1):
        plain, per_sample = _plain_mean(ref_train), _per_sample_mean(ref_train)
        if not (_close(train_loss, plain) or _close(train_loss, per_sample)):
            hint = "one zero_grad / forward / loss / backward / step per batch; the mean of the batches' loss.item()"
            if log["zero_grads"] == 0:
                hint = ("the gradients are never zeroed, so every step uses the sum of all earlier batches' gradients: "
                        "call optimizer.zero_grad() for every batch, before loss.backward()")
            fail(f"{what}: the training loss of epoch {epoch} differs from a correct loop's.",
                 f"{plain:.5f} (or the mean per sample, {per_sample:.5f})", f"{train_loss:.5f}", hint)
        expected = _per_sample_mean(ref_val)
        if _close(val_loss, expected):
            continue
        hint = ("the validation loss is the mean per sample over val_loader (add up loss.item() * len(X), divide by "
                "the number of samples), measured after that epoch's training")
        if not on_val:
            hint = ("the model never saw a validation batch: the validation loop reads the training loop's variables "
                    "(its last batch), not its own. Unpack the validation loop's own batch: for X, y in val_loader "
                    f"{_BUG_SECTION}")
        elif any(any(f["training"]) for f in on_val):
            hint = ("the validation batches ran in training mode, so dropout changed them: call model.eval() before "
                    f"the validation loop (and model.train() before training) {_MODES_SECTION}")
        elif _close(val_loss, _plain_mean(ref_val)):
            hint = EVALUATE_PLAIN_MEAN_HINT
        fail(f"{what}: the validation loss of epoch {epoch} differs from a correct loop's.", f"{expected:.5f}",
             f"{val_loss:.5f}", hint)
    graph = [f for f in on_val if f["grad"] or f["graph"]]
    expect(not graph, f"{what} built a computation graph in the validation loop.",
           "torch.is_grad_enabled() == False while validating", f"a graph in {len(graph)} validation forward passes",
           "wrap the validation loop in `with torch.no_grad():`: without it every validation batch keeps a graph "
           f"that nothing will use {_EVALUATE_SECTION}.")


@one_thread
def judge_fixed_fit(obs: dict, **kwargs) -> None:
    """fixed_fit: every epoch's (train_loss, val_loss) and the final weights match a correct loop's."""
    what = f"fixed_fit(model, train_loader, val_loader, criterion, optimizer, epochs={FIXED_FIT_EPOCHS})"
    model, loader, val, criterion, make_optimizer = stopping_config("dropout")
    initial = _state(model)
    with _reading(what):
        recorded_initial = _read_state(obs["initial"], initial)
        after = _read_state(obs["after"], initial)
        captured = obs["result"] if "result" in obs else {"raised": obs["raised"]}
    _expect_started_from(recorded_initial, initial, what)
    history = _read_history(captured, what, FIXED_FIT_EPOCHS)
    log = _read_spied(obs, model, what)
    reference, _ = _reference_history(model, loader, val, criterion, make_optimizer(model.parameters()),
                                      FIXED_FIT_EPOCHS)
    _expect_history(history, reference, log, val, what)
    expect(_same_state(after, _state(model)), f"after {what} the weights differ from a correct loop's.",
           hint="one zero_grad / forward / loss / backward / step per training batch; validation changes nothing.")
    n_batches = FIXED_FIT_EPOCHS * (len(loader) + len(val))
    _expect_moved(obs["moves"], n_batches, what, "cpu")


check_fixed_fit = judged(observe_fixed_fit, judge_fixed_fit)


def _stops_after(val_losses, patience, strict=True, reset=True, extra=0) -> int:
    """How many epochs an early-stopping rule runs on a known validation curve (variants name mistakes)."""
    best, waited = math.inf, 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best or (not strict and loss == best):
            best, waited = loss, 0 if reset else waited
        else:
            waited += 1
            if waited >= patience + extra:
                return epoch
    return len(val_losses)


def stopping_mistake(val_losses: list[float], ran: int, patience: int) -> str | None:
    """The known early-stopping mistake that runs exactly `ran` epochs on this validation curve (where a correct rule
    runs another number), or None."""
    for variant, why in (({"strict": False}, "a validation loss equal to the best is not an improvement: compare "
                          "with <, not <="),
                         ({"reset": False}, "reset the count of epochs without improvement to 0 at every new best: "
                          "patience counts consecutive epochs"),
                         ({"extra": 1}, f"stop as soon as {patience} epochs in a row did not improve, not one later"),
                         ({"extra": -1}, f"wait for {patience} epochs in a row without improvement, not one fewer")):
        if ran == _stops_after(val_losses, patience, **variant) != _stops_after(val_losses, patience):
            return why
    return None


def _length_hint(name, ran, patience) -> str:
    """Why an early-stopping loop ran `ran` epochs on a scripted curve, where the variants can be told apart."""
    mistake = stopping_mistake([t * t for t in SCRIPTS[name]], ran, patience) if name in SCRIPTS else None
    if mistake:
        return f"{mistake} {_STOPPING_SECTION}."
    return (f"after each epoch: if the validation loss is strictly lower than the best so far, remember it and reset "
            f"the count; otherwise count one more epoch and stop when the count reaches patience={patience} "
            f"{_STOPPING_SECTION}.")


def _state_values(data, like, what, name) -> dict:
    """A recorded best_state: a dict with the model's keys and shapes."""
    state = observation.decode(data)
    expect(isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values()),
           f"{what} returned a best_state that is not a state_dict.", "a dict of tensors (model.state_dict())",
           type_name(state), "keep copy.deepcopy(model.state_dict()) of the best epoch and return it.")
    with _reading(what):
        return _read_state(data, like)


def _judge_stopping_run(raw, name, max_epochs, patience) -> None:
    what = f"fit_with_early_stopping(..., max_epochs={max_epochs}, patience={patience})"
    what += " on a model with dropout" if name == "dropout" else " on a model whose validation curve is known"
    model, loader, val, criterion, make_optimizer = stopping_config(name)
    with _reading(what):
        keys = {f"model.{k}": v for k, v in _state(model).items()}  # the student got the model behind a spy
        if "raised" in raw:
            returned({"raised": raw["raised"]}, what)
        if "result" in raw:
            fail(f"{what} should return a pair (best_state, history).", "(best_state, history)",
                 repr(returned(raw["result"], what))[:100], "return best_state, history")
        captured_history, best_data, later_data = raw["history"], raw["best"], raw["best_later"]
        model_after = {f"model.{k}": v for k, v in _read_state(raw["model_after"], _state(model)).items()}
    history = _read_history(captured_history, what)
    log = _read_spied(raw, model, what)
    reference, best_state = _reference_history(model, loader, val, criterion, make_optimizer(model.parameters()),
                                               max_epochs, patience)
    _expect_history(history[:len(reference)], reference, log, val, what)
    expect(len(history) == len(reference), f"{what} ran the wrong number of epochs.",
           f"{len(reference)} epochs (then {patience} without a strictly lower validation loss)"
           if len(reference) < max_epochs else f"all {max_epochs} epochs (the validation loss kept improving)",
           f"{len(history)} epochs", _length_hint(name, len(history), patience))
    best = _state_values(best_data, keys, what, name)
    later = _state_values(later_data, keys, what, name)
    expect(_same_state(best, later, atol=0), f"{what} returned a best_state that changes when the model trains on.",
           "an independent copy of the best epoch's state_dict", "a state_dict that shares the model's tensors",
           "model.state_dict() holds references to the live parameters: keep copy.deepcopy(model.state_dict()) "
           f"(or clone every tensor) {_STOPPING_SECTION}.")
    expected = {f"model.{k}": v for k, v in best_state.items()}
    expect(_same_state(best, expected), f"{what} returned the state of the wrong epoch as best_state.",
           "the weights after the epoch with the lowest validation loss", "other weights",
           "copy the state_dict whenever the validation loss is strictly lower than the best so far, and only then.")
    expect(_same_state(model_after, expected), f"{what} left the model with other weights than best_state.",
           "the model holding the best epoch's weights when the function returns", "other weights",
           f"before returning, call model.load_state_dict(best_state) {_STOPPING_SECTION}.")


@one_thread
def judge_fit_with_early_stopping(obs: dict, **kwargs) -> None:
    """fit_with_early_stopping: a correct history, stopping after `patience` epochs without a strictly lower
    validation loss; best_state an independent copy of the best epoch's weights, which the model holds at return."""
    for run in STOPPING_RUNS:
        _judge_stopping_run(obs["runs"][run[0]], *run)


check_fit_with_early_stopping = judged(observe_fit_with_early_stopping, judge_fit_with_early_stopping)
