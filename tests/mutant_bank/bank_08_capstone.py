from mutant_bank import Correct, Mutant

ASSIGNMENT = "08_capstone"


def _train(stats: str, fit: str, head: str = "") -> str:
    """A train_capstone whose statistics and training rows come from the given lines."""
    return f"""
def train_capstone(X_train, y_train):
    torch.manual_seed(0)
{head}{stats}
{fit}
    model = MLP(in_features=30, hidden=(32,)).to(device)
    loader = DataLoader(TabularDataset(X_fit, y_fit), batch_size=32, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(20):
        train_one_epoch(model, loader, nn.BCEWithLogitsLoss(), optimizer, device)
    return model, torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
"""


TRAIN_STATS = "    mean, std = X_train.mean(axis=0), X_train.std(axis=0)"
STANDARDISED_TRAIN = "    X_fit, y_fit = (X_train - mean) / std, y_train"

# Loads all 569 rows inside train_capstone; `{step}` runs once per epoch on `X_all` (standardised), `y_all`.
_ALL_ROWS = """
def train_capstone(X_train, y_train):
    torch.manual_seed(0)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    X_all, y_all = load_breast_cancer(return_X_y=True)
    X_all = torch.tensor((X_all - mean) / std, dtype=torch.float32).to(device)
    y_all = torch.tensor(y_all, dtype=torch.float32).unsqueeze(1).to(device)
    model = MLP(in_features=30, hidden=(32,)).to(device)
    loader = DataLoader(TabularDataset((X_train - mean) / std, y_train), batch_size=32, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(20):
{step}
    return model, torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
"""

