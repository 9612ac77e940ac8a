"""A graded class as autograde leaves it, and the files its LMS gives the instructor, built without running
a notebook: the tests of `export`, `feedback-bundle` and `similarity` read these.

Two classes, each with 01_tensors and 08_capstone graded (both out of 10):

* CANVAS_CLASS: hand-ins from a Canvas download (`smithjohn_4242_998877_...`, a LATE one), nbgrader
  folders named by a login (`jperez`) or a Canvas user id (`4247`), the course's own naming with an email
  login (`an.nguyen_01_tensors.ipynb`), a student who dropped the course (`mary_ann`), one whose capstone
  is the untouched exercise (`kimsoo_4248`). The roster is Canvas's *Export Entire Gradebook*: UTF-8 with
  a byte-order mark, CRLF line ends, a `Root Account` column, a `Manual Posting` row and the `Points
  Possible` row, read-only totals, the test student, a student who never handed anything in, an
  excused capstone and a grade already entered by hand.
* MOODLE_CLASS: a Moodle download (folders and the flat form), an nbgrader folder named by a Moodle
  username, a student with no hand-in. The rosters are the 08_capstone grading worksheet (`Participant
  123`, written as PHP's fputcsv writes it) and the course gradebook's plain-text export.

The capstones of CANVAS_CLASS: four honest, differently written solutions, one disguised copy of
smithjohn_4242's (doejane_4243: names, comments, strings and hyperparameters changed), one unsolved.
"""

import csv
import io
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from grader import course, notebooks
from grader.autograde import report

TENSORS, CAPSTONE = "01_tensors", "08_capstone"
MAX_SCORE = 10.0
STUB = '# YOUR CODE HERE\nraise NotImplementedError("Replace this line with your code (see the docstring above).")'


# --- the capstones -------------------------------------------------------------------------------------------
# For each answer cell, the code that replaces each of its stubs, in order.

HONEST_A = {
    "mlp": ["""
layers = []
prev = in_features
for width in hidden:
    layers.append(nn.Linear(prev, width))
    layers.append(nn.ReLU())
    prev = width
layers.append(nn.Linear(prev, out_features))
self.model = nn.Sequential(*layers)
""", "return self.model(x)"],
    "tabular_dataset": ["""
self.features = torch.as_tensor(X, dtype=torch.float32)
self.targets = torch.as_tensor(y, dtype=torch.float32).view(-1, 1)
""", "return self.features.shape[0]", "return self.features[i], self.targets[i]"],
    "train_one_epoch": ["""
model.train()
running = 0.0
batches = 0
for X, y in loader:
    X = X.to(device)
    y = y.to(device)
    optimizer.zero_grad()
    out = model(X)
    loss = criterion(out, y)
    loss.backward()
    optimizer.step()
    running += loss.item()
    batches += 1
return running / batches
"""],
    "predict": ["""
model.eval()
model.to(device)
with torch.no_grad():
    logits = model(X.to(device))
probabilities = torch.sigmoid(logits).squeeze(1)
labels = (probabilities >= threshold).to(torch.int64)
return labels.cpu()
"""],
    "train_capstone": ["""
torch.manual_seed(0)
mu = X_train.mean(axis=0)
sigma = X_train.std(axis=0)
X_scaled = (X_train - mu) / sigma
train_loader = DataLoader(TabularDataset(X_scaled, y_train), batch_size=32, shuffle=True)
net = MLP(X_train.shape[1], (32, 16)).to(device)
loss_fn = nn.BCEWithLogitsLoss()
opt = torch.optim.Adam(net.parameters(), lr=0.005)
for epoch in range(30):
    epoch_loss = train_one_epoch(net, train_loader, loss_fn, opt, device)
    if epoch % 10 == 0:
        print(f"epoch {epoch}: loss {epoch_loss:.4f}")
return net, torch.tensor(mu, dtype=torch.float32), torch.tensor(sigma, dtype=torch.float32)
"""],
    "predict_raw": ["""
X_scaled = (torch.tensor(X_raw, dtype=torch.float32) - mean.cpu()) / std.cpu()
device_of_model = next(model.parameters()).device
return predict(model, X_scaled, device=device_of_model)
"""],
    "checkpoint": ['torch.save({"model": model.state_dict(), "mean": mean, "std": std}, path)', """
saved = torch.load(path, map_location="cpu")
model.load_state_dict(saved["model"])
return model, saved["mean"], saved["std"]
"""],
}

