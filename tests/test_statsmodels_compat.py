"""The statsmodels front door (``mixedmodels.compat.statsmodels``) against lme4's numbers.

The comparisons are ported from statsmodels' own tests of ``MixedLM`` against lme4
(statsmodels/regression/tests/test_lme.py, BSD-3-Clause, (c) statsmodels developers, at commit
82c59e378bdfb5ae324006c477954879ad3e24be): its twelve simulated data sets ``lme00.csv`` …
``lme11.csv`` with the lme4 results of its ``lme_results.R`` (``lme_r_results.py``, converted to
``lme_r_results.json``), the ``dietox`` (geepack) random-intercept and random-slope fits and the
``Pastes`` variance-component fit with the R numbers written in its tests, and its simulated
``test_vcomp_2`` comparison with R. The data are in tests/reference/statsmodels_lme/ (README
there). Everything goes through the shim the way statsmodels' users call it (arrays with
``MixedLM(endog, exog, groups, exog_re)`` and ``free=`` for independent random effects,
formulas with ``mixedlm``), and is held to tests/tolerances.py's LMM tolerances unless a
test says why not (R numbers printed with fewer digits). statsmodels itself is not needed.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
import mixedmodels.compat.statsmodels as smf
from mixedmodels.compat.statsmodels import MixedLM, MixedLMParams
from tolerances import LMM, Tolerance, assert_close, assert_loglik

REFERENCE = Path(__file__).parent / "reference" / "statsmodels_lme"
R_RESULTS: dict[str, Any] = json.loads((REFERENCE / "lme_r_results.json").read_text())


def r_value(name: str) -> np.ndarray:
    """One of lme_results.R's values (matrices were written column-major)."""
    entry = R_RESULTS[name]
    if isinstance(entry, dict):
        return np.asarray(entry["values"], dtype=float).reshape(entry["shape"], order="F")
    return np.asarray(entry, dtype=float)


def fixed_effect_scale(coef: np.ndarray, vcov: np.ndarray) -> np.ndarray:
    """TOLERANCES.md: a fixed effect is compared relative to max(|β|, lme4's SE)."""
    return np.maximum(np.abs(coef), np.sqrt(np.diag(vcov)))


def random_effect_covariance_tolerance(cov: np.ndarray) -> np.ndarray:
    """TOLERANCES.md's allowance for a random-effects covariance matrix: the variance tolerance on
    the diagonal (1e-8 floor for a variance at 0), correlation tolerance × SD₁·SD₂ plus variance
    tolerance × |cov| off it."""
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    allowed = LMM.correlations.absolute * np.outer(sd, sd) + LMM.variances.relative * np.abs(cov)
    np.fill_diagonal(allowed, np.maximum(LMM.variances.relative * np.abs(np.diag(cov)), 1e-8))
    return allowed


def assert_covariance_close(ours: np.ndarray, lme4s: np.ndarray, what: str) -> None:
    allowed = random_effect_covariance_tolerance(lme4s)
    # scale=allowed with relative 1 turns the elementwise allowance into assert_close's terms.
    assert_close(ours, lme4s, Tolerance(relative=1.0), what, scale=allowed)


# ----- statsmodels' twelve data sets against lme4 -------------------------------------------------
DATASETS = range(12)


def load_dataset(index: int) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / f"lme{index:02d}.csv")


def dataset_cases() -> list[tuple[int, bool, bool]]:
    # lme_results.R fits independent random effects only where there are two of them (lme06-11).
    return [(i, reml, irf) for i in DATASETS for reml in (False, True) for irf in (False, True) if not irf or i >= 6]


