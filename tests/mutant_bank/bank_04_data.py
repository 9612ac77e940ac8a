from mutant_bank import Correct, Mutant

ASSIGNMENT = "04_data"

HEAD = "class TabularDataset(Dataset):\n"


def dataset(init: str, getitem: str, length: str = "return len(self.X)") -> str:
    """A whole TabularDataset answer cell from the bodies of its three methods."""
    return (
        f"{HEAD}    def __init__(self, X, y):\n{_indent(init)}\n\n"
        f"    def __len__(self):\n{_indent(length)}\n\n"
        f"    def __getitem__(self, i):\n{_indent(getitem)}\n"
    )


def _indent(body: str) -> str:
    return "\n".join("        " + line for line in body.strip("\n").splitlines())


INIT = """
self.X = torch.tensor(X, dtype=torch.float32)
self.y = torch.tensor(y, dtype=torch.float32).reshape(-1, 1)
"""
ITEM = "return self.X[i], self.y[i]"

# name: (cell source, fragment of the check's message, fragment of the notebook's message for test_tabular_dataset)
# The visible asserts run before the hidden check, so a mistake they catch shows their message.
MISTAKES = {
    "float64_features": (dataset("""
self.X = torch.from_numpy(X)
self.y = torch.tensor(y, dtype=torch.float32).reshape(-1, 1)
""", ITEM), "features of the wrong dtype", "features: expected float32, got torch.float64"),
    "len_is_feature_count": (dataset(INIT, ITEM, "return self.X.shape[1]"),
                             "number of features, not the number of samples", "expected len 426"),
    "len_hard_coded": (dataset(INIT, ITEM, "return 426"), "len() of", None),
    "scalar_target": (dataset("""
self.X = torch.tensor(X, dtype=torch.float32)
self.y = torch.tensor(y, dtype=torch.float32)
""", ITEM), "scalar target", "target: expected shape (1,), got ()"),
    "target_int64": (dataset("""
self.X = torch.tensor(X, dtype=torch.float32)
self.y = torch.from_numpy(y).reshape(-1, 1)
""", ITEM), "BCEWithLogitsLoss needs float targets", "target: expected float32, got torch.int64"),
    "target_float64": (dataset("""
self.X = torch.tensor(X, dtype=torch.float32)
self.y = torch.from_numpy(y.reshape(-1, 1).astype(float))
""", ITEM), "target of the wrong dtype", "target: expected float32, got torch.float64"),
    "returns_numpy": (dataset("""
self.X = X.astype(np.float32)
self.y = y.astype(np.float32).reshape(-1, 1)
""", ITEM), "NumPy value, not a torch tensor", "return torch tensors, not NumPy"),
    "returns_dict": (dataset(INIT, 'return {"features": self.X[i], "target": self.y[i]}'),
                     "returned a dict", "should return a tuple (features, target)"),
    "features_targets_swapped": (dataset(INIT, "return self.y[i], self.X[i]"),
                                 "target first and the features second", "features: expected shape (30,), got (1,)"),
    "off_by_one_plus": (dataset(INIT, "return self.X[i + 1], self.y[i + 1]"), "not i + 1", "item 0 should be row 0"),
    "off_by_one_minus": (dataset(INIT, "return self.X[i - 1], self.y[i - 1]"),
                         "not i - 1", "item 0 should be row 0"),
    "hard_coded_30_features": (dataset("""
self.X = torch.tensor(X, dtype=torch.float32).reshape(-1, 30)
self.y = torch.tensor(y, dtype=torch.float32).reshape(-1, 1)
""", ITEM), "len() of TabularDataset", None),
    "squeeze_in_init": (dataset("""
self.X = torch.tensor(X, dtype=torch.float32).squeeze()
self.y = torch.tensor(y, dtype=torch.float32).reshape(-1, 1)
""", ITEM), "features of the wrong shape", None),
    "uses_global_table": (dataset(INIT, """
return torch.tensor(X_train[i], dtype=torch.float32), torch.tensor([y_train[i]], dtype=torch.float32)
"""), "features of the wrong shape", None),
}

# Mistakes the DataLoader test (Part B) must also catch, with the notebook's message there.
LOADER_LOSES = {
    "scalar_target": "y batch: expected (64, 1) float32, got (64,)",
    "float64_features": "X batch",
    "len_is_feature_count": "expected six batches of 64 and one of 42",
    "target_int64": "got (64, 1) torch.int64",
    "squeeze_in_init": "gave an X batch of the wrong shape",
}

CORRECT_CELLS = {
    "convert_per_item": dataset("""
self.X, self.y = X, y
""", """
features = torch.tensor(self.X[i], dtype=torch.float32)
target = torch.tensor([self.y[i]], dtype=torch.float32)
return features, target
""", "return self.X.shape[0]"),
    "from_numpy_float": dataset("""
self.X = torch.from_numpy(X).float()
self.y = torch.from_numpy(y).float().reshape(-1, 1)
""", ITEM),
    "numpy_column_then_from_numpy": dataset("""
self.X = np.asarray(X, dtype=np.float32)
self.y = np.asarray(y, dtype=np.float32).reshape(-1, 1)
""", "return torch.from_numpy(self.X[i]), torch.from_numpy(self.y[i])"),
    "slice_target_of_1d": dataset("""
self.X = torch.as_tensor(X, dtype=torch.float32)
self.y = torch.as_tensor(y, dtype=torch.float32)
""", "return self.X[i], self.y[i:i + 1]"),
    "unsqueeze_and_tuple_of_len": dataset("""
self.X = torch.tensor(X).to(torch.float32)
self.y = torch.tensor(y).to(torch.float32).unsqueeze(1)
""", "return (self.X[i], self.y[i])", "return self.y.shape[0]"),
    "scalar_reshaped_per_item": dataset("""
self.X = torch.tensor(X, dtype=torch.float32)
self.y = torch.tensor(y, dtype=torch.float32)
""", "return self.X[i], self.y[i].reshape(1)"),
}

MUTANTS = [
    Mutant(
        name=name,
        cells={"tabular_dataset": cell},
        loses={
            "test_tabular_dataset": notebook or check,
            **({"test_loader_batches": LOADER_LOSES[name]} if name in LOADER_LOSES else {}),
        },
    )
    for name, (cell, check, notebook) in MISTAKES.items()
]

CORRECT = [Correct(name=name, cells={"tabular_dataset": cell}) for name, cell in CORRECT_CELLS.items()]