# HONEST_A with every name changed, comments added, strings and hyperparameters edited.
COPY_OF_A = {
    "mlp": ["""
# build the hidden layers one by one
blocks = []
last = in_features
for h in hidden:
    blocks.append(nn.Linear(last, h))
    blocks.append(nn.ReLU())  # activation
    last = h
blocks.append(nn.Linear(last, out_features))  # output layer, no activation
self.seq = nn.Sequential(*blocks)
""", "return self.seq(x)"],
    "tabular_dataset": ["""
self.data = torch.as_tensor(X, dtype=torch.float32)
self.labels = torch.as_tensor(y, dtype=torch.float32).view(-1, 1)  # column vector
""", "return self.data.shape[0]", "return self.data[i], self.labels[i]"],
    "train_one_epoch": ["""
model.train()  # training mode
total = 0.0
n = 0
for X, y in loader:
    X = X.to(device)
    y = y.to(device)
    optimizer.zero_grad()
    pred = model(X)
    loss = criterion(pred, y)
    loss.backward()
    optimizer.step()
    total += loss.item()
    n += 1
return total / n  # mean batch loss
"""],
    "predict": ["""
model.eval()
model.to(device)
with torch.no_grad():
    scores = model(X.to(device))
p = torch.sigmoid(scores).squeeze(1)
out = (p >= threshold).to(torch.int64)
return out.cpu()
"""],
    "train_capstone": ["""
torch.manual_seed(0)
m = X_train.mean(axis=0)
s = X_train.std(axis=0)
Xs = (X_train - m) / s  # standardise
dl = DataLoader(TabularDataset(Xs, y_train), batch_size=64, shuffle=True)
clf = MLP(X_train.shape[1], (32, 16)).to(device)
crit = nn.BCEWithLogitsLoss()
optim = torch.optim.Adam(clf.parameters(), lr=0.004)
for ep in range(25):
    l = train_one_epoch(clf, dl, crit, optim, device)
    if ep % 5 == 0:
        print(f"ep {ep} -> {l:.3f}")
return clf, torch.tensor(m, dtype=torch.float32), torch.tensor(s, dtype=torch.float32)
"""],
    "predict_raw": ["""
Xs = (torch.tensor(X_raw, dtype=torch.float32) - mean.cpu()) / std.cpu()
dev = next(model.parameters()).device
return predict(model, Xs, device=dev)
"""],
    "checkpoint": ['torch.save({"weights": model.state_dict(), "mean": mean, "std": std}, path)', """
ckpt = torch.load(path, map_location="cpu")
model.load_state_dict(ckpt["weights"])
return model, ckpt["mean"], ckpt["std"]
"""],
}

HONEST_B = {
    "mlp": ["""
sizes = [in_features, *hidden, out_features]
self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
""", """
for layer in self.layers[:-1]:
    x = nn.functional.relu(layer(x))
return self.layers[-1](x)
"""],
    "tabular_dataset": ["self.X, self.y = X, y", "return len(self.y)",
                        "return torch.tensor(self.X[i], dtype=torch.float32), torch.tensor([self.y[i]], "
                        "dtype=torch.float32)"],
    "train_one_epoch": ["""
model.train()
losses = []
for features, target in loader:
    loss = criterion(model(features.to(device)), target.to(device))
    loss.backward()
    optimizer.step()
    model.zero_grad()
    losses.append(float(loss))
return float(np.mean(losses))
"""],
    "predict": ["""
model.to(device).eval()
with torch.inference_mode():
    z = model(X.to(device)).squeeze(1)
return (z >= torch.logit(torch.tensor(threshold))).long().cpu()
"""],
    "train_capstone": ["""
torch.manual_seed(0)
X = torch.tensor(X_train, dtype=torch.float32)
mean, std = X.mean(dim=0), X.std(dim=0)
loader = DataLoader(TabularDataset(((X - mean) / std).numpy(), y_train), batch_size=50, shuffle=True)
model = MLP(30, (16, 8)).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
history = [train_one_epoch(model, loader, nn.BCEWithLogitsLoss(), optimizer, device) for _ in range(40)]
print("final training loss", round(history[-1], 4))
return model, mean, std
"""],
    "predict_raw": ["""
standardised = (np.asarray(X_raw, dtype=np.float32) - mean.cpu().numpy()) / std.cpu().numpy()
return predict(model, torch.from_numpy(standardised), device=next(model.parameters()).device)
"""],
    "checkpoint": ['torch.save([model.state_dict(), mean, std], path)', """
state, mean, std = torch.load(path, weights_only=True)
model.load_state_dict(state)
return model, mean, std
"""],
}