@pytest.mark.parametrize(("index", "reml", "irf"), dataset_cases())
def test_statsmodels_datasets_match_lme4(index: int, reml: bool, irf: bool) -> None:
    data = load_dataset(index)
    name = f"_{'reml' if reml else 'ml'}_{'irf' if irf else 'drf'}_{index}"
    fe_columns = [c for c in data.columns if c.startswith("exog_fe")]
    re_columns = [c for c in data.columns if c.startswith("exog_re")]
    model = MixedLM(data["endog"].to_numpy(), data[fe_columns].to_numpy(), data["groups"].to_numpy(), data[re_columns].to_numpy())
    free = MixedLMParams.from_components(np.ones(len(fe_columns)), np.eye(len(re_columns))) if irf else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SingularFitWarning)  # lme01 is singular in lme4 too
        result = model.fit(reml=reml, free=free)

    coef, vcov = r_value("coef" + name), r_value("vcov" + name)
    assert_close(result.fe_params.to_numpy(), coef, LMM.fixed_effects, "fe_params", scale=fixed_effect_scale(coef, vcov))
    k = len(fe_columns)
    ours_vcov = result.cov_params().to_numpy()[:k, :k]
    se = np.sqrt(np.diag(vcov))
    assert_close(ours_vcov, vcov, LMM.fixed_effect_covariances, "cov_params (fixed effects)", scale=np.outer(se, se))
    assert_close(result.bse_fe.to_numpy(), se, LMM.standard_errors, "bse_fe")
    assert_covariance_close(result.cov_re.to_numpy(), r_value("cov_re" + name), "cov_re")
    assert_close(result.scale, r_value("scale" + name)[0], LMM.variances, "scale")
    # lme_results.R printed the log-likelihood to 7 significant digits (0.5e-4 here): within 1e-3.
    assert_loglik(result.llf, float(r_value("loglike" + name)[0]), LMM.log_likelihood, "llf")
    if not irf:
        # lme4's conditional modes of the first group, relative to lme4's SD of each effect.
        first = result.random_effects[result.model.group_labels[0]]
        expected = np.atleast_1d(r_value("ranef_mean" + name))
        sd = np.sqrt(np.diag(r_value("cov_re" + name)))
        assert_close(first.to_numpy(), expected, LMM.conditional_modes.or_absolute(1e-6), "random_effects", scale=sd)


def test_datasets_shapes_and_names_follow_statsmodels() -> None:
    data = load_dataset(7)
    result = MixedLM(data["endog"], data[["exog_fe_0"]].to_numpy(), data["groups"], data[["exog_re_0", "exog_re_1"]].to_numpy()).fit()
    assert result.params.index.tolist() == ["x1", "x_re1 Var", "x_re1 x x_re2 Cov", "x_re2 Var"]
    # statsmodels' params hold the variance parameters divided by the scale.
    cov = result.cov_re.to_numpy() / result.scale
    assert_close(result.params.iloc[1:].to_numpy(), cov[np.tril_indices(2)], Tolerance(relative=1e-12), "packed variances")
    assert len(result.random_effects) == data["groups"].nunique()
    assert result.random_effects[0.0].index.tolist() == ["x_re1", "x_re2"]


# ----- dietox (geepack) and Pastes, as statsmodels' tests fit them ----------------------------------
def dietox() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "dietox.csv", index_col=0)


# R numbers from statsmodels' test_dietox / test_dietox_slopes (lmer(Weight ~ Time + (1 | Pig))
# and (1 + Time | Pig), REML and ML): fixef, SEs, σ², VarCorr, logLik.
DIETOX = {
    ("1", True): ([15.723523, 6.942505], [0.78805374, 0.03338727], 11.36692, [40.39395], -2404.775),
    ("1", False): ([15.723517, 6.942506], [0.7829397, 0.0333661], 11.35251, [39.82097], -2402.932),
    ("1 + Time", True): ([15.738650, 6.939014], [0.5501253, 0.0798254], 6.03745, [19.4934552, 0.2938323, 0.2938323, 0.4160620], -2217.047),
    ("1 + Time", False): ([15.73863, 6.93902], [0.54629282, 0.07926954], 6.037441, [19.190922, 0.293568, 0.293568, 0.409695], -2215.753),
}


