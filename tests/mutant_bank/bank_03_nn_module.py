from mutant_bank import Correct, Mutant

ASSIGNMENT = "03_nn_module"


def _mlp(init: str, forward: str) -> str:
    """A full MLP cell from the body of __init__ (after super) and of forward."""
    return (
        "class MLP(nn.Module):\n"
        "    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):\n"
        "        super().__init__()\n"
        f"{init}\n"
        "    def forward(self, X):\n"
        f"{forward}\n"
    )


_MODULE_LIST_INIT = """\
        sizes = [in_features, *hidden, out_features]
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
"""
_SEQUENTIAL_INIT = """\
        sizes = [in_features, *hidden]
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], out_features))
        self.net = nn.Sequential(*layers)
"""
_RELU_BETWEEN = """\
        for layer in self.layers[:-1]:
            X = F.relu(layer(X))
        return self.layers[-1](X)
"""

MUTANTS = [
    Mutant(
        name="plain_python_list",
        cells={"MLP": _mlp(
            """\
        sizes = [in_features, *hidden, out_features]
        self.layers = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
""",
            _RELU_BETWEEN,
        )},
        loses={"test_mlp_parameters": "plain Python list", "test_mlp_forward": "plain Python list",
               "test_mlp_sizes": "should have 4 nn.Linear layers"},
    ),
    Mutant(
        name="relu_after_output",
        cells={"MLP": _mlp(_MODULE_LIST_INIT, """\
        for layer in self.layers:
            X = F.relu(layer(X))
        return X
""")},
        loses={"test_mlp_forward": "never negative", "test_mlp_sizes": "never negative"},
    ),
    Mutant(
        name="sigmoid_after_output",
        cells={"MLP": _mlp(_MODULE_LIST_INIT, """\
        for layer in self.layers[:-1]:
            X = F.relu(layer(X))
        return torch.sigmoid(self.layers[-1](X))
""")},
        loses={"test_mlp_forward": "sigmoid", "test_mlp_sizes": "sigmoid"},
    ),
    Mutant(
        name="no_activation",
        cells={"MLP": _mlp(_MODULE_LIST_INIT, """\
        for layer in self.layers:
            X = layer(X)
        return X
""")},
        loses={"test_mlp_forward": "no activation", "test_mlp_sizes": "no activation"},
    ),
    Mutant(
        name="hard_coded_sizes",
        cells={"MLP": _mlp(
            """\
        self.fc1 = nn.Linear(10, 32)
        self.fc2 = nn.Linear(32, 64)
        self.fc3 = nn.Linear(64, 1)
""",
            """\
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(X)))))
""",
        )},
        loses={"test_mlp_parameters": "MLP(3, (5,), 2)", "test_mlp_sizes": "shapes cannot be multiplied"},
    ),
    Mutant(
        name="bias_false",
        cells={"MLP": _mlp(
            """\
        sizes = [in_features, *hidden, out_features]
        self.layers = nn.ModuleList([nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:])])
""",
            _RELU_BETWEEN,
        )},
        loses={"test_mlp_parameters": "3 biases", "test_mlp_forward": "no bias"},
    ),
    Mutant(
        name="exactly_two_hidden_layers",
        cells={"MLP": _mlp(
            """\
        self.fc1 = nn.Linear(in_features, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], out_features)
""",
            """\
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(X)))))
""",
        )},
        loses={"test_mlp_sizes": "tuple index out of range"},
    ),
    Mutant(
        name="first_and_last_hidden_only",
        cells={"MLP": _mlp(
            """\
        self.fc1 = nn.Linear(in_features, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[-1])
        self.fc3 = nn.Linear(hidden[-1], out_features)
""",
            """\
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(X)))))
""",
        )},
        loses={"test_mlp_sizes": "4 nn.Linear layers"},
    ),
    Mutant(
        name="tanh_hidden_activation",
        cells={"MLP": _mlp(_MODULE_LIST_INIT, """\
        for layer in self.layers[:-1]:
            X = torch.tanh(layer(X))
        return self.layers[-1](X)
""")},
        loses={"test_mlp_forward": "ReLU after every hidden layer"},
    ),
    Mutant(
        name="squeezed_output",
        cells={"MLP": _mlp(_SEQUENTIAL_INIT, """\
        return self.net(X).squeeze()
""")},
        loses={"test_mlp_forward": "expected shape (8, 1)"},
    ),
    Mutant(
        name="float64_model",
        cells={"MLP": _mlp(_SEQUENTIAL_INIT + "        self.double()\n", """\
        return self.net(X.double())
""")},
        loses={"test_mlp_forward": "float32"},
    ),
    Mutant(
        name="last_hidden_layer_unused",
        cells={"MLP": _mlp(_MODULE_LIST_INIT, """\
        for layer in self.layers[:-2]:
            X = F.relu(layer(X))
        hidden_layer = self.layers[-2]
        X = F.relu(X @ hidden_layer.weight.detach().T + hidden_layer.bias.detach())
        return self.layers[-1](X)
""")},
        loses={"test_mlp_forward": "got no gradient"},
    ),
    Mutant(
        name="count_tensors_not_numbers",
        cells={"count_parameters": """
def count_parameters(model):
    return len(list(model.parameters()))
"""},
        loses={"test_count_parameters": "8 numbers"},
    ),
    Mutant(
        name="count_includes_frozen",
        cells={"count_parameters": """
def count_parameters(model):
    return sum(p.numel() for p in model.parameters())
"""},
        loses={"test_count_parameters": "frozen"},
    ),
    Mutant(
        name="count_state_dict",
        cells={"count_parameters": """
def count_parameters(model):
    return sum(tensor.numel() for tensor in model.state_dict().values())
"""},
        loses={"test_count_parameters": "frozen"},
    ),
    Mutant(
        name="count_state_dict_trainable_only",
        cells={"count_parameters": """
def count_parameters(model):
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    return sum(t.numel() for name, t in model.state_dict().items() if name not in frozen)
"""},
        loses={"test_count_parameters": "buffers"},
    ),
    Mutant(
        name="count_returns_tensor",
        cells={"count_parameters": """
def count_parameters(model):
    return torch.stack([torch.tensor(p.numel()) for p in model.parameters() if p.requires_grad]).sum()
"""},
        loses={"test_count_parameters": "Python int"},
    ),
]

