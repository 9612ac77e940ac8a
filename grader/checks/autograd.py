"""Hidden checks for exercise 02 (autograd)."""

import math

import torch

from grader.checks.report import CheckFailed, expect, fail, student_check

LECTURE = "lecture 02"
NO_GRAD_HINT = (
    "an in-place update of a leaf tensor that requires grad must run inside `with torch.no_grad():` "
    f"({LECTURE}, 'Switching recording off: torch.no_grad() and detach()')."
)


def _call(function, *args, what: str, **kwargs):
    """Call student code; an error becomes a message naming the call (NotImplementedError passes)."""
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        raise
    except CheckFailed:
        raise
    except Exception as error:  # noqa: BLE001 -- any error in student code is reported, not crashed on
        text = f"{type(error).__name__}: {error}"
        hint = None
        if isinstance(error, RuntimeError) and ("leaf Variable" in str(error) or "in-place" in str(error)):
            hint = NO_GRAD_HINT
        elif isinstance(error, RuntimeError) and "backward through the graph a second time" in str(error):
            hint = "build a fresh graph for every step: compute the loss again inside the loop."
        elif "NoneType" in str(error):
            hint = "a tensor's .grad is None until backward() has reached it; skip such tensors."
        fail(f"Calling {what} raised {text}", hint=hint)


def _expect_untouched(tensor: torch.Tensor, original: torch.Tensor, name: str, what: str) -> None:
    expect(
        not tensor.requires_grad and tensor.grad is None and torch.equal(tensor, original),
        f"{what} changed the caller's tensor {name} (its values, requires_grad or .grad).",
        f"{name} left as it was (requires_grad=False, grad=None)",
        f"requires_grad={tensor.requires_grad}, grad={'None' if tensor.grad is None else 'set'}",
        f"work on a copy that requires grad, e.g. {name} = {name}.detach().clone().requires_grad_(True), "
        f"instead of switching on requires_grad on the caller's tensor ({LECTURE}, "
        "'requires_grad and the recorded graph').",
    )


# grad_of -----------------------------------------------------------------------------------------

def _grad_cases():
    generator = torch.Generator().manual_seed(2)
    x1 = torch.randn(5, generator=generator)
    x2 = torch.randn(2, 3, generator=generator)
    x3 = torch.tensor([1.5, -2.0])
    x4 = torch.randn(4, generator=generator)
    x5 = torch.tensor(0.7)
    return [
        ("(x ** 2).sum()", lambda x: (x**2).sum(), x1, 2 * x1),
        ("torch.sin(x).sum()", lambda x: torch.sin(x).sum(), x2, torch.cos(x2)),
        ("x[0] * x[1]", lambda x: x[0] * x[1], x3, torch.tensor([-2.0, 1.5])),
        ("torch.exp(x).mean()", lambda x: torch.exp(x).mean(), x4, torch.exp(x4) / 4),
        ("x ** 3 for a 0-dim x", lambda x: x**3, x5, 3 * x5**2),
        ("torch.sin(50 * x).sum()", lambda x: torch.sin(50 * x).sum(), x4, 50 * torch.cos(50 * x4)),
    ]


@student_check
def check_grad_of(grad_of) -> None:
    """grad_of(f, x): df/dx at x, shape of x, no graph, caller's x untouched; repeatable."""
    for name, f, x, expected in _grad_cases():
        what = f"grad_of(f, x) with f(x) = {name}"
        original = x.clone()
        for attempt in ("first", "second"):
            g = _call(grad_of, f, x, what=what)
            _expect_untouched(x, original, "x", what)
            expect(
                isinstance(g, torch.Tensor),
                f"{what} should return a torch.Tensor.",
                "torch.Tensor",
                type(g).__name__,
                f"return the .grad of your copy of x ({LECTURE}, 'backward() and .grad').",
            )
            expect(
                tuple(g.shape) == tuple(x.shape),
                f"{what} has the wrong shape.",
                tuple(x.shape),
                tuple(g.shape),
                "the gradient of a scalar with respect to x has exactly x's shape.",
            )
            expect(
                not g.requires_grad and g.grad_fn is None,
                f"{what} returned a tensor that still requires grad (it carries a graph).",
                "requires_grad=False",
                f"requires_grad={g.requires_grad}",
                "return the plain gradient: x.grad after backward(), or torch.autograd.grad(...)[0] "
                "without create_graph=True (or .detach() it).",
            )
            g = g.detach().to(torch.float32).cpu()
            if not torch.allclose(g, expected, rtol=1e-4, atol=1e-5):
                hint = (
                    "call .backward() on f(x) for a copy of x that requires grad and return the copy's .grad "
                    f"({LECTURE}, 'backward() and .grad'); a finite-difference estimate is not exact."
                )
                value = f(x).detach().to(g.dtype)
                if value.numel() in (1, g.numel()) and torch.allclose(g, value.expand_as(g), atol=1e-6):
                    hint = "you returned f(x) itself; return its gradient with respect to x."
                elif attempt == "second" and torch.allclose(g, 2 * expected, rtol=1e-4, atol=1e-5):
                    hint = (
                        "the second call returned twice the gradient: gradients accumulate in .grad, so "
                        f"use a fresh tensor (or zero .grad) on every call ({LECTURE}, 'Gradients accumulate')."
                    )
                fail(
                    f"{what} returned the wrong gradient on the {attempt} call.",
                    expected.tolist(),
                    g.tolist(),
                    hint,
                )


