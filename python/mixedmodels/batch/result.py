"""The result of a batch fit (:func:`mixedmodels.lmer_many`): columnar tables with one row per
gene (or per gene and tested coefficient), no Python object per gene.

Example
-------
>>> import numpy as np
>>> benjamini_hochberg(np.array([0.01, 0.04, np.nan, 0.03])).round(3).tolist()
[0.03, 0.04, nan, 0.04]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from ..errors import DataError

# The columns of BatchResult.table with a value per gene and tested coefficient, and with one per gene.
PER_TEST = ("estimate", "std_error", "df", "statistic", "p_value", "p_adj", "z_std")
PER_GENE = ("sigma", "loglik", "converged", "singular", "n_obs", "error")


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (R's ``p.adjust(p, "BH")``), NaN left out of the
    count and kept as NaN.

    >>> benjamini_hochberg(np.array([0.02, 0.01])).tolist()
    [0.02, 0.02]
    """
    adjusted = np.full(p_values.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p_values))
    m = finite.size
    if m == 0:
        return adjusted
    order = finite[np.argsort(p_values[finite], kind="stable")[::-1]]
    ranks = np.arange(m, 0, -1)
    adjusted[order] = np.minimum(1.0, np.minimum.accumulate(p_values[order] * m / ranks))
    return adjusted


def standardised_z(statistic: np.ndarray, p_values: np.ndarray) -> np.ndarray:
    """sign(t)·Φ⁻¹(1 − p/2): the z-score of the same two-sided p-value (variancePartition's
    ``z.std`` in ``topTable`` of a ``dream`` fit), computed as −Φ⁻¹(p/2) to keep tiny p exact.

    >>> standardised_z(np.array([-3.0]), np.array([0.05])).round(4).tolist()
    [-1.96]
    """
    return np.asarray(np.sign(statistic) * -special.ndtri(p_values / 2))