HONEST_C = {
    "mlp": ["""
from collections import OrderedDict
parts = OrderedDict()
width_in = in_features
for k, width_out in enumerate(hidden):
    parts[f"fc{k}"] = nn.Linear(width_in, width_out)
    parts[f"act{k}"] = nn.ReLU()
    width_in = width_out
parts["head"] = nn.Linear(width_in, out_features)
self.body = nn.Sequential(parts)
""", "return self.body(x)"],
    "tabular_dataset": ["""
self.inputs = torch.from_numpy(np.asarray(X)).float()
self.outputs = torch.from_numpy(np.asarray(y)).float().unsqueeze(-1)
""", "return self.inputs.size(0)", "return (self.inputs[i], self.outputs[i])"],
    "train_one_epoch": ["""
model.train()
batch_losses = []
for step, (inputs, labels) in enumerate(loader):
    inputs, labels = inputs.to(device), labels.to(device)
    optimizer.zero_grad(set_to_none=True)
    batch_loss = criterion(model(inputs), labels)
    batch_loss.backward()
    optimizer.step()
    batch_losses.append(batch_loss.detach().cpu().item())
return sum(batch_losses) / max(len(batch_losses), 1)
"""],
    "predict": ["""
model = model.to(device).eval()
with torch.no_grad():
    chance = model(X.to(device)).sigmoid().flatten()
return torch.where(chance >= threshold, 1, 0).to(dtype=torch.long, device="cpu")
"""],
    "train_capstone": ["""
torch.manual_seed(0)
centre = torch.tensor(X_train.mean(0), dtype=torch.float32)
spread = torch.tensor(X_train.std(0), dtype=torch.float32)
inputs = (torch.tensor(X_train, dtype=torch.float32) - centre) / spread
targets = torch.tensor(y_train, dtype=torch.float32).unsqueeze(-1)
classifier = MLP(inputs.shape[1], (24,))
adam = torch.optim.Adam(classifier.parameters(), lr=2e-2)
bce = nn.BCEWithLogitsLoss()
for iteration in range(200):  # full-batch gradient descent
    adam.zero_grad()
    bce(classifier(inputs), targets).backward()
    adam.step()
return classifier.to(device), centre, spread
"""],
    "predict_raw": ["""
rows = torch.as_tensor(X_raw, dtype=torch.float32)
rows = rows.sub(mean.cpu()).div(std.cpu())
return predict(model, rows, threshold=0.5, device=next(model.parameters()).device)
"""],
    "checkpoint": ["""
bundle = dict(weights=model.state_dict())
bundle["mean"], bundle["std"] = mean.clone(), std.clone()
torch.save(bundle, path)
""", """
bundle = torch.load(path, map_location=torch.device("cpu"), weights_only=True)
model.load_state_dict(bundle["weights"])
return model, bundle["mean"], bundle["std"]
"""],
}

