"""Do the hidden checks of exercise 07 accept correct code, catch leaks from the reserved rows, and
explain each wrong answer?"""

import json
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer
from torch import nn
from torch.utils.data import DataLoader, Dataset

from grader import course
from grader.checks import capstone
from grader.checks.report import CheckFailed


def _fails_with(check, *args, fragments):
    with pytest.raises(CheckFailed) as failure:
        check(*args)
    for fragment in fragments:
        assert fragment in str(failure.value), f"message lacks {fragment!r}:\n{failure.value}"
    return str(failure.value)


# Reference building blocks -----------------------------------------------------------------------

class MLP(nn.Module):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__()
        sizes, layers = [in_features, *hidden], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], out_features))

    def forward(self, x):
        return self.net(x)


class ListMLP(nn.Module):
    """Correct too: nn.ModuleList with F.relu."""

    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


class TabularDataset(Dataset):
    def __init__(self, X, y):
        self.X = torch.tensor(X, dtype=torch.float32)
        self.y = torch.tensor(y, dtype=torch.float32).reshape(-1, 1)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


class LazyDataset(Dataset):
    """Correct too: keeps NumPy rows and converts on access."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return self.X.shape[0]

    def __getitem__(self, i):
        return torch.tensor(self.X[i], dtype=torch.float32), torch.tensor([self.y[i]], dtype=torch.float32)


def train_one_epoch(model, loader, criterion, optimizer, device="cpu"):
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


def train_one_epoch_zero_after(model, loader, criterion, optimizer, device="cpu"):
    model.train()
    total, count = 0.0, 0
    for X, y in loader:
        loss = criterion(model(X.to(device)), y.to(device))
        loss.backward()
        optimizer.step()
        model.zero_grad()
        total, count = total + loss.item(), count + 1
    return total / count


def predict(model, X, threshold=0.5, device="cpu"):
    model = model.to(device)
    model.eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(X.to(device))).squeeze(1)
    return (probs >= threshold).long().cpu()


def _fit(model, X, y, epochs=20, lr=1e-2, batch_size=32, dataset=TabularDataset):
    loader = DataLoader(dataset(X, y), batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        train_one_epoch(model, loader, nn.BCEWithLogitsLoss(), optimizer)
    return model


def train_capstone(X_train, y_train):
    torch.manual_seed(0)
    mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
    model = _fit(MLP(30, (32,)), (X_train - mean.numpy()) / std.numpy(), y_train)
    return model, mean, std


def train_capstone_torch_stats(X_train, y_train):
    """Correct: torch statistics (unbiased std), ModuleList MLP, lazy dataset, validation watched."""
    torch.manual_seed(1)
    X = torch.tensor(X_train, dtype=torch.float32)
    mean, std = X.mean(dim=0), X.std(dim=0)
    model = ListMLP(30, (16, 8))
    loader = DataLoader(LazyDataset(((X - mean) / std).numpy(), y_train), batch_size=50, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    parts = capstone.splits()
    X_val = (torch.tensor(parts["X_val"], dtype=torch.float32) - mean) / std
    for _ in range(25):
        train_one_epoch_zero_after(model, loader, nn.BCEWithLogitsLoss(), optimizer)
        predict(model, X_val)  # watching the validation accuracy is fine: no gradients, eval mode
    return model, mean, std


def train_capstone_full_batch(X_train, y_train):
    """Correct: a hand-written full-batch loop on tensors."""
    torch.manual_seed(2)
    X = torch.tensor(X_train, dtype=torch.float32)
    mean, std = X.mean(0), X.std(0)
    X = (X - mean) / std
    y = torch.tensor(y_train, dtype=torch.float32)[:, None]
    model = MLP(30, (30,))  # a hidden layer as wide as the input must not confuse the spy
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(150):
        optimizer.zero_grad()
        F.binary_cross_entropy_with_logits(model(X), y).backward()
        optimizer.step()
    return model, mean, std


# Wrong train_capstone variants -------------------------------------------------------------------

def trains_on_everything(X_train, y_train):
    torch.manual_seed(0)
    X_all, y_all = load_breast_cancer(return_X_y=True)
    mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
    return _fit(MLP(30, (32,)), (X_all - mean.numpy()) / std.numpy(), y_all), mean, std


def scaler_on_everything(X_train, y_train):
    torch.manual_seed(0)
    X_all = load_breast_cancer().data
    mean = torch.tensor(X_all.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_all.std(axis=0), dtype=torch.float32)
    return _fit(MLP(30, (32,)), (X_train - mean.numpy()) / std.numpy(), y_train), mean, std


def scaler_on_train_and_val(X_train, y_train):
    torch.manual_seed(0)
    X_dev = np.concatenate([X_train, capstone.splits()["X_val"]])
    mean = torch.tensor(X_dev.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_dev.std(axis=0), dtype=torch.float32)
    return _fit(MLP(30, (32,)), (X_train - mean.numpy()) / std.numpy(), y_train), mean, std


def no_standardisation(X_train, y_train):
    torch.manual_seed(0)
    return _fit(MLP(30, (32,)), X_train, y_train), torch.zeros(30), torch.ones(30)


def stats_not_applied(X_train, y_train):
    torch.manual_seed(0)
    mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
    return _fit(MLP(30, (32,)), X_train, y_train), mean, std


def untrained(X_train, y_train):
    torch.manual_seed(0)
    mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
    return MLP(30, (32,)), mean, std


def trains_on_validation_too(X_train, y_train):
    torch.manual_seed(0)
    mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
    parts = capstone.splits()
    X = np.concatenate([X_train, parts["X_val"]])
    y = np.concatenate([y_train, parts["y_val"]])
    return _fit(MLP(30, (32,)), (X - mean.numpy()) / std.numpy(), y), mean, std


class AlwaysPositive(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(30, 1)

    def forward(self, x):
        return self.layer(x) * 0 + 5


def always_one(X_train, y_train):
    mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
    model = AlwaysPositive()
    _fit(model, (X_train - mean.numpy()) / std.numpy(), y_train, epochs=1)
    return model, mean, std


def one_epoch_tiny_lr(X_train, y_train):
    torch.manual_seed(0)
    mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
    return _fit(MLP(30, (32,)), (X_train - mean.numpy()) / std.numpy(), y_train, epochs=1, lr=1e-5), mean, std


def numpy_statistics(X_train, y_train):
    model, mean, std = train_capstone(X_train, y_train)
    return model, mean.numpy(), std.numpy()


# The split ------------------------------------------------------------------------------------------

def test_notebook_setup_makes_the_same_split():
    """Does the locked setup cell split the data with the constants the checks use?"""
    nb = json.loads((course.SOLUTIONS / "07_capstone" / "07_capstone.ipynb").read_text())
    cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in nb["cells"]}
    setup = "".join(cells["setup"]["source"])
    assert f"test_size={capstone.RESERVED_FRACTION}, random_state={capstone.RESERVED_SEED}" in setup
    assert f"test_size={capstone.VAL_FRACTION}, random_state={capstone.VAL_SEED}" in setup
    assert "del data, X_reserved, y_reserved" in setup


def test_splits_are_disjoint_and_complete():
    """Do the training, validation and reserved parts cover the data set exactly once?"""
    parts = capstone.splits()
    sizes = [len(parts[k]) for k in ("X_train", "X_val", "X_reserved")]
    assert sizes == [341, 114, 114] and sum(sizes) == 569
    rows = {tuple(r) for k in ("X_train", "X_val", "X_reserved") for r in parts[k]}
    assert len(rows) == 569


# Part A ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mlp, dataset, epoch", [
    (MLP, TabularDataset, train_one_epoch),
    (ListMLP, LazyDataset, train_one_epoch_zero_after),
])
def test_building_blocks_accept_correct_variants(mlp, dataset, epoch):
    """Are Sequential/ModuleList models, eager/lazy datasets and zero_grad before/after step accepted?"""
    capstone.check_building_blocks(mlp, dataset, epoch, predict)


class PlainListMLP(MLP):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        nn.Module.__init__(self)
        sizes = [in_features, *hidden, out_features]
        self.layers = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


class SigmoidMLP(MLP):
    def forward(self, x):
        return torch.sigmoid(self.net(x))


class NoReluMLP(ListMLP):
    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class HardCodedMLP(MLP):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__(in_features, (32, 64), out_features)


class FeatureCountDataset(TabularDataset):
    def __len__(self):
        return self.X.shape[1]


class ScalarTargetDataset(TabularDataset):
    def __getitem__(self, i):
        return self.X[i], self.y[i, 0]


class Float64Dataset(TabularDataset):
    def __getitem__(self, i):
        return self.X[i].double(), self.y[i]


def no_zero_grad(model, loader, criterion, optimizer, device="cpu"):
    model.train()
    losses = []
    for X, y in loader:
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def last_loss(model, loader, criterion, optimizer, device="cpu"):
    train_one_epoch(model, loader, criterion, optimizer, device)
    return criterion(model(next(iter(loader))[0]), next(iter(loader))[1]).item()


def no_train_mode(model, loader, criterion, optimizer, device="cpu"):
    losses = []
    for X, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def strict_predict(model, X, threshold=0.5, device="cpu"):
    model.eval()
    with torch.no_grad():
        return (torch.sigmoid(model(X)).squeeze(1) > threshold).long()


@pytest.mark.parametrize("blocks, fragments", [
    ((PlainListMLP, TabularDataset, train_one_epoch, predict), ["wrong nn.Linear layers", "plain Python list"]),
    ((SigmoidMLP, TabularDataset, train_one_epoch, predict), ["Linear -> ReLU", "nothing after the last"]),
    ((NoReluMLP, TabularDataset, train_one_epoch, predict), ["Linear -> ReLU"]),
    ((HardCodedMLP, TabularDataset, train_one_epoch, predict), ["MLP(5, (7,), 2)", "wrong nn.Linear layers"]),
    ((MLP, FeatureCountDataset, train_one_epoch, predict), ["number of rows"]),
    ((MLP, ScalarTargetDataset, train_one_epoch, predict), ["target", "wrong shape"]),
    ((MLP, Float64Dataset, train_one_epoch, predict), ["float32 tensor", "float64"]),
    ((MLP, TabularDataset, no_zero_grad, predict), ["zero_grad"]),
    ((MLP, TabularDataset, last_loss, predict), ["wrong loss", "last batch"]),
    ((MLP, TabularDataset, no_train_mode, predict), ["model.train()"]),
    ((MLP, TabularDataset, train_one_epoch, strict_predict), ["use >="]),
])
def test_building_blocks_explain_mistakes(blocks, fragments):
    """Does each broken building block fail with a message naming the mistake?"""
    _fails_with(capstone.check_building_blocks, *blocks, fragments=fragments)


# Part B and E --------------------------------------------------------------------------------------

@pytest.mark.parametrize("right", [train_capstone, train_capstone_torch_stats, train_capstone_full_batch],
                         ids=lambda f: f.__name__)
def test_training_accepts_correct_variants(right):
    """Is every correct train_capstone accepted by Part B and both accuracy tiers of Part E?"""
    capstone.check_train_capstone(right)
    capstone.check_reserved_accuracy(right, minimum=0.90)
    capstone.check_reserved_accuracy(right, minimum=0.95)


@pytest.mark.parametrize("seed", range(20))
def test_reference_passes_under_any_global_seed(seed):
    """Does the reference get every capstone point whatever the global seed was before the checks?"""
    torch.manual_seed(seed)
    capstone._runs.clear()
    capstone.check_train_capstone(train_capstone)
    capstone.check_reserved_accuracy(train_capstone, minimum=0.95)


@pytest.mark.parametrize("wrong, fragments", [
    (trains_on_everything, ["reserved part", "reload the data set"]),
    (scaler_on_everything, ["all 569 rows", "reserved rows included"]),
    (scaler_on_train_and_val, ["training and validation parts together"]),
    (no_standardisation, ["not standardised"]),
    (stats_not_applied, ["not rows of X_train standardised"]),
    (untrained, ["not trained"]),
    (trains_on_validation_too, ["rows of the validation part"]),
    (numpy_statistics, ["tensor of shape (30,)", "ndarray"]),
])
def test_training_explains_mistakes(wrong, fragments):
    """Does each wrong train_capstone lose Part B with a message naming the mistake?"""
    _fails_with(capstone.check_train_capstone, wrong, fragments=fragments)


@pytest.mark.parametrize("wrong, minimum, fragments", [
    (trains_on_everything, 0.90, ["cannot score this model", "reserved part"]),
    (scaler_on_everything, 0.90, ["cannot score this model", "reserved rows included"]),
    (untrained, 0.90, ["accuracy on the 114 reserved rows"]),
    (always_one, 0.90, ["scores 0.6"]),
    (one_epoch_tiny_lr, 0.90, ["reserved rows", "more epochs"]),
    (no_standardisation, 0.95, ["reserved rows", ">= 0.95"]),
])
def test_accuracy_explains_mistakes(wrong, minimum, fragments):
    """Does a leaking or weak model lose the accuracy points with a message saying why?"""
    _fails_with(capstone.check_reserved_accuracy, wrong, minimum, fragments=fragments)


def test_hidden_training_runs_once_per_function():
    """Do Part B and both Part E checks share one hidden training run of the same function?"""
    calls = []

    def counted(X_train, y_train):
        calls.append(1)
        return train_capstone(X_train, y_train)

    capstone.check_train_capstone(counted)
    capstone.check_reserved_accuracy(counted, minimum=0.90)
    capstone.check_reserved_accuracy(counted, minimum=0.95)
    assert len(calls) == 1


def test_all_hidden_checks_are_fast():
    """Do all hidden checks of the notebook together run in well under 10 s?"""
    capstone._runs.clear()
    start = time.perf_counter()
    capstone.check_building_blocks(MLP, TabularDataset, train_one_epoch, predict)
    capstone.check_train_capstone(train_capstone)
    capstone.check_predict_raw(predict_raw)
    capstone.check_checkpoint(MLP, save_checkpoint, load_checkpoint)
    capstone.check_reserved_accuracy(train_capstone, minimum=0.90)
    capstone.check_reserved_accuracy(train_capstone, minimum=0.95)
    assert time.perf_counter() - start < 5


# Part C ------------------------------------------------------------------------------------------

def predict_raw(model, mean, std, X_raw):
    X = (torch.tensor(X_raw, dtype=torch.float32) - mean) / std
    return predict(model, X, device=next(model.parameters()).device)


def predict_raw_float64(model, mean, std, X_raw):
    X = (X_raw - mean.double().numpy()) / std.double().numpy()
    return predict(model, torch.from_numpy(X).float())


def test_predict_raw_accepts_correct_variants():
    """Are float32 and float64 standardisation both accepted?"""
    capstone.check_predict_raw(predict_raw)
    capstone.check_predict_raw(predict_raw_float64)


@pytest.mark.parametrize("wrong, fragments", [
    (lambda model, mean, std, X_raw: predict(model, torch.tensor(X_raw, dtype=torch.float32)),
     ["did not standardise"]),
    (lambda model, mean, std, X_raw: predict_raw(model, torch.tensor(X_raw).mean(0).float(),
                                                 torch.tensor(X_raw).std(0).float(), X_raw),
     ["its own mean and std"]),
    (lambda model, mean, std, X_raw: predict_raw(model, mean, std, X_raw).numpy(), ["int64 labels"]),
    (lambda model, mean, std, X_raw: predict_raw(model, std, mean, X_raw), ["wrong labels"]),
])
def test_predict_raw_explains_mistakes(wrong, fragments):
    """Does each wrong predict_raw fail with a message naming the mistake?"""
    _fails_with(capstone.check_predict_raw, wrong, fragments=fragments)


# Part D ------------------------------------------------------------------------------------------

def save_checkpoint(model, mean, std, path):
    torch.save({"state_dict": model.state_dict(), "mean": mean, "std": std}, path)


def load_checkpoint(path, model):
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["state_dict"])
    return model, checkpoint["mean"], checkpoint["std"]


def save_flat(model, mean, std, path):
    torch.save({**model.state_dict(), "_mean": mean, "_std": std}, path)


def load_flat(path, model):
    state = torch.load(path)
    mean, std = state.pop("_mean"), state.pop("_std")
    model.load_state_dict(state)
    return model, mean, std


def test_checkpoint_accepts_correct_variants():
    """Are a nested and a flat checkpoint dict both accepted?"""
    capstone.check_checkpoint(MLP, save_checkpoint, load_checkpoint)
    capstone.check_checkpoint(ListMLP, save_flat, load_flat)


def save_whole_model(model, mean, std, path):
    torch.save({"model": model, "mean": mean, "std": std}, path)


def load_whole_model(path, model):
    checkpoint = torch.load(path, weights_only=False)
    return checkpoint["model"], checkpoint["mean"], checkpoint["std"]


def load_forgets_weights(path, model):
    checkpoint = torch.load(path)
    return model, checkpoint["mean"], checkpoint["std"]


def save_weights_only(model, mean, std, path):
    torch.save(model.state_dict(), path)


def load_weights_only(path, model):
    model.load_state_dict(torch.load(path))
    return model, torch.zeros(30), torch.ones(30)


@pytest.mark.parametrize("save, load, fragments", [
    (save_whole_model, load_whole_model, ["weights_only=True", "state_dict"]),
    (save_checkpoint, load_forgets_weights, ["different logits", "load_state_dict"]),
    (save_weights_only, load_weights_only, ["different mean"]),
    (lambda model, mean, std, path: None, load_checkpoint, ["wrote no file"]),
])
def test_checkpoint_explains_mistakes(save, load, fragments):
    """Does each broken save/load pair fail with a message naming the mistake?"""
    _fails_with(capstone.check_checkpoint, MLP, save, load, fragments=fragments)


def test_not_implemented_passes_through_unchanged():
    """Does an unsolved stub still raise NotImplementedError, not a check failure?"""
    def stub(*args, **kwargs):
        raise NotImplementedError("Replace this line")

    with pytest.raises(NotImplementedError):
        capstone.check_train_capstone(stub)
    with pytest.raises(NotImplementedError):
        capstone.check_predict_raw(stub)
    with pytest.raises(NotImplementedError):
        capstone.check_building_blocks(stub, stub, stub, stub)
