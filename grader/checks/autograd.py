"""Hidden checks for exercise 02 (autograd): judges of what grader.observers.autograd observed."""

import math

import torch

from grader.checks.report import expect, fail, judged, type_name
from grader.observation import decode
from grader.observers import autograd as observers
from grader.observers.autograd import observe_fit_exponent, observe_grad_of, observe_gradient_step

LECTURE = "lecture 02"
NO_GRAD_HINT = (
    "an in-place update of a leaf tensor that requires grad must run inside `with torch.no_grad():` "
    f"({LECTURE}, 'Switching recording off: torch.no_grad() and detach()')."
)


def _returned(call: dict, what: str):
    """The value a captured call returned; an error it raised becomes a message naming the call."""
    if "raised" in call:
        kind, text = call["raised"]
        hint = None
        if kind == "RuntimeError" and ("leaf Variable" in text or "in-place" in text):
            hint = NO_GRAD_HINT
        elif kind == "RuntimeError" and "backward through the graph a second time" in text:
            hint = "build a fresh graph for every step: compute the loss again inside the loop."
        elif "NoneType" in text:
            hint = "a tensor's .grad is None until backward() has reached it; skip such tensors."
        fail(f"Calling {what} raised {kind}: {text}", hint=hint)
    return decode(call["value"])


def _state(record: dict) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """An observed tensor, its .grad and whether it was a leaf; anything but tensors fails."""
    tensor, grad = decode(record["tensor"]), decode(record["grad"])
    if not isinstance(tensor, torch.Tensor) or not (grad is None or isinstance(grad, torch.Tensor)):
        fail("The hidden check could not read the state of a tensor it passed to your code.")
    return tensor, grad, record["is_leaf"] is True


def _expect_untouched(record: dict, original: torch.Tensor, name: str, what: str) -> None:
    tensor, grad, _ = _state(record)
    requires_grad = tensor.observed["requires_grad"] is not False
    expect(
        not requires_grad and grad is None and tensor.shape == original.shape and torch.equal(tensor, original),
        f"{what} changed the caller's tensor {name} (its values, requires_grad or .grad).",
        f"{name} left as it was (requires_grad=False, grad=None)",
        f"requires_grad={requires_grad}, grad={'None' if grad is None else 'set'}",
        f"work on a copy that requires grad, e.g. {name} = {name}.detach().clone().requires_grad_(True), "
        f"instead of switching on requires_grad on the caller's tensor ({LECTURE}, "
        "'requires_grad and the recorded graph').",
    )


# grad_of -----------------------------------------------------------------------------------------

# df/dx of each case of observers.grad_cases, worked out by hand (not by autograd).
DERIVATIVES = {
    "(x ** 2).sum()": lambda x: 2 * x,
    "torch.sin(x).sum()": torch.cos,
    "x[0] * x[1]": lambda x: torch.stack([x[1], x[0]]),
    "torch.exp(x).mean()": lambda x: torch.exp(x) / x.numel(),
    "x ** 3 for a 0-dim x": lambda x: 3 * x**2,
    "torch.sin(50 * x).sum()": lambda x: 50 * torch.cos(50 * x),
}


def judge_grad_of(obs: dict, **kwargs) -> None:
    """grad_of(f, x): df/dx at x, shape of x, no graph, caller's x untouched; repeatable."""
    for (name, f, x), calls in zip(observers.grad_cases(), obs["cases"], strict=True):
        what = f"grad_of(f, x) with f(x) = {name}"
        expected = DERIVATIVES[name](x)
        for attempt, call in zip(("first", "second"), calls, strict=True):
            g = _returned(call["result"], what)
            _expect_untouched(call["x"], x, "x", what)
            expect(
                isinstance(g, torch.Tensor),
                f"{what} should return a torch.Tensor.",
                "torch.Tensor",
                type_name(g),
                f"return the .grad of your copy of x ({LECTURE}, 'backward() and .grad').",
            )
            expect(
                tuple(g.shape) == tuple(x.shape),
                f"{what} has the wrong shape.",
                tuple(x.shape),
                tuple(g.shape),
                "the gradient of a scalar with respect to x has exactly x's shape.",
            )
            requires_grad = g.observed["requires_grad"] is not False
            expect(
                not requires_grad and g.observed["grad_fn"] is None,
                f"{what} returned a tensor that still requires grad (it carries a graph).",
                "requires_grad=False",
                f"requires_grad={requires_grad}",
                "return the plain gradient: x.grad after backward(), or torch.autograd.grad(...)[0] "
                "without create_graph=True (or .detach() it).",
            )
            g = g.to(torch.float32)
            if not torch.allclose(g, expected, rtol=1e-4, atol=1e-5):
                hint = (
                    "call .backward() on f(x) for a copy of x that requires grad and return the copy's .grad "
                    f"({LECTURE}, 'backward() and .grad'); a finite-difference estimate is not exact."
                )
                value = f(x).to(g.dtype)
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

