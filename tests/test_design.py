"""Design building details that the reference fits do not pin down on their own."""

from __future__ import annotations

import sys

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


def _strings(n: int, n_levels: int, seed: int) -> np.ndarray:
    """IDs as a CSV gives them: strings whose sorted order is not their numeric order."""
    numbers = np.random.default_rng(seed).integers(0, n_levels, n)
    return np.char.add("S", numbers.astype(str)).astype(object)


@pytest.mark.parametrize(
    "values",
    [
        _strings(50_000, 1_000, 1),  # object strings: pandas' factorize, distinct values sorted
        pd.array(_strings(50_000, 1_000, 2), dtype="str"),  # pandas' default for read_csv strings
        pd.array(_strings(500, 30, 3), dtype="string"),
        pd.array(["b", None, "a", "b"], dtype="str"),  # a missing value keeps pandas' code −1
        np.array(["é", "e", "f", "E", "e"], dtype=object),  # code-point order, as pandas sorts
        np.array([2.5, 1.0, 2.5, -0.5]),
        np.array([True, False, True]),
        pd.array([3, 1, None, 3], dtype="Int64"),
        np.array(["a", 1, "a"], dtype=object),  # values that do not compare: pandas' own path
    ],
)
def test_hash_encoded_grouping_factors_keep_pandas_level_order(values: np.ndarray | pd.api.extensions.ExtensionArray) -> None:
    """Strings (and other non-integer columns) are hash-encoded with only the distinct values
    sorted; the levels and codes are exactly pandas' Categorical ones, which the level order of
    every fit and of ``ranef()`` has always followed."""
    from mixedmodels.formula.design import _categories_and_codes

    categories, codes = _categories_and_codes(values)
    categorical = pd.Categorical(values)
    assert categories.equals(categorical.categories)
    assert categories.dtype == categorical.categories.dtype
    assert np.array_equal(codes, categorical.codes)


def test_a_fit_on_string_ids_is_the_fit_on_their_categorical() -> None:
    import mixedmodels as mm

    data = mm.datasets.load("Penicillin")
    as_read = data.assign(plate=data["plate"].astype(str), sample=data["sample"].astype("str"))
    m, m_str = (mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", d) for d in (data, as_read))
    assert m.llf == m_str.llf and np.array_equal(m.theta, m_str.theta)
    assert all(m.ranef()[g].equals(m_str.ranef()[g]) for g in ("plate", "sample"))


def test_python_backed_strings_are_grouping_factors_without_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    # pandas 3 without pyarrow reads text as Python-backed strings, which also export
    # __arrow_array__; pyarrow is not a dependency, so their levels must not need it.
    import mixedmodels as mm

    data = mm.datasets.load("Penicillin")
    as_read = data.assign(**{name: pd.array(data[name].astype(str), dtype=pd.StringDtype("python")) for name in ("plate", "sample")})
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # any import of pyarrow now fails
    monkeypatch.setitem(sys.modules, "pyarrow.compute", None)
    m_python = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", as_read)
    monkeypatch.undo()
    m = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", data)
    assert m.llf == m_python.llf and np.array_equal(m.theta, m_python.theta)
    assert all(m.ranef()[g].equals(m_python.ranef()[g]) for g in ("plate", "sample"))
