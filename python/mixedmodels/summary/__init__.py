"""lme4-style summaries of results: :class:`Summary` builds the tables once
(:mod:`.tables`) and renders them as text (``str``), HTML (notebooks) and Markdown.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> s = m.summary()
>>> str(s).splitlines()[0], s.to_markdown().splitlines()[0]
('Linear mixed model fit by REML', '**Linear mixed model fit by REML**')
"""

from __future__ import annotations

import functools

from ..results import MixedModelResult
from .html import render_html
from .markdown import render_markdown
from .tables import SummaryTables
from .text import render_text

__all__ = ["Summary", "SummaryTables"]


class Summary:
    """lme4's ``summary(merMod)``: ``str()`` gives the text layout, notebooks show HTML,
    :meth:`to_markdown` gives Markdown; all three render the same :class:`SummaryTables`.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> m.summary().tables.groups
    'Number of obs: 30, groups:  Batch, 6'
    """

    def __init__(self, result: MixedModelResult, ddf: str | None = None):
        self.result = result
        self.ddf = ddf

    @functools.cached_property
    def tables(self) -> SummaryTables:
        """The summary's tables, built on first use."""
        return SummaryTables.of(self.result, self.ddf)

    def __str__(self) -> str:
        return render_text(self.tables)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return render_html(self.tables)

    def to_markdown(self) -> str:
        """The summary as Markdown.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
        >>> "Fixed effects:" in m.summary().to_markdown()
        True
        """
        return render_markdown(self.tables)