CORRECT = [
    Correct(
        name="sequential_with_named_layers",
        cells={"MLP": _mlp(
            """\
        sizes = [in_features, *hidden, out_features]
        self.net = nn.Sequential()
        for i in range(len(sizes) - 1):
            self.net.add_module(f"fc{i}", nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                self.net.add_module(f"relu{i}", nn.ReLU())
""",
            "        return self.net(X)\n",
        )},
    ),
    Correct(
        name="sequential_of_linear_and_relu",
        cells={"MLP": _mlp(_SEQUENTIAL_INIT, "        return self.net(X)\n")},
    ),
    Correct(
        name="module_list_with_functional_relu",
        cells={"MLP": _mlp(
            """\
        self.layers = nn.ModuleList()
        n_in = in_features
        for n_out in [*hidden, out_features]:
            self.layers.append(nn.Linear(n_in, n_out))
            n_in = n_out
""",
            """\
        for i, layer in enumerate(self.layers):
            X = layer(X)
            if i < len(self.layers) - 1:
                X = F.relu(X)
        return X
""",
        )},
    ),
    Correct(
        name="setattr_loop",
        cells={"MLP": _mlp(
            """\
        self.n_hidden = len(hidden)
        n_in = in_features
        for i, n_out in enumerate(hidden):
            setattr(self, f"hidden{i}", nn.Linear(n_in, n_out))
            n_in = n_out
        self.output = nn.Linear(n_in, out_features)
        self.relu = nn.ReLU()
""",
            """\
        for i in range(self.n_hidden):
            X = self.relu(getattr(self, f"hidden{i}")(X))
        return self.output(X)
""",
        )},
    ),
    Correct(
        name="add_module_loop_and_clamp",
        cells={"MLP": _mlp(
            """\
        sizes = [in_features, *hidden, out_features]
        self.depth = len(sizes) - 1
        for i in range(self.depth):
            self.add_module(f"fc{i}", nn.Linear(sizes[i], sizes[i + 1]))
""",
            """\
        for i in range(self.depth):
            X = getattr(self, f"fc{i}")(X)
            if i < self.depth - 1:
                X = X.clamp(min=0)
        return X
""",
        )},
    ),
    Correct(
        name="hidden_blocks_and_head",
        cells={
            "MLP": _mlp(
                """\
        sizes = [in_features, *hidden]
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.head = nn.Linear(sizes[-1], out_features)
""",
                """\
        for block in self.blocks:
            X = block(X)
        return self.head(X)
""",
            ),
            "count_parameters": """
def count_parameters(model):
    total = 0
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            total += parameter.nelement()
    return total
""",
        },
    ),
]

