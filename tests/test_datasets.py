"""The shipped datasets against the tests' own copy of the lme4 reference data."""

from __future__ import annotations

import copy
import csv
import gzip
import math

import numpy as np
import pandas as pd
import pytest

from mixedmodels import datasets
from mixedmodels.errors import DataError
from reference_cases import DATA_DIR, case_ids, load_case, load_case_data

# dataset -> (shape, a reference case fitted to it)
EXPECTED = {
    "sleepstudy": ((180, 3), "sleepstudy_reml"),
    "Dyestuff": ((30, 2), "dyestuff_reml"),
    "Dyestuff2": ((30, 2), "dyestuff2_reml"),
    "Penicillin": ((144, 3), "penicillin_reml"),
    "Pastes": ((60, 4), "pastes_sample_reml"),
    "cake": ((270, 5), "cake_reml"),
    "cbpp": ((56, 5), "cbpp_binomial"),
    "grouseticks": ((403, 7), "grouseticks_poisson"),
    "InstEval": ((73421, 7), "insteval_ml"),
}

# Factors no reference case uses, so no case records their levels: lme4 ships them as
# ordered factors with these levels (made unordered by generate.R).
LEVELS_WITHOUT_CASE = {
    ("InstEval", "studage"): ["2", "4", "6", "8"],
    ("InstEval", "lectage"): ["1", "2", "3", "4", "5", "6"],
}

CITATIONS = {
    "sleepstudy": "Belenky et al. (2003)",
    "Dyestuff": "Davies & Goldsmith (1972)",
    "Dyestuff2": "Box & Tiao (1973)",
    "Penicillin": "Davies & Goldsmith (1972)",
    "Pastes": "Davies & Goldsmith (1972)",
    "cake": "Cook (1938)",
    "cbpp": "Lesnoff et al. (2004)",
    "grouseticks": "Elston et al. (2001)",
    "InstEval": "ETH Zurich",
}


def recorded_levels(name: str) -> dict[str, list[str]]:
    """Factor levels recorded by any reference case fitted to ``name``, plus the unrecorded ones."""
    levels = {column: known for (dataset, column), known in LEVELS_WITHOUT_CASE.items() if dataset == name}
    for case_id in case_ids():
        case = load_case(case_id)
        if case["dataset"] == f"{name}.csv":
            levels.update(case["factor_levels"])
    return levels


def raw_rows(name: str) -> list[dict[str, str]]:
    """The reference CSV as text, parsed without pandas."""
    with gzip.open(DATA_DIR / f"{name}.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_names() -> None:
    assert datasets.names() == list(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_shape_and_column_types(name: str) -> None:
    shape, case_id = EXPECTED[name]
    case = load_case(case_id)
    levels = recorded_levels(name)
    df = datasets.load(name)
    assert df.shape == shape
    assert list(df.columns) == list(case["columns"])
    for column, kind in case["columns"].items():
        dtype = df[column].dtype
        if kind == "factor":
            assert isinstance(dtype, pd.CategoricalDtype) and not dtype.ordered
            assert list(dtype.categories) == levels[column]
            assert all(isinstance(level, str) for level in dtype.categories)
            assert not df[column].isna().any()
        else:
            assert dtype == {"numeric": np.float64, "integer": np.int64}[kind]


SHIPPED_CASES = [case_id for case_id in case_ids() if load_case(case_id)["dataset"].removesuffix(".csv") in EXPECTED]


@pytest.mark.parametrize("case_id", SHIPPED_CASES)
def test_levels_match_every_case(case_id: str) -> None:
    case = load_case(case_id)
    df = datasets.load(case["dataset"].removesuffix(".csv"))
    for column, levels in case["factor_levels"].items():
        assert list(df[column].cat.categories) == levels


@pytest.mark.parametrize("name", list(EXPECTED))
def test_equals_reference_case_data(name: str) -> None:
    pd.testing.assert_frame_equal(datasets.load(name), load_case_data(EXPECTED[name][1]))


@pytest.mark.parametrize("name", list(EXPECTED))
def test_values_match_csv_text_exactly(name: str) -> None:
    kinds = load_case(EXPECTED[name][1])["columns"]
    rows = raw_rows(name)
    df = datasets.load(name)
    for column, kind in kinds.items():
        text = [row[column] for row in rows]
        if kind == "factor":
            assert df[column].astype(object).tolist() == text
        else:
            assert df[column].tolist() == [float(value) for value in text]


def test_sleepstudy_reaction_sum_is_exact() -> None:
    reaction = datasets.load("sleepstudy")["Reaction"]
    assert math.fsum(reaction) == math.fsum(float(row["Reaction"]) for row in raw_rows("sleepstudy"))


def test_labels_stay_strings_and_r_order_is_kept() -> None:
    assert datasets.load("sleepstudy")["Subject"].cat.categories[0] == "308"
    insteval = datasets.load("InstEval")
    assert list(insteval["dept"].cat.categories[:4]) == ["15", "5", "10", "12"]
    assert list(insteval["d"].cat.categories[:5]) == ["1", "6", "7", "8", "12"]


def test_unknown_name_lists_available() -> None:
    with pytest.raises(DataError, match="sleepstudy.*InstEval"):
        datasets.load("nosuchdata")
    with pytest.raises(DataError):
        datasets.describe("nosuchdata")


def test_names_are_case_insensitive() -> None:
    pd.testing.assert_frame_equal(datasets.load("SLEEPSTUDY"), datasets.load("sleepstudy"))
    assert datasets.load("dyestuff2")["Yield"].iloc[0] == 7.298
    assert datasets.load("instEVAL").shape == (73421, 7)
    assert datasets.describe("CBPP") == datasets.describe("cbpp")


def test_each_load_is_a_fresh_copy() -> None:
    first = datasets.load("sleepstudy")
    first.loc[0, "Reaction"] = -1.0
    first["Subject"] = first["Subject"].cat.rename_categories(lambda level: "x" + level)
    del first["Days"]
    second = datasets.load("sleepstudy")
    assert second.shape == (180, 3)
    assert second.loc[0, "Reaction"] == 249.56
    assert second["Subject"].cat.categories[0] == "308"


def test_label_outside_levels_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    metadata = copy.deepcopy(datasets._metadata())
    subject = next(column for column in metadata["sleepstudy"]["columns"] if column["name"] == "Subject")
    subject["levels"].remove("308")
    monkeypatch.setattr(datasets, "_metadata", lambda: metadata)
    with pytest.raises(DataError, match="308"):
        datasets.load("sleepstudy")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_describe_cites_source(name: str) -> None:
    assert CITATIONS[name] in datasets.describe(name)


def test_reference_copy_is_complete() -> None:
    # The 24 shared lme4 cases plus those generate_extra.R adds (EXTRA.md).
    assert len(case_ids()) >= 24
    assert sorted(case_ids("lmer") + case_ids("glmer")) == case_ids()
    for case_id in case_ids():
        assert (DATA_DIR / f"{load_case(case_id)['dataset']}.gz").is_file()
