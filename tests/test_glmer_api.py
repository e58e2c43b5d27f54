"""glmer's API beyond the parity cases: the negative binomial size, response forms, families,
residual types, prediction scales, bad input, warnings and pickling."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from reference_cases import load_case
from tolerances import GLMM, Tolerance, assert_close, assert_loglik

if TYPE_CHECKING:
    from conftest import ReferenceFits

CBPP_FORMULA = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def fitted(reference_fits: ReferenceFits) -> mm.GlmerResult:
    return reference_fits.glmer("cbpp_binomial")  # CBPP_FORMULA, binomial


def test_negative_binomial_size_is_estimated_as_glmer_nb(reference_fits: ReferenceFits) -> None:
    case = load_case("synth_negbin")
    g = mm.glmer_nb("count ~ x + (1 | g)", reference_fits.data("synth_negbin"))
    assert isinstance(g.family, mm.families.NegativeBinomial)
    assert_close(g.family.theta, case["nb_theta"], Tolerance(relative=1e-3), "size")
    assert_loglik(g.llf, case["logLik"], GLMM.log_likelihood, "logLik")
    for name, value in zip(["(Intercept)", "x"], g.params):
        assert_close(value, case["fixef"][name], GLMM.fixed_effects, name)
    assert "Negative Binomial(2.007" in str(g.summary())


def test_negative_binomial_size_search_matches_lme4_on_a_second_dataset(reference_fits: ReferenceFits) -> None:
    case = load_case("synth_negbin_estimated")
    g = mm.glmer_nb("count ~ x + (1 | g)", reference_fits.data("synth_negbin_estimated"))
    assert_close(g.family.theta, case["nb_theta"], Tolerance(relative=2e-3), "size")
    assert_loglik(g.llf, case["logLik"], GLMM.log_likelihood, "logLik")
    assert g.df_modelwc == case["df"]


def test_three_binomial_response_forms_agree(cbpp: pd.DataFrame, fitted: mm.GlmerResult) -> None:
    proportions = mm.glmer("incidence / size ~ period + (1 | herd)", cbpp, family="binomial", weights="size", compat="lme4")
    assert np.allclose(proportions.params, fitted.params, rtol=1e-6)
    assert proportions.llf == pytest.approx(fitted.llf, abs=1e-6)
    # The Bernoulli expansion of the same data has the same likelihood up to the binomial
    # coefficients, so the same estimates.
    rows = cbpp.loc[cbpp.index.repeat(cbpp["size"].astype(int))].copy()
    rows["y"] = np.concatenate([np.r_[np.ones(int(s)), np.zeros(int(n - s))] for s, n in zip(cbpp["incidence"], cbpp["size"])])
    bernoulli = mm.glmer("y ~ period + (1 | herd)", rows, family="binomial")
    assert np.allclose(bernoulli.params, fitted.params, rtol=1e-3)


def test_family_objects_and_strings(cbpp: pd.DataFrame) -> None:
    by_object = mm.glmer(CBPP_FORMULA, cbpp, family=mm.families.Binomial(link="probit"))
    by_name = mm.glmer(CBPP_FORMULA, cbpp, family="binomial", link="probit")
    assert np.allclose(by_object.params, by_name.params)
    assert by_object.family.link == "probit"
    with pytest.raises(mm.SpecificationError, match="unknown family"):
        mm.glmer(CBPP_FORMULA, cbpp, family="binomal")
    with pytest.raises(mm.SpecificationError, match="link 'log' is not available for the Gamma|not available"):
        mm.families.Poisson(link="logit")


def test_residual_types_and_prediction_scales(fitted: mm.GlmerResult, cbpp: pd.DataFrame) -> None:
    y, mu, w = fitted.y, fitted.mu, fitted.prior_weights
    assert np.allclose(fitted.residuals("response"), y - mu)
    assert np.allclose(fitted.residuals("pearson"), (y - mu) * np.sqrt(w / (mu * (1 - mu))))
    deviance = fitted.residuals("deviance").to_numpy()
    assert np.sum(deviance**2) == pytest.approx(fitted.deviance)
    assert np.all(np.sign(deviance) == np.sign(y - mu))
    working = fitted.residuals("working").to_numpy()
    assert np.allclose(working, (y - mu) / (mu * (1 - mu)))
    link = fitted.predict(cbpp)
    assert np.allclose(1 / (1 + np.exp(-link)), fitted.predict(cbpp, type="response"))
    assert np.allclose(fitted.predict(type="response"), fitted.fittedvalues)
    new = cbpp.head(3).assign(herd="new herd")
    assert np.allclose(fitted.predict(new), fitted.predict(new, include_re=False))
    with pytest.raises(ValueError, match="type"):
        fitted.residuals("raw")  # type: ignore[arg-type]
    assert np.allclose(fitted.resid, y - mu)
    assert np.allclose(fitted.residuals(), fitted.residuals("deviance"))  # lme4's default type for a GLMM
    assert np.allclose(fitted.residuals("pearson", scaled=True), fitted.residuals("pearson") / fitted.sigma)


def test_the_former_resid_method_still_works_with_a_deprecation_warning(fitted: mm.GlmerResult) -> None:
    with pytest.warns(DeprecationWarning, match="residuals"):
        pearson = fitted.resid("pearson")
    assert np.array_equal(pearson, fitted.residuals("pearson"))


def test_nagq_zero_is_the_pirls_estimator(fitted: mm.GlmerResult, reference_fits: ReferenceFits) -> None:
    fast = reference_fits.glmer("cbpp_binomial_nagq0")  # CBPP_FORMULA, binomial, nAGQ = 0
    assert fast.n_agq == 0 and not fast.hessian_covariance
    assert np.allclose(fast.params, fitted.params, atol=0.1)
    assert fast.llf < fitted.llf + 1e-9  # the Laplace fit maximises this likelihood
    assert "nAGQ = 0" in str(fast.summary())


def test_quadrature_needs_one_scalar_term(shipped_data: Callable[[str], pd.DataFrame]) -> None:
    ticks = shipped_data("grouseticks")
    with pytest.raises(mm.SpecificationError, match="single scalar random-effects term"):
        mm.glmer("TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)", ticks, family="poisson", nAGQ=5)
    with pytest.raises(mm.SpecificationError, match="nAGQ"):
        mm.glmer("TICKS ~ YEAR + (1 | BROOD)", ticks, family="poisson", nAGQ=26)


@pytest.mark.parametrize(
    ("family", "response", "message"),
    [
        ("binomial", [1.0, 1.5], "outside \\[0, 1\\]"),
        ("poisson", [1.0, -2.0], "negative"),
        ("poisson", [1.0, 2.5], "whole number"),
        ("negative_binomial", [1.0, 2.5], "whole number"),
        ("Gamma", [1.0, 0.0], "not positive"),
        ("inverse.gaussian", [1.0, -1.0], "not positive"),
    ],
)
def test_responses_outside_the_family_are_named(family: str, response: list[float], message: str) -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(1, 4, 40).astype(float) if family != "binomial" else rng.integers(0, 2, 40).astype(float)
    y[[5, 17]] = response
    data = pd.DataFrame({"y": y, "x": rng.normal(size=40), "g": np.repeat(list("abcdefgh"), 5)})
    with pytest.raises(mm.DataError, match=f"response 'y'.*{message}"):
        mm.glmer("y ~ x + (1 | g)", data, family=family)


def test_binomial_successes_must_be_whole(cbpp: pd.DataFrame) -> None:
    with pytest.raises(mm.DataError, match="whole number of successes"):
        mm.glmer("incidence / size ~ period + (1 | herd)", cbpp.assign(trials=cbpp["size"] + 1), family="binomial", weights="trials")
    with pytest.raises(mm.DataError, match="non-negative whole numbers"):
        mm.glmer("cbind(incidence, size - incidence - 30) ~ period + (1 | herd)", cbpp, family="binomial")


def test_non_positive_weights(cbpp: pd.DataFrame) -> None:
    with pytest.raises(mm.DataError, match="weights"):
        mm.glmer("incidence / size ~ period + (1 | herd)", cbpp.assign(size=0.0), family="binomial", weights="size", na_action="raise")


def test_complete_separation_warns() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=200)
    data = pd.DataFrame({"y": (x > 0).astype(float), "x": x, "g": rng.integers(0, 10, 200).astype(str)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = mm.glmer("y ~ x + (1 | g)", data, family="binomial")
    kinds = {type(w.message) for w in caught}
    assert mm.SeparationWarning in kinds
    # Under separation the likelihood has no maximum: the Hessian is not positive definite either.
    assert mm.ConvergenceWarning in kinds and not g.hessian_covariance
    assert any("separate" in str(w.message) for w in caught)
    assert g.params["x"] > 10


def test_summary_and_display(fitted: mm.GlmerResult) -> None:
    text = str(fitted.summary())
    for expected in ["Laplace Approximation", "Family: binomial  ( logit )", "z value", "Number of obs: 56, groups:  herd, 15"]:
        assert expected in text
    assert "Residual" not in text.split("Random effects:")[1].split("Number of obs")[0]
    assert fitted._repr_html_().count("<table") == 2


def test_pickle_round_trip(fitted: mm.GlmerResult, cbpp: pd.DataFrame) -> None:
    restored = pickle.loads(pickle.dumps(fitted))
    assert restored.params.equals(fitted.params)
    pd.testing.assert_frame_equal(restored.ranef(condvar=True)["herd"], fitted.ranef(condvar=True)["herd"])
    assert np.allclose(restored.predict(cbpp.head()), fitted.predict(cbpp.head()))


def test_inputs_are_not_modified(cbpp: pd.DataFrame) -> None:
    before = cbpp.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mm.glmer(CBPP_FORMULA, cbpp, family="binomial")
    pd.testing.assert_frame_equal(cbpp, before)
