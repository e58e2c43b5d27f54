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
from conftest import ReferenceFits, assert_same_results
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


def test_an_enum_keeps_its_level_order_and_a_categorical_sorts_as_text(reference_fits: ReferenceFits) -> None:
    pl = require("polars")
    data = reference_fits.data("synth_weighted_lmm")  # trt's levels: ctrl, A, B (R's order)
    formula, weights = "y ~ x + trt + (1 | g)", "w"
    as_enum = mm.lmer(formula, polars_frame(data), weights=weights)
    assert list(as_enum.params.index) == ["Intercept", "trt[T.A]", "trt[T.B]", "x"]  # ctrl the reference level
    assert_same_fit(as_enum, reference_fits.lmer("synth_weighted_lmm"))
    # A polars Categorical sorts its levels as text (polars' order): A is the reference level, as
    # for a text column in pandas.
    as_categorical = mm.lmer(formula, polars_frame(data).with_columns(pl.col("trt").cast(pl.String).cast(pl.Categorical)), weights=weights)
    as_text = mm.lmer(formula, data.assign(trt=data["trt"].astype(str).astype(object)), weights=weights)
    assert list(as_categorical.params.index) == ["Intercept", "trt[T.B]", "trt[T.ctrl]", "x"]
    assert_same_fit(as_categorical, as_text)


def test_arrow_dictionaries_keep_their_order_and_their_orderedness(reference_fits: ReferenceFits) -> None:
    pa = require("pyarrow")
    data = reference_fits.data("synth_weighted_lmm")
    table = arrow_table(data)
    assert pa.types.is_dictionary(table.schema.field("trt").type)
    fit = mm.lmer("y ~ x + trt + (1 | g)", table, weights="w")
    assert_same_fit(fit, reference_fits.lmer("synth_weighted_lmm"))
    # An ordered dictionary is an ordered factor: polynomial contrasts, as an ordered Categorical.
    ordered = data.assign(trt=data["trt"].cat.as_ordered())
    polynomial = mm.lmer("y ~ x + trt + (1 | g)", arrow_table(ordered), weights="w")
    assert list(polynomial.params.index) == list(mm.lmer("y ~ x + trt + (1 | g)", ordered, weights="w").params.index)
    assert "trt.L" in polynomial.params.index


@pytest.mark.parametrize("text_type", ["string", "large_string", "string_view", "polars String"])
def test_text_columns_of_every_arrow_string_type(reference_fits: ReferenceFits, text_type: str) -> None:
    pa = require("pyarrow")
    data = reference_fits.data("penicillin_reml")
    text = data.assign(plate=data["plate"].astype(str).astype(object), sample=data["sample"].astype(str).astype(object))
    if text_type == "polars String":
        pl = require("polars")
        table = pl.from_pandas(text)
        assert table.schema["plate"] == pl.String == pl.Utf8
    else:
        table = pa.Table.from_pandas(text, preserve_index=False)
        kind = getattr(pa, text_type)()
        table = table.cast(pa.schema([pa.field(f.name, kind if pa.types.is_string(f.type) else f.type) for f in table.schema]))
        assert table.schema.field("plate").type == kind
    formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"
    assert_same_fit(mm.lmer(formula, table), mm.lmer(formula, text))
    # Sorted text levels, as for a text column in pandas: the same as R's factor levels here.
    assert_same_fit(mm.lmer(formula, table), reference_fits.lmer("penicillin_reml"))


def test_missing_values_are_dropped_as_in_pandas(reference_fits: ReferenceFits) -> None:
    pl = require("polars")
    data = reference_fits.data("sleepstudy_reml")
    data.loc[[3, 50, 51], "Reaction"] = np.nan
    data.loc[7, "Days"] = np.nan
    formula = "Reaction ~ Days + (Days | Subject)"
    expected = mm.lmer(formula, data)
    # In polars a missing number is null (NaN is a number there): nulls in a float and an integer column.
    frame = polars_frame(data).with_columns(pl.col("Reaction").fill_nan(None), pl.col("Days").fill_nan(None).cast(pl.Int64))
    assert frame["Days"].null_count() == 1
    fit = mm.lmer(formula, frame)
    assert fit.design.n_dropped == expected.design.n_dropped == 4
    assert_same_fit(fit, expected)