@dataclass(frozen=True)
class BatchResult:
    """Per-gene fits of one mixed model (see :func:`mixedmodels.lmer_many`).

    ``table`` has one row per gene and tested coefficient (gene-major): ``gene``, ``coef``,
    ``estimate``, ``std_error``, ``df``, ``statistic``, ``p_value``, ``p_adj``
    (Benjamini–Hochberg within each coefficient, over the genes that have a p-value), ``z_std``,
    ``sigma``, ``loglik`` (the REML log-likelihood for REML fits, as lme4's ``logLik``),
    ``converged``, ``singular``, ``n_obs`` and ``error`` (why a gene has no estimates, else
    missing).
    ``fixef`` and ``std_errors`` (gene × coefficient), ``theta`` (gene × θ in lme4's order and
    names), ``beta_covariance`` (G × p × p), ``variance_fractions`` (gene × component: each
    random-effects variance and the residual variance over their sum; fixed effects are not
    counted, unlike variancePartition's ``calcVarPart``) hold every gene's estimates.

    >>> import numpy as np, mixedmodels as mm
    >>> samples = mm.datasets.load("Dyestuff")
    >>> res = mm.lmer_many("~ 1 + (1 | Batch)", samples, np.vstack([samples["Yield"], 2 * samples["Yield"]]))
    >>> res.table[["gene", "estimate", "df"]].round(2).to_dict("list")
    {'gene': [0, 1], 'estimate': [1527.5, 3055.0], 'df': [5.0, 5.0]}
    """

    table: pd.DataFrame
    fixef: pd.DataFrame
    std_errors: pd.DataFrame
    theta: pd.DataFrame
    beta_covariance: np.ndarray
    variance_fractions: pd.DataFrame

    @property
    def genes(self) -> pd.Index:
        """The genes, in the order of Y's rows."""
        return self.fixef.index

    def to_parquet(self, path: str | Path) -> None:
        """Write :attr:`table` to a Parquet file (needs pyarrow).

        >>> import tempfile, os, numpy as np, mixedmodels as mm
        >>> samples = mm.datasets.load("Dyestuff")
        >>> res = mm.lmer_many("~ 1 + (1 | Batch)", samples, samples["Yield"].to_numpy()[np.newaxis])
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     res.to_parquet(os.path.join(folder, "results.parquet"))
        ...     len(pd.read_parquet(os.path.join(folder, "results.parquet")))
        1
        """
        try:
            import pyarrow  # noqa: F401 - only to say clearly that it is missing
        except ImportError:
            raise ImportError("BatchResult.to_parquet needs pyarrow: pip install pyarrow") from None
        self.table.to_parquet(path, index=False)

    def to_polars(self) -> Any:
        """:attr:`table` as a polars DataFrame (needs polars and pyarrow: ``pip install
        mixedmodels[polars]``), converted through Arrow; the other results stay pandas.

        >>> import numpy as np, mixedmodels as mm
        >>> samples = mm.datasets.load("Dyestuff")
        >>> res = mm.lmer_many("~ 1 + (1 | Batch)", samples, samples["Yield"].to_numpy()[np.newaxis])
        >>> res.to_polars().select("gene", "coef", "n_obs").rows()
        [(0, 'Intercept', 30)]
        """
        try:
            import polars
        except ImportError:
            raise ImportError("BatchResult.to_polars needs polars: pip install mixedmodels[polars]") from None
        return polars.from_pandas(self.table)

    @property
    def coefficients(self) -> list[str]:
        """The tested coefficients, in the order of :attr:`table`'s rows for each gene."""
        return list(self.table["coef"].iloc[: len(self.table) // len(self.genes)])

    def per_gene(self, statistic: str) -> pd.DataFrame:
        """One column of :attr:`table` as gene × tested coefficient (``estimate``, ``p_value``, ...).

        >>> import numpy as np, mixedmodels as mm
        >>> samples = mm.datasets.load("sleepstudy")
        >>> res = mm.lmer_many("~ Days + (1 | Subject)", samples, samples["Reaction"].to_numpy()[np.newaxis])
        >>> res.per_gene("estimate").round(2)
           Intercept   Days
        0     251.41  10.47
        """
        if statistic not in PER_TEST:
            raise DataError(f"statistic must be one of {list(PER_TEST)}, not {statistic!r}")
        values = self.table[statistic].to_numpy().reshape(len(self.genes), -1)
        return pd.DataFrame(values, index=self.genes, columns=self.coefficients)

    def to_anndata(self, adata: Any, key: str = "lmer_many") -> None:
        """Store the results in the AnnData whose genes were fitted, keyed by its ``var_names``
        (decoupler's layout: a gene × coefficient DataFrame per statistic):
        ``adata.varm[f"{key}_{statistic}"]`` for ``estimate``, ``std_error``, ``df``,
        ``statistic``, ``p_value``, ``p_adj``, ``z_std`` and ``variance_fractions``;
        ``adata.var[f"{key}_{column}"]`` for ``sigma``, ``loglik``, ``converged``, ``singular``,
        ``n_obs`` and ``error`` (empty text for a fitted gene). ``h5ad`` files keep them all.

        >>> import numpy as np, pandas as pd, mixedmodels as mm
        >>> from types import SimpleNamespace
        >>> samples = mm.datasets.load("sleepstudy")
        >>> res = mm.lmer_many("~ Days + (1 | Subject)", samples, samples["Reaction"].to_numpy()[np.newaxis])
        >>> adata = SimpleNamespace(var_names=pd.Index([0]), var=pd.DataFrame(index=[0]), varm={})  # an AnnData's parts
        >>> res.to_anndata(adata)
        >>> adata.varm["lmer_many_p_value"].columns.tolist(), adata.var["lmer_many_n_obs"].tolist()
        (['Intercept', 'Days'], [180])
        """
        genes = pd.Index(adata.var_names)
        if not genes.equals(self.genes):
            raise DataError("the AnnData's var_names are not the genes of this result (in the same order)")
        for statistic in PER_TEST:
            adata.varm[f"{key}_{statistic}"] = self.per_gene(statistic).set_axis(genes)
        adata.varm[f"{key}_variance_fractions"] = self.variance_fractions.set_axis(genes)
        first_rows = self.table.iloc[:: len(self.coefficients)]
        for column in PER_GENE:
            values = first_rows[column].to_numpy()
            if column == "error":
                values = pd.Series(values).fillna("").astype(str).to_numpy()
            adata.var[f"{key}_{column}"] = values
