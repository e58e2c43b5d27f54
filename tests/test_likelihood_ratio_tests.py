"""Likelihood-ratio tests against R: ``mm.anova(m0, m1)`` against lme4's ``anova(m0, m1)`` (the
case JSONs' ``anova_lrt``), ``m.drop1()`` against lme4's ``drop1(m, test = "Chisq")`` and
``m.ranova()`` against lmerTest's ``ranova(m)`` (``tests/reference/inference/<case>.json``)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import ReferenceFits
from reference_cases import case_ids, load_case
from tolerances import LRT_STATISTICS, P_VALUES, assert_close, for_kind

INFERENCE_DIR = Path(__file__).parent / "reference" / "inference"
ANOVA_CASES = [case_id for case_id in case_ids() if load_case(case_id).get("anova_lrt")]
INFERENCE_CASES = sorted(path.stem for path in INFERENCE_DIR.glob("*.json"))


def inference(case_id: str) -> dict[str, Any]:
    with open(INFERENCE_DIR / f"{case_id}.json") as file:
        return dict(json.load(file))


def quietly(call: Any) -> Any:
    """Refits of reduced models may be singular (lme4 reports the same in its references)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SingularFitWarning)
        return call()


def column(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if row[key] is None else row[key] for row in rows], dtype=float)


@pytest.mark.parametrize("case_id", ANOVA_CASES)
def test_anova_matches_lme4(reference_fits: ReferenceFits, case_id: str) -> None:
    reference = load_case(case_id)["anova_lrt"]
    tolerances = for_kind(load_case(case_id)["kind"])
    comparison = quietly(lambda: mm.anova(reference_fits.fit(case_id), reference_fits.fit(reference["other_case"])))
    rows = reference["table"]
    table = comparison.table
    assert comparison.refitted == reference["refit_ML"]
    formulas = [load_case(row["case"]) for row in rows]
    assert table.index.tolist() == [case.get("formula_python", case["formula"]) for case in formulas]
    assert table["npar"].tolist() == [row["npar"] for row in rows]
    assert_close(table["loglik"], column(rows, "logLik"), tolerances.log_likelihood, f"{case_id} logLik")
    for ours, theirs in (("AIC", "AIC"), ("BIC", "BIC"), ("deviance", "deviance")):
        assert_close(table[ours], column(rows, theirs), tolerances.criteria, f"{case_id} {theirs}")
    assert_close(table["chisq"].iloc[1:], column(rows, "Chisq")[1:], LRT_STATISTICS, f"{case_id} Chisq")
    assert table["df"].iloc[1:].tolist() == column(rows, "Df")[1:].tolist()
    assert_close(table["p_value"].iloc[1:], column(rows, "Pr")[1:], P_VALUES, f"{case_id} p-value")
    assert np.isnan(table[["chisq", "df", "p_value"]].iloc[0]).all()


def test_anova_without_refit_keeps_the_reml_fits(reference_fits: ReferenceFits) -> None:
    m0, m1 = reference_fits.lmer("sleepstudy_uncorr_reml"), reference_fits.lmer("sleepstudy_reml")
    comparison = mm.anova(m1, m0, refit=False)
    assert not comparison.refitted
    assert comparison.table["loglik"].tolist() == [m0.llf, m1.llf]
    assert comparison.models == (m0, m1)


def test_anova_labels_repeated_formulas_apart(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_ml")
    table = mm.anova(m, m).table
    assert table.index.tolist() == [m.formula, f"{m.formula} [2]"]
    assert table["chisq"].iloc[1] == 0 and np.isnan(table["p_value"].iloc[1])  # 0 df: no test


def test_anova_refuses_what_it_cannot_compare(reference_fits: ReferenceFits, sleepstudy: pd.DataFrame) -> None:
    lmm = reference_fits.lmer("sleepstudy_ml")
    with pytest.raises(mm.SpecificationError, match="at least two"):
        mm.anova()
    with pytest.raises(mm.SpecificationError, match="argument 2 is a str"):
        mm.anova(lmm, "Reaction ~ Days + (1 | Subject)")  # type: ignore[arg-type]
    with pytest.raises(mm.SpecificationError, match="linear with generalized"):
        mm.anova(lmm, reference_fits.glmer("cbpp_binomial"))
    fewer = mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy.iloc[:170], REML=False)
    with pytest.raises(mm.DataError, match="same number of observations"):
        mm.anova(lmm, fewer)
    shuffled = sleepstudy.iloc[::-1].reset_index(drop=True)
    other_rows = mm.lmer("Reaction ~ Days + (1 | Subject)", shuffled.set_axis(sleepstudy.index[::-1]), REML=False)
    with pytest.raises(mm.DataError, match="different rows"):
        mm.anova(lmm, other_rows)
    other_response = mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy.assign(Reaction=sleepstudy["Reaction"] + 1), REML=False)
    with pytest.raises(mm.DataError, match="different responses"):
        mm.anova(lmm, other_response)