HONEST_D = {
    "mlp": ["""
# I keep every Linear layer in a list and put a ReLU between them
modules = []
sizes = [in_features] + list(hidden)
for i in range(len(sizes) - 1):
    modules += [nn.Linear(sizes[i], sizes[i + 1]), nn.ReLU()]
modules += [nn.Linear(sizes[-1], out_features)]
self.stack = nn.Sequential(*modules)
""", """
logits = self.stack(x)  # no sigmoid here: BCEWithLogitsLoss does it
return logits
"""],
    "tabular_dataset": ["""
assert len(X) == len(y), "X and y must have the same number of rows"
self.X = torch.tensor(np.array(X, dtype=np.float32))
self.y = torch.tensor(np.array(y, dtype=np.float32)).reshape(len(y), 1)
""", "return int(self.X.shape[0])", """
row = self.X[i]
label = self.y[i]
return row, label
"""],
    "train_one_epoch": ["""
model.train()
sum_of_losses, number_of_batches = 0.0, 0
for batch_X, batch_y in loader:
    batch_X, batch_y = batch_X.to(device), batch_y.to(device)
    predictions = model(batch_X)
    batch_loss = criterion(predictions, batch_y)
    optimizer.zero_grad()
    batch_loss.backward()
    optimizer.step()
    sum_of_losses = sum_of_losses + batch_loss.item()
    number_of_batches = number_of_batches + 1
mean_loss = sum_of_losses / number_of_batches
return float(mean_loss)
"""],
    "predict": ["""
model.to(device)
model.eval()
with torch.no_grad():
    probability_of_one = torch.sigmoid(model(X.to(device)))[:, 0]
is_one = probability_of_one >= threshold
return is_one.long().to("cpu")
"""],
    "train_capstone": ["""
torch.manual_seed(0)
# statistics of the training rows only (never the validation rows)
train_mean = X_train.mean(axis=0).astype(np.float32)
train_std = X_train.std(axis=0).astype(np.float32)
scaled_rows = (X_train - train_mean) / train_std
dataset = TabularDataset(scaled_rows, y_train)
batches = DataLoader(dataset, batch_size=16, shuffle=True)
my_model = MLP(in_features=30, hidden=(64, 32)).to(device)
my_optimizer = torch.optim.AdamW(my_model.parameters(), lr=1e-3, weight_decay=1e-4)
my_loss = nn.BCEWithLogitsLoss()
number_of_epochs = 15
for epoch_number in range(number_of_epochs):
    train_one_epoch(my_model, batches, my_loss, my_optimizer, device)
return my_model, torch.from_numpy(train_mean), torch.from_numpy(train_std)
"""],
    "predict_raw": ["""
mean_np = mean.detach().cpu().numpy()
std_np = std.detach().cpu().numpy()
scaled = torch.tensor((np.asarray(X_raw) - mean_np) / std_np, dtype=torch.float32)
model_device = next(model.parameters()).device
return predict(model, scaled, device=model_device)
"""],
    "checkpoint": ["""
everything = {"state_dict": model.state_dict(), "mean": mean, "std": std}
torch.save(everything, path)
""", """
everything = torch.load(path, map_location="cpu", weights_only=True)
model.load_state_dict(everything["state_dict"])
mean = everything["mean"]
std = everything["std"]
return model, mean, std
"""],
}

UNSOLVED: dict[str, list[str]] = {}


def capstone(answers: dict[str, list[str]]):
    """The released capstone with each answer cell's stubs replaced by `answers`' code, in order."""
    nb = notebooks.read(course.EXERCISES / CAPSTONE / f"{CAPSTONE}.ipynb")
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if not (cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers):
            continue
        for body in answers[grade_id]:
            lines = cell.source.split("\n")
            start = next(i for i, line in enumerate(lines) if line.strip() == "# YOUR CODE HERE")
            indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
            code = textwrap.indent(textwrap.dedent(body).strip("\n"), indent)
            cell.source = "\n".join(lines[:start] + [code] + lines[start + 2:])
        assert "YOUR CODE HERE" not in cell.source, (grade_id, cell.source)
    return nb


# --- the classes ---------------------------------------------------------------------------------------------

@dataclass
class Hand:
    """One student's hand-in of one assignment and what autograde made of it."""

    student: str
    assignment: str
    path: str  # in the download, as intake.csv gives it
    score: float
    status: str = "ok"
    capstone: dict[str, list[str]] | None = None  # the code of their capstone (08_capstone only)


@dataclass
class GradedClass:
    grading: Path
    hands: list[Hand]
    rosters: dict[str, Path] = field(default_factory=dict)