MUTANTS = [
    Mutant(
        name="trained_on_reserved_rows_in_eval_mode",  # the detector once looked at training mode only
        cells={"train_capstone": _ALL_ROWS.format(step=(
            "        train_one_epoch(model, loader, nn.BCEWithLogitsLoss(), optimizer, device)\n"
            "        model.eval()\n        for _ in range(5):\n            optimizer.zero_grad()\n"
            "            nn.BCEWithLogitsLoss()(model(X_all), y_all).backward()\n            optimizer.step()"))},
        loses={
            "test_train_capstone": "rows of the reserved part",
            "test_reserved_accuracy_090": "cannot score this model",
            "test_reserved_accuracy_095": "cannot score this model",
        },
    ),
    Mutant(
        name="peeks_at_reserved_rows_to_choose_an_epoch",
        cells={"train_capstone": _ALL_ROWS.format(step=(
            "        train_one_epoch(model, loader, nn.BCEWithLogitsLoss(), optimizer, device)\n"
            "        model.eval()\n        with torch.no_grad():\n"
            "            accuracy = ((model(X_all) > 0).float() == y_all).float().mean().item()"))},
        loses={
            "test_train_capstone": "rows of the reserved part",
            "test_reserved_accuracy_090": "cannot score this model",
            "test_reserved_accuracy_095": "cannot score this model",
        },
    ),
    Mutant(
        name="trained_on_reserved_rows",
        cells={"train_capstone": _train(
            TRAIN_STATS,
            "    X_all, y_all = load_breast_cancer(return_X_y=True)\n"
            "    X_fit, y_fit = (X_all - mean) / std, y_all",
        )},
        loses={
            "test_train_capstone": "rows of the reserved part",
            "test_reserved_accuracy_090": "cannot score this model",
            "test_reserved_accuracy_095": "cannot score this model",
        },
    ),
    Mutant(
        name="scaler_fitted_on_all_data",
        cells={"train_capstone": _train(
            "    X_all = load_breast_cancer().data\n    mean, std = X_all.mean(axis=0), X_all.std(axis=0)",
            STANDARDISED_TRAIN,
        )},
        loses={
            "test_train_capstone": "mean should be X_train's column means",
            "test_reserved_accuracy_090": "reserved rows included",
            "test_reserved_accuracy_095": "reserved rows included",
        },
    ),
    Mutant(
        name="trained_on_validation_rows_too",
        cells={"train_capstone": _train(
            TRAIN_STATS,
            "    X_fit = (np.concatenate([X_train, X_val]) - mean) / std\n"
            "    y_fit = np.concatenate([y_train, y_val])",
        )},
        loses={"test_train_capstone": "rows of the validation part"},
    ),
    Mutant(
        name="no_standardisation",
        cells={"train_capstone": _train(
            "    mean, std = np.zeros(30), np.ones(30)", "    X_fit, y_fit = X_train, y_train",
        )},
        loses={"test_train_capstone": "mean should be X_train's column means"},
    ),
    Mutant(
        name="statistics_computed_but_not_applied",
        cells={"train_capstone": _train(TRAIN_STATS, "    X_fit, y_fit = X_train, y_train")},
        loses={"test_train_capstone": "not rows of X_train standardised"},
    ),
    Mutant(
        name="model_never_trained",
        cells={"train_capstone": """
def train_capstone(X_train, y_train):
    torch.manual_seed(0)
    mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
    return MLP(in_features=30, hidden=(32,)), mean, std
"""},
        loses={
            "test_train_capstone": "validation accuracy is only",
            "test_reserved_accuracy_090": "validation accuracy is only",
            "test_reserved_accuracy_095": "validation accuracy is only",
        },
    ),
    Mutant(
        name="predict_always_one",
        cells={"predict": """
def predict(model, X, threshold=0.5, device="cpu"):
    return torch.ones(len(X), dtype=torch.long)
"""},
        loses={
            "test_building_blocks": "every label is 1",
            "test_train_capstone": "validation accuracy is only",
            "test_reserved_accuracy_090": "validation accuracy is only",
        },
    ),
    Mutant(
        name="predict_strict_greater",
        cells={"predict": """
def predict(model, X, threshold=0.5, device="cpu"):
    model.to(device).eval()
    with torch.no_grad():
        return (torch.sigmoid(model(X.to(device))).squeeze(1) > threshold).long().cpu()
"""},
        loses={"test_building_blocks": "use >="},
    ),
    Mutant(
        name="mlp_plain_python_list",
        cells={"mlp": """
class MLP(nn.Module):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        self.layers = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)
"""},
        loses={"test_building_blocks": "empty parameter list"},
    ),
    Mutant(
        name="mlp_sigmoid_output",
        cells={"mlp": """
class MLP(nn.Module):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__()
        sizes, layers = [in_features, *hidden], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], out_features), nn.Sigmoid())

    def forward(self, x):
        return self.net(x)
"""},
        loses={"test_building_blocks": "nothing after the last one"},
    ),
    Mutant(
        name="dataset_len_is_feature_count",
        cells={"tabular_dataset": """
class TabularDataset(Dataset):
    def __init__(self, X, y):
        self.X = torch.tensor(X, dtype=torch.float32)
        self.y = torch.tensor(y, dtype=torch.float32).reshape(-1, 1)

    def __len__(self):
        return self.X.shape[1]

    def __getitem__(self, i):
        return self.X[i], self.y[i]
"""},
        loses={"test_building_blocks": "len(dataset) should be 341"},
    ),
    Mutant(
        name="train_one_epoch_without_zero_grad",
        cells={"train_one_epoch": """
def train_one_epoch(model, loader, criterion, optimizer, device="cpu"):
    model.train()
    losses = []
    for X, y in loader:
        loss = criterion(model(X.to(device)), y.to(device))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
"""},
        loses={"test_building_blocks": "zero_grad"},
    ),
    Mutant(
        name="predict_raw_batch_statistics",
        cells={"predict_raw": """
def predict_raw(model, mean, std, X_raw):
    X = torch.tensor(X_raw, dtype=torch.float32)
    return predict(model, (X - X.mean(dim=0)) / X.std(dim=0))
"""},
        loses={"test_predict_raw": "its own mean and std"},
    ),
    Mutant(
        name="predict_raw_not_standardised",
        cells={"predict_raw": """
def predict_raw(model, mean, std, X_raw):
    return predict(model, torch.tensor(X_raw, dtype=torch.float32))
"""},
        loses={"test_predict_raw": "expected [1, 0]"},
    ),
    Mutant(
        name="checkpoint_pickles_whole_model",
        cells={"checkpoint": """
def save_checkpoint(model, mean, std, path):
    torch.save({"model": model, "mean": mean, "std": std}, path)


def load_checkpoint(path, model):
    checkpoint = torch.load(path, weights_only=False)
    return checkpoint["model"], checkpoint["mean"], checkpoint["std"]
"""},
        loses={"test_checkpoint": "weights_only=True"},
    ),
    Mutant(
        name="checkpoint_load_skips_load_state_dict",
        cells={"checkpoint": """
def save_checkpoint(model, mean, std, path):
    torch.save({"state_dict": model.state_dict(), "mean": mean, "std": std}, path)


def load_checkpoint(path, model):
    checkpoint = torch.load(path)
    return model, checkpoint["mean"], checkpoint["std"]
"""},
        loses={"test_checkpoint": "use load_state_dict"},
    ),
    # A layer the grader cannot rebuild: Part E cannot score the model (Part E lists the layers it can).
    Mutant(
        name="unscorable_home_made_layer",
        cells={"train_capstone": """
class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.s = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * self.s


def train_capstone(X_train, y_train):
    torch.manual_seed(0)
    mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
    loader = DataLoader(TabularDataset((X_train - mean.numpy()) / std.numpy(), y_train), batch_size=32, shuffle=True)
    model = nn.Sequential(nn.Linear(30, 32), Scale(), nn.ReLU(), nn.Linear(32, 1)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(20):
        train_one_epoch(model, loader, nn.BCEWithLogitsLoss(), optimizer, device)
    return model, mean, std
"""},
        loses={
            "test_reserved_accuracy_090": "layers the reserved rows cannot score",
            "test_reserved_accuracy_095": "layers the reserved rows cannot score",
        },
    ),
]

