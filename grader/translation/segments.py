"""What a translator translates in a notebook, and putting the translations back.

A notebook is cut into segments, each one catalog entry:
- markdown: one segment per block (a paragraph, a list, a table, a heading line); fenced code and
  blocks with no words outside code spans, math and link targets are left alone;
- code comments: a run of full-line comments at one indentation is one segment (a sentence often
  wraps over several lines), a comment after code is one segment;
- string literals in code that a person reads: text with a space or ending in punctuation, or a
  plot's label or title. Identifiers-as-strings (`"cuda"`, `"mean"`) are never touched.

Code is found with Python's `tokenize`, so only COMMENT and string tokens ever change: `code_tokens`
is the rest of the token stream, and a translated cell must give exactly the same one.
"""

import dataclasses
import io
import re
import token
import tokenize
from dataclasses import dataclass

MARKDOWN, COMMENT, STRING = "markdown", "comment", "string"

# nbgrader's markers and tool pragmas are instructions to programs, not text for people.
_UNTRANSLATED_COMMENT = re.compile(r"(BEGIN|END) (SOLUTION|HIDDEN TESTS)|^\s*(noqa|type:|pragma|fmt:)|^!")
_WORD = re.compile(r"[^\W\d_]{2,}")
# A single-word string is still prose when it is a plot's label or title, or printed: print shows its
# arguments and does nothing else with them.
_LABEL_CALLS = {"xlabel", "ylabel", "title", "suptitle", "set_xlabel", "set_ylabel", "set_title", "legend", "text",
                "annotate", "xticks", "yticks", "set_xticklabels", "set_yticklabels", "print"}
