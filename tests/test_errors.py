"""Bad input gets a typed error naming the culprit; warnings have their own classes; inputs are
never modified; nothing reaches Python as a crash."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels import _core

if TYPE_CHECKING:
    from conftest import ReferenceFits

FORMULA = "Reaction ~ Days + (Days | Subject)"


def test_error_hierarchy() -> None:
    for cls in (mm.FormulaError, mm.DataError, mm.SpecificationError, mm.ConvergenceError):
        assert issubclass(cls, mm.MixedModelError)
    assert issubclass(mm.MixedModelError, ValueError)
    for cls in (mm.ConvergenceWarning, mm.SingularFitWarning, mm.RankDeficiencyWarning):
        assert issubclass(cls, mm.MixedModelWarning) and issubclass(cls, UserWarning)


@pytest.mark.parametrize(
    ("formula", "culprit"),
    [
        ("Reaction ~ Dayz + (Days | Subject)", "Dayz"),
        ("Reaction ~ Days + (Dayz | Subject)", "Dayz"),
        ("Reaction ~ Days + (Days | Subjet)", "Subjet"),
        ("Reactio ~ Days + (Days | Subject)", "Reactio"),
        ("log(Reactio) ~ Days + (Days | Subject)", "Reactio"),
    ],
)
def test_unknown_column_is_named(sleepstudy: pd.DataFrame, formula: str, culprit: str) -> None:
    with pytest.raises(mm.FormulaError, match=culprit):
        mm.lmer(formula, sleepstudy)


def test_unknown_column_suggests_a_case_variant(sleepstudy: pd.DataFrame) -> None:
    with pytest.raises(mm.FormulaError, match="did you mean 'Subject'"):
        mm.lmer("Reaction ~ Days + (Days | subject)", sleepstudy)


def test_unparsable_formula_shows_where(sleepstudy: pd.DataFrame) -> None:
    with pytest.raises(mm.FormulaError) as info:
        mm.lmer("Reaction ~ Days + (Days | Subject", sleepstudy)
    message = str(info.value)
    assert "unbalanced parentheses" in message
    lines = message.splitlines()
    formula_line = next(line for line in lines if "Reaction ~" in line)
    caret_line = lines[lines.index(formula_line) + 1]
    assert formula_line[caret_line.index("^")] == "("


def test_bar_outside_parentheses(sleepstudy: pd.DataFrame) -> None:
    with pytest.raises(mm.FormulaError, match="parentheses"):
        mm.lmer("Reaction ~ Days + 1 | Subject", sleepstudy)


def test_bar_without_grouping_factor(sleepstudy: pd.DataFrame) -> None:
    with pytest.raises(mm.FormulaError, match="grouping factor"):
        mm.lmer("Reaction ~ Days + (Days | )", sleepstudy)


def test_formula_without_random_effects(sleepstudy: pd.DataFrame) -> None:
    with pytest.raises(mm.SpecificationError, match=r"\(1 \| group\)"):
        mm.lmer("Reaction ~ Days + (Days + 1)", sleepstudy)


def test_grouping_factor_with_a_level_per_observation(sleepstudy: pd.DataFrame) -> None:
    data = sleepstudy.assign(row=np.arange(len(sleepstudy)).astype(str))
    with pytest.raises(mm.SpecificationError, match="'row' has 180 levels for 180 observations"):
        mm.lmer("Reaction ~ Days + (1 | row)", data)


def test_more_random_effects_than_observations(sleepstudy: pd.DataFrame) -> None:
    data = sleepstudy.assign(pair=(np.arange(len(sleepstudy)) // 2).astype(str))
    with pytest.raises(mm.SpecificationError, match="unidentifiable"):
        mm.lmer("Reaction ~ Days + (Days | pair)", data)


def test_non_numeric_response(sleepstudy: pd.DataFrame) -> None:
    data = sleepstudy.assign(label=sleepstudy["Reaction"].astype(str))
    with pytest.raises(mm.DataError, match="'label' must be numeric"):
        mm.lmer("label ~ Days + (1 | Subject)", data)


def test_missing_values_are_dropped_counted_and_reported(sleepstudy: pd.DataFrame) -> None:
    data = sleepstudy.copy()
    data.loc[[0, 5], "Reaction"] = np.nan
    data.loc[7, "Days"] = np.inf
    data["Subject"] = data["Subject"].astype(object)
    data.loc[9, "Subject"] = None
    m = mm.lmer(FORMULA, data)
    assert m.n_dropped == 4 and m.nobs == 176
    assert "4 rows with missing values dropped" in str(m.summary())
    assert not m.fittedvalues.index.isin([0, 5, 7, 9]).any()
    complete = mm.lmer(FORMULA, data.drop(index=[0, 5, 7, 9]))
    assert np.allclose(m.params, complete.params, rtol=1e-12)


def test_missing_values_raise_on_request(sleepstudy: pd.DataFrame) -> None:
    data = sleepstudy.copy()
    data.loc[3, "Days"] = np.nan
    with pytest.raises(mm.DataError, match="'Days': 1"):
        mm.lmer(FORMULA, data, na_action="raise")


@pytest.mark.parametrize("bad", [-1.0, np.inf])
def test_bad_weights(sleepstudy: pd.DataFrame, bad: float) -> None:
    weights = np.ones(len(sleepstudy))
    weights[4] = bad
    with pytest.raises(mm.DataError, match="'w'|weights"):
        mm.lmer(FORMULA, sleepstudy.assign(w=weights), weights="w", na_action="raise")
    with pytest.raises(mm.DataError, match="weights"):
        mm.lmer(FORMULA, sleepstudy, weights=weights, na_action="raise")


def test_empty_data(sleepstudy: pd.DataFrame) -> None:
    with pytest.raises(mm.DataError, match="no rows"):
        mm.lmer(FORMULA, sleepstudy.iloc[:0])


def test_all_rows_missing(sleepstudy: pd.DataFrame) -> None:
    with pytest.raises(mm.DataError, match="no rows are left"):
        mm.lmer(FORMULA, sleepstudy.assign(Reaction=np.nan))


def test_data_must_be_a_dataframe(sleepstudy: pd.DataFrame) -> None:
    with pytest.raises(mm.DataError, match="DataFrame"):
        mm.lmer(FORMULA, sleepstudy.to_dict())  # type: ignore[arg-type]


def test_rank_deficient_columns_are_dropped_with_a_warning(sleepstudy: pd.DataFrame, reference_fits: ReferenceFits) -> None:
    data = sleepstudy.assign(Days2=2 * sleepstudy["Days"])
    with pytest.warns(mm.RankDeficiencyWarning, match="Days2"):
        m = mm.lmer("Reaction ~ Days + Days2 + (Days | Subject)", data)
    assert list(m.params.index) == ["Intercept", "Days"]
    reference = reference_fits.lmer("sleepstudy_reml")  # FORMULA
    assert np.allclose(m.params, reference.params, rtol=1e-10)
    assert "rank deficient" in str(m.summary())
    assert len(m.predict(data.head(3))) == 3


@pytest.mark.parametrize("n_rows", [180, 3 * 8192 + 5])
def test_rank_check_keeps_columns_after_a_dropped_one(n_rows: int) -> None:
    # More than one 8,192-row chunk takes the core's tall-skinny QR through its second stage.
    rng = np.random.default_rng(7)
    data = pd.DataFrame({"g": np.arange(n_rows) % 20, "a": rng.normal(size=n_rows), "b": rng.normal(size=n_rows)})
    data["sum"] = data["a"] - 3 * data["b"]
    data["y"] = data["a"] + rng.normal(size=20)[data["g"]] + rng.normal(size=n_rows)
    with pytest.warns(mm.RankDeficiencyWarning, match="dropping 1 column.*: sum$"):
        m = mm.lmer("y ~ a + b + sum + (1 | g)", data)
    assert list(m.params.index) == ["Intercept", "a", "b"]


def test_is_singular_reads_only_the_diagonal_of_each_relative_factor(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")  # FORMULA
    # θ of (Days | Subject) is [λ11, λ21, λ22]: a zero correlation entry is not a boundary.
    assert not dataclasses.replace(m, theta=np.array([1.0, 0.0, 1.0])).is_singular
    assert dataclasses.replace(m, theta=np.array([1.0, 0.5, 5e-5])).is_singular
    assert dataclasses.replace(m, theta=np.array([5e-5, 0.5, 1.0])).is_singular


def test_duplicate_column_names_are_an_error(sleepstudy: pd.DataFrame) -> None:
    data = pd.concat([sleepstudy, sleepstudy[["Days"]]], axis=1)
    with pytest.raises(mm.DataError, match="2 columns named 'Days'"):
        mm.lmer(FORMULA, data)


def test_columns_are_read_the_same_without_pandas_private_accessor(
    sleepstudy: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = sleepstudy.assign(Subject=sleepstudy["Subject"].astype(str), Days=sleepstudy["Days"].astype("Int64"))
    data.loc[4, "Reaction"] = np.nan
    fast = mm.lmer(FORMULA, data)
    monkeypatch.delattr(pd.DataFrame, "_get_column_array", raising=False)
    public = mm.lmer(FORMULA, data)
    assert public.n_dropped == fast.n_dropped == 1
    assert public.params.equals(fast.params) and public.llf == fast.llf


def test_singular_fit_warns(shipped_data: Callable[[str], pd.DataFrame]) -> None:
    with pytest.warns(mm.SingularFitWarning):
        m = mm.lmer("Yield ~ 1 + (1 | Batch)", shipped_data("Dyestuff2"))
    assert m.is_singular and m.theta[0] == 0.0


def test_non_convergence_warns_with_the_reason(sleepstudy: pd.DataFrame) -> None:
    with pytest.warns(mm.ConvergenceWarning) as record:
        m = mm.lmer(FORMULA, sleepstudy, max_evaluations=10)
    # The optimiser's reason, then lme4's gradient check (as lme4 warns both).
    assert "budget was exhausted" in str(record[0].message) and "Model failed to converge" in str(record[1].message)
    assert not m.converged
    assert "did not converge" in str(m.summary())


def test_inputs_are_not_modified(sleepstudy: pd.DataFrame) -> None:
    data = sleepstudy.copy()
    data.loc[2, "Reaction"] = np.nan
    weights = np.linspace(1, 2, len(data))
    before, weights_before = data.copy(deep=True), weights.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer(FORMULA, data, weights=weights)
        m.predict(data.dropna())
    pd.testing.assert_frame_equal(data, before)
    assert np.array_equal(weights, weights_before)


def test_a_row_with_a_missing_predictor_is_predicted_as_nan(sleepstudy: pd.DataFrame, reference_fits: ReferenceFits) -> None:
    """R's predict(m, newdata) passes missing values through (na.action = na.pass): NaN for that
    row, the other rows predicted as without it; a grouping value is only read with the random
    effects."""
    m = reference_fits.lmer("sleepstudy_reml")  # FORMULA
    new = sleepstudy.head(4).copy()
    new["Subject"] = new["Subject"].astype(object)
    new.loc[1, "Subject"] = None
    new.loc[2, "Days"] = np.nan
    complete = np.asarray(m.predict(sleepstudy.head(4).iloc[[0, 3]]))
    conditional = np.asarray(m.predict(new))
    assert np.isnan(conditional[[1, 2]]).all()
    assert np.array_equal(conditional[[0, 3]], complete)
    marginal = np.asarray(m.predict(new, include_re=False))
    assert np.isnan(marginal[2]) and np.isfinite(marginal[[0, 1, 3]]).all()


def test_a_grouping_factor_with_one_level_is_refused(sleepstudy: pd.DataFrame) -> None:
    """lme4's check.nlev.gtr.1: "grouping factors must have > 1 sampled level"."""
    with pytest.raises(mm.SpecificationError, match="'g' has 1 level; grouping factors must have > 1 sampled level"):
        mm.lmer("Reaction ~ Days + (1 | g)", sleepstudy.assign(g="a"))
    cbpp = mm.datasets.load("cbpp").assign(g=1)
    with pytest.raises(mm.SpecificationError, match="must have > 1 sampled level"):
        mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | g)", cbpp, family="binomial")


