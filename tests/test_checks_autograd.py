"""Do the hidden checks of exercise 02 accept correct code and explain each wrong answer?"""

import pytest
import torch

from grader.checks import autograd
from grader.checks.report import CheckFailed


def _fails_with(check, candidate, *fragments):
    with pytest.raises(CheckFailed) as failure:
        check(candidate)
    for fragment in fragments:
        assert fragment in str(failure.value), f"message lacks {fragment!r}:\n{failure.value}"
    return str(failure.value)


# grad_of -----------------------------------------------------------------------------------------

def _grad_clone_backward(f, x):
    x = x.detach().clone().requires_grad_(True)
    f(x).backward()
    return x.grad


def _grad_autograd_grad(f, x):
    x = x.detach().requires_grad_()
    return torch.autograd.grad(f(x), x)[0]


def _grad_restores_x(f, x):
    x.requires_grad_(True)
    f(x).backward()
    g = x.grad.clone()
    x.grad = None
    x.requires_grad_(False)
    return g


@pytest.mark.parametrize("right", [_grad_clone_backward, _grad_autograd_grad, _grad_restores_x])
def test_grad_of_accepts_correct_variants(right):
    """Is every correct grad_of accepted however it is written?"""
    autograd.check_grad_of(right)


def _grad_mutates_x(f, x):
    x.requires_grad_(True)
    f(x).backward()
    return x.grad


def _grad_value(f, x):
    return f(x.detach().clone().requires_grad_(True)).detach().expand_as(x)


def _grad_finite_difference(f, x):
    h = 1e-2
    flat = x.detach().clone().reshape(-1)
    grads = torch.zeros_like(flat)
    for i in range(flat.numel()):
        up, down = flat.clone(), flat.clone()
        up[i] += h
        down[i] -= h
        grads[i] = (f(up.reshape(x.shape)) - f(down.reshape(x.shape))) / (2 * h)
    return grads.reshape(x.shape)


def _grad_create_graph(f, x):
    x = x.detach().requires_grad_()
    return torch.autograd.grad(f(x), x, create_graph=True)[0]


_accumulator = {}


def _grad_cached_leaf(f, x):
    key = id(x)
    if key not in _accumulator:
        _accumulator[key] = x.detach().clone().requires_grad_(True)
    leaf = _accumulator[key]
    f(leaf).backward()
    return leaf.grad.clone()


@pytest.mark.parametrize("wrong, fragments", [
    (_grad_mutates_x, ["changed the caller's tensor x", "detach().clone()"]),
    (_grad_value, ["wrong gradient", "f(x) itself"]),
    (_grad_finite_difference, ["wrong gradient", "finite-difference"]),
    (_grad_create_graph, ["still requires grad", "create_graph"]),
    (_grad_cached_leaf, ["second call", "accumulate"]),
    (lambda f, x: x.detach().clone().requires_grad_(True).grad, ["torch.Tensor", "NoneType"]),
    (lambda f, x: _grad_clone_backward(f, x).flatten(), ["wrong shape"]),
])
def test_grad_of_explains_mistakes(wrong, fragments):
    """Does each wrong grad_of fail with a message naming the mistake?"""
    _accumulator.clear()
    _fails_with(autograd.check_grad_of, wrong, *fragments)


def test_not_implemented_passes_through_unchanged():
    """Does an unsolved stub still raise NotImplementedError, not a check failure?"""
    def stub(*args):
        raise NotImplementedError("Replace this line")

    for check in (autograd.check_grad_of, autograd.check_gradient_step, autograd.check_fit_exponent):
        with pytest.raises(NotImplementedError):
            check(stub)


# gradient_step -----------------------------------------------------------------------------------

