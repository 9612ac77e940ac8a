"""The lectures' explanatory pictures, drawn with matplotlib and embedded in the notebooks as attachments.

A picture lives inside its notebook (a markdown cell with an `attachment:NAME.png` image), so it renders in
JupyterLab, on GitHub, in Colab when the notebook is opened alone (no sibling files), and in the course book
(nbconvert turns attachments into data URIs). `python -m grader release` clears outputs only, so attachments
survive it.

Run `python tests/lecture_figures.py` after changing a drawing: it redraws every picture and writes it into
its cell (creating the cell, after its anchor, if it is missing). tests/test_course_claims.py checks that
every picture is there, is a PNG, and is shown by its cell.
"""

import base64
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LECTURES = ROOT / "lectures"

BOX = dict(boxstyle="round,pad=0.35", linewidth=1.2)


@dataclass
class Figure:
    lecture: str        # file name under lectures/
    cell_id: str        # id of the markdown cell that shows it
    after: str          # id of the cell it follows
    name: str           # attachment name
    alt: str            # alt text
    caption: str        # markdown under the picture
    draw: object        # function() -> matplotlib Figure


def _box(ax, x, y, text, color="#dbe9f6", width=None, fontsize=10):
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, family="DejaVu Sans",
            bbox=dict(BOX, facecolor=color, edgecolor="#333333"))


def _arrow(ax, start, end, color="#333333", style="-|>", rad=0.0, text=None, text_offset=(0, 0.15)):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=14, color=color, linewidth=1.3,
                                 connectionstyle=f"arc3,rad={rad}", shrinkA=3, shrinkB=3, zorder=5))
    if text:
        mx, my = (start[0] + end[0]) / 2 + text_offset[0], (start[1] + end[1]) / 2 + text_offset[1]
        ax.text(mx, my, text, ha="center", va="center", fontsize=8.5, color=color)


def _canvas(width, height, xlim, ylim):
    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.axis("off")
    return fig, ax


def _cell(ax, x, y, text, stretched=False, color="#dbe9f6"):
    face, edge, ink = ("#f4f4f4", "#bbbbbb", "#999999") if stretched else (color, "#333333", "black")
    ax.add_patch(FancyBboxPatch((x, y), 0.9, 0.9, boxstyle="square,pad=0", facecolor=face, edgecolor=edge,
                                linestyle="--" if stretched else "-"))
    ax.text(x + 0.45, y + 0.45, text, ha="center", va="center", fontsize=10, color=ink)


def draw_broadcasting():
    fig, ax = _canvas(8.4, 2.6, (-0.3, 15.3), (-3.6, 1.0))
    col, row = [0, 10, 20], [1, 2, 3, 4]
    for i in range(3):
        for j in range(4):
            _cell(ax, j, -i - 1, str(col[i]), stretched=j > 0)
            _cell(ax, 5.4 + j, -i - 1, str(row[j]), stretched=i > 0)
            _cell(ax, 10.8 + j, -i - 1, str(col[i] + row[j]), color="#d9f0d3")
    ax.text(4.7, -1.55, "+", fontsize=20, ha="center", va="center")
    ax.text(10.1, -1.55, "=", fontsize=20, ha="center", va="center")
    ax.text(1.95, 0.45, "col, shape (3, 1)\nstretched along dim 1", ha="center", fontsize=9.5)
    ax.text(7.35, 0.45, "row, shape (4,) -> (1, 4)\nstretched along dim 0", ha="center", fontsize=9.5)
    ax.text(12.75, 0.45, "col + row, shape (3, 4)", ha="center", fontsize=9.5)
    ax.set_aspect("equal")
    return fig


def draw_graph_mul():
    fig, ax = _canvas(7.2, 3.0, (0, 10), (0, 4.2))
    _box(ax, 1.3, 3.2, "a = 15\nleaf, requires_grad", "#fde0c5")
    _box(ax, 1.3, 0.9, "b = 20\nleaf, requires_grad", "#fde0c5")
    _box(ax, 5.0, 2.05, "c = a * b = 300\ngrad_fn = MulBackward0")
    _arrow(ax, (2.8, 2.95), (3.5, 2.3))
    _arrow(ax, (2.8, 1.15), (3.5, 1.8))
    ax.text(2.55, 2.05, "forward", fontsize=8.5, ha="center", va="center")
    ax.text(8.3, 3.3, "backward: c.backward()", ha="center", fontsize=9, color="#b2182b", weight="bold")
    ax.text(8.3, 2.55, "dc/da = b = 20  -> a.grad", ha="center", fontsize=9, color="#b2182b")
    ax.text(8.3, 2.05, "dc/db = a = 15  -> b.grad", ha="center", fontsize=9, color="#b2182b")
    ax.text(8.3, 1.35, "(AccumulateGrad adds them\ninto each leaf's .grad)", ha="center", fontsize=8.5,
            color="#555555")
    _arrow(ax, (4.4, 2.6), (2.8, 3.45), color="#b2182b", rad=0.25)
    _arrow(ax, (4.4, 1.5), (2.8, 0.65), color="#b2182b", rad=-0.25)
    ax.text(3.1, 3.75, "backward", fontsize=8.5, color="#b2182b")
    return fig