CANVAS_HANDS = [
    Hand("smithjohn_4242", TENSORS, "smithjohn_4242_998877_01_tensors.ipynb", 10),
    Hand("smithjohn_4242", CAPSTONE, "smithjohn_4242_998901_08_capstone.ipynb", 9.5, capstone=HONEST_A),
    Hand("doejane_4243", TENSORS, "doejane_LATE_4243_998878_01_tensors-1.ipynb", 0, status="error"),
    Hand("doejane_4243", CAPSTONE, "doejane_4243_998902_08_capstone.ipynb", 9, capstone=COPY_OF_A),
    Hand("jperez", TENSORS, "jperez/01_tensors/01_tensors.ipynb", 9),
    Hand("jperez", CAPSTONE, "jperez/08_capstone/08_capstone.ipynb", 10, capstone=HONEST_B),
    Hand("an.nguyen", TENSORS, "an.nguyen_01_tensors.ipynb", 7),
    Hand("an.nguyen", CAPSTONE, "", 0, status="missing"),
    Hand("4247", TENSORS, "4247/01_tensors/01_tensors.ipynb", 8.5),
    Hand("4247", CAPSTONE, "4247/08_capstone/08_capstone.ipynb", 10, capstone=HONEST_C),
    Hand("kimsoo_4248", TENSORS, "kimsoo_4248_998880_01_tensors.ipynb", 6),
    Hand("kimsoo_4248", CAPSTONE, "kimsoo_4248_998904_08_capstone.ipynb", 0, capstone=UNSOLVED),
    Hand("mary_ann", TENSORS, "mary_ann/01_tensors/01_tensors.ipynb", 10),
    Hand("mary_ann", CAPSTONE, "mary_ann/08_capstone/08_capstone.ipynb", 8, capstone=HONEST_D),
]

# Canvas's "Export Entire Gradebook" for this course (UTF-8 with BOM, CRLF), rows as Canvas writes them.
CANVAS_TOTALS = ["Notebooks Current Score", "Notebooks Unposted Current Score", "Notebooks Final Score",
                 "Notebooks Unposted Final Score", "Current Score", "Unposted Current Score", "Final Score",
                 "Unposted Final Score", "Current Grade", "Unposted Current Grade", "Final Grade",
                 "Unposted Final Grade"]
CANVAS_HEADER = (["Student", "ID", "SIS User ID", "SIS Login ID", "Root Account", "Section", "01_tensors (40001)",
                  "02_autograd (40002)", "08_capstone (40007)"] + CANVAS_TOTALS)
CANVAS_ROWS = [
    ["", "", "", "", "", "", "Manual Posting", "", ""] + [""] * len(CANVAS_TOTALS),
    ["    Points Possible", "", "", "", "", "", "10.00", "10.00", "20.00"] + ["(read only)"] * len(CANVAS_TOTALS),
    ["Smith, John", "4242", "S1001", "jsmith", "pyt.instructure.com", "PYT 101 01", "", "", "", "0.00", "0.00",
     "0.00", "0.00", "0.00", "0.00", "0.00", "0.00", "F", "F", "F", "F"],
    ["Doe, Jane", "4243", "S1002", "jdoe", "pyt.instructure.com", "PYT 101 01", "", "", "", "", "", "", "", "", "",
     "", "", "", "", "", ""],
    ["Pérez, José", "4244", "S1003", "jperez", "pyt.instructure.com", "PYT 101 02", "6.00", "", "", "60.00",
     "60.00", "20.00", "20.00", "60.00", "60.00", "20.00", "20.00", "D-", "D-", "F", "F"],
    ["Nguyen, An", "4245", "S1004", "an.nguyen@pyt.example.edu", "pyt.instructure.com", "PYT 101 02", "", "", "",
     "", "", "", "", "", "", "", "", "", "", "", ""],
    ["Okafor, Chidi", "4246", "S1005", "cokafor", "pyt.instructure.com", "PYT 101 01", "", "", "", "", "", "", "",
     "", "", "", "", "", "", "", ""],
    ["Li, Wei", "4247", "S1006", "wli", "pyt.instructure.com", "PYT 101 01", "", "", "EX", "", "", "", "", "", "",
     "", "", "", "", "", ""],
    ["Kim, Soo", "4248", "S1007", "skim", "pyt.instructure.com", "PYT 101 02", "", "", "", "", "", "", "", "", "",
     "", "", "", "", "", ""],
    ["Student, Test", "4999", "", "", "pyt.instructure.com", "PYT 101 01", "", "", "", "", "", "", "", "", "", "",
     "", "", "", "", ""],
]

