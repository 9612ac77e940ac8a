from mutant_bank import Correct, Mutant

ASSIGNMENT = "02_autograd"

MUTANTS = [
    Mutant(
        name="grad_of_marks_callers_x",
        cells={"grad_of": """
def grad_of(f, x):
    x.requires_grad_(True)
    f(x).backward()
    return x.grad
"""},
        loses={"test_grad_of": "changed the caller's"},
    ),
    Mutant(
        name="grad_of_returns_value",
        cells={"grad_of": """
def grad_of(f, x):
    x = x.detach().clone().requires_grad_(True)
    y = f(x)
    y.backward()
    return y.detach() * torch.ones_like(x)
"""},
        loses={"test_grad_of": "2x"},
    ),
    Mutant(
        name="grad_of_keeps_graph",
        cells={"grad_of": """
def grad_of(f, x):
    x = x.detach().requires_grad_(True)
    return torch.autograd.grad(f(x), x, create_graph=True)[0]
"""},
        loses={"test_grad_of": "still requires grad"},
    ),
    Mutant(
        name="grad_of_finite_difference",
        cells={"grad_of": """
def grad_of(f, x):
    h = 1e-3
    flat = x.detach().clone().reshape(-1)
    grads = torch.zeros_like(flat)
    for i in range(flat.numel()):
        step = torch.zeros_like(flat)
        step[i] = h
        grads[i] = (f((flat + step).reshape(x.shape)) - f((flat - step).reshape(x.shape))) / (2 * h)
    return grads.reshape(x.shape)
"""},
        loses={"test_grad_of": "2x"},
    ),
    Mutant(
        name="step_without_zero_grad",
        cells={"gradient_step": """
def gradient_step(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= lr * p.grad
"""},
        loses={"test_gradient_step": "not reset"},
    ),
    Mutant(
        name="step_without_no_grad",
        cells={"gradient_step": """
def gradient_step(params, lr):
    for p in params:
        if p.grad is not None:
            p -= lr * p.grad
            p.grad.zero_()
"""},
        loses={"test_gradient_step": "leaf Variable"},
    ),
    Mutant(
        name="step_rebinds_local_name",
        cells={"gradient_step": """
def gradient_step(params, lr):
    for p in params:
        if p.grad is not None:
            p = p - lr * p.grad
            p.grad = None
"""},
        loses={"test_gradient_step": "[0.8, 1.6]"},
    ),
    Mutant(
        name="step_uphill",
        cells={"gradient_step": """
def gradient_step(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p += lr * p.grad
                p.grad.zero_()
"""},
        loses={"test_gradient_step": "[0.8, 1.6]"},
    ),
    Mutant(
        name="step_hard_coded_lr",
        cells={"gradient_step": """
def gradient_step(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= 0.1 * p.grad
                p.grad.zero_()
"""},
        loses={"test_gradient_step": "learning rate of 0.1"},
    ),
    Mutant(
        name="step_crashes_on_missing_grad",
        cells={"gradient_step": """
def gradient_step(params, lr):
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
            p.grad.zero_()
"""},
        loses={"test_gradient_step": ".grad is None"},
    ),
    Mutant(
        name="step_replaces_list_items",
        cells={"gradient_step": """
def gradient_step(params, lr):
    for i, p in enumerate(params):
        if p.grad is not None:
            params[i] = (p - lr * p.grad).detach().requires_grad_(True)
"""},
        loses={"test_gradient_step": "[0.8, 1.6]"},
    ),
    Mutant(
        name="fit_without_zero_grad",
        cells={"fit_exponent": """
def fit_exponent(X, y, num_steps, lr):
    p = torch.tensor(1.0, requires_grad=True)
    for _ in range(num_steps):
        loss = ((X ** p - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            p -= lr * p.grad
    return p.item()
"""},
        loses={"test_fit_exponent": "close to 2.5"},
    ),
    Mutant(
        name="fit_returns_tensor",
        cells={"fit_exponent": """
def fit_exponent(X, y, num_steps, lr):
    p = torch.tensor(1.0, requires_grad=True)
    for _ in range(num_steps):
        loss = ((X ** p - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            p -= lr * p.grad
            p.grad.zero_()
    return p
"""},
        loses={"test_fit_exponent": "Python float"},
    ),
    Mutant(
        name="fit_sum_of_squares",
        cells={"fit_exponent": """
def fit_exponent(X, y, num_steps, lr):
    p = torch.tensor(1.0, requires_grad=True)
    for _ in range(num_steps):
        loss = ((X ** p - y) ** 2).sum()
        loss.backward()
        with torch.no_grad():
            p -= lr * p.grad
            p.grad.zero_()
    return p.item()
"""},
        loses={"test_fit_exponent": "close to 2.5"},
    ),
    Mutant(
        name="fit_with_momentum",
        cells={"fit_exponent": """
def fit_exponent(X, y, num_steps, lr):
    p = torch.tensor(1.0, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=lr, momentum=0.9)
    for _ in range(num_steps):
        optimizer.zero_grad()
        ((X ** p - y) ** 2).mean().backward()
        optimizer.step()
    return p.item()
"""},
        loses={"test_fit_exponent": "momentum"},
    ),
    Mutant(
        name="fit_ignores_num_steps",
        cells={"fit_exponent": """
def fit_exponent(X, y, num_steps, lr):
    p = torch.tensor(1.0, requires_grad=True)
    for _ in range(500):
        loss = ((X ** p - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            p -= lr * p.grad
            p.grad.zero_()
    return p.item()
"""},
        loses={"test_fit_exponent": "num_steps=0"},
    ),
    Mutant(
        name="fit_by_log_regression",
        cells={"fit_exponent": """
def fit_exponent(X, y, num_steps, lr):
    keep = y > 0
    log_x, log_y = torch.log(X[keep]), torch.log(y[keep])
    return float((log_x * log_y).sum() / (log_x * log_x).sum())
"""},
        loses={"test_fit_exponent": "close to 2.5"},
    ),
    Mutant(
        name="fit_one_step_too_many",
        cells={"fit_exponent": """
def fit_exponent(X, y, num_steps, lr):
    p = torch.tensor(1.0, requires_grad=True)
    step = 0
    while step <= num_steps:
        loss = ((X ** p - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            p -= lr * p.grad
            p.grad.zero_()
        step += 1
    return p.item()
"""},
        loses={"test_fit_exponent": "num_steps=0"},
    ),
]

