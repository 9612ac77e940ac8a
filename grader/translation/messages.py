"""The grader's messages in the language of a hand-in: a Spanish notebook gets its feedback in Spanish.

The hidden checks (grader/checks/), the verdicts (grader/autograde/judge.py), the feedback page and the
details a run gives a submission (grader/autograde/) write English, mostly with f-strings. Each literal a
student can read is a template, its text with one `{...}` placeholder per field (`"{what} has the wrong
shape."`), extracted from the source with `ast` and kept in the edition's grader.po beside the answer
stub, so one command keeps it current and a test fails when a template has no translation.

A message is translated after it is written, on the trusted side, only for the feedback page: the English
text is matched against the templates, the most specific first, and the translation receives the matched
values in its placeholders, each value itself translated when it is a message too (a check's `what` can
be `"standardize_columns(X) for X of shape (5, 3)"`). A message of several lines, or of several details
joined by "; ", is translated part by part; a visible test's own assertion message is translated from its
solution's catalog. What matches no template stays English. Grades never depend on any of this: a
translation only changes words a student reads.
"""

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from grader.translation import catalog, segments

# Where the grader's own code lives (not course.ROOT, which a test may point at another course).
GRADER_ROOT = Path(__file__).resolve().parents[2]
# The modules whose text reaches a student's feedback page.
SOURCES = ("grader/checks/*.py", "grader/observers/*.py", "grader/autograde/judge.py", "grader/autograde/feedback.py",
           "grader/autograde/run.py", "grader/autograde/preflight.py", "grader/autograde/colab.py")
SOURCE_LANGUAGE = "en"
CONTEXT = "grader"  # one entry per English text, wherever the grader writes it: one translation everywhere
_WORD = re.compile(r"[^\W\d_]{2,}")
_CALL = re.compile(r"([A-Za-z_][\w.]*\()(.+)\)", re.S)
_ERROR = re.compile(r"([A-Z]\w*(?:Error|Exception|Failed): )(.+)", re.S)
_MAX_DEPTH = 4  # a value inside a value inside a message...: far deeper than any check composes


