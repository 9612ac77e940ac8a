from mutant_bank import Correct, Mutant

ASSIGNMENT = "01_tensors"

MUTANTS = [
    Mutant(
        name="grid_int64",
        cells={"make_grid": """
def make_grid(n_rows, n_cols):
    return torch.arange(n_rows * n_cols).reshape(n_rows, n_cols)
"""},
        loses={"test_make_grid": "float32"},
    ),
    Mutant(
        name="grid_hard_coded",
        cells={"make_grid": """
def make_grid(n_rows, n_cols):
    return torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
"""},
        loses={"test_make_grid": "make_grid(1, 1) has the wrong shape"},
    ),
    Mutant(
        name="standardize_in_place",
        cells={"standardize_columns": """
def standardize_columns(X):
    X -= X.mean(dim=0)
    X /= X.std(dim=0)
    return X
"""},
        loses={"test_standardize_columns": "changed"},
    ),
    Mutant(
        name="standardize_whole_tensor",
        cells={"standardize_columns": """
def standardize_columns(X):
    return (X - X.mean()) / X.std()
"""},
        loses={"test_standardize_columns": "column"},
    ),
    Mutant(
        name="rows_first_match_only",
        cells={"rows_where": """
def rows_where(X, y, label):
    return X[(y == label).nonzero()[0]]
"""},
        loses={"test_rows_where": "expected shape (2, 2)"},
    ),
    Mutant(
        name="from_numpy_shares_memory",
        cells={"to_float32_tensor": """
def to_float32_tensor(array):
    return torch.from_numpy(array).float()
"""},
        loses={"test_to_float32_tensor": "shares memory"},
    ),
    Mutant(
        name="device_as_string",
        cells={"pick_device": """
def pick_device():
    return "cuda" if torch.cuda.is_available() else "cpu"
"""},
        loses={"test_pick_device": "torch.device"},
    ),
    Mutant(
        name="device_always_cpu",
        cells={"pick_device": """
def pick_device():
    return torch.device("cpu")
"""},
        loses={"test_pick_device": "GPU present"},
    ),
    Mutant(
        name="device_decided_once_before",
        cells={"pick_device": """
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")

def pick_device():
    return DEVICE
"""},
        loses={"test_pick_device": "each time it is called"},
    ),
]

CORRECT = [
    Correct(
        name="loops_and_views",
        cells={
            "make_grid": """
def make_grid(n_rows, n_cols):
    rows = [[float(r * n_cols + c) for c in range(n_cols)] for r in range(n_rows)]
    return torch.tensor(rows)
""",
            "rows_where": """
def rows_where(X, y, label):
    keep = torch.where(y == label)[0]
    return X.index_select(0, keep)
""",
            "to_float32_tensor": """
def to_float32_tensor(array):
    return torch.from_numpy(array.astype("float32", copy=True))
""",
            "pick_device": """
def pick_device():
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")
""",
        },
    ),
    # Any correct way to ask torch about the GPU earns the points of Part E.
    Correct(name="device_count", cells={"pick_device": """
def pick_device():
    return torch.device("cuda" if torch.cuda.device_count() > 0 else "cpu")
"""}),
    Correct(name="is_available_imported_early", cells={"pick_device": """
from torch.cuda import is_available

def pick_device():
    return torch.device("cuda:0") if is_available() else torch.device("cpu")
"""}),
    Correct(name="accelerator_checked", cells={"pick_device": """
def pick_device():
    if hasattr(torch, "accelerator"):  # PyTorch 2.6 and later
        return torch.accelerator.current_accelerator(check_available=True) or torch.device("cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
"""}),
    Correct(name="mps_then_cuda", cells={"pick_device": """
def pick_device():
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
"""}),
]
