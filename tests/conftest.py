"""Shared fixtures: the lme4 reference cases fitted by this package, once per test session, and the
shipped datasets.

A test gets any reference case's fit in one line through the ``reference_fits`` fixture (GLMMs with
``compat="lme4"``: the cases are lme4's fits, and lme4 1.1's Laplace objective is not the exact one)::

    def test_something(reference_fits: ReferenceFits) -> None:
        m = reference_fits.lmer("sleepstudy_reml")  # or .glmer(case_id), .fit(case_id)
        case = reference_fits.case("sleepstudy_reml")  # lme4's numbers to compare with

Fits are shared by every module, so a test must not change one in place (result objects are
mutable dataclasses); ``refit`` and ``dataclasses.replace`` give new objects.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pytest

import mixedmodels as mm

# Detailed assertion messages for the plain asserts of the reference helpers too.
pytest.register_assert_rewrite("reference_cases")

from reference_cases import load_case, load_case_data  # noqa: E402 - after the rewrite hook


def family_of(case: dict[str, Any]) -> mm.families.Family:
    if case["family"].startswith("Negative Binomial"):
        # glmer.nb's final model is a glmer with the estimated size held fixed.
        return mm.families.NegativeBinomial(theta=case["nb_theta"])
    return mm.families.resolve(case["family"], link=case["link"])


class ReferenceFits:
    """Each reference case fitted at most once per session and factorisation, to the case's data
    as R fitted it (``load_case_data``, independent of ``mm.datasets``), with the case's formula,
    weights, offset, REML or family and nAGQ. Singular fits are expected in the reference set, so
    their SingularFitWarning is silenced; any other warning reaches pytest."""

    def __init__(self) -> None:
        self._data: dict[str, pd.DataFrame] = {}
        self._fits: dict[tuple[str, str], mm.LmerResult | mm.GlmerResult] = {}

    def case(self, case_id: str) -> dict[str, Any]:
        """lme4's results for the case (a fresh dict)."""
        return load_case(case_id)

    def data(self, case_id: str) -> pd.DataFrame:
        """A copy of the data the case was fitted to."""
        return self._case_data(case_id).copy()

    def lmer(self, case_id: str, factorization: str = "auto") -> mm.LmerResult:
        return cast(mm.LmerResult, self._fit(case_id, "lmer", factorization))

    def glmer(self, case_id: str, factorization: str = "auto") -> mm.GlmerResult:
        return cast(mm.GlmerResult, self._fit(case_id, "glmer", factorization))

    def fit(self, case_id: str, factorization: str = "auto") -> mm.LmerResult | mm.GlmerResult:
        """The case's fit, whichever its kind."""
        return self._fit(case_id, load_case(case_id)["kind"], factorization)

    def _case_data(self, case_id: str) -> pd.DataFrame:
        if case_id not in self._data:
            self._data[case_id] = load_case_data(case_id)
        return self._data[case_id]

    def _fit(self, case_id: str, kind: str, factorization: str) -> mm.LmerResult | mm.GlmerResult:
        key = (case_id, factorization)
        if key not in self._fits:
            if load_case(case_id)["kind"] != kind:
                raise ValueError(f"{case_id} is a {load_case(case_id)['kind']} case, not {kind}")
            result = self.fit_to(case_id, self._case_data(case_id), factorization)
            if factorization != "auto" and result.factorization != factorization:
                raise AssertionError(f"{case_id}: asked for the {factorization} factorisation, got {result.factorization}")
            self._fits[key] = result
        return self._fits[key]

    @staticmethod
    def fit_to(case_id: str, data: Any, factorization: str = "auto") -> mm.LmerResult | mm.GlmerResult:
        """The case's model fitted to ``data`` (not cached): its data in another form, say."""
        case = load_case(case_id)
        formula = case.get("formula_python", case["formula"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mm.SingularFitWarning)
            if case["kind"] == "lmer":
                return mm.lmer(formula, data, REML=case["REML"], weights=case["weights"], offset=case["offset"], factorization=factorization)
            return mm.glmer(
                formula,
                data,
                family=family_of(case),
                weights=case["weights"],
                offset=case["offset"],
                nAGQ=case["nAGQ"],
                factorization=factorization,
                compat="lme4",
            )


@pytest.fixture(scope="session")
def reference_fits() -> ReferenceFits:
    """The session's one cache of reference fits."""
    return ReferenceFits()


@pytest.fixture(scope="session")
def shipped_data() -> Iterator[Callable[[str], pd.DataFrame]]:
    """``shipped_data(name)``: the package's dataset ``name`` (mm.datasets.load), loaded once per
    session and shared, so tests must not modify it in place (copy or ``assign`` first); the
    session fails at its end if one did."""
    loaded: dict[str, pd.DataFrame] = {}

    def load(name: str) -> pd.DataFrame:
        if name not in loaded:
            loaded[name] = mm.datasets.load(name)
        return loaded[name]

    yield load
    for name, frame in loaded.items():
        try:
            pd.testing.assert_frame_equal(frame, mm.datasets.load(name))
        except AssertionError as error:
            raise AssertionError(f"a test modified the shared dataset {name!r} in place") from error


@pytest.fixture(scope="session")
def sleepstudy(shipped_data: Callable[[str], pd.DataFrame]) -> pd.DataFrame:
    return shipped_data("sleepstudy")


@pytest.fixture(scope="session")
def cbpp(shipped_data: Callable[[str], pd.DataFrame]) -> pd.DataFrame:
    return shipped_data("cbpp")


# ----- the batch references (reference/batch, generate_batch.R) ---------------------------------
BATCH_REFERENCE = Path(__file__).parent / "reference" / "batch"


@pytest.fixture(scope="module")
def samples() -> pd.DataFrame:
    """The batch references' 120 samples: condition, age, donor, batch."""
    return pd.read_csv(BATCH_REFERENCE / "samples.csv", index_col="sample")


@pytest.fixture(scope="module")
def expression() -> pd.DataFrame:
    """60 genes × 120 samples: G005 constant (an error row), G017 with missing values, G033 and
    G048 singular."""
    return pd.read_csv(BATCH_REFERENCE / "expression.csv", index_col="gene")


@pytest.fixture(scope="module")
def weights() -> pd.DataFrame:
    """The expression genes' precision weights (voom-like)."""
    return pd.read_csv(BATCH_REFERENCE / "weights.csv", index_col="gene")


@pytest.fixture(scope="module")
def counts() -> pd.DataFrame:
    """40 count genes × 120 samples, C038 all zero (an error row)."""
    return pd.read_csv(BATCH_REFERENCE / "counts.csv", index_col="gene")


def assert_same_results(one: mm.BatchResult, two: mm.BatchResult) -> None:
    """Two batch results with exactly the same numbers (NaN equal to NaN)."""
    pd.testing.assert_frame_equal(one.table, two.table, check_exact=True)
    for frame in ("fixef", "std_errors", "theta", "variance_fractions"):
        pd.testing.assert_frame_equal(getattr(one, frame), getattr(two, frame), check_exact=True)
