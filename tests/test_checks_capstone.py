"""Do the hidden checks of exercise 08 accept correct code, catch leaks from the reserved rows, and
explain each wrong answer?"""

import json
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from check_helpers import Observations, encoded, fails_with, unsolved
from sklearn.datasets import load_breast_cancer
from torch import nn
from torch.utils.data import DataLoader, Dataset

from grader import course
from grader.checks import capstone, inference
from grader.checks.report import CheckFailed
from grader.observation import as_json, decode
from grader.observers import capstone as observers
from grader.observers.inference import seeded


def _fails_with(check, *args, fragments, **kwargs):
    with pytest.raises(CheckFailed) as failure:
        check(*args, **kwargs)
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
    """Its logits do not come from its nn.Linear layer: the reserved rows cannot score it."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(30, 1)

    def forward(self, x):
        return self.layer(x) * 0 + 5


def lies_about_its_layers(X_train, y_train):
    mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
    model = AlwaysPositive()
    _fit(model, (X_train - mean.numpy()) / std.numpy(), y_train, epochs=1)
    return model, mean, std


def always_one(X_train, y_train):
    """An honest MLP whose last layer gives the logit 5 to every row: every label is 1."""
    torch.manual_seed(0)
    mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
    model = _fit(MLP(30, (8,)), (X_train - mean.numpy()) / std.numpy(), y_train, epochs=1)
    with torch.no_grad():
        model.net[-1].weight.zero_()
        model.net[-1].bias.fill_(5.0)
    return model, mean, std


class BatchNormMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(30, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x)


def with_batch_norm(X_train, y_train):
    """Correct: a model with batch norm (Part E invites students to improve the model)."""
    torch.manual_seed(0)
    mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
    return _fit(BatchNormMLP(), (X_train - mean.numpy()) / std.numpy(), y_train), mean, std


def _trained(build):
    """A train_capstone that standardises as it should and trains the model build() makes."""
    def train_capstone_with(X_train, y_train):
        torch.manual_seed(0)
        mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
        std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
        return _fit(build(), (X_train - mean.numpy()) / std.numpy(), y_train), mean, std

    return train_capstone_with


class FunctionalActivations(nn.Module):
    """Correct: activations called as functions in forward (F.gelu, torch.tanh, F.leaky_relu)."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(30, 32), nn.Linear(32, 16), nn.Linear(16, 1)

    def forward(self, x):
        return self.c(F.leaky_relu(torch.tanh(self.b(F.gelu(self.a(x)))), 0.1))


class Scale(nn.Module):
    """A home-made layer: the grader cannot know what it computes."""

    def __init__(self):
        super().__init__()
        self.s = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * self.s


class ClampReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(30, 32), nn.Linear(32, 1)

    def forward(self, x):
        return self.b(self.a(x).clamp(min=0))


