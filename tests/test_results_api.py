"""The result object's API: names, consistency between its parts, refit, pickling and display."""

from __future__ import annotations

import pickle
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm
from reference_cases import load_case
from tolerances import LMM, assert_close

if TYPE_CHECKING:
    from conftest import ReferenceFits

FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def fitted(sleepstudy: pd.DataFrame) -> mm.LmerResult:
    # Fitted to the shipped dataset (not the reference cache) so the summary names its data.
    return mm.lmer(FORMULA, sleepstudy)


def test_wald_quantities_follow_from_estimates(fitted: mm.LmerResult) -> None:
    assert np.allclose(fitted.tvalues, fitted.params / fitted.bse)
    # An LMM's p-values are lmerTest's: t-tests with Satterthwaite's degrees of freedom.
    df = fitted.coef_table()["df"]
    assert np.allclose(fitted.pvalues, 2 * stats.t.sf(np.abs(fitted.tvalues), df))
    assert np.allclose(fitted.coef_table("asymptotic")["p_value"], 2 * stats.norm.sf(np.abs(fitted.tvalues)))
    interval = fitted.conf_int(alpha=0.1)
    assert np.allclose(interval["upper"] - fitted.params, stats.norm.ppf(0.95) * fitted.bse)
    assert np.allclose(np.sqrt(np.diag(fitted.cov_params())), fitted.bse)
    assert fitted.scale == pytest.approx(fitted.sigma**2)


def test_fitted_values_and_residuals_add_up(fitted: mm.LmerResult, sleepstudy: pd.DataFrame) -> None:
    y = sleepstudy["Reaction"].to_numpy()
    assert np.allclose(fitted.fittedvalues + fitted.resid, y)
    assert np.allclose(fitted.fittedvalues_marginal + fitted.resid_marginal, y)
    assert np.allclose(fitted.fittedvalues_marginal, fitted.params["Intercept"] + fitted.params["Days"] * sleepstudy["Days"])
    assert fitted.predict().equals(fitted.fittedvalues)
    assert np.allclose(fitted.predict(sleepstudy), fitted.fittedvalues)
    assert np.allclose(fitted.predict(sleepstudy, include_re=False), fitted.fittedvalues_marginal)


def test_new_levels_get_zero_random_effects(fitted: mm.LmerResult, sleepstudy: pd.DataFrame) -> None:
    new = sleepstudy.head(4).assign(Subject=["308", "nobody", "309", "nobody"])
    with_re, without = fitted.predict(new), fitted.predict(new, include_re=False)
    assert with_re[1] == without[1] and with_re[3] == without[3]
    assert with_re[0] != without[0]


def test_variance_components_against_lme4(reference_fits: ReferenceFits) -> None:
    case = load_case("penicillin_reml")
    m = reference_fits.lmer("penicillin_reml")
    expected = {row["grp"]: row["vcov"] for row in case["varcorr"] if row["grp"] != "Residual"}
    assert m.variance_components.keys() == expected.keys()
    for group, value in expected.items():
        assert_close(m.variance_components[group], value, LMM.variances, group)


def test_refit_matches_a_fresh_fit(fitted: mm.LmerResult, sleepstudy: pd.DataFrame) -> None:
    rng = np.random.default_rng(1)
    new_y = sleepstudy["Reaction"].to_numpy() + rng.normal(0, 30, len(sleepstudy))
    refitted = fitted.refit(new_y)
    fresh = mm.lmer(FORMULA, sleepstudy.assign(Reaction=new_y))
    assert np.allclose(refitted.params, fresh.params, rtol=1e-12)
    assert refitted.llf == pytest.approx(fresh.llf, abs=1e-9)
    assert np.allclose(refitted.theta, fresh.theta, rtol=1e-10)
    # The original result is untouched.
    assert_close(fitted.params["Days"], load_case("sleepstudy_reml")["fixef"]["Days"], LMM.fixed_effects, "Days")


def test_refit_with_new_weights_matches_a_fresh_weighted_fit(fitted: mm.LmerResult, sleepstudy: pd.DataFrame) -> None:
    weights = np.linspace(0.5, 2.0, len(sleepstudy))
    refitted = fitted.refit(sleepstudy["Reaction"], weights=weights)
    fresh = mm.lmer(FORMULA, sleepstudy, weights=weights)
    assert np.allclose(refitted.params, fresh.params, rtol=1e-12)
    assert refitted.llf == pytest.approx(fresh.llf, abs=1e-9)


def test_refit_rejects_a_response_of_the_wrong_length(fitted: mm.LmerResult) -> None:
    with pytest.raises(mm.DataError, match="shape"):
        fitted.refit(np.ones(10))


def test_pickle_round_trip(fitted: mm.LmerResult, sleepstudy: pd.DataFrame) -> None:
    restored = pickle.loads(pickle.dumps(fitted))
    assert restored.params.equals(fitted.params)
    for group, frame in fitted.ranef(condvar=True).items():
        pd.testing.assert_frame_equal(restored.ranef(condvar=True)[group], frame)
    assert np.allclose(restored.predict(sleepstudy.head()), fitted.predict(sleepstudy.head()))
    assert str(restored.summary()) == str(fitted.summary())


def test_lme4_style_summary(fitted: mm.LmerResult) -> None:
    text = str(fitted.summary())
    for expected in [
        "Linear mixed model fit by REML",
        "Formula: Reaction ~ Days + (Days | Subject)",
        "Data: sleepstudy",
        "REML criterion at convergence: 1743.6283",
        "Number of obs: 180, groups:  Subject, 18",
        "Correlation of Fixed Effects:",
        "Estimate  Std. Error  df  t value  Pr(>|t|)",
        "Satterthwaite's degrees of freedom (lmerTest)",
    ]:
        assert expected in text, expected
    random_lines = text.split("Random effects:")[1].split("Number of obs")[0]
    assert "612.1" in random_lines and "24.74" in random_lines and "0.07" in random_lines


def test_ml_summary_shows_information_criteria(reference_fits: ReferenceFits) -> None:
    case = load_case("sleepstudy_ml")
    m = reference_fits.lmer("sleepstudy_ml")
    text = str(m.summary())
    assert "maximum likelihood" in text
    assert f"{case['AIC']:.1f}" in text and f"{case['logLik']:.1f}" in text


def test_notebook_display(fitted: mm.LmerResult) -> None:
    page = fitted._repr_html_()
    assert page.count("<table") == 2 and "Random effects" in page and "(Intercept)" in page


def test_repr_names_the_fit(fitted: mm.LmerResult) -> None:
    assert "REML" in repr(fitted) and "nobs=180" in repr(fitted)


def test_optimization_summary(fitted: mm.LmerResult) -> None:
    summary = fitted.optimization
    # lme4's start (1, 0, 1), in the centred parameterisation the optimiser works in.
    assert np.allclose(summary.theta_start, fitted.model.user_theta(np.array([1.0, 0.0, 1.0])))
    assert summary.converged and summary.n_evaluations > 10
    assert np.allclose(summary.theta, fitted.theta)


def test_ranef_merges_terms_on_one_factor(sleepstudy: pd.DataFrame) -> None:
    case = load_case("sleepstudy_uncorr_reml")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = mm.lmer(case["formula"], sleepstudy)
    frame = m.ranef(condvar=True)["Subject"]
    assert list(frame.columns) == ["Intercept", "Days", "sd_Intercept", "sd_Days"]
    assert list(m.varcorr()["grp"]) == ["Subject", "Subject.1", "Residual"]
