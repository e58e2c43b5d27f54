"""Design building details that the reference fits do not pin down on their own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixedmodels.formula.design import grouping_factor


@pytest.mark.parametrize(
    "values",
    [
        np.array([30, 10, 20, 10, 30], dtype=np.int64),  # a count table over the range
        np.array([-3, 7, 7, -3, 0], dtype=np.int8),
        np.array([10**12, 5, 5, 10**12], dtype=np.int64),  # a range too wide: pandas' path
    ],
)
def test_integer_grouping_factors_match_their_categorical(values: np.ndarray) -> None:
    from_integers = grouping_factor(("g",), pd.DataFrame({"g": values}))
    from_categorical = grouping_factor(("g",), pd.DataFrame({"g": pd.Categorical(values)}))
    assert np.array_equal(from_integers.codes, from_categorical.codes)
    assert from_integers.levels.equals(from_categorical.levels)
    assert from_integers.column_categories[0].equals(from_categorical.column_categories[0])
    new = pd.DataFrame({"g": [values[1], 999]})
    assert np.array_equal(from_integers.codes_for(new), from_categorical.codes_for(new))