class DropsInEval(nn.Module):
    """F.dropout without training=self.training drops values in evaluation mode too."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(30, 32), nn.Linear(32, 1)

    def forward(self, x):
        return self.b(F.dropout(F.relu(self.a(x)), 0.3))


# Models the capstone accepts beyond Linear/ReLU (Part E of the notebook lists what may be used).
ACCEPTED_MODELS = {
    "batch_norm_relu": lambda: nn.Sequential(nn.Linear(30, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1)),
    "layer_norm_gelu_dropout": lambda: nn.Sequential(nn.Linear(30, 32), nn.LayerNorm(32), nn.GELU(), nn.Dropout(0.2),
                                                     nn.Linear(32, 1)),
    "tanh": lambda: nn.Sequential(nn.Linear(30, 32), nn.Tanh(), nn.Linear(32, 1)),
    "leaky_relu_elu": lambda: nn.Sequential(nn.Linear(30, 32), nn.LeakyReLU(0.1), nn.Linear(32, 16), nn.ELU(0.5),
                                            nn.Linear(16, 1)),
    "silu_softplus": lambda: nn.Sequential(nn.Linear(30, 32), nn.SiLU(), nn.Linear(32, 16), nn.Softplus(beta=2),
                                           nn.Linear(16, 1)),
    "sigmoid_hidden": lambda: nn.Sequential(nn.Linear(30, 32), nn.Sigmoid(), nn.Linear(32, 1)),
    "prelu_mish_identity": lambda: nn.Sequential(nn.Linear(30, 32), nn.PReLU(), nn.Identity(), nn.Linear(32, 16),
                                                 nn.Mish(), nn.Linear(16, 1)),
    "gelu_tanh_approximation_batch_norm_first": lambda: nn.Sequential(
        nn.BatchNorm1d(30), nn.Linear(30, 32), nn.GELU(approximate="tanh"), nn.Linear(32, 1)),
    "functional_activations": FunctionalActivations,
}


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
    nb = json.loads((course.SOLUTIONS / "08_capstone" / "08_capstone.ipynb").read_text())
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

@pytest.mark.parametrize("right", [train_capstone, train_capstone_torch_stats, train_capstone_full_batch,
                                   with_batch_norm], ids=lambda f: f.__name__)
def test_training_accepts_correct_variants(right):
    """Is every correct train_capstone accepted by Part B and both accuracy tiers of Part E?"""
    capstone.check_train_capstone(right)
    capstone.check_reserved_accuracy(right, minimum=0.90)
    capstone.check_reserved_accuracy(right, minimum=0.95)


@pytest.mark.parametrize("name", sorted(ACCEPTED_MODELS))
def test_every_standard_layer_the_judge_rebuilds_is_scored(name):
    """Is a model with batch norm, layer norm, dropout or another standard activation (module or function)
    rebuilt by the judge and scored on the reserved rows like a plain MLP?"""
    right = _trained(ACCEPTED_MODELS[name])
    capstone.check_train_capstone(right)
    capstone.check_reserved_accuracy(right, minimum=0.95)


def test_the_notebook_lists_what_the_judge_accepts():
    """Does Part E state the training budget and name every kind of layer the judge can rebuild?"""
    nb = json.loads((course.SOLUTIONS / "08_capstone" / "08_capstone.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert f"{capstone.TRAINING_BUDGET_S} s" in text
    missing = [kind for kind in capstone.REBUILDS if f"`{kind}`" not in text]
    assert not missing, f"Part E does not name these layers the judge accepts: {missing}"


@pytest.mark.parametrize("seed", range(20))
def test_reference_passes_under_any_global_seed(seed):
    """Does the reference get every capstone point whatever the global seed was before the checks?"""
    torch.manual_seed(seed)
    observers.forget_runs()
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
    (lies_about_its_layers, 0.90, ["does not compute its logits from its layers", "mul", "outside any layer"]),
    (_trained(lambda: nn.Sequential(nn.Linear(30, 32), Scale(), nn.ReLU(), nn.Linear(32, 1))), 0.90,
     ["layers the reserved rows cannot score", "Scale", "BatchNorm1d"]),
    (_trained(ClampReLU), 0.90, ["does not compute its logits from its layers", "clamp"]),
    (_trained(DropsInEval), 0.90, ["could not rebuild", "training=True"]),
    (_trained(lambda: nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())), 0.90,
     ["scores 0.6", "ends with a sigmoid"]),
    (one_epoch_tiny_lr, 0.90, ["reserved rows", "more epochs"]),
    (no_standardisation, 0.95, ["reserved rows", ">= 0.95"]),
])
def test_accuracy_explains_mistakes(wrong, minimum, fragments):
    """Does a leaking or weak model lose the accuracy points with a message saying why?"""
    _fails_with(capstone.check_reserved_accuracy, wrong, minimum=minimum, fragments=fragments)


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
    observers.forget_runs()
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


@pytest.mark.parametrize("check, n_answers", [
    (capstone.check_train_capstone, 1), (capstone.check_predict_raw, 1), (capstone.check_building_blocks, 4),
    (capstone.check_early_stopping, 1), (capstone.check_validation_threshold, 1),
], ids=lambda v: v.__name__ if callable(v) else "")
def test_not_implemented_passes_through_unchanged(check, n_answers):
    """Does an unsolved stub still raise NotImplementedError, not a check failure?"""
    with pytest.raises(NotImplementedError):
        check(*[unsolved] * n_answers)


# Observations and forged observations -----------------------------------------------------------
# A grading kernel only reports observations; a cheating kernel can report anything. These forge
# plausible observations (a correct run's, with one record changed) and expect the judge to reject them.

CHECKS = {
    "building_blocks": (capstone.check_building_blocks, (MLP, TabularDataset, train_one_epoch, predict)),
    "train_capstone": (capstone.check_train_capstone, (train_capstone,)),
    "reserved_accuracy": (capstone.check_reserved_accuracy, (train_capstone,)),
    "predict_raw": (capstone.check_predict_raw, (predict_raw,)),
    "checkpoint": (capstone.check_checkpoint, (MLP, save_checkpoint, load_checkpoint)),
}
# The JSON a grading kernel would send for a correct answer (a fresh copy on every call).
_observation = Observations(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_observation_is_strict_json_and_judged_as_a_pass(name):
    """Does each observer's output survive strict JSON, and does the judge pass a correct answer's observation?"""
    check, args = CHECKS[name]
    text = as_json(check.observe(*args))  # raises on NaN or anything JSON cannot hold
    assert len(text) < 1_000_000, f"the {name} observation is {len(text)} characters: too big to send per cell"
    kwargs = {"minimum": 0.95} if name == "reserved_accuracy" else {}
    check.judge(json.loads(text), **kwargs)


def _forge_mlp_logits(observed):
    case = observed["mlp"][1]
    case["logits"] = {"value": encoded(torch.zeros(16, 1))}


def _forge_mlp_weight(observed):
    linear = observed["mlp"][0]["linears"][0]
    linear["weight"] = encoded(torch.zeros(32, 10))


def _forge_dataset_target(observed):
    X, y = observers.dataset_input()
    features, target = torch.tensor(X[5], dtype=torch.float32), torch.tensor([y[5]], dtype=torch.float64)
    observed["dataset"]["item"] = {"value": encoded((features, target))}


def _forge_epoch_parameters(observed):
    model, _ = observers.epoch_case()
    observed["epoch"]["parameters"] = [encoded(p) for p in model.parameters()]  # as if nothing was learned


def _forge_strict_labels(observed):
    observed["labels"]["calls"][0] = {"value": encoded(torch.tensor([0, 0, 0, 0, 1, 1]))}


def _forge_mode_labels(observed):
    for call in observed["mode"]["calls"]:
        call["result"] = {"value": encoded(torch.ones(64, dtype=torch.long))}


def _forge_mode_spy(observed):
    for call in observed["mode"]["calls"]:
        call["forwards"] = [{**forward, "grad": True} for forward in call["forwards"]]


def _forge_gpu_run_on_cpu(observed):
    """What a GPU kernel reports when predict ignores device="cuda" (judged on any machine)."""
    labels = {"value": encoded(torch.zeros(10, dtype=torch.long))}
    forward = {"training": [False, False, False, False], "grad": False, "device": "cpu"}
    observed["mode"].update(cuda=True, device_calls=[{"result": labels, "forwards": [forward]}])


def test_gpu_records_of_a_correct_predict_are_accepted():
    """Is a GPU kernel's record of a predict that ran on the GPU and returned CPU labels judged a pass here?"""
    observed = _observation("building_blocks")
    forward = {"training": [False, False, False, False], "grad": False, "device": "cuda"}
    model = seeded(6, lambda: nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1)))
    X = torch.randn(10, 3, generator=torch.Generator().manual_seed(6))
    labels = {"value": encoded(inference.reference_labels(model, X, 0.5))}
    observed["mode"].update(cuda=True, device_calls=[{"result": labels, "forwards": [forward]}])
    capstone.judge_building_blocks(observed)


