"""Do the hidden checks of exercise 05 accept correct training loops and explain each wrong one?"""

import inspect
import json

import numpy as np
import pytest
import torch
from check_helpers import fails_with, observed
from mutant_bank.bank_05_training_loop import (
    CORRECT_EVALUATE,
    CORRECT_FIXED_FIT,
    CORRECT_STOPPING,
    CORRECT_TRAIN,
    EVALUATE,
    EVALUATE_MISTAKES,
    FIXED_FIT,
    FIXED_FIT_MISTAKES,
    STOPPING,
    STOPPING_MISTAKES,
    TRAIN,
    TRAIN_MISTAKES,
    source,
)
from mutant_bank.grading import reference_answers
from torch import nn

from grader import observation
from grader.checks import training
from grader.checks.report import CheckFailed
from grader.observation import as_json

REFERENCE_TRAIN = reference_answers("05_training_loop")["train_one_epoch"]
REFERENCE_EVALUATE = reference_answers("05_training_loop")["evaluate"]

def _notebook():
    """What the notebook's globals hold when the answer cells run: a trained model, its optimizer, a loader."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    X = torch.randn(40, 2, generator=torch.Generator().manual_seed(0))
    y = (X[:, :1] > 0).float()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=16)
    criterion = nn.BCEWithLogitsLoss()
    criterion(model(X), y).backward()  # leftover gradients, as after a training epoch
    optimizer.step()
    return {"torch": torch, "nn": nn, "np": np, "model": model, "optimizer": optimizer, "val_loader": loader,
            "criterion": criterion}


def _function(cell, name):
    namespace = _notebook()
    exec(cell, namespace)
    return namespace[name], namespace


def _fails_with(check, *args, fragment):
    with pytest.raises(CheckFailed) as failure:
        check(*args)
    assert fragment in str(failure.value), f"message lacks {fragment!r}:\n{failure.value}"
    return str(failure.value)


@pytest.mark.parametrize("name", ["reference", *CORRECT_TRAIN])
def test_train_check_accepts_correct_variants(name):
    """Is every correct train_one_epoch accepted (zero_grad after step, model.zero_grad(), set_to_none...)?"""
    cell = REFERENCE_TRAIN if name == "reference" else source(TRAIN, CORRECT_TRAIN[name])
    train_one_epoch, _ = _function(cell, "train_one_epoch")
    training.check_train_one_epoch(train_one_epoch)
    training.check_fit(train_one_epoch, _function(REFERENCE_EVALUATE, "evaluate")[0])


@pytest.mark.parametrize("name", ["reference", *CORRECT_EVALUATE])
def test_evaluate_check_accepts_correct_variants(name):
    """Is every correct evaluate accepted (inference_mode, a no_grad decorator, restoring the mode)?"""
    cell = REFERENCE_EVALUATE if name == "reference" else source(EVALUATE, CORRECT_EVALUATE[name])
    evaluate, namespace = _function(cell, "evaluate")
    training.check_evaluate(evaluate, namespace["model"], namespace["val_loader"], namespace["criterion"])
    training.check_fit(_function(REFERENCE_TRAIN, "train_one_epoch")[0], evaluate)


@pytest.mark.parametrize("name", sorted(TRAIN_MISTAKES))
def test_train_check_explains_each_mistake(name):
    """Does each wrong train_one_epoch fail with a message naming the mistake?"""
    body, fragment, _notebook_fragment = TRAIN_MISTAKES[name]
    train_one_epoch, _ = _function(source(TRAIN, body), "train_one_epoch")
    _fails_with(training.check_train_one_epoch, train_one_epoch, fragment=fragment)


@pytest.mark.parametrize("name", sorted(EVALUATE_MISTAKES))
def test_evaluate_check_explains_each_mistake(name):
    """Does each wrong evaluate fail with a message naming the mistake (the notebook's model included)?"""
    body, fragment, _notebook_fragment = EVALUATE_MISTAKES[name]
    evaluate, namespace = _function(source(EVALUATE, body), "evaluate")
    _fails_with(training.check_evaluate, evaluate, namespace["model"], namespace["val_loader"], namespace["criterion"],
                fragment=fragment)


@pytest.mark.parametrize("name, fragment", [
    ("no_train_mode", "train_one_epoch ran the model in eval mode"),
    ("returns_last_batch_loss", "the training loss (train_one_epoch) differs"),
    ("returns_tensor_with_graph", "holds the computation graph"),
    ("evaluate_no_eval", "evaluate ran the model in training mode"),
    ("evaluate_zeroes_weights_in_place", "the training loss (train_one_epoch) differs"),
    ("evaluate_returns_last", "the validation loss (evaluate) differs"),
    ("evaluate_plain_mean_of_batches", "evaluate must return the mean per sample"),
])
def test_fit_check_catches_mistakes_that_show_across_epochs(name, fragment):
    """Does alternating train and evaluate expose a loop left in eval mode, or a wrong loss?"""
    train_cell, evaluate_cell = REFERENCE_TRAIN, REFERENCE_EVALUATE
    if name in TRAIN_MISTAKES:
        train_cell = source(TRAIN, TRAIN_MISTAKES[name][0])
    else:
        evaluate_cell = source(EVALUATE, EVALUATE_MISTAKES[name][0])
    _fails_with(training.check_fit, _function(train_cell, "train_one_epoch")[0],
                _function(evaluate_cell, "evaluate")[0], fragment=fragment)


# The loss convention (lecture 05, sections 3 and 4) --------------------------------------------------


def _loss_conventions(kind_or_loader):
    """(plain mean of batch losses, mean per sample) of a correct evaluation pass."""
    if isinstance(kind_or_loader, str):
        model, loader, criterion = training.used_model(kind_or_loader), *training.config(kind_or_loader)[1:3]
    else:
        model, loader, criterion = training.config(training.FIT_KIND)[0], kind_or_loader, training.config(
            training.FIT_KIND)[2]
    pairs = training._reference_evaluate(model, loader, criterion)
    return training._plain_mean(pairs), training._per_sample_mean(pairs)


@pytest.mark.parametrize("case", [*training.EVALUATE_RUNS, "fit validation"])
def test_every_grader_loader_tells_the_two_means_apart(case):
    """Does each loader the checks evaluate on have a smaller last batch, so the plain mean of batch losses and the
    mean per sample differ by far more than the checks' tolerance?"""
    loader = training.fit_validation(training.config(training.FIT_KIND)[1]) if case == "fit validation" else case
    plain, per_sample = _loss_conventions(loader)
    assert not training._close(plain, per_sample), (case, plain, per_sample)
    assert abs(plain - per_sample) > 10 * 1e-4 * per_sample, (case, plain, per_sample)  # ten times the tolerance


def test_plain_mean_in_evaluate_is_explained():
    """Does an evaluate that returns the plain mean of the batch losses fail with the reason, not just 'wrong'?"""
    evaluate, namespace = _function(source(EVALUATE, EVALUATE_MISTAKES["evaluate_plain_mean_of_batches"][0]),
                                    "evaluate")
    message = _fails_with(training.check_evaluate, evaluate, namespace["model"], namespace["val_loader"],
                          namespace["criterion"], fragment="mean per sample")
    assert "changes with the batch size" in message and "loss.item() * len(X)" in message, message
    train_one_epoch = _function(REFERENCE_TRAIN, "train_one_epoch")[0]
    _fails_with(training.check_fit, train_one_epoch, evaluate, fragment="changes with the batch size")


def test_both_training_conventions_pass_and_the_text_says_so():
    """Are the plain and the per-sample training means both accepted, and does the exercise text say both are?"""
    for body in (None, CORRECT_TRAIN["weighted_by_batch_size"]):
        train_one_epoch = _function(REFERENCE_TRAIN if body is None else source(TRAIN, body), "train_one_epoch")[0]
        training.check_train_one_epoch(train_one_epoch)
        training.check_fit(train_one_epoch, _function(REFERENCE_EVALUATE, "evaluate")[0])
    from grader import course, notebooks

    nb = notebooks.read(course.SOLUTIONS / "05_training_loop" / "05_training_loop.ipynb")
    text = {cell.get("id"): cell.source for cell in nb.cells}
    assert "also accepted" in text["part-a"] and "weighted by batch size" in text["part-a"]
    assert "mean loss per sample" in text["part-b"] and "Lecture 05's version multiplies" not in text["part-a"]


def test_spies_leave_no_trace():
    """Do the checks give back the thread count and the global random state, and leave the model as it was?"""
    train_one_epoch, namespace = _function(REFERENCE_TRAIN, "train_one_epoch")
    evaluate, _ = _function(REFERENCE_EVALUATE, "evaluate")
    threads, state = torch.get_num_threads(), torch.get_rng_state()
    training.check_train_one_epoch(train_one_epoch)
    training.check_evaluate(evaluate, namespace["model"], namespace["val_loader"], namespace["criterion"])
    training.check_fit(train_one_epoch, evaluate)
    assert torch.get_num_threads() == threads, "a check changed torch's number of threads"
    assert torch.equal(torch.get_rng_state(), state), "a check changed the global random state"
    model = namespace["model"]
    assert type(model) is nn.Sequential and not model._forward_hooks


def test_not_implemented_passes_through_unchanged():
    """Does an unsolved stub still raise NotImplementedError, not a check failure?"""
    def stub(*args, **kwargs):
        raise NotImplementedError("Replace this line")

    for check, args in [(training.check_train_one_epoch, (stub,)), (training.check_evaluate, (stub,)),
                        (training.check_fit, (stub, stub))]:
        with pytest.raises(NotImplementedError):
            check(*args)


@pytest.mark.parametrize("seed", range(20))
def test_reference_passes_under_any_global_seed(seed):
    """Does the reference pass whatever the global random state is?"""
    train_one_epoch, _ = _function(REFERENCE_TRAIN, "train_one_epoch")
    evaluate, namespace = _function(REFERENCE_EVALUATE, "evaluate")
    torch.manual_seed(seed)
    training.check_train_one_epoch(train_one_epoch)
    torch.manual_seed(seed)
    training.check_evaluate(evaluate, namespace["model"], namespace["val_loader"], namespace["criterion"])
    torch.manual_seed(seed)
    training.check_fit(train_one_epoch, evaluate)


# Observer and judge apart: the judge trusts only what it recomputes --------------------------------

# A correct run's spy records can be pasted into a wrong run's observation; these mistakes then show
# only in the spies, which the judge cannot recompute: the device (no GPU to land on) and, for
# evaluate, the grad mode or a notebook-global optimizer (the grader's own models are not touched).
SPY_ONLY = {"ignores_device", "moves_only_X", "evaluate_ignores_device", "evaluate_builds_graph",
            "evaluate_steps_global_optimizer"}


def _judge_fails(check, obs, fragment):
    fails_with(check.judge, obs, fragment)


def _reference_functions():
    return _function(REFERENCE_TRAIN, "train_one_epoch")[0], _function(REFERENCE_EVALUATE, "evaluate")[0]


def _nan_train(model, loader, criterion, optimizer, device="cpu"):
    return float("nan")


@pytest.mark.parametrize("name", ["reference", "returns_tensor_with_graph", "no_step", "nan"])
def test_observations_are_strict_json(name):
    """Does every observer's record survive strict JSON (no NaN, no objects), right or wrong answer alike?"""
    train, evaluate = _reference_functions()
    if name == "nan":
        train = _nan_train
    elif name != "reference":
        train = _function(source(TRAIN, TRAIN_MISTAKES[name][0]), "train_one_epoch")[0]
    namespace = _notebook()
    for check, args in [(training.check_train_one_epoch, (train,)), (training.check_fit, (train, evaluate)),
                        (training.check_evaluate, (evaluate, namespace["model"], namespace["val_loader"],
                                                   namespace["criterion"]))]:
        text = as_json(check.observe(*args))
        assert isinstance(json.loads(text), dict), f"{check.__name__}'s observation is not a JSON object"


@pytest.mark.parametrize("name", sorted(set(TRAIN_MISTAKES) - SPY_ONLY))
def test_train_judge_rejects_a_wrong_run_with_a_correct_runs_spies(name):
    """Pasting a correct run's spy records (modes, steps, zero_grads, gradients) over a wrong run's still fails."""
    forged = observed(training.check_train_one_epoch,
                       _function(source(TRAIN, TRAIN_MISTAKES[name][0]), "train_one_epoch")[0])
    honest = observed(training.check_train_one_epoch, _reference_functions()[0])
    for kind, run in forged["runs"].items():
        run["log"], run["moves"] = honest["runs"][kind]["log"], honest["runs"][kind]["moves"]
    with pytest.raises(CheckFailed, match="returned|parameters|raised"):
        training.judge_train_one_epoch(forged)


@pytest.mark.parametrize("name", sorted(set(EVALUATE_MISTAKES) - SPY_ONLY))
def test_evaluate_judge_rejects_a_wrong_run_with_a_correct_runs_spies(name):
    """Pasting a correct evaluate's spy records (eval mode, no grad) over a wrong run's still fails."""
    evaluate = _function(source(EVALUATE, EVALUATE_MISTAKES[name][0]), "evaluate")[0]
    forged = observed(training.check_evaluate, evaluate)
    honest = observed(training.check_evaluate, _reference_functions()[1])
    for kind, run in forged["runs"].items():
        run["log"], run["moves"] = honest["runs"][kind]["log"], honest["runs"][kind]["moves"]
    with pytest.raises(CheckFailed, match="returned|parameters|gradients|raised"):
        training.judge_evaluate(forged)


def test_fit_judge_rejects_modes_pasted_over_a_loop_left_in_eval_mode():
    """A loop without model.train() whose recorded modes claim training still fails on the losses."""
    forged = observed(training.check_fit, _function(source(TRAIN, TRAIN_MISTAKES["no_train_mode"][0]),
                                                     "train_one_epoch")[0], _reference_functions()[1])
    for record in forged["epochs"]:
        record["train_modes"] = [[True] * len(modes) for modes in record["train_modes"]]
    _judge_fails(training.check_fit, forged, "the training loss (train_one_epoch) differs")


def test_judges_reject_plausible_forged_values():
    """Do the judges recompute the weights and the mean loss instead of believing the record?"""
    train, evaluate = _reference_functions()
    obs = observed(training.check_train_one_epoch, train)
    run = obs["runs"]["mlp_dropout_sgd"]
    run["after"] = run["initial"]  # "trained", but the weights never moved
    _judge_fails(training.check_train_one_epoch, obs, "left the parameters different from one correct epoch")

    obs = observed(training.check_train_one_epoch, train)
    obs["runs"]["deep_dropout_adam"]["result"] = {"value": 0.55}  # a plausible loss, but not this epoch's
    _judge_fails(training.check_train_one_epoch, obs, "returned the wrong loss")

    obs = observed(training.check_train_one_epoch, train)
    state = observation.decode(obs["runs"]["linear_mse_adam"]["initial"])
    state["bias"] = state["bias"] + 1  # the record claims another starting point, to match another ending
    obs["runs"]["linear_mse_adam"]["initial"] = observation.encode(state)
    _judge_fails(training.check_train_one_epoch, obs, "did not get the grader's model")

    obs = observed(training.check_evaluate, evaluate)
    run = obs["runs"]["deep_dropout_adam"]
    state = observation.decode(run["after"])
    state["5.bias"] = state["5.bias"] * 0.99
    run["after"] = observation.encode(state)
    _judge_fails(training.check_evaluate, obs, "changed the model's parameters")

    obs = observed(training.check_evaluate, evaluate)
    obs["runs"]["mlp_dropout_sgd"]["result"] = {"value": 0.3}
    _judge_fails(training.check_evaluate, obs, "returned the wrong loss")

    namespace = _notebook()
    obs = observed(training.check_evaluate, evaluate, namespace["model"], namespace["val_loader"],
                    namespace["criterion"])
    state = observation.decode(obs["notebook"]["after"])
    state["0.bias"] = state["0.bias"] + 0.01
    obs["notebook"]["after"] = observation.encode(state)
    _judge_fails(training.check_evaluate, obs, "changed the notebook model's parameters")

    obs = observed(training.check_fit, train, evaluate)
    obs["epochs"][2]["val"] = {"value": 0.2}
    _judge_fails(training.check_fit, obs, "the validation loss (evaluate) differs")

    obs = observed(training.check_fit, train, evaluate)
    obs["after"] = observed(training.check_train_one_epoch, train)["runs"]["deep_dropout_adam"]["after"]
    _judge_fails(training.check_fit, obs, "the weights differ from a correct loop's")


@pytest.mark.parametrize("check, damage", [
    (training.check_train_one_epoch, lambda obs: obs.pop("runs")),
    (training.check_train_one_epoch, lambda obs: obs["runs"]["linear_mse_adam"]["log"].append({"event": "jump"})),
    (training.check_train_one_epoch, lambda obs: obs["runs"]["mlp_dropout_sgd"].update(after={"__dict__": {}})),
    (training.check_evaluate, lambda obs: obs["runs"]["deep_dropout_adam"].update(grads=[])),
    (training.check_evaluate, lambda obs: obs["runs"]["mlp_dropout_sgd"]["log"][0].update(grad="no")),
    (training.check_train_one_epoch, lambda obs: obs["runs"]["linear_mse_adam"].update(result="0.4")),
    (training.check_evaluate, lambda obs: obs["runs"]["linear_mse_adam"].update(result={"value": {"__tensor__": {}}})),
    (training.check_fit, lambda obs: obs["epochs"][1].update(val={"raised": ["ValueError"]})),
    (training.check_fit, lambda obs: obs["epochs"].pop()),
])
def test_judges_reject_malformed_observations(check, damage):
    """Does a record that is incomplete or of the wrong shape fail the check with a message, not crash the judge?"""
    train, evaluate = _reference_functions()
    obs = observed(check, *((train, evaluate) if check is training.check_fit else
                             (train,) if check is training.check_train_one_epoch else (evaluate,)))
    damage(obs)
    _judge_fails(check, obs, "could not read")


def test_a_float_impostor_is_not_a_float():
    """Does a returned object that only pretends to be a number (its == always True) fail the type check?"""
    class Anything:
        def __eq__(self, other):
            return True

    reference = _reference_functions()[0]

    def train_one_epoch(model, loader, criterion, optimizer, device="cpu"):
        reference(model, loader, criterion, optimizer, device)
        return Anything()

    _fails_with(training.check_train_one_epoch, train_one_epoch, fragment="returned a Anything, not a Python float")


def test_observer_holds_no_reference():
    """Does the grading kernel's module hold only spies and inputs: no expected values, no judging code?"""
    import grader.observers.training as observer

    text = inspect.getsource(observer)
    for banned in ("grader.checks", "CheckFailed", "expect(", "allclose", "isclose", "backward()"):
        assert banned not in text, f"the observer module contains {banned!r}"


def test_gpu_records_are_judged():
    """Without a GPU here, do the judges still read a GPU run's record: batches left on the CPU fail, a float passes?"""
    train, evaluate = _reference_functions()
    obs = observed(training.check_train_one_epoch, train)
    obs["gpu"] = {"result": {"value": 0.61}, "devices": ["cuda:0"] * 4}
    training.judge_train_one_epoch(obs)
    obs["gpu"]["devices"][2] = "cpu"
    _judge_fails(training.check_train_one_epoch, obs, "did not move the batches to the GPU")
    obs = observed(training.check_evaluate, evaluate)
    obs["gpu"] = {"result": observation.capture(lambda: torch.tensor(0.5))}
    _judge_fails(training.check_evaluate, obs, "returned a torch.Tensor")


# fixed_fit and fit_with_early_stopping -----------------------------------------------------------

REFERENCE_FIXED_FIT = reference_answers("05_training_loop")["fixed_fit"]
REFERENCE_STOPPING = reference_answers("05_training_loop")["fit_with_early_stopping"]


def _loop(cell, name):
    """A Part D or E answer, defined next to the reference train_one_epoch and evaluate it may call."""
    namespace = _notebook()
    exec(REFERENCE_TRAIN, namespace)
    exec(REFERENCE_EVALUATE, namespace)
    exec(cell, namespace)
    return namespace[name]


CORRECT_LOOPS = [
    *[(training.check_fixed_fit, "fixed_fit", name, cell)
      for name, cell in [("reference", REFERENCE_FIXED_FIT),
                         *[(n, source(FIXED_FIT, b)) for n, b in CORRECT_FIXED_FIT.items()]]],
    *[(training.check_fit_with_early_stopping, "fit_with_early_stopping", name, cell)
      for name, cell in [("reference", REFERENCE_STOPPING),
                         *[(n, source(STOPPING, b)) for n, b in CORRECT_STOPPING.items()]]],
]


@pytest.mark.parametrize("check, function, name, cell", CORRECT_LOOPS, ids=[f"{f}-{n}" for _, f, n, _ in CORRECT_LOOPS])
def test_new_loop_checks_accept_correct_variants(check, function, name, cell):
    """Is every correct repair (calling Parts A and B, inline, grads set to None by hand, a baseline pass) and every
    correct early stopping (cloned tensors, an epoch counter, a while loop) accepted?"""
    check(_loop(cell, function))


@pytest.mark.parametrize("name", sorted(FIXED_FIT_MISTAKES))
def test_fixed_fit_check_names_the_bug_left(name):
    """Does a loop that keeps one of the four bugs fail with a message naming that bug?"""
    body, fragment, _notebook_fragment = FIXED_FIT_MISTAKES[name]
    _fails_with(training.check_fixed_fit, _loop(source(FIXED_FIT, body), "fixed_fit"), fragment=fragment)


@pytest.mark.parametrize("name", sorted(STOPPING_MISTAKES))
def test_early_stopping_check_explains_each_mistake(name):
    """Does each wrong stopping rule, copy or restore fail with a message naming it?"""
    body, fragment, _notebook_fragment = STOPPING_MISTAKES[name]
    _fails_with(training.check_fit_with_early_stopping, _loop(source(STOPPING, body), "fit_with_early_stopping"),
                fragment=fragment)


@pytest.mark.parametrize("seed", range(20))
def test_new_loops_pass_under_any_global_seed(seed):
    """Do the reference repair and early stopping pass whatever the global random state is?"""
    torch.manual_seed(seed)
    training.check_fixed_fit(_loop(REFERENCE_FIXED_FIT, "fixed_fit"))
    torch.manual_seed(seed)
    training.check_fit_with_early_stopping(_loop(REFERENCE_STOPPING, "fit_with_early_stopping"))


def test_scripted_curve_tells_every_stopping_rule_apart():
    """On the scripted validation curve, does each wrong stopping rule stop at another epoch than the right one?"""
    curve = [t * t for t in training.SCRIPTS["scripted"]]
    lengths = [training._stops_after(curve, 2, **variant)
               for variant in ({}, {"strict": False}, {"reset": False}, {"extra": 1}, {"extra": -1})]
    assert len(set(lengths)) == len(lengths), lengths
    assert lengths[0] < len(curve) and curve[5] == min(curve[:6]), "the right rule must stop early, on a tie"
    improving = [t * t for t in training.SCRIPTS["improving"]]
    assert improving == sorted(improving, reverse=True) and len(set(improving)) == len(improving)


def test_grad_mode_record_survives_patched_torch():
    """A validation loop with gradients on is seen even when torch.is_grad_enabled, patched by the student's loop
    while it validates, says they are off (issue 17: the spies read torch's own function, kept before any student
    code ran, and whether each output requires grad)."""
    body = FIXED_FIT_MISTAKES["validation_forges_grad_mode"][0]
    assert "torch.is_grad_enabled = lambda: False" in body
    obs = observed(training.check_fixed_fit, _loop(source(FIXED_FIT, body), "fixed_fit"))
    assert torch.is_grad_enabled is torch._C.is_grad_enabled, "the loop should have put torch's function back"
    assert all(entry["grad"] and entry["graph"] for entry in obs["log"] if entry["event"] == "forward")
    _judge_fails(training.check_fixed_fit, obs, "built a computation graph in the validation loop")


def test_new_judges_reject_forged_records():
    """Records pasted from a correct run over a wrong one, or values made up, still fail: the judge recomputes."""
    right = observed(training.check_fixed_fit, _loop(REFERENCE_FIXED_FIT, "fixed_fit"))
    wrong = observed(training.check_fixed_fit,
                      _loop(source(FIXED_FIT, FIXED_FIT_MISTAKES["no_zero_grad"][0]), "fixed_fit"))
    wrong["result"] = right["result"]  # the right history, but the weights of a loop that never zeroes
    _judge_fails(training.check_fixed_fit, wrong, "the weights differ from a correct loop's")
    right["result"] = {"value": observation.encode([(0.5, 0.4)] * training.FIXED_FIT_EPOCHS)}
    _judge_fails(training.check_fixed_fit, right, "differs from a correct loop's")

    stopping = _loop(source(STOPPING, STOPPING_MISTAKES["state_dict_not_copied"][0]), "fit_with_early_stopping")
    obs = observed(training.check_fit_with_early_stopping, stopping)
    for run in obs["runs"].values():
        run["best_later"] = run["best"]  # claims the copy did not change
    _judge_fails(training.check_fit_with_early_stopping, obs, "returned the state of the wrong epoch")


def _first_forward(obs):
    return next(entry for entry in obs["log"] if entry["event"] == "forward")


@pytest.mark.parametrize("damage", [
    lambda obs: obs.pop("log"),
    lambda obs: _first_forward(obs).update(X={"__tensor__": {}}),
    lambda obs: _first_forward(obs).update(graph="no"),
    lambda obs: obs.update(moves="54"),
])
def test_fixed_fit_judge_rejects_malformed_observations(damage):
    """Does an incomplete or ill-typed fixed_fit record fail the check with a message, not crash the judge?"""
    obs = observed(training.check_fixed_fit, _loop(REFERENCE_FIXED_FIT, "fixed_fit"))
    damage(obs)
    _judge_fails(training.check_fixed_fit, obs, "could not read")


def test_new_checks_leave_no_trace():
    """Do the new checks give back the thread count and the global random state?"""
    threads, state = torch.get_num_threads(), torch.get_rng_state()
    training.check_fixed_fit(_loop(REFERENCE_FIXED_FIT, "fixed_fit"))
    training.check_fit_with_early_stopping(_loop(REFERENCE_STOPPING, "fit_with_early_stopping"))
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), state)
