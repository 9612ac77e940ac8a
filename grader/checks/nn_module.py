"""Hidden checks for exercise 03 (nn.Module): the MLP's architecture, checked by behaviour."""

import torch
import torch.nn.functional as F
from torch import nn

from grader.checks.report import call, expect, fail, student_check

LECTURE = "lecture 03"
DEFAULT = (10, (32, 64), 1)


def _label(in_features, hidden, out_features) -> str:
    return f"MLP(in_features={in_features}, hidden={hidden}, out_features={out_features})"


def _build(MLP, in_features, hidden, out_features):
    label = _label(in_features, hidden, out_features)
    text = hint = None
    try:
        model = MLP(in_features=in_features, hidden=hidden, out_features=out_features)
    except NotImplementedError:
        raise
    except Exception as error:  # noqa: BLE001 -- any error in student code is reported, not crashed on
        text = f"{type(error).__name__}: {error}"
        if "__init__() call" in text:
            hint = f"call super().__init__() first in __init__ ({LECTURE}, 'Your own model: subclassing nn.Module')."
        elif isinstance(error, IndexError) or len(hidden) != 2:
            hint = (
                f"hidden={hidden} has {len(hidden)} hidden layer(s): loop over hidden instead of assuming "
                "exactly two (nn.ModuleList or nn.Sequential)."
            )
    if text is not None:
        fail(f"Calling {label} raised {text}", hint=hint)
    expect(
        isinstance(model, nn.Module),
        f"{label} should be an nn.Module.",
        "an nn.Module",
        type(model).__name__,
        f"subclass nn.Module and call super().__init__() first ({LECTURE}, 'Your own model: subclassing nn.Module').",
    )
    return model, label


def _linears(model, label, in_features, hidden, out_features):
    """The model's registered nn.Linear layers, checked against the contract's sizes."""
    sizes = [in_features, *hidden, out_features]
    expected = [(sizes[i + 1], sizes[i]) for i in range(len(sizes) - 1)]
    params = list(model.parameters())
    expect(
        len(params) > 0,
        f"{label} has no registered parameters (model.parameters() is empty).",
        f"{2 * len(expected)} parameter tensors",
        "0",
        "layers kept in a plain Python list are invisible to nn.Module: use nn.ModuleList or "
        f"nn.Sequential ({LECTURE}, 'Pitfall: layers in a plain Python list').",
    )
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    found = [tuple(m.weight.shape) for m in linears]
    hint = (
        "build one nn.Linear per step of [in_features, *hidden, out_features]; do not hard-code "
        f"the sizes, and loop over hidden so that any number of hidden layers works ({LECTURE}, "
        "'Your own model: subclassing nn.Module')."
    )
    expect(
        len(linears) == len(expected),
        f"{label} has the wrong number of registered nn.Linear layers.",
        f"{len(expected)} layers with weight shapes {expected}",
        f"{len(linears)} layers with weight shapes {found}",
        hint,
    )
    if found != expected and sorted(found) == sorted(expected):
        # registered in another order (e.g. the output layer first): put them in forward order by shape
        remaining = list(linears)
        linears = []
        for shape in expected:
            layer = next(m for m in remaining if tuple(m.weight.shape) == shape)
            remaining.remove(layer)
            linears.append(layer)
        found = [tuple(m.weight.shape) for m in linears]
    expect(
        found == expected,
        f"{label} has nn.Linear layers of the wrong sizes (weight shapes are (out, in), in forward order).",
        expected,
        found,
        hint,
    )
    missing = [i for i, m in enumerate(linears) if m.bias is None]
    expect(
        not missing,
        f"{label}: nn.Linear layer(s) {missing} have no bias.",
        "every nn.Linear with a bias",
        "bias=None",
        f"keep the default bias=True ({LECTURE}, 'nn.Linear: an affine map').",
    )
    own = {id(p) for m in linears for p in m.parameters()}
    extra = [tuple(p.shape) for p in params if id(p) not in own]
    expect(
        not extra and len(params) == 2 * len(expected),
        f"{label} registers parameters that belong to no nn.Linear layer (or registers one twice).",
        f"{2 * len(expected)} tensors: a weight and a bias per layer",
        f"{len(params)} tensors, extra shapes {extra}",
        "the MLP holds nn.Linear layers and nothing else with parameters.",
    )
    dtypes = sorted({str(p.dtype) for p in params})
    expect(
        dtypes == ["torch.float32"],
        f"{label} has parameters of the wrong dtype.",
        "torch.float32",
        ", ".join(dtypes),
        "keep nn.Linear's default float32: no .double() and no dtype=torch.float64.",
    )
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    expect(not frozen, f"{label} has parameters that do not require grad: {frozen}.", hint="leave them trainable.")
    return linears


