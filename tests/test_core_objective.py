"""The compiled GLMM objective refuses what has no meaning (its values at the estimates are
checked against the fits and lme4 in test_models.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import mixedmodels as mm

if TYPE_CHECKING:
    from conftest import ReferenceFits


def test_a_glmm_objective_that_cannot_be_evaluated_is_an_error(reference_fits: ReferenceFits) -> None:
    g = reference_fits.glmer("cbpp_binomial")
    core = g.model._core
    with pytest.raises(mm.SpecificationError):
        core.objective(g.theta, None, 9)  # quadrature needs β
    with pytest.raises(mm.SpecificationError):
        core.objective(g.theta, g._beta, 0)  # nAGQ = 0 estimates β itself
    with pytest.raises(mm.DataError):
        core.objective(g.theta, g._beta[:-1], 1)
    with pytest.raises(mm.DataError):
        core.objective([1.0, 1.0], g._beta, 1)