@pytest.mark.parametrize("forge, fragments", [
    (_forge_gpu_run_on_cpu, ['predict(model, X, device="cuda")', "did not run on the GPU"]),
    (_forge_mlp_logits, ["MLP(30)(X) does not compute Linear -> ReLU"]),
    (_forge_mlp_weight, ["MLP()(X) does not compute Linear -> ReLU"]),
    (_forge_dataset_target, ["target", "float32 tensor", "float64"]),
    (_forge_epoch_parameters, ["updated the parameters differently"]),
    (_forge_strict_labels, ["wrong labels", "use >="]),
    (_forge_mode_labels, ["wrong labels"]),
    (_forge_mode_spy, ["built a computation graph"]),
], ids=lambda v: v.__name__ if callable(v) else "")
def test_forged_building_blocks_are_rejected(forge, fragments):
    """Does the judge recompute every building block's result instead of trusting the kernel's records?"""
    observed = _observation("building_blocks")
    forge(observed)
    fails_with(capstone.judge_building_blocks, observed, *fragments)


def _standardised(part: str, observed: dict) -> torch.Tensor:
    mean = torch.tensor(capstone.splits()["X_train"].mean(axis=0))
    std = torch.tensor(capstone.splits()["X_train"].std(axis=0))
    return ((torch.tensor(capstone.splits()[part]) - mean) / std).float()