def _reference(linears, X):
    h = X
    for layer in linears[:-1]:
        h = F.relu(F.linear(h, layer.weight, layer.bias))
    return F.linear(h, linears[-1].weight, linears[-1].bias)


def _no_activation(linears, X):
    h = X
    for layer in linears:
        h = F.linear(h, layer.weight, layer.bias)
    return h


def _set_weights(linears, generator):
    """Known, well-scaled weights so every check sees both signs of logits."""
    with torch.no_grad():
        for layer in linears:
            fan_in = layer.weight.shape[1]
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
            layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=generator))
        probe = torch.randn(256, linears[0].weight.shape[1], generator=generator)
        last = linears[-1]
        last.bias.sub_(_reference(linears, probe).median(dim=0).values)  # about half the logits < 0


def _check_forward(MLP, in_features, hidden, out_features, seed):
    generator = torch.Generator().manual_seed(seed)
    model, label = _build(MLP, in_features, hidden, out_features)
    linears = _linears(model, label, in_features, hidden, out_features)
    _set_weights(linears, generator)
    for n in (1, 7, 64):
        X = torch.randn(n, in_features, generator=generator)
        X_before = X.clone()
        what = f"{label} called on X of shape {(n, in_features)}"
        out = call(model, X, what=what)
        expect(isinstance(out, torch.Tensor), f"{what} should return a tensor.", "torch.Tensor", type(out).__name__)
        expect(torch.equal(X, X_before), f"{what} changed its input X.", hint="compute new tensors, not in place.")
        expect(
            tuple(out.shape) == (n, out_features),
            f"{what} returned the wrong shape.",
            (n, out_features),
            tuple(out.shape),
            "return the last layer's output as it is, shape (N, out_features): no squeeze, no flatten.",
        )
        expect(
            out.dtype == torch.float32,
            f"{what} returned the wrong dtype.",
            torch.float32,
            out.dtype,
            "keep everything float32 (nn.Linear's default): no .double() and no dtype=torch.float64.",
        )
        with torch.no_grad():
            expected = _reference(linears, X)
        got = out.detach()
        if torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
            continue
        hint = (
            "apply the nn.Linear layers in order with a ReLU after every hidden layer and nothing after "
            f"the last ({LECTURE}, 'Non-linearity: nn.ReLU')."
        )
        if torch.allclose(got, torch.sigmoid(expected), rtol=1e-4, atol=1e-5):
            hint = (
                "you applied a sigmoid after the output layer: return raw logits; the loss "
                f"(BCEWithLogitsLoss) applies the sigmoid itself ({LECTURE}, 'BCEWithLogitsLoss vs BCELoss')."
            )
        elif torch.allclose(got, torch.relu(expected), rtol=1e-4, atol=1e-5) or (
            (expected < 0).sum() >= 3 and not (got < 0).any()
        ):
            hint = (
                "your outputs are never negative: there is a ReLU after the output layer. Logits can be any "
                "real number; return the last layer's output with no activation "
                f"({LECTURE}, 'Your own model: subclassing nn.Module')."
            )
        elif torch.allclose(got, _no_activation(linears, X).detach(), rtol=1e-4, atol=1e-5):
            hint = (
                "the output is an affine function of X: there is no activation between the layers. Put a ReLU "
                f"after every hidden layer ({LECTURE}, 'Non-linearity: nn.ReLU')."
            )
        fail(f"{what} computed the wrong logits.", expected[0].tolist(), got[0].tolist(), hint)
    # gradients reach every parameter
    model.zero_grad()
    X = torch.randn(32, in_features, generator=generator)
    out = call(model, X, what=label)
    expect(
        out.requires_grad,
        f"the output of {label} does not require grad, so no parameter can learn.",
        hint="do not use torch.no_grad(), .detach() or .item() inside forward.",
    )
    out.pow(2).mean().backward()
    dead = [name for name, p in model.named_parameters() if p.grad is None]
    expect(
        not dead,
        f"after backward() through {label}, these parameters got no gradient: {dead}.",
        hint="every registered layer must be used in forward.",
    )