def _escaped(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _template(node: ast.Constant | ast.JoinedStr) -> str:
    """The text of a string literal, each f-string field written as `{its code}` (a plain string's `{}` are
    str.format's fields: it is filled in later)."""
    if isinstance(node, ast.Constant):
        return node.value
    pieces = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            pieces.append(_escaped(value.value))
            continue
        field = ast.unparse(value.value)
        if value.conversion != -1:
            field += "!" + chr(value.conversion)
        if value.format_spec is not None:
            field += ":" + "".join(part.value if isinstance(part, ast.Constant) else ast.unparse(part)
                                   for part in value.format_spec.values)
        pieces.append("{" + field + "}")
    return "".join(pieces)


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or isinstance(node, ast.Constant) and isinstance(node.value, str)


def _concatenated(node: ast.AST) -> list[ast.AST] | None:
    """The pieces of `"..." + name + f"..."`, in order, when at least one is a string literal."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)):
        return None
    pieces = []
    for side in (node.left, node.right):
        pieces += _concatenated(side) or [side]
    return pieces if any(map(_is_text, pieces)) else None


def _joined(pieces: list[ast.AST]) -> str:
    """One template for a concatenation: its literals as they are, anything else a placeholder."""
    return "".join(_template(piece) if _is_text(piece) else "{" + ast.unparse(piece) + "}" for piece in pieces)


def _readable(template: str) -> bool:
    """Words a person reads: a word and a space, or a sentence's end (not `"data:"` or `"cuda"`), outside its
    placeholders."""
    prose = "".join("X" if field else text for text, field in _pieces(template))
    return bool(_WORD.search(prose)) and (bool(re.search(r"\s", prose.strip()))
                                         or prose.rstrip().endswith((".", "!", "?")))


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body \
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            found.add(id(body[0].value))
    return found


def source_paths() -> list[Path]:
    return sorted({path for pattern in SOURCES for path in GRADER_ROOT.glob(pattern)})


def units() -> list[catalog.Unit]:
    """Every template of the grader's messages, in source order (each unit's source is its module)."""
    found = []
    for path in source_paths():
        relative = path.relative_to(GRADER_ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped, texts = _docstrings(tree), []
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            pieces = _concatenated(node)
            if pieces is not None:  # `hint + _SECTION + "."` is written as one message, so it is one template
                texts.append((node, _joined(pieces), True))
                skipped |= {id(inner) for piece in pieces if _is_text(piece) for inner in ast.walk(piece)}
                skipped |= {id(inner) for inner in ast.walk(node) if isinstance(inner, ast.BinOp)}
            elif isinstance(node, ast.JoinedStr):  # its pieces belong to it
                skipped |= {id(inner) for inner in ast.walk(node) if inner is not node}
        texts += [(node, _template(node), isinstance(node, ast.JoinedStr)) for node in ast.walk(tree)
                  if id(node) not in skipped and _is_text(node)]
        for node, text, has_fields in sorted(texts, key=lambda item: (item[0].lineno, item[0].col_offset)):
            if _readable(text):
                segment = segments.Segment(segments.STRING, text, 0, 0, f_string=has_fields)
                found.append(catalog.Unit(CONTEXT, node.lineno, segment, source=relative))
    return found


def placeholders(template: str) -> list[str]:
    """The `{...}` placeholders of a template, in order."""
    return [text for text, field in _pieces(template) if field]


def _pieces(template: str) -> list[tuple[str, bool]]:
    """(text, is a placeholder) in order: `{{` and `}}` are literal braces, `{...}` (nested braces too) a field."""
    pieces, literal, index = [], [], 0
    while index < len(template):
        char = template[index]
        if template.startswith("{{", index) or template.startswith("}}", index):
            literal.append(char)
            index += 2
        elif char == "{":
            depth, end = 1, index + 1
            while end < len(template) and depth:
                depth += {"{": 1, "}": -1}.get(template[end], 0)
                end += 1
            if literal:
                pieces.append(("".join(literal), False))
                literal = []
            pieces.append((template[index:end], True))
            index = end
        else:
            literal.append(char)
            index += 1
    if literal:
        pieces.append(("".join(literal), False))
    return pieces


@dataclass(frozen=True)
class _Template:
    translation: str
    pattern: re.Pattern
    fields: tuple[str, ...]
    anchor: str  # its longest literal piece: a text without it cannot match
    weight: int  # literal characters: the more, the more specific
    standalone: bool  # whether a whole message can be this (not "{n} epochs" or "{a} and {b}": only values)


def standalone(template: str) -> bool:
    """Can a whole message be `template`? Not when it is mostly placeholders ("{n} epochs", "{a} and {b}"):
    such a template would take any text for its values, so it only translates a value inside a message."""
    pieces = _pieces(template)
    fields = [text for text, field in pieces if field]
    literal = "".join(text for text, field in pieces if not field)
    opens_with_a_word = bool(pieces) and not pieces[0][1] and bool(_WORD.search(pieces[0][0]))
    return not fields or len(_WORD.findall(literal)) >= 2 or opens_with_a_word or len(re.sub(r"\s", "", literal)) >= 8


def choices(field: str) -> list[str] | None:
    """The values a placeholder can only take (`{'s' if n > 1 else ''}`: "s" or ""), or None for any value."""
    try:
        expression = ast.parse(field[1:-1], mode="eval").body
    except SyntaxError:
        return None
    if isinstance(expression, ast.Constant) and isinstance(expression.value, str):
        return [expression.value]
    if isinstance(expression, ast.IfExp):
        branches = [choices("{" + ast.unparse(branch) + "}") for branch in (expression.body, expression.orelse)]
        return None if None in branches else branches[0] + branches[1]
    return None


def _placeholder_pattern(field: str, lines: bool) -> str:
    values = choices(field)
    if values is None:
        return "(.*?)" if lines else "([^\n]*?)"  # a one-line template's value is on its line
    return "(" + "|".join(re.escape(choice) for choice in sorted(values, key=len, reverse=True)) + ")"


def _compiled(english: str, translation: str) -> _Template:
    # A template's leading or trailing line breaks (`"\nHint: ..."`) only join it to the message before or
    # after: the lines are matched one by one.
    english, translation = english.strip("\n"), translation.strip("\n")
    pieces = _pieces(english)
    lines = "\n" in english
    pattern = "".join(_placeholder_pattern(text, lines) if field else re.escape(text) for text, field in pieces)
    literals = [text for text, field in pieces if not field]
    return _Template(translation, re.compile(pattern, re.S), tuple(text for text, field in pieces if field),
                     max(literals, key=len, default=""), sum(map(len, literals)), standalone(english))


@functools.cache
def _table(language: str) -> tuple[_Template, ...]:
    """The language's usable message translations, most specific first."""
    from grader import course  # the edition's catalogs live with the course

    path = course.TRANSLATIONS / language / "grader.po"
    if language == SOURCE_LANGUAGE or not path.exists():
        return ()
    found = catalog.translations(catalog.read(path))
    usable = [(english, translated) for (context, english), translated in found.items() if context == CONTEXT]
    # A visible test's own assertion message ("expected float32, got {grid.dtype}") ran in English, as nbgrader
    # restores test cells from the gradebook: the solution's catalog holds its translation.
    for solution in sorted((course.TRANSLATIONS / language / "solutions").rglob("*.po")):
        usable += [(entry.msgid, entry.msgstr) for entry in catalog.read(solution)
                   if not entry.obsolete and entry.msgstr and "fuzzy" not in entry.flags
                   and entry.comment.startswith("string in code") and entry.msgstr != entry.msgid]
    return tuple(sorted((_compiled(english, translated) for english, translated in usable),
                        key=lambda template: -template.weight))


