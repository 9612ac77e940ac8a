from mutant_bank import Correct, Mutant

ASSIGNMENT = "05_training_loop"

TRAIN = 'def train_one_epoch(model, loader, criterion, optimizer, device="cpu"):\n'
EVALUATE = 'def evaluate(model, loader, criterion, device="cpu"):\n'

# Mistakes in train_one_epoch: cell source, the check's message fragment, the notebook's message fragment
# (the visible asserts run first, so a mistake they already catch shows their message).
TRAIN_MISTAKES = {
    "no_zero_grad": ("""
    model.train()
    losses = []
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
""", "never zeroed the gradients", "never zeroed the gradients"),
    "zero_grad_once_before_loop": ("""
    model.train()
    losses = []
    optimizer.zero_grad()
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
""", "the sum over this and earlier batches", "call optimizer.zero_grad() in every iteration"),
    "zero_grad_between_backward_and_step": ("""
    model.train()
    losses = []
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.zero_grad()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
""", "without gradients", "the weights did not change"),
    "no_train_mode": ("""
    losses = []
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
""", "model.train()", "call model.train() first"),
    "no_step": ("""
    model.train()
    losses = []
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        losses.append(loss.item())
    return sum(losses) / len(losses)
""", "never called optimizer.step()", "the weights did not change"),
    "no_backward": ("""
    model.train()
    losses = []
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
""", "loss.backward()", "the weights did not change"),
    "step_outside_loop": ("""
    model.train()
    losses = []
    optimizer.zero_grad()
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        loss = criterion(model(X), y)
        loss.backward()
        losses.append(loss.item())
    optimizer.step()
    return sum(losses) / len(losses)
""", "called optimizer.step() the wrong number of times", "called optimizer.step() the wrong number of times"),
    "returns_last_batch_loss": ("""
    model.train()
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
    return loss.item()
""", "last batch", "last batch"),
    "returns_sum": ("""
    model.train()
    total = 0.0
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total
""", "sum of the batch losses", "between 0.1 and 1"),
    "returns_tensor_with_graph": ("""
    model.train()
    losses = []
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss)
    return sum(losses) / len(losses)
""", "holds the computation graph", "expected a Python float"),
    "ignores_device": ("""
    model.train()
    losses = []
    for X, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
""", "did not move every batch to device", "did not move every batch to device"),
    "moves_only_X": ("""
    model.train()
    losses = []
    for X, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(X.to(device)), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
""", "did not move every batch to device", "did not move every batch to device"),
    "no_grad_around_forward": ("""
    model.train()
    losses = []
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        with torch.no_grad():
            y_hat = model(X)
        loss = criterion(y_hat, y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
""", "does not require grad", "does not require grad"),
    "hard_coded_bce_loss": ("""
    model.train()
    losses = []
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = nn.BCEWithLogitsLoss()(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
""", "use the criterion you are given", "use the criterion you are given"),
    "uses_global_optimizer": ("""
def train_one_epoch(model, loader, criterion, opt, device="cpu"):
    model.train()
    losses = []
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
""", "never called optimizer.step()", "never called optimizer.step()"),
    "two_forward_passes": ("""
    model.train()
    losses = []
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(criterion(model(X), y).item())
    return sum(losses) / len(losses)
""", "wrong number of forward passes", "forward passes (one per batch)"),
}

