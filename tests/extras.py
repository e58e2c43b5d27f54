"""Tests of an optional dependency (an extra of pyproject.toml): skipped where it is not installed,
but failing in CI (the ``CI`` environment variable set, as .ci/run sets it), where README's test
command installs every extra the tests use."""

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
