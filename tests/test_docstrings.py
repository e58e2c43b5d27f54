"""Every public function and class of the package documents itself with a runnable example, and
every example runs."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import mixedmodels
from extras import require

# Modules whose examples use an optional dependency besides the test extra's.
OPTIONAL_EXAMPLES = {"mixedmodels.batch.result": "polars"}
MODULES = sorted(
    name for _, name, _ in pkgutil.walk_packages(mixedmodels.__path__, "mixedmodels.") if not name.endswith("_core")
)


@pytest.mark.parametrize("module_name", MODULES)
def test_examples_run(module_name: str) -> None:
    if module_name.startswith("mixedmodels.plotting"):
        require("matplotlib")  # the plots' examples draw: skipped without the plot extra, except in CI
    if module_name in OPTIONAL_EXAMPLES:
        require(OPTIONAL_EXAMPLES[module_name])
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_public_api_has_examples() -> None:
    missing = []
    for name in mixedmodels.__all__:
        obj = getattr(mixedmodels, name)
        if inspect.ismodule(obj) or (inspect.isclass(obj) and issubclass(obj, (Exception, Warning))):
            continue
        if ">>>" not in (inspect.getdoc(obj) or ""):
            missing.append(name)
    for name in mixedmodels.datasets.__all__ if hasattr(mixedmodels.datasets, "__all__") else ["load", "names", "describe"]:
        if ">>>" not in (inspect.getdoc(getattr(mixedmodels.datasets, name)) or ""):
            missing.append(f"datasets.{name}")
    result_methods = ["conf_int", "varcorr", "ranef", "predict", "refit"]
    missing += [m for m in result_methods if ">>>" not in (inspect.getdoc(getattr(mixedmodels.LmerResult, m)) or "")]
    assert not missing
