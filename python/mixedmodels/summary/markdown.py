"""A summary as Markdown (for reports, issues and documentation pages).

Example
-------
>>> import mixedmodels as mm
>>> from mixedmodels.summary.tables import SummaryTables
>>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
>>> print(render_markdown(SummaryTables.of(m)).splitlines()[0])
**Linear mixed model fit by REML**
"""

from __future__ import annotations

from .tables import RANDOM_COLUMNS, SummaryTables


def _table(header: list[str], rows: list[list[str]], right_from: int) -> list[str]:
    """A pipe table whose columns from ``right_from`` on are right-aligned."""

    def escape(cell: str) -> str:
        return cell.replace("|", "\\|")

    rule = ["---:" if c >= right_from else "---" for c in range(len(header))]
    return ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in [header, rule, *rows]]


def render_markdown(tables: SummaryTables) -> str:
    """The summary's tables as Markdown pipe tables, from the same tables as the text and HTML.

    >>> import mixedmodels as mm
    >>> from mixedmodels.summary.tables import SummaryTables
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> "| Groups | Name | Variance | Std.Dev. | Corr |" in render_markdown(SummaryTables.of(m))
    True
    """
    title, *details = [line for line in tables.header if line]
    lines = [f"**{title}**", ""]
    lines += [f"    {line}" for text in details for line in text.splitlines()]
    lines += ["", "Random effects:", ""] + _table(RANDOM_COLUMNS, tables.random, right_from=2)
    lines += ["", tables.groups, "", "Fixed effects:", ""]
    fixed_rows = [[name, *(f"{v:.4g}" for v in values)] for name, values in zip(tables.fixed.index, tables.fixed.to_numpy())]
    lines += _table(["", *tables.fixed.columns], fixed_rows, right_from=1)
    lines += [""] + [f"- {note}" for note in tables.notes]
    return "\n".join(lines)