MOODLE_HANDS = [
    Hand("john_smith_123", TENSORS, "John Smith_123_assignsubmission_file_/01_tensors.ipynb", 10),
    Hand("john_smith_123", CAPSTONE, "John Smith_123_assignsubmission_file_/08_capstone.ipynb", 9.5),
    Hand("jose_perez_124", TENSORS, "José Pérez_124_assignsubmission_file_01_tensors.ipynb", 4),
    Hand("jose_perez_124", CAPSTONE, "José Pérez_124_assignsubmission_file_08_capstone.ipynb", 7.25),
    Hand("amelie_durand_125", TENSORS, "Amélie Durand_125_assignsubmission_file_/01_tensors.ipynb", 8),
    Hand("amelie_durand_125", CAPSTONE, "", 0, status="missing"),
    Hand("jdoe7", TENSORS, "jdoe7/01_tensors/01_tensors.ipynb", 9),
    Hand("jdoe7", CAPSTONE, "jdoe7/08_capstone/08_capstone.ipynb", 6),
]

# The 08_capstone grading worksheet, as Moodle writes it (BOM, LF, PHP fputcsv's quoting).
MOODLE_WORKSHEET_NAME = "Grades-PYT101-08_capstone-5512.csv"
MOODLE_WORKSHEET = [
    ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade", "Grade can be changed",
     "Last modified (submission)", "Last modified (grade)", "Feedback comments"],
    ["Participant 123", "John Smith", "john.smith@uni.example.edu", "Submitted for grading", "", "100.00", "Yes",
     "Monday, 2 November 2026, 10:15 AM", "-", ""],
    ["Participant 124", "José Pérez", "jose.perez@uni.example.edu", "Submitted for grading", "", "100.00", "Yes",
     "Monday, 2 November 2026, 11:02 PM", "-", ""],
    ["Participant 125", "Amélie Durand", "amelie.durand@uni.example.edu", "No submission", "", "100.00", "Yes", "-",
     "-", ""],
    ["Participant 126", "Jane Doe", "jdoe7@uni.example.edu", "Submitted for grading", "", "100.00", "Yes",
     "Sunday, 1 November 2026, 9:30 AM", "-", ""],
    ["Participant 127", "Chidi Okafor", "chidi.okafor@uni.example.edu", "No submission", "", "100.00", "Yes", "-",
     "-", ""],
]
# The course gradebook, Grades → Export → Plain text file (no BOM, LF).
MOODLE_GRADEBOOK = [
    ["First name", "Last name", "ID number", "Institution", "Department", "Email address",
     "Assignment: 01_tensors (Real)", "Assignment: 08_capstone (Real)", "Course total (Real)",
     "Last downloaded from this course"],
    ["John", "Smith", "S2001", "", "", "john.smith@uni.example.edu", "-", "-", "-", "1793952000"],
    ["José", "Pérez", "S2002", "", "", "jose.perez@uni.example.edu", "-", "-", "-", "1793952000"],
    ["Amélie", "Durand", "S2003", "", "", "amelie.durand@uni.example.edu", "-", "-", "-", "1793952000"],
    ["Jane", "Doe", "S2004", "", "", "jdoe7@uni.example.edu", "-", "-", "-", "1793952000"],
    ["Chidi", "Okafor", "S2005", "", "", "chidi.okafor@uni.example.edu", "-", "-", "-", "1793952000"],
]


def canvas_csv(rows: list[list[str]]) -> bytes:
    """As Canvas writes its exports: quotes only where needed, CRLF, a byte-order mark."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    return b"\xef\xbb\xbf" + text.getvalue().encode()


def fputcsv(rows: list[list[str]], bom: bool) -> bytes:
    """As PHP's fputcsv (Moodle) writes: a field with a space, comma, quote or line break is quoted; LF."""
    def field_text(value: str) -> str:
        if any(c in value for c in ' ,"\n\r\t'):
            return '"' + value.replace('"', '""') + '"'
        return value
    text = "".join(",".join(field_text(v) for v in row) + "\n" for row in rows)
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def feedback_page(student: str, assignment: str, notebook: str) -> str:
    """A stand-in for autograde's page, naming whose it is."""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{assignment} / {notebook}: feedback for "
            f"{student}</title></head><body><p>feedback for {student} on {assignment}</p></body></html>\n")