EVALUATE_MISTAKES = {
    "evaluate_no_eval": ("""
    total, n = 0.0, 0
    with torch.no_grad():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            total += criterion(model(X), y).item() * len(X)
            n += len(X)
    return total / n
""", "ran the model in training mode", "call model.eval()"),
    "evaluate_builds_graph": ("""
    model.eval()
    total, n = 0.0, 0
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        total += criterion(model(X), y).item() * len(X)
        n += len(X)
    return total / n
""", "built a computation graph", "torch.no_grad()"),
    "evaluate_trains_with_new_optimizer": ("""
    model.eval()
    step = torch.optim.SGD(model.parameters(), lr=0.01)
    total, n = 0.0, 0
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        step.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        step.step()
        total += loss.item() * len(X)
        n += len(X)
    return total / n
""", "built a computation graph", "gradients were on"),
    "evaluate_steps_global_optimizer": ("""
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            total += criterion(model(X), y).item() * len(X)
            n += len(X)
    optimizer.step()  # "to update the scheduler" -- but this optimizer is the notebook's global one
    return total / n
""", "changed the notebook model's parameters", "evaluate changed the weights"),
    "evaluate_zeroes_weights_in_place": ("""
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            total += criterion(model(X), y).item() * len(X)
            n += len(X)
        for p in model.parameters():
            p.mul_(0.99)
    return total / n
""", "changed the model's parameters", "evaluate changed the weights"),
    "evaluate_returns_last": ("""
    model.eval()
    with torch.no_grad():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            loss = criterion(model(X), y).item()
    return loss
""", "last batch", "weight each batch's loss by its size"),
    "evaluate_returns_tensor": ("""
    model.eval()
    losses = []
    with torch.no_grad():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            losses.append(criterion(model(X), y) * len(X))
    return torch.stack(losses).sum() / len(loader.dataset)
""", "not a Python float", "expected a Python float"),
    "evaluate_ignores_device": ("""
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for X, y in loader:
            total += criterion(model(X), y).item() * len(X)
            n += len(X)
    return total / n
""", "did not move every batch to device", "did not move every batch to device"),
    # The training-curve convention is not the evaluation one: the plain mean moves with the batch size.
    "evaluate_plain_mean_of_batches": ("""
    model.eval()
    losses = []
    with torch.no_grad():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            losses.append(criterion(model(X), y).item())
    return sum(losses) / len(losses)
""", "evaluate must return the mean per sample", "weight each batch's loss by its size"),
    "evaluate_divides_by_batches": ("""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            total += criterion(model(X), y).item() * len(X)
    return total / len(loader)
""", "divide by the number of samples", "weight each batch's loss by its size"),
}

CORRECT_TRAIN = {
    # The mean per sample, as Keras and Lightning report an epoch: the text accepts it too.
    "weighted_by_batch_size": """
    model.train()
    total, count = 0.0, 0
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(X)
        count += len(X)
    return total / count
""",
    "zero_grad_after_step": """
    model.train()
    losses = []
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return sum(losses) / len(losses)
""",
    "model_zero_grad": """
    model.train()
    losses = []
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        model.zero_grad()
        y_hat = model(X)
        loss = criterion(y_hat, y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(sum(losses) / len(losses))
""",
    "set_to_none_and_tensor_mean": """
    model.train()
    losses = []
    for X, y in loader:
        X = X.to(device)
        y = y.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return torch.tensor(losses).mean().item()
""",
    "running_total_with_enumerate": """
    model.train()
    total = 0.0
    for batch, (X, y) in enumerate(loader, start=1):
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        total += loss.detach().item()
    return total / batch
""",
    "numpy_mean_as_float": """
    import numpy as np
    model.to(device)
    model.train()
    losses = []
    for X, y in loader:
        X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))
""",
}

CORRECT_EVALUATE = {
    "evaluate_inference_mode": """
    model.eval()
    total, n = 0.0, 0
    with torch.inference_mode():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            total += criterion(model(X), y).item() * X.shape[0]
            n += X.shape[0]
    return total / n
""",
    "evaluate_no_grad_decorator_and_dataset_len": """
    @torch.no_grad()
    def run():
        model.eval()
        return [criterion(model(X.to(device)), y.to(device)).item() * len(y) for X, y in loader]
    return sum(run()) / len(loader.dataset)
""",
    "evaluate_restores_train_mode": """
    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            total += criterion(model(X), y).item() * len(y)
            n += len(y)
    model.train(was_training)
    return total / n
""",
    # One loss over every sample at once: the mean per sample by construction.
    "evaluate_concatenates_outputs": """
    model.eval()
    outputs, targets = [], []
    with torch.no_grad():
        for X, y in loader:
            outputs.append(model(X.to(device)))
            targets.append(y.to(device))
        return criterion(torch.cat(outputs), torch.cat(targets)).item()
""",
    "evaluate_weights_as_fractions": """
    model.eval()
    n = len(loader.dataset)
    mean = 0.0
    with torch.no_grad():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            mean += criterion(model(X), y).item() * len(X) / n
    return float(mean)
""",
}