@pytest.mark.parametrize("library", sorted(CONVERSIONS))
def test_predictions_on_new_data_from_another_library(reference_fits: ReferenceFits, library: str) -> None:
    for case_id, extra in (("sleepstudy_reml", {}), ("cbpp_binomial", {"type": "response"}), ("synth_poisson_offset", {})):
        fit = reference_fits.fit(case_id)
        data = reference_fits.data(case_id)
        newdata = data.iloc[::7].reset_index(drop=True)
        predicted = fit.predict(CONVERSIONS[library](newdata), **extra)
        assert isinstance(predicted, pd.Series) and predicted.index.equals(pd.RangeIndex(len(newdata)))
        np.testing.assert_allclose(predicted.to_numpy(), fit.predict(newdata, **extra).to_numpy(), **SAME)
        # A model fitted to a polars or Arrow table predicts on pandas data as well.
        converted = reference_fits.fit_to(case_id, CONVERSIONS[library](data))
        np.testing.assert_allclose(converted.predict(newdata, **extra).to_numpy(), predicted.to_numpy(), **SAME)


def test_analyses_of_a_fit_to_a_polars_frame(reference_fits: ReferenceFits) -> None:
    data = reference_fits.data("cake_reml")
    formula = "angle ~ recipe * temperature + (1 | recipe:replicate)"
    expected = reference_fits.lmer("cake_reml")
    fit = mm.lmer(formula, polars_frame(data))
    pd.testing.assert_frame_equal(mm.anova(fit).table, mm.anova(expected).table, rtol=1e-10)
    smaller = mm.lmer("angle ~ recipe + temperature + (1 | recipe:replicate)", polars_frame(data))
    comparison = mm.anova(smaller, fit)  # refits both by ML on the fitted rows of their data
    expected_comparison = mm.anova(mm.lmer("angle ~ recipe + temperature + (1 | recipe:replicate)", data), expected)
    pd.testing.assert_frame_equal(comparison.table, expected_comparison.table, rtol=1e-10)
    pd.testing.assert_frame_equal(mm.emmeans(fit, "recipe").pairs().table, mm.emmeans(expected, "recipe").pairs().table, rtol=1e-10)
    augmented = fit.augment()
    assert isinstance(augmented, pd.DataFrame) and list(augmented.columns) == list(expected.augment().columns)


