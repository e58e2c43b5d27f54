"""The compiled core's own API: fits are typed, immutable objects whose arrays are built once, and
an evaluation budget below one is a SpecificationError (a ValueError), never an OverflowError."""

from __future__ import annotations

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels import _core


@pytest.fixture(scope="module")
def sleepstudy() -> mm.LmerResult:
    return mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))


@pytest.fixture(scope="module")
def cbpp() -> mm.GlmerResult:
    data = mm.datasets.load("cbpp")
    return mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", data, family="binomial")


def test_a_linear_fit_is_typed_and_immutable(sleepstudy: mm.LmerResult) -> None:
    fit = sleepstudy.model._core.fit(np.ascontiguousarray(sleepstudy.design.y), True)
    assert isinstance(fit, _core.LinearFit)
    assert fit.theta is fit.theta  # built once
    assert fit.beta_covariance.shape == (2, 2) and [r.shape for r in fit.ranef] == [(18, 2)]
    optimization = fit.optimization
    assert isinstance(optimization, _core.Optimization) and optimization is fit.optimization
    # The result was optimised in the internal (centred) parameterisation: the same optimum.
    assert fit.objective == pytest.approx(sleepstudy.deviance, rel=1e-10) and optimization.converged and isinstance(optimization.status, str)
    assert np.array_equal(optimization.theta_start, [1.0, 0.0, 1.0]) and optimization.n_evaluations > 0
    with pytest.raises(AttributeError):
        fit.sigma = 1.0  # type: ignore[misc]


def test_a_generalized_fit_is_typed_and_immutable(cbpp: mm.GlmerResult) -> None:
    fit = cbpp.model._core.fit(1)
    assert isinstance(fit, _core.GeneralizedFit)
    assert fit.mu is fit.mu
    assert fit.beta_covariance_hessian is not None and fit.beta_covariance_hessian.shape == (4, 4)
    assert fit.objective == pytest.approx(cbpp.objective, rel=1e-10) and fit.pirls_converged
    assert cbpp.model._core.fit(0).beta_covariance_hessian is None
    with pytest.raises(AttributeError):
        fit.objective = 0.0  # type: ignore[misc]


@pytest.mark.parametrize("budget", [0, -1, -(2**40)])
def test_an_evaluation_budget_below_one_is_a_specification_error(
    sleepstudy: mm.LmerResult, cbpp: mm.GlmerResult, budget: int
) -> None:
    with pytest.raises(mm.SpecificationError, match="max_evaluations"):
        sleepstudy.model._core.fit(np.ascontiguousarray(sleepstudy.design.y), True, max_evaluations=budget)
    with pytest.raises(mm.SpecificationError, match="max_evaluations"):
        cbpp.model._core.fit(1, max_evaluations=budget)
    with pytest.raises(ValueError, match="max_evaluations"):
        mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"), max_evaluations=budget)


def test_string_levels_come_back_sorted_and_bad_bytes_are_a_data_error() -> None:
    """Arrow's string layout in, each row's rank among the sorted distinct strings and those
    strings out; bytes that are not UTF-8 (possible only in hand-built Arrow buffers) and offsets
    outside the data are refused as DataError, not a panic."""
    data = np.frombuffer("bébaa".encode(), dtype=np.uint8)
    codes, levels = _core.encode_strings(np.array([0, 3, 4, 5, 6], dtype=np.int64), data)
    assert levels == ["a", "b", "bé"] and codes.tolist() == [2, 1, 0, 0]
    with pytest.raises(mm.DataError, match="row 1 is not valid UTF-8"):
        _core.encode_strings(np.array([0, 2, 3], dtype=np.int64), np.frombuffer(b"ab\xff", dtype=np.uint8))
    with pytest.raises(mm.DataError, match="outside"):
        _core.encode_strings(np.array([0, 9], dtype=np.int64), np.frombuffer(b"ab", dtype=np.uint8))