# Part E, choosing a loss: a whole answer cell, the hidden check's message fragment, the notebook's fragment
# (the visible asserts run first, so a mistake they already catch shows their message).
_VALID = "raise ValueError(f\"unknown task {task!r}: expected 'binary', 'multiclass' or 'regression'\")"
_LOSSES = (
    '    losses = {"binary": nn.BCEWithLogitsLoss, "multiclass": nn.CrossEntropyLoss, "regression": nn.MSELoss}\n'
)


def _criterion(binary="nn.BCEWithLogitsLoss()", multiclass="nn.CrossEntropyLoss()", regression="nn.MSELoss()",
               otherwise=f"    {_VALID}\n") -> str:
    return (f"def make_criterion(task):\n    if task == 'binary':\n        return {binary}\n"
            f"    if task == 'multiclass':\n        return {multiclass}\n"
            f"    if task == 'regression':\n        return {regression}\n{otherwise}")


def _targets(binary="y.float().reshape(-1, 1)", multiclass="y.long()", regression="y.float().reshape(-1, 1)",
             convert="torch.as_tensor(y)", otherwise=f"    {_VALID}\n") -> str:
    return (f"def prepare_targets(y, task):\n    y = {convert}\n    if task == 'binary':\n        return {binary}\n"
            f"    if task == 'multiclass':\n        return {multiclass}\n"
            f"    if task == 'regression':\n        return {regression}\n{otherwise}")


CRITERION_MISTAKES = {
    "bce_on_logits": (_criterion(binary="nn.BCELoss()"), "BCELoss expects probabilities", "between 0 and 1"),
    "nll_for_multiclass": (_criterion(multiclass="nn.NLLLoss()"), "NLLLoss expects log-probabilities",
                           "NLLLoss expects log-probabilities"),
    "cross_entropy_for_binary": (_criterion(binary="nn.CrossEntropyLoss()"), "one logit per row is a binary problem",
                                 "expected the binary loss"),
    "l1_for_regression": (_criterion(regression="nn.L1Loss()"), "nn.MSELoss", "nn.MSELoss"),
    "sum_reduction": (_criterion(binary="nn.BCEWithLogitsLoss(reduction='sum')"), "reduction='sum'",
                      "expected the binary loss"),
    "class_not_instance": (_criterion(regression="nn.MSELoss"), "returned the wrong loss", "nn.MSELoss()"),
    "none_for_unknown": (_criterion(otherwise="    return None\n"), "instead of raising ValueError",
                         "should raise ValueError"),
    "dict_lookup_key_error": (f"def make_criterion(task):\n{_LOSSES}    return losses[task]()\n",
                              "raised KeyError instead of ValueError", "KeyError"),
    "message_without_tasks": (_criterion(otherwise="    raise ValueError('unknown task')\n"),
                              "does not name every valid task", "name the valid tasks"),
    "lower_cases_the_task": (
        _criterion().replace("def make_criterion(task):\n", "def make_criterion(task):\n    task = task.lower()\n")
        .replace("    raise", "    return nn.MSELoss()  # anything else: a regression\n    raise"),
        "instead of raising ValueError", "should raise ValueError"),
}