CORRECT = [
    # Part E invites a better model: standard layers the grader can rebuild are scored like an MLP.
    Correct(
        name="batch_norm_gelu_dropout_sequential",
        cells={"train_capstone": """
def train_capstone(X_train, y_train):
    torch.manual_seed(0)
    mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
    loader = DataLoader(TabularDataset((X_train - mean.numpy()) / std.numpy(), y_train), batch_size=32, shuffle=True)
    model = nn.Sequential(nn.Linear(30, 32), nn.BatchNorm1d(32), nn.GELU(), nn.Dropout(0.1),
                          nn.Linear(32, 1)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(20):
        train_one_epoch(model, loader, nn.BCEWithLogitsLoss(), optimizer, device)
    return model, mean, std
"""}),
    Correct(
        name="layer_norm_functional_tanh_leaky_relu_per_sample_epoch_loss",
        cells={
            "train_one_epoch": """
def train_one_epoch(model, loader, criterion, optimizer, device="cpu"):
    model.train()
    total, n = 0.0, 0
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(X)
        n += len(X)
    return total / n
""",
            "train_capstone": """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden, self.norm, self.out = nn.Linear(30, 32), nn.LayerNorm(32), nn.Linear(32, 1)

    def forward(self, x):
        return self.out(nn.functional.leaky_relu(torch.tanh(self.norm(self.hidden(x))), 0.1))


def train_capstone(X_train, y_train):
    torch.manual_seed(0)
    X = torch.tensor(X_train, dtype=torch.float32)
    mean, std = X.mean(dim=0), X.std(dim=0)
    loader = DataLoader(TabularDataset(((X - mean) / std).numpy(), y_train), batch_size=32, shuffle=True)
    model = Net().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(20):
        train_one_epoch(model, loader, nn.BCEWithLogitsLoss(), optimizer, device)
    return model, mean, std
""",
        },
    ),
    Correct(
        name="modulelist_lazy_dataset_zero_grad_after_step",
        cells={
            "mlp": """
class MLP(nn.Module):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = nn.functional.relu(layer(x))
        return self.layers[-1](x)
""",
            "tabular_dataset": """
class TabularDataset(Dataset):
    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return self.X.shape[0]

    def __getitem__(self, i):
        return torch.tensor(self.X[i], dtype=torch.float32), torch.tensor([self.y[i]], dtype=torch.float32)
""",
            "train_one_epoch": """
def train_one_epoch(model, loader, criterion, optimizer, device="cpu"):
    model.train()
    total, count = 0.0, 0
    for X, y in loader:
        loss = criterion(model(X.to(device)), y.to(device))
        loss.backward()
        optimizer.step()
        model.zero_grad()
        total, count = total + loss.item(), count + 1
    return total / count
""",
        },
    ),
    Correct(
        name="inference_mode_logit_threshold_torch_statistics",
        cells={
            "predict": """
def predict(model, X, threshold=0.5, device="cpu"):
    model.to(device).eval()
    with torch.inference_mode():
        logits = model(X.to(device)).squeeze(1)
    return (logits >= torch.logit(torch.tensor(threshold))).long().cpu()
""",
            "train_capstone": """
def train_capstone(X_train, y_train):
    torch.manual_seed(0)
    X = torch.tensor(X_train, dtype=torch.float32)
    mean, std = X.mean(dim=0), X.std(dim=0)
    loader = DataLoader(TabularDataset(((X - mean) / std).numpy(), y_train), batch_size=50, shuffle=True)
    model = MLP(30, (16, 8)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    X_val_std = (torch.tensor(X_val, dtype=torch.float32) - mean) / std
    for epoch in range(25):
        loss = train_one_epoch(model, loader, nn.BCEWithLogitsLoss(), optimizer, device)
        val_accuracy = (predict(model, X_val_std, device=device).numpy() == y_val).mean()
    print(f"last epoch: loss {loss:.3f}, validation accuracy {val_accuracy:.3f}")
    return model, mean, std
""",
        },
    ),
    Correct(
        name="full_batch_loop_float64_predict_raw_flat_checkpoint",
        cells={
            "train_capstone": """
def train_capstone(X_train, y_train):
    torch.manual_seed(0)
    mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
    X = (torch.tensor(X_train, dtype=torch.float32) - mean) / std
    y = torch.tensor(y_train, dtype=torch.float32).unsqueeze(1)
    model = MLP(30, (30,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    criterion = nn.BCEWithLogitsLoss()
    model.train()
    for step in range(150):
        optimizer.zero_grad()
        criterion(model(X), y).backward()
        optimizer.step()
    return model, mean, std
""",
            "predict_raw": """
def predict_raw(model, mean, std, X_raw):
    X = (X_raw - mean.double().numpy()) / std.double().numpy()
    return predict(model, torch.from_numpy(X).float())
""",
            "checkpoint": """
def save_checkpoint(model, mean, std, path):
    torch.save({**model.state_dict(), "_mean": mean, "_std": std}, path)


def load_checkpoint(path, model):
    state = torch.load(path)
    mean, std = state.pop("_mean"), state.pop("_std")
    model.load_state_dict(state)
    return model, mean, std
""",
        },
    ),
]