def draw_graph_exponent():
    fig, ax = _canvas(9.2, 3.0, (0, 14), (0, 4.2))
    _box(ax, 1.2, 3.3, "X (data)\nno grad", "#eeeeee")
    _box(ax, 1.2, 1.0, "p (leaf)\nrequires_grad", "#fde0c5")
    _box(ax, 4.3, 2.15, "y_hat = X ** p\nPowBackward1")
    _box(ax, 7.2, 3.3, "y (data)", "#eeeeee")
    _box(ax, 7.4, 2.15, "y_hat - y\nSubBackward0")
    _box(ax, 10.0, 2.15, "(...) ** 2\nPowBackward0")
    _box(ax, 12.6, 2.15, "loss = mean\nMeanBackward0", "#d9f0d3")
    for start, end in [((2.1, 3.1), (3.2, 2.4)), ((2.1, 1.2), (3.2, 1.9)), ((5.4, 2.15), (6.3, 2.15)),
                       ((7.2, 3.0), (7.3, 2.6)), ((8.5, 2.15), (8.9, 2.15)), ((11.1, 2.15), (11.5, 2.15))]:
        _arrow(ax, start, end)
    _arrow(ax, (12.4, 1.6), (2.2, 0.85), color="#b2182b", rad=-0.08)
    ax.text(7.3, 0.1, "loss.backward(): the chain rule, node by node, back to p  ->  p.grad = dL/dp",
            ha="center", fontsize=9, color="#b2182b")
    ax.text(7.0, 4.0, "forward: every operation on p is recorded as it runs", ha="center", fontsize=9)
    return fig


def draw_mlp():
    fig, ax = _canvas(8.6, 3.6, (-0.6, 10.2), (-0.7, 4.6))
    layers = [(10, "input\n10 features"), (32, "hidden 1\n32 units, ReLU"), (64, "hidden 2\n64 units, ReLU"),
              (1, "output\n1 logit")]
    xs = [0.5, 3.5, 6.5, 9.3]
    shown = 8
    centres = []
    for (size, label), x in zip(layers, xs, strict=True):
        n = min(size, shown)
        ys = [2.0] if n == 1 else [0.15 + i * 3.7 / (n - 1) for i in range(n)]
        centres.append([(x, y) for y in ys])
        ax.text(x, -0.5, label, ha="center", va="top", fontsize=9)
        if size > shown:
            ax.text(x + 0.42, 2.0, f"({size})", fontsize=8, color="#555555", va="center")
    for left, right in zip(centres, centres[1:], strict=False):
        for x0, y0 in left:
            for x1, y1 in right:
                ax.plot([x0, x1], [y0, y1], color="#9ecae1", linewidth=0.4, zorder=1)
    colors = ["#fde0c5", "#dbe9f6", "#dbe9f6", "#d9f0d3"]
    for points, color in zip(centres, colors, strict=True):
        for x, y in points:
            ax.add_patch(plt.Circle((x, y), 0.17, facecolor=color, edgecolor="#333333", zorder=2))
    labels = ["fc1 = nn.Linear(10, 32)\n10*32 + 32 = 352", "fc2 = nn.Linear(32, 64)\n32*64 + 64 = 2112",
              "fc3 = nn.Linear(64, 1)\n64 + 1 = 65"]
    for (x0, x1), text in zip(zip(xs, xs[1:], strict=False), labels, strict=True):
        ax.text((x0 + x1) / 2, 4.35, text, ha="center", fontsize=8.5)
    ax.set_aspect("equal")
    fig.tight_layout()
    return fig


def _half_width(text, fontsize):
    """Roughly half the width, in data units of a 1.73-units-per-inch canvas, of a boxed text."""
    longest = max(len(line) for line in text.splitlines())
    return (longest * 0.6 * fontsize / 72 + 0.25) * 1.73 / 2


