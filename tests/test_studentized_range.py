"""The studentized range's upper tail (mixedmodels.inference.studentized_range, the Tukey
adjustment of emmeans' pairwise comparisons) against R (``tests/reference/ptukey.json``, from
``generate_ptukey.R``): k = 2 to 20 means, df = 2 to 1000 and ∞, p from 1 down to about 1e-12.

Each q has two R answers: ``ptukey`` (R's ptukey, what emmeans reports), and ``integrate``, the
same probability to about 1e-12 relative (for k = 2 R's exact 2 pt(-q/√2, df), otherwise R's
adaptive quadrature of the definition). ptukey is 1 minus its integral, accurate to about 1e-10
absolute, and far in the tail of small df its fixed integration fails outright (0 for df = 3,
about 5e-7 for df = 5, where p is 1e-12): ours is held to the accurate answer everywhere, and to
ptukey within the stated tolerance plus ptukey's own error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mixedmodels.errors import SpecificationError
from mixedmodels.inference.studentized_range import studentized_range_sf
from tolerances import Tolerance, assert_close

PTUKEY = json.loads((Path(__file__).parent / "reference" / "ptukey.json").read_text(encoding="utf-8"))
BLOCKS: list[dict[str, Any]] = PTUKEY["blocks"]
# Against the accurate integral: relative accuracy also in the far tail (the two agree to 2e-12
# over the grid; R's integrate asks for 1e-12 relative).
ACCURATE = Tolerance(relative=1e-9)
# Against ptukey (emmeans parity): relative 1e-6 or absolute 1e-10, plus ptukey's own error, which
# exceeds that at 455 of the 2,170 grid points (up to 3e-5 for df = 5, 5e-8 for df = 100).
PTUKEY_TOLERANCE = Tolerance(relative=1e-6, absolute=1e-10)


def block_id(block: dict[str, Any]) -> str:
    return f"k{block['k']}-df{block['df']}"


def arguments(block: dict[str, Any]) -> tuple[np.ndarray, int, float]:
    return np.asarray(block["q"], dtype=float), int(block["k"]), float(block["df"])


@pytest.mark.parametrize("block", BLOCKS, ids=block_id)
def test_matches_the_accurate_integral(block: dict[str, Any]) -> None:
    q, k, df = arguments(block)
    assert_close(studentized_range_sf(q, k, df), block["integrate"], ACCURATE, f"P(Q > q), {block_id(block)}")


@pytest.mark.parametrize("block", BLOCKS, ids=block_id)
def test_matches_ptukey_within_its_own_error(block: dict[str, Any]) -> None:
    q, k, df = arguments(block)
    ptukey = np.asarray(block["ptukey"], dtype=float)
    ptukey_error = np.abs(ptukey - np.asarray(block["integrate"], dtype=float))
    difference = np.abs(studentized_range_sf(q, k, df) - ptukey)
    allowed = PTUKEY_TOLERANCE.allowed(ptukey) + ptukey_error
    worst = int(np.argmax(difference - allowed))
    assert np.all(difference <= allowed), (
        f"{block_id(block)} q = {q[worst]}: ours differs from ptukey {ptukey[worst]} by {difference[worst]:.3g}, allowed {allowed[worst]:.3g}"
    )


def test_broadcasts_over_its_arguments() -> None:
    block = next(b for b in BLOCKS if b["k"] == 5 and b["df"] == 42)
    q = np.asarray(block["q"], dtype=float)
    grid = studentized_range_sf(q[:, None], [5, 5], [42.0, 42.0])
    assert grid.shape == (len(q), 2)
    assert_close(grid[:, 1], block["integrate"], ACCURATE, "P(Q > q) broadcast")


def test_edges() -> None:
    # q = 0 (and below): P = 1; q = ∞: P = 0; NaN in any argument: NaN.
    p = studentized_range_sf([0.0, -1.0, np.inf, np.nan, 2.0, 2.0], [3, 3, 3, 3, np.nan, 3], [10, 10, 10, 10, 10, np.nan])
    assert p[:3].tolist() == [1.0, 1.0, 0.0]
    assert np.isnan(p[3:]).all()
    assert studentized_range_sf(0.0, 3, np.inf) == 1.0


BAD_ARGUMENTS = [
    (1, 10.0, "number of means"),
    (2.5, 10.0, "number of means"),
    (np.inf, 10.0, "number of means"),
    (3, 0.0, "degrees of freedom"),
    (3, -2.0, "degrees of freedom"),
]


@pytest.mark.parametrize(("k", "df", "what"), BAD_ARGUMENTS)
def test_refuses_bad_arguments(k: float, df: float, what: str) -> None:
    with pytest.raises(SpecificationError, match=what):
        studentized_range_sf(3.0, k, df)
