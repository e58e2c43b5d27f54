"""Every linear mixed model of the lme4 reference set, fitted and compared number by number with
lme4 1.1-31 under the LMM tolerances of tests/TOLERANCES.md: fixed effects 1e-4 relative, standard
errors 1e-3, variances 2e-3 relative, correlations 2e-3 absolute, log-likelihood 1e-3 absolute."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from reference_cases import as_list, case_ids, compare_ranef, lme4_name, load_case, new_data_rows
from tolerances import LMM, Tolerance, assert_close, assert_loglik

if TYPE_CHECKING:
    from conftest import ReferenceFits

# Every case through the automatic choice and through the general sparse factorisation.
LMER_CASES = [(case_id, path) for case_id in case_ids("lmer") for path in ("auto", "sparse")]


@pytest.mark.parametrize(("case_id", "path"), LMER_CASES)
def test_log_likelihood_and_criteria(case_id: str, path: str, reference_fits: ReferenceFits) -> None:
    case = load_case(case_id)
    m = reference_fits.lmer(case_id, path)
    # The automatic choice is the blocked factorisation on every reference case.
    assert m.factorization == ("sparse" if path == "sparse" else "blocked")
    assert_loglik(m.llf, case["logLik"], LMM.log_likelihood, "logLik")
    assert m.df_modelwc == case["df"]
    assert_close(m.aic, case["AIC"], LMM.criteria, "AIC")
    assert_close(m.bic, case["BIC"], LMM.criteria, "BIC")
    assert_close(m.deviance, case["deviance"], LMM.deviance, "deviance")
    if case["REML"]:
        assert_close(m.deviance_ml, case["deviance_REML_FALSE"], LMM.deviance, "deviance(REML = FALSE)")
        assert m.REMLcrit is not None
        assert_close(m.REMLcrit, case["REMLcrit"], LMM.criteria, "REMLcrit")
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
        assert_close(value, case["fixef"][name], LMM.fixed_effects, name, scale=max(abs(case["fixef"][name]), expected_se))
        assert_close(se, expected_se, LMM.standard_errors, f"SE of {name}")
    order = [names.index(n) for n in as_list(case["vcov_names"])]
    ours = m.cov_params().to_numpy()[np.ix_(order, order)]
    expected = np.asarray(case["vcov"], dtype=float).reshape(len(order), len(order))
    scale = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
    assert_close(ours, expected, LMM.fixed_effect_covariances, "vcov", scale=scale)


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
        label = " ".join(str(part) for part in (ref["grp"], ref["var1"], ref["var2"]) if part is not None)
        if ref["var2"] is None:
            # The absolute floors matter only for a variance at or near 0 (a singular fit).
            assert_close(row["vcov"], ref["vcov"], LMM.variances.or_absolute(1e-8), f"variance {label}")
            assert_close(row["sdcor"], ref["sdcor"], LMM.variances.or_absolute(1e-6), f"SD {label}")
        else:
            assert_close(row["sdcor"], ref["sdcor"], LMM.correlations, f"correlation {label}")
    sd = {(r["grp"], r["var1"]): r["sdcor"] for r in expected if r["var2"] is None}
    for (_, row), ref in zip(table.iterrows(), expected):
        if ref["var2"] is not None:
            # A covariance is a correlation times two SDs: the errors of both add up.
            scale = sd[(ref["grp"], ref["var1"])] * sd[(ref["grp"], ref["var2"])]
            allowed = LMM.correlations.absolute * scale + LMM.variances.relative * abs(ref["vcov"])
            assert_close(row["vcov"], ref["vcov"], Tolerance(absolute=allowed), f"covariance {ref['grp']} {ref['var1']} {ref['var2']}")


@pytest.mark.parametrize(("case_id", "path"), LMER_CASES)
def test_sigma_and_theta(case_id: str, path: str, reference_fits: ReferenceFits) -> None:
    case = load_case(case_id)
    m = reference_fits.lmer(case_id, path)
    # A standard deviation has half its variance's relative error.
    assert_close(m.sigma, case["sigma"], LMM.variances.times(0.5), "sigma")
    assert_close(m.theta, case["theta"], LMM.theta, "theta", scale=1 + np.abs(case["theta"]))


@pytest.mark.parametrize(("case_id", "path"), LMER_CASES)
def test_conditional_modes(case_id: str, path: str, reference_fits: ReferenceFits) -> None:
    case = load_case(case_id)
    compare_ranef(case, reference_fits.lmer(case_id, path).ranef(), "ranef", LMM.conditional_modes)


@pytest.mark.parametrize(("case_id", "path"), LMER_CASES)
def test_conditional_standard_deviations(case_id: str, path: str, reference_fits: ReferenceFits) -> None:
    case = load_case(case_id)
    compare_ranef(case, reference_fits.lmer(case_id, path).ranef(condvar=True), "ranef_condsd", LMM.conditional_modes)


@pytest.mark.parametrize(("case_id", "path"), LMER_CASES)
def test_fitted_values_and_residuals(case_id: str, path: str, reference_fits: ReferenceFits) -> None:
    case = load_case(case_id)
    m = reference_fits.lmer(case_id, path)
    head = len(case["fitted_head"])
    assert_close(m.fittedvalues.to_numpy()[:head], case["fitted_head"], LMM.fitted, "fitted", scale=case["sigma"])
    assert_close(m.resid.to_numpy()[:head], case["resid_head"], LMM.fitted, "residuals", scale=case["sigma"])


@pytest.mark.parametrize(("case_id", "path"), LMER_CASES)
def test_predict_on_new_data(case_id: str, path: str, reference_fits: ReferenceFits) -> None:
    case = load_case(case_id)
    m = reference_fits.lmer(case_id, path)
    spec = case["predict_newdata"]
    rows = new_data_rows(case)
    marginal = np.asarray(spec["re_form_NA"], dtype=float)
    conditional = np.asarray(spec["conditional"], dtype=float)
    if case["offset"] is not None:
        # lme4's predict() with newdata silently leaves out an offset given through `offset=`;
        # ours includes it (the prediction of the model that was fitted), so add it back.
        marginal = marginal + rows[case["offset"]].to_numpy()
        conditional = conditional + rows[case["offset"]].to_numpy()
    assert_close(m.predict(rows, include_re=False).to_numpy(), marginal, LMM.fitted, "re.form = NA", scale=case["sigma"])
    assert_close(m.predict(rows).to_numpy(), conditional, LMM.fitted, "conditional", scale=case["sigma"])
