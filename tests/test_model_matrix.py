"""Model matrices are exactly patsy's, whichever path builds them, on fitting and on new data."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import patsy
import pytest

from mixedmodels.errors import DataError, FormulaError
from mixedmodels.formula.model_matrix import (
    NumpyModelMatrixBuilder,
    PatsyModelMatrixBuilder,
    model_matrix,
    variables,
)

NUMPY_ENVIRONMENT = patsy.EvalEnvironment([{"np": np}])


def make_data(n_rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n_rows)
    x[0] = -0.0  # patsy multiplies 1 by each value, which keeps the sign of zero
    return pd.DataFrame(
        {
            "x": x,
            "z": rng.uniform(1, 2, n_rows),
            "count": rng.integers(-5, 5, n_rows),
            "small": rng.integers(0, 9, n_rows).astype(np.uint16),
            "single": rng.normal(size=n_rows).astype(np.float32),
            "nullable_int": pd.array(rng.integers(0, 5, n_rows), dtype="Int64"),
            "nullable_float": pd.array(rng.normal(size=n_rows), dtype="Float64"),
            "g": rng.choice(["b", "a", "c"], n_rows),
            "case": pd.array(rng.choice(["B", "a", "C", "b", "_z"], n_rows), dtype="string"),
            "digits": rng.choice(["308", "1000", "99", "7"], n_rows),
            "plain": pd.Series(rng.choice(["q", "p"], n_rows), dtype=object),
            # Custom order and an unused category "z".
            "ordered": pd.Categorical(
                rng.choice(["u", "v", "w"], n_rows), categories=["w", "v", "u", "z"]
            ),
            "numbered": pd.Categorical(rng.choice([3, 1, 2], n_rows)),
            "flag": rng.random(n_rows) < 0.5,
            "constant": ["k"] * n_rows,
        }
    )


@pytest.fixture
def data() -> pd.DataFrame:
    return make_data(60, seed=1)


@pytest.fixture
def new_data() -> pd.DataFrame:
    new = make_data(25, seed=2)
    # Same categories as at fitting, as patsy requires for a pandas Categorical.
    new["ordered"] = pd.Categorical(new["ordered"].astype(str), categories=["w", "v", "u", "z"])
    new["numbered"] = pd.Categorical(new["numbered"].astype(int), categories=[1, 2, 3])
    return new


def assert_same_as_patsy(
    matrix: np.ndarray, names: list[str], reference: patsy.DesignMatrix
) -> None:
    expected = np.asarray(reference)
    assert matrix.dtype == np.float64
    assert matrix.flags.f_contiguous
    assert np.array_equal(matrix, expected)
    # Bit-identical, down to the sign of zeros.
    assert matrix.tobytes(order="C") == np.ascontiguousarray(expected).tobytes()
    assert names == reference.design_info.column_names


FAST_FORMULAS = [
    "x",
    "1",
    "0",
    "1 + x",
    "x + z + count",
    "x + count + small + single",
    "nullable_int + nullable_float",
    "g",
    "x + g",
    "g + x",
    "0 + g",
    "g - 1",
    "-1 + g",
    "g + 0 + x",
    "0 + g + ordered",
    "ordered + g - 1",
    "0 + x + g + ordered + case",
    "case",
    "digits",
    "0 + digits",
    "plain",
    "case + plain",
    "ordered",
    "0 + ordered",
    "numbered",
    "0 + numbered",
    "flag",
    "0 + flag",
    "flag + g",
    "constant",
    "0 + constant",
    "constant + g",
    "x + 1 - 1",
    "x - 1 + 1",
    "-0 + x",
    "+x",
    "x + 0",
    "1 + x + g + ordered + flag + numbered + digits + case + plain + count",
]


@pytest.mark.parametrize("rhs", FAST_FORMULAS)
def test_fast_path_reproduces_patsy_exactly(rhs: str, data: pd.DataFrame) -> None:
    matrix, builder = model_matrix(rhs, data)
    assert isinstance(builder, NumpyModelMatrixBuilder)
    assert_same_as_patsy(matrix, builder.column_names, patsy.dmatrix(rhs, data))


@pytest.mark.parametrize("rhs", FAST_FORMULAS)
def test_fast_rebuild_on_new_data_matches_patsy(
    rhs: str, data: pd.DataFrame, new_data: pd.DataFrame
) -> None:
    _, builder = model_matrix(rhs, data)
    design_info = patsy.dmatrix(rhs, data).design_info
    (reference,) = patsy.build_design_matrices([design_info], new_data, NA_action="raise")
    assert_same_as_patsy(builder.build(new_data), builder.column_names, reference)


FALLBACK_FORMULAS = [
    "x:g",
    "x * g",
    "C(g, Treatment('b'))",
    "np.log(z)",
    "I(x**2)",
    "recipe * temperature",
    "x + x",
    "x + z - z",
    "center(x) + bs(z, df=4)",
    "standardize(x) + C(ordered)",
    "np.log(z) + C(g) + flag:x",
]


@pytest.mark.parametrize("rhs", FALLBACK_FORMULAS)
def test_other_formulas_fall_back_to_patsy(
    rhs: str, data: pd.DataFrame, new_data: pd.DataFrame
) -> None:
    data = data.assign(recipe=data["g"].str.upper(), temperature=data["z"] * 10)
    new_data = new_data.assign(recipe=new_data["g"].str.upper(), temperature=new_data["z"] * 10)
    matrix, builder = model_matrix(rhs, data)
    assert isinstance(builder, PatsyModelMatrixBuilder)
    fitted = patsy.dmatrix(rhs, data, eval_env=NUMPY_ENVIRONMENT)
    assert_same_as_patsy(matrix, builder.column_names, fitted)
    (reference,) = patsy.build_design_matrices([fitted.design_info], new_data, NA_action="raise")
    assert_same_as_patsy(builder.build(new_data), builder.column_names, reference)


def test_columns_the_numpy_path_cannot_name_like_patsy_go_to_patsy() -> None:
    data = pd.DataFrame(
        {
            "when": pd.date_range("2024-01-01", periods=4),
            "mixed": pd.Series(["a", 1, "b", 2], dtype=object),
        }
    )
    matrix, builder = model_matrix("when + mixed", data)
    assert isinstance(builder, PatsyModelMatrixBuilder)
    assert_same_as_patsy(matrix, builder.column_names, patsy.dmatrix("when + mixed", data))


def test_non_string_levels_are_named_by_repr_as_patsy_does() -> None:
    levels = pd.Index([np.int64(3), np.float64(1.5), b"raw", (1, 2)], dtype=object)
    data = pd.DataFrame({"c": pd.Categorical.from_codes([0, 1, 2, 3, 0], categories=levels)})
    matrix, builder = model_matrix("0 + c", data)
    assert isinstance(builder, NumpyModelMatrixBuilder)
    assert_same_as_patsy(matrix, builder.column_names, patsy.dmatrix("0 + c", data))
    # The same values, no longer a Categorical, are matched to the learned levels one by one.
    assert np.array_equal(builder.build(data.assign(c=data["c"].astype(object))), matrix)


def test_patsy_puts_categorical_columns_before_numeric_ones(data: pd.DataFrame) -> None:
    _, builder = model_matrix("x + g + count + ordered", data)
    assert builder.column_names == [
        "Intercept",
        "g[T.b]",
        "g[T.c]",
        "ordered[T.v]",
        "ordered[T.u]",
        "ordered[T.z]",
        "x",
        "count",
    ]


def test_without_intercept_only_the_first_categorical_is_full_rank(data: pd.DataFrame) -> None:
    _, builder = model_matrix("x + ordered + g - 1", data)
    assert builder.column_names == [
        "ordered[w]",
        "ordered[v]",
        "ordered[u]",
        "ordered[z]",
        "g[T.b]",
        "g[T.c]",
        "x",
    ]


def test_booleans_are_categorical_with_both_levels() -> None:
    matrix, builder = model_matrix("0 + flag", pd.DataFrame({"flag": [True, True]}))
    assert builder.column_names == ["flag[False]", "flag[True]"]
    assert matrix.tolist() == [[0.0, 1.0], [0.0, 1.0]]


def test_unused_categories_give_all_zero_columns(data: pd.DataFrame) -> None:
    matrix, builder = model_matrix("ordered", data)
    unused = builder.column_names.index("ordered[T.z]")
    assert not matrix[:, unused].any()
    assert matrix[:, builder.column_names.index("ordered[T.u]")].any()


def test_string_levels_sort_by_code_point() -> None:
    data = pd.DataFrame({"s": ["b", "B", "308", "1000", "a", "99"]})
    _, builder = model_matrix("0 + s", data)
    assert builder.column_names == ["s[1000]", "s[308]", "s[99]", "s[B]", "s[a]", "s[b]"]


def test_integer_columns_are_numeric(data: pd.DataFrame) -> None:
    matrix, builder = model_matrix("count", data)
    assert builder.column_names == ["Intercept", "count"]
    assert np.array_equal(matrix[:, 1], data["count"].to_numpy(dtype=float))


def test_formula_is_not_evaluated_in_the_callers_frame(data: pd.DataFrame) -> None:
    local_only = np.arange(len(data))  # noqa: F841 - must stay invisible to the formula
    with pytest.raises(FormulaError, match="local_only"):
        model_matrix("np.log(z) + local_only", data)


@pytest.mark.parametrize("rhs", ["x + nowhere", "np.log(nowhere)", "log(z)"])
def test_unknown_names_raise_formula_error_naming_them(rhs: str, data: pd.DataFrame) -> None:
    unknown = "log" if rhs == "log(z)" else "nowhere"
    with pytest.raises(FormulaError, match=f"'{unknown}'"):
        model_matrix(rhs, data)


@pytest.mark.parametrize("rhs", ["x +", "x + 2", "y ~ x"])
def test_malformed_formulas_raise_formula_error(rhs: str, data: pd.DataFrame) -> None:
    with pytest.raises(FormulaError):
        model_matrix(rhs, data.assign(y=1.0))


@pytest.mark.parametrize("rhs", ["x + g", "x:g"])
@pytest.mark.parametrize("column", ["x", "g"])
def test_missing_values_at_fitting_raise_data_error(
    rhs: str, column: str, data: pd.DataFrame
) -> None:
    data.loc[3, column] = None  # NaN in both the float and the string column
    with pytest.raises(DataError, match=f"'{column}'"):
        model_matrix(rhs, data)


@pytest.mark.parametrize("rhs", ["x + g", "C(g)", "g:x"])
def test_unseen_level_raises_data_error_naming_column_and_level(
    rhs: str, data: pd.DataFrame, new_data: pd.DataFrame
) -> None:
    _, builder = model_matrix(rhs, data)
    new_data.loc[4, "g"] = "unheard"
    with pytest.raises(DataError, match=r"column 'g'.*'unheard'"):
        builder.build(new_data)


@pytest.mark.parametrize("rhs", ["x + ordered", "C(ordered)"])
def test_unseen_category_raises_data_error(
    rhs: str, data: pd.DataFrame, new_data: pd.DataFrame
) -> None:
    _, builder = model_matrix(rhs, data)
    new_data["ordered"] = pd.Categorical(["u", "unheard"] * 12 + ["w"])
    with pytest.raises(DataError, match=r"column 'ordered'.*'unheard'"):
        builder.build(new_data)


@pytest.mark.parametrize("rhs", ["x + ordered + g", "C(ordered) + g:x"])
def test_categoricals_with_other_categories_are_matched_by_level(
    rhs: str, data: pd.DataFrame, new_data: pd.DataFrame
) -> None:
    _, builder = model_matrix(rhs, data)
    subset = new_data.assign(
        ordered=pd.Categorical(new_data["ordered"].astype(str)),
        g=pd.Categorical(new_data["g"], categories=["c", "b", "a", "never"]),
    )
    expected = builder.build(new_data)
    assert np.array_equal(builder.build(subset), expected)


@pytest.mark.parametrize("rhs", ["x + g", "np.log(z) + C(g)"])
def test_missing_column_on_new_data_raises_formula_error_naming_it(
    rhs: str, data: pd.DataFrame, new_data: pd.DataFrame
) -> None:
    _, builder = model_matrix(rhs, data)
    with pytest.raises(FormulaError, match="'g'"):
        builder.build(new_data.drop(columns="g"))


@pytest.mark.parametrize("rhs", ["z + g", "np.log(z) + C(g)"])
@pytest.mark.parametrize("column", ["z", "g"])
def test_missing_values_on_new_data_raise_data_error(
    rhs: str, column: str, data: pd.DataFrame, new_data: pd.DataFrame
) -> None:
    _, builder = model_matrix(rhs, data)
    new_data.loc[2, column] = None
    with pytest.raises(DataError, match=f"'{column}'.*missing"):
        builder.build(new_data)


def test_numeric_column_turned_text_raises_data_error(
    data: pd.DataFrame, new_data: pd.DataFrame
) -> None:
    _, builder = model_matrix("x", data)
    with pytest.raises(DataError, match="'x'"):
        builder.build(new_data.assign(x=new_data["x"].astype(str)))


def test_data_must_be_a_data_frame(data: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="DataFrame"):
        model_matrix("x", data.to_dict("series"))


@pytest.mark.parametrize(
    "rhs",
    [
        "x + g + ordered + flag + numbered",
        "C(g, Treatment('b')) + np.log(z) + center(x) + bs(z, df=4) + ordered:x",
    ],
)
def test_builders_survive_pickling(rhs: str, data: pd.DataFrame, new_data: pd.DataFrame) -> None:
    _, builder = model_matrix(rhs, data)
    restored = pickle.loads(pickle.dumps(builder))
    assert type(restored) is type(builder)
    assert restored.column_names == builder.column_names
    rebuilt = restored.build(new_data)
    assert rebuilt.flags.f_contiguous
    assert np.array_equal(rebuilt, builder.build(new_data))
    new_data.loc[0, "g"] = "unheard"
    with pytest.raises(DataError, match="'unheard'"):
        restored.build(new_data)


@pytest.mark.parametrize(
    ("rhs", "expected"),
    [
        ("1 + Days", ["Days"]),
        ("0 + cond", ["cond"]),
        ("np.log(x) + C(g)", ["x", "g"]),
        ("I(x**2)", ["x"]),
        ("x:g + z", ["x", "g", "z"]),
        ("C(g, Treatment('b')) + center(x)", ["g", "x"]),
        ("id + abs(x)", ["id", "x"]),
        ("Q('odd name') + x", ["odd name", "x"]),
        ("x.values + I(x + w)", ["x", "w"]),
        ("1", []),
        ("0", []),
    ],
)
def test_variables_lists_the_columns_read(rhs: str, expected: list[str]) -> None:
    assert variables(rhs) == expected


@pytest.mark.parametrize("rhs", ["y ~ x", "x +"])
def test_variables_rejects_anything_but_a_right_hand_side(rhs: str) -> None:
    with pytest.raises(FormulaError):
        variables(rhs)