def _judge_step_values(new: torch.Tensor, old: torch.Tensor, grad: torch.Tensor, lr: float, name: str,
                       what: str) -> None:
    expected = old - lr * grad
    if new.shape == old.shape and torch.allclose(new.to(old.dtype), expected, rtol=1e-5, atol=1e-6):
        return
    hint = f"compute p - lr * p.grad for every tensor in params ({LECTURE}, 'Hand-written gradient descent')."
    if new.shape == old.shape:
        new = new.to(old.dtype)
        if torch.allclose(new, old, rtol=1e-6, atol=1e-7):
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


def judge_gradient_step(obs: dict, **kwargs) -> None:
    """gradient_step(params, lr): p -= lr * p.grad in place without recording, then grads reset.

    The judge takes the same steps itself from the same start and batches, and compares."""
    generator, (w, b, unused) = observers.step_inputs()
    unused_before = unused.detach().clone()
    steps = obs["steps"]
    previous = None
    for index, lr in enumerate(observers.STEP_LRS):
        what = f"gradient_step(params, lr={lr})"
        record = steps[index]
        if "setup_raised" in record:
            kind, text = record["setup_raised"]
            fail(f"after {previous or 'the previous step'} a new backward() through the parameters raised "
                 f"{kind}: {text}",
                 hint="update every tensor in place and keep its shape and dtype; " + NO_GRAD_HINT)
        observers.fill_gradients(w, b, generator)
        old = [w.detach().clone(), b.detach().clone()]
        grads = [w.grad.detach().clone(), b.grad.detach().clone()]
        _returned(record["result"], what)
        expect(
            record["same_tensors"] is True,
            f"{what} replaced the tensors in the list params instead of updating them.",
            "the same tensor objects, updated in place",
            "new tensors in the list",
            "the optimizer and the model hold these very tensors: update them in place, e.g. "
            "`p -= lr * p.grad` inside `with torch.no_grad():`.",
        )
        states = {name: _state(record[name]) for name in ("w", "b", "unused")}
        for name in ("w", "b"):
            tensor, _, is_leaf = states[name]
            requires_grad = tensor.observed["requires_grad"] is True
            expect(
                is_leaf and requires_grad and tensor.observed["grad_fn"] is None,
                f"after {what} the parameter {name} is no longer a leaf that requires grad.",
                "is_leaf=True, requires_grad=True",
                f"is_leaf={is_leaf}, requires_grad={requires_grad}",
                NO_GRAD_HINT,
            )
        for name, before, grad in (("w", old[0], grads[0]), ("b", old[1], grads[1])):
            _judge_step_values(states[name][0], before, grad, lr, name, what)
        for name in ("w", "b"):
            grad = states[name][1]
            expect(
                grad is None or not bool(grad.any()),
                f"after {what} the gradient of {name} was not reset, so the next backward() adds to it.",
                "p.grad zero (or None)",
                "p.grad still holds the old gradient",
                f"finish with p.grad.zero_() (or p.grad = None) for every tensor ({LECTURE}, 'Gradients accumulate').",
            )
        unused_after, unused_grad, _ = states["unused"]
        expect(
            unused_after.shape == unused_before.shape and torch.equal(unused_after, unused_before)
            and unused_grad is None,
            f"{what} changed a tensor whose .grad is None.",
            "a tensor without a gradient left alone",
            unused_after.tolist(),
            "skip tensors whose .grad is None (no backward() reached them).",
        )
        # The next batch's gradients are taken at the judge's own, correct parameters.
        with torch.no_grad():
            for p in (w, b):
                p -= lr * p.grad
                p.grad = None
        previous = what


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


def _close(a, b):
    return math.isfinite(a) and abs(a - b) <= 1e-4 + 1e-4 * abs(b)


def judge_fit_exponent(obs: dict, **kwargs) -> None:
    """fit_exponent(X, y, num_steps, lr): num_steps gradient-descent steps on the MSE from p = 1."""
    for case, call in zip(observers.FIT_CASES, obs["calls"], strict=True):
        true_p, n, noise, seed, num_steps, lr = case
        X, y = observers.fit_data(true_p, n, noise, seed)
        what = f"fit_exponent(X, y, num_steps={num_steps}, lr={lr})"
        p_hat = _returned(call["result"], what)
        _expect_untouched(call["X"], X, "X", what)
        _expect_untouched(call["y"], y, "y", what)
        expect(
            isinstance(p_hat, float),
            f"{what} should return a Python float.",
            "float",
            type_name(p_hat),
            "turn the 0-dim tensor into a number with p.item().",
        )
        p_hat = float(p_hat)
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


check_grad_of = judged(observe_grad_of, judge_grad_of)
check_gradient_step = judged(observe_gradient_step, judge_gradient_step)
check_fit_exponent = judged(observe_fit_exponent, judge_fit_exponent)