@pytest.mark.parametrize(("re_formula", "reml"), list(DIETOX))
def test_dietox_matches_lme4(re_formula: str, reml: bool) -> None:
    coef, se, scale, cov, loglik = DIETOX[(re_formula, reml)]
    result = smf.mixedlm("Weight ~ Time", dietox(), groups="Pig", re_formula=re_formula).fit(reml=reml, method="cg")
    assert_close(result.fe_params.to_numpy(), coef, LMM.fixed_effects, "fe_params", scale=np.maximum(np.abs(coef), se))
    assert_close(result.bse.iloc[:2].to_numpy(), se, LMM.standard_errors, "bse")
    assert_close(result.scale, scale, LMM.variances, "scale")
    expected_cov = np.asarray(cov).reshape(result.cov_re.shape)
    assert_covariance_close(result.cov_re.to_numpy(), expected_cov, "cov_re")
    # R printed logLik with 7 significant digits: ±0.0005 of rounding on top of the tolerance.
    assert_loglik(result.llf, loglik, LMM.log_likelihood.or_absolute(1.5e-3), "llf")


def test_pastes_variance_components_match_lme4() -> None:
    # lmer(strength ~ (1 | batch) + (1 | batch:cask), Pastes), REML and ML; statsmodels'
    # test_pastes_vcomp prints the R values to 4 significant digits, so they are compared within
    # their rounding (half a unit of the last digit, 5e-4 relative and more).
    data = pd.read_csv(REFERENCE / "pastes.csv", index_col=0)
    model = smf.mixedlm("strength ~ 1", data, groups="batch", re_formula="1", vc_formula={"cask": "0 + cask"})
    reml = model.fit()
    rounding = Tolerance(relative=1e-3)
    assert_close(reml.fe_params.iloc[0], 60.0533, LMM.fixed_effects, "fe_params")
    assert_close(reml.bse.iloc[0], 0.6769, rounding, "bse")
    assert_close(reml.cov_re.iloc[0, 0], 1.657, rounding, "cov_re")
    assert_close(reml.vcomp[0], 8.434, rounding, "vcomp")  # VarCorr(r)$`batch:cask`: 8.434
    assert_close(reml.scale, 0.678, rounding, "scale")
    assert np.isnan(reml.aic) and np.isnan(reml.bic)
    # resid(r)[1:5] and predict(r)[1:5]
    assert_close(reml.resid.iloc[:5].to_numpy(), [0.17133538, -0.02866462, -1.08662875, 1.11337125, -0.12093607], LMM.fitted, "resid", scale=np.sqrt(0.678))
    assert_close(reml.fittedvalues.iloc[:5].to_numpy(), [62.62866, 62.62866, 61.18663, 61.18663, 62.82094], LMM.fitted, "fittedvalues", scale=np.sqrt(0.678))
    ml = model.fit(reml=False)
    assert_close(ml.bse.iloc[0], 0.642, rounding, "bse (ML)")
    assert_close(ml.cov_re.iloc[0, 0], 1.199, rounding, "cov_re (ML)")
    assert_close(ml.scale, 0.67799, rounding, "scale (ML)")
    assert_close(ml.aic, 255.9944, LMM.criteria, "aic")
    assert_close(ml.bic, 264.3718, LMM.criteria, "bic")
    assert ml.random_effects["A"].index.tolist() == ["batch", "cask[cask[a]]", "cask[cask[b]]", "cask[cask[c]]"]