def test_a_constant_response_is_refused(sleepstudy: pd.DataFrame) -> None:
    with pytest.raises(mm.DataError, match=r"the response is constant \(every value 5\)"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy.assign(Reaction=5.0))
    model = mm.LinearMixedModel.from_formula("Reaction ~ Days + (1 | Subject)", sleepstudy)
    with pytest.raises(mm.DataError, match="the response is constant"):
        model.refit(np.full(len(sleepstudy), 2.5))


@pytest.mark.parametrize("alpha", [2.0, 0.0, 1.0, -0.1, True, "0.05"])
def test_wald_intervals_need_an_alpha_between_0_and_1(alpha: object, reference_fits: ReferenceFits) -> None:
    with pytest.raises(mm.SpecificationError, match="alpha must be between 0 and 1"):
        reference_fits.lmer("sleepstudy_reml").conf_int(alpha)  # type: ignore[arg-type]


def test_predict_with_an_unseen_fixed_effect_level(shipped_data: Callable[[str], pd.DataFrame]) -> None:
    cake = shipped_data("cake")
    m = mm.lmer("angle ~ recipe + temp + (1 | recipe:replicate)", cake)
    new = cake.head(2).assign(recipe=["A", "Z"])
    with pytest.raises(mm.DataError, match="Z"):
        m.predict(new)


