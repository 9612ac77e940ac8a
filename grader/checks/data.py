"""Hidden checks for exercise 04 (data): a Dataset for tabular NumPy data, and its batches.

Each check is an observer (grader.observers.data, in the student's kernel) and a judge (here, in the
trusted process). The judge rebuilds the tables itself and compares every recorded item and batch with
them, value for value.
"""

import numpy as np
import torch

from grader.checks.report import expect, fail, judged, returned, type_name
from grader.observation import decode
from grader.observers.data import (
    CASES,
    FLOAT32_CASE,
    LOADER_CASES,
    float32_table,
    item_indices,
    observe_dataset,
    observe_loader_batches,
    table,
)

LECTURE = "lecture 04"


def _expect_built(record: dict, what: str) -> None:
    if "raised" in record:
        returned(record, what)  # the message a constructor that raised gets
    expect(
        record["dataset"] is True,
        f"{what} is not a torch Dataset.",
        "a subclass of torch.utils.data.Dataset",
        record["base"],
        f"declare the class as `class TabularDataset(Dataset):` ({LECTURE}, '2. A `Dataset` subclass').",
    )


def _expect_length(record: dict, n_samples: int, n_features: int, what: str) -> None:
    length = returned(record["len"], f"len() of {what}")
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


def _expect_item(record: dict, X: np.ndarray, y: np.ndarray, i: int, what: str) -> None:
    """dataset[i] must be (features, target): float32 tensors (n_features,) and (1,) with row i's values."""
    n_features = X.shape[1]
    where = f"dataset[{i}] for dataset = {what}"
    item = returned(record, where)
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
               type_name(value))
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
    if not torch.equal(features, expected_x):
        hint = "return row i of X and the label y[i] of the same row."
        for offset in (1, -1):
            j = len(X) - 1 if i + offset == -1 else i + offset  # X[i - 1] for i = 0 is the last row
            if 0 <= j < len(X) and len(X) > 1 and torch.equal(features, torch.tensor(X[j], dtype=torch.float32)):
                hint = f"you returned row {j} for index {i}: index with i itself, not i {'+' if offset > 0 else '-'} 1."
        fail(f"{where} returned the wrong features.", expected_x.tolist()[:6], features.tolist()[:6], hint)
    expect(torch.equal(target, expected_y), f"{where} returned the wrong target.",
           expected_y.tolist(), target.tolist(), "return the label y[i] of the same row i.")


def judge_dataset(obs: dict, **kwargs) -> None:
    """TabularDataset(X, y): len is the number of samples; item i is (float32 (n_features,), float32 (1,))."""
    for seed, ((n_samples, n_features, y_dtype), record) in enumerate(zip(CASES, obs["cases"], strict=True)):
        X, y = table(n_samples, n_features, seed, y_dtype)
        what = f"TabularDataset(X, y) for X of shape {X.shape} and {np.dtype(y_dtype).name} labels"
        _expect_built(record, what)
        _expect_length(record, n_samples, n_features, what)
        for i, item in zip(item_indices(n_samples), record["items"], strict=True):
            _expect_item(item, X, y, i, what)
    X, y = float32_table()
    n_samples, n_features, _ = FLOAT32_CASE
    what = f"TabularDataset(X, y) for a float32 X of shape {(n_samples, n_features)}"
    record = obs["float32"]
    _expect_built(record, what)
    for i, item in zip(range(n_samples), record["items"], strict=True):
        _expect_item(item, X, y, i, what)


def judge_loader_batches(obs: dict, **kwargs) -> None:
    """A DataLoader over TabularDataset gives (B, n_features) and (B, 1) float32 batches covering every row."""
    for (n_samples, n_features, batch_size), record in zip(LOADER_CASES, obs["cases"], strict=True):
        X, y = table(n_samples, n_features, n_samples)
        _expect_built(record, f"TabularDataset(X, y) for X of shape {X.shape}")
        what = f"a DataLoader(batch_size={batch_size}) over TabularDataset(X, y) for X of shape {X.shape}"
        if "raised" in record["batches"]:
            kind, text = record["batches"]["raised"]
            fail(f"Iterating over {what} raised {kind}: {text}",
                 hint="the DataLoader asks for items 0 .. len(dataset) - 1: __len__ must return the number of rows "
                 "and __getitem__(i) must return (features, target) for each of them.")
        batches = decode(record["batches"]["value"])
        sizes = [min(batch_size, n_samples - k) for k in range(0, n_samples, batch_size)]
        expect(isinstance(batches, list) and len(batches) == len(sizes), f"{what} gave the wrong number of batches.",
               len(sizes), len(batches) if isinstance(batches, list) else type_name(batches),
               "the DataLoader asks len(dataset) how many samples there are: __len__ must return the number of rows.")
        first = batches[0]
        if isinstance(first, dict):
            fail(f"{what} gave dict batches.", "(X, y) pairs", "dicts", "__getitem__ should return a tuple.")
        for batch in batches:
            expect(isinstance(batch, (tuple, list)) and len(batch) == 2, f"{what} did not give (X, y) pairs.",
                   "2 tensors per batch", f"{len(batch)} items per batch" if hasattr(batch, "__len__") else batch)
            expect(all(isinstance(part, torch.Tensor) for part in batch), f"{what} gave batches that are not tensors.",
                   "torch.Tensor", ", ".join(type_name(part) for part in batch),
                   "return tensors (or NumPy arrays) from __getitem__, which the DataLoader stacks.")
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


check_dataset = judged(observe_dataset, judge_dataset)
check_loader_batches = judged(observe_loader_batches, judge_loader_batches)