# Part F: fit_capstone (early stopping), plot_learning_curve, choose_capstone_threshold --------------

def _fit(improved="val_loss < best_loss", stop="waited >= patience", keep="copy.deepcopy(model.state_dict())",
         restore="    model.load_state_dict(best_state)", val="criterion(model(X_v), y_v).item()",
         X_fit="X_train", y_fit="y_train", head="") -> str:
    """A fit_capstone that differs from the reference in the given pieces."""
    return f"""
def fit_capstone(X_train, y_train, X_val, y_val, max_epochs=100, patience=5):
    torch.manual_seed(0){head}
    mean = torch.tensor(X_train.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(X_train.std(axis=0), dtype=torch.float32)
    loader = DataLoader(TabularDataset(({X_fit} - mean.numpy()) / std.numpy(), {y_fit}), batch_size=32, shuffle=True)
    X_v = ((torch.tensor(X_val, dtype=torch.float32) - mean) / std).to(device)
    y_v = torch.tensor(y_val, dtype=torch.float32).reshape(-1, 1).to(device)
    model = MLP(in_features=30, hidden=(32,)).to(device)
    criterion = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    history, best_loss, best_state, waited = [], float("inf"), None, 0
    for _ in range(max_epochs):
        train_loss = train_one_epoch(model, loader, criterion, optimizer, device)
        model.eval()
        with torch.no_grad():
            val_loss = {val}
        history.append((train_loss, val_loss))
        if {improved}:
            best_loss, best_state, waited = val_loss, {keep}, 0
        else:
            waited += 1
            if {stop}:
                break
{restore}
    return model, mean, std, history
"""