def source(prefix: str, body: str) -> str:
    """A whole answer cell: the given signature and the body, or the body alone when it has its own def."""
    return body.lstrip("\n") if body.lstrip().startswith("def ") else prefix + body


# Mistakes that also lose the points of Part C (train and evaluate alternated), with that cell's message.
ALSO_LOSES = {
    "no_train_mode": {"test_fit": "train_one_epoch ran the model in eval mode"},
    "evaluate_no_eval": {"test_fit": "evaluate ran the model in training mode"},
    "returns_last_batch_loss": {"test_fit": "the training loss (train_one_epoch) differs"},
    "evaluate_plain_mean_of_batches": {"test_fit": "evaluate must return the mean per sample"},
}

MUTANTS = [
    *[
        Mutant(
            name=name,
            cells={"train_one_epoch": source(TRAIN, body)},
            loses={"test_train_one_epoch": notebook, **ALSO_LOSES.get(name, {})},
        )
        for name, (body, _check, notebook) in TRAIN_MISTAKES.items()
    ],
    *[
        Mutant(
            name=name,
            cells={"evaluate": source(EVALUATE, body)},
            loses={"test_evaluate": notebook, **ALSO_LOSES.get(name, {})},
        )
        for name, (body, _check, notebook) in EVALUATE_MISTAKES.items()
    ],
]

CORRECT = [
    *[Correct(name=name, cells={"train_one_epoch": source(TRAIN, body)}) for name, body in CORRECT_TRAIN.items()],
    *[Correct(name=name, cells={"evaluate": source(EVALUATE, body)}) for name, body in CORRECT_EVALUATE.items()],
]

# Part D, the repaired loop: each mistake leaves one of the locked cell's four bugs (or a near miss) in place.
FIXED_FIT = 'def fixed_fit(model, train_loader, val_loader, criterion, optimizer, epochs, device="cpu"):\n'
_FIXED_BODY = """
    history = []
    for epoch in range(epochs):
        model.train()
        losses = []
        for X, y in train_loader:
            X, y = X.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(X), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        total, n = 0.0, 0
        with torch.no_grad():
            for X_val, y_val in val_loader:
                X_val, y_val = X_val.to(device), y_val.to(device)
                total += criterion(model(X_val), y_val).item() * len(X_val)
                n += len(X_val)
        history.append((sum(losses) / len(losses), total / n))
    return history
"""


def _fixed(*replacements) -> str:
    """The inline repaired loop with (old, new) text replacements."""
    body = _FIXED_BODY
    for old, new in replacements:
        assert old in body, old
        body = body.replace(old, new)
    return body


