"""Binomial responses that are not numbers, read as R reads them: a factor's first level is failure
and every other level success, logical TRUE is success; text is taken as levels sorted as for
grouping factors. Against lme4's glmer on the same responses (reference/binary_responses.json,
generate_binary_responses.R): grouseticks' `TICKS > 0` as a logical, as a factor with "none" first
and, reversed, with "ticks" first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from reference_cases import lme4_name, load_case_data
from tolerances import GLMM, assert_close, assert_loglik

REFERENCE: dict[str, Any] = json.loads((Path(__file__).parent / "reference" / "binary_responses.json").read_text())
FORMULA = "infested ~ YEAR + cHEIGHT + (1 | BROOD)"


def grouseticks() -> pd.DataFrame:
    return load_case_data("grouseticks_poisson")


def responses(data: pd.DataFrame) -> dict[str, tuple[str, Any]]:
    """Each way a user may give the response, with the reference fit it must reproduce."""
    labels = np.where(data["TICKS"] > 0, "ticks", "none")
    return {
        "bool": ("logical", data["TICKS"] > 0),
        "categorical": ("factor_none_first", pd.Categorical(labels, categories=["none", "ticks"])),
        "reversed categorical": ("factor_ticks_first", pd.Categorical(labels, categories=["ticks", "none"])),
        "text": ("factor_none_first", pd.array(labels, dtype="str")),
        "object text": ("factor_none_first", labels.astype(object)),
    }


@pytest.mark.parametrize("how", ["bool", "categorical", "reversed categorical", "text", "object text"])
def test_a_response_of_levels_is_fitted_as_lme4_fits_it(how: str) -> None:
    data = grouseticks()
    key, response = responses(data)[how]
    expected = REFERENCE[key]
    g = mm.glmer(FORMULA, data.assign(infested=response), family="binomial")
    names = [lme4_name(name) for name in g.params.index]
    assert_close(g.params, [expected["fixef"][name] for name in names], GLMM.fixed_effects, f"{how} fixef")
    assert_close(g.theta, np.atleast_1d(expected["theta"]), GLMM.theta, f"{how} theta")
    assert_loglik(g.llf, expected["logLik"], GLMM.log_likelihood, f"{how} logLik")
    failure = "False" if how == "bool" else ("ticks" if how.startswith("reversed") else "none")
    assert f"'{failure}' is failure (0)" in str(g.summary())


def test_a_numeric_response_keeps_its_values_and_other_families_refuse_levels() -> None:
    data = grouseticks().assign(infested=lambda d: (d["TICKS"] > 0).astype(float))
    g = mm.glmer(FORMULA, data, family="binomial")
    assert g.design.response_levels is None
    text = data.assign(infested=np.where(data["TICKS"] > 0, "ticks", "none"))
    with pytest.raises(mm.DataError, match="'infested' must be numeric"):
        mm.glmer(FORMULA, text, family="poisson")
    with pytest.raises(mm.DataError, match="'infested' must be numeric"):
        mm.lmer(FORMULA, text)