def test_nested_variance_components_match_r() -> None:
    # statsmodels' test_vcomp_2: simulated data (numpy's legacy generator, seed 6241) and R's
    # lmer(y ~ x1 + x2 + (0 + z1 + z2 | groups) + (1 | v1) + (1 | v2)), printed to 4-5 digits:
    # compared within that rounding.
    rs = np.random.RandomState(6241)
    n = 1600
    exog = rs.normal(size=(n, 2))
    groups = np.kron(np.arange(n / 16), np.ones(16))
    exog_re = rs.normal(size=(n, 2))
    slopes = np.kron(rs.normal(size=(n // 16, 2)), np.ones((16, 1))) * exog_re
    errors = slopes.sum(1)
    subgroups1 = np.kron(np.arange(n / 4), np.ones(4))
    errors += np.kron(2 * rs.normal(size=n // 4), np.ones(4))
    subgroups2 = np.kron(np.arange(n / 2), np.ones(2))
    errors += np.kron(2 * rs.normal(size=n // 2), np.ones(2))
    errors += rs.normal(size=n)
    df = pd.DataFrame({"y": exog.sum(1) + errors, "groups": groups, "x1": exog[:, 0], "x2": exog[:, 1]})
    df = df.assign(z1=exog_re[:, 0], z2=exog_re[:, 1], v1=subgroups1, v2=subgroups2)
    vcf = {"a": "0 + C(v1)", "b": "0 + C(v2)"}
    result = MixedLM.from_formula("y ~ x1 + x2", groups=groups, re_formula="0+z1+z2", vc_formula=vcf, data=df).fit()
    assert_close(result.fe_params.to_numpy(), [0.16527, 0.99911, 0.96217], Tolerance(relative=1e-4), "fe_params")
    assert_close(result.cov_re.to_numpy(), [[1.244, 0.146], [0.146, 1.371]], Tolerance(relative=1e-3), "cov_re")
    assert_close(result.vcomp, [4.024, 3.997], Tolerance(relative=1e-3), "vcomp")
    assert_close(result.bse.iloc[:3].to_numpy(), [0.12610, 0.03938, 0.03848], Tolerance(relative=1e-3), "bse")
    assert result.params.index.tolist()[3:] == ["z1 Var", "z1 x z2 Cov", "z2 Var", "a Var", "b Var"]


def test_variance_standard_errors_match_lme4_delta_method() -> None:
    # statsmodels' bse of a variance parameter (of cov_re / scale) is its block of the inverse
    # information; from lme4: the delta method on 2 × the inverse Hessian of the profiled deviance
    # in θ (reference/statsmodels_lme/variance_standard_errors.R, which prints these). statsmodels 0.14 itself
    # reports 0.512405 (its optimum differs) and 0.464246, 0.071137, 0.023817.
    df = mm.datasets.load("sleepstudy")
    ml = smf.mixedlm("Reaction ~ Days", df, groups="Subject").fit(reml=False)
    assert_close(ml.bse["Subject Var"], 0.5125181631, LMM.standard_errors, "bse of Subject Var")
    assert_close(ml.bse_re["Subject Var"], 0.5125181631 * np.sqrt(ml.scale), LMM.standard_errors, "bse_re (statsmodels' √scale × bse)")
    assert_close(ml.params["Subject Var"], ml.cov_re.iloc[0, 0] / ml.scale, Tolerance(relative=1e-12), "params (variance / scale)")
    reml = smf.mixedlm("Reaction ~ Days", df, groups="Subject", re_formula="~Days").fit()
    expected = [0.4642483902, 0.07113714108, 0.02381738988]
    assert_close(reml.bse.iloc[2:].to_numpy(), expected, LMM.standard_errors, "bse of the variance parameters")


# ----- the tutorial, with only the import changed -------------------------------------------------
def test_tutorial_code_runs_with_only_the_import_changed() -> None:
    # statsmodels' "Linear Mixed Effects Models" example on dietox (its docs load the data with
    # sm.datasets.get_rdataset("dietox", "geepack")).
    data = dietox()
    md = smf.mixedlm("Weight ~ Time", data, groups=data["Pig"])
    mdf = md.fit(method=["lbfgs"])
    text = str(mdf.summary())
    assert "Mixed Linear Model Regression Results" in text and "Group Var" in text
    assert_close(mdf.cov_re.iloc[0, 0], 40.39395, LMM.variances, "random intercept variance")

    md = smf.mixedlm("Weight ~ Time", data, groups=data["Pig"], re_formula="~Time")
    mdf = md.fit(method=["lbfgs"])
    assert mdf.cov_re.index.tolist() == ["Group", "Time"]
    assert_covariance_close(mdf.cov_re.to_numpy(), np.array([[19.4934552, 0.2938323], [0.2938323, 0.4160620]]), "cov_re")
    first = mdf.random_effects[data["Pig"].min()]
    assert first.index.tolist() == ["Group", "Time"]
    prediction = mdf.predict(data.head(3))
    assert_close(prediction.to_numpy(), 15.738650 + 6.939014 * data["Time"].head(3).to_numpy(), LMM.fitted, "predict", scale=np.sqrt(6.03745))
    assert_close((mdf.fittedvalues + mdf.resid).to_numpy(), data["Weight"].to_numpy(), Tolerance(absolute=1e-9), "fitted + resid")

    free = MixedLMParams.from_components(np.ones(2), np.eye(2))
    mdf = md.fit(free=free, method=["lbfgs"])
    assert mdf.cov_re.iloc[0, 1] == 0 and mdf.params["Group x Time Cov"] == 0

    plt = pytest.importorskip("matplotlib.pyplot")
    figure, axes = plt.subplots()
    axes.scatter(mdf.fittedvalues, mdf.resid)
    axes.set_xlabel("fitted")
    plt.close(figure)


# ----- input checks -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda df: smf.mixedlm("Reaction ~ Days", df), "groups"),
        (lambda df: smf.mixedlm("Reaction ~ Days", df, groups="Nope"), "Nope"),
        (lambda df: smf.mixedlm("Reaction ~ Days", df, groups="Subject", subset=df.index[:10]), "subset"),
        (lambda df: smf.mixedlm("Reaction ~ Days + (1 | Subject)", df, groups="Subject"), "lmer"),
        (lambda df: smf.mixedlm("Reaction ~ Days", df, groups="Subject", foo=1), "foo"),
        (lambda df: smf.mixedlm("Reaction ~ Days", df, groups=df["Subject"].iloc[:5]), "one label per row"),
        (lambda df: smf.mixedlm("Reaction ~ Days", df, groups="Subject", vc_formula={"a": "0 + Days + I(Days**2)"}), "several non-zero"),
        (lambda df: smf.mixedlm("Reaction ~ Days", df, groups="Subject", re_formula="~ nope"), "re_formula"),
        (lambda df: smf.mixedlm("Reaction ~ Days", df.assign(Days=df["Days"].where(df.index > 0)), groups="Subject", re_formula="~Days"), "missing"),
        (lambda df: smf.mixedlm("Reaction ~ Days", df, groups="Subject").fit(cov_pen=object()), "penal"),
        (lambda df: smf.mixedlm("Reaction ~ Days", df, groups="Subject").fit(do_cg=False), "do_cg"),
        (lambda df: smf.mixedlm("Reaction ~ Days", df, groups="Subject").fit(cov_type="hc1"), "cov_type"),
        (lambda df: smf.mixedlm("Reaction ~ Days", df, groups="Subject").fit(free=MixedLMParams.from_components(np.array([1.0, 0.0]), np.eye(1))), "free"),
        (lambda df: smf.mixedlm("Reaction ~ Days", df, groups="Subject").fit().conf_int(alpha=2), "alpha"),
        (lambda df: MixedLM(df["Reaction"], df[["Days"]], df["Subject"], exog_vc={}), "exog_vc"),
        (lambda df: MixedLM(df["Reaction"], df[["Days"]].iloc[:5], df["Subject"]), "exog"),
    ],
)
def test_bad_input_is_refused_by_name(call: Any, message: str) -> None:
    with pytest.raises(mm.MixedModelError, match=message):
        call(mm.datasets.load("sleepstudy"))


def test_missing_drop_drops_incomplete_rows() -> None:
    df = mm.datasets.load("sleepstudy")
    holes = df.assign(Days=df["Days"].where(df.index % 17 != 0))
    dropped = smf.mixedlm("Reaction ~ Days", holes, groups="Subject", re_formula="~Days", missing="drop").fit()
    complete = smf.mixedlm("Reaction ~ Days", holes.dropna(), groups="Subject", re_formula="~Days").fit()
    assert dropped.nobs == len(holes.dropna())
    assert_close(dropped.params.to_numpy(), complete.params.to_numpy(), Tolerance(relative=1e-10), "params")
