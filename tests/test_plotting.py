"""m.plot: what each plot draws is the numbers it should show, checked against lme4's (residuals,
fitted values, conditional modes and SDs, coef(m), exact case-deletion Cook's distances) or, where
the plot shows a computation of its own, against that computation done independently here (R's
ppoints and qqline, per-group least squares by np.polyfit). Rendered with the Agg backend."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm
from conftest import ReferenceFits
from extras import require
from mixedmodels.plotting import PlotAccessor, group_estimates, influence_plot, profile_plot
from mixedmodels.plotting.smooth import local_linear_smooth
from reference_cases import REFERENCE_DIR
from tolerances import GLMM, LMM, Tolerance, assert_close

matplotlib = require("matplotlib")
matplotlib.use("Agg")
plt = require("matplotlib.pyplot")
from matplotlib.axes import Axes  # noqa: E402 - after require: matplotlib is optional
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

Z95 = float(stats.norm.ppf(0.975))
# Issue 15: residuals, hat values and Cook's distances agree with lme4's to 1e-4 relative.
COOKS_DISTANCE = Tolerance(relative=1e-4)


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def diagnostics(case_id: str) -> dict[str, Any]:
    """lme4's diagnostics of a reference case (reference/README.md, "Diagnostics")."""
    return json.loads((REFERENCE_DIR / "diagnostics" / f"{case_id}.json").read_text(encoding="utf-8"))


def r_ppoints(n: int) -> np.ndarray:
    """R's ppoints(n) (stats/R/ppoints.R): a = 3/8 for n <= 10, else 1/2."""
    a = 3 / 8 if n <= 10 else 1 / 2
    return (np.arange(1, n + 1) - a) / (n + 1 - 2 * a)


def segments(collection: Any) -> np.ndarray:
    """A LineCollection's segments as (n, 2 points, 2 coordinates)."""
    assert isinstance(collection, LineCollection)
    return np.array([np.asarray(s) for s in collection.get_segments()])


def offsets(collection: Any) -> np.ndarray:
    assert isinstance(collection, PathCollection)
    return np.asarray(collection.get_offsets())


# ----- matplotlib is optional ------------------------------------------------------------------
def test_importing_the_package_and_reaching_m_plot_do_not_import_matplotlib() -> None:
    code = "import sys, mixedmodels as mm\nm = mm.lmer('Yield ~ 1 + (1 | Batch)', mm.datasets.load('Dyestuff'))\nm.plot\nprint('matplotlib' in sys.modules)\n"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"


