"""broom.mixed's ``augment(m)``: the fitted rows of the data with a column per observation-level
diagnostic.

Columns added (broom.mixed 0.2.9's names): ``.fitted`` (fitted values, random effects included,
on the link scale as broom.mixed's: η̂ for a GLMM, μ̂ for a linear model), ``.fixed`` (population-level predictions Xβ̂ + offset, on the link
scale for a GLMM, as ``predict(m, re.form = NA)``), ``.mu`` (μ̂), ``.offset``, ``.weights``
(prior weights), ``.resid`` (lme4's default residuals: response residuals for a linear model,
deviance residuals for a GLMM), ``.pearson`` (Pearson residuals), ``.hat`` (hat values, see
:mod:`mixedmodels.diagnostics.leverage`) and ``.cooksd``, lme4's observation-level
``cooks.distance(m)``:

  .cooksd = (rᵢ / (1 − hᵢ))² hᵢ / (σ̂² p),  rᵢ the Pearson residual, p the rank of X,

a one-step approximation from the hat values, not the case-deletion Cook's distance of
:func:`~mixedmodels.diagnostics.influence`. Everything is O(n): no n × n matrix.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> augment(m).columns[-4:].tolist()
['.resid', '.pearson', '.hat', '.cooksd']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..results.base import MixedModelResult
from ..results.generalized import GlmerResult
from .leverage import hatvalues


def augment(result: MixedModelResult) -> pd.DataFrame:
    """The data's fitted rows (labels kept; all the data's columns when the model has its data,
    else the response) with the diagnostic columns of the module's docstring.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> round(float(augment(m)[".hat"].iloc[0]), 4)
    0.1638
    """
    design = result.design
    rows = design.row_index
    data = result.model.data
    frame = data.loc[rows].copy() if data is not None else pd.DataFrame({design.parsed.response: design.y}, index=rows)
    offset = result._offset()
    fixed = design.x @ result._beta + offset
    mu = result._fitted_means()
    fitted = mu
    if isinstance(result, GlmerResult):
        fitted = result.eta
        weights = np.asarray(result.prior_weights, dtype=float)
        residuals = result.residuals("deviance").to_numpy()
    else:
        weights = np.ones(result.nobs) if design.weights is None else np.asarray(design.weights, dtype=float)
        residuals = result.residuals("response").to_numpy()
    pearson = result.residuals("pearson").to_numpy()
    hat = hatvalues(result).to_numpy()
    p = np.linalg.matrix_rank(design.x)
    with np.errstate(divide="ignore", invalid="ignore"):
        cooks = (pearson / (1 - hat)) ** 2 * hat / (result.sigma**2 * p)
    cooks[np.isinf(cooks)] = np.nan
    columns = {
        ".fitted": fitted,
        ".fixed": fixed,
        ".mu": mu,
        ".offset": offset,
        ".weights": weights,
        ".resid": residuals,
        ".pearson": pearson,
        ".hat": hat,
        ".cooksd": cooks,
    }
    for name, values in columns.items():
        frame[name] = np.asarray(values, dtype=float)
    return frame
