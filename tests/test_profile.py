"""Likelihood profiles and profile confidence intervals against lme4's ``confint(m, method =
"profile", oldNames = FALSE)`` (the case JSONs' ``confint_profile``, 95%) on every case that has
them (LMMs and GLMMs). lme4 interpolates its bounds from a spline through the profile, ours are roots of ζ: the
bounds agree within PROFILE_BOUNDS of lme4's interval width.

lme4's fixed-effect profiles of models with prior weights are wrong (lme4 issue #192, open: its
profiling deviance leaves out the weights' log-determinant); it says so itself ("non-monotonic
profile for <name>", the case's ``confint_profile_warnings``). Those bounds are checked against
lme4's Wald interval from its ``fixef`` and ``fixef_se`` instead, which a fixed effect's profile
interval of an LMM is close to (within WALD_AGREEMENT of the interval's width)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from scipy import stats

import mixedmodels as mm
from mixedmodels.inference import profile
from reference_cases import case_ids, lme4_name, load_case
from tolerances import PROFILE_BOUNDS, assert_close

if TYPE_CHECKING:
    from conftest import ReferenceFits

# How far an LMM's profile interval for a fixed effect may be from the Wald interval, relative to
# its width (the profile's n log r² against the Wald's fixed σ̂: 0.8% on synth_weighted_lmm).
WALD_AGREEMENT = 0.02
NON_MONOTONIC = "non-monotonic profile for "

PROFILED = [case_id for case_id in case_ids() if load_case(case_id).get("confint_profile")]


@pytest.mark.parametrize("case_id", PROFILED)
def test_profile_intervals_are_lme4s(case_id: str, reference_fits: ReferenceFits) -> None:
    """Labels and order as lme4's for the variance parameters, fixed effects by name; a bound of
    0 for a standard deviation whose profile stays above −z down to 0, as lme4 reports."""
    m = reference_fits.fit(case_id)
    case = reference_fits.case(case_id)
    expected: dict[str, list[float | None]] = case["confint_profile"]
    warnings = case.get("confint_profile_warnings") or []
    lme4_failed = {warning.removeprefix(NON_MONOTONIC) for warning in warnings if warning.startswith(NON_MONOTONIC)}
    table = m.confint(method="profile").table
    labels = [lme4_name(name) for name in table.index]
    n_variance = sum(1 for label in expected if label.startswith(("sd_", "cor_")) or label == "sigma")
    assert labels[:n_variance] == list(expected)[:n_variance], "variance-parameter labels and their order"
    assert sorted(labels[n_variance:]) == sorted(list(expected)[n_variance:]), "fixed-effect names"
    for name, label in zip(table.index, labels):
        if label in lme4_failed:
            z = stats.norm.ppf(0.975)
            wald = case["fixef"][label] + np.array([-z, z]) * case["fixef_se"][label]
            width = wald[1] - wald[0]
            assert np.all(np.abs(table.loc[name].to_numpy() - wald) <= WALD_AGREEMENT * width), f"{case_id} {label}"
            continue
        lower, upper = expected[label]
        assert lower is not None and upper is not None
        assert_close(table.loc[name].to_numpy(), np.array([lower, upper]), PROFILE_BOUNDS, f"{case_id} {label}", scale=upper - lower)


@pytest.mark.parametrize("case_id", ["sleepstudy_ml", "dyestuff2_reml", "pastes_nested_reml", "cbpp_binomial"])
def test_zeta_is_zero_at_the_estimate_and_increases_along_each_profile(case_id: str, reference_fits: ReferenceFits) -> None:
    p = reference_fits.fit(case_id).profile()
    for name, table in p.profiles.items():
        at_estimate = table.loc[table[name] == p.estimates[name], "zeta"]
        assert at_estimate.tolist() == [0.0], name
        assert np.all(np.diff(table[name].to_numpy()) > 0), name
        assert np.all(np.diff(table["zeta"].to_numpy()) >= -1e-9), name


def test_a_reml_fit_is_profiled_as_its_ml_refit(reference_fits: ReferenceFits) -> None:
    """lme4 profiles the ML deviance: the REML fit's profile is centred on the ML estimates."""
    reml, ml = reference_fits.lmer("sleepstudy_reml"), reference_fits.lmer("sleepstudy_ml")
    p = reml.profile(level=0.95)
    assert_close(p.estimates["sigma"], ml.sigma, PROFILE_BOUNDS, "sigma")
    assert_close(p.deviance, ml.deviance, PROFILE_BOUNDS, "deviance")


def test_lower_levels_interpolate_the_profile(reference_fits: ReferenceFits) -> None:
    """A 99% profile's 95% interval, interpolated as lme4 does, is lme4's."""
    expected = reference_fits.case("sleepstudy_ml")["confint_profile"]
    table = reference_fits.lmer("sleepstudy_ml").profile().confint(0.95).table
    for name, label in zip(table.index, (lme4_name(name) for name in table.index)):
        lower, upper = expected[label]
        assert_close(table.loc[name].to_numpy(), np.array([lower, upper]), PROFILE_BOUNDS, label, scale=upper - lower)


def test_a_level_beyond_the_profile_is_refused(reference_fits: ReferenceFits) -> None:
    with pytest.raises(mm.SpecificationError, match="profile reaches the 0.95 level"):
        reference_fits.lmer("dyestuff_reml").profile(level=0.95).confint(0.99)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, "0.95", True])
def test_a_level_outside_zero_to_one_is_refused(level: object, reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("dyestuff_reml")
    with pytest.raises(mm.SpecificationError, match="level"):
        m.confint(method="profile", level=level)  # type: ignore[arg-type]
    with pytest.raises(mm.SpecificationError, match="level"):
        m.profile(level=level)  # type: ignore[arg-type]


def test_an_unknown_method_is_refused(reference_fits: ReferenceFits) -> None:
    with pytest.raises(mm.SpecificationError, match="method must be one of 'Wald', 'profile'"):
        reference_fits.lmer("dyestuff_reml").confint(method="likelihood")  # type: ignore[arg-type]


@pytest.mark.parametrize(("case_id", "problem"), [("synth_gamma_log", "dispersion parameter"), ("cbpp_binomial_nagq0", "nAGQ = 0")])
def test_glmms_without_a_profile_are_refused(case_id: str, problem: str, reference_fits: ReferenceFits) -> None:
    g = reference_fits.glmer(case_id)
    with pytest.raises(mm.SpecificationError, match=problem):
        g.confint(method="profile")
    with pytest.raises(mm.SpecificationError, match=problem):
        profile(g)
