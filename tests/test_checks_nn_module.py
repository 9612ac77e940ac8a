"""Do the hidden checks of exercise 03 accept correct MLPs and explain each wrong one?"""

import json

import pytest
import torch
import torch.nn.functional as F
from check_helpers import encoded
from check_helpers import fails_with as _fails_with
from check_helpers import observed as _observe
from mutant_bank.bank_03_nn_module import CORRECT_CRITERION, CORRECT_TARGETS, CRITERION_MISTAKES, TARGETS_MISTAKES
from mutant_bank.grading import reference_answers
from torch import nn

from grader.checks import nn_module
from grader.observation import as_json, decode, encode
from grader.observers import nn_module as nn_observers

MLP_CHECKS = [nn_module.check_mlp_parameters, nn_module.check_mlp_forward, nn_module.check_mlp_sizes]


# correct MLPs ------------------------------------------------------------------------------------

class SequentialMLP(nn.Module):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__()
        sizes = [in_features, *hidden]
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], out_features))

    def forward(self, X):
        return self.net(X)


class ModuleListMLP(nn.Module):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, X):
        for layer in self.layers[:-1]:
            X = F.relu(layer(X))
        return self.layers[-1](X)


class SetattrMLP(nn.Module):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__()
        self.n_hidden = len(hidden)
        n_in = in_features
        for i, n_out in enumerate(hidden):
            setattr(self, f"hidden{i}", nn.Linear(n_in, n_out))
            n_in = n_out
        self.output = nn.Linear(n_in, out_features)
        self.relu = nn.ReLU()

    def forward(self, X):
        for i in range(self.n_hidden):
            X = self.relu(getattr(self, f"hidden{i}")(X))
        return self.output(X)


class AddModuleMLP(nn.Module):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        for i in range(len(sizes) - 1):
            self.add_module(f"fc{i}", nn.Linear(sizes[i], sizes[i + 1]))
        self.depth = len(sizes) - 1

    def forward(self, X):
        h = X
        for i in range(self.depth):
            h = getattr(self, f"fc{i}")(h)
            if i < self.depth - 1:
                h = torch.clamp(h, min=0)
        return h


class BlocksMLP(nn.Module):
    """Hidden blocks of Sequential(Linear, ReLU) in a ModuleList, then a separate head."""

    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__()
        sizes = [in_features, *hidden]
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in zip(sizes[:-1], sizes[1:]))
        self.head = nn.Linear(sizes[-1], out_features)

    def forward(self, X):
        for block in self.blocks:
            X = block(X)
        return self.head(X)


class HeadFirstMLP(BlocksMLP):
    """Registers the output layer before the hidden layers."""

    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        nn.Module.__init__(self)
        sizes = [in_features, *hidden]
        self.head = nn.Linear(sizes[-1], out_features)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in zip(sizes[:-1], sizes[1:]))


@pytest.mark.parametrize("right", [SequentialMLP, ModuleListMLP, SetattrMLP, AddModuleMLP, BlocksMLP, HeadFirstMLP])
@pytest.mark.parametrize("check", MLP_CHECKS, ids=lambda c: c.__name__)
def test_mlp_accepts_correct_variants(check, right):
    """Is every correct MLP accepted however its layers are stored and applied?"""
    check(right)


# wrong MLPs --------------------------------------------------------------------------------------

class PlainListMLP(ModuleListMLP):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        nn.Module.__init__(self)
        sizes = [in_features, *hidden, out_features]
        self.layers = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]


class ReluOutputMLP(SequentialMLP):
    def forward(self, X):
        return F.relu(self.net(X))


class SigmoidOutputMLP(SequentialMLP):
    def forward(self, X):
        return torch.sigmoid(self.net(X))


class NoActivationMLP(ModuleListMLP):
    def forward(self, X):
        for layer in self.layers:
            X = layer(X)
        return X


class HardCodedMLP(nn.Module):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(10, 32), nn.Linear(32, 64), nn.Linear(64, 1)

    def forward(self, X):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(X)))))


class TwoHiddenMLP(nn.Module):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], out_features)

    def forward(self, X):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(X)))))