def _forge_all_data_mean(observed):
    mean = torch.tensor(capstone.splits()["X_all"].mean(axis=0), dtype=torch.float32)
    value = observed["result"]["value"]["__tuple__"]
    value[1] = encoded(mean)


def _forge_reserved_rows_seen(observed):
    seen = torch.cat([_standardised("X_train", observed), _standardised("X_reserved", observed)])
    observed["seen"], observed["seen_total"] = encoded(seen), len(seen)


def _forge_nothing_seen(observed):
    observed["seen"], observed["seen_total"] = encoded(torch.empty(0, 30)), 0


def _forge_too_many_rows(observed):
    rows = torch.randn(observers.MAX_SEEN_ROWS + 1, 30)
    observed["seen"], observed["seen_total"] = encoded(rows), len(rows)


def _forge_rows_withheld(observed):
    observed["seen_total"] = 50_000  # more rows than were sent: the judge cannot vouch for the rest


@pytest.mark.parametrize("forge, fragments", [
    (_forge_all_data_mean, ["all 569 rows"]),
    (_forge_reserved_rows_seen, ["rows of the reserved part"]),
    (_forge_nothing_seen, ["not trained"]),
    (_forge_rows_withheld, ["50000 different rows"]),
    (_forge_too_many_rows, ["could not read the rows"]),
], ids=lambda v: v.__name__ if callable(v) else "")
def test_forged_training_observation_is_rejected(forge, fragments):
    """Does the judge decide from the recorded statistics and rows itself which rows the model was trained on?"""
    observed = _observation("train_capstone")
    forge(observed)
    fails_with(capstone.judge_train_capstone, observed, *fragments)


def _linear_layers(observed):
    return [layer for layer in observed["layers"] if layer["kind"] == "Linear"]


def _forge_true_labels_as_logits(observed):
    """What a cheater's kernel would report for a perfect model: logits that give the true labels."""
    y = torch.tensor(capstone.splits()["y_reserved"], dtype=torch.float32)
    observed["logits"] = {"value": encoded(((2 * y - 1) * 5).unsqueeze(1))}


def _forge_weights_zeroed(observed):
    last = _linear_layers(observed)[-1]["parameters"]
    last["weight"] = encoded(torch.zeros(1, decode(last["weight"]).shape[1]))


def _forge_constant_model(observed):
    """Consistent layers and logits (every logit 5): the judge scores the rebuilt model, not the kernel's word."""
    last = _linear_layers(observed)[-1]["parameters"]
    last["weight"] = encoded(torch.zeros_like(decode(last["weight"])))
    last["bias"] = encoded(torch.full((1,), 5.0))
    observed["logits"] = {"value": encoded(torch.full((114, 1), 5.0))}


def _forge_unscorable_layer(observed):
    observed["layers"].insert(1, {"type": "Mystery", "kind": None, "parameters": {}})