def test_a_missing_matplotlib_says_how_to_install_it(reference_fits: ReferenceFits, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install mixedmodels\[plot\]"):
        reference_fits.lmer("sleepstudy_reml").plot.qq()


# ----- residuals against fitted values ---------------------------------------------------------
def test_residual_plot_draws_lme4s_fitted_values_and_pearson_residuals(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    lme4 = diagnostics("sleepstudy_reml")["residuals"]
    sigma = reference_fits.case("sleepstudy_reml")["sigma"]
    ax = m.plot.residuals()
    assert isinstance(ax, Axes)
    points = offsets(ax.collections[0])
    assert_close(points[:, 0], m.design.y - np.array(lme4["response"]), LMM.fitted, "fitted values", scale=sigma)
    assert_close(points[:, 1], lme4["pearson"], LMM.fitted, "Pearson residuals", scale=1.0)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("fitted value", "Pearson residual")
    assert np.array_equal(ax.lines[0].get_ydata(), [0, 0])  # the zero line
    assert len(ax.lines) == 2  # and the smooth
    assert ax.get_legend() is None
    assert len(m.plot.residuals(smooth=False, ax=plt.subplots()[1]).lines) == 1


def test_residual_plot_of_a_glmm_draws_lme4s_fitted_means_and_residuals(reference_fits: ReferenceFits) -> None:
    g = reference_fits.glmer("cbpp_binomial")
    lme4 = diagnostics("cbpp_binomial")["residuals"]
    for kind in ("pearson", "deviance"):
        points = offsets(g.plot.residuals(type=kind, ax=plt.subplots()[1]).collections[0])
        assert_close(points[:, 0], g.y - np.array(lme4["response"]), GLMM.fitted, "fitted proportions", scale=1.0)
        assert_close(points[:, 1], lme4[kind], GLMM.fitted, f"{kind} residuals", scale=np.abs(lme4[kind]).max())


def test_residuals_by_group_colour_the_points_with_a_legend_only_for_a_few_groups(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    ax = m.plot.residuals(by="Subject")
    subjects = m.design.terms[0].factor
    assert np.array_equal(ax.collections[0].get_array(), subjects.codes)
    assert subjects.n_levels == 18 and ax.get_legend() is None
    penicillin = reference_fits.lmer("penicillin_reml")
    legend = penicillin.plot.residuals(by="sample").get_legend()
    assert legend.get_title().get_text() == "sample"
    assert [text.get_text() for text in legend.get_texts()] == list("ABCDEF")


def test_residuals_by_something_other_than_a_grouping_factor_is_a_data_error(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    with pytest.raises(mm.DataError, match=r"by='Days' is not a grouping factor.*'Subject'"):
        m.plot.residuals(by="Days")
    with pytest.raises(ValueError, match="type must be one of"):
        m.plot.residuals(type="studentized")  # type: ignore[arg-type]


def test_the_smooth_is_the_local_linear_fit() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 10, 2000)
    y = np.sin(x) + rng.normal(0, 0.3, x.size)
    grid, fitted = local_linear_smooth(x, y, bandwidth_fraction=0.1)
    # The exact local-linear fit with the same Gaussian kernel (bandwidth a tenth of the range),
    # point by point: the binned sums differ from it only through the kernel's argument.
    bandwidth = 0.1 * (x.max() - x.min())
    weight = np.exp(-0.5 * ((x[None, :] - grid[:, None]) / bandwidth) ** 2)
    exact = np.empty(grid.size)
    for i, g in enumerate(grid):
        basis = np.column_stack([np.ones_like(x), x - g]) * np.sqrt(weight[i])[:, None]
        exact[i] = np.linalg.lstsq(basis, y * np.sqrt(weight[i]), rcond=None)[0][0]
    assert_close(fitted, exact, Tolerance(absolute=2e-3), "binned local-linear smooth")
    line_grid, line = local_linear_smooth(x, 3 * x - 2)
    assert_close(line, 3 * line_grid - 2, Tolerance(absolute=1e-9), "a straight line smoothed")


# ----- QQ plots --------------------------------------------------------------------------------
def test_r_ppoints_as_r_gives_them() -> None:
    # R 4.2.2: ppoints(4); ppoints(18)[1:3]
    assert_close(r_ppoints(4), [0.1470588, 0.3823529, 0.6176471, 0.8529412], Tolerance(absolute=1e-7), "ppoints(4)")
    assert_close(r_ppoints(18)[:3], [0.02777778, 0.08333333, 0.13888889], Tolerance(absolute=1e-8), "ppoints(18)")


def test_qq_plot_draws_sorted_residuals_against_normal_quantiles_of_r_ppoints(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    pearson = np.sort(diagnostics("sleepstudy_reml")["residuals"]["pearson"])
    ax = m.plot.qq()
    points = offsets(ax.collections[0])
    theoretical = stats.norm.ppf(r_ppoints(180))
    assert_close(points[:, 0], theoretical, Tolerance(absolute=1e-12), "theoretical quantiles")
    assert_close(points[:, 1], pearson, LMM.fitted, "sorted Pearson residuals", scale=1.0)
    # R's qqline: through the quartiles (quantile type 7, numpy's default) of sample and normal.
    sample_q = np.quantile(pearson, [0.25, 0.75])
    normal_q = stats.norm.ppf([0.25, 0.75])
    slope = (sample_q[1] - sample_q[0]) / (normal_q[1] - normal_q[0])
    x, y = ax.lines[0].get_data()
    assert_close(np.asarray(x), theoretical[[0, -1]], Tolerance(absolute=1e-12), "qqline ends")
    assert_close(np.asarray(y), sample_q[0] + slope * (theoretical[[0, -1]] - normal_q[0]), Tolerance(relative=1e-4), "qqline")
    assert ax.get_ylabel() == "Pearson residual"


def test_qq_ranef_has_a_panel_per_random_effect_column(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    lme4 = pd.DataFrame.from_dict(reference_fits.case("sleepstudy_reml")["ranef"]["Subject"], orient="index")
    fig = m.plot.qq_ranef()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    for ax, column in zip(fig.axes, ["(Intercept)", "Days"]):
        assert ax.get_title() == f"Subject: {column}"
        points = offsets(ax.collections[0])
        assert_close(points[:, 0], stats.norm.ppf(r_ppoints(18)), Tolerance(absolute=1e-12), "theoretical quantiles")
        want = np.sort(lme4[column].to_numpy())
        assert_close(points[:, 1], want, LMM.conditional_modes, f"sorted modes {column}", scale=np.abs(want).max())
    # Several grouping factors: a panel each; one of them chosen: its one panel's Axes.
    penicillin = reference_fits.lmer("penicillin_reml")
    assert [ax.get_title() for ax in penicillin.plot.qq_ranef().axes] == ["plate: (Intercept)", "sample: (Intercept)"]
    single = penicillin.plot.qq_ranef(group="sample")
    assert isinstance(single, Axes) and len(offsets(single.collections[0])) == 6


def test_qq_ranef_rejects_ax_for_several_panels_and_an_unknown_group(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    with pytest.raises(mm.SpecificationError, match="draws 2 panels.*fig="):
        m.plot.qq_ranef(ax=plt.subplots()[1])
    with pytest.raises(mm.DataError, match="group='Days' is not a grouping factor"):
        m.plot.qq_ranef(group="Days")


# ----- caterpillar plots -----------------------------------------------------------------------
def test_caterpillar_plot_draws_lme4s_modes_with_196_conditional_sds(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    case = reference_fits.case("sleepstudy_reml")
    modes = pd.DataFrame.from_dict(case["ranef"]["Subject"], orient="index")
    sds = pd.DataFrame.from_dict(case["ranef_condsd"]["Subject"], orient="index")
    order = modes["(Intercept)"].sort_values(kind="stable").index  # lme4's dotplot: by the first column
    fig = m.plot.ranef()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    for ax, column in zip(fig.axes, ["(Intercept)", "Days"]):
        assert ax.get_title() == f"Subject: {column}"
        assert [label.get_text() for label in ax.get_yticklabels()] == list(order)
        want, sd = modes.loc[order, column].to_numpy(), sds.loc[order, column].to_numpy()
        scale = np.abs(want).max()
        points = offsets(ax.collections[1])
        assert_close(points[:, 0], want, LMM.conditional_modes, f"modes {column}", scale=scale)
        assert np.array_equal(points[:, 1], np.arange(18))
        bars = segments(ax.collections[0])
        assert_close(bars[:, 0, 0], want - Z95 * sd, LMM.conditional_modes, f"lower ends {column}", scale=scale)
        assert_close(bars[:, 1, 0], want + Z95 * sd, LMM.conditional_modes, f"upper ends {column}", scale=scale)
        assert np.array_equal(bars[:, :, 1], np.repeat(np.arange(18.0)[:, None], 2, axis=1))
    half = segments(m.plot.ranef(level=0.9, fig=plt.figure()).axes[1].collections[0])
    widths = (half[:, 1, 0] - half[:, 0, 0]) / 2
    expected = stats.norm.ppf(0.95) * sds.loc[order, "Days"].to_numpy()
    assert_close(widths, expected, LMM.conditional_modes, "90% half-widths")


def test_caterpillar_plot_of_many_levels_labels_only_the_extremes(reference_fits: ReferenceFits) -> None:
    g = reference_fits.glmer("grouseticks_poisson")
    case = reference_fits.case("grouseticks_poisson")
    ax = g.plot.ranef(group="BROOD")
    assert isinstance(ax, Axes) and len(offsets(ax.collections[1])) == 118
    modes = g.ranef()["BROOD"].iloc[:, 0].sort_values(kind="stable")
    labels = [label.get_text() for label in ax.get_yticklabels()]
    assert labels == list(modes.index[:5]) + list(modes.index[-5:])
    assert np.array_equal(ax.get_yticks(), [0, 1, 2, 3, 4, 113, 114, 115, 116, 117])
    lme4 = case["ranef"]["BROOD"]  # lme4's modes of the levels it lists
    shown = {label: x for label, x in zip(modes.index, offsets(ax.collections[1])[:, 0])}
    names = [name for name in lme4 if name in shown]
    want = np.array([lme4[name]["(Intercept)"] for name in names])
    assert_close([shown[name] for name in names], want, GLMM.conditional_modes, "BROOD modes", scale=np.abs(want).max())


def test_caterpillar_plot_rejects_bad_input(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    with pytest.raises(mm.DataError, match="group='Reaction' is not a grouping factor"):
        m.plot.ranef(group="Reaction")
    with pytest.raises(mm.SpecificationError, match="level must be between 0 and 1"):
        m.plot.ranef(level=95)


# ----- shrinkage -------------------------------------------------------------------------------
def test_shrinkage_plot_draws_per_subject_least_squares_and_lme4s_coef(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    data = reference_fits.data("sleepstudy_reml")
    case = reference_fits.case("sleepstudy_reml")
    levels = list(m.ranef()["Subject"].index)
    per_subject = {s: np.polyfit(rows["Days"], rows["Reaction"], 1) for s, rows in data.groupby("Subject", observed=True)}
    ols = np.array([[per_subject[s][1], per_subject[s][0]] for s in levels])  # (intercept, slope)
    fixef = np.array([case["fixef"]["(Intercept)"], case["fixef"]["Days"]])
    ranef = pd.DataFrame.from_dict(case["ranef"]["Subject"], orient="index").loc[levels, ["(Intercept)", "Days"]]
    coef = ranef.to_numpy() + fixef  # lme4's coef(m)
    ax = m.plot.shrinkage()
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("(Intercept)", "Days")
    assert_close(offsets(ax.collections[0]), ols, Tolerance(relative=1e-10), "least-squares points")
    assert_close(offsets(ax.collections[1]), coef, LMM.conditional_modes, "coef(m) points", scale=np.abs(coef).max(axis=0))
    arrows = ax.collections[2]
    assert_close(np.asarray(arrows.get_offsets()), ols, Tolerance(relative=1e-10), "arrow tails")
    heads = ols + np.column_stack([arrows.U, arrows.V])
    assert_close(heads, coef, LMM.conditional_modes, "arrow heads", scale=np.abs(coef).max(axis=0))
    assert_close(offsets(ax.collections[3])[0], fixef, LMM.fixed_effects, "population estimate")
    assert len(ax.get_legend().get_texts()) == 3


def test_shrinkage_plot_of_a_random_intercept_shows_group_means(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("dyestuff_reml")
    case = reference_fits.case("dyestuff_reml")
    data = reference_fits.data("dyestuff_reml")
    means = data.groupby("Batch", observed=True)["Yield"].mean()
    coef = pd.Series({level: value["(Intercept)"] for level, value in case["ranef"]["Batch"].items()}) + case["fixef"]["(Intercept)"]
    ax = m.plot.shrinkage()
    levels = list(m.ranef()["Batch"].index)
    rank = np.argsort(np.argsort(means.loc[levels].to_numpy(), kind="stable"))
    assert_close(offsets(ax.collections[0]), np.column_stack([means.loc[levels], rank]), Tolerance(relative=1e-12), "group means")
    assert_close(offsets(ax.collections[1])[:, 0], coef.loc[levels], LMM.conditional_modes, "coef(m)", scale=coef.abs().max())
    assert_close(ax.lines[0].get_xdata()[0], case["fixef"]["(Intercept)"], LMM.fixed_effects, "population line")
    assert [label.get_text() for label in ax.get_yticklabels()] == list(means.sort_values(kind="stable").index)


def test_a_group_whose_own_fit_is_not_identified_gets_no_least_squares_estimate(sleepstudy: pd.DataFrame) -> None:
    one_day = sleepstudy[(sleepstudy["Subject"] != sleepstudy["Subject"].iloc[0]) | (sleepstudy["Days"] == 0)]
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", one_day)
    estimates = group_estimates(m)
    first = estimates.least_squares.index[0]
    assert estimates.least_squares.loc[first].isna().all()
    assert estimates.least_squares.drop(index=first).notna().all().all()
    assert estimates.mixed.notna().all().all()


def test_shrinkage_plot_rejects_models_it_cannot_show(reference_fits: ReferenceFits) -> None:
    with pytest.raises(mm.SpecificationError, match="choose one with group="):
        reference_fits.lmer("penicillin_reml").plot.shrinkage()
    with pytest.raises(mm.SpecificationError, match="also has"):
        reference_fits.lmer("penicillin_reml").plot.shrinkage(group="plate")
    with pytest.raises(mm.SpecificationError, match="linear mixed model"):
        reference_fits.glmer("cbpp_binomial").plot.shrinkage()
    with pytest.raises(mm.DataError, match="group='Batch' is not a grouping factor"):
        reference_fits.lmer("sleepstudy_reml").plot.shrinkage(group="Batch")


# ----- influence -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def subject_deletion(reference_fits: ReferenceFits) -> SimpleNamespace:
    """Cook's distances and dfbeta by deleting each subject of sleepstudy, refitted from scratch
    (the brute force the influence measures are defined by)."""
    m = reference_fits.lmer("sleepstudy_reml")
    data = reference_fits.data("sleepstudy_reml")
    beta = m.params.to_numpy()
    precision = np.linalg.inv(m.cov_params().to_numpy())
    subjects = list(m.ranef()["Subject"].index)
    deleted = np.array([mm.lmer(m.formula, data[data["Subject"] != s]).params.to_numpy() for s in subjects])
    change = beta - deleted
    index = pd.Index(subjects, name="Subject")
    return SimpleNamespace(
        cooks_distance=pd.Series(np.einsum("ij,jk,ik->i", change, precision, change) / len(beta), index=index),
        dfbeta=pd.DataFrame(change, index=index, columns=m.params.index),
    )


def test_influence_plot_draws_the_cooks_distances_lme4s_deletion_refits_give(reference_fits: ReferenceFits, subject_deletion: SimpleNamespace) -> None:
    lme4 = diagnostics("sleepstudy_reml")["case_deletion"]["groups"]
    assert list(subject_deletion.cooks_distance.index) == lme4["deleted"]
    assert_close(subject_deletion.cooks_distance, lme4["cooks_d"], COOKS_DISTANCE, "Cook's distance (the test's refits)")
    ax = reference_fits.lmer("sleepstudy_reml").plot.influence(influence=subject_deletion)
    stems = segments(ax.collections[0])
    assert np.array_equal(stems[:, :, 0], np.repeat(np.arange(18.0)[:, None], 2, axis=1))
    assert np.array_equal(stems[:, 0, 1], np.zeros(18))
    assert_close(stems[:, 1, 1], lme4["cooks_d"], COOKS_DISTANCE, "stem heights")
    assert_close(offsets(ax.collections[1])[:, 1], lme4["cooks_d"], COOKS_DISTANCE, "points")
    largest = list(pd.Series(lme4["cooks_d"], index=lme4["deleted"]).sort_values(ascending=False).index[:3])
    assert [text.get_text() for text in ax.texts] == largest
    assert [label.get_text() for label in ax.get_xticklabels()] == lme4["deleted"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Subject", "cooks_distance")


def test_m_plot_influence_draws_the_results_own_exact_deletion_measures(reference_fits: ReferenceFits) -> None:
    lme4 = diagnostics("sleepstudy_reml")["case_deletion"]["groups"]
    ax = reference_fits.lmer("sleepstudy_reml").plot.influence("cooks_distance", groups="Subject")
    assert [label.get_text() for label in ax.get_xticklabels()] == lme4["deleted"]
    assert_close(segments(ax.collections[0])[:, 1, 1], lme4["cooks_d"], COOKS_DISTANCE, "stem heights from m.influence")


def test_influence_plot_of_a_table_has_a_panel_per_column(subject_deletion: SimpleNamespace) -> None:
    fig = influence_plot(subject_deletion, "dfbeta")
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["dfbeta: (Intercept)", "dfbeta: Days"]
    for ax, column in zip(fig.axes, subject_deletion.dfbeta.columns):
        assert np.array_equal(segments(ax.collections[0])[:, 1, 1], subject_deletion.dfbeta[column].to_numpy())


def test_influence_plot_of_many_units_has_no_unit_tick_labels() -> None:
    values = pd.Series(np.linspace(0, 1, 180), index=[f"row {i}" for i in range(180)])
    ax = influence_plot(SimpleNamespace(cooks_distance=values), labels=2)
    assert "row 5" not in [label.get_text() for label in ax.get_xticklabels()]
    assert [text.get_text() for text in ax.texts] == ["row 179", "row 178"]


def test_m_plot_influence_computes_the_measures_lazily_with_the_result_s_influence(subject_deletion: SimpleNamespace) -> None:
    calls: list[dict[str, Any]] = []

    def influence(**arguments: Any) -> SimpleNamespace:
        calls.append(arguments)
        return subject_deletion

    accessor = PlotAccessor(SimpleNamespace(influence=influence))  # type: ignore[arg-type]
    accessor.influence(groups="Subject")
    accessor.influence(obs=True)
    assert calls == [{"groups": "Subject"}, {"obs": True}]
    with pytest.raises(mm.SpecificationError, match="cannot compute influence measures.*influence="):
        PlotAccessor(SimpleNamespace()).influence(groups="Subject")  # type: ignore[arg-type]


def test_influence_plot_rejects_a_measure_the_object_does_not_have(subject_deletion: SimpleNamespace) -> None:
    with pytest.raises(mm.SpecificationError, match="no measure 'cooks_d'"):
        influence_plot(subject_deletion, "cooks_d")
    with pytest.raises(mm.SpecificationError, match="labels must be"):
        influence_plot(subject_deletion, labels=-1)


# ----- profiles --------------------------------------------------------------------------------
def test_profile_plot_draws_each_parameter_s_zeta_curve(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("dyestuff_reml")
    profile = m.profile()
    fig = m.plot.profile(profile=profile)
    assert isinstance(fig, Figure)
    assert [ax.get_xlabel() for ax in fig.axes] == list(profile.profiles)
    levels = [0.5, 0.8, 0.9, 0.95, 0.99]
    cutoffs = stats.norm.ppf(0.5 + np.array(levels) / 2)
    for ax, (name, table) in zip(fig.axes, profile.profiles.items()):
        assert ax.get_ylabel() == "ζ"
        assert np.array_equal(ax.lines[0].get_xdata(), table[name].to_numpy())
        assert np.array_equal(ax.lines[0].get_ydata(), table["zeta"].to_numpy())
        horizontal = np.array([line.get_ydata()[0] for line in ax.lines[1:]])
        assert_close(horizontal, np.column_stack([-cutoffs, cutoffs]).ravel(), Tolerance(absolute=1e-12), "ζ = ±z lines")
        bounds = np.array([profile.confint(level).table.loc[name].to_numpy() for level in levels])
        assert_close(segments(ax.collections[0])[:, 0, 0], bounds.ravel(), Tolerance(absolute=1e-12), f"{name} interval segments")


def test_profile_plot_of_chosen_parameters_and_bad_input(reference_fits: ReferenceFits) -> None:
    profile = reference_fits.lmer("dyestuff_reml").profile(level=0.95)
    ax = profile_plot(profile, parameters=["sigma"], levels=[0.95])
    assert isinstance(ax, Axes) and ax.get_xlabel() == "sigma"
    assert len(segments(ax.collections[0])) == 2
    with pytest.raises(mm.SpecificationError, match="no profile of \\['Days'\\]"):
        profile_plot(profile, parameters=["Days"])
    with pytest.raises(mm.SpecificationError, match="levels must be between 0 and the profile's level 0.95"):
        profile_plot(profile)  # the default levels reach 0.99
    with pytest.raises(mm.SpecificationError, match="likelihood profile"):
        profile_plot(reference_fits.lmer("dyestuff_reml"))  # type: ignore[arg-type]
