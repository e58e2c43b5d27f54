"""Griffe extension for the API reference. Our docstrings head their doctests "Example" (one
example), which numpydoc-style parsers read as an admonition of prose rather than as the
"Examples" section, and many put a doctest in the prose without a heading; rename the heading,
and fence every doctest block as a ``pycon`` code block so that its output (``[0.054, 0.0]``)
is not read as Markdown."""

from __future__ import annotations

import ast
import re
from typing import Any

import griffe

_EXAMPLE_HEADING = re.compile(r"^Example\n-------$", re.MULTILINE)


def _fence_doctests(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i])
                i += 1
            out += [f"{indent}```pycon", *block, f"{indent}```"]
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, node: ast.AST | griffe.ObjectNode, obj: griffe.Object, agent: griffe.Visitor | griffe.Inspector, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _fence_doctests(_EXAMPLE_HEADING.sub("Examples\n--------", obj.docstring.value))
