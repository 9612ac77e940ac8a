"""Observers for exercise 06 (inference): predict and precision_recall on the grader's inputs.

The models and rows are rebuilt from the same seeds by the judge (grader.checks.inference), which
reads only what the student's functions returned and what the spy saw during each forward pass.
"""

import functools

import torch
from torch import nn

from grader.observation import capture


class _Spy(nn.Module):
    """Wraps a model and records, for every forward call, every submodule's mode, grad mode and input device."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.calls: list[dict] = []

    def forward(self, X):
        self.calls.append({"training": [bool(m.training) for m in self.modules()], "grad": torch.is_grad_enabled(),
                           "device": X.device.type})
        return self.model(X)


def fixed_linear(weight: list[float], bias: float) -> nn.Linear:
    layer = nn.Linear(len(weight), 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weight]))
        layer.bias.fill_(bias)
    return layer


def seeded(seed: int, build):
    """`build()` under torch.manual_seed(seed), leaving the kernel's own random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _keeps_rng(observe):
    """The kernel's global random state is the same after the hidden test as before it."""

    @functools.wraps(observe)
    def run(*args, **kwargs):
        with torch.random.fork_rng(devices=[]):
            return observe(*args, **kwargs)

    return run


def _label_cases() -> list[tuple[nn.Module, torch.Tensor, float | None]]:
    """(model, X, threshold or None for the default), in the order the judge expects them."""
    boundary = fixed_linear([1.0, 0.0], 0.0)
    X = torch.tensor([[-2.0, 5.0], [-0.3, 1.0], [0.0, -4.0], [0.0, 7.0], [0.3, 0.0], [2.0, 3.0]])
    zero = fixed_linear([0.0, 0.0, 0.0], 0.0)
    X_zero = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    deep = seeded(11, lambda: nn.Sequential(nn.Linear(7, 16), nn.ReLU(), nn.Linear(16, 1)))
    X7 = torch.randn(40, 7, generator=torch.Generator().manual_seed(3)) * 3
    flipped = fixed_linear([-1.0, 0.0], 0.0)
    return [
        (boundary, X, None),
        (zero, X_zero, None),
        (boundary, X, 0.5),
        *[(boundary, X, threshold) for threshold in (0.8, 0.2, 0.6, 0.05)],
        *[(deep, X7, threshold) for threshold in (0.5, 0.3, 0.7)],
        (deep, X7[:1], None),
        (flipped, X, None),
    ]


def _predict_call(predict, model, X, threshold=None, **kwargs) -> dict:
    kwargs = kwargs if threshold is None else {**kwargs, "threshold": threshold}
    return capture(predict, model, X.clone(), **kwargs)


@_keeps_rng
def observe_predict_labels(predict, **kwargs) -> dict:
    """predict's labels for every grader model, row set and threshold."""
    return {"calls": [_predict_call(predict, model, X, threshold) for model, X, threshold in _label_cases()]}


@_keeps_rng
def observe_predict_mode(predict, **kwargs) -> dict:
    """Two calls of predict on a dropout model left in training mode (and, with a GPU, one with device="cuda"),
    each with the spy's record of its forward passes."""
    inner = seeded(5, lambda: nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 1)))
    spy = _Spy(inner)
    spy.train()
    X = torch.randn(64, 2, generator=torch.Generator().manual_seed(4)) * 2
    calls = []
    for _ in range(2):
        spy.calls = []
        result = _predict_call(predict, spy, X)
        calls.append({"result": result, "forwards": spy.calls})
    observed = {"calls": calls, "cuda": torch.cuda.is_available()}
    if observed["cuda"]:
        observed["device_calls"] = [_observe_on_gpu(predict)]
    return observed


def _observe_on_gpu(predict) -> dict:
    spy = _Spy(seeded(6, lambda: nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))))
    X = torch.randn(10, 3, generator=torch.Generator().manual_seed(6))
    result = _predict_call(predict, spy, X, device="cuda")
    spy.to("cpu")
    return {"result": result, "forwards": spy.calls}


def _precision_recall_cases() -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(8)
    return [
        (torch.tensor([1, 1, 0, 1, 0, 0, 1]), torch.tensor([1, 0, 0, 1, 1, 0, 1])),
        (torch.tensor([1, 1, 1, 0, 0]), torch.tensor([1, 0, 0, 0, 1])),
        (torch.tensor([1, 0, 0, 0]), torch.tensor([1, 1, 1, 0])),
        (torch.zeros(6, dtype=torch.long), torch.tensor([1, 0, 1, 0, 0, 1])),
        (torch.tensor([1, 0, 1, 0]), torch.zeros(4, dtype=torch.long)),
        (torch.randint(0, 2, (200,), generator=generator), torch.randint(0, 2, (200,), generator=generator)),
    ]


@_keeps_rng
def observe_precision_recall(precision_recall, **kwargs) -> dict:
    """precision_recall's result for every grader label set."""
    return {"calls": [capture(precision_recall, y_hat.clone(), y.clone()) for y_hat, y in _precision_recall_cases()]}