_LABEL_KEYWORDS = {"label", "labels", "title", "xlabel", "ylabel", "desc"}  # desc: tqdm's progress bar label
# ...or a name shown to people, listed in a variable called `..._names` (class_names = ["benign", ...]).
_LABEL_VARIABLE = re.compile(r"names$")
_LITERAL = re.compile(r"(?is)^([rbuf]*)('''|\"\"\"|'|\")")
_FIELD = re.compile(r"(?<!\{)\{(?!\{)[^{}]*\}")
_FENCE = re.compile(r"^\s*(```|~~~)")
_PYTHON_FENCES = {"python", "py", "python3", "ipython"}
_HEADING = re.compile(r"^#{1,6}\s")
_INLINE_CODE = re.compile(r"`[^`]*`")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
LINK_TARGET = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|<(https?://[^>\s]+)>")


@dataclass(frozen=True)
class Segment:
    """One piece of a cell a translator sees: `text` is the English, `start:end` where it sits in the source."""

    kind: str
    text: str
    start: int
    end: int
    f_string: bool = False
    single_line: bool = False  # a string literal in single quotes: its translation must stay on one line
    comment_marker: str = "# "  # for comments: what each translated line starts with
    indent: str = ""  # for a run of full-line comments: the indentation of each line after the first


class SegmentError(ValueError):
    """A translation that would change a notebook's code, or lose what the English keeps."""


def segments(cell) -> list[Segment]:
    """The translatable segments of a notebook cell, in source order."""
    if cell.cell_type == "markdown":
        return markdown_segments(cell.source)
    if cell.cell_type == "code":
        return code_segments(cell.source)
    return []


def translatable_markdown(text: str) -> bool:
    prose = LINK_TARGET.sub("]", _MATH.sub(" ", _INLINE_CODE.sub(" ", text)))
    return bool(_WORD.search(re.sub(r"<[^>]+>", " ", prose)))


def markdown_segments(source: str) -> list[Segment]:
    """One segment per block of lines between blank lines; a heading line is its own block."""
    found, block_start, fence, offset = [], None, None, 0
    code_start, code_language = 0, ""
    lines = source.splitlines(keepends=True)

    def close(end: int) -> None:
        text = source[block_start:end].rstrip("\n")
        if translatable_markdown(text):
            found.append(Segment(MARKDOWN, text, block_start, block_start + len(text)))

    for line in lines:
        bare = line.rstrip("\n")
        if fence:
            if bare.strip().startswith(fence):
                fence = None
                if code_language in _PYTHON_FENCES:  # an example's comments and messages are read like a cell's
                    found += [dataclasses.replace(segment, start=segment.start + code_start,
                                                  end=segment.end + code_start)
                              for segment in code_segments(source[code_start:offset])]
        elif _FENCE.match(bare):
            if block_start is not None:
                close(offset)
                block_start = None
            fence = _FENCE.match(bare).group(1)
            code_start, code_language = offset + len(line), bare.strip()[len(fence):].strip().lower()
        elif not bare.strip():
            if block_start is not None:
                close(offset)
                block_start = None
        elif _HEADING.match(bare):
            if block_start is not None:
                close(offset)
            block_start = offset
            close(offset + len(line))
            block_start = None
        elif block_start is None:
            block_start = offset
        offset += len(line)
    if block_start is not None:
        close(offset)
    return found


def _offsets(source: str) -> list[int]:
    starts, total = [0], 0
    for line in source.splitlines(keepends=True):
        total += len(line)
        starts.append(total)
    return starts


def _literal_spans(tokens: list[tokenize.TokenInfo]) -> list[tuple[int, int, int]]:
    """(first token index, last token index, 0) of every string literal; an f-string that Python 3.12+
    splits into FSTRING_START ... FSTRING_END tokens counts as one literal."""
    spans, index = [], 0
    fstring_start = getattr(token, "FSTRING_START", None)
    fstring_end = getattr(token, "FSTRING_END", None)
    while index < len(tokens):
        kind = tokens[index].type
        if kind == token.STRING:
            spans.append((index, index))
        elif fstring_start is not None and kind == fstring_start:
            depth, last = 0, index
            for last in range(index, len(tokens)):
                depth += {fstring_start: 1, fstring_end: -1}.get(tokens[last].type, 0)
                if depth == 0:
                    break
            spans.append((index, last))
            index = last
        index += 1
    return spans


def _tokens(source: str) -> list[tokenize.TokenInfo]:
    return list(tokenize.generate_tokens(io.StringIO(source).readline))


def _is_label(tokens: list[tokenize.TokenInfo], first: int) -> bool:
    """Whether the string at `first` is an argument of a plotting label call, a label keyword, or an item
    of a `..._names` list."""
    before = [t for t in tokens[:first] if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)]
    if len(before) >= 2 and before[-1].string == "=" and before[-2].string in _LABEL_KEYWORDS:
        return True
    depth, nested = 0, False
    for position in range(len(before) - 1, -1, -1):
        text = before[position].string
        if text in ")]}":
            depth += 1
        elif text in "([{":
            if depth:
                depth -= 1
                continue
            if text == "(" and position and before[position - 1].string in _LABEL_CALLS:
                # print's own arguments only: a key or an item inside them (batch["row"]) is code
                return before[position - 1].string != "print" or not nested
            nested = True
            if text in "[(" and position >= 2 and before[position - 1].string == "=" \
                    and _LABEL_VARIABLE.search(before[position - 2].string):
                return True
            if text == "(":
                return False
    return False


