"""Confidence intervals against lme4's ``confint(m, method = "Wald", oldNames = FALSE)``
(reference/inference, ``confint_wald``) for every reference case that has them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pytest

import mixedmodels as mm
from reference_cases import REFERENCE_DIR, lme4_name
from tolerances import GLMM, WALD_BOUNDS, assert_close

if TYPE_CHECKING:
    from conftest import ReferenceFits

INFERENCE = sorted(path.stem for path in (REFERENCE_DIR / "inference").glob("*.json"))


def wald_reference(case_id: str) -> dict[str, list[float | None]]:
    block = json.loads((REFERENCE_DIR / "inference" / f"{case_id}.json").read_text(encoding="utf-8"))["confint_wald"]
    assert block["level"] == 0.95
    intervals: dict[str, list[float | None]] = block["intervals"]
    return intervals


@pytest.mark.parametrize("case_id", INFERENCE)
def test_wald_intervals_are_lme4s(case_id: str, reference_fits: ReferenceFits) -> None:
    """Variance parameters first, in lme4's order and spelling; then the fixed effects, in
    ``params``' (patsy's) order, compared by name. A bound is β̂ ± z·SE, so it is allowed the
    relative tolerance on |β̂| + z·SE (the LMM Wald-bound tolerance; for GLMMs the policy's
    standard-error tolerance, which also bounds the estimates' own)."""
    m = reference_fits.fit(case_id)
    expected = wald_reference(case_id)
    table = m.confint(method="Wald").table
    labels = [lme4_name(name) for name in table.index]
    n_variance = sum(1 for label in expected if label.startswith(("sd_", "cor_")) or label == "sigma")
    assert labels[:n_variance] == list(expected)[:n_variance], "variance-parameter labels and their order"
    assert sorted(labels[n_variance:]) == sorted(list(expected)[n_variance:]), "fixed-effect names"
    assert table.iloc[:n_variance].isna().all().all()  # lme4 gives no Wald interval for variance parameters
    tolerance = WALD_BOUNDS if isinstance(m, mm.LmerResult) else GLMM.standard_errors
    for name, label in zip(table.index[n_variance:], labels[n_variance:]):
        lower, upper = expected[label]
        assert lower is not None and upper is not None
        scale = abs(lower + upper) / 2 + (upper - lower) / 2
        assert_close(table.loc[name].to_numpy(), np.array([lower, upper]), tolerance, f"{case_id} {label}", scale=scale)


def test_the_level_sets_the_width(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    wide, narrow = m.confint(method="Wald", level=0.99).table.loc["Days"], m.confint(method="Wald", level=0.5).table.loc["Days"]
    z99, z50 = 2.5758293035489004, 0.6744897501960817  # R's qnorm(0.995), qnorm(0.75)
    assert_close(wide["upper"] - wide["lower"], 2 * z99 * m.bse["Days"], WALD_BOUNDS, "99%")
    assert_close(narrow["upper"] - narrow["lower"], 2 * z50 * m.bse["Days"], WALD_BOUNDS, "50%")


@pytest.mark.parametrize("level", [0.0, 1.0, 2.0, -0.5, "0.95", True])
def test_a_level_outside_zero_to_one_is_refused(level: object, reference_fits: ReferenceFits) -> None:
    with pytest.raises(mm.SpecificationError, match="level"):
        reference_fits.lmer("sleepstudy_reml").confint(method="Wald", level=level)  # type: ignore[arg-type]


def test_an_unknown_method_is_refused(reference_fits: ReferenceFits) -> None:
    with pytest.raises(mm.SpecificationError, match="method must be one of 'Wald', 'profile', 'boot'"):
        reference_fits.lmer("sleepstudy_reml").confint(method="bogus")  # type: ignore[arg-type]


@pytest.mark.parametrize("case_id", ["sleepstudy_reml", "cbpp_binomial"])
def test_bootstrap_intervals_are_the_bootstraps_percentile_intervals(case_id: str, reference_fits: ReferenceFits) -> None:
    """``method="boot"`` is ``mm.bootstrap(m, nsim, seed).intervals(level)`` (whose numbers
    tests/test_bootstrap.py checks), labelled exactly as the Wald and profile tables."""
    m = reference_fits.fit(case_id)
    boot = m.confint(method="boot", level=0.9, nsim=40, seed=11).table
    assert boot.equals(mm.bootstrap(m, n=40, seed=11).intervals(level=0.9).table)
    assert list(boot.index) == list(m.confint(method="Wald").table.index)