FIXED_FIT_MISTAKES = {
    "reads_training_batch": (_fixed(("criterion(model(X_val), y_val).item() * len(X_val)",
                                     "criterion(model(X), y).item() * len(X)")),
                             "never saw a validation batch", "validate on the validation batches"),
    "no_zero_grad": (_fixed(("            optimizer.zero_grad()\n", "")), "never zeroed", "never zeroed"),
    "validation_in_train_mode": (_fixed(("        model.eval()\n", "")), "ran in training mode",
                                 "validate on the validation batches, in evaluation mode"),
    "validation_builds_graph": (_fixed(("        with torch.no_grad():\n            for",
                                        "        if True:\n            for")),
                                "built a computation graph in the validation loop",
                                "built a computation graph in the validation loop"),
    # The attack of issue 17: validate with gradients on while torch.is_grad_enabled says they are off.
    "validation_forges_grad_mode": (_fixed(("        with torch.no_grad():\n            for",
                                            "        real = torch.is_grad_enabled\n"
                                            "        torch.is_grad_enabled = lambda: False\n"
                                            "        if True:\n            for"),
                                           ("        history.append(", "        torch.is_grad_enabled = real\n"
                                                                     "        history.append(")),
                                    "built a computation graph in the validation loop",
                                    "built a computation graph in the validation loop"),
    "losses_kept_as_tensors": (_fixed(("losses.append(loss.item())", "losses.append(loss)")),
                               "holds the computation graph", "expected Python floats"),
    "validation_plain_mean": (_fixed(("total += criterion(model(X_val), y_val).item() * len(X_val)",
                                      "total += criterion(model(X_val), y_val).item()"),
                                     ("n += len(X_val)", "n += 1")),
                              "evaluate must return the mean per sample", "as the mean loss per sample"),
    "validates_before_training": (
        "    history = []\n    for epoch in range(epochs):\n"
        "        val_loss = evaluate(model, val_loader, criterion, device)\n"
        "        history.append((train_one_epoch(model, train_loader, criterion, optimizer, device), val_loss))\n"
        "    return history\n",
        "the validation loss of epoch 1 differs", "validate on the validation batches"),
    "history_of_last_epoch_only": (
        "    for epoch in range(epochs):\n"
        "        history = [(train_one_epoch(model, train_loader, criterion, optimizer, device),\n"
        "                    evaluate(model, val_loader, criterion, device))]\n"
        "    return history\n",
        "history of the wrong length", "expected a list of 3"),
}

CORRECT_FIXED_FIT = {
    "inline_loop": _FIXED_BODY,
    # An extra validation pass (a baseline before training) changes nothing.
    "baseline_first": """
    print("before training, validation loss", evaluate(model, val_loader, criterion, device))
    return [(train_one_epoch(model, train_loader, criterion, optimizer, device),
             evaluate(model, val_loader, criterion, device)) for _ in range(epochs)]
""",
    "grads_set_to_none_by_hand_and_inference_mode": _fixed(
        ("            optimizer.zero_grad()\n",
         "            for p in model.parameters():\n                p.grad = None\n"),
        ("with torch.no_grad()", "with torch.inference_mode()")),
    "weighted_train_loss_and_lists": _fixed(
        ("losses.append(loss.item())", "losses.append(loss.item() * len(X) / len(train_loader.dataset))"),
        ("sum(losses) / len(losses)", "sum(losses)"),
        ("history.append((sum(losses), total / n))", "history.append([sum(losses), total / n])")),
}

# Part E, early stopping: the reference with one rule changed.
STOPPING = ('def fit_with_early_stopping(model, train_loader, val_loader, criterion, optimizer, max_epochs, patience,\n'
            '                            device="cpu"):\n')
_STOPPING_BODY = """
    import copy

    history, best_loss, best_state, waited = [], float("inf"), None, 0
    for epoch in range(max_epochs):
        train_loss = train_one_epoch(model, train_loader, criterion, optimizer, device)
        val_loss = evaluate(model, val_loader, criterion, device)
        history.append((train_loss, val_loss))
        if val_loss < best_loss:
            best_loss, best_state, waited = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= patience:
                break
    model.load_state_dict(best_state)
    return best_state, history
"""


def _stopping(*replacements) -> str:
    body = _STOPPING_BODY
    for old, new in replacements:
        assert old in body, old
        body = body.replace(old, new)
    return body