def _threshold(rows: str, rule: str = "") -> str:
    """A choose_capstone_threshold that computes probabilities on `rows` (X, y) and picks t by `rule`."""
    return f"""
def choose_capstone_threshold(model, mean, std, X_val, y_val, cost_fn=10.0, cost_fp=1.0):
    X_rows, y_rows = {rows}
    X = (torch.tensor(X_rows, dtype=torch.float32) - mean.cpu()) / std.cpu()
    model.eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(X.to(next(model.parameters()).device))).squeeze(1).cpu()
    y = torch.as_tensor(y_rows)
    best_t, best_cost = 1.0, float("inf")
    for t in sorted({{0.0, 1.0, *probs.tolist()}}):
        y_hat = probs >= t
        cost = cost_fn * int((~y_hat & (y == 1)).sum()) + cost_fp * int((y_hat & (y == 0)).sum())
        if cost < best_cost:
            best_t, best_cost = t, cost
{rule}    return float(best_t)
"""


MUTANTS += [
    Mutant(
        name="no_early_stopping",  # trains every epoch, keeps the last model
        cells={"fit_capstone": _fit(stop="False")},
        loses={"test_early_stopping": "ran the wrong number of epochs"},
    ),
    Mutant(
        name="patience_fixed_at_five",
        cells={"fit_capstone": _fit(stop="waited >= 5")},
        loses={"test_early_stopping": "patience you are given"},
    ),
    Mutant(
        name="stops_one_epoch_late",
        cells={"fit_capstone": _fit(stop="waited > patience")},
        loses={"test_early_stopping": "epochs in a row"},
    ),
    Mutant(
        name="best_weights_not_restored",
        cells={"fit_capstone": _fit(restore="")},
        loses={"test_early_stopping": "best epoch"},
    ),
    Mutant(
        name="best_state_shares_the_live_tensors",
        cells={"fit_capstone": _fit(keep="model.state_dict()")},
        loses={"test_early_stopping": "best epoch"},
    ),
    Mutant(
        name="validation_loss_is_the_training_loss",
        cells={"fit_capstone": _fit(val="(criterion(model(X_v), y_v).item(), train_loss)[1]")},
        loses={"test_early_stopping": "is not the loss of the model on the validation rows"},
    ),
    Mutant(
        name="early_stopping_trains_on_validation_rows",
        cells={"fit_capstone": _fit(X_fit="np.concatenate([X_train, X_val])",
                                    y_fit="np.concatenate([y_train, y_val])")},
        loses={"test_early_stopping": "rows of the validation part"},
    ),
    Mutant(
        name="learning_curve_without_the_validation_loss",
        cells={"plot_learning_curve": """
def plot_learning_curve(history):
    fig, ax = plt.subplots()
    ax.plot([train for train, _ in history], label="training loss")
    ax.legend()
    return fig
"""},
        loses={"test_early_stopping": "no line of the validation loss"},
    ),
    Mutant(
        name="threshold_chosen_on_training_rows",
        cells={"choose_capstone_threshold": _threshold("X_train, y_train")},
        loses={"test_validation_threshold": "choose t on X_val"},  # the hidden test names the training rows
    ),
    Mutant(
        name="threshold_chosen_on_reserved_rows",
        cells={"choose_capstone_threshold": _threshold("load_breast_cancer(return_X_y=True)")},
        loses={"test_validation_threshold": "choose t on X_val"},  # the hidden test names the reserved rows
    ),
    Mutant(
        name="threshold_ignored",  # the costs are computed, and the default 0.5 returned anyway
        cells={"choose_capstone_threshold": _threshold("X_val, y_val", "    best_t = 0.5\n")},
        loses={"test_validation_threshold": "default threshold"},
    ),
]

