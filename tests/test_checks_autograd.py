"""Do the hidden checks of exercise 02 accept correct code and explain each wrong answer?"""

import json

import pytest
import torch
from check_helpers import fails_with as _fails_with
from check_helpers import observed

from grader import observation
from grader.checks import autograd

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


# observations and forgeries ----------------------------------------------------------------------
# The judge runs in the trusted process on whatever the kernel reported: it must rebuild its inputs and
# recompute, so a plausible observation with one wrong detail fails, and every observation is strict JSON.

RIGHT = {"grad_of": _grad_clone_backward, "gradient_step": _step_reference, "fit_exponent": _fit_reference}
WRONG = {
    "grad_of": lambda f, x: torch.full_like(x, float("nan")),
    "gradient_step": _step_no_skip,
    "fit_exponent": lambda X, y, num_steps, lr: float("inf"),
}
RECORDS = {"grad_of": "cases", "gradient_step": "steps", "fit_exponent": "calls"}


def _observed(name, candidate):
    """What the kernel would send for `candidate`, after the JSON round trip."""
    return observed(getattr(autograd, f"check_{name}"), candidate)


def _judge_rejects(name, obs, *fragments):
    _fails_with(getattr(autograd, f"check_{name}").judge, obs, *fragments)


def _tensor_field(encoded, **fields):
    """An encoded tensor with some of its recorded facts (requires_grad, grad_fn, ...) rewritten."""
    return {"__tensor__": {**encoded["__tensor__"], **fields}}


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_observation_is_strict_json_and_judged_right(name):
    """Does every observation, right or wrong (NaN, inf, a raise), survive strict JSON; does the right one pass?"""
    for candidate in (RIGHT[name], WRONG[name]):
        text = observation.as_json(getattr(autograd, f"check_{name}").observe(candidate))
        assert json.loads(text) is not None, f"{name}: observation did not round-trip"
    getattr(autograd, f"check_{name}").judge(_observed(name, RIGHT[name]))


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_truncated_observation_is_never_a_pass(name):
    """Does an observation missing its last record fail instead of passing on what is left?"""
    obs = _observed(name, RIGHT[name])
    obs[RECORDS[name]].pop()
    try:
        getattr(autograd, f"check_{name}").judge(obs)
    except Exception:  # noqa: BLE001 -- any failure is right (the engine reports it); only a pass is wrong
        return
    pytest.fail(f"{name}: an observation missing its last record passed the judge")


def test_forged_grad_of_on_other_inputs_is_rejected(monkeypatch):
    """If the kernel's torch builds other x (patched randn) and the observation claims the grader's x, is the
    gradient recomputed at the grader's x and rejected?"""
    honest = _observed("grad_of", RIGHT["grad_of"])
    randn = torch.randn
    monkeypatch.setattr(torch, "randn", lambda *shape, **kw: randn(*shape, **kw) + 1)
    obs = _observed("grad_of", RIGHT["grad_of"])
    monkeypatch.undo()
    for case, honest_case in zip(obs["cases"], honest["cases"], strict=True):
        for call, honest_call in zip(case, honest_case, strict=True):
            call["x"] = honest_call["x"]
    _judge_rejects("grad_of", obs, "(x ** 2).sum()", "wrong gradient on the first call")


def test_forged_grad_of_caller_x_state_is_checked():
    """Does a recorded x that requires grad after the call fail, even with right gradients?"""
    obs = _observed("grad_of", RIGHT["grad_of"])
    record = obs["cases"][2][1]["x"]
    record["tensor"] = _tensor_field(record["tensor"], requires_grad=True)
    _judge_rejects("grad_of", obs, "x[0] * x[1]", "changed the caller's tensor x", "requires_grad=True")


def test_forged_grad_of_graph_is_checked():
    """Does a right-valued gradient that carries a graph fail?"""
    obs = _observed("grad_of", RIGHT["grad_of"])
    obs["cases"][0][0]["result"]["value"] = _tensor_field(
        obs["cases"][0][0]["result"]["value"], requires_grad=True, grad_fn="MulBackward0")
    _judge_rejects("grad_of", obs, "still requires grad")


def test_forged_grad_of_second_call_is_recomputed():
    """Is a second call that doubled the gradient rejected even though the first was right?"""
    obs = _observed("grad_of", RIGHT["grad_of"])
    x = torch.randn(5, generator=torch.Generator().manual_seed(2))
    obs["cases"][0][1]["result"] = {"value": observation.encode(4 * x)}
    _judge_rejects("grad_of", obs, "second call", "accumulate")