def code_segments(source: str) -> list[Segment]:
    """The comments and human-readable string literals of a code cell."""
    try:
        tokens = _tokens(source)
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return []  # not Python (a cell of magics, a broken cell): nothing to translate, nothing to break
    starts = _offsets(source)

    def at(position: tuple[int, int]) -> int:
        return starts[position[0] - 1] + position[1]

    found = []
    comment_run: list[tokenize.TokenInfo] = []

    def flush_run() -> None:
        if not comment_run:
            return
        marker = re.match(r"#+\s?", comment_run[0].string).group(0)
        text = "\n".join(t.string[len(re.match(r"#+\s?", t.string).group(0)):].rstrip() for t in comment_run)
        if _WORD.search(text) and not _UNTRANSLATED_COMMENT.search(text):
            indent = " " * comment_run[0].start[1]
            found.append(Segment(COMMENT, text, at(comment_run[0].start), at(comment_run[-1].end),
                                 comment_marker=marker, indent=indent))
        comment_run.clear()

    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT) or (
                    tok.type == tokenize.NL and tok.line.strip() == ""):
                flush_run()
            continue
        full_line = tok.line[: tok.start[1]].strip() == ""
        if full_line and comment_run and comment_run[-1].start[1] == tok.start[1] \
                and comment_run[-1].start[0] == tok.start[0] - 1:
            comment_run.append(tok)
            continue
        flush_run()
        comment_run.append(tok)
        if not full_line:
            flush_run()
    flush_run()

    for first, last in _literal_spans(tokens):
        start, end = at(tokens[first].start), at(tokens[last].end)
        literal = source[start:end]
        opening = _LITERAL.match(literal)
        if not opening or "b" in opening.group(1).lower():
            continue
        prefix, quote = opening.groups()
        text = literal[len(prefix) + len(quote): len(literal) - len(quote)]
        f_string = "f" in prefix.lower()
        prose = _FIELD.sub("X", text) if f_string else text  # a field stands for a word: f"chosen {t}" is prose
        readable = bool(re.search(r"\s", prose.strip())) or prose.rstrip().endswith((":", ".", "!", "?"))
        if _WORD.search(prose) and (readable or _is_label(tokens, first)):
            begin = start + len(prefix) + len(quote)
            found.append(Segment(STRING, text, begin, begin + len(text), f_string=f_string,
                                 single_line=len(quote) == 1))
    return sorted(found, key=lambda segment: segment.start)


def code_tokens(source: str) -> list[tuple[int, str]]:
    """The code of a cell as tokens, without comments, line breaks and the contents of string literals
    (a string, or a whole f-string, is one placeholder token). Two cells that differ only in comments and
    strings have the same code tokens."""
    tokens = _tokens(source)
    literal_of = {}
    for first, last in _literal_spans(tokens):
        for index in range(first, last + 1):
            literal_of[index] = first
    result = []
    for index, tok in enumerate(tokens):
        if tok.type in (tokenize.COMMENT, tokenize.NL):
            continue
        if index in literal_of:
            if literal_of[index] == index:
                result.append((token.STRING, "<string>"))
            continue
        layout = tok.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
        result.append((tok.type, "" if layout else tok.string))
    return result


def fields(text: str) -> list[str]:
    """The `{...}` replacement fields of a string: code inside an f-string, names in a format string."""
    return sorted(_FIELD.findall(text))


def link_targets(text: str) -> list[str]:
    return sorted(next(group for group in match.groups() if group) for match in LINK_TARGET.finditer(text))


def check(segment: Segment, translation: str) -> list[str]:
    """Why `translation` cannot stand for `segment` (empty when it can)."""
    problems = []
    if segment.kind == MARKDOWN and link_targets(translation) != link_targets(segment.text):
        problems.append(f"links must point where the English ones do: {link_targets(segment.text)}")
    if segment.kind == STRING:
        if fields(translation) != fields(segment.text):
            problems.append(f"keep the {{...}} fields exactly: {fields(segment.text)}")
        if segment.single_line and "\n" in translation:
            problems.append("a string in single quotes must stay on one line (write \\n for a line break)")
    return problems


def _render(segment: Segment, translation: str) -> str:
    if segment.kind != COMMENT:
        return translation
    lines = translation.split("\n")
    return ("\n" + segment.indent).join(f"{segment.comment_marker}{line}".rstrip() for line in lines)


def apply(source: str, found: list[Segment], translations: list[str], code: bool) -> str:
    """`source` with each segment replaced by its translation; for code, proof that only comments and
    strings changed."""
    pieces, position = [], 0
    for segment, translation in zip(found, translations, strict=True):
        problems = check(segment, translation)
        if problems:
            raise SegmentError(f"translation of {segment.text[:60]!r}: " + "; ".join(problems))
        pieces += [source[position: segment.start], _render(segment, translation)]
        position = segment.end
    result = "".join(pieces) + source[position:]
    if code:
        try:
            same = code_tokens(result) == code_tokens(source)
        except (tokenize.TokenError, SyntaxError, IndentationError) as error:
            raise SegmentError(f"the translated code no longer tokenises ({error}): check quotes and "
                               "backslashes in the translated strings") from error
        if not same:
            raise SegmentError("the translation changes code, not only comments and strings: check quotes "
                               "in the translated strings")
    return result
