"""Example datasets, exactly as R/lme4 fitted them in the project's reference results.

Each dataset is a gzip-compressed CSV in ``data/`` plus an entry in ``data/metadata.json``
giving every column's R type and, for factors, R's level order (the first level is the
treatment-contrast reference level). :func:`load` rebuilds R's types: factors become
unordered pandas ``Categorical`` columns with string labels in R's level order, R numeric
columns become ``float64`` and R integer columns ``int64``.

Datasets and sources
--------------------
sleepstudy
    Belenky, G. et al. (2003). Patterns of performance degradation and restoration during
    sleep restriction and subsequent recovery: a sleep dose-response study.
    J. Sleep Res. 12:1-12. As shipped in R package lme4.
Dyestuff, Dyestuff2
    Davies, O. L. & Goldsmith, P. L. (eds) (1972). Statistical Methods in Research and
    Production, 4th ed. Oliver and Boyd; Box, G. E. P. & Tiao, G. C. (1973). Bayesian
    Inference in Statistical Analysis. Addison-Wesley. As shipped in lme4.
Penicillin, Pastes
    Davies & Goldsmith (1972), as above. As shipped in lme4.
cake
    Cook, F. E. (1938). Chocolate cake, I. Optimum baking temperature. Master's thesis,
    Iowa State College. As shipped in lme4 (``temperature`` made an unordered factor).
cbpp
    Lesnoff, M. et al. (2004). Within-herd spread of contagious bovine pleuropneumonia in
    Ethiopian highlands. Preventive Veterinary Medicine 64:27-40. As shipped in lme4,
    plus ``prop`` = incidence / size.
grouseticks
    Elston, D. A., Moss, R., Boulinier, T., Arrowsmith, C. & Lambin, X. (2001). Analysis
    of aggregation, a worked example: numbers of ticks on red grouse chicks.
    Parasitology 122:563-569. As shipped in lme4.
InstEval
    Lecture evaluations by students at ETH Zurich (anonymised), as shipped in R package
    lme4 (Bates, Maechler, Bolker & Walker (2015), J. Stat. Softw. 67(1):1-48);
    ``studage`` and ``lectage`` made unordered factors.

Example
-------
>>> from mixedmodels import datasets
>>> datasets.load("sleepstudy").dtypes["Subject"].name
'category'
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import pandas as pd

from ..errors import DataError

# The CSVs hold the shortest strings that round-trip: pandas 3 parses them exactly by default
# (and deprecates float_precision), pandas 2 only with float_precision="round_trip".
EXACT_FLOATS: dict[str, str] = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}

_DESCRIPTIONS: dict[str, str] = {
    "sleepstudy": (
        "sleepstudy (180 rows): average reaction time per day (Reaction, ms) of 18 subjects "
        "(Subject) restricted to 3 hours of sleep per night; Days = days of sleep deprivation. "
        "Source: Belenky et al. (2003), J. Sleep Res. 12:1-12, as shipped in R package lme4."
    ),
    "Dyestuff": (
        "Dyestuff (30 rows): yield of dyestuff (Yield, grams of standard colour) from 5 "
        "preparations of each of 6 batches (Batch) of an intermediate product. "
        "Source: Davies & Goldsmith (1972), Statistical Methods in Research and Production; "
        "Box & Tiao (1973), Bayesian Inference in Statistical Analysis; as shipped in lme4."
    ),
    "Dyestuff2": (
        "Dyestuff2 (30 rows): simulated data with the structure of Dyestuff (6 batches x 5) "
        "whose between-batch variance is estimated as zero. "
        "Source: Box & Tiao (1973), Bayesian Inference in Statistical Analysis, after "
        "Davies & Goldsmith (1972); as shipped in lme4."
    ),
    "Penicillin": (
        "Penicillin (144 rows): diameter (mm) of the growth-inhibition zone of 6 penicillin "
        "samples (sample) on each of 24 plates (plate), fully crossed. "
        "Source: Davies & Goldsmith (1972), Statistical Methods in Research and Production; "
        "as shipped in lme4."
    ),
    "Pastes": (
        "Pastes (60 rows): strength of a chemical paste; 2 assays of each of 3 casks (cask) "
        "from each of 10 delivery batches (batch); sample = batch:cask. "
        "Source: Davies & Goldsmith (1972), Statistical Methods in Research and Production; "
        "as shipped in lme4."
    ),
    "cake": (
        "cake (270 rows): breakage angle (angle) of chocolate cakes for 3 recipes (recipe) "
        "baked at 6 temperatures (temperature, an unordered factor here; temp is numeric), "
        "15 replicates per recipe. "
        "Source: Cook (1938), Chocolate cake, I. Optimum baking temperature, Master's thesis, "
        "Iowa State College; as shipped in lme4."
    ),
    "cbpp": (
        "cbpp (56 rows): new serological cases of contagious bovine pleuropneumonia "
        "(incidence) out of herd size (size) in 15 Ethiopian herds (herd) over 4 periods "
        "(period); prop = incidence / size. "
        "Source: Lesnoff et al. (2004), Within-herd spread of contagious bovine "
        "pleuropneumonia in Ethiopian highlands, Preventive Veterinary Medicine 64:27-40; "
        "as shipped in lme4."
    ),
    "grouseticks": (
        "grouseticks (403 rows): number of ticks (TICKS) on red grouse chicks (INDEX) by "
        "brood (BROOD), year (YEAR), location (LOCATION) and altitude (HEIGHT; cHEIGHT is "
        "HEIGHT centred). "
        "Source: Elston et al. (2001), Analysis of aggregation, a worked example: numbers of "
        "ticks on red grouse chicks, Parasitology 122:563-569; as shipped in lme4."
    ),
    "InstEval": (
        "InstEval (73421 rows): lecture evaluation scores (y, 1-5) given by students (s) to "
        "lecturers (d) of departments (dept); service = lecture outside the lecturer's "
        "department; studage, lectage = student and lecture age classes. "
        "Source: ETH Zurich lecture evaluations (anonymised), as shipped in R package lme4."
    ),
}

# pandas dtype used when reading each R column type; factors are read as text so labels
# such as "308" or "01" are kept verbatim and then mapped onto R's level order.
_READ_DTYPES: dict[str, Any] = {"numeric": "float64", "integer": "int64", "factor": str}


def names() -> list[str]:
    """Return the names of the shipped datasets.

    Example
    -------
    >>> names()[:3]
    ['sleepstudy', 'Dyestuff', 'Dyestuff2']
    """
    return list(_metadata())


def load(name: str) -> pd.DataFrame:
    """Return dataset ``name`` (matched case-insensitively) as a new DataFrame.

    R factors become unordered ``Categorical`` columns with string labels in R's level
    order; R numeric columns are ``float64`` and R integer columns ``int64``. Every call
    reads the file again, so the caller owns the result.

    Raises :class:`~mixedmodels.errors.DataError` for an unknown name, or if the file holds
    a factor label outside the recorded levels.

    Example
    -------
    >>> df = load("sleepstudy"); df.shape
    (180, 3)
    >>> df["Subject"].cat.categories[0]
    '308'
    """
    canonical = _canonical_name(name)
    spec = _metadata()[canonical]
    columns = spec["columns"]
    source = resources.files(__package__) / "data" / spec["file"]
    with source.open("rb") as handle:
        frame = pd.read_csv(
            handle,
            compression="gzip",
            dtype={column["name"]: _READ_DTYPES[column["kind"]] for column in columns},
            keep_default_na=False,
            na_values=[""],  # R wrote NA as an empty field; "NA" could be a real label
            **EXACT_FLOATS,
        )
    expected = [column["name"] for column in columns]
    if list(frame.columns) != expected:
        raise DataError(f"{canonical}: columns {list(frame.columns)} differ from metadata {expected}")
    for column in columns:
        if column["kind"] == "factor":
            frame[column["name"]] = _as_categorical(frame[column["name"]], column["levels"], canonical)
    frame.attrs["name"] = canonical  # shown as "Data:" in model summaries
    return frame


def describe(name: str) -> str:
    """Return a short description of dataset ``name`` with its source citation.

    Example
    -------
    >>> "Belenky et al. (2003)" in describe("sleepstudy")
    True
    """
    return _DESCRIPTIONS[_canonical_name(name)]


def _canonical_name(name: str) -> str:
    by_lower = {known.lower(): known for known in _metadata()}
    try:
        return by_lower[str(name).lower()]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; available: {', '.join(_metadata())}") from None


@cache
def _metadata() -> dict[str, dict[str, Any]]:
    path = resources.files(__package__) / "data" / "metadata.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _as_categorical(labels: pd.Series, levels: list[str], dataset: str) -> pd.Categorical:
    # pandas silently turns labels outside the categories into NaN; refuse instead.
    unknown = labels.notna() & ~labels.isin(levels)
    if unknown.any():
        examples = sorted(set(labels[unknown]))[:5]
        raise DataError(f"{dataset}.{labels.name}: labels {examples} are not among the recorded levels")
    return pd.Categorical(labels, categories=levels, ordered=False)