STOPPING_MISTAKES = {
    "equal_counts_as_improvement": (_stopping(("val_loss < best_loss", "val_loss <= best_loss")),
                                    "not <=", "not <="),
    "count_not_reset": (_stopping(("copy.deepcopy(model.state_dict()), 0",
                                   "copy.deepcopy(model.state_dict()), waited")),
                        "reset the count", "should stop 2 epochs after the best one"),
    "stops_one_epoch_late": (_stopping(("waited >= patience", "waited > patience")), "not one later",
                             "should stop 2 epochs after the best one"),
    "stops_one_epoch_early": (_stopping(("waited >= patience", "waited >= patience - 1")), "not one fewer",
                              "should stop 2 epochs after the best one"),
    "state_dict_not_copied": (_stopping(("copy.deepcopy(model.state_dict())", "model.state_dict()")),
                              "changes when the model trains on", "reproduce the best validation loss"),
    "shallow_dict_copy": (_stopping(("copy.deepcopy(model.state_dict())", "dict(model.state_dict())")),
                          "changes when the model trains on", "reproduce the best validation loss"),
    "best_weights_not_loaded": (_stopping(("    model.load_state_dict(best_state)\n", "")),
                                "left the model with other weights than best_state",
                                "should hold best_state's weights"),
    "ignores_max_epochs": (_stopping(("for epoch in range(max_epochs):", "for epoch in range(10 ** 6):")),
                           "ran the wrong number of epochs", "ran the wrong number of epochs"),
    "best_by_training_loss": (_stopping(("if val_loss < best_loss:", "if train_loss < best_loss:"),
                                        ("best_loss, best_state, waited = val_loss", "best_loss, best_state, waited = "
                                                                                     "train_loss")),
                              "ran the wrong number of epochs", "should stop 2 epochs after the best one"),
    "returns_history_first": (_stopping(("return best_state, history", "return history, best_state")),
                              "should return a list with one (train_loss, val_loss) pair per epoch",
                              "too many values to unpack"),
}

CORRECT_STOPPING = {
    "clone_every_tensor_and_epoch_counter": """
    history, best_loss, best_epoch, best_state = [], None, 0, None
    for epoch in range(1, max_epochs + 1):
        history.append((train_one_epoch(model, train_loader, criterion, optimizer, device),
                        evaluate(model, val_loader, criterion, device)))
        if best_loss is None or history[-1][1] < best_loss:
            best_loss, best_epoch = history[-1][1], epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    return best_state, history
""",
    "inline_loop_and_restore_a_copy": """
    import copy
    history, best, best_state, bad = [], float("inf"), None, 0
    epoch = 0
    while epoch < max_epochs and bad < patience:
        epoch += 1
        model.train()
        losses = []
        for X, y in train_loader:
            X, y = X.to(device), y.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(X), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        with torch.inference_mode():
            pairs = [(criterion(model(X.to(device)), y.to(device)).item(), len(X)) for X, y in val_loader]
        val_loss = sum(l * n for l, n in pairs) / sum(n for _, n in pairs)
        history.append((sum(losses) / len(losses), val_loss))
        if val_loss < best:
            best, bad, best_state = val_loss, 0, copy.deepcopy(model.state_dict())
        else:
            bad += 1
    model.load_state_dict(copy.deepcopy(best_state))
    return best_state, history
""",
}

MUTANTS += [
    *[Mutant(name=f"fixed_fit_{name}", cells={"fixed_fit": source(FIXED_FIT, body)},
             loses={"test_fixed_fit": notebook}) for name, (body, _check, notebook) in FIXED_FIT_MISTAKES.items()],
    *[Mutant(name=f"stopping_{name}", cells={"fit_with_early_stopping": source(STOPPING, body)},
             loses={"test_early_stopping": notebook}) for name, (body, _check, notebook) in STOPPING_MISTAKES.items()],
]
CORRECT += [
    *[Correct(name=f"fixed_fit_{name}", cells={"fixed_fit": source(FIXED_FIT, body)})
      for name, body in CORRECT_FIXED_FIT.items()],
    *[Correct(name=f"stopping_{name}", cells={"fit_with_early_stopping": source(STOPPING, body)})
      for name, body in CORRECT_STOPPING.items()],
]