def _forge_broken_chain(observed):
    del observed["layers"][0]


def _forge_relu_as_identity(observed):
    """Steps that claim no activation: they no longer explain the reported logits."""
    for step in observed["layers"]:
        if step["kind"] == "ReLU":
            step["kind"] = "Identity"


def _forge_bad_setting(observed):
    relu = next(step for step in observed["layers"] if step["kind"] == "ReLU")
    relu.update(kind="GELU", config={"approximate": ["not", "a", "string"]})


def _forge_too_many_steps(observed):
    observed["layers"] = observed["layers"] * (observers.MAX_STEPS // len(observed["layers"]) + 1)


@pytest.mark.parametrize("forge, fragments", [
    (_forge_true_labels_as_logits, ["does not compute its logits from its layers"]),
    (_forge_weights_zeroed, ["does not compute its logits from its layers"]),
    (_forge_constant_model, ["scores 0.6", "114 reserved rows"]),
    (_forge_unscorable_layer, ["layers the reserved rows cannot score", "Mystery"]),
    (_forge_broken_chain, ["not a chain of nn.Linear layers"]),
    (_forge_relu_as_identity, ["does not compute its logits from its layers", "Identity"]),
    (_forge_bad_setting, ["could not rebuild", "approximate"]),
    (_forge_too_many_steps, ["could not read the layers"]),
    (_forge_reserved_rows_seen, ["cannot score this model", "reserved part"]),
    (_forge_all_data_mean, ["the mean and std"]),
], ids=lambda v: v.__name__ if callable(v) else "")
def test_forged_reserved_observation_is_rejected(forge, fragments):
    """Does the judge score a model it rebuilt from the recorded parameters, and reject logits those
    parameters do not explain?"""
    observed = _observation("reserved_accuracy")
    forge(observed)
    fails_with(capstone.judge_reserved_accuracy, observed, *fragments, minimum=0.90)


def test_reported_predictions_of_an_untrained_model_cannot_buy_the_points():
    """An untrained model's observation with the true labels reported as its logits still scores nothing."""
    observed = json.loads(as_json(capstone.check_reserved_accuracy.observe(untrained)))
    _forge_true_labels_as_logits(observed)
    fails_with(capstone.judge_reserved_accuracy, observed, "does not compute its logits", minimum=0.90)


def _forge_unstandardised_labels(observed):
    model, mean, std, rows = observers.predict_raw_case()
    with torch.no_grad():
        labels = (model(torch.tensor(rows[0], dtype=torch.float32)).squeeze(1) >= 0).long()
    observed["calls"][0] = {"value": encoded(labels)}


def _forge_float_labels(observed):
    observed["calls"][1] = {"value": encoded(torch.ones(3))}


@pytest.mark.parametrize("forge, fragments", [
    (_forge_unstandardised_labels, ["wrong labels", "did not standardise"]),
    (_forge_float_labels, ["int64 labels of shape (3,)", "float32"]),
], ids=lambda v: v.__name__ if callable(v) else "")
def test_forged_predict_raw_is_rejected(forge, fragments):
    """Does the judge compute predict_raw's labels itself from the same model and rows?"""
    observed = _observation("predict_raw")
    forge(observed)
    fails_with(capstone.judge_predict_raw, observed, *fragments)


def _forge_loaded_fresh_weights(observed):
    """Same logits reported, but the loaded model holds other weights than the saved one."""
    observed["loaded_state"] = [[name, encoded(decode(value) + 0.5)] for name, value in observed["loaded_state"]]


def _forge_loaded_mean(observed):
    observed["load"]["value"]["__tuple__"][1] = encoded(torch.zeros(30))


def _forge_pickled_file(observed):
    observed["weights_only"] = "UnpicklingError"


@pytest.mark.parametrize("forge, fragments", [
    (_forge_loaded_fresh_weights, ["different logits"]),
    (_forge_loaded_mean, ["different mean"]),
    (_forge_pickled_file, ["weights_only=True", "UnpicklingError"]),
], ids=lambda v: v.__name__ if callable(v) else "")
def test_forged_checkpoint_is_rejected(forge, fragments):
    """Does the judge compare the loaded state and statistics with the saved ones itself?"""
    observed = _observation("checkpoint")
    forge(observed)
    fails_with(capstone.judge_checkpoint, observed, *fragments)


# Part F: early stopping and a threshold chosen on validation ---------------------------------------

def _standardise(X, mean, std):
    return (torch.tensor(X, dtype=torch.float32) - mean) / std


def _val_loss(model, X_val, y_val, batch_size=None):
    """The mean BCEWithLogitsLoss per sample on the validation rows (in batches when given), eval mode, no graph."""
    model.eval()
    y = torch.tensor(y_val, dtype=torch.float32)[:, None]
    with torch.no_grad():
        if batch_size is None:
            return nn.BCEWithLogitsLoss()(model(X_val), y).item()
        total = 0.0
        for start in range(0, len(X_val), batch_size):
            X, t = X_val[start:start + batch_size], y[start:start + batch_size]
            total += nn.BCEWithLogitsLoss(reduction="sum")(model(X), t).item()
        return total / len(X_val)


def fit_capstone(X_train, y_train, X_val, y_val, max_epochs=100, patience=5, *, compare=None, reset=True,
                 extra=0, restore=True, val_rows=None, batch_size=None, copy_state=True):
    """The reference (keyword-only arguments make the mistakes the tests below need)."""
    import copy
    torch.manual_seed(0)
    mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
    model = MLP(30, (32,))
    loader = DataLoader(TabularDataset(_standardise(X_train, mean, std).numpy(), y_train), batch_size=32,
                        shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    X_v, y_v = (X_val, y_val) if val_rows is None else val_rows
    X_v = _standardise(X_v, mean, std)
    history, best, best_state, waited = [], float("inf"), None, 0
    for _ in range(max_epochs):
        train_loss = train_one_epoch(model, loader, nn.BCEWithLogitsLoss(), optimizer)
        val_loss = _val_loss(model, X_v, y_v, batch_size)
        history.append((train_loss, val_loss))
        if (compare or (lambda a, b: a < b))(val_loss, best):
            best, waited = val_loss, 0 if reset else waited
            best_state = copy.deepcopy(model.state_dict()) if copy_state else model.state_dict()
        else:
            waited += 1
            if waited >= patience + extra:
                break
    if restore:
        model.load_state_dict(best_state)
    return model, mean, std, history


def fit_capstone_batched_float64(X_train, y_train, X_val, y_val, max_epochs=100, patience=5):
    """Correct too: torch statistics, a validation loader of 16 rows, shuffled, with the mean of the batches."""
    import copy
    torch.manual_seed(3)
    X = torch.tensor(X_train, dtype=torch.float32)
    mean, std = X.mean(0), X.std(0)
    model = ListMLP(30, (16,))
    loader = DataLoader(TabularDataset(((X - mean) / std).numpy(), y_train), batch_size=64, shuffle=True)
    val = DataLoader(TabularDataset(_standardise(X_val, mean, std).numpy(), y_val), batch_size=16, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    history, best, best_state, waited = [], math_inf(), None, 0
    for _ in range(max_epochs):
        train_loss = train_one_epoch_zero_after(model, loader, nn.BCEWithLogitsLoss(), optimizer)
        model.eval()
        with torch.no_grad():
            losses = [nn.BCEWithLogitsLoss()(model(Xb), yb).item() for Xb, yb in val]
        predict(model, _standardise(X_train, mean, std))  # watching the training accuracy is fine
        history.append((train_loss, sum(losses) / len(losses)))
        if history[-1][1] < best:
            best, best_state, waited = history[-1][1], copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited == patience:
                break
    model.load_state_dict(best_state)
    return model, mean, std, history


def math_inf():
    return float("inf")


def choose_capstone_threshold(model, mean, std, X_val, y_val, cost_fn=10.0, cost_fp=1.0):
    model.eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(_standardise(X_val, mean, std))).squeeze(1)
    y = torch.as_tensor(y_val)
    best_t, best = 1.0, float("inf")
    for t in sorted({0.0, 1.0, *probs.tolist()}):
        y_hat = probs >= t
        cost = cost_fn * int((~y_hat & (y == 1)).sum()) + cost_fp * int((y_hat & (y == 0)).sum())
        if cost < best:
            best_t, best = t, cost
    return float(best_t)


def choose_capstone_threshold_numpy(model, mean, std, X_val, y_val, cost_fn=10.0, cost_fp=1.0):
    """Correct too: NumPy probabilities in float64, the largest t of the lowest cost."""
    X = (X_val - mean.double().numpy()) / std.double().numpy()
    with torch.no_grad():
        probs = torch.sigmoid(model(torch.from_numpy(X).float())).double().numpy().ravel()
    costs = {t: cost_fn * ((probs < t) & (y_val == 1)).sum() + cost_fp * ((probs >= t) & (y_val == 0)).sum()
             for t in [*probs, 1.0]}
    lowest = min(costs.values())
    return float(max(t for t, c in costs.items() if c == lowest))


@pytest.mark.parametrize("right", [fit_capstone, fit_capstone_batched_float64], ids=lambda f: f.__name__)
def test_early_stopping_accepts_correct_variants(right):
    """Is an early-stopping fit with one validation batch or several (shuffled, either mean) accepted?"""
    capstone.check_early_stopping(right)


def _variant(**mistake):
    def wrong(X_train, y_train, X_val, y_val, max_epochs=100, patience=5):
        return fit_capstone(X_train, y_train, X_val, y_val, max_epochs, patience, **mistake)
    return wrong


def _fixed_patience(X_train, y_train, X_val, y_val, max_epochs=100, patience=5):
    return fit_capstone(X_train, y_train, X_val, y_val, max_epochs, 5)


def _no_stopping(X_train, y_train, X_val, y_val, max_epochs=100, patience=5):
    return fit_capstone(X_train, y_train, X_val, y_val, max_epochs, patience=10 ** 6)


def _train_loss_as_val(X_train, y_train, X_val, y_val, max_epochs=100, patience=5):
    model, mean, std, history = fit_capstone(X_train, y_train, X_val, y_val, max_epochs, patience)
    return model, mean, std, [(a, a) for a, _ in history]


def _trains_on_val(X_train, y_train, X_val, y_val, max_epochs=100, patience=5):
    return fit_capstone(np.concatenate([X_train, X_val]), np.concatenate([y_train, y_val]), X_val, y_val,
                        max_epochs, patience)


def _returns_three(X_train, y_train, X_val, y_val, max_epochs=100, patience=5):
    return fit_capstone(X_train, y_train, X_val, y_val, max_epochs, patience)[:3]


@pytest.mark.parametrize("wrong, fragments", [
    (_no_stopping, ["wrong number of epochs", "ran every epoch"]),
    (_fixed_patience, ["wrong number of epochs", "patience you are given"]),
    (_variant(extra=1), ["wrong number of epochs", "not one later"]),
    (_variant(restore=False), ["does not hold the weights of its best epoch", "load_state_dict"]),
    (_variant(copy_state=False), ["does not hold the weights of its best epoch", "deepcopy"]),
    (_variant(val_rows=(capstone.splits()["X_train"], capstone.splits()["y_train"])),
     ["never ran the model on the whole validation part"]),
    (_train_loss_as_val, ["validation loss of epoch 1 is not the loss of the model on the validation rows"]),
    (_trains_on_val, ["training and validation parts together"]),
    (_returns_three, ["(model, mean, std, history)"]),
], ids=lambda v: getattr(v, "__name__", "") if callable(v) else "")
def test_early_stopping_explains_mistakes(wrong, fragments):
    """Does each wrong fit_capstone fail with a message naming its mistake?"""
    _fails_with(capstone.check_early_stopping, wrong, fragments=fragments)


def test_threshold_accepts_correct_variants():
    capstone.check_validation_threshold(choose_capstone_threshold)
    capstone.check_validation_threshold(choose_capstone_threshold_numpy)


def _on_training_rows(model, mean, std, X_val, y_val, cost_fn=10.0, cost_fp=1.0):
    parts = capstone.splits()
    return choose_capstone_threshold(model, mean, std, parts["X_train"], parts["y_train"], cost_fn, cost_fp)


def _on_reserved_rows(model, mean, std, X_val, y_val, cost_fn=10.0, cost_fp=1.0):
    X, y = load_breast_cancer(return_X_y=True)
    return choose_capstone_threshold(model, mean, std, X, y, cost_fn, cost_fp)


@pytest.mark.parametrize("wrong, fragments", [
    (lambda model, mean, std, X_val, y_val, cost_fn=10.0, cost_fp=1.0: 0.5, ["not the lowest", "default threshold"]),
    (_on_training_rows, ["not the lowest", "training rows"]),
    (_on_reserved_rows, ["rows of the reserved part"]),
    (lambda model, mean, std, X_val, y_val, cost_fn=10.0, cost_fp=1.0: torch.tensor(0.5), ["not a Python float"]),
    (lambda model, mean, std, X_val, y_val, cost_fn=10.0, cost_fp=1.0:
     choose_capstone_threshold(model, mean, std, X_val, y_val, cost_fp, cost_fn), ["not the lowest", "swapped"]),
], ids=["default_0.5", "training_rows", "reserved_rows", "tensor", "costs_swapped"])
def test_threshold_explains_mistakes(wrong, fragments):
    _fails_with(capstone.check_validation_threshold, wrong, fragments=fragments)


PART_F = {"early_stopping": (capstone.check_early_stopping, (fit_capstone,)),
          "validation_threshold": (capstone.check_validation_threshold, (choose_capstone_threshold,))}
_part_f_observation = Observations(PART_F)


@pytest.mark.parametrize("name", sorted(PART_F))
def test_part_f_observation_is_strict_json_and_judged_as_a_pass(name):
    check, _ = PART_F[name]
    text = as_json(_part_f_observation(name))
    assert len(text) < 2_000_000, f"the {name} observation is {len(text)} characters: too big to send per cell"
    check.judge(json.loads(text))


def _forge_history_cut(observed):
    """One epoch left out of the history (as if the loop had stopped a patience earlier)."""
    observed["parts"][0]["value"]["__list__"].pop() if "__list__" in observed["parts"][0]["value"] else \
        observed["parts"][0]["value"].pop()


def _forge_first_layer(observed):
    """The returned model's first layer replaced by zeros: its recorded logits no longer follow from its layers."""
    observed["layers"][0]["parameters"]["weight"] = encoded(torch.zeros(32, 30))


def _forge_evaluation_outputs(observed):
    """Every recorded validation pass made to look like the returned model's (to pass the best-weights test)."""
    for call in observed["evaluations"]:
        call["out"] = encoded(torch.zeros_like(decode(call["out"])))


@pytest.mark.parametrize("forge, fragments", [
    (_forge_history_cut, ["wrong number of epochs"]),
    (_forge_first_layer, ["does not compute its logits from its layers"]),
    (_forge_evaluation_outputs, ["validation loss of epoch 1 is not the loss"]),
], ids=lambda v: v.__name__ if callable(v) else "")
def test_forged_early_stopping_is_rejected(forge, fragments):
    observed = _part_f_observation("early_stopping")
    forge(observed)
    fails_with(capstone.judge_early_stopping, observed, *fragments)


def test_forged_threshold_is_rejected():
    """Does the judge compute the validation cost of the returned threshold itself, from its own model?"""
    observed = _part_f_observation("validation_threshold")
    observed["result"] = {"value": 0.5}
    fails_with(capstone.judge_validation_threshold, observed, "not the lowest")


@pytest.mark.parametrize("seed", range(20))
def test_part_f_reference_passes_under_any_global_seed(seed):
    """Does the reference get Part F's points whatever the global seed was before the checks?"""
    torch.manual_seed(seed)
    capstone.check_early_stopping(fit_capstone)
    capstone.check_validation_threshold(choose_capstone_threshold)