class TwoHiddenLastMLP(TwoHiddenMLP):
    """Uses hidden[0] and hidden[-1]: builds for (8,) but drops the middle of (16, 16, 16)."""

    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        nn.Module.__init__(self)
        self.fc1 = nn.Linear(in_features, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[-1])
        self.fc3 = nn.Linear(hidden[-1], out_features)


class NoBiasMLP(nn.Module):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, X):
        for layer in self.layers[:-1]:
            X = F.relu(layer(X))
        return self.layers[-1](X)


class NoSuperMLP(SequentialMLP):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        self.net = nn.Sequential(nn.Linear(in_features, out_features))


class TanhMLP(ModuleListMLP):
    def forward(self, X):
        for layer in self.layers[:-1]:
            X = torch.tanh(layer(X))
        return self.layers[-1](X)


class SqueezedMLP(SequentialMLP):
    def forward(self, X):
        return self.net(X).squeeze()


class DoubleMLP(SequentialMLP):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__(in_features, hidden, out_features)
        self.double()

    def forward(self, X):
        return self.net(X.double())


class DetachedMLP(SequentialMLP):
    def forward(self, X):
        return self.net(X).detach()


class UnusedLayerMLP(ModuleListMLP):
    def forward(self, X):
        for layer in self.layers[:-2]:
            X = F.relu(layer(X))
        return self.layers[-1](F.relu(X @ self.layers[-2].weight.detach().T + self.layers[-2].bias))


class ExtraParameterMLP(SequentialMLP):
    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__(in_features, hidden, out_features)
        self.scale = nn.Parameter(torch.ones(1))


class ReluFirstMLP(ModuleListMLP):
    """ReLU before every layer instead of after every hidden layer."""

    def forward(self, X):
        for layer in self.layers:
            X = layer(F.relu(X))
        return X


@pytest.mark.parametrize("wrong, check, fragments", [
    (PlainListMLP, nn_module.check_mlp_parameters, ["no registered parameters", "nn.ModuleList"]),
    (PlainListMLP, nn_module.check_mlp_forward, ["no registered parameters"]),
    (ReluOutputMLP, nn_module.check_mlp_forward, ["wrong logits", "never negative"]),
    (ReluOutputMLP, nn_module.check_mlp_sizes, ["never negative"]),
    (SigmoidOutputMLP, nn_module.check_mlp_forward, ["wrong logits", "sigmoid"]),
    (NoActivationMLP, nn_module.check_mlp_forward, ["wrong logits", "no activation"]),
    (HardCodedMLP, nn_module.check_mlp_parameters, ["MLP(in_features=3, hidden=(5, 7), out_features=2)", "hard-code"]),
    (HardCodedMLP, nn_module.check_mlp_sizes, ["wrong number of registered nn.Linear"]),
    (TwoHiddenMLP, nn_module.check_mlp_sizes, ["hidden=(8,)", "loop over hidden"]),
    (TwoHiddenLastMLP, nn_module.check_mlp_sizes, ["hidden=(8,)", "wrong number of registered nn.Linear"]),
    (NoBiasMLP, nn_module.check_mlp_parameters, ["have no bias", "bias=True"]),
    (NoBiasMLP, nn_module.check_mlp_forward, ["have no bias"]),
    (NoSuperMLP, nn_module.check_mlp_parameters, ["raised AttributeError", "super().__init__()"]),
    (TanhMLP, nn_module.check_mlp_forward, ["wrong logits", "ReLU after every hidden layer"]),
    (SqueezedMLP, nn_module.check_mlp_forward, ["wrong shape", "no squeeze"]),
    (DoubleMLP, nn_module.check_mlp_forward, ["wrong dtype", "float32"]),
    (DetachedMLP, nn_module.check_mlp_forward, ["does not require grad"]),
    (UnusedLayerMLP, nn_module.check_mlp_forward, ["got no gradient", "layers.1.weight"]),
    (ExtraParameterMLP, nn_module.check_mlp_parameters, ["belong to no nn.Linear"]),
    (ReluFirstMLP, nn_module.check_mlp_forward, ["wrong logits"]),
])
def test_mlp_explains_mistakes(wrong, check, fragments):
    """Does each wrong MLP fail with a message naming the mistake?"""
    _fails_with(check, wrong, *fragments)