def draw_training_loop():
    fig, ax = _canvas(11.0, 4.0, (0, 19), (0, 6.9))
    top = [(1.9, "for epoch in\nrange(num_epochs)", "#eeeeee"), (6.0, "model.train()", "#dbe9f6"),
           (10.0, "for X, y in\ntrain_loader", "#eeeeee"), (14.4, "X, y = X.to(device),\ny.to(device)", "#dbe9f6")]
    bottom = [(17.2, "optimizer\n.zero_grad()", "#fde0c5"), (14.0, "y_hat = model(X)\n(forward)", "#dbe9f6"),
              (10.7, "loss = criterion\n(y_hat, y)", "#dbe9f6"), (7.6, "loss.backward()", "#fde0c5"),
              (4.6, "optimizer.step()", "#fde0c5"), (1.6, "loss.item()\n(log a float)", "#eeeeee")]
    y_top, y_bottom, size = 5.2, 3.0, 9
    for x, text, color in top:
        _box(ax, x, y_top, text, color, fontsize=size)
    for x, text, color in bottom:
        _box(ax, x, y_bottom, text, color, fontsize=size)
    for (x0, t0, _), (x1, t1, _) in zip(top, top[1:], strict=False):
        _arrow(ax, (x0 + _half_width(t0, size), y_top), (x1 - _half_width(t1, size), y_top))
    _arrow(ax, (top[-1][0] + 1.2, y_top - 0.55), (bottom[0][0], y_bottom + 0.55))
    for (x0, t0, _), (x1, t1, _) in zip(bottom, bottom[1:], strict=False):
        _arrow(ax, (x0 - _half_width(t0, size), y_bottom), (x1 + _half_width(t1, size), y_bottom))
    _arrow(ax, (1.6, y_bottom + 0.55), (9.3, y_top - 0.5), color="#2166ac", rad=0.08)
    ax.text(4.3, 4.35, "next batch", color="#2166ac", fontsize=9, ha="center", rotation=9)
    ax.text(9.5, 6.45, "the orange steps change the weights: clear the old gradients, compute new ones, apply them",
            ha="center", fontsize=9, color="#8c510a")
    _box(ax, 14.2, 0.75, "after the last batch: model.eval(), torch.no_grad(),\nvalidation loss; keep the best "
                         "weights,\nmaybe stop early; then the next epoch", "#d9f0d3", fontsize=8.5)
    return fig


FIGURES = [
    Figure("01_tensors.ipynb", "fig-broadcasting", "804266b2", "broadcasting.png",
           "col (3, 1) plus row (4,) broadcast to a (3, 4) result",
           "*Broadcasting `(3, 1) + (4,)`: the row is read as `(1, 4)`, then each size-1 dimension is stretched "
           "(dashed, grey: no copy is made in memory) until both are `(3, 4)`, and the sums are taken element by "
           "element.*", draw_broadcasting),
    Figure("02_autograd.ipynb", "fig-graph-mul", "2db01b10", "graph_mul.png",
           "computation graph of c = a * b, forward and backward",
           "*The graph of `c = a * b`. Forward (black): the multiplication runs and records `MulBackward0`. "
           "Backward (red): `c.backward()` applies the product rule and stores dc/da = b = 20 in `a.grad` and "
           "dc/db = a = 15 in `b.grad`; the next cells check these numbers.*", draw_graph_mul),
    Figure("02_autograd.ipynb", "fig-graph-exponent", "c5dbeafd", "graph_exponent.png",
           "computation graph of the exponent fit, from p to the mean squared error",
           "*The graph that every epoch of section 7 records: from the leaf `p` through `X ** p`, the difference, "
           "the square and the mean to the loss. `loss.backward()` walks it in reverse and leaves dL/dp in "
           "`p.grad`; the data `X` and `y` need no gradient.*", draw_graph_exponent),
    Figure("03_nn_module.ipynb", "fig-mlp", "fb8e186c", "mlp_10_32_64_1.png",
           "the 10 -> 32 -> 64 -> 1 multilayer perceptron",
           "*The running example, 10 → 32 → 64 → 1. Every unit of a layer is connected to every unit of the next "
           "(only 8 units per layer are drawn); each bundle of lines is one `nn.Linear` with `in * out` weights plus "
           "`out` biases, 2529 parameters in all (section 4 counts them in code).*", draw_mlp),
    Figure("05_training_loop.ipynb", "fig-training-loop", "8b67dfd5", "training_loop.png",
           "the training loop: epochs, batches, and the eight steps per batch",
           "*One epoch of the loop that `train_one_epoch` below implements: the orange steps are the three that "
           "update the weights, and their order matters (clear, compute, apply).*", draw_training_loop),
]


def png_bytes(figure: Figure) -> bytes:
    fig = figure.draw()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None}, facecolor="white")
    plt.close(fig)
    return buffer.getvalue()


def cell_source(figure: Figure) -> str:
    return f"![{figure.alt}](attachment:{figure.name})\n\n{figure.caption}"


def write_all() -> None:
    sys.path.insert(0, str(ROOT))
    import nbformat

    from grader import notebooks

    by_lecture: dict[str, list[Figure]] = {}
    for figure in FIGURES:
        by_lecture.setdefault(figure.lecture, []).append(figure)
    for lecture, figures in by_lecture.items():
        path = LECTURES / lecture
        nb = notebooks.read(path)
        for figure in figures:
            data = base64.b64encode(png_bytes(figure)).decode("ascii")
            cells = {cell.id: cell for cell in nb.cells}
            cell = cells.get(figure.cell_id)
            if cell is None:
                cell = nbformat.v4.new_markdown_cell(cell_source(figure))
                cell.id = figure.cell_id
                anchor = [cell.id for cell in nb.cells].index(figure.after)
                nb.cells.insert(anchor + 1, cell)
            cell.source = cell_source(figure)
            cell["attachments"] = {figure.name: {"image/png": data}}
            print(f"{lecture}: {figure.name}, {len(data) * 3 // 4} bytes")
        nb = notebooks.with_colab_badge(notebooks.clean(nb), path)
        notebooks.write(nb, path)


if __name__ == "__main__":
    write_all()
