"""Per-gene linear mixed models: :func:`lmer_many`, one design fitted to many responses (as
variancePartition's ``dream`` runs lme4 and lmerTest for every gene), in parallel in the core.

The design is built and checked once; every gene is then fitted from lme4's start (never from
another gene's estimates) on its observed samples and its own weights, in the centred and scaled
parameterisation :func:`mixedmodels.lmer` optimises in, and mapped back to the user's
parameters for all genes at once. Satterthwaite's degrees of freedom come from the core's
derivatives at each gene's estimates (lmerTest's), combined for all genes with array operations.

Example
-------
>>> import numpy as np, mixedmodels as mm
>>> samples = mm.datasets.load("sleepstudy")
>>> Y = np.vstack([samples["Reaction"], np.log(samples["Reaction"])])
>>> res = mm.lmer_many("~ Days + (1 | Subject)", samples, Y, coef="Days")
>>> res.table["df"].round(1).tolist()
[161.0, 161.0]
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
from ..formula.design import Design, build_design, warn_if_rank_deficient
from ..formula.frames import DataFrameLike
from ..formula.parser import parse_formula
from ..inference.kenward_roger import denominator_degrees_of_freedom
from ..models.base import as_float_array
from ..models.internal_parameterisation import InternalParameterisation
from ..models.linear import LinearMixedModel
from ..results.names import display_name, make_unique
from ..results.optimization import SINGULAR_TOLERANCE
from ..results.variance_components import relative_covariance_factors
from .chunks import checked_backend, checked_chunk_size, fit_in_chunks
from .responses import AnnDataResponses, InMemoryResponses, ResponseChunks, batch_matrix, batch_samples, dream_normalised, is_anndata
from .result import BatchResult, benjamini_hochberg, standardised_z

DDF_METHODS = ("satterthwaite", "asymptotic", "kenward-roger")


def lmer_many(
    formula: str,
    samples: DataFrameLike | Any,
    Y: DataFrameLike | np.ndarray | None = None,
    *,
    weights: DataFrameLike | np.ndarray | None = None,
    layer: str | None = None,
    weights_layer: str | None = None,
    coef: str | Sequence[str] | None = None,
    contrasts: pd.DataFrame | pd.Series | np.ndarray | None = None,
    ddf: str = "satterthwaite",
    REML: bool = True,
    n_jobs: int = -1,
    chunk_size: int | None = None,
    progress: bool | None = None,
    backend: str | None = None,
    client: Any | None = None,
) -> BatchResult:
    """Fit ``formula`` to every row of ``Y`` (one response per gene) as :func:`mixedmodels.lmer`
    fits one, in parallel, and test the fixed-effect coefficients of every gene.

    Parameters
    ----------
    formula
        An lme4 formula without a left-hand side, e.g. ``"~ condition + age + (1 | donor)"``:
        the responses are the rows of ``Y``.
    samples
        One row per sample: the variables of the formula. Samples with a missing value in one
        of them are left out (for every gene). A pandas DataFrame, whose index holds the sample
        ids, or a polars DataFrame or pyarrow Table, whose first column holds them (and stays a
        variable too); the ids are needed only to match a table ``Y``. Or an AnnData (cells or pseudobulk samples ×
        genes): the design comes from its ``.obs``, the responses from ``layer`` (``.X`` if
        None), dense or scipy sparse, the gene ids from ``var_names``; ``Y`` and ``weights``
        are then not given (see :meth:`BatchResult.to_anndata` to store the results in it).
    Y
        Genes × samples: a DataFrame whose index names the genes and whose columns are the
        sample ids of ``samples.index`` (in any order; every sample exactly once), or an array
        whose columns are in ``samples``' row order. Or a polars DataFrame or pyarrow Table (read
        through Arrow, without Python objects): its columns named by sample ids (compared as
        text, so that numeric ids match) are the samples, in any order; its first column, when
        its name is not a sample id, holds the gene ids (e.g. a ``gene`` column of text or of
        Entrez numbers), else the genes are numbered 0, 1, ... NaN (or ±inf; null in a polars or
        Arrow table) marks a missing value: that gene is fitted to its other samples
        (``n_obs``).
    weights
        Per-gene precision weights (e.g. voom's), the shape of ``Y`` (a DataFrame with Y's
        index and columns, or a polars or Arrow table laid out as ``Y``, with its genes): as variancePartition's ``dream``, each gene's weights are divided
        by their mean over all its samples (those with a missing response too) before fitting.
        This leaves every estimate and test unchanged except σ, θ and the variance fractions.
    layer, weights_layer
        With an AnnData: the layers holding the responses (None: ``.X``) and the weights.
    coef
        The coefficients to test (names as in ``lmer(...).params``); default every one.
    contrasts
        Instead of ``coef``: linear combinations Lβ to test, one t-test per row of L and gene
        (lmerTest's ``contest1D``, as dream's ``L=``): a DataFrame whose index names the
        contrasts and whose columns are coefficient names (missing ones count 0), a Series (one
        contrast, named by its name) or an array with a column per coefficient (rows named
        ``L1``, ``L2``, ...). The table's ``coef`` column holds the contrasts' names.
    ddf
        ``"satterthwaite"`` (lmerTest's and dream's default), ``"kenward-roger"`` (REML only:
        pbkrtest's adjusted standard error and degrees of freedom in the table, as lmerTest's
        ``summary(m, ddf = "Kenward-Roger")``; with prior weights, Kenward and Roger's method on
        the weighted covariance, which pbkrtest itself ignores) or ``"asymptotic"`` (z-tests).
    REML
        REML (default) or maximum likelihood.
    n_jobs
        Threads to use: -1 for all, else a positive number (with ``backend="dask"`` and no
        client: the number of worker processes to start). Results do not depend on it.
    chunk_size
        Genes per call into the core (default: 256, or 32 per thread on many cores; on Dask
        about four chunks per worker thread, 256 to 4,096 genes): between chunks the progress
        bar moves, and only one chunk of an AnnData layer is dense at a time (on Dask, two per
        worker thread). Results do not depend on it.
    progress
        True: a progress bar (needs tqdm); False: none; None (default): one when stderr is a
        terminal and tqdm is installed.
    backend, client
        ``"local"`` (the default without a client): the genes are fitted in this process.
        ``"dask"`` (the default with a ``client``, a ``distributed.Client``): each chunk of
        genes is a task on the Dask cluster's workers, which run the same core and return the
        same numbers; without a client a ``distributed.LocalCluster`` is started for the fit
        (single-threaded worker processes, one per core) and closed after it: in a script, call
        it under ``if __name__ == "__main__":``, as Dask's worker processes need. Needs
        ``pip install mixedmodels[dask]``.

    Notes
    -----
    Where a gene's fit puts a variance on its boundary (a singular fit), the criterion is probed
    off the boundary and the optimiser restarted from a better point if one exists, so that no
    gene is left at a variance of 0 below an interior optimum (lme4 itself does not check).

    A gene that cannot be fitted (constant, all missing, too few observations, bad weights, a
    grouping factor with one level left on its samples, a numerical failure) gets NaN estimates
    and its reason in the ``error`` column; every other gene is fitted. Problems common to all
    genes (the formula, the samples, the shapes and sample ids of ``Y`` and ``weights``) raise
    before any fitting. Ctrl-C stops the fit within a fraction of a second (KeyboardInterrupt),
    discarding what was fitted (on Dask, the chunks not yet done are cancelled).

    Example
    -------
    >>> import numpy as np, mixedmodels as mm
    >>> samples = mm.datasets.load("Dyestuff")
    >>> Y = np.vstack([samples["Yield"], np.full(30, 3.0)])
    >>> res = mm.lmer_many("~ 1 + (1 | Batch)", samples, Y)
    >>> res.table["error"].isna().tolist(), res.table["error"].iloc[1][:24]  # no error for the first gene
    ([True, False], 'the response is constant')
    """
    reml = _checked_flag(REML, "REML")
    method = _checked_ddf(ddf, reml)
    where = checked_backend(backend, client, n_jobs)
    genes_per_chunk = checked_chunk_size(chunk_size)
    design, source = _design_and_responses(formula, samples, Y, weights, layer, weights_layer)
    names = list(design.fixed_names)
    tested, contrast_matrix = tested_contrasts(coef, contrasts, names)

    internal = InternalParameterisation.of(design)
    fitting = design if internal.is_identity else internal.design(design)
    fit_chunk = LinearChunkFitter(fitting.x, LinearMixedModel._core_terms(fitting), internal, reml, method, contrast_matrix)
    fit = fit_in_chunks(fit_chunk, source, where, chunk_size=genes_per_chunk, progress=progress, description="lmer_many")

    estimate = fit["beta"] @ contrast_matrix.T
    std_errors = np.sqrt(np.diagonal(fit["covariance"], axis1=1, axis2=2))
    std_error = fit["tested_std_error"]
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = estimate / std_error
    df = fit["df"]
    p_value = 2 * special.ndtr(-np.abs(statistic)) if method == "asymptotic" else 2 * special.stdtr(df, -np.abs(statistic))

    genes_index = pd.Index(source.genes)
    table = _table(genes_index, tested, estimate, std_error, df, statistic, p_value)
    fitted = np.asarray(pd.isna(fit["errors"]))
    per_gene = {
        "sigma": fit["sigma"],
        "loglik": -fit["objective"] / 2,
        "converged": fit["converged"],
        "singular": _singular(fit["internal_theta"], design) & fitted,
        "n_obs": fit["n_obs"],
        "error": fit["errors"],
    }
    for column, values in per_gene.items():
        table[column] = np.repeat(values, len(tested))
    return BatchResult(
        table=table,
        fixef=pd.DataFrame(fit["beta"], index=genes_index, columns=names),
        std_errors=pd.DataFrame(std_errors, index=genes_index, columns=names),
        theta=pd.DataFrame(fit["theta"], index=genes_index, columns=_theta_names(design)),
        beta_covariance=fit["covariance"],
        variance_fractions=_variance_fractions(fit["theta"], fit["sigma"], design, genes_index),
    )


@dataclass(frozen=True)
class LinearChunkFitter:
    """What every gene shares (the design in the parameterisation it is fitted in, the map back
    to the user's, the criterion and the tests), fitting one chunk of genes at a time: picklable,
    to run on a Dask worker as well as here (see :mod:`.chunks`).

    Called with a chunk (``y``: kept samples × genes, Fortran order), it fits every gene in the
    core and returns its estimates in the user's parameterisation and the standard errors and
    degrees of freedom (∞ for z-tests) of the tested contrasts (the rows of ``contrasts``).

    >>> import numpy as np, mixedmodels as mm
    >>> design = mm.LinearMixedModel.from_formula("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff")).design
    >>> fit = LinearChunkFitter(design.x, LinearMixedModel._core_terms(design), InternalParameterisation.of(design), True, "satterthwaite", np.eye(1))
    >>> fit(np.asfortranarray(design.y[:, np.newaxis]), None, 1)["beta"].round(1).tolist()
    [[1527.5]]
    """

    x: np.ndarray
    terms: list[Any]
    internal: InternalParameterisation
    reml: bool
    method: str
    contrasts: np.ndarray

    def __call__(self, y: np.ndarray, weights: np.ndarray | None, threads: int) -> dict[str, np.ndarray]:
        x, terms, internal, reml = self.x, self.terms, self.internal, self.reml
        fit = _core.fit_linear_batch(x, terms, y, reml, weights=weights, threads=threads)
        errors = np.array(fit.errors, dtype=object)
        fitted = np.asarray(pd.isna(errors))
        internal_theta = np.asarray(fit.theta)
        theta = internal_theta.copy()
        beta = np.asarray(fit.beta)
        internal_covariance = covariance = np.asarray(fit.beta_covariance)
        objective = np.asarray(fit.objective)
        sigma = np.asarray(fit.sigma)
        if not internal.is_identity:
            if fitted.any():
                theta[fitted] = internal.theta_to_user(internal_theta[fitted])
            beta = internal.beta_to_user(beta)
            covariance = internal.fixed_covariance_to_user(covariance)
            if reml:
                objective = objective - internal.reml_criterion_shift
        std_error = np.sqrt(contrast_variances(self.contrasts, covariance))
        if self.method == "satterthwaite":
            # In the parameterisation of the fit, as mm.lmer's Satterthwaite (the df do not depend on
            # how the variance parameters are parameterised; Cov(β̂)'s Jacobian maps through B).
            derivatives = _core.linear_batch_variance_parameter_derivatives(
                x, terms, y, np.ascontiguousarray(internal_theta), sigma, reml, weights=weights, threads=threads
            )
            jacobian = np.asarray(derivatives.beta_covariance_jacobian)
            if not internal.is_identity:
                jacobian = internal.fixed_derivatives_to_user(jacobian)
            df = _satterthwaite_df(covariance, np.asarray(derivatives.covariance), jacobian, self.contrasts)
            _record_failures(errors, fitted, derivatives.errors, "Satterthwaite's degrees of freedom")
        elif self.method == "kenward-roger":
            adjustments = _core.linear_batch_kenward_roger(x, terms, y, np.ascontiguousarray(internal_theta), sigma, weights=weights, threads=threads)
            adjusted = np.asarray(adjustments.adjusted_beta_covariance)
            # ΦPᵢΦ in the fit's parameterisation, mapped to β's as Φ is (B·Bᵀ).
            sandwiches = np.einsum("gpq,gmqr,grs->gmps", internal_covariance, np.asarray(adjustments.information_derivatives), internal_covariance)
            if not internal.is_identity:
                adjusted = internal.fixed_covariance_to_user(adjusted)
                sandwiches = internal.fixed_derivatives_to_user(sandwiches)
            df = _kenward_roger_df(covariance, sandwiches, np.asarray(adjustments.parameter_covariance), self.contrasts)
            std_error = np.sqrt(contrast_variances(self.contrasts, adjusted))
            _record_failures(errors, fitted, adjustments.errors, "Kenward-Roger's adjustment")
        else:
            df = np.full((len(sigma), len(self.contrasts)), np.inf)
        return {
            "internal_theta": internal_theta,
            "theta": theta,
            "beta": beta,
            "covariance": covariance,
            "objective": objective,
            "sigma": sigma,
            "converged": np.asarray(fit.converged),
            "n_obs": np.asarray(fit.n_obs).astype(np.int64),
            "errors": errors,
            "df": df,
            "tested_std_error": std_error,
        }


def _record_failures(errors: np.ndarray, fitted: np.ndarray, failures: list[str | None], what: str) -> None:
    """Record, on fitted genes, why ``what`` could not be computed."""
    reasons = np.array(failures, dtype=object)
    failed = fitted & np.asarray(pd.notna(reasons))
    errors[failed] = f"{what}: " + reasons[failed]


# ----- common input, checked before any fitting -------------------------------------------------
def _checked_ddf(ddf: object, reml: bool) -> str:
    method = ddf.lower() if isinstance(ddf, str) else ddf
    if method not in DDF_METHODS:
        raise SpecificationError(f"ddf must be one of {', '.join(map(repr, DDF_METHODS))}, not {ddf!r}")
    if method == "kenward-roger" and not reml:
        raise SpecificationError("ddf='kenward-roger' needs REML fits (as pbkrtest and lmerTest); use REML=True or ddf='satterthwaite'")
    return str(method)


def _checked_flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise SpecificationError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def _design_and_responses(
    formula: str, samples: Any, Y: object, weights: object, layer: str | None, weights_layer: str | None
) -> tuple[Design, ResponseChunks]:
    """The design and where the genes' responses come from: an AnnData (design from its
    ``obs``) or ``samples`` and the matrices ``Y`` and ``weights``."""
    if is_anndata(samples):
        if Y is not None or weights is not None:
            raise SpecificationError("with an AnnData the responses come from its layer= (or .X) and the weights from weights_layer=: do not give Y or weights")
        adata: Any = samples
        design, kept = _batch_design(formula, adata.obs)
        return design, AnnDataResponses(adata, layer, weights_layer, kept)
    if layer is not None or weights_layer is not None:
        raise SpecificationError("layer= and weights_layer= name layers of an AnnData; samples is not one")
    if Y is None:
        raise DataError("Y (genes × samples) is missing; only an AnnData carries its own responses")
    samples = batch_samples(samples)
    Y = batch_matrix(Y, samples.index, "Y")
    weights = batch_matrix(weights, samples.index, "weights")
    design, kept = _batch_design(formula, samples)
    genes, responses = _responses(Y, samples, kept)
    frame_genes = genes if isinstance(Y, pd.DataFrame) else None
    gene_weights = None if weights is None else _weights(weights, frame_genes, (len(genes), len(samples)), samples, kept)
    return design, InMemoryResponses(genes, responses, gene_weights)


def _batch_design(formula: str, samples: pd.DataFrame) -> tuple[Design, np.ndarray]:
    """The design of ``formula`` on ``samples`` with a placeholder response, and the positions of
    the samples it keeps (those without missing values in the formula's variables)."""
    if not isinstance(formula, str):
        raise FormulaError(f"the formula must be a string, not {type(formula).__name__}")
    if not formula.strip().startswith("~"):
        raise FormulaError(f"lmer_many takes the responses from Y: write the formula without a left-hand side, e.g. '~ {formula.split('~')[-1].strip()}'")
    placeholder = "response"
    while placeholder in samples.columns:
        placeholder = "_" + placeholder
    data = samples.reset_index(drop=True).assign(**{placeholder: 0.0})
    design = build_design(parse_formula(f"{placeholder} {formula.strip()}"), data)
    warn_if_rank_deficient(design)
    return design, np.asarray(design.row_index, dtype=np.intp)


def _responses(Y: object, samples: pd.DataFrame, kept: np.ndarray) -> tuple[pd.Index, np.ndarray]:
    """The genes and their responses (G × kept samples, in the design's row order)."""
    if isinstance(Y, pd.DataFrame):
        ordered = _aligned_frame(Y, samples, "Y")
        return Y.index, _kept_columns(_float_matrix(_frame_numbers(ordered, "Y"), "Y"), kept)
    values = _float_matrix(Y, "Y")
    if values.shape[1] != len(samples):
        raise DataError(f"Y has {values.shape[1]} columns but samples has {len(samples)} rows: Y must be genes × samples")
    return pd.RangeIndex(values.shape[0]), _kept_columns(values, kept)


def _kept_columns(values: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The columns of the samples the design keeps; no copy when it keeps every one."""
    return values if len(kept) == values.shape[1] else values[:, kept]


def _weights(weights: object, frame_genes: pd.Index | None, shape: tuple[int, int], samples: pd.DataFrame, kept: np.ndarray) -> np.ndarray:
    """Each gene's weights over its mean weight over all its samples (dream's), kept samples;
    ``frame_genes``: Y's index when Y is a DataFrame, ``shape``: genes × samples."""
    if isinstance(weights, pd.DataFrame):
        if frame_genes is None or not weights.index.equals(frame_genes):
            raise DataError("weights given as a DataFrame must have the index (genes) of Y, in the same order")
        values = _float_matrix(_frame_numbers(_aligned_frame(weights, samples, "weights"), "weights"), "weights")
    else:
        values = _float_matrix(weights, "weights")
        if values.shape != shape:
            raise DataError(f"weights have shape {values.shape}, Y {shape}: they must be the same")
    return _kept_columns(dream_normalised(values), kept)


def _aligned_frame(frame: pd.DataFrame, samples: pd.DataFrame, what: str) -> pd.DataFrame:
    """``frame``'s columns in ``samples``' row order, refusing unknown, missing or repeated ids."""
    if not samples.index.is_unique:
        raise DataError(
            f"samples' index (a polars or Arrow table's first column) has repeated sample ids; {what} as a table is matched to it by column name"
        )
    if not frame.columns.is_unique:
        raise DataError(f"{what} has repeated column (sample) names")
    unknown = frame.columns.difference(samples.index)
    if len(unknown):
        raise DataError(f"{what} has {len(unknown)} sample id(s) that are not in samples.index, e.g. {list(unknown[:3])}")
    missing = samples.index.difference(frame.columns)
    if len(missing):
        raise DataError(f"{len(missing)} sample(s) of samples.index are not columns of {what}, e.g. {list(missing[:3])}")
    return frame.loc[:, samples.index]


def _frame_numbers(frame: pd.DataFrame, what: str) -> np.ndarray:
    """A DataFrame's values as float64, missing values (NaN, or NA of nullable and Arrow-backed
    columns, as a Parquet file's columns with nulls are read) as NaN."""
    try:
        return np.asarray(frame.to_numpy(dtype=float, na_value=np.nan))
    except (TypeError, ValueError) as err:
        raise DataError(f"{what} must be numbers: {err}") from None


def _float_matrix(values: object, what: str) -> np.ndarray:
    array = as_float_array(values, what)
    if array.ndim != 2:
        raise DataError(f"{what} must be two-dimensional (genes × samples), not {array.ndim}-dimensional")
    if array.shape[0] == 0:
        raise DataError(f"{what} has no genes (rows)")
    return np.ascontiguousarray(array)


def tested_contrasts(coef: object, contrasts: object, names: list[str]) -> tuple[list[str], np.ndarray]:
    """The names and the matrix L (one row per test, a column per coefficient) of the tests a
    batch fit reports: ``coef``'s coefficients (default every one) or the rows of ``contrasts``.

    >>> tested_contrasts(None, pd.Series({"b": 1.0, "c": -1.0}, name="b - c"), ["a", "b", "c"])
    (['b - c'], array([[ 0.,  1., -1.]]))
    """
    if contrasts is not None:
        if coef is not None:
            raise SpecificationError("give coef (coefficients to test) or contrasts (linear combinations to test), not both")
        return _contrast_rows(contrasts, names)
    if coef is None:
        return names, np.eye(len(names))
    tested = [coef] if isinstance(coef, str) else list(coef)  # type: ignore[call-overload]
    unknown = [name for name in tested if name not in names]
    if unknown or not tested:
        raise SpecificationError(f"coef must name fixed-effect coefficients among {names}, not {unknown or tested}")
    return tested, np.eye(len(names))[[names.index(name) for name in tested]]


def _contrast_rows(contrasts: object, names: list[str]) -> tuple[list[str], np.ndarray]:
    if isinstance(contrasts, pd.Series):
        contrasts = contrasts.to_frame(name=contrasts.name if contrasts.name is not None else "L1").T
    if isinstance(contrasts, pd.DataFrame):
        unknown = [str(column) for column in contrasts.columns if column not in names]
        if unknown:
            raise SpecificationError(f"contrasts has columns that are not coefficients: {unknown}; the coefficients are {names}")
        labels = [str(label) for label in contrasts.index]
        values = contrasts.reindex(columns=names, fill_value=0.0).to_numpy(dtype=float)
    else:
        values = np.atleast_2d(np.asarray(contrasts, dtype=float))
        if values.ndim != 2 or values.shape[1] != len(names):
            raise SpecificationError(f"contrasts must have a column per coefficient ({len(names)}: {names}), not shape {values.shape}")
        labels = [f"L{row + 1}" for row in range(values.shape[0])]
    if values.shape[0] == 0 or not np.isfinite(values).all() or not np.any(values != 0, axis=1).all():
        raise SpecificationError("contrasts must have at least one row, finite values and no row of zeros")
    if len(set(labels)) != len(labels):
        raise SpecificationError(f"contrasts' names must be distinct: {labels}")
    return labels, values


def contrast_variances(contrasts: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """Var(Lβ̂) of every gene (rows) and contrast (columns): the diagonal of L·Cov·Lᵀ."""
    return np.asarray(np.einsum("tp,gpq,tq->gt", contrasts, covariance, contrasts))


# ----- per-gene results, for all genes at once -------------------------------------------------
def _satterthwaite_df(covariance: np.ndarray, varpar_covariance: np.ndarray, jacobian: np.ndarray, contrasts: np.ndarray) -> np.ndarray:
    """ν = 2 Var(lᵀβ̂)² / gᵀAg with gᵢ = ∂Var(lᵀβ̂)/∂φᵢ, for every gene (rows) and contrast l
    (columns); see :mod:`mixedmodels.inference.satterthwaite`."""
    variance = contrast_variances(contrasts, covariance)
    gradient = np.einsum("tp,gkpq,tq->gkt", contrasts, jacobian, contrasts)
    denominator = np.einsum("gkc,gkl,glc->gc", gradient, varpar_covariance, gradient)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(2 * variance**2 / denominator)


def _kenward_roger_df(covariance: np.ndarray, sandwiches: np.ndarray, parameter_covariance: np.ndarray, contrasts: np.ndarray) -> np.ndarray:
    """Kenward and Roger's df of every gene (rows) and contrast l (columns) as a 1-df test
    (pbkrtest's ``Lb_ddf``): with one restriction tr(UᵢUⱼ) = tr Uᵢ tr Uⱼ, so A₁ = A₂ =
    Σᵢⱼ Wᵢⱼ tr Uᵢ tr Uⱼ with tr Uᵢ = lᵀΦPᵢΦl / lᵀΦl; see :mod:`mixedmodels.inference.kenward_roger`."""
    variance = contrast_variances(contrasts, covariance)
    with np.errstate(divide="ignore", invalid="ignore"):
        traces = np.einsum("tp,gmpq,tq->gmt", contrasts, sandwiches, contrasts) / variance[:, np.newaxis, :]
    a = np.einsum("gmc,gmn,gnc->gc", traces, parameter_covariance, traces)
    return denominator_degrees_of_freedom(a, a, 1)[0]


def _table(
    genes: pd.Index, tested: list[str], estimate: np.ndarray, std_error: np.ndarray, df: np.ndarray, statistic: np.ndarray, p_value: np.ndarray
) -> pd.DataFrame:
    p_adj = np.column_stack([benjamini_hochberg(p_value[:, c]) for c in range(len(tested))])
    return pd.DataFrame(
        {
            "gene": np.repeat(genes.to_numpy(), len(tested)),
            "coef": np.tile(np.array(tested, dtype=object), len(genes)),
            "estimate": estimate.ravel(),
            "std_error": std_error.ravel(),
            "df": df.ravel(),
            "statistic": statistic.ravel(),
            "p_value": p_value.ravel(),
            "p_adj": p_adj.ravel(),
            "z_std": standardised_z(statistic, p_value).ravel(),
        }
    )


def _singular(internal_theta: np.ndarray, design: Design) -> np.ndarray:
    """lme4's ``isSingular`` of every gene: a diagonal θ within 1e-4 of 0, judged in the
    parameterisation the fit was optimised in (as ``LmerResult.is_singular``)."""
    diagonal, position = [], 0
    for term in design.terms:
        for column in range(term.k):
            diagonal.append(position)
            position += term.k - column
    with np.errstate(invalid="ignore"):
        return np.asarray(np.any(internal_theta[:, diagonal] < SINGULAR_TOLERANCE, axis=1))


def _theta_names(design: Design) -> list[str]:
    """lme4's θ names: ``group.column`` on λ's diagonal, ``group.row.column`` below it."""
    names = []
    groups = make_unique([term.group_name for term in design.terms])
    for group, term in zip(groups, design.terms):
        columns = [display_name(name) for name in term.column_names]
        for column in range(term.k):
            names.append(f"{group}.{columns[column]}")
            names += [f"{group}.{columns[row]}.{columns[column]}" for row in range(column + 1, term.k)]
    return names


def _variance_fractions(theta: np.ndarray, sigma: np.ndarray, design: Design, genes: pd.Index) -> pd.DataFrame:
    """Each random-effects variance (σ² diag(ΛΛᵀ), one per column of every term: ``group`` for a
    one-column term, ``group.column`` otherwise) and σ², over their sum, for every gene."""
    factors = relative_covariance_factors(theta, [term.k for term in design.terms])
    variances, names = [], []
    groups = make_unique([term.group_name for term in design.terms])
    for group, term, factor in zip(groups, design.terms, factors):
        variances.append(np.sum(factor**2, axis=-1) * (sigma**2)[:, np.newaxis])
        names += [group] if term.k == 1 else [f"{group}.{display_name(name)}" for name in term.column_names]
    components = np.column_stack([*variances, sigma**2])
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = components / components.sum(axis=1, keepdims=True)
    return pd.DataFrame(fractions, index=genes, columns=[*names, "Residual"])