def test_not_implemented_passes_through_unchanged():
    """Does an unsolved stub still raise NotImplementedError, not a check failure?"""
    class Stub(nn.Module):
        def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
            super().__init__()
            raise NotImplementedError("Replace this line")

    def stub(model):
        raise NotImplementedError("Replace this line")

    for check in MLP_CHECKS:
        with pytest.raises(NotImplementedError):
            check(Stub)
    with pytest.raises(NotImplementedError):
        nn_module.check_count_parameters(stub)


# count_parameters --------------------------------------------------------------------------------

@pytest.mark.parametrize("right", [
    lambda model: sum(p.numel() for p in model.parameters() if p.requires_grad),
    lambda model: int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
    lambda model: sum(p.nelement() for _, p in model.named_parameters() if p.requires_grad),
    lambda model: int(torch.tensor([p.numel() for p in model.parameters() if p.requires_grad]).sum().item()),
])
def test_count_parameters_accepts_correct_variants(right):
    """Are the generator, named_parameters and tensor-sum versions accepted?"""
    nn_module.check_count_parameters(right)


def _count_modules(model):
    return sum(m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
               for m in model.modules() if isinstance(m, nn.Linear))


@pytest.mark.parametrize("wrong, fragments", [
    (lambda model: len(list(model.parameters())), ["wrong count", "p.numel()"]),
    (lambda model: sum(p.numel() for p in model.parameters()), ["frozen", "first layer is frozen"]),
    (lambda model: sum(t.numel() for t in model.state_dict().values()), ["BatchNorm1d", "buffers"]),
    (lambda model: torch.tensor(sum(p.numel() for p in model.parameters())), ["Python int", "Tensor"]),
    (lambda model: float(sum(p.numel() for p in model.parameters() if p.requires_grad)), ["Python int", "float"]),
    (_count_modules, ["wrong count"]),
])
def test_count_parameters_explains_mistakes(wrong, fragments):
    """Does each wrong count fail with a message naming the mistake?"""
    _fails_with(nn_module.check_count_parameters, wrong, *fragments)


# determinism -------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(20))
def test_reference_passes_under_any_global_seed(seed):
    """Do the checks pass the reference whatever the global seed before them?"""
    for check in MLP_CHECKS:
        torch.manual_seed(seed)
        check(SequentialMLP)
    torch.manual_seed(seed)
    nn_module.check_count_parameters(lambda model: sum(p.numel() for p in model.parameters() if p.requires_grad))


# observer and judge ------------------------------------------------------------------------------

CHECKS = [*MLP_CHECKS, nn_module.check_count_parameters]


