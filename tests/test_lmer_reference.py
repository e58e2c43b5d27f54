"""Every linear mixed model of the lme4 reference set, fitted and compared number by number with
lme4 1.1-31 under the tolerance policy of DESIGN.md: fixed effects 1e-4 relative, standard errors
1e-3, variances 2e-3 relative, correlations 2e-3 absolute, log-likelihood 1e-3 absolute (or higher
than lme4's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from reference_cases import as_list, case_ids, compare_ranef, lme4_name, load_case

if TYPE_CHECKING:
    from conftest import ReferenceFits

# Every case through the automatic choice and through the general sparse factorisation.
LMER_CASES = [(case_id, path) for case_id in case_ids("lmer") for path in ("auto", "sparse")]

FIXED_RELATIVE = 1e-4
SE_RELATIVE = 1e-3
VARIANCE_RELATIVE = 2e-3
CORRELATION_ABSOLUTE = 2e-3
LOGLIK_ABSOLUTE = 1e-3


@pytest.mark.parametrize(("case_id", "path"), LMER_CASES)
def test_log_likelihood_and_criteria(case_id: str, path: str, reference_fits: ReferenceFits) -> None:
    case = load_case(case_id)
    m = reference_fits.lmer(case_id, path)
    # The automatic choice is the blocked factorisation on every reference case.
    assert m.factorization == ("sparse" if path == "sparse" else "blocked")
    assert m.llf - case["logLik"] > -LOGLIK_ABSOLUTE, (m.llf, case["logLik"])
    assert abs(m.llf - case["logLik"]) < LOGLIK_ABSOLUTE
    assert m.df_modelwc == case["df"]
    assert abs(m.aic - case["AIC"]) < 2 * LOGLIK_ABSOLUTE
    assert abs(m.bic - case["BIC"]) < 2 * LOGLIK_ABSOLUTE
    assert abs(m.deviance - case["deviance"]) < 2 * LOGLIK_ABSOLUTE
    if case["REML"]:
        assert abs(m.deviance_ml - case["deviance_REML_FALSE"]) < 2 * LOGLIK_ABSOLUTE
        assert m.REMLcrit is not None and abs(m.REMLcrit - case["REMLcrit"]) < 2 * LOGLIK_ABSOLUTE
    else:
        assert m.REMLcrit is None
    assert m.nobs == case["nobs"]
    assert m.is_singular == case["isSingular"]
    assert m.converged


@pytest.mark.parametrize(("case_id", "path"), LMER_CASES)
def test_fixed_effects_and_covariance(case_id: str, path: str, reference_fits: ReferenceFits) -> None:
    case = load_case(case_id)
    m = reference_fits.lmer(case_id, path)
    names = [lme4_name(n) for n in m.params.index]
    assert sorted(names) == sorted(as_list(case["vcov_names"]))
    for name, value, se in zip(names, m.params, m.bse):
        expected_se = case["fixef_se"][name]
        assert abs(value - case["fixef"][name]) <= FIXED_RELATIVE * max(abs(case["fixef"][name]), expected_se), name
        assert se == pytest.approx(expected_se, rel=SE_RELATIVE), name
    order = [names.index(n) for n in as_list(case["vcov_names"])]
    ours = m.cov_params().to_numpy()[np.ix_(order, order)]
    expected = np.asarray(case["vcov"], dtype=float).reshape(len(order), len(order))
    scale = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
    assert np.all(np.abs(ours - expected) <= 2 * SE_RELATIVE * scale)


@pytest.mark.parametrize(("case_id", "path"), LMER_CASES)
def test_varcorr_table(case_id: str, path: str, reference_fits: ReferenceFits) -> None:
    case = load_case(case_id)
    table = reference_fits.lmer(case_id, path).varcorr()
    expected = case["varcorr"]
    assert len(table) == len(expected)
    for (_, row), ref in zip(table.iterrows(), expected):
        assert row["grp"] == ref["grp"]
        ours = [None if name is None else lme4_name(name) for name in (row["var1"], row["var2"])]
        assert ours == [ref["var1"], ref["var2"]], (row.to_dict(), ref)
        if ref["var2"] is None:
            assert row["vcov"] == pytest.approx(ref["vcov"], rel=VARIANCE_RELATIVE, abs=1e-8)
            assert row["sdcor"] == pytest.approx(ref["sdcor"], rel=VARIANCE_RELATIVE, abs=1e-6)
        else:
            assert abs(row["sdcor"] - ref["sdcor"]) < CORRELATION_ABSOLUTE
    sd = {(r["grp"], r["var1"]): r["sdcor"] for r in expected if r["var2"] is None}
    for (_, row), ref in zip(table.iterrows(), expected):
        if ref["var2"] is not None:
            scale = sd[(ref["grp"], ref["var1"])] * sd[(ref["grp"], ref["var2"])]
            assert abs(row["vcov"] - ref["vcov"]) <= CORRELATION_ABSOLUTE * scale + VARIANCE_RELATIVE * abs(ref["vcov"])


@pytest.mark.parametrize(("case_id", "path"), LMER_CASES)
def test_sigma_and_theta(case_id: str, path: str, reference_fits: ReferenceFits) -> None:
    case = load_case(case_id)
    m = reference_fits.lmer(case_id, path)
    assert m.sigma == pytest.approx(case["sigma"], rel=VARIANCE_RELATIVE / 2)
    assert np.allclose(m.theta, case["theta"], rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize(("case_id", "path"), LMER_CASES)
def test_conditional_modes(case_id: str, path: str, reference_fits: ReferenceFits) -> None:
    case = load_case(case_id)
    compare_ranef(case, reference_fits.lmer(case_id, path).ranef(), "ranef", VARIANCE_RELATIVE)


@pytest.mark.parametrize(("case_id", "path"), LMER_CASES)
def test_conditional_standard_deviations(case_id: str, path: str, reference_fits: ReferenceFits) -> None:
    case = load_case(case_id)
    compare_ranef(case, reference_fits.lmer(case_id, path).ranef(condvar=True), "ranef_condsd", VARIANCE_RELATIVE)


@pytest.mark.parametrize(("case_id", "path"), LMER_CASES)
def test_fitted_values_and_residuals(case_id: str, path: str, reference_fits: ReferenceFits) -> None:
    case = load_case(case_id)
    m = reference_fits.lmer(case_id, path)
    head = len(case["fitted_head"])
    tolerance = 1e-3 * m.sigma
    assert np.allclose(m.fittedvalues.to_numpy()[:head], case["fitted_head"], rtol=0, atol=tolerance)
    assert np.allclose(m.resid.to_numpy()[:head], case["resid_head"], rtol=0, atol=tolerance)


@pytest.mark.parametrize(("case_id", "path"), LMER_CASES)
def test_predict_on_new_data(case_id: str, path: str, reference_fits: ReferenceFits) -> None:
    case = load_case(case_id)
    m = reference_fits.lmer(case_id, path)
    spec = case["predict_newdata"]
    rows = pd.DataFrame(spec["rows"])
    for column in rows.columns:
        if case["columns"][column] == "factor":
            rows[column] = rows[column].astype(str)
        else:
            rows[column] = rows[column].astype(float)
    marginal = np.asarray(spec["re_form_NA"], dtype=float)
    conditional = np.asarray(spec["conditional"], dtype=float)
    if case["offset"] is not None:
        # lme4's predict() with newdata silently leaves out an offset given through `offset=`;
        # ours includes it (the prediction of the model that was fitted), so add it back.
        marginal = marginal + rows[case["offset"]].to_numpy()
        conditional = conditional + rows[case["offset"]].to_numpy()
    tolerance = 1e-3 * m.sigma
    assert np.allclose(m.predict(rows, include_re=False).to_numpy(), marginal, rtol=0, atol=tolerance)
    assert np.allclose(m.predict(rows).to_numpy(), conditional, rtol=0, atol=tolerance)
    assert len(reference_fits.data(case_id)) >= case["nobs"]
