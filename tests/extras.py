"""Tests of an optional dependency (an extra of pyproject.toml).

:func:`require`: for an extra README's test command installs (``progress``: tqdm); skipped where
it is not installed, a failure in CI (the ``CI`` environment variable set, as .ci/run sets it).
:func:`optional`: for an extra CI does not install (``anndata``: anndata requires pandas < 3, and
the suite runs on pandas 3); skipped wherever it is missing.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require(module: str) -> ModuleType:
    """``module`` imported; a skip when it is missing, a failure when it is missing in CI."""
    if os.environ.get("CI", "").lower() in ("", "0", "false"):
        return pytest.importorskip(module)
    return importlib.import_module(module)


def optional(module: str) -> ModuleType:
    """``module`` imported, or a skip when it is missing (in CI too)."""
    return pytest.importorskip(module)