def _correct_count(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _rejects(check, obs, *fragments):
    _fails_with(check.judge, obs, *fragments)


@pytest.mark.parametrize("candidate", [SequentialMLP, HeadFirstMLP, NoBiasMLP, DetachedMLP, UnusedLayerMLP,
                                       SqueezedMLP, DoubleMLP, NoSuperMLP, PlainListMLP, TwoHiddenMLP],
                         ids=lambda c: c.__name__)
@pytest.mark.parametrize("check", MLP_CHECKS, ids=lambda c: c.__name__)
def test_mlp_observations_are_strict_json(check, candidate):
    """Does every MLP observation, of right and wrong models alike, survive strict JSON unchanged?"""
    obs = check.observe(candidate)
    assert json.loads(as_json(obs)) == json.loads(json.dumps(obs)), f"{check.__name__}: observation changed in JSON"


@pytest.mark.parametrize("candidate", [_correct_count, lambda model: torch.tensor(3), lambda model: 2.5,
                                       lambda model: 1 / 0], ids=["right", "tensor", "float", "raises"])
def test_count_observations_are_strict_json(candidate):
    """Does count_parameters' observation survive strict JSON, whatever the function returned or raised?"""
    as_json(nn_module.check_count_parameters.observe(candidate))


def test_observer_holds_no_verdict():
    """Does the observer record a wrong MLP without deciding anything (no CheckFailed in the kernel)?"""
    for check in MLP_CHECKS:
        for wrong in (ReluOutputMLP, NoBiasMLP, HardCodedMLP, PlainListMLP):
            check.observe(wrong)


@pytest.mark.parametrize("in_features, hidden, out_features, seed",
                         nn_observers.FORWARD_CASES + nn_observers.SIZES_CASES)
def test_forward_cases_give_logits_of_both_signs(in_features, hidden, out_features, seed):
    """Are 20-80 % of each output unit's reference logits negative, so a ReLU or sigmoid on the output shows?"""
    sizes = [in_features, *hidden, out_features]
    values = nn_observers.fill_values([(b, a) for a, b in zip(sizes[:-1], sizes[1:])], seed)
    X = nn_observers.input_batches(in_features, seed)[2]
    for k, (weight, bias) in enumerate(values):
        X = F.linear(X, weight, bias)
        X = F.relu(X) if k < len(values) - 1 else X
    negative = (X < 0).float().mean(dim=0)
    assert ((negative > 0.2) & (negative < 0.8)).all(), f"share of negative logits per output unit: {negative}"


def test_forged_parameters_observation_is_rejected():
    """Is the default MLP's (right) description, reported for every requested size, rejected?"""
    obs = _observe(nn_module.check_mlp_parameters, SequentialMLP)
    obs["cases"] = [obs["cases"][0]] * len(obs["cases"])
    _rejects(nn_module.check_mlp_parameters, obs, "MLP(in_features=3, hidden=(5, 7), out_features=2)",
             "wrong sizes")


def test_forged_default_is_rejected():
    """Is an MLP() whose description lacks a layer rejected with the defaults message?"""
    obs = _observe(nn_module.check_mlp_parameters, SequentialMLP)
    obs["default"]["built"]["modules"] = [m for m in obs["default"]["built"]["modules"] if m["name"] != "net.4"]
    _rejects(nn_module.check_mlp_parameters, obs, "should use the defaults")


def _with_values(recorded, tensor):
    """`recorded` (an encoded tensor) claiming other values, with every other detail kept."""
    return {"__tensor__": {**recorded["__tensor__"], "data": encoded(tensor)["__tensor__"]["data"]}}


def test_forged_outputs_are_rejected():
    """Are logits that do not follow from the recorded parameters rejected, even with the right shape and dtype?"""
    obs = _observe(nn_module.check_mlp_forward, SequentialMLP)
    for call in obs["cases"][0]["calls"]:
        call["value"] = _with_values(call["value"], torch.relu(decode(call["value"])))
    _rejects(nn_module.check_mlp_forward, obs, "wrong logits", "never negative")


def test_forged_parameters_are_rejected():
    """Does a model that reports other parameters than the check gave it fail, though its logits fit them?"""
    obs = _observe(nn_module.check_mlp_forward, SequentialMLP)
    name, weight = obs["cases"][0]["built"]["parameters"][0]
    obs["cases"][0]["built"]["parameters"][0] = [name, _with_values(weight, 2 * decode(weight))]
    _rejects(nn_module.check_mlp_forward, obs, "does not hold the weights the check gave")


class LyingMLP(SequentialMLP):
    """Registers the right layers, but computes with a private copy the check cannot set."""

    def __init__(self, in_features=10, hidden=(32, 64), out_features=1):
        super().__init__(in_features, hidden, out_features)
        self.hidden_copy = [SequentialMLP(in_features, hidden, out_features)]

    def forward(self, X):
        return self.hidden_copy[0](X)


def test_model_lying_about_its_parameters_fails():
    """Does a model whose registered parameters are not the ones it computes with fail on its logits?"""
    _fails_with(nn_module.check_mlp_forward, LyingMLP, "wrong logits")


def test_forged_gradients_are_rejected():
    """Are gradients that autograd would not give for the recorded logits rejected?"""
    obs = _observe(nn_module.check_mlp_sizes, SequentialMLP)
    grads = obs["cases"][1]["grads"]
    grads[0] = encoded(torch.zeros_like(decode(grads[0])))
    _rejects(nn_module.check_mlp_sizes, obs, "the gradient of net.0.weight is wrong")


def test_forged_untouched_input_is_checked():
    """Is an input the model changed in place caught from the recorded input, not from a flag?"""
    obs = _observe(nn_module.check_mlp_sizes, SequentialMLP)
    call = obs["cases"][0]["calls"][0]
    call["input_after"] = encoded(decode(call["input_after"]) + 1)
    _rejects(nn_module.check_mlp_sizes, obs, "changed its input X")


def test_forged_counts_are_rejected():
    """Are plausible counts rejected: a subclass of int, then the totals including frozen parameters?"""
    obs = _observe(nn_module.check_count_parameters, _correct_count)
    forged = json.loads(json.dumps(obs))
    forged["cases"][0]["value"] = {"__object__": {"type": "builtins.IntLike", "repr": "8"}}
    _rejects(nn_module.check_count_parameters, forged, "should return a Python int", "IntLike")
    forged = _observe(nn_module.check_count_parameters, lambda model: sum(p.numel() for p in model.parameters()))
    forged["cases"][3]["requires_grad_after"] = [True] * len(forged["cases"][3]["requires_grad_after"])
    _rejects(nn_module.check_count_parameters, forged, "changed which parameters require grad")
    obs["cases"][3]["value"] += 1
    _rejects(nn_module.check_count_parameters, obs, "wrong count")


# make_criterion and prepare_targets ---------------------------------------------------------------


def _answer(cell: str, name: str):
    namespace = {"torch": torch, "nn": nn, "F": F}
    exec(cell, namespace)
    return namespace[name]


_REFERENCE = reference_answers("03_nn_module")
LOSS_CHECKS = {"make_criterion": nn_module.check_make_criterion, "prepare_targets": nn_module.check_prepare_targets}
LOSS_CORRECT = [("make_criterion", _REFERENCE["make_criterion"]), ("prepare_targets", _REFERENCE["prepare_targets"]),
                *[("make_criterion", cell) for cell in CORRECT_CRITERION.values()],
                *[("prepare_targets", cell) for cell in CORRECT_TARGETS.values()]]
LOSS_MISTAKES = [*[("make_criterion", name, *entry[:2]) for name, entry in CRITERION_MISTAKES.items()],
                 *[("prepare_targets", name, *entry[:2]) for name, entry in TARGETS_MISTAKES.items()]]


@pytest.mark.parametrize("name, cell", LOSS_CORRECT)
def test_loss_checks_accept_correct_variants(name, cell):
    """Is the reference and every differently-written right make_criterion / prepare_targets accepted?"""
    LOSS_CHECKS[name](_answer(cell, name))


@pytest.mark.parametrize("name, mistake, cell, fragment", LOSS_MISTAKES, ids=[m[1] for m in LOSS_MISTAKES])
def test_loss_checks_explain_each_mistake(name, mistake, cell, fragment):
    """Does each wrong loss or target conversion fail with a message naming the mistake?"""
    _fails_with(LOSS_CHECKS[name], _answer(cell, name), fragment)


@pytest.mark.parametrize("seed", range(20))
def test_loss_checks_pass_under_any_global_seed(seed):
    """Does the reference pass whatever the global random state is?"""
    for name, check in LOSS_CHECKS.items():
        torch.manual_seed(seed)
        check(_answer(_REFERENCE[name], name))


def test_loss_judges_recompute_what_they_are_told():
    """A forged record (a right class name with a wrong loss value, a right dtype with wrong values) still fails."""
    make_criterion = _answer(_REFERENCE["make_criterion"], "make_criterion")
    obs = _observe(nn_module.check_make_criterion, make_criterion)
    obs["cases"][2]["loss"] = {"value": encode(torch.tensor(0.5))}
    _rejects(nn_module.check_make_criterion, obs, "computes another loss")
    obs = _observe(nn_module.check_prepare_targets, _answer(_REFERENCE["prepare_targets"], "prepare_targets"))
    obs["cases"][0]["value"] = encode(torch.zeros(5, 1))
    _rejects(nn_module.check_prepare_targets, obs, "changed the values")


def test_every_task_input_fits_its_loss():
    """Do the judge's expected targets work with the loss of their task (so the contract is self-consistent)?"""
    for task, y, _ in nn_observers.target_cases():
        if task in nn_observers.TASKS:
            output = torch.zeros(len(y), 4) if task == "multiclass" else torch.zeros(len(y), 1)
            nn_module.EXPECTED_LOSS[task]()(output, nn_module.expected_targets(y, task))
