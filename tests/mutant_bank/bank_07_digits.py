from mutant_bank import Correct, Mutant

ASSIGNMENT = "07_digits"


def _cnn(init: str, forward: str) -> str:
    return ("class SmallCNN(nn.Module):\n    def __init__(self, num_classes=10):\n        super().__init__()\n"
            + init + "\n    def forward(self, x):\n" + forward)


def _predict(body: str) -> str:
    return 'def predict_classes(model, X, device="cpu"):\n' + body


def _confusion(body: str) -> str:
    return "def confusion_matrix(y_true, y_pred, num_classes):\n" + body


def _counting(first_line: str = "matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)",
              entry: str = "matrix[i, j]") -> str:
    """A confusion_matrix that counts in a loop, with its own matrix and entry."""
    return _confusion(f"""
    {first_line}
    for i, j in zip(y_true.tolist(), y_pred.tolist()):
        {entry} += 1
    return matrix
""")


def _train(loss: str = "criterion(model(X), y)", data: str = "X_train, y_train", model: str = "SmallCNN()") -> str:
    return f"""def train_digits(X_train, y_train):
    torch.manual_seed(0)
    model = {model}.to(device)
    loader = DataLoader(TensorDataset({data}), batch_size=64, shuffle=True)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(10):
        model.train()
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            optimizer.zero_grad()
            loss = {loss}
            loss.backward()
            optimizer.step()
    return model
"""


_BLOCKS = """        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))"""

MUTANTS = [
    Mutant(
        name="softmax_over_the_batch",
        cells={"predict_classes": _predict("""
    model.to(device).eval()
    with torch.no_grad():
        probs = torch.softmax(model(X.to(device)), dim=0)
    return probs.argmax(dim=1).cpu()
""")},
        loses={"test_predict_classes": "expected [0, 1, 1, 0]"},
    ),
    Mutant(
        name="argmax_over_the_batch",
        cells={"predict_classes": _predict("""
    model.to(device).eval()
    with torch.no_grad():
        return model(X.to(device)).argmax(dim=0).cpu()
""")},
        loses={"test_predict_classes": "take the argmax over dim=1"},
    ),
    Mutant(
        name="argmax_without_dim",
        cells={"predict_classes": _predict("""
    model.to(device).eval()
    with torch.no_grad():
        return model(X.to(device)).argmax().cpu()
""")},
        loses={"test_predict_classes": "expected shape (4,), got ()"},
    ),
    Mutant(
        name="classes_as_float",
        cells={"predict_classes": _predict("""
    model.to(device).eval()
    with torch.no_grad():
        return model(X.to(device)).argmax(dim=1).float().cpu()
""")},
        loses={"test_predict_classes": "expected int64 classes, got torch.float32"},
    ),
    Mutant(
        name="dropout_on_at_prediction",
        cells={"predict_classes": _predict("""
    model.to(device)
    with torch.no_grad():
        return model(X.to(device)).argmax(dim=1).cpu()
""")},
        loses={"test_predict_mode": "did you call model.eval()"},
    ),
    Mutant(
        name="builds_graph",
        cells={"predict_classes": _predict("""
    model.to(device).eval()
    return model(X.to(device)).argmax(dim=1).cpu()
""")},
        loses={"test_predict_mode": "built a computation graph"},
    ),
    Mutant(
        name="transposed_confusion_matrix",
        cells={"confusion_matrix": _counting(entry="matrix[j, i]")},
        loses={"test_confusion_matrix": "row = true class, column = predicted"},
    ),
    Mutant(
        name="confusion_sized_by_largest_label",
        cells={"confusion_matrix": _counting("size = int(max(y_true.max(), y_pred.max())) + 1\n"
                                             "    matrix = torch.zeros(size, size, dtype=torch.int64)")},
        loses={"test_confusion_matrix": "use num_classes for the size"},
    ),
    Mutant(
        name="float_confusion_matrix",
        cells={"confusion_matrix": _counting("matrix = torch.zeros(num_classes, num_classes)")},
        loses={"test_confusion_matrix": "expected int64 counts"},
    ),
    Mutant(
        name="cnn_only_for_batch_size_8",
        cells={"small_cnn": _cnn(_BLOCKS + "\n        self.fc = nn.Linear(128, num_classes)",
                                 "        return self.fc(self.features(x).view(8, -1))")},
        loses={"test_small_cnn": "RuntimeError"},
    ),
    Mutant(
        name="cnn_only_for_10_classes",
        cells={"small_cnn": _cnn(_BLOCKS + "\n        self.fc = nn.Linear(128, 10)",
                                 "        return self.fc(self.features(x).flatten(1))")},
        loses={"test_small_cnn": "SmallCNN(num_classes=3) should give 3 logits per image"},
    ),
    Mutant(
        name="flatten_before_the_convolutions",
        cells={"small_cnn": _cnn("        self.net = nn.Sequential(nn.Flatten(), nn.Conv2d(1, 16, 3, padding=1),"
                                 " nn.ReLU(), nn.Flatten(), nn.Linear(16 * 64, num_classes))",
                                 "        return self.net(x)")},
        loses={"test_small_cnn": "RuntimeError"},
    ),
    Mutant(
        name="flatten_mixes_the_batch",
        cells={"small_cnn": _cnn(_BLOCKS + "\n        self.fc = nn.Linear(128, num_classes)",
                                 "        return self.fc(self.features(x).transpose(0, 1).reshape(len(x), -1))")},
        loses={"test_small_cnn": "other logits alone than in a batch"},
    ),
    Mutant(
        name="convolution_not_used",
        cells={"small_cnn": _cnn("        self.conv = nn.Conv2d(1, 8, 3, padding=1)\n"
                                 "        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), "
                                 "nn.Linear(64, num_classes))",
                                 "        return self.net(x)")},
        loses={"test_small_cnn": "do not depend on its nn.Conv2d layer"},
    ),
    Mutant(
        name="labels_as_float",
        cells={"train_digits": _train(loss="criterion(model(X), y.float())")},
        loses={"test_train_digits": "RuntimeError", "test_reserved_accuracy": "RuntimeError"},
    ),
    Mutant(
        name="trains_on_validation_too",
        cells={"train_digits": _train(data="torch.cat([X_train, X_val]), torch.cat([y_train, y_val])")},
        loses={"test_train_digits": "images of the validation part"},
    ),
    Mutant(
        name="reloads_every_digit",
        cells={"train_digits": _train(data="torch.tensor(load_digits().images / 16.0, dtype=torch.float32)"
                                      ".unsqueeze(1), torch.tensor(load_digits().target)")},
        loses={"test_train_digits": "images of the reserved part",
               "test_reserved_accuracy": "reserved images cannot score this model"},
    ),
    Mutant(
        name="reloads_every_digit_in_eval_mode",  # the detector once looked at training mode only
        cells={"train_digits": _train(data="torch.tensor(load_digits().images / 16.0, dtype=torch.float32)"
                                      ".unsqueeze(1), torch.tensor(load_digits().target)").replace(
                                          "model.train()", "model.eval()")},
        loses={"test_train_digits": "images of the reserved part",
               "test_reserved_accuracy": "reserved images cannot score this model"},
    ),
    Mutant(
        name="peeks_at_every_digit_each_epoch",
        cells={"train_digits": _train().replace("    return model\n", (
            "        model.eval()\n        with torch.no_grad():\n"
            "            every = torch.tensor(load_digits().images / 16.0, dtype=torch.float32).unsqueeze(1)\n"
            "            accuracy = (model(every.to(device)).argmax(1).cpu() == torch.tensor(load_digits().target))"
            ".float().mean()\n    return model\n"))},
        loses={"test_train_digits": "images of the reserved part, which no one may look at",
               "test_reserved_accuracy": "reserved images cannot score this model"},
    ),
    Mutant(
        name="operation_outside_layers",
        cells={"small_cnn": _cnn("        self.conv = nn.Conv2d(1, 16, 3, padding=1)\n"
                                 "        self.fc = nn.Linear(16 * 4 * 4, num_classes)",
                                 "        x = nn.functional.max_pool2d(self.conv(x).clamp(min=0), 2)\n"
                                 "        return self.fc(x.flatten(1))")},
        loses={"test_reserved_accuracy": "clamp"},
    ),
]