def test_predict_without_a_needed_column(sleepstudy: pd.DataFrame, reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")  # FORMULA
    with pytest.raises(mm.FormulaError, match="Days"):
        m.predict(sleepstudy.drop(columns="Days"))


def test_core_rejects_bad_arrays_with_typed_errors() -> None:
    x = np.asfortranarray(np.ones((4, 1)))
    z = np.ones((4, 1))
    with pytest.raises(mm.DataError, match="out of range"):
        _core.LinearMixedModel(x, [(np.array([0, 1, 2, 5], dtype=np.uint32), 3, z)], None)
    with pytest.raises(mm.DataError, match="observations"):
        _core.LinearMixedModel(x, [(np.array([0, 1], dtype=np.uint32), 2, np.ones((2, 1)))], None)
    with pytest.raises(TypeError, match="Fortran"):
        _core.LinearMixedModel(np.ones((4, 2)), [(np.array([0, 1, 0, 1], dtype=np.uint32), 2, z)], None)
    model = _core.LinearMixedModel(x, [(np.array([0, 1, 0, 1], dtype=np.uint32), 2, z)], None)
    with pytest.raises(mm.DataError, match="theta has 2 values"):
        model.objective(np.arange(4.0), [1.0, 1.0], True)
    with pytest.raises(mm.DataError, match="non-finite"):
        model.objective(np.array([1.0, np.nan, 2.0, 3.0]), [1.0], True)


def test_an_unknown_covariance_method_is_refused(reference_fits: ReferenceFits) -> None:
    with pytest.raises(mm.SpecificationError, match="method must be 'hessian' or 'factor', not 'bogus'"):
        reference_fits.glmer("cbpp_binomial").cov_params("bogus")  # type: ignore[arg-type]


def test_a_new_response_series_is_aligned_on_its_index(sleepstudy: pd.DataFrame, reference_fits: ReferenceFits) -> None:
    """refit(series) follows the Series' labels (a shuffled Series is the same response); labels
    that are not the fitted rows are refused rather than read by position."""
    m = reference_fits.lmer("sleepstudy_reml")
    shuffled = sleepstudy["Reaction"].sample(frac=1.0, random_state=1)
    assert m.refit(shuffled).llf == m.refit(sleepstudy["Reaction"].to_numpy()).llf
    swapped = sleepstudy["Reaction"].iloc[[1, 0, *range(2, len(sleepstudy))]]  # days 0 and 1 of one subject
    assert m.refit(swapped.to_numpy()).llf != m.refit(swapped).llf
    with pytest.raises(mm.DataError, match="whose index is not the model's 180 fitted rows"):
        m.refit(pd.Series(sleepstudy["Reaction"].to_numpy(), index=sleepstudy.index + 1000))


@pytest.mark.parametrize(
    ("transform", "problem"),
    [
        (lambda y: y * 1e155, "reaches 4.66e\\+157 in absolute value: its sums of squares over- or underflow"),
        (lambda y: y * 1e-300, "reaches 4.66e-298 in absolute value"),
        (lambda y: y + 1e9, "varies by 56.2 around 1000000299 .* subtract a constant such as 1e\\+09 first"),
    ],
)
def test_a_response_double_precision_cannot_fit_is_refused(
    transform: Callable[[pd.Series], pd.Series], problem: str, sleepstudy: pd.DataFrame
) -> None:
    """They gave σ = 0, log-lik = +inf and "converged" without a warning."""
    with pytest.raises(mm.DataError, match=problem):
        mm.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy.assign(Reaction=transform(sleepstudy["Reaction"])))


def test_a_covariate_double_precision_cannot_fit_is_refused(sleepstudy: pd.DataFrame) -> None:
    """A covariate times 1e160 was dropped as "rank deficient"; now the column is named."""
    with pytest.raises(mm.DataError, match="column 'Days' reaches 9e\\+160 in absolute value"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy.assign(Days=sleepstudy["Days"] * 1e160))
    with pytest.raises(mm.DataError, match=r"column 'Days in \(Days \| Subject\)' reaches 9e-200"):
        mm.lmer("Reaction ~ 1 + (Days | Subject)", sleepstudy.assign(Days=sleepstudy["Days"] * 1e-200))


def test_complex_values_are_refused_not_truncated(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    with pytest.raises(mm.DataError, match="the new response must be real numbers, not complex"):
        m.refit(np.ones(180) + 1j)
    with pytest.raises(mm.DataError, match="theta must be real numbers"):
        m.model.objective(np.array([1.0 + 1j, 0.0, 1.0]))