@student_check
def check_mlp_parameters(MLP) -> None:
    """MLP registers one biased nn.Linear per layer, sized from its arguments."""
    for in_features, hidden, out_features in [DEFAULT, (3, (5, 7), 2), (6, (4, 9), 1)]:
        model, label = _build(MLP, in_features, hidden, out_features)
        _linears(model, label, in_features, hidden, out_features)
        sizes = [in_features, *hidden, out_features]
        total = sum((sizes[i] + 1) * sizes[i + 1] for i in range(len(sizes) - 1))
        found = sum(p.numel() for p in model.parameters())
        expect(found == total, f"{label} has the wrong number of parameters.", total, found)
    default = call(MLP, what="MLP()")
    expect(
        isinstance(default, nn.Module)
        and sorted(tuple(m.weight.shape) for m in default.modules() if isinstance(m, nn.Linear))
        == sorted([(32, 10), (64, 32), (1, 64)]),
        "MLP() without arguments should use the defaults in_features=10, hidden=(32, 64), out_features=1.",
        hint="keep the signature __init__(self, in_features=10, hidden=(32, 64), out_features=1).",
    )


@student_check
def check_mlp_forward(MLP) -> None:
    """MLP.forward returns float32 (N, out_features) logits: Linear, ReLU, ..., Linear."""
    _check_forward(MLP, *DEFAULT, seed=0)
    _check_forward(MLP, 4, (16, 8), 3, seed=1)


@student_check
def check_mlp_sizes(MLP) -> None:
    """MLP works for any number of hidden layers and any sizes."""
    for seed, (in_features, hidden, out_features) in enumerate(
        [(3, (8,), 2), (5, (16, 16, 16), 1), (2, (4, 6, 5, 3), 4), (7, (12, 12), 1)]
    ):
        _check_forward(MLP, in_features, hidden, out_features, seed=10 + seed)


# count_parameters --------------------------------------------------------------------------------

def _count_cases():
    torch.manual_seed(0)
    frozen = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    frozen[0].requires_grad_(False)
    shared = nn.Linear(5, 5)
    return [
        ("nn.Linear(3, 2)", nn.Linear(3, 2)),
        ("nn.Linear(6, 4, bias=False)", nn.Linear(6, 4, bias=False)),
        ("a Sequential with BatchNorm1d (buffers are not parameters)",
         nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 1))),
        ("a Sequential whose first layer is frozen", frozen),
        ("a Sequential that reuses one layer twice", nn.Sequential(shared, nn.ReLU(), shared)),
    ]


@student_check
def check_count_parameters(count_parameters) -> None:
    """count_parameters(model): the number of trainable scalars, as a Python int."""
    for name, model in _count_cases():
        flags = [p.requires_grad for p in model.parameters()]
        what = f"count_parameters({name})"
        result = call(count_parameters, model, what=what)
        expect(
            isinstance(result, int) and not isinstance(result, bool),
            f"{what} should return a Python int.",
            "int",
            type(result).__name__,
            "add up p.numel() (an int) for each parameter; call .item() if you summed tensors.",
        )
        expect(
            flags == [p.requires_grad for p in model.parameters()],
            f"{what} changed which parameters require grad.",
            hint="only read the model.",
        )
        expected = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if result == expected:
            continue
        hint = f"sum p.numel() over model.parameters() that require grad ({LECTURE}, 'The module registry')."
        if result == len([p for p in model.parameters() if p.requires_grad]) or result == len(list(model.parameters())):
            hint = "you counted parameter tensors; count the numbers inside them with p.numel()."
        elif result == sum(p.numel() for p in model.parameters()):
            hint = "frozen parameters (requires_grad=False) are not trainable: leave them out."
        elif result == sum(t.numel() for t in model.state_dict().values()):
            hint = "state_dict() also holds buffers (BatchNorm's running statistics); count model.parameters()."
        fail(f"{what} returned the wrong count.", expected, result, hint)