CORRECT = [
    Correct(name="torch_max_indices", cells={"predict_classes": _predict("""
    model.eval()
    model.to(device)
    with torch.inference_mode():
        _, classes = torch.max(model(X.to(device)), dim=1)
    return classes.to("cpu")
""")}),
    Correct(name="softmax_then_argmax", cells={"predict_classes": _predict("""
    model = model.to(device).eval()
    with torch.no_grad():
        probs = model(X.to(device)).softmax(dim=-1)
    return probs.max(1)[1].cpu().long()
""")}),
    Correct(name="bincount_confusion_matrix", cells={"confusion_matrix": _confusion("""
    counts = torch.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)
""")}),
    Correct(name="index_put_confusion_matrix", cells={"confusion_matrix": _confusion("""
    matrix = torch.zeros((num_classes, num_classes), dtype=torch.long)
    matrix.index_put_((y_true.long(), y_pred.long()), torch.ones(len(y_true), dtype=torch.long), accumulate=True)
    return matrix
""")}),
    Correct(name="functional_cnn_like_the_mnist_example", cells={"small_cnn": _cnn(
        "        self.conv1 = nn.Conv2d(1, 16, 3, 1, padding=1)\n"
        "        self.conv2 = nn.Conv2d(16, 32, 3, 1)\n"
        "        self.dropout = nn.Dropout(0.1)\n"
        "        self.fc = nn.Linear(32 * 3 * 3, num_classes)",
        "        x = F.relu(self.conv1(x))\n"
        "        x = F.max_pool2d(F.relu(self.conv2(x)), 2)\n"
        "        x = self.dropout(torch.flatten(x, 1))\n"
        "        return F.log_softmax(self.fc(x), dim=1)").replace(
            "class SmallCNN", "import torch.nn.functional as F\n\n\nclass SmallCNN")}),
    Correct(name="batch_norm_and_global_pooling", cells={"small_cnn": _cnn(
        "        self.body = nn.Sequential(\n"
        "            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),\n"
        "            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),\n"
        "            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(128, num_classes))",
        "        return self.body(x)")}),
    Correct(name="view_with_the_batch_size", cells={"small_cnn": _cnn(
        "        self.conv = nn.Conv2d(1, 16, kernel_size=3, stride=1, padding=1)\n"
        "        self.pool = nn.AvgPool2d(2)\n"
        "        self.fc1 = nn.Linear(16 * 4 * 4, 64)\n"
        "        self.fc2 = nn.Linear(64, num_classes)",
        "        x = self.pool(torch.relu(self.conv(x)))\n"
        "        x = x.view(x.size(0), -1)\n"
        "        return self.fc2(torch.relu(self.fc1(x)))")}),
    Correct(name="functional_cross_entropy_and_sgd", cells={"train_digits": """
def train_digits(X_train, y_train):
    torch.manual_seed(0)
    model = SmallCNN(num_classes=10).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(25):
        model.train()
        order = torch.randperm(len(X_train))
        for start in range(0, len(order), 64):
            rows = order[start:start + 64]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(X_train[rows].to(device)), y_train[rows].to(device))
            loss.backward()
            optimizer.step()
    return model
"""}),
]
