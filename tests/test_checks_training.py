"""Do the hidden checks of exercise 05 accept correct training loops and explain each wrong one?"""

import numpy as np
import pytest
import torch
from mutant_bank.bank_05_training_loop import (
    CORRECT_EVALUATE,
    CORRECT_TRAIN,
    EVALUATE,
    EVALUATE_MISTAKES,
    TRAIN,
    TRAIN_MISTAKES,
    source,
)
from torch import nn

from grader.checks import training
from grader.checks.report import CheckFailed

REFERENCE_TRAIN = TRAIN + """
    model.train()
    losses = []
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
"""
REFERENCE_EVALUATE = EVALUATE + """
    model.eval()
    losses = []
    with torch.no_grad():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            losses.append(criterion(model(X), y).item())
    return sum(losses) / len(losses)
"""


def _notebook():
    """What the notebook's globals hold when the answer cells run: a trained model, its optimizer, a loader."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    X = torch.randn(40, 2, generator=torch.Generator().manual_seed(0))
    y = (X[:, :1] > 0).float()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=16)
    criterion = nn.BCEWithLogitsLoss()
    criterion(model(X), y).backward()  # leftover gradients, as after a training epoch
    optimizer.step()
    return {"torch": torch, "nn": nn, "np": np, "model": model, "optimizer": optimizer, "val_loader": loader,
            "criterion": criterion}


def _function(cell, name):
    namespace = _notebook()
    exec(cell, namespace)
    return namespace[name], namespace


def _fails_with(check, *args, fragment):
    with pytest.raises(CheckFailed) as failure:
        check(*args)
    assert fragment in str(failure.value), f"message lacks {fragment!r}:\n{failure.value}"
    return str(failure.value)


@pytest.mark.parametrize("name", ["reference", *CORRECT_TRAIN])
def test_train_check_accepts_correct_variants(name):
    """Is every correct train_one_epoch accepted (zero_grad after step, model.zero_grad(), set_to_none...)?"""
    cell = REFERENCE_TRAIN if name == "reference" else source(TRAIN, CORRECT_TRAIN[name])
    train_one_epoch, _ = _function(cell, "train_one_epoch")
    training.check_train_one_epoch(train_one_epoch)
    training.check_fit(train_one_epoch, _function(REFERENCE_EVALUATE, "evaluate")[0])


@pytest.mark.parametrize("name", ["reference", *CORRECT_EVALUATE])
def test_evaluate_check_accepts_correct_variants(name):
    """Is every correct evaluate accepted (inference_mode, a no_grad decorator, restoring the mode)?"""
    cell = REFERENCE_EVALUATE if name == "reference" else source(EVALUATE, CORRECT_EVALUATE[name])
    evaluate, namespace = _function(cell, "evaluate")
    training.check_evaluate(evaluate, namespace["model"], namespace["val_loader"], namespace["criterion"])
    training.check_fit(_function(REFERENCE_TRAIN, "train_one_epoch")[0], evaluate)


@pytest.mark.parametrize("name", sorted(TRAIN_MISTAKES))
def test_train_check_explains_each_mistake(name):
    """Does each wrong train_one_epoch fail with a message naming the mistake?"""
    body, fragment, _notebook_fragment = TRAIN_MISTAKES[name]
    train_one_epoch, _ = _function(source(TRAIN, body), "train_one_epoch")
    _fails_with(training.check_train_one_epoch, train_one_epoch, fragment=fragment)


@pytest.mark.parametrize("name", sorted(EVALUATE_MISTAKES))
def test_evaluate_check_explains_each_mistake(name):
    """Does each wrong evaluate fail with a message naming the mistake (the notebook's model included)?"""
    body, fragment, _notebook_fragment = EVALUATE_MISTAKES[name]
    evaluate, namespace = _function(source(EVALUATE, body), "evaluate")
    _fails_with(training.check_evaluate, evaluate, namespace["model"], namespace["val_loader"], namespace["criterion"],
                fragment=fragment)


@pytest.mark.parametrize("name, fragment", [
    ("no_train_mode", "train_one_epoch ran the model in eval mode"),
    ("returns_last_batch_loss", "the training loss (train_one_epoch) differs"),
    ("weighted_by_batch_size", "the training loss (train_one_epoch) differs"),
    ("returns_tensor_with_graph", "holds the computation graph"),
    ("evaluate_no_eval", "evaluate ran the model in training mode"),
    ("evaluate_zeroes_weights_in_place", "the training loss (train_one_epoch) differs"),
    ("evaluate_returns_last", "the validation loss (evaluate) differs"),
])
def test_fit_check_catches_mistakes_that_show_across_epochs(name, fragment):
    """Does alternating train and evaluate expose a loop left in eval mode, or a wrong loss?"""
    train_cell, evaluate_cell = REFERENCE_TRAIN, REFERENCE_EVALUATE
    if name in TRAIN_MISTAKES:
        train_cell = source(TRAIN, TRAIN_MISTAKES[name][0])
    else:
        evaluate_cell = source(EVALUATE, EVALUATE_MISTAKES[name][0])
    _fails_with(training.check_fit, _function(train_cell, "train_one_epoch")[0],
                _function(evaluate_cell, "evaluate")[0], fragment=fragment)


def test_spies_leave_no_trace():
    """Do the checks give back the thread count and the global random state, and leave the model as it was?"""
    train_one_epoch, namespace = _function(REFERENCE_TRAIN, "train_one_epoch")
    evaluate, _ = _function(REFERENCE_EVALUATE, "evaluate")
    threads, state = torch.get_num_threads(), torch.get_rng_state()
    training.check_train_one_epoch(train_one_epoch)
    training.check_evaluate(evaluate, namespace["model"], namespace["val_loader"], namespace["criterion"])
    training.check_fit(train_one_epoch, evaluate)
    assert torch.get_num_threads() == threads, "a check changed torch's number of threads"
    assert torch.equal(torch.get_rng_state(), state), "a check changed the global random state"
    model = namespace["model"]
    assert type(model) is nn.Sequential and not model._forward_hooks


def test_not_implemented_passes_through_unchanged():
    """Does an unsolved stub still raise NotImplementedError, not a check failure?"""
    def stub(*args, **kwargs):
        raise NotImplementedError("Replace this line")

    for check, args in [(training.check_train_one_epoch, (stub,)), (training.check_evaluate, (stub,)),
                        (training.check_fit, (stub, stub))]:
        with pytest.raises(NotImplementedError):
            check(*args)


@pytest.mark.parametrize("seed", range(20))
def test_reference_passes_under_any_global_seed(seed):
    """Does the reference pass whatever the global random state is?"""
    train_one_epoch, _ = _function(REFERENCE_TRAIN, "train_one_epoch")
    evaluate, namespace = _function(REFERENCE_EVALUATE, "evaluate")
    torch.manual_seed(seed)
    training.check_train_one_epoch(train_one_epoch)
    torch.manual_seed(seed)
    training.check_evaluate(evaluate, namespace["model"], namespace["val_loader"], namespace["criterion"])
    torch.manual_seed(seed)
    training.check_fit(train_one_epoch, evaluate)
