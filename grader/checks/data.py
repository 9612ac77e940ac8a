"""Hidden checks for exercise 04 (data): a Dataset for tabular NumPy data, and its batches."""

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from grader.checks.report import call, expect, fail, student_check

LECTURE = "lecture 04"


def _table(n_samples: int, n_features: int, seed: int, y_dtype=np.int64):
    """Float64 features (like scikit-learn's) and 0/1 labels, all distinct enough to tell rows apart."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)) * 10 + np.arange(n_features)
    y = (rng.random(n_samples) > 0.5).astype(y_dtype)
    y[0], y[-1] = 1, 0  # neighbouring rows differ, so an off-by-one index shows
    return X, y


# (n_samples, n_features, label dtype): more samples than features, fewer, one sample, one feature.
CASES = [(12, 5, np.int64), (4, 30, np.int64), (9, 1, np.float64), (1, 3, np.int64), (7, 7, np.int32)]


def _build(TabularDataset, X, y, what):
    dataset = call(TabularDataset, X.copy(), y.copy(), what=what)
    expect(
        isinstance(dataset, Dataset),
        f"{what} is not a torch Dataset.",
        "a subclass of torch.utils.data.Dataset",
        type(dataset).__mro__[1].__name__,
        f"declare the class as `class TabularDataset(Dataset):` ({LECTURE}, '2. A `Dataset` subclass').",
    )
    return dataset


def _expect_length(dataset, n_samples, n_features, what):
    length = call(len, dataset, what=f"len() of {what}")
    if length == n_features and n_features != n_samples:
        fail(
            f"len() of {what} is the number of features, not the number of samples.",
            n_samples,
            length,
            "__len__ must count rows: return len(self.X) or self.X.shape[0], not self.X.shape[1] "
            f"({LECTURE}, '2. A `Dataset` subclass').",
        )
    expect(length == n_samples, f"len() of {what} is wrong.", n_samples, length,
           "__len__ returns the number of samples (rows of X).")


def _expect_item(dataset, X, y, i, what):
    """dataset[i] must be (features, target): float32 tensors (n_features,) and (1,) with row i's values."""
    n_features = X.shape[1]
    where = f"dataset[{i}] for dataset = {what}"
    item = call(dataset.__getitem__, i, what=where)
    if isinstance(item, dict):
        fail(f"{where} returned a dict.", "a tuple (features, target)", f"a dict with keys {list(item)}",
             "return features, target (a tuple); a DataLoader then gives `for X, y in loader`.")
    expect(
        isinstance(item, tuple) and len(item) == 2,
        f"{where} should return a tuple (features, target).",
        "a tuple of 2 tensors",
        repr(item)[:80] if not isinstance(item, (tuple, list)) else f"a {type(item).__name__} of {len(item)}",
        "end __getitem__ with `return features, target`, which makes a tuple.",
    )
    features, target = item
    for name, value in (("features", features), ("target", target)):
        if isinstance(value, np.ndarray) or np.isscalar(value):
            fail(
                f"{where} returned {name} as a NumPy value, not a torch tensor.",
                "torch.Tensor",
                type(value).__name__,
                "convert with torch.tensor(..., dtype=torch.float32) or torch.from_numpy(...).float() "
                f"({LECTURE}, '3. `torch.from_numpy` pitfalls').",
            )
        expect(isinstance(value, torch.Tensor), f"{where} returned {name} that is not a tensor.", "torch.Tensor",
               type(value).__name__)
    if tuple(features.shape) == (1,) and tuple(target.shape) == (n_features,) and n_features != 1:
        fail(f"{where} returned the target first and the features second.",
             f"features {(n_features,)}, target (1,)", f"{tuple(features.shape)}, {tuple(target.shape)}",
             "return features, target in that order.")
    expect(
        tuple(features.shape) == (n_features,),
        f"{where} returned features of the wrong shape.",
        (n_features,),
        tuple(features.shape),
        f"one row of X is X[i], shape (n_features,) ({LECTURE}, '2. A `Dataset` subclass').",
    )
    if tuple(target.shape) == ():
        fail(
            f"{where} returned a scalar target (shape ()), not shape (1,).",
            (1,),
            (),
            "one element of a 1-D array is a scalar; reshape y to a column in __init__ "
            "(y.reshape(-1, 1)) or return y[i:i + 1], so a batch of targets is (B, 1) like the logits "
            f"({LECTURE}, '3.2 One element of a 1-D array is a NumPy scalar, not an array').",
        )
    expect(tuple(target.shape) == (1,), f"{where} returned a target of the wrong shape.", (1,),
           tuple(target.shape), "the target is one number in a tensor of shape (1,).")
    for name, value, hint in (
        ("features", features, "NumPy data is float64 and torch.from_numpy keeps that dtype, but nn layers "
         "expect float32: add .float() or use torch.tensor(..., dtype=torch.float32) "
         f"({LECTURE}, '3.1 float64 data meets a float32 layer')."),
        ("target", target, "BCEWithLogitsLoss needs float targets of the logits' dtype, even for 0/1 labels: "
         "convert y to float32 too."),
    ):
        expect(value.dtype == torch.float32, f"{where} returned {name} of the wrong dtype.", torch.float32,
               value.dtype, hint)
    expected_x = torch.tensor(X[i], dtype=torch.float32)
    expected_y = torch.tensor([y[i]], dtype=torch.float32)
    if not torch.equal(features.detach().cpu(), expected_x):
        hint = "return row i of X and the label y[i] of the same row."
        found = features.detach().cpu()
        for offset in (1, -1):
            j = len(X) - 1 if i + offset == -1 else i + offset  # X[i - 1] for i = 0 is the last row
            if 0 <= j < len(X) and len(X) > 1 and torch.equal(found, torch.tensor(X[j], dtype=torch.float32)):
                hint = f"you returned row {j} for index {i}: index with i itself, not i {'+' if offset > 0 else '-'} 1."
        fail(f"{where} returned the wrong features.", expected_x.tolist()[:6], features.tolist()[:6], hint)
    expect(torch.equal(target.detach().cpu(), expected_y), f"{where} returned the wrong target.",
           expected_y.tolist(), target.tolist(), "return the label y[i] of the same row i.")