def _write_grading(grading: Path, hands: list[Hand]) -> None:
    grading.mkdir(parents=True, exist_ok=True)
    report.write_rows(grading / report.GRADES_CSV, [  # as autograde writes it
        report.Row(hand.student, hand.assignment, hand.score, MAX_SCORE if hand.status != "error" else 0,
                   hand.status, {"missing": "nothing handed in for this assignment",
                                 "error": "the grader failed on this submission; rerun"}.get(hand.status, ""),
                   raw_score=hand.score, sha256="0" * 64)
        for hand in sorted(hands, key=lambda h: (h.student, h.assignment))])
    with open(grading / "intake.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "student_id", "assignment", "outcome", "reason"])
        for hand in sorted((h for h in hands if h.path), key=lambda h: h.path):
            writer.writerow([hand.path, hand.student, hand.assignment, "graded", ""])
        writer.writerow(["__MACOSX/._notes.ipynb", "", "", "ignored", "an editor's or archiver's copy, not a hand-in"])
    for hand in hands:
        page = grading / "feedback" / hand.student / hand.assignment / f"{hand.assignment}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(feedback_page(hand.student, hand.assignment, hand.assignment), encoding="utf-8")
        if hand.capstone is not None:
            staged = grading / "work" / "submitted" / hand.student / hand.assignment / f"{hand.assignment}.ipynb"
            staged.parent.mkdir(parents=True, exist_ok=True)
            notebooks.write(capstone(hand.capstone), staged)


def canvas_class(folder: Path) -> GradedClass:
    grading = Path(folder) / "grading"
    _write_grading(grading, CANVAS_HANDS)
    roster = Path(folder) / "canvas-gradebook.csv"
    roster.write_bytes(canvas_csv([CANVAS_HEADER] + CANVAS_ROWS))
    return GradedClass(grading, list(CANVAS_HANDS), {"canvas": roster})


def moodle_class(folder: Path) -> GradedClass:
    grading = Path(folder) / "grading"
    _write_grading(grading, MOODLE_HANDS)
    worksheet = Path(folder) / MOODLE_WORKSHEET_NAME
    worksheet.write_bytes(fputcsv(MOODLE_WORKSHEET, bom=True))
    gradebook = Path(folder) / "moodle-gradebook.csv"
    gradebook.write_bytes(fputcsv(MOODLE_GRADEBOOK, bom=False))
    return GradedClass(grading, list(MOODLE_HANDS), {"worksheet": worksheet, "gradebook": gradebook})


def roster_for_the_download(lms: str) -> bytes:
    """The gradebook export of the class that handed in lms_downloads' mixed download of 01_tensors: on Canvas
    the two Canvas students, mary_ann (login) and one who handed in nothing; on Moodle the two Moodle students,
    jdoe7 (by email) and one who handed in nothing."""
    if lms == "canvas":
        return canvas_csv([
            ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "01_tensors (40001)", "Current Score"],
            ["    Points Possible", "", "", "", "", "10.00", "(read only)"],
            ["Smith, John", "4242", "S1001", "jsmith", "PYT 101 01", "", ""],
            ["Doe, Jane", "4243", "S1002", "jdoe", "PYT 101 01", "", ""],
            ["Ann, Mary", "5001", "S1008", "mary_ann", "PYT 101 02", "", ""],
            ["Okafor, Chidi", "4246", "S1005", "cokafor", "PYT 101 01", "", ""],
            ["Student, Test", "4999", "", "", "PYT 101 01", "", ""],
        ])
    return fputcsv([
        ["First name", "Last name", "ID number", "Institution", "Department", "Email address",
         "Assignment: 01_tensors (Real)", "Course total (Real)", "Last downloaded from this course"],
        ["John", "Smith", "S2001", "", "", "john.smith@uni.example.edu", "-", "-", "1793952000"],
        ["José", "Pérez", "S2002", "", "", "jose.perez@uni.example.edu", "-", "-", "1793952000"],
        ["Jane", "Doe", "S2004", "", "", "jdoe7@uni.example.edu", "-", "-", "1793952000"],
        ["Chidi", "Okafor", "S2005", "", "", "chidi.okafor@uni.example.edu", "-", "-", "1793952000"],
    ], bom=False)
