"""Bad input gets a typed error naming the culprit; warnings have their own classes; inputs are
never modified; nothing reaches Python as a crash."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels import _core

FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture
def sleep() -> pd.DataFrame:
    return mm.datasets.load("sleepstudy")


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
def test_unknown_column_is_named(sleep: pd.DataFrame, formula: str, culprit: str) -> None:
    with pytest.raises(mm.FormulaError, match=culprit):
        mm.lmer(formula, sleep)


def test_unknown_column_suggests_a_case_variant(sleep: pd.DataFrame) -> None:
    with pytest.raises(mm.FormulaError, match="did you mean 'Subject'"):
        mm.lmer("Reaction ~ Days + (Days | subject)", sleep)


def test_unparsable_formula_shows_where(sleep: pd.DataFrame) -> None:
    with pytest.raises(mm.FormulaError) as info:
        mm.lmer("Reaction ~ Days + (Days | Subject", sleep)
    message = str(info.value)
    assert "unbalanced parentheses" in message
    lines = message.splitlines()
    formula_line = next(line for line in lines if "Reaction ~" in line)
    caret_line = lines[lines.index(formula_line) + 1]
    assert formula_line[caret_line.index("^")] == "("


def test_bar_outside_parentheses(sleep: pd.DataFrame) -> None:
    with pytest.raises(mm.FormulaError, match="parentheses"):
        mm.lmer("Reaction ~ Days + 1 | Subject", sleep)


def test_bar_without_grouping_factor(sleep: pd.DataFrame) -> None:
    with pytest.raises(mm.FormulaError, match="grouping factor"):
        mm.lmer("Reaction ~ Days + (Days | )", sleep)


def test_formula_without_random_effects(sleep: pd.DataFrame) -> None:
    with pytest.raises(mm.SpecificationError, match=r"\(1 \| group\)"):
        mm.lmer("Reaction ~ Days + (Days + 1)", sleep)


def test_grouping_factor_with_a_level_per_observation(sleep: pd.DataFrame) -> None:
    data = sleep.assign(row=np.arange(len(sleep)).astype(str))
    with pytest.raises(mm.SpecificationError, match="'row' has 180 levels for 180 observations"):
        mm.lmer("Reaction ~ Days + (1 | row)", data)


def test_more_random_effects_than_observations(sleep: pd.DataFrame) -> None:
    data = sleep.assign(pair=(np.arange(len(sleep)) // 2).astype(str))
    with pytest.raises(mm.SpecificationError, match="unidentifiable"):
        mm.lmer("Reaction ~ Days + (Days | pair)", data)


def test_non_numeric_response(sleep: pd.DataFrame) -> None:
    data = sleep.assign(label=sleep["Reaction"].astype(str))
    with pytest.raises(mm.DataError, match="'label' must be numeric"):
        mm.lmer("label ~ Days + (1 | Subject)", data)


def test_missing_values_are_dropped_counted_and_reported(sleep: pd.DataFrame) -> None:
    data = sleep.copy()
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


def test_missing_values_raise_on_request(sleep: pd.DataFrame) -> None:
    data = sleep.copy()
    data.loc[3, "Days"] = np.nan
    with pytest.raises(mm.DataError, match="'Days': 1"):
        mm.lmer(FORMULA, data, na_action="raise")


@pytest.mark.parametrize("bad", [-1.0, np.inf, 0.0])
def test_bad_weights(sleep: pd.DataFrame, bad: float) -> None:
    weights = np.ones(len(sleep))
    weights[4] = bad
    with pytest.raises(mm.DataError, match="'w'|weights"):
        mm.lmer(FORMULA, sleep.assign(w=weights), weights="w", na_action="raise")
    with pytest.raises(mm.DataError, match="weights"):
        mm.lmer(FORMULA, sleep, weights=weights, na_action="raise")


def test_empty_data(sleep: pd.DataFrame) -> None:
    with pytest.raises(mm.DataError, match="no rows"):
        mm.lmer(FORMULA, sleep.iloc[:0])


def test_all_rows_missing(sleep: pd.DataFrame) -> None:
    with pytest.raises(mm.DataError, match="no rows are left"):
        mm.lmer(FORMULA, sleep.assign(Reaction=np.nan))


def test_data_must_be_a_dataframe(sleep: pd.DataFrame) -> None:
    with pytest.raises(mm.DataError, match="DataFrame"):
        mm.lmer(FORMULA, sleep.to_dict())  # type: ignore[arg-type]


def test_rank_deficient_columns_are_dropped_with_a_warning(sleep: pd.DataFrame) -> None:
    data = sleep.assign(Days2=2 * sleep["Days"])
    with pytest.warns(mm.RankDeficiencyWarning, match="Days2"):
        m = mm.lmer("Reaction ~ Days + Days2 + (Days | Subject)", data)
    assert list(m.params.index) == ["Intercept", "Days"]
    reference = mm.lmer(FORMULA, sleep)
    assert np.allclose(m.params, reference.params, rtol=1e-10)
    assert "rank deficient" in str(m.summary())
    assert len(m.predict(data.head(3))) == 3


def test_singular_fit_warns() -> None:
    with pytest.warns(mm.SingularFitWarning):
        m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff2"))
    assert m.is_singular and m.theta[0] == 0.0


def test_non_convergence_warns_with_the_reason(sleep: pd.DataFrame) -> None:
    with pytest.warns(mm.ConvergenceWarning, match="budget was exhausted"):
        m = mm.lmer(FORMULA, sleep, max_evaluations=10)
    assert not m.converged
    assert "did not converge" in str(m.summary())


def test_inputs_are_not_modified(sleep: pd.DataFrame) -> None:
    data = sleep.copy()
    data.loc[2, "Reaction"] = np.nan
    weights = np.linspace(1, 2, len(data))
    before, weights_before = data.copy(deep=True), weights.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer(FORMULA, data, weights=weights)
        m.predict(data.dropna())
    pd.testing.assert_frame_equal(data, before)
    assert np.array_equal(weights, weights_before)


def test_predict_with_a_missing_grouping_value(sleep: pd.DataFrame) -> None:
    m = mm.lmer(FORMULA, sleep)
    new = sleep.head(3).copy()
    new["Subject"] = new["Subject"].astype(object)
    new.loc[1, "Subject"] = None
    with pytest.raises(mm.DataError, match="grouping variable 'Subject' is missing"):
        m.predict(new)


def test_predict_with_an_unseen_fixed_effect_level() -> None:
    cake = mm.datasets.load("cake")
    m = mm.lmer("angle ~ recipe + temp + (1 | recipe:replicate)", cake)
    new = cake.head(2).assign(recipe=["A", "Z"])
    with pytest.raises(mm.DataError, match="Z"):
        m.predict(new)


def test_predict_without_a_needed_column(sleep: pd.DataFrame) -> None:
    m = mm.lmer(FORMULA, sleep)
    with pytest.raises(mm.FormulaError, match="Days"):
        m.predict(sleep.drop(columns="Days"))


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
