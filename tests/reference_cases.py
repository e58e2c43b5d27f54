"""Access to the tests' own copy of the lme4 reference fits (see reference/README.md).

Independent of the package under test, so the package's data loading can be checked
against it. Import from tests as ``from reference_cases import load_case``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mixedmodels.datasets import EXACT_FLOATS
from tolerances import Tolerance, assert_close

REFERENCE_DIR = Path(__file__).parent / "reference"
CASES_DIR = REFERENCE_DIR / "cases"
DATA_DIR = REFERENCE_DIR / "data"

# pandas dtype used when reading each R column type named in a case's `columns`;
# factors are read as text so labels such as "308" are kept verbatim.
_READ_DTYPES: dict[str, Any] = {"numeric": "float64", "integer": "int64", "factor": str}
_KINDS = ("lmer", "glmer")


def case_ids(kind: str | None = None) -> list[str]:
    """Sorted ids of all reference cases, or only those whose JSON `kind` is ``kind``."""
    ids = sorted(path.stem for path in CASES_DIR.glob("*.json"))
    if kind is None:
        return ids
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS} or None, not {kind!r}")
    return [case_id for case_id in ids if load_case(case_id)["kind"] == kind]


def load_case(case_id: str) -> dict[str, Any]:
    """The reference case's JSON as a fresh dict."""
    return json.loads((CASES_DIR / f"{case_id}.json").read_text(encoding="utf-8"))


def load_case_data(case_id: str) -> pd.DataFrame:
    """The case's dataset with R's column types.

    Factors (per the case's `columns`) become unordered Categoricals with string labels in
    the case's `factor_levels` order, or in sorted order for factors the model does not use
    (the case records no levels for them); numeric columns are float64, integer int64.
    """
    case = load_case(case_id)
    kinds: dict[str, str] = case["columns"]
    frame = pd.read_csv(
        DATA_DIR / f"{case['dataset']}.gz",
        compression="gzip",
        dtype={name: _READ_DTYPES[kind] for name, kind in kinds.items()},
        keep_default_na=False,
        na_values=[""],  # R wrote NA as an empty field
        **EXACT_FLOATS,
    )
    for name, kind in kinds.items():
        if kind != "factor":
            continue
        labels = frame[name]
        levels = case["factor_levels"].get(name) or sorted(set(labels.dropna()))
        unknown = labels.notna() & ~labels.isin(levels)
        if unknown.any():
            raise ValueError(f"{case_id}: {name} has labels outside factor_levels: {sorted(set(labels[unknown]))[:5]}")
        frame[name] = pd.Categorical(labels, categories=levels, ordered=False)
    return frame


def lme4_name(patsy_name: str) -> str:
    """patsy's column name in lme4's spelling: Intercept → (Intercept), x[T.b] → xb, g[a] → ga,
    I(x ** 2) → I(x^2)."""
    if patsy_name == "Intercept":
        return "(Intercept)"
    return re.sub(r"\[(?:T\.)?(.*?)\]", r"\1", patsy_name).replace(" ** ", "^")


def as_list(value: str | list[str]) -> list[str]:
    """R writes a length-one vector as a bare JSON value."""
    return [value] if isinstance(value, str) else list(value)


def new_data_rows(case: dict[str, Any]) -> pd.DataFrame:
    """The case's ``predict_newdata`` rows, factors as text labels and other columns as floats."""
    rows = pd.DataFrame(case["predict_newdata"]["rows"])
    for column in rows.columns:
        rows[column] = rows[column].astype(str) if case["columns"][column] == "factor" else rows[column].astype(float)
    return rows


def compare_ranef(case: dict[str, Any], ours: dict[str, pd.DataFrame], key: str, tolerance: Tolerance) -> None:
    """Assert our conditional modes (``key="ranef"``) or conditional SDs (``"ranef_condsd"``,
    the ``sd_`` columns) equal lme4's, level by level in lme4's level order, within
    ``tolerance`` relative to the largest reference value of each column."""
    condsd = key == "ranef_condsd"
    truncated = case.get("ranef_truncated") or {}
    for group, levels in case[key].items():
        frame = ours[group]
        level_names = list(levels)
        if group in truncated:
            assert len(frame) == truncated[group]["n_levels"]
        assert list(frame.index[: len(level_names)]) == level_names
        expected = pd.DataFrame.from_dict(levels, orient="index")
        columns = {lme4_name(c.removeprefix("sd_")): c for c in frame.columns if c.startswith("sd_") == condsd}
        for name in expected.columns:
            got = frame.loc[level_names, columns[name]].to_numpy()
            want = expected[name].to_numpy()
            assert_close(got, want, tolerance, f"{key} {group} {name}", scale=max(np.abs(want).max(), 1e-8))
