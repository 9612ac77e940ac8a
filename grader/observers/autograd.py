"""Observers for exercise 02 (autograd): the student's results and what their code did to its inputs.

The input builders are shared with the judge (grader.checks.autograd), which calls them again in the
trusted process rather than reading inputs back from the observation.
"""

import torch

from grader.observation import CALL, ENCODED, RAISED, ListOf, OneOf, capture, encode, observes

STEP_LRS = (0.1, 0.03, 0.5)
# (true exponent, n points, noise, seed, num_steps, lr); 0 and 1 steps catch off-by-one loops.
FIT_CASES = [
    (2.5, 60, 0.1, 0, 0, 0.02),
    (2.5, 60, 0.1, 0, 1, 0.02),
    (1.7, 40, 0.0, 1, 3, 0.05),
    (3.0, 30, 0.05, 2, 7, 0.01),
    (0.5, 50, 0.0, 3, 25, 0.1),
    (1.7, 40, 0.0, 4, 400, 0.05),
]


# What `_state` records.
STATE = {"tensor": ENCODED, "grad": ENCODED, "is_leaf": bool}


def _state(tensor: torch.Tensor) -> dict:
    """A tensor as the student's code left it: values, requires_grad, grad_fn, and its .grad."""
    return {"tensor": encode(tensor), "grad": encode(tensor.grad), "is_leaf": bool(tensor.is_leaf)}


# grad_of -----------------------------------------------------------------------------------------

def grad_cases() -> list[tuple[str, object, torch.Tensor]]:
    """(name, f, x): x is used twice (x4) to catch a leaf cached per tensor."""
    generator = torch.Generator().manual_seed(2)
    x1 = torch.randn(5, generator=generator)
    x2 = torch.randn(2, 3, generator=generator)
    x3 = torch.tensor([1.5, -2.0])
    x4 = torch.randn(4, generator=generator)
    x5 = torch.tensor(0.7)
    return [
        ("(x ** 2).sum()", lambda x: (x**2).sum(), x1),
        ("torch.sin(x).sum()", lambda x: torch.sin(x).sum(), x2),
        ("x[0] * x[1]", lambda x: x[0] * x[1], x3),
        ("torch.exp(x).mean()", lambda x: torch.exp(x).mean(), x4),
        ("x ** 3 for a 0-dim x", lambda x: x**3, x5),
        ("torch.sin(50 * x).sum()", lambda x: torch.sin(50 * x).sum(), x4),
    ]


@observes({"cases": ListOf(ListOf({"result": CALL, "x": STATE}, length=2), length=len(grad_cases()))})
def observe_grad_of(grad_of, **kwargs) -> dict:
    """Two calls per case (a second call exposes accumulated gradients), and x after each."""
    cases = []
    for _, f, x in grad_cases():
        cases.append([{"result": capture(grad_of, f, x), "x": _state(x)} for _ in range(2)])
    return {"cases": cases}


# gradient_step -----------------------------------------------------------------------------------

def step_inputs() -> tuple[torch.Generator, list[torch.Tensor]]:
    """The generator for later batches, and w, b and a tensor no backward() reaches."""
    generator = torch.Generator().manual_seed(3)
    w = torch.randn(3, 2, generator=generator).requires_grad_(True)
    b = torch.randn(2, generator=generator).requires_grad_(True)
    unused = torch.randn(4, generator=generator).requires_grad_(True)
    return generator, [w, b, unused]


def fill_gradients(w: torch.Tensor, b: torch.Tensor, generator: torch.Generator) -> None:
    X = torch.randn(6, 3, generator=generator)
    loss = ((X @ w + b) ** 2).mean() + (w**3).sum()
    loss.backward()


_STEP = {"same_tensors": bool, "w": STATE, "b": STATE, "unused": STATE}
# A step that raised, or a fresh backward() that raised before the step, ends the list; else it has every step.
_LAST = OneOf({"setup_raised": (str, str)}, {"result": RAISED, **_STEP})
_TAKEN = {"result": {"value": ENCODED}, **_STEP}


@observes({"steps": OneOf((_TAKEN,) * len(STEP_LRS), *[(_TAKEN,) * k + (_LAST,) for k in range(len(STEP_LRS))])})
def observe_gradient_step(gradient_step, **kwargs) -> dict:
    """Three steps in a row on the same tensors, each after a fresh backward()."""
    generator, tensors = step_inputs()
    params = list(tensors)
    steps = []
    for lr in STEP_LRS:
        try:
            fill_gradients(tensors[0], tensors[1], generator)
        except Exception as error:  # noqa: BLE001 -- the previous step left tensors backward() cannot use
            steps.append({"setup_raised": [type(error).__name__, str(error)[:500]]})
            break
        result = capture(gradient_step, params, lr)
        steps.append({
            "result": result,
            "same_tensors": len(params) == len(tensors) and all(p is t for p, t in zip(params, tensors)),
            "w": _state(tensors[0]), "b": _state(tensors[1]), "unused": _state(tensors[2]),
        })
        if "raised" in result:
            break
    return {"steps": steps}


# fit_exponent ------------------------------------------------------------------------------------

def fit_data(true_p: float, n: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    X = torch.linspace(0.5, 2.0, n)
    y = X**true_p + noise * torch.randn(n, generator=generator)
    return X, y


@observes({"calls": ListOf({"result": CALL, "X": STATE, "y": STATE}, length=len(FIT_CASES))})
def observe_fit_exponent(fit_exponent, **kwargs) -> dict:
    calls = []
    for true_p, n, noise, seed, num_steps, lr in FIT_CASES:
        X, y = fit_data(true_p, n, noise, seed)
        result = capture(fit_exponent, X, y, num_steps, lr)
        calls.append({"result": result, "X": _state(X), "y": _state(y)})
    return {"calls": calls}
