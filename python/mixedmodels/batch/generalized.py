"""Per-gene count models: :func:`glmer_many`, one Poisson or negative binomial GLMM design fitted
to many count responses (as R users loop lme4's ``glmer`` or ``glmer.nb`` over genes), in
parallel in the core.

The design and the offset are built and checked once; every gene is then fitted from lme4's
start on its observed samples, in the centred and scaled parameterisation :func:`mixedmodels.glmer`
optimises in (lme4's own with ``compat="lme4"``), the negative binomial's size estimated per gene
by ``glmer.nb``'s search inside the core, and the estimates mapped back to the user's
parameters for all genes at once.

Example
-------
>>> import numpy as np, mixedmodels as mm
>>> ticks = mm.datasets.load("grouseticks")
>>> counts = np.vstack([ticks["TICKS"], ticks["TICKS"] // 2])
>>> res = mm.glmer_many("~ YEAR + (1 | BROOD)", ticks, counts, family="poisson")
>>> res.table["df"].unique().tolist()
[inf]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from .. import _core
from ..errors import DataError, FormulaError, SpecificationError
from ..formula.frames import DataFrameLike
from ..models.base import as_float_array, checked_compat
from ..models.generalized import GeneralizedLinearMixedModel
from ..models.internal_parameterisation import InternalParameterisation
from .chunks import checked_backend, checked_chunk_size, fit_in_chunks
from .linear import _batch_design, _responses, _singular, _table, _theta_names, contrast_variances, tested_contrasts
from .responses import InMemoryResponses, batch_matrix, batch_samples
from .result import BatchResult

COUNT_FAMILIES = ("poisson", "negative_binomial")


def glmer_many(
    formula: str,
    samples: DataFrameLike,
    counts: DataFrameLike | np.ndarray,
    *,
    family: str = "poisson",
    offset: str | np.ndarray | pd.Series | None = None,
    coef: str | Sequence[str] | None = None,
    contrasts: pd.DataFrame | pd.Series | np.ndarray | None = None,
    nAGQ: int = 1,
    compat: str | None = None,
    n_jobs: int = -1,
    chunk_size: int | None = None,
    progress: bool | None = None,
    backend: str | None = None,
    client: Any | None = None,
) -> BatchResult:
    """Fit the count model ``formula`` (log link) to every row of ``counts`` (one gene each) as
    :func:`mixedmodels.glmer` (Poisson) or :func:`mixedmodels.glmer_nb` (negative binomial, its
    size estimated per gene) fits one, in parallel, with Wald z-tests of the fixed effects
    (lme4's ``summary``).

    Parameters
    ----------
    formula
        An lme4 formula without a left-hand side, e.g. ``"~ condition + (1 | donor)"``; it may
        hold ``offset(...)`` terms.
    samples
        One row per sample: the variables of the formula. Samples with a missing value in one
        of them are left out (for every gene). A pandas DataFrame (its index holds the sample
        ids), or a polars DataFrame or pyarrow Table (its first column holds them), as for
        :func:`~mixedmodels.lmer_many`.
    counts
        Genes × samples: a DataFrame whose index names the genes and whose columns are the
        sample ids of ``samples.index`` (in any order), a polars or Arrow table laid out as
        :func:`~mixedmodels.lmer_many`'s ``Y``, or an array whose columns are in ``samples``'
        row order. NaN marks a missing value: that gene is fitted to its other samples
        (``n_obs``).
    family
        ``"poisson"`` or ``"negative_binomial"`` (lme4's ``glmer.nb``: the size θ estimated for
        each gene, reported in the table's ``nb_size`` column).
    offset
        A known part of the linear predictor common to every gene, e.g. ``np.log(library_size)``:
        a column name of ``samples`` or one value per sample (in ``samples``' row order).
    coef
        The coefficients to test (names as in ``glmer(...).params``); default every one.
    contrasts
        Instead of ``coef``: linear combinations Lβ to test (Wald z-tests), as
        :func:`~mixedmodels.lmer_many`'s ``contrasts``.
    nAGQ
        1 (default): Laplace approximation; 0: lme4's faster nAGQ = 0.
    compat
        ``None``: the exact Laplace approximation; ``"lme4"``: lme4 1.1's objective and
        parameterisation, to reproduce lme4's digits (see :func:`mixedmodels.glmer`).
    n_jobs, chunk_size, progress, backend, client
        As for :func:`mixedmodels.lmer_many`: the threads (or, on a Dask LocalCluster started
        for the fit, its workers), the genes per call into the core, the progress bar, and
        where the chunks run (``"local"``, or ``"dask"`` with or without a ``client``). Results
        depend on none of them.

    Notes
    -----
    The table's ``df`` is infinite (z-tests), ``std_error`` comes from the Hessian of the
    objective as lme4's ``vcov`` (from the factorisation for nAGQ = 0), ``sigma`` is 1 (these
    families have no dispersion) and ``loglik`` is lme4's ``logLik``. ``variance_fractions`` has
    no columns: a count GLMM has no residual variance on the scale of its random effects to
    divide by (lme4 has none either); ``theta`` holds the random effects' relative factors (for
    ``(1 | donor)`` the donor standard deviation on the log scale).

    A gene that cannot be fitted (all zero, all missing, a grouping factor with one level left
    on its samples, a numerical failure) gets NaN estimates and its reason in ``error``; every
    other gene is fitted. Problems common to all genes (the formula, the samples, the offset,
    the shape and sample ids of ``counts``) raise before any fitting.

    Example
    -------
    >>> import numpy as np, mixedmodels as mm
    >>> ticks = mm.datasets.load("grouseticks")
    >>> res = mm.glmer_many("~ YEAR + (1 | BROOD)", ticks, ticks["TICKS"].to_numpy()[np.newaxis],
    ...                     family="negative_binomial", coef="YEAR[T.97]")
    >>> round(float(res.table["nb_size"].iloc[0]), 1)
    3.3
    """
    if not isinstance(family, str) or family not in COUNT_FAMILIES:
        raise SpecificationError(f"family must be 'poisson' or 'negative_binomial', not {family!r}")
    if isinstance(nAGQ, (bool, np.bool_)) or nAGQ not in (0, 1):
        raise SpecificationError(f"nAGQ must be 0 or 1 for batch count fits, not {nAGQ!r}")
    mode = checked_compat(compat)
    where = checked_backend(backend, client, n_jobs)
    genes_per_chunk = checked_chunk_size(chunk_size)
    if isinstance(formula, str) and not formula.strip().startswith("~"):
        raise FormulaError(f"glmer_many takes the responses from counts: write the formula without a left-hand side, e.g. '~ {formula.split('~')[-1].strip()}'")
    samples = batch_samples(samples)
    counts = batch_matrix(counts, samples.index, "counts")
    design, kept = _batch_design(formula, samples)
    genes, responses = _responses(counts, samples, kept)
    names = list(design.fixed_names)
    tested, contrast_matrix = tested_contrasts(coef, contrasts, names)
    total_offset = _offset(offset, samples, kept)
    if design.offset is not None:
        total_offset = total_offset + design.offset

    internal = InternalParameterisation.of(design)
    in_user_coordinates = mode == "lme4" or internal.is_identity
    fitting = design if in_user_coordinates else internal.design(design)
    fit_chunk = CountChunkFitter(
        fitting.x,
        GeneralizedLinearMixedModel._core_terms(fitting),
        np.ascontiguousarray(total_offset),
        family,
        int(nAGQ),
        "lme4" if mode == "lme4" else "exact",
        None if in_user_coordinates else internal,
    )
    source = InMemoryResponses(pd.Index(genes), responses, None)
    fit = fit_in_chunks(fit_chunk, source, where, chunk_size=genes_per_chunk, progress=progress, description="glmer_many")
    beta, covariance, theta, errors = fit["beta"], fit["covariance"], fit["theta"], fit["errors"]
    fitted = np.asarray(pd.isna(errors))
    std_errors = np.sqrt(np.diagonal(covariance, axis1=1, axis2=2))

    estimate = beta @ contrast_matrix.T
    std_error = np.sqrt(contrast_variances(contrast_matrix, covariance))
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = estimate / std_error
    p_value = 2 * special.ndtr(-np.abs(statistic))
    genes_index = pd.Index(genes)
    table = _table(genes_index, tested, estimate, std_error, np.full(statistic.shape, np.inf), statistic, p_value)
    per_gene = {"sigma": np.where(fitted, 1.0, np.nan)}
    if family == "negative_binomial":
        per_gene["nb_size"] = fit["size"]
    per_gene |= {
        "loglik": -fit["minus_twice_log_likelihood"] / 2,
        "converged": fit["converged"],
        "singular": _singular(fit["internal_theta"], design) & fitted,
        "n_obs": fit["n_obs"],
        "error": errors,
    }
    for column, values in per_gene.items():
        table[column] = np.repeat(values, len(tested))
    return BatchResult(
        table=table,
        fixef=pd.DataFrame(beta, index=genes_index, columns=names),
        std_errors=pd.DataFrame(std_errors, index=genes_index, columns=names),
        theta=pd.DataFrame(theta, index=genes_index, columns=_theta_names(design)),
        beta_covariance=covariance,
        variance_fractions=pd.DataFrame(index=genes_index),
    )


@dataclass(frozen=True)
class CountChunkFitter:
    """What every gene shares (the design in the parameterisation it is fitted in, the offset,
    the family and the approximation, and the map back to the user's parameters: None when the
    fit is in them), fitting one chunk of genes at a time: picklable, to run on a Dask worker as
    well as here (see :mod:`.chunks`).

    >>> import numpy as np, mixedmodels as mm
    >>> design = mm.GeneralizedLinearMixedModel.from_formula("TICKS ~ 1 + (1 | BROOD)", mm.datasets.load("grouseticks"), family="poisson").design
    >>> fit = CountChunkFitter(design.x, GeneralizedLinearMixedModel._core_terms(design), np.zeros(len(design.y)), "poisson", 1, "exact", None)
    >>> fit(np.asfortranarray(design.y[:, np.newaxis]), None, 1)["errors"].tolist()
    [None]
    """

    x: np.ndarray
    terms: list[Any]
    offset: np.ndarray
    family: str
    n_agq: int
    laplace: str
    internal: InternalParameterisation | None

    def __call__(self, y: np.ndarray, weights: np.ndarray | None, threads: int) -> dict[str, np.ndarray]:
        fit = _core.fit_count_batch(self.x, self.terms, y, self.offset, self.family, n_agq=self.n_agq, laplace=self.laplace, threads=threads)
        errors = np.array(fit.errors, dtype=object)
        internal_theta = np.asarray(fit.theta)
        theta = internal_theta.copy()
        beta = np.asarray(fit.beta)
        covariance = np.asarray(fit.beta_covariance)
        if self.internal is not None:
            fitted = np.asarray(pd.isna(errors))
            if fitted.any():
                theta[fitted] = self.internal.theta_to_user(internal_theta[fitted])
            beta = self.internal.beta_to_user(beta)
            covariance = self.internal.fixed_covariance_to_user(covariance)
        return {
            "internal_theta": internal_theta,
            "theta": theta,
            "beta": beta,
            "covariance": covariance,
            "size": np.asarray(fit.size),
            "minus_twice_log_likelihood": np.asarray(fit.minus_twice_log_likelihood),
            "converged": np.asarray(fit.converged),
            "n_obs": np.asarray(fit.n_obs).astype(np.int64),
            "errors": errors,
        }


def _offset(offset: str | np.ndarray | pd.Series | None, samples: pd.DataFrame, kept: np.ndarray) -> np.ndarray:
    """The common offset on the kept samples (zeros without one), checked: finite, one value per
    sample."""
    if offset is None:
        return np.zeros(len(kept))
    if isinstance(offset, str):
        if offset not in samples.columns:
            raise DataError(f"the offset {offset!r} is not a column of samples")
        values = as_float_array(samples[offset], f"offset {offset!r}")
    else:
        values = as_float_array(offset, "offset")
    if values.ndim != 1 or len(values) != len(samples):
        raise DataError(f"the offset must have one value per sample ({len(samples)}), not shape {values.shape}")
    values = values[kept]
    if not np.all(np.isfinite(values)):
        raise DataError(f"the offset has {int(np.sum(~np.isfinite(values)))} missing or infinite values on the samples used")
    return np.ascontiguousarray(values)
