"""Give a notebook saved by Google Colab back the nbgrader metadata Colab threw away.

Colab keeps sources and outputs but not the metadata of a cell it did not create: a student who
finishes an exercise in Colab and downloads the `.ipynb` hands in cells with no `nbgrader`
metadata (no grade_id, locked, solution, points or checksum) and no cell ids. nbgrader would then
find no answer and no test cell in it. `reattach_metadata` matches the hand-in against the released
student notebook (exercises/NN_topic/NN_topic.ipynb) and copies each cell's nbgrader metadata back:

- locked cells (given code, instructions, test cells) by their exact source, whitespace at the ends
  and line ends ignored, in notebook order;
- answer cells by position: the cells between the two locked cells that surround an answer in the
  released notebook, picking the one most like the stub when the student added cells there;
- a locked cell the student edited, by position too (nbgrader then restores its released source).

Cells that already carry nbgrader metadata are left as they are, so a notebook saved by Jupyter
passes through unchanged.
"""

import copy
import difflib

import nbformat


def source_key(source) -> str:
    """A cell's source for matching: lines without trailing whitespace, no blank ends."""
    text = "".join(source) if isinstance(source, list) else (source or "")
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def nbgrader_metadata(cell) -> dict:
    value = cell.get("metadata", {}).get("nbgrader")
    return value if isinstance(value, dict) else {}


def _similarity(a, b) -> float:
    return difflib.SequenceMatcher(None, source_key(a), source_key(b), autojunk=False).ratio()


def _best_in_order(wanted: list, candidates: list) -> list[int | None]:
    """For each wanted (released) cell, the index into candidates, keeping order and cell types and
    maximising total similarity; None where no candidate is left."""
    n, m = len(wanted), len(candidates)
    # best[i][j]: best total for wanted[i:] using candidates[j:]
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            skip_candidate = best[i][j + 1]
            skip_wanted = best[i + 1][j]
            take = -1.0
            if wanted[i].cell_type == candidates[j].cell_type:
                take = 1.0 + _similarity(wanted[i].source, candidates[j].source) + best[i + 1][j + 1]
            best[i][j] = max(skip_candidate, skip_wanted, take)
    chosen: list[int | None] = []
    i = j = 0
    while i < n:
        if j >= m:
            chosen.append(None)
            i += 1
        elif (wanted[i].cell_type == candidates[j].cell_type
              and best[i][j] == 1.0 + _similarity(wanted[i].source, candidates[j].source) + best[i + 1][j + 1]):
            chosen.append(j)
            i, j = i + 1, j + 1
        elif best[i][j] == best[i][j + 1]:
            j += 1
        else:
            chosen.append(None)
            i += 1
    return chosen


def reattach_metadata(nb: nbformat.NotebookNode,
                      released: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[str]]:
    """Restore the nbgrader metadata (and cell ids) of `released` onto the matching cells of `nb`.

    Returns a new notebook and notes saying what was restored; no notes when nothing was missing.
    """
    nb = copy.deepcopy(nb)
    graded = [cell for cell in released.cells if nbgrader_metadata(cell).get("grade_id")]
    present = {nbgrader_metadata(cell)["grade_id"] for cell in nb.cells if nbgrader_metadata(cell).get("grade_id")}
    if not graded or all(nbgrader_metadata(cell)["grade_id"] in present for cell in graded):
        return nb, []

    # 1. Anchors: released cells already identified (by grade id) or locked and found by exact source.
    anchors: list[tuple[int, int]] = []  # (index in released, index in nb), increasing in both
    by_grade_id = {nbgrader_metadata(cell).get("grade_id"): index for index, cell in enumerate(nb.cells)
                   if nbgrader_metadata(cell).get("grade_id")}
    position = 0
    for r_index, r_cell in enumerate(released.cells):
        grade_id = nbgrader_metadata(r_cell).get("grade_id")
        if grade_id in by_grade_id:
            if by_grade_id[grade_id] >= position:
                anchors.append((r_index, by_grade_id[grade_id]))
                position = by_grade_id[grade_id] + 1
            continue
        if not (grade_id and nbgrader_metadata(r_cell).get("locked")):
            continue
        for n_index in range(position, len(nb.cells)):
            cell = nb.cells[n_index]
            if (not nbgrader_metadata(cell) and cell.cell_type == r_cell.cell_type
                    and source_key(cell.source) == source_key(r_cell.source)):
                anchors.append((r_index, n_index))
                position = n_index + 1
                break

    # 2. What lies between consecutive anchors (answer cells, edited locked cells) is matched by position.
    restored: dict[int, int] = {n: r for r, n in anchors if not nbgrader_metadata(nb.cells[n])}
    edited: list[str] = []
    bounds = [(-1, -1), *anchors, (len(released.cells), len(nb.cells))]
    for (r_start, n_start), (r_end, n_end) in zip(bounds, bounds[1:]):
        wanted = [r for r in range(r_start + 1, r_end)
                  if nbgrader_metadata(released.cells[r]).get("grade_id")
                  and nbgrader_metadata(released.cells[r])["grade_id"] not in present]
        candidates = [n for n in range(n_start + 1, n_end) if not nbgrader_metadata(nb.cells[n])]
        picks = _best_in_order([released.cells[r] for r in wanted], [nb.cells[n] for n in candidates])
        for r, pick in zip(wanted, picks):
            if pick is None:
                continue
            restored[candidates[pick]] = r
            if nbgrader_metadata(released.cells[r]).get("locked"):
                edited.append(nbgrader_metadata(released.cells[r])["grade_id"])

    used_ids = {cell.get("id") for index, cell in enumerate(nb.cells) if index not in restored}
    for n_index, r_index in restored.items():
        cell, source_cell = nb.cells[n_index], released.cells[r_index]
        cell.setdefault("metadata", nbformat.NotebookNode())
        cell.metadata["nbgrader"] = copy.deepcopy(source_cell.metadata["nbgrader"])
        for key in ("editable", "deletable"):
            if key in source_cell.metadata:
                cell.metadata[key] = source_cell.metadata[key]
        if source_cell.get("id") and source_cell.id not in used_ids:
            cell["id"] = source_cell.id
            used_ids.add(source_cell.id)

    found = {nbgrader_metadata(released.cells[r])["grade_id"] for r in restored.values()}
    missing = [nbgrader_metadata(c)["grade_id"] for c in graded
               if nbgrader_metadata(c)["grade_id"] not in found | present]
    answers = sorted(nbgrader_metadata(released.cells[r])["grade_id"] for r in restored.values()
                     if nbgrader_metadata(released.cells[r]).get("solution"))
    notes = [f"restored nbgrader metadata that the editor (Colab?) dropped on {len(restored)} cells"
             + (f", answers {answers} matched by position" if answers else "")]
    if edited:
        notes.append(f"locked cells {sorted(edited)} were edited: matched by position, graded as released")
    if missing:
        notes.append(f"cells {missing} of the released notebook were not found in the hand-in")
    return nb, notes