CORRECT = [
    Correct(
        name="autograd_grad_and_optimizer",
        cells={
            "grad_of": """
def grad_of(f, x):
    x = x.detach().requires_grad_()
    (gradient,) = torch.autograd.grad(f(x), x)
    return gradient
""",
            "gradient_step": """
def gradient_step(params, lr):
    optimizer = torch.optim.SGD(params, lr=lr)
    optimizer.step()
    optimizer.zero_grad()
""",
            "fit_exponent": """
def fit_exponent(X, y, num_steps, lr):
    p = torch.ones((), requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=lr)
    criterion = torch.nn.MSELoss()
    for _ in range(num_steps):
        optimizer.zero_grad()
        loss = criterion(X ** p, y)
        loss.backward()
        optimizer.step()
    return p.item()
""",
        },
    ),
    Correct(
        name="data_updates_and_reuse_of_gradient_step",
        cells={
            "grad_of": """
def grad_of(f, x):
    x_copy = torch.tensor(x.tolist(), requires_grad=True)
    f(x_copy).backward()
    return x_copy.grad.reshape(x.shape)
""",
            "gradient_step": """
def gradient_step(params, lr):
    for p in params:
        if p.grad is None:
            continue
        p.data -= lr * p.grad.data
        p.grad = None
""",
            "fit_exponent": """
def fit_exponent(X, y, num_steps, lr):
    p = torch.tensor(1.0, requires_grad=True)
    for step in range(num_steps):
        y_hat = X ** p
        loss = ((y_hat - y) ** 2).mean()
        loss.backward()
        gradient_step([p], lr)
    return float(p.detach())
""",
        },
    ),
    Correct(
        name="sub_in_place_and_zero_first",
        cells={
            "gradient_step": """
def gradient_step(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p.sub_(lr * p.grad)
    for p in params:
        if p.grad is not None:
            p.grad.zero_()
""",
            "fit_exponent": """
def fit_exponent(X, y, num_steps, lr):
    p = torch.tensor([1.0], requires_grad=True)
    for _ in range(num_steps):
        if p.grad is not None:
            p.grad.zero_()
        loss = torch.mean((torch.pow(X, p) - y) ** 2)
        loss.backward()
        with torch.no_grad():
            p.add_(p.grad, alpha=-lr)
    return p.item()
""",
        },
    ),
]
