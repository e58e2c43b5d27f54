"""Tests of an optional dependency (an extra of pyproject.toml).

:func:`require`: skipped where the extra is not installed, a failure in CI (the ``CI``
environment variable set, as .ci/run sets it) unless the module is listed in ``CI_WITHOUT``
(comma-separated): .ci/run's main environment cannot have anndata (anndata requires pandas < 3,
the suite runs on pandas 3), so the AnnData tests run in its second environment, on pandas 2.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require(module: str) -> ModuleType:
    """``module`` imported; a skip when it is missing, a failure when it is missing in CI."""
    in_ci = os.environ.get("CI", "").lower() not in ("", "0", "false")
    allowed_missing = module in os.environ.get("CI_WITHOUT", "").split(",")
    if not in_ci or allowed_missing:
        return pytest.importorskip(module)
    return importlib.import_module(module)
