"""A summary as HTML, for notebooks.

Example
-------
>>> import mixedmodels as mm
>>> from mixedmodels.summary.tables import SummaryTables
>>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
>>> render_html(SummaryTables.of(m)).count("<table")
2
"""

from __future__ import annotations

import html

import pandas as pd

from .tables import RANDOM_COLUMNS, SummaryTables


def render_html(tables: SummaryTables) -> str:
    """The summary's header, random-effects and fixed-effects tables and notes as HTML.

    >>> import mixedmodels as mm
    >>> from mixedmodels.summary.tables import SummaryTables
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> render_html(SummaryTables.of(m)).startswith("<div>")
    True
    """
    header = "<br>".join(html.escape(line) for line in tables.header if line)
    random = pd.DataFrame(tables.random, columns=RANDOM_COLUMNS)
    notes = "<br>".join(html.escape(n) for n in tables.notes)
    return (
        f"<div><p><b>{header}</b></p>"
        f"<p><b>Random effects</b></p>{random.to_html(index=False)}"
        f"<p>{html.escape(tables.groups)}</p>"
        f"<p><b>Fixed effects</b></p>{tables.fixed.to_html(float_format=lambda v: f'{v:.4g}')}"
        f"<p><small>{notes}</small></p></div>"
    )
