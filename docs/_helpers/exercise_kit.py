"""A lesson's exercises: written beside the page, rendered by one function, checked by one test.

Each lesson ``docs/lessons/NAME.md`` has its exercises in ``docs/lessons/NAME_exercises.py``: a
list ``EXERCISES`` of :class:`Exercise`, each with its question, its answer and the function
that computes the numbers in them. The page ends with one block::

    import exercise_kit
    print(exercise_kit.render("NAME"))

In a question or an answer, ``{name}`` is replaced by the value ``name`` of the dictionary its
``values`` function returns; ``{answer}`` is the value the exercise asks for, marked in the
HTML (``<span class="answer" data-answer="KEY">``) so that
``tests/docs/test_docs.py::test_exercise_answers_are_right`` can compare it with the same
quantity computed independently with PyTorch (``checked`` marks more values the same way). Every other pair of braces (LaTeX's ``\\frac{1}{m}``)
is left as it is. Questions and answers are Markdown, with ``$...$`` maths; write them as raw
strings (``r"..."``) when they hold a backslash.
"""

from __future__ import annotations

import importlib.util
import re
import textwrap
from dataclasses import dataclass, field
from typing import Callable

from site_kit import DOCS_DIR, fmt


@dataclass(frozen=True)
class Exercise:
    #: The question, Markdown.
    question: str
    #: The answer, Markdown; ``{answer}`` marks the value that is checked.
    answer: str
    #: Returns ``{"answer": value, other names: values}`` for the placeholders; None when nothing is computed.
    values: Callable[[], dict] | None = None
    #: The name the checked value goes by in the HTML and in the test; needed when ``{answer}`` is used.
    key: str | None = None
    #: Other values of ``values`` that are checked too: ``{value name: key}``.
    checked: dict = field(default_factory=dict)


def exercises_file(lesson: str):
    return DOCS_DIR / "lessons" / f"{lesson}_exercises.py"


def load(lesson: str) -> list[Exercise]:
    """The ``EXERCISES`` of ``docs/lessons/LESSON_exercises.py``."""
    path = exercises_file(lesson)
    spec = importlib.util.spec_from_file_location(f"exercises_{lesson.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EXERCISES


def shown(value) -> str:
    """A value as the page shows it: integers with thousands separators."""
    return fmt(value) if isinstance(value, int) and not isinstance(value, bool) else str(value)


def marked(key: str, value) -> str:
    """A checked value, marked so that the test finds it: ``<span class="answer" data-answer=KEY>``."""
    return f'<span class="answer" data-answer="{key}">{shown(value)}</span>'


def fill(text: str, values: dict, key: str | None, checked: dict | None = None) -> str:
    keys = {**(checked or {}), **({"answer": key} if key else {})}

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        if name == "answer" and key is None:
            raise ValueError("an exercise that shows {answer} needs a key")
        return marked(keys[name], values[name]) if name in keys else shown(values[name])

    return re.sub(r"\{(\w+)\}", replace, text)


def render(lesson: str) -> str:
    """The lesson's exercises as a numbered list, each answer in a collapsed "Answer" block."""
    items = []
    for number, exercise in enumerate(load(lesson), start=1):
        values = exercise.values() if exercise.values else {}
        if "{answer}" in exercise.answer and "answer" not in values:
            raise ValueError(f"{lesson}: exercise {number} shows {{answer}} but computes none")
        question = fill(textwrap.dedent(exercise.question).strip(), values, exercise.key, exercise.checked)
        answer = fill(textwrap.dedent(exercise.answer).strip(), values, exercise.key, exercise.checked)
        items.append(f"{number}. " + textwrap.indent(question, "    ").lstrip() + "\n\n"
                     + '    ??? success "Answer"\n\n' + textwrap.indent(answer, " " * 8))
    return "\n\n".join(items) + "\n"