@pytest.mark.parametrize("bad", [[1, 2], {"Reaction": [1.0]}, np.ones((3, 2)), "sleepstudy.csv"])
def test_other_objects_are_refused_naming_their_type(bad: object) -> None:
    with pytest.raises(mm.DataError, match=rf"data must be a pandas DataFrame, a polars DataFrame or a pyarrow Table .*not {type(bad).__name__}$"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", bad)  # type: ignore[arg-type]
    fit = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    with pytest.raises(mm.DataError, match=rf"newdata must be .*not {type(bad).__name__}$"):
        fit.predict(bad)  # type: ignore[arg-type]


def test_a_lazy_frame_is_refused() -> None:
    pl = require("polars")
    lazy = pl.from_pandas(mm.datasets.load("Dyestuff")).lazy()
    with pytest.raises(mm.DataError, match="not LazyFrame"):
        mm.lmer("Yield ~ 1 + (1 | Batch)", lazy)


def test_importing_the_package_does_not_import_polars() -> None:
    import subprocess
    import sys

    code = "import sys, mixedmodels; assert 'polars' not in sys.modules, 'polars imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def with_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame indexed by id (samples, genes) with the ids as its first column."""
    return pd.concat([frame.index.to_frame(index=False), frame.reset_index(drop=True)], axis=1)


def polars_table(frame: pd.DataFrame) -> Any:
    """A frame indexed by id as polars holds it: the ids in the first column."""
    return require("polars").from_pandas(with_ids(frame))


def arrow_batch_table(frame: pd.DataFrame) -> Any:
    return require("pyarrow").Table.from_pandas(with_ids(frame), preserve_index=False)


BATCH_CONVERSIONS = {"polars": polars_table, "pyarrow": arrow_batch_table}


@pytest.mark.parametrize("library", sorted(BATCH_CONVERSIONS))
def test_lmer_many_reads_samples_responses_and_weights_from_tables(
    samples: pd.DataFrame, expression: pd.DataFrame, weights: pd.DataFrame, library: str
) -> None:
    convert = BATCH_CONVERSIONS[library]
    formula = "~ condition + age + (1 | donor)"
    expected = mm.lmer_many(formula, samples, expression, weights=weights)
    shuffled = expression[expression.columns[::-1]]  # matched to the samples by name
    result = mm.lmer_many(formula, convert(samples), convert(shuffled), weights=convert(weights))
    assert result.fixef.index.equals(expected.fixef.index) and result.fixef.index.name == "gene"
    assert_same_results(result, expected)
    # A pandas samples table with polars or Arrow responses, and polars or Arrow samples with an array.
    assert_same_results(mm.lmer_many(formula, samples, convert(expression), weights=convert(weights)), expected)
    from_array = mm.lmer_many(formula, convert(samples), expression.to_numpy(), weights=weights.to_numpy())
    np.testing.assert_array_equal(from_array.fixef.to_numpy(), expected.fixef.to_numpy())


def test_responses_without_a_gene_column_and_with_numeric_sample_ids(samples: pd.DataFrame, expression: pd.DataFrame) -> None:
    pl = require("polars")
    formula = "~ condition + (1 | donor)"
    expected = mm.lmer_many(formula, samples, expression.to_numpy())
    numbered = samples.reset_index(drop=True).rename_axis("sample").reset_index()  # ids 0, 1, ...
    responses = pl.from_numpy(expression.to_numpy(), schema=[str(i) for i in range(len(samples))])
    result = mm.lmer_many(formula, pl.from_pandas(numbered), responses)
    assert result.fixef.index.equals(pd.RangeIndex(len(expression)))
    np.testing.assert_array_equal(result.fixef.to_numpy(), expected.fixef.to_numpy())


def test_tables_that_do_not_match_the_samples_are_refused(samples: pd.DataFrame, expression: pd.DataFrame) -> None:
    pl = require("polars")
    formula = "~ condition + (1 | donor)"
    extra = polars_table(expression).with_columns(pl.lit(1.0).alias("S999"))
    with pytest.raises(mm.DataError, match=r"Y has 1 column\(s\) that are not sample ids of samples, e.g. \['S999'\]"):
        mm.lmer_many(formula, polars_table(samples), extra)
    with pytest.raises(mm.DataError, match="1 sample\\(s\\) of samples.index are not columns of Y"):
        mm.lmer_many(formula, polars_table(samples), polars_table(expression).drop("S007"))
    # The first column holds the sample ids: here the donor, which repeats.
    by_donor = pl.from_pandas(samples[["donor", "condition", "age"]])
    with pytest.raises(mm.DataError, match="first column.* repeated sample ids"):
        mm.lmer_many(formula, by_donor, polars_table(expression))
    with pytest.raises(mm.DataError, match="samples must be a pandas DataFrame, a polars DataFrame or a pyarrow Table .*not dict"):
        mm.lmer_many(formula, {"condition": ["a"]}, expression.to_numpy())


@pytest.mark.parametrize("library", sorted(BATCH_CONVERSIONS))
def test_glmer_many_reads_samples_and_counts_from_tables(samples: pd.DataFrame, counts: pd.DataFrame, library: str) -> None:
    convert = BATCH_CONVERSIONS[library]
    genes = counts.index[:6]
    expected = mm.glmer_many("~ condition + (1 | donor)", samples, counts.loc[genes], offset=np.log(samples["libsize"]))
    with_column = samples.assign(log_libsize=np.log(samples["libsize"]))
    result = mm.glmer_many("~ condition + (1 | donor)", convert(with_column), convert(counts.loc[genes]), offset="log_libsize")
    assert_same_results(result, expected)


def test_the_command_line_reads_parquet_files_through_arrow(
    reference_fits: ReferenceFits, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require("pyarrow")
    from mixedmodels.cli import main, read_parquet

    path = tmp_path / "weighted.parquet"
    polars_frame(reference_fits.data("synth_weighted_lmm")).write_parquet(path)  # trt an Enum: ctrl, A, B
    frame = read_parquet(path)
    assert list(frame["trt"].cat.categories) == ["ctrl", "A", "B"]
    assert main(["fit", "y ~ x + trt + (1 | g)", "--data", str(path), "--weights", "w"]) == 0
    out = capsys.readouterr().out
    expected = reference_fits.lmer("synth_weighted_lmm")
    assert f"REML criterion at convergence: {expected.REMLcrit:.4f}" in out and "trt[T.A]" in out and "trt[T.ctrl]" not in out
    # Text is read into Arrow-backed columns, not Python objects.
    text = reference_fits.data("penicillin_reml").astype({"plate": str, "sample": str})
    require("polars").from_pandas(text).write_parquet(tmp_path / "penicillin.parquet")
    read = read_parquet(tmp_path / "penicillin.parquet")
    assert isinstance(read["plate"].dtype, pd.ArrowDtype) and isinstance(read["sample"].dtype, pd.ArrowDtype)


def test_the_batch_command_reads_parquet_files_written_by_polars(
    samples: pd.DataFrame, expression: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixedmodels.cli import main

    polars_table(samples).write_parquet(tmp_path / "samples.parquet")
    polars_table(expression).write_parquet(tmp_path / "expression.parquet")
    out = tmp_path / "results.parquet"
    formula = "~ condition + age + (1 | donor)"
    command = ["batch", formula, "--samples", str(tmp_path / "samples.parquet"), "--responses", str(tmp_path / "expression.parquet"), "--out", str(out)]
    assert main(command) == 0
    capsys.readouterr()
    expected = mm.lmer_many(formula, samples, expression).table
    written = pd.read_parquet(out)
    np.testing.assert_array_equal(written["gene"].astype(str), expected["gene"].astype(str))
    np.testing.assert_array_equal(written["estimate"].to_numpy(), expected["estimate"].to_numpy())
    np.testing.assert_array_equal(written["p_value"].to_numpy(), expected["p_value"].to_numpy())


@pytest.mark.parametrize("library", sorted(CONVERSIONS))
def test_the_statsmodels_front_door_reads_tables(library: str) -> None:
    from mixedmodels.compat import statsmodels as smf

    convert = CONVERSIONS[library]
    sleep = mm.datasets.load("sleepstudy")
    expected = smf.mixedlm("Reaction ~ Days", sleep, groups="Subject", re_formula="~Days").fit()
    result = smf.mixedlm("Reaction ~ Days", convert(sleep), groups="Subject", re_formula="~Days").fit()
    pd.testing.assert_series_equal(result.params, expected.params, rtol=1e-12)
    pd.testing.assert_frame_equal(result.cov_re, expected.cov_re, rtol=1e-12)
    pastes = mm.datasets.load("Pastes")
    options: dict[str, Any] = {"vc_formula": {"cask": "0 + C(cask)"}, "groups": "batch", "re_formula": "1"}
    expected = smf.MixedLM.from_formula("strength ~ 1", pastes, **options).fit()
    result = smf.MixedLM.from_formula("strength ~ 1", convert(pastes), **options).fit()
    pd.testing.assert_series_equal(result.params, expected.params, rtol=1e-12)
    # Text columns (Arrow-backed once read) in groups and in a variance component's formula.
    text = pastes.astype({"batch": str, "cask": str})
    result = smf.MixedLM.from_formula("strength ~ 1", convert(text), **options).fit()
    pd.testing.assert_series_equal(result.params, expected.params, rtol=1e-12)
    assert list(result.random_effects) == list(expected.random_effects)


def test_batch_results_as_a_polars_frame(samples: pd.DataFrame, expression: pd.DataFrame) -> None:
    require("polars")
    result = mm.lmer_many("~ condition + (1 | donor)", samples, expression.iloc[:5])
    table = result.to_polars()
    assert table.columns == list(result.table.columns) and table.height == len(result.table)
    np.testing.assert_array_equal(table["p_value"].to_numpy(), result.table["p_value"].to_numpy())
    assert table["gene"].to_list() == result.table["gene"].tolist()


class ArrowStream:
    """Any table with the Arrow PyCapsule interface and nothing else (as DuckDB's relations)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._table.__arrow_c_stream__(requested_schema)


def test_record_batches_and_any_arrow_stream(reference_fits: ReferenceFits) -> None:
    require("pyarrow")
    table = arrow_table(reference_fits.data("cbpp_binomial"))
    expected = reference_fits.glmer("cbpp_binomial")
    assert_same_fit(reference_fits.fit_to("cbpp_binomial", ArrowStream(table)), expected)
    assert_same_fit(reference_fits.fit_to("cbpp_binomial", table.combine_chunks().to_batches()[0]), expected)


def test_repeated_column_names_are_refused() -> None:
    pa = require("pyarrow")
    table = pa.Table.from_arrays([pa.array([1.0, 2.0]), pa.array([3.0, 4.0])], names=["x", "x"])
    with pytest.raises(mm.DataError, match="data has repeated column names"):
        mm.lmer("x ~ 1 + (1 | x)", table)