CORRECT += [
    Correct(
        name="early_stopping_with_a_shuffled_validation_loader_and_clones",
        cells={
            "fit_capstone": """
def fit_capstone(X_train, y_train, X_val, y_val, max_epochs=100, patience=5):
    torch.manual_seed(1)
    X = torch.tensor(X_train, dtype=torch.float32)
    mean, std = X.mean(dim=0), X.std(dim=0)
    loader = DataLoader(TabularDataset(((X - mean) / std).numpy(), y_train), batch_size=64, shuffle=True)
    val_loader = DataLoader(TabularDataset(((torch.tensor(X_val, dtype=torch.float32) - mean) / std).numpy(), y_val),
                            batch_size=16, shuffle=True)
    model = nn.Sequential(nn.Linear(30, 16), nn.Tanh(), nn.Linear(16, 1)).to(device)
    criterion = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    history, best, best_state, bad_epochs = [], None, None, 0
    for epoch in range(max_epochs):
        train_loss = train_one_epoch(model, loader, criterion, optimizer, device)
        model.eval()
        total = 0.0
        with torch.inference_mode():
            for X_b, y_b in val_loader:
                total += criterion(model(X_b.to(device)), y_b.to(device)).item() * len(X_b)
        val_loss = total / len(val_loader.dataset)
        history.append((train_loss, val_loss))
        if best is None or val_loss < best:
            best, bad_epochs = val_loss, 0
            best_state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        else:
            bad_epochs += 1
        if bad_epochs == patience:
            break
    model.load_state_dict(best_state)
    return model, mean, std, history
""",
            "plot_learning_curve": """
def plot_learning_curve(history):
    train, val = zip(*history)
    fig = plt.figure()
    plt.plot(np.arange(1, len(train) + 1), val, "o-", label="validation")
    plt.plot(np.arange(1, len(train) + 1), train, label="training")
    plt.axvline(int(np.argmin(val)) + 1, color="grey", linestyle=":")
    plt.xlabel("epoch")
    plt.legend()
    return fig
""",
            "choose_capstone_threshold": """
def choose_capstone_threshold(model, mean, std, X_val, y_val, cost_fn=10.0, cost_fp=1.0):
    X = (X_val - mean.double().numpy()) / std.double().numpy()
    model.eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(torch.from_numpy(X).float().to(next(model.parameters()).device))).cpu()
    probs = probs.double().numpy().ravel()
    candidates = np.append(np.unique(probs), 1.0)
    costs = [cost_fn * np.sum((probs < t) & (y_val == 1)) + cost_fp * np.sum((probs >= t) & (y_val == 0))
             for t in candidates]
    return float(candidates[len(costs) - 1 - int(np.argmin(costs[::-1]))])  # the largest t of the lowest cost
""",
        },
    ),
]
