"""A summary as plain text, in lme4's ``summary(merMod)`` layout.

Example
-------
>>> import mixedmodels as mm
>>> from mixedmodels.summary.tables import SummaryTables
>>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
>>> print(render_text(SummaryTables.of(m)).splitlines()[0])
Linear mixed model fit by REML
"""

from __future__ import annotations

from .tables import RANDOM_COLUMNS, SummaryTables


def render_text(tables: SummaryTables) -> str:
    """The summary's text: header, scaled residuals, random effects, fixed effects, their
    correlation and the notes.

    >>> import mixedmodels as mm
    >>> from mixedmodels.summary.tables import SummaryTables
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> "Random effects:" in render_text(SummaryTables.of(m))
    True
    """
    lines = list(tables.header)
    lines += ["", "Scaled residuals:", "     Min       1Q   Median       3Q      Max"]
    lines.append(" ".join(f"{q:8.4f}" for q in tables.residual_quantiles))
    lines += ["", "Random effects:"]
    table = [RANDOM_COLUMNS] + tables.random
    widths = [max(len(row[c]) for row in table) for c in range(len(RANDOM_COLUMNS))]
    for row in table:
        aligned = (cell.ljust(widths[c]) if c < 2 else cell.rjust(widths[c]) for c, cell in enumerate(row))
        lines.append(" " + " ".join(aligned).rstrip())
    lines.append(tables.groups)
    lines += ["", "Fixed effects:", tables.fixed.to_string(float_format=lambda v: f"{v:.4g}")]
    if tables.fixed_correlation is not None:
        correlation = tables.fixed_correlation.to_numpy()
        names = list(tables.fixed_correlation.index)
        width = max(len(n) for n in names)
        lines += ["", "Correlation of Fixed Effects:"]
        lines.append(" " * (width + 1) + " ".join(n[:6].rjust(6) for n in names[:-1]))
        for i in range(1, len(names)):
            cells = [f"{correlation[i, j]:6.3f}" for j in range(i)]
            lines.append(names[i].ljust(width) + " " + " ".join(cells))
    lines += [""] + tables.notes
    return "\n".join(lines)