@pytest.mark.parametrize("case_id", INFERENCE_CASES)
def test_drop1_matches_lme4(reference_fits: ReferenceFits, case_id: str) -> None:
    rows = inference(case_id)["drop1"]["table"]
    kind = load_case(case_id)["kind"]
    table = quietly(lambda: reference_fits.fit(case_id).drop1()).table
    # R labels the only row of a model with nothing to drop "1" rather than "<none>".
    assert table.index.tolist() == ["<none>" if row["term"] == "1" else row["term"] for row in rows]
    # lme4's adaptive Gauss-Hermite log-likelihoods are relative to the saturated model; ours are
    # not (the case JSON gives the saturated log-likelihood), so its AICs are shifted back.
    saturated = load_case(case_id).get("logLik_saturated") or 0.0
    assert_close(table["AIC"], column(rows, "AIC") - 2 * saturated, for_kind(kind).criteria, f"{case_id} AIC")
    assert_close(table["npar"].iloc[1:], column(rows, "npar")[1:], LRT_STATISTICS, f"{case_id} npar")
    assert_close(table["LRT"].iloc[1:], column(rows, "LRT")[1:], LRT_STATISTICS, f"{case_id} LRT")
    assert_close(table["p_value"].iloc[1:], column(rows, "Pr(Chi)")[1:], P_VALUES, f"{case_id} p-value")


def test_drop1_respects_marginality(reference_fits: ReferenceFits) -> None:
    # cake's recipe * temperature: only the interaction may go (the drop1 reference has it alone).
    assert reference_fits.lmer("cake_reml").drop1().table.index.tolist() == ["<none>", "recipe:temperature"]


def test_drop1_needs_the_data(reference_fits: ReferenceFits) -> None:
    fit = reference_fits.lmer("sleepstudy_ml")
    model = mm.LinearMixedModel(fit.model.formula, fit.design, REML=False)
    with pytest.raises(mm.SpecificationError, match="keeps no data"):
        model.fit().drop1()


@pytest.mark.parametrize("case_id", [case_id for case_id in INFERENCE_CASES if "ranova" in inference(case_id)])
def test_ranova_matches_lmertest(reference_fits: ReferenceFits, case_id: str) -> None:
    reference = inference(case_id)["ranova"]
    rows = reference["table"]
    fit = reference_fits.lmer(case_id)
    assert fit.reml == reference["REML"]
    deletion = quietly(fit.ranova)
    table = deletion.table
    assert table.index.tolist() == [row["term"] for row in rows]
    assert table["npar"].tolist() == [row["npar"] for row in rows]
    assert_close(table["loglik"], column(rows, "logLik"), for_kind("lmer").log_likelihood, f"{case_id} logLik")
    assert_close(table["AIC"], column(rows, "AIC"), for_kind("lmer").criteria, f"{case_id} AIC")
    assert_close(table["LRT"].iloc[1:], column(rows, "LRT")[1:], LRT_STATISTICS, f"{case_id} LRT")
    assert table["df"].iloc[1:].tolist() == column(rows, "Df")[1:].tolist()
    assert_close(table["p_value"].iloc[1:], column(rows, "Pr(>Chisq)")[1:], P_VALUES, f"{case_id} p-value")
    assert list(deletion.formulas) == list(reference["reduced_formulae"])


def test_ranova_refuses_a_glmm(reference_fits: ReferenceFits) -> None:
    from mixedmodels.inference import ranova

    with pytest.raises(mm.SpecificationError, match="linear mixed model"):
        ranova(reference_fits.glmer("cbpp_binomial"))  # type: ignore[arg-type]


def test_drop1_refuses_a_negative_binomial_fit(reference_fits: ReferenceFits) -> None:
    with pytest.raises(mm.SpecificationError, match="negative binomial"):
        reference_fits.glmer("synth_negbin").drop1()