def fill(template: str, values: dict[str, str]) -> str:
    """`template` with each placeholder replaced by its value in `values` (placeholder text -> value)."""
    return "".join(values.get(text, text) if field else text for text, field in _pieces(template))


def _whole(text: str, table: tuple[_Template, ...], depth: int) -> str | None:
    """`text` translated as one template, or None."""
    for template in table:
        if template.anchor not in text or (depth == 0 and not template.standalone):
            continue
        match = template.pattern.fullmatch(text)
        if match:
            values: dict[str, str] = {}
            for field, value in zip(template.fields, match.groups(), strict=True):
                values.setdefault(field, _translate(value, table, depth + 1))
            return fill(template.translation, values)
    return None


def _translate(text: str, table: tuple[_Template, ...], depth: int) -> str:
    if depth > _MAX_DEPTH or not _WORD.search(text):
        return text
    whole = _whole(text, table, depth)
    if whole is not None:
        return whole
    if "\n" in text:  # the longest run of lines that is one message, then the rest
        lines, done, start = text.split("\n"), [], 0
        while start < len(lines):
            for end in range(len(lines), start, -1):
                part = _whole("\n".join(lines[start:end]), table, depth) if end > start + 1 else None
                if part is not None or end == start + 1:
                    done.append(part if part is not None else _translate(lines[start], table, depth))
                    start = end
                    break
        return "\n".join(done)
    if "; " in text:  # details joined by a run
        return "; ".join(_translate(part, table, depth) for part in text.split("; "))
    error = _ERROR.fullmatch(text)
    if error:  # "AssertionError: expected float32, got torch.int64": the exception's name is code
        return error[1] + _translate(error[2], table, depth + 1)
    call = _CALL.fullmatch(text)
    if call:  # a check names a case by the call it made: count_parameters(a Sequential whose first layer is frozen)
        return call[1] + _translate(call[2], table, depth + 1) + ")"
    return text


def translate(text: str, language: str) -> str:
    """`text`, written by the grader in English, in `language` as far as its catalog goes."""
    table = _table(language)
    return _translate(text, table, 0) if table and text else text
