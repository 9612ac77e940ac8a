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