TARGETS_MISTAKES = {
    "binary_not_reshaped": (_targets(binary="y.float()"), "wrong shape", "binary: expected float32 (3, 1)"),
    "binary_left_int64": (_targets(binary="y.reshape(-1, 1)"), "wrong dtype", "binary: expected float32 (3, 1)"),
    "multiclass_as_float": (_targets(multiclass="y.float()"), "wrong dtype", "multiclass: expected int64 (3,)"),
    "multiclass_unsqueezed": (_targets(multiclass="y.long().unsqueeze(1)"), "wrong shape",
                              "multiclass: expected int64 (3,)"),
    "regression_flat": (_targets(regression="y.float()"), "(N, N)", "regression: expected float32 (2, 1)"),
    "regression_as_long": (_targets(regression="y.long().reshape(-1, 1)"), "wrong dtype", "keeping 1.5"),
    "regression_left_float64": (_targets(regression="y.reshape(-1, 1)"), "wrong dtype", "wrong dtype"),
    "numpy_only": (_targets(convert="torch.from_numpy(y)"), "raised TypeError", "TypeError"),
    "returns_numpy": (
        "import numpy as np\n\ndef prepare_targets(y, task):\n    y = np.asarray(y)\n"
        "    if task == 'multiclass':\n        return y.astype(np.int64)\n"
        f"    if task in ('binary', 'regression'):\n        return y.astype(np.float32).reshape(-1, 1)\n    {_VALID}\n",
        "should return a torch.Tensor", "expected a torch.Tensor"),
    "none_for_unknown_targets": (_targets(otherwise="    return None\n"), "instead of raising ValueError",
                                 "instead of raising ValueError"),
    "changes_input_in_place": (
        _targets(convert="torch.as_tensor(y)  # shares memory with y\n    if task == 'regression':\n"
                 "        y.clamp_(min=0)"),
        "changed y in place", "changed y in place"),
}

CORRECT_CRITERION = {
    "match_statement": (
        "def make_criterion(task):\n    match task:\n"
        "        case 'binary':\n            return nn.BCEWithLogitsLoss()\n"
        "        case 'multiclass':\n            return nn.CrossEntropyLoss()\n"
        "        case 'regression':\n            return nn.MSELoss()\n"
        "    raise ValueError('task must be one of: binary, multiclass, regression; got ' + repr(task))\n"),
    "dict_with_check_and_explicit_defaults": (
        f"def make_criterion(task):\n{_LOSSES}    if task not in losses:\n"
        "        raise ValueError(f'{task!r} is not one of {sorted(losses)}')\n"
        "    return losses[task](reduction='mean')\n"),
}

CORRECT_TARGETS = {
    "tensor_of_array_and_unsqueeze": (
        "import numpy as np\n\ndef prepare_targets(y, task):\n"
        "    if task not in ('binary', 'multiclass', 'regression'):\n"
        "        raise ValueError('valid tasks: binary, multiclass, regression')\n"
        "    y = torch.tensor(np.asarray(y))\n"
        "    if task == 'multiclass':\n        return y.to(torch.int64)\n"
        "    return y.to(torch.float32).unsqueeze(1)\n"),
    "view_after_contiguous": _targets(binary="y.to(dtype=torch.float32).view(-1, 1)",
                                      regression="y.double().float().view(len(y), 1)",
                                      multiclass="y.to(torch.long).clone()"),
}

MUTANTS += [
    *[Mutant(name=name, cells={"make_criterion": cell}, loses={"test_make_criterion": notebook})
      for name, (cell, _check, notebook) in CRITERION_MISTAKES.items()],
    *[Mutant(name=name, cells={"prepare_targets": cell}, loses={"test_prepare_targets": notebook})
      for name, (cell, _check, notebook) in TARGETS_MISTAKES.items()],
]
CORRECT += [
    *[Correct(name=name, cells={"make_criterion": cell}) for name, cell in CORRECT_CRITERION.items()],
    *[Correct(name=name, cells={"prepare_targets": cell}) for name, cell in CORRECT_TARGETS.items()],
]