# gradient_step -----------------------------------------------------------------------------------

def _make_params(generator):
    w = torch.randn(3, 2, generator=generator).requires_grad_(True)
    b = torch.randn(2, generator=generator).requires_grad_(True)
    unused = torch.randn(4, generator=generator).requires_grad_(True)
    return w, b, unused


def _fill_grads(w, b, generator):
    X = torch.randn(6, 3, generator=generator)
    loss = ((X @ w + b) ** 2).mean() + (w**3).sum()
    loss.backward()


@student_check
def check_gradient_step(gradient_step) -> None:
    """gradient_step(params, lr): p -= lr * p.grad in place without recording, then grads reset."""
    generator = torch.Generator().manual_seed(3)
    w, b, unused = _make_params(generator)
    params = [w, b, unused]
    for lr in (0.1, 0.03, 0.5):
        _fill_grads(w, b, generator)
        before = [p.detach().clone() for p in (w, b)]
        grads = [p.grad.detach().clone() for p in (w, b)]
        unused_before = unused.detach().clone()
        what = f"gradient_step(params, lr={lr})"
        _call(gradient_step, params, lr, what=what)
        expect(
            len(params) == 3 and params[0] is w and params[1] is b and params[2] is unused,
            f"{what} replaced the tensors in the list params instead of updating them.",
            "the same tensor objects, updated in place",
            "new tensors in the list",
            "the optimizer and the model hold these very tensors: update them in place, e.g. "
            "`p -= lr * p.grad` inside `with torch.no_grad():`.",
        )
        for p, name in ((w, "w"), (b, "b")):
            expect(
                p.is_leaf and p.requires_grad and p.grad_fn is None,
                f"after {what} the parameter {name} is no longer a leaf that requires grad.",
                "is_leaf=True, requires_grad=True",
                f"is_leaf={p.is_leaf}, requires_grad={p.requires_grad}",
                NO_GRAD_HINT,
            )
        for p, name, old, grad in ((w, "w", before[0], grads[0]), (b, "b", before[1], grads[1])):
            expected = old - lr * grad
            new = p.detach()
            if torch.allclose(new, expected, rtol=1e-5, atol=1e-6):
                continue
            hint = f"compute p - lr * p.grad for every tensor in params ({LECTURE}, 'Hand-written gradient descent')."
            if torch.equal(new, old):
                hint = (
                    "the parameters did not change: `p = p - lr * p.grad` only rebinds a local name, and "
                    "zeroing the gradient before using it leaves nothing to subtract; update in place "
                    "(p -= lr * p.grad) inside torch.no_grad(), then zero the gradient."
                )
            elif torch.allclose(new, old + lr * grad, rtol=1e-5, atol=1e-6):
                hint = "you moved uphill: subtract lr * p.grad, do not add it."
            else:
                step = (old - new).flatten() @ grad.flatten() / (grad.flatten() @ grad.flatten())
                if torch.allclose(new, old - step * grad, rtol=1e-4, atol=1e-5):
                    hint = f"your step used a learning rate of {step.item():.4g}: use the lr argument."
            fail(f"{what} gave {name} the wrong new value.", expected.flatten()[:4].tolist(),
                 new.flatten()[:4].tolist(), hint)
        for p, name in ((w, "w"), (b, "b")):
            expect(
                p.grad is None or not bool(p.grad.any()),
                f"after {what} the gradient of {name} was not reset, so the next backward() adds to it.",
                "p.grad zero (or None)",
                "p.grad still holds the old gradient",
                f"finish with p.grad.zero_() (or p.grad = None) for every tensor ({LECTURE}, 'Gradients accumulate').",
            )
        expect(
            torch.equal(unused.detach(), unused_before) and unused.grad is None,
            f"{what} changed a tensor whose .grad is None.",
            "a tensor without a gradient left alone",
            unused.detach().tolist(),
            "skip tensors whose .grad is None (no backward() reached them).",
        )


