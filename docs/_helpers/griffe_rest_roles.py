"""Griffe extension: show the reST markup of the project's docstrings as Markdown.

The docstrings are Google style, but many refer to other objects with Sphinx roles
(:func:`forward`, :class:`~cifar_alexnet.model.AlexNet`, :mod:`reference.conv`) and
introduce literal blocks with ``::``. mkdocstrings renders docstrings as Markdown, where
those would appear verbatim (":func:" before the name). This extension rewrites, in the
docstrings it loads (the source files are untouched):

* ``:role:`target``` and ``:role:`~a.b.target``` -> ```target``` (the ``~`` form keeps the
  last component, as Sphinx displays it);
* ``double backticks`` -> `single backticks` (reST inline literal -> Markdown code);
* a paragraph ending in ``::`` -> ending in ``:`` (the indented block after it is already
  rendered as code).

It adds no content.
"""

from __future__ import annotations

import re

from griffe import Extension

_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|obj|exc|const|ref|term):`~?([^`]+)`")
_TILDE_TARGET = re.compile(r":(?:py:)?\w+:`~([^`]+)`")


def rest_to_markdown(text: str) -> str:
    text = _TILDE_TARGET.sub(lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    text = re.sub(r"``([^`]+?)``", r"`\1`", text)
    text = re.sub(r"(\S)::[ \t]*$", r"\1:", text, flags=re.M)  # "Example::" -> "Example:"
    text = re.sub(r"^([ \t]*)::[ \t]*$", r"", text, flags=re.M)  # a lone "::" line
    return text


class RestRoles(Extension):
    """Rewrite each loaded object's docstring with :func:`rest_to_markdown`."""

    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rest_to_markdown(obj.docstring.value)
