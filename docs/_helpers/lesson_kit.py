"""What every lesson page uses: source listings without docstrings, grids of numbers, the tests' names.

A lesson's prose, equations and captions are in its Markdown page. Its helper module (one per
lesson: ``lesson_conv``, ``lesson_pool``, ...) computes the worked example with the
``reference`` function the lesson teaches and draws the figures; the plain-loop versions are in
``lesson_loops``; the exercises are beside the page (``docs/lessons/NAME_exercises.py``, see
``exercise_kit``). This module holds what they share.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap

from site_kit import REPO_ROOT, fence, repo_file, source_file_of

#: layer kind -> what a test must call on the torch side to compare with the NumPy layer.
TORCH_COUNTERPART = {
    "conv2d_forward": r"\b(F|functional)\.conv2d\b",
    "batchnorm_forward": r"\b(F|functional)\.batch_norm\b|\bBatchNorm[12]d\b",
    "relu_forward": r"\b(F|functional)\.relu\b|\btorch\.relu\b",
    "maxpool2d_forward": r"\b(F|functional)\.max_pool2d\b",
    "linear_forward": r"\b(F|functional)\.linear\b",
    "flatten_forward": r"\btorch\.flatten\b",
    "dropout_forward": r"\.backward\(",  # compared with autograd on x * mask / (1 - p), the same mask
    "softmax_cross_entropy": r"\bcross_entropy\b",
    "adam_step": r"\boptim\.Adam\b|\bAdam\(",
}


def code_of(*functions) -> str:
    """The functions' source as one block titled with their file, docstrings left out.

    The docstring's content is the lesson's prose; every other line is shown as it runs (the
    layers of ``reference`` check their arguments in one call at the top, then do the maths).
    """
    parts = []
    for function in functions:
        source = textwrap.dedent(inspect.getsource(function))
        lines = source.splitlines()
        body = ast.parse(source).body[0].body
        drop = []  # (first line, last line, replacement) 1-based
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
            drop.append((body[0].lineno, body[0].end_lineno, None))
        for first, last, note in sorted(drop, reverse=True):
            lines[first - 1: last] = [note] if note else []
        parts.append(fit_to_column("\n".join(lines).rstrip()))
    return fence("\n\n\n".join(parts), title=source_file_of(functions[0]))


#: Characters of code that fit on one line of the content column at a 1280-px window.
CODE_COLUMNS = 80


def fit_to_column(source: str, columns: int = CODE_COLUMNS) -> str:
    """``source`` laid out to fit ``columns`` characters a line, without changing what it does.

    A line that is too long is shortened by, in this order: moving its trailing comment onto a
    line of its own above it; wrapping a comment line; breaking the code after a comma inside
    brackets (the outermost brackets first), where Python allows a line break, the rest indented
    by eight more spaces. A line that has no such comma stays as it is.
    """
    for _ in range(200):  # one change per pass; a function has far fewer long lines
        changed = _shorten_one_line(source, columns)
        if changed is None:
            return source
        source = changed
    return source


def _shorten_one_line(source: str, columns: int) -> str | None:
    import io
    import textwrap
    import tokenize

    lines = source.splitlines()
    comments, commas, depth = {}, {}, 0  # per line: trailing comment column; columns after a bracketed comma
    try:
        for token in tokenize.generate_tokens(io.StringIO(source + "\n").readline):
            row, col = token.start[0] - 1, token.start[1]
            if token.type == tokenize.COMMENT:
                comments[row] = col
            elif token.type == tokenize.OP:
                if token.string in "([{":
                    depth += 1
                elif token.string in ")]}":
                    depth -= 1
                elif token.string == "," and depth > 0:
                    commas.setdefault(row, []).append((depth, token.end[1]))
    except (tokenize.TokenError, IndentationError):
        return None
    for index, line in enumerate(lines):
        if len(line) <= columns:
            continue
        indent = line[: len(line) - len(line.lstrip())]
        if index in comments and line[: comments[index]].strip():  # code, then a comment
            code, comment = line[: comments[index]].rstrip(), line[comments[index]:]
            lines[index: index + 1] = [indent + comment, code]
            return "\n".join(lines)
        if index in comments:  # a comment line
            text = line.strip().lstrip("#").strip()
            wrapped = textwrap.wrap(text, columns - len(indent) - 2)
            lines[index: index + 1] = [f"{indent}# {part}" for part in wrapped]
            return "\n".join(lines)
        fitting = [(depth, col) for depth, col in commas.get(index, []) if col <= columns and line[col:].strip()]
        if fitting:  # the last comma of the outermost brackets that fits
            outermost = min(depth for depth, _ in fitting)
            cut = max(col for depth, col in fitting if depth == outermost)
            lines[index: index + 1] = [line[:cut].rstrip(), indent + " " * 8 + line[cut:].lstrip()]
            return "\n".join(lines)
    return None


def tests_comparing(forward: str) -> str:
    """The test files that run ``forward`` against PyTorch, as inline code (the build fails if none)."""
    found = []
    for path in sorted((REPO_ROOT / "tests").rglob("test_*.py")):  # tests/ and its sub-folders
        text = path.read_text(encoding="utf-8")
        if re.search(rf"\b{forward}\b", text) and re.search(TORCH_COUNTERPART[forward], text):
            found.append(repo_file(path.relative_to(REPO_ROOT).as_posix()))
    if not found:
        raise FileNotFoundError(f"docs: no test in tests/ compares {forward} with torch")
    return ", ".join(found)


def draw_grid(ax, values, origin=(0, 0), highlight=(), colour=None, hi_colour=None, title=None, pad=0):
    """Draw a 2-D array as labelled cells on ``ax`` (one unit per cell); ``highlight`` is a set of (row, col).

    ``pad`` marks a border of that many cells as padding (another colour, muted numbers). Colours
    and text size are the figure kit's, so the grid follows the reader's light or dark scheme.
    """
    from matplotlib.patches import Rectangle

    from figure_kit import C

    colour, hi_colour = colour or C.cell, hi_colour or C.hi
    values = [list(row) for row in values]
    rows, cols = len(values), len(values[0])
    x0, y0 = origin
    for r in range(rows):
        for c in range(cols):
            border = pad and (r < pad or c < pad or r >= rows - pad or c >= cols - pad)
            face = hi_colour if (r, c) in highlight else (C.pad if border else colour)
            ax.add_patch(Rectangle((x0 + c, y0 - r - 1), 1, 1, facecolor=face, edgecolor=C.fg, lw=0.6))
            v = values[r][c]
            ax.text(x0 + c + 0.5, y0 - r - 0.5, f"{v:g}", ha="center", va="center",
                    color=C.muted if border else C.fg)
    if title:
        ax.text(x0 + cols / 2, y0 + 0.3, title, ha="center", va="bottom")


def matrices(*labelled) -> str:
    """Small arrays side by side as HTML tables, each with its label: ``matrices(("x", x), ("w", w))``.

    Numbers of a worked example are data, shown as grids the reader can check on paper.
    """
    import numpy as np

    parts = []
    for label, a in labelled:
        a = np.atleast_2d(np.asarray(a, dtype=float))
        body = "".join("<tr>" + "".join(f"<td>{_number(v)}</td>" for v in row) + "</tr>" for row in a)
        parts.append(f'<figure class="matrix"><table class="grid">{body}</table><figcaption>{label}</figcaption></figure>')
    return '<div class="matrices" markdown="0">' + "".join(parts) + "</div>"


def _number(v: float) -> str:
    if abs(v) < 5e-13:
        return "0"
    return f"{v:g}" if float(v).is_integer() else f"{v:.4f}".rstrip("0")