def test_forged_gradient_step_flags_do_not_replace_values():
    """Does a step that changed nothing fail on its values even when every flag claims success?"""
    obs = _observed("gradient_step", _step_rebind)
    first = obs["steps"][0]
    assert first["same_tensors"] is True and first["w"]["is_leaf"] is True, first
    for name in ("w", "b"):
        first[name]["grad"] = None
    _judge_rejects("gradient_step", obs, "lr=0.1", "wrong new value", "did not change")


def test_forged_gradient_step_on_other_batches_is_rejected(monkeypatch):
    """If the kernel's torch draws other start values and batches, does a correct step on them fail?"""
    randn = torch.randn
    monkeypatch.setattr(torch, "randn", lambda *shape, **kw: randn(*shape, **kw) * 1.5)
    obs = _observed("gradient_step", RIGHT["gradient_step"])
    monkeypatch.undo()
    _judge_rejects("gradient_step", obs, "lr=0.1", "gave w the wrong new value")


def test_forged_gradient_step_later_step_is_recomputed():
    """Is a drift in the third step (lr=0.5) caught by the judge's own trajectory?"""
    obs = _observed("gradient_step", RIGHT["gradient_step"])
    w = observation.decode(obs["steps"][2]["w"]["tensor"])
    obs["steps"][2]["w"]["tensor"] = _tensor_field(observation.encode(w + 1e-3), requires_grad=True)
    _judge_rejects("gradient_step", obs, "lr=0.5", "gave w the wrong new value")


def test_forged_gradient_step_unused_tensor_is_checked():
    """Is a recorded change to the tensor without a gradient caught?"""
    obs = _observed("gradient_step", RIGHT["gradient_step"])
    unused = observation.decode(obs["steps"][1]["unused"]["tensor"])
    obs["steps"][1]["unused"]["tensor"] = _tensor_field(observation.encode(unused - 0.03), requires_grad=True)
    _judge_rejects("gradient_step", obs, "lr=0.03", ".grad is None")


def test_gradient_step_whose_parameters_break_backward_is_explained():
    """Does a step that leaves w unusable for the next backward() fail with a message, not a crash?"""
    def _step_to_double(params, lr):
        _step_reference(params, lr)
        for p in params:
            p.data = p.data.double()

    _fails_with(autograd.check_gradient_step, _step_to_double, "lr=0.1", "new backward()")


def test_forged_fit_exponent_step_count_is_recomputed():
    """Is an exponent one step further than asked rejected with the step count named?"""
    obs = _observed("fit_exponent", RIGHT["fit_exponent"])
    X, y = autograd.observers.fit_data(1.7, 40, 0.0, 1)
    obs["calls"][2]["result"] = {"value": autograd.reference_fit(X, y, 4, 0.05)}
    _judge_rejects("fit_exponent", obs, "num_steps=3", "wrong exponent", "you took 4 steps")


def test_forged_fit_exponent_on_other_data_is_rejected(monkeypatch):
    """If the kernel's torch builds other X (patched linspace), does a correct fit on it fail?"""
    linspace = torch.linspace
    monkeypatch.setattr(torch, "linspace", lambda start, end, steps, **kw: linspace(start, end + 0.5, steps, **kw))
    obs = _observed("fit_exponent", RIGHT["fit_exponent"])
    monkeypatch.undo()
    honest = _observed("fit_exponent", RIGHT["fit_exponent"])
    for call, honest_call in zip(obs["calls"], honest["calls"], strict=True):
        call["X"], call["y"] = honest_call["X"], honest_call["y"]
    _judge_rejects("fit_exponent", obs, "num_steps=1", "wrong exponent")


def test_forged_fit_exponent_caller_tensors_are_checked():
    """Is a recorded X that gained a .grad rejected?"""
    obs = _observed("fit_exponent", RIGHT["fit_exponent"])
    obs["calls"][3]["X"]["grad"] = observation.encode(torch.ones(30))
    _judge_rejects("fit_exponent", obs, "num_steps=7", "changed the caller's tensor X", "grad=set")


def test_forged_fit_exponent_float_subclass_is_rejected():
    """Does a float subclass (which could lie about comparisons) fail the type check?"""
    class Sneaky(float):
        pass

    _fails_with(autograd.check_fit_exponent, lambda X, y, n, lr: Sneaky(_fit_reference(X, y, n, lr)),
                "Python float", "Sneaky")


def test_observer_module_imports_nothing_that_judges():
    """Does the grading kernel's observer module stay free of grader.checks (the judges and references)?"""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(autograd.observers))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"numpy", "torch", "grader.observation"}, f"observer imports {imported}"