# fit_exponent ------------------------------------------------------------------------------------

def reference_fit(X, y, num_steps, lr, *, start=1.0, accumulate=False, total=False, momentum=0.0):
    """Plain gradient descent on the mean squared error of X ** p, from p = start."""
    p = torch.tensor(start, requires_grad=True)
    velocity = torch.tensor(0.0)
    for _ in range(num_steps):
        errors = (X**p - y) ** 2
        loss = errors.sum() if total else errors.mean()
        loss.backward()
        with torch.no_grad():
            velocity = momentum * velocity + p.grad
            p -= lr * velocity
            if not accumulate:
                p.grad.zero_()
    return p.item()


def _fit_data(true_p, n, noise, seed):
    generator = torch.Generator().manual_seed(seed)
    X = torch.linspace(0.5, 2.0, n)
    y = X**true_p + noise * torch.randn(n, generator=generator)
    return X, y


def _close(a, b):
    return math.isfinite(a) and abs(a - b) <= 1e-4 + 1e-4 * abs(b)


@student_check
def check_fit_exponent(fit_exponent) -> None:
    """fit_exponent(X, y, num_steps, lr): num_steps gradient-descent steps on the MSE from p = 1."""
    cases = [
        (2.5, 60, 0.1, 0, 0, 0.02),
        (2.5, 60, 0.1, 0, 1, 0.02),
        (1.7, 40, 0.0, 1, 3, 0.05),
        (3.0, 30, 0.05, 2, 7, 0.01),
        (0.5, 50, 0.0, 3, 25, 0.1),
        (1.7, 40, 0.0, 4, 400, 0.05),
    ]
    for true_p, n, noise, seed, num_steps, lr in cases:
        X, y = _fit_data(true_p, n, noise, seed)
        X_before, y_before = X.clone(), y.clone()
        what = f"fit_exponent(X, y, num_steps={num_steps}, lr={lr})"
        p_hat = _call(fit_exponent, X, y, num_steps, lr, what=what)
        _expect_untouched(X, X_before, "X", what)
        _expect_untouched(y, y_before, "y", what)
        expect(
            isinstance(p_hat, float),
            f"{what} should return a Python float.",
            "float",
            type(p_hat).__name__,
            "turn the 0-dim tensor into a number with p.item().",
        )
        expected = reference_fit(X, y, num_steps, lr)
        if _close(p_hat, expected):
            continue
        hint = (
            f"start from p = 1.0 and take exactly num_steps plain gradient-descent steps "
            f"p -= lr * dL/dp on the mean squared error ({LECTURE}, 'Hand-written gradient descent')."
        )
        diagnoses = [
            (dict(accumulate=True), "the gradients accumulated across steps: zero p.grad after every update "
             f"({LECTURE}, 'Gradients accumulate')."),
            (dict(total=True), "use the mean of the squared errors (.mean()), not their sum."),
            (dict(momentum=0.9), "use plain gradient descent (torch.optim.SGD without momentum)."),
            (dict(start=0.0), "start from p = 1.0."),
        ]
        for variant, text in diagnoses:
            if num_steps > 0 and _close(p_hat, reference_fit(X, y, num_steps, lr, **variant)):
                hint = text
                break
        else:
            for other in (num_steps - 1, num_steps + 1):
                if other >= 0 and _close(p_hat, reference_fit(X, y, other, lr)):
                    hint = f"you took {other} steps: take exactly num_steps gradient-descent steps."
                    break
        fail(f"{what} returned the wrong exponent.", round(expected, 6), p_hat, hint)
