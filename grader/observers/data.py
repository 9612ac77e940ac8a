"""Observers for exercise 04 (data): what the student's TabularDataset and a DataLoader over it give."""

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from grader.observation import CALL, RAISED, ListOf, OneOf, capture, observes
from grader.observers.nn_module import attempt


def table(n_samples: int, n_features: int, seed: int, y_dtype=np.int64) -> tuple[np.ndarray, np.ndarray]:
    """Float64 features (like scikit-learn's) and 0/1 labels, all distinct enough to tell rows apart."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)) * 10 + np.arange(n_features)
    y = (rng.random(n_samples) > 0.5).astype(y_dtype)
    y[0], y[-1] = 1, 0  # neighbouring rows differ, so an off-by-one index shows
    return X, y


# (n_samples, n_features, label dtype): more samples than features, fewer, one sample, one feature.
CASES = [(12, 5, np.int64), (4, 30, np.int64), (9, 1, np.float64), (1, 3, np.int64), (7, 7, np.int32)]
# A table that is float32 already (torch.from_numpy keeps it as it is): every item is observed.
FLOAT32_CASE = (6, 4, 99)
# (n_samples, n_features, batch_size); the table's seed is n_samples.
LOADER_CASES = [(10, 3, 4), (33, 30, 8), (5, 2, 16), (7, 1, 3)]


def float32_table() -> tuple[np.ndarray, np.ndarray]:
    X, y = table(*FLOAT32_CASE)
    return X.astype(np.float32), y


def item_indices(n_samples: int) -> list[int]:
    """The items observed of a table: first, second, middle and last."""
    return sorted({0, 1 % n_samples, n_samples // 2, n_samples - 1})


def build(TabularDataset, X: np.ndarray, y: np.ndarray) -> tuple[Any, dict]:
    """TabularDataset(copies of X, y): (dataset, {"dataset": bool, "base": name}) or (None, {"raised": ...})."""
    dataset, record = attempt(TabularDataset, X.copy(), y.copy())
    if "raised" in record:
        return None, record
    return dataset, {"dataset": isinstance(dataset, Dataset), "base": type(dataset).__mro__[1].__name__}


def built_shape(**fields) -> OneOf:
    """The shape of a `build` record, with `fields` added when it built a Dataset."""
    return OneOf(RAISED, {"dataset": False, "base": str}, {"dataset": True, "base": str, **fields})


def dataset_items(TabularDataset, X: np.ndarray, y: np.ndarray, indices: list[int] | None) -> dict:
    """len(dataset) (None: not asked) and dataset[i] for each i of `indices`, as captured calls."""
    dataset, record = build(TabularDataset, X, y)
    if dataset is None or not record["dataset"]:
        return record
    if indices is None:
        indices = list(range(len(X)))
    else:
        record["len"] = capture(len, dataset)
    record["items"] = [capture(dataset.__getitem__, i) for i in indices]
    return record


@observes({"cases": tuple(built_shape(len=CALL, items=ListOf(CALL, length=len(item_indices(n_samples))))
                          for n_samples, _, _ in CASES),
           "float32": built_shape(items=ListOf(CALL, length=FLOAT32_CASE[0]))})
def observe_dataset(TabularDataset, **kwargs) -> dict:
    cases = []
    for seed, (n_samples, n_features, y_dtype) in enumerate(CASES):
        X, y = table(n_samples, n_features, seed, y_dtype)
        cases.append(dataset_items(TabularDataset, X, y, item_indices(n_samples)))
    return {"cases": cases, "float32": dataset_items(TabularDataset, *float32_table(), None)}


def loader_batches(dataset: Any, batch_size: int) -> list:
    """Every batch of a shuffling DataLoader over `dataset`, in the order a seeded generator gives."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    return list(loader)


@observes({"cases": ListOf(built_shape(batches=CALL), length=len(LOADER_CASES))})
def observe_loader_batches(TabularDataset, **kwargs) -> dict:
    cases = []
    for n_samples, n_features, batch_size in LOADER_CASES:
        dataset, record = build(TabularDataset, *table(n_samples, n_features, n_samples))
        if dataset is not None and record["dataset"]:
            record["batches"] = capture(loader_batches, dataset, batch_size)
        cases.append(record)
    return {"cases": cases}