def _step_reference(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= lr * p.grad
                p.grad.zero_()


def _step_sgd(params, lr):
    optimizer = torch.optim.SGD(params, lr=lr)
    optimizer.step()
    optimizer.zero_grad()


def _step_data(params, lr):
    for p in params:
        if p.grad is not None:
            p.data -= lr * p.grad.data
            p.grad = None


def _step_add_alpha(params, lr):
    with torch.no_grad():
        for p in [q for q in params if q.grad is not None]:
            p.add_(p.grad, alpha=-lr)
            p.grad.zero_()


@pytest.mark.parametrize("right", [_step_reference, _step_sgd, _step_data, _step_add_alpha])
def test_gradient_step_accepts_correct_variants(right):
    """Are the no_grad, .data and torch.optim versions all accepted?"""
    autograd.check_gradient_step(right)


def _step_no_zero(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= lr * p.grad


def _step_no_no_grad(params, lr):
    for p in params:
        if p.grad is not None:
            p -= lr * p.grad
            p.grad.zero_()


def _step_rebind(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p = p - lr * p.grad


def _step_replace(params, lr):
    for i, p in enumerate(params):
        if p.grad is not None:
            params[i] = (p - lr * p.grad).detach().requires_grad_(True)


def _step_uphill(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p += lr * p.grad
                p.grad.zero_()


def _step_fixed_lr(params, lr):
    _step_reference(params, 0.1)


def _step_zero_first(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p.grad.zero_()
                p -= lr * p.grad


def _step_no_skip(params, lr):
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
            p.grad.zero_()


@pytest.mark.parametrize("wrong, fragments", [
    (_step_no_zero, ["not reset", "zero_()"]),
    (_step_no_no_grad, ["raised RuntimeError", "torch.no_grad()"]),
    (_step_rebind, ["wrong new value", "did not change"]),
    (_step_replace, ["replaced the tensors", "in place"]),
    (_step_uphill, ["wrong new value", "uphill"]),
    (_step_fixed_lr, ["lr=0.03", "learning rate of 0.1"]),
    (_step_zero_first, ["did not change"]),
    (_step_no_skip, ["raised TypeError", ".grad is None"]),
])
def test_gradient_step_explains_mistakes(wrong, fragments):
    """Does each wrong update fail with a message naming the mistake?"""
    _fails_with(autograd.check_gradient_step, wrong, *fragments)


# fit_exponent ------------------------------------------------------------------------------------

def _fit_reference(X, y, num_steps, lr):
    p = torch.tensor(1.0, requires_grad=True)
    for _ in range(num_steps):
        loss = ((X**p - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            p -= lr * p.grad
            p.grad.zero_()
    return p.item()


def _fit_sgd(X, y, num_steps, lr):
    p = torch.ones((), requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=lr)
    for _ in range(num_steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(X**p, y).backward()
        optimizer.step()
    return float(p.detach())


def _fit_by_hand(X, y, num_steps, lr):
    p = 1.0
    for _ in range(num_steps):
        power = X**p
        p -= lr * float((2 * (power - y) * power * torch.log(X)).mean())
    return p


def _fit_autograd_grad(X, y, num_steps, lr):
    p = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    for _ in range(num_steps):
        (grad,) = torch.autograd.grad(((X.double() ** p - y.double()) ** 2).mean(), p)
        with torch.no_grad():
            p -= lr * grad
    return p.item()


@pytest.mark.parametrize("right", [_fit_reference, _fit_sgd, _fit_by_hand, _fit_autograd_grad])
def test_fit_exponent_accepts_correct_variants(right):
    """Are the hand-written, torch.optim, analytic-gradient and float64 versions accepted?"""
    autograd.check_fit_exponent(right)


def _fit_no_zero(X, y, num_steps, lr):
    p = torch.tensor(1.0, requires_grad=True)
    for _ in range(num_steps):
        ((X**p - y) ** 2).mean().backward()
        with torch.no_grad():
            p -= lr * p.grad
    return p.item()


def _fit_tensor(X, y, num_steps, lr):
    return torch.tensor(_fit_reference(X, y, num_steps, lr))


def _fit_off_by_one(X, y, num_steps, lr):
    return _fit_reference(X, y, num_steps + 1, lr)


def _fit_fixed_steps(X, y, num_steps, lr):
    return _fit_reference(X, y, 200, lr)


def _fit_log_regression(X, y, num_steps, lr):
    keep = y > 0
    lx, ly = torch.log(X[keep]), torch.log(y[keep])
    return float((lx * ly).sum() / (lx * lx).sum())


def _fit_marks_X(X, y, num_steps, lr):
    X.requires_grad_(True)
    return _fit_reference(X.detach(), y, num_steps, lr)


@pytest.mark.parametrize("wrong, fragments", [
    (_fit_no_zero, ["wrong exponent", "accumulated"]),
    (lambda X, y, n, lr: autograd.reference_fit(X, y, n, lr, total=True), ["wrong exponent", ".mean()"]),
    (lambda X, y, n, lr: autograd.reference_fit(X, y, n, lr, momentum=0.9), ["wrong exponent", "momentum"]),
    (lambda X, y, n, lr: autograd.reference_fit(X, y, n, lr, start=0.0), ["num_steps=0", "start"]),
    (_fit_tensor, ["Python float", ".item()"]),
    (_fit_off_by_one, ["wrong exponent", "you took 1 steps"]),
    (_fit_fixed_steps, ["num_steps=0", "wrong exponent"]),
    (_fit_log_regression, ["wrong exponent", "gradient-descent steps"]),
    (_fit_marks_X, ["changed the caller's tensor X"]),
])
def test_fit_exponent_explains_mistakes(wrong, fragments):
    """Does each wrong fit fail with a message naming the mistake?"""
    _fails_with(autograd.check_fit_exponent, wrong, *fragments)


# determinism -------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(20))
def test_reference_passes_under_any_global_seed(seed):
    """Do the checks pass the reference whatever the global seed before them?"""
    torch.manual_seed(seed)
    autograd.check_grad_of(_grad_clone_backward)
    torch.manual_seed(seed)
    autograd.check_gradient_step(_step_reference)
    torch.manual_seed(seed)
    autograd.check_fit_exponent(_fit_reference)
