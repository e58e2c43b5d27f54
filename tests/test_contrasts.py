"""lme4's ``contrasts=`` and R's polynomial coding of ordered factors, against R
(reference/contrasts.json, generate_contrasts.R): for contr.treatment, contr.sum, contr.helmert,
contr.poly, contr.SAS, MASS's contr.sdif and a matrix without and with column names, the fixed-effect
model matrix (column names and first rows), the lmer fit on cake (fixef, vcov, logLik, REML
criterion) and predictions on new rows; two contrasted factors in an interaction, with emmeans and
lmerTest's type II and III anova; glmer on cbpp; an ordered Categorical (polynomial contrasts without
``contrasts=``, in fixed and random terms); lme4's default coding of random terms; and the errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.formula.contrasts import Contrast
from mixedmodels.inference.reduced_models import with_fixed_part
from reference_cases import lme4_name
from tolerances import DEGREES_OF_FREEDOM, GLMM, LMM, TEST_STATISTICS, ModelTolerances, Tolerance, assert_close, assert_loglik

REFERENCE: dict[str, Any] = json.loads((Path(__file__).parent / "reference" / "contrasts.json").read_text())
MODEL_MATRIX = Tolerance(relative=1e-12, absolute=1e-12)
# LMM predictions follow the closed-form β̂ of a well-determined REML optimum; a GLMM's follow the
# optimiser's β, as precise as GLMM.fixed_effects, so they get GLMM.fitted.
PREDICTIONS = Tolerance(relative=1e-6)


def cake() -> pd.DataFrame:
    return mm.datasets.load("cake")


def cake_new() -> pd.DataFrame:
    # Plain text and numbers, as new data often come: the model's coding maps them.
    return pd.DataFrame(REFERENCE["cake_new"]).astype({"temp": float})


def contrasts_of(case: dict[str, Any]) -> dict[str, Any]:
    """The case's contrasts= as a user gives them: R's names, or the matrix (a DataFrame when named)."""
    given: dict[str, Any] = {}
    for column, spec in case["contrasts"].items():
        if spec == "matrix":
            given[column] = np.array(case["matrix"], dtype=float)
        elif spec == "named matrix":
            given[column] = pd.DataFrame(case["matrix"], columns=case["matrix_columns"])
        else:
            given[column] = spec
    return given


def check_fit(result: mm.LmerResult | mm.GlmerResult, expected: dict[str, Any], tolerances: ModelTolerances, newdata: pd.DataFrame, what: str) -> None:
    design = result.design
    predictions = PREDICTIONS if tolerances is LMM else tolerances.fitted
    assert [lme4_name(name) for name in design.fixed_names] == expected["columns"], what
    assert_close(design.x[:6], expected["x_head"], MODEL_MATRIX, f"{what} model matrix")
    assert_close(result.params, expected["fixef"], tolerances.fixed_effects, f"{what} fixef")
    se = np.sqrt(np.diag(expected["vcov"]))
    assert_close(result.cov_params(), expected["vcov"], tolerances.fixed_effect_covariances, f"{what} vcov", scale=np.outer(se, se))
    assert_loglik(result.llf, expected["logLik"], tolerances.log_likelihood, f"{what} logLik")
    if "REMLcrit" in expected:
        assert_close(result.REMLcrit, expected["REMLcrit"], tolerances.criteria, f"{what} REML criterion")
    assert_close(result.predict(newdata, include_re=False), expected["predict_fixed"], predictions, f"{what} predict(re.form = NA)")
    assert_close(result.predict(newdata), expected["predict_full"], predictions, f"{what} predict")


@pytest.mark.parametrize("case_id", list(REFERENCE["lmer"]))
def test_lmer_with_contrasts_matches_lme4(case_id: str) -> None:
    expected = REFERENCE["lmer"][case_id]
    m = mm.lmer(expected["formula"], cake(), contrasts=contrasts_of(expected))
    check_fit(m, expected, LMM, cake_new(), case_id)


def test_ordered_categorical_gets_polynomial_contrasts_as_an_r_ordered_factor() -> None:
    expected = REFERENCE["ordered"]
    data = cake()
    data["temperature"] = data["temperature"].cat.as_ordered()
    m = mm.lmer(expected["formula"], data)
    check_fit(m, expected, LMM, cake_new(), "ordered temperature")
    means = mm.emmeans(m, "temperature").table
    assert means["temperature"].astype(str).tolist() == expected["emmeans"]["levels"]
    assert_close(means["emmean"], expected["emmeans"]["emmean"], TEST_STATISTICS, "emmeans")
    assert_close(means["std_error"], expected["emmeans"]["SE"], TEST_STATISTICS, "emmeans SE")
    assert_close(means["df"], expected["emmeans"]["df"], DEGREES_OF_FREEDOM, "emmeans df")
    check_anova(m, expected)


def check_anova(m: mm.LmerResult, expected: dict[str, Any]) -> None:
    """lmerTest's type II and III tables; type III recodes the factors by treatment contrasts and
    maps the hypotheses back (lmerTest's get_contrasts_type3)."""
    for number in (2, 3):
        reference = expected[f"anova_type{number}"]
        table = m.anova(type=number).table
        assert list(table.index) == reference["terms"]
        assert_close(table["F"], reference["F"], TEST_STATISTICS, f"type {number} F")
        assert_close(table["den_df"], reference["den_df"], DEGREES_OF_FREEDOM, f"type {number} den df")


def test_two_contrasted_factors_in_an_interaction_keep_emmeans_and_anova() -> None:
    expected = REFERENCE["lmer"]["two_factors"]
    m = mm.lmer(expected["formula"], cake(), contrasts=contrasts_of(expected))
    means = mm.emmeans(m, "recipe").table
    assert_close(means["emmean"], expected["emmeans"]["emmean"], TEST_STATISTICS, "emmeans")
    assert_close(means["std_error"], expected["emmeans"]["SE"], TEST_STATISTICS, "emmeans SE")
    assert_close(means["df"], expected["emmeans"]["df"], DEGREES_OF_FREEDOM, "emmeans df")
    check_anova(m, expected)


@pytest.mark.parametrize("case_id", list(REFERENCE["glmer"]))
def test_glmer_with_contrasts_matches_lme4(case_id: str) -> None:
    expected = REFERENCE["glmer"][case_id]
    g = mm.glmer(expected["formula"], mm.datasets.load("cbpp"), family="binomial", contrasts=contrasts_of(expected), compat="lme4")
    newdata = pd.DataFrame(REFERENCE["cbpp_new"]).astype({"size": float, "incidence": float})
    check_fit(g, expected, GLMM, newdata, case_id)


def test_random_terms_use_the_default_coding_as_lme4() -> None:
    # contrasts= reaches the fixed part only; an ordered factor is coded by polynomials in both.
    for key, expected in REFERENCE["random_terms"].items():
        data = cake()
        if "ordered" in expected:
            data[expected["ordered"]] = data[expected["ordered"]].cat.as_ordered()
        model = mm.LinearMixedModel.from_formula(expected["formula"], data, contrasts=expected.get("contrasts"))
        assert [lme4_name(name) for name in model.design.fixed_names] == expected["fixed"], key
        assert [lme4_name(name) for name in model.design.terms[0].column_names] == expected["random"], key


def test_reduced_models_and_pickles_keep_the_coding() -> None:
    m = mm.lmer("angle ~ recipe * temp + (1 | replicate)", cake(), contrasts={"recipe": "contr.sum"})
    reduced = with_fixed_part(m.model, "1 + recipe + temp")
    assert reduced.design.fixed_names == ["Intercept", "recipe1", "recipe2", "temp"]
    copy = pickle.loads(pickle.dumps(m))
    assert np.array_equal(copy.predict(cake_new()), m.predict(cake_new()))
    two = mm.lmer("angle ~ recipe * temperature + (1 | replicate)", cake(), contrasts={"recipe": "sum", "temperature": "sdif"})
    assert np.array_equal(pickle.loads(pickle.dumps(two)).predict(cake_new()), two.predict(cake_new()))


def test_contrasts_on_the_levels_of_c_and_full_indicator_coding() -> None:
    data = cake()
    model = mm.LinearMixedModel.from_formula("angle ~ C(recipe) + (1 | replicate)", data, contrasts={"recipe": "contr.helmert"})
    assert model.design.fixed_names == ["Intercept", "C(recipe)1", "C(recipe)2"]
    # Without an intercept a factor is coded by its indicators, whatever its contrasts (R's model.matrix).
    model = mm.LinearMixedModel.from_formula("angle ~ 0 + recipe + (1 | replicate)", data, contrasts={"recipe": "contr.sum"})
    assert model.design.fixed_names == ["recipe[A]", "recipe[B]", "recipe[C]"]
    # An explicit patsy coding in the formula wins over an ordered factor's default.
    data["recipe"] = data["recipe"].cat.as_ordered()
    model = mm.LinearMixedModel.from_formula("angle ~ C(recipe, Treatment) + (1 | replicate)", data)
    assert model.design.fixed_names == ["Intercept", "C(recipe, Treatment)[T.B]", "C(recipe, Treatment)[T.C]"]


@pytest.mark.parametrize(
    ("contrasts", "message"),
    [
        ({"recipe": "contr.foo"}, "unknown contrast 'contr.foo' for 'recipe'"),
        ({"replicate": "contr.sum"}, "contrasts are given for 'replicate', which is not a variable of the fixed part"),
        ({"nothing": "contr.sum"}, "contrasts are given for 'nothing'"),
        ({"temp": "contr.sum"}, "contrasts are given for 'temp', but the formula .* reads it as numbers"),
        ({"recipe": np.ones((4, 2))}, "the contrast matrix for 'recipe' has 4 rows, but the factor has 3 levels"),
        ({"recipe": np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])}, "the contrast matrix for 'recipe' is singular"),
        ({"recipe": np.ones(3)}, "the contrast matrix for 'recipe' is singular"),
        ({"recipe": np.eye(3)}, "the contrast matrix for 'recipe' is singular"),
        ({"recipe": [["a"], ["b"], ["c"]]}, "must be an R contrast's name or a numeric matrix"),
        ({"recipe": np.array([[1.0], [np.nan], [0.0]])}, "must be a finite levels × columns matrix"),
        (["recipe"], "contrasts must be a mapping"),
    ],
)
def test_bad_contrasts_are_refused_naming_the_column(contrasts: Any, message: str) -> None:
    with pytest.raises(mm.SpecificationError, match=message):
        mm.lmer("angle ~ recipe + temp + (1 | replicate)", cake(), contrasts=contrasts)


def test_contrasts_need_two_levels() -> None:
    with pytest.raises(mm.SpecificationError, match="contrasts for 'g' need at least 2 levels"):
        Contrast("g", "sum").code_without_intercept(["a"])