@student_check
def check_dataset(TabularDataset) -> None:
    """TabularDataset(X, y): len is the number of samples; item i is (float32 (n_features,), float32 (1,))."""
    for seed, (n_samples, n_features, y_dtype) in enumerate(CASES):
        X, y = _table(n_samples, n_features, seed, y_dtype)
        what = f"TabularDataset(X, y) for X of shape {X.shape} and {np.dtype(y_dtype).name} labels"
        dataset = _build(TabularDataset, X, y, what)
        _expect_length(dataset, n_samples, n_features, what)
        for i in sorted({0, 1 % n_samples, n_samples // 2, n_samples - 1}):
            _expect_item(dataset, X, y, i, what)
    # Every item of a table that is float32 already (torch.from_numpy keeps it as it is).
    X, y = _table(6, 4, 99)
    X = X.astype(np.float32)
    what = "TabularDataset(X, y) for a float32 X of shape (6, 4)"
    dataset = _build(TabularDataset, X, y, what)
    for i in range(6):
        _expect_item(dataset, X, y, i, what)


def _batches(dataset, batch_size):
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    return list(loader)


@student_check
def check_loader_batches(TabularDataset) -> None:
    """A DataLoader over TabularDataset gives (B, n_features) and (B, 1) float32 batches covering every row."""
    for n_samples, n_features, batch_size in [(10, 3, 4), (33, 30, 8), (5, 2, 16), (7, 1, 3)]:
        X, y = _table(n_samples, n_features, n_samples)
        dataset = _build(TabularDataset, X, y, f"TabularDataset(X, y) for X of shape {X.shape}")
        what = f"a DataLoader(batch_size={batch_size}) over TabularDataset(X, y) for X of shape {X.shape}"
        try:
            batches = _batches(dataset, batch_size)
        except NotImplementedError:
            raise
        except Exception as error:  # noqa: BLE001 -- any error in student code is reported, not crashed on
            fail(f"Iterating over {what} raised {type(error).__name__}: {error}",
                 hint="the DataLoader asks for items 0 .. len(dataset) - 1: __len__ must return the number of rows "
                 "and __getitem__(i) must return (features, target) for each of them.")
        sizes = [min(batch_size, n_samples - k) for k in range(0, n_samples, batch_size)]
        expect(len(batches) == len(sizes), f"{what} gave the wrong number of batches.", len(sizes), len(batches),
               "the DataLoader asks len(dataset) how many samples there are: __len__ must return the number of rows.")
        first = batches[0]
        if isinstance(first, dict):
            fail(f"{what} gave dict batches.", "(X, y) pairs", "dicts", "__getitem__ should return a tuple.")
        expect(isinstance(first, (tuple, list)) and len(first) == 2, f"{what} did not give (X, y) pairs.",
               "2 tensors per batch", f"{len(first)} items per batch" if hasattr(first, "__len__") else first)
        seen_x, seen_y = [], []
        for (X_batch, y_batch), size in zip(batches, sizes, strict=True):
            expect(tuple(X_batch.shape) == (size, n_features), f"{what} gave an X batch of the wrong shape.",
                   (size, n_features), tuple(X_batch.shape), "each item's features must have shape (n_features,).")
            if tuple(y_batch.shape) == (size,):
                fail(f"{what} gave a y batch of shape (B,) instead of (B, 1).", (size, 1), (size,),
                     "each target must have shape (1,), not be a scalar, so y batches match (B, 1) logits "
                     f"({LECTURE}, '7. What a batch looks like').")
            expect(tuple(y_batch.shape) == (size, 1), f"{what} gave a y batch of the wrong shape.", (size, 1),
                   tuple(y_batch.shape), "each target must have shape (1,).")
            expect(X_batch.dtype == torch.float32 and y_batch.dtype == torch.float32,
                   f"{what} gave batches of the wrong dtype.", "float32 and float32",
                   f"{X_batch.dtype} and {y_batch.dtype}", "convert features and targets to float32.")
            seen_x.append(X_batch)
            seen_y.append(y_batch)
        order = torch.cat(seen_x)[:, 0].argsort()
        expected = torch.tensor(X, dtype=torch.float32)
        rows = torch.cat(seen_x)[order]
        expect(torch.equal(rows, expected[expected[:, 0].argsort()]),
               f"{what} did not give every row exactly once.", hint="item i must be row i of X.")
        labels = torch.cat(seen_y)[order].squeeze(1)
        expect(torch.equal(labels, torch.tensor(y, dtype=torch.float32)[expected[:, 0].argsort()]),
               f"{what} paired rows with the wrong labels.", hint="item i must be (X[i], y[i]).")
