"""Smoke test of an installed mixedmodels wheel: .ci/run's wheel stage runs it with ``python -I``
from a temporary directory, in a fresh virtual environment holding only the wheel and its
dependencies, with nothing but that environment's ``bin`` on PATH (no Rust toolchain, no source
tree, no optional extras).

It fits, summarises and predicts an LMM, fits a GLMM, fits two responses with ``lmer_many`` and
runs the command line, and compares numbers with R's. The expected values are copied (the source
tree is not at hand) from tests/reference/cases/sleepstudy_reml.json and cbpp_binomial.json: R
4.2.2, lme4 1.1-31, lmerTest 3.1-3; the tolerances are the project's (tests/TOLERANCES.md: LMM
fixed effects 1e-4 relative, standard errors 1e-3, log-likelihood 1e-3 absolute; GLMM fixed
effects 2e-3, which covers our exact Laplace objective's documented distance from lme4's).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

# lme4: lmer(Reaction ~ Days + (Days | Subject), sleepstudy) (REML), with lmerTest's
# Satterthwaite df and p-value for Days, and predict() on four rows, the last of a new subject.
# Coefficients by our (patsy's) names: lme4's "(Intercept)" is "Intercept".
SLEEPSTUDY_FIXEF = {"Intercept": 251.40510484848497, "Days": 10.467285959595987}
SLEEPSTUDY_FIXEF_SE = {"Intercept": 6.824596694954906, "Days": 1.545789643905981}
SLEEPSTUDY_REML_CRITERION = 1743.628271959952
SLEEPSTUDY_DAYS_DF = 16.999983725591733
SLEEPSTUDY_DAYS_P = 3.2638244699273775e-06
SLEEPSTUDY_NEWDATA = pd.DataFrame(
    {"Reaction": [249.56, 237.2466, 364.1236, 258.7047], "Days": [0.0, 9.0, 9.0, 1.0], "Subject": ["308", "335", "372", "NEW_LEVEL"]}
)
SLEEPSTUDY_PREDICTED = [253.66365579838612, 248.5075234806148, 369.4814692813534, 261.872390808081]
SLEEPSTUDY_SIGMA = 25.59179572167535
# lme4: glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial).
CBPP_FIXEF = [-1.3983428644711453, -0.9919249749757388, -1.1282162159433398, -1.579745413649192]
CBPP_LOGLIK = -92.02656638953027


def check_close(what: str, actual: object, expected: object, relative: float = 0.0, absolute: float = 0.0) -> None:
    actual_values = np.asarray(actual, dtype=float)
    expected_values = np.asarray(expected, dtype=float)
    allowed = np.maximum(relative * np.abs(expected_values), absolute)
    difference = np.abs(actual_values - expected_values)
    if not np.all(difference <= allowed):
        raise AssertionError(f"{what}: {actual_values} differs from R's {expected_values} by {difference} (allowed {allowed})")
    print(f"ok  {what}")


def optional_dependencies() -> set[str]:
    """The distributions only an extra requires (from the installed wheel's metadata); each one's
    import name is its distribution name."""
    requirements = importlib.metadata.metadata("mixedmodels").get_all("Requires-Dist") or []
    name = re.compile(r"^\s*([A-Za-z0-9_.-]+)")
    required: set[str] = set()
    optional: set[str] = set()
    for requirement in requirements:
        match = name.match(requirement)
        assert match is not None, requirement
        (optional if "extra ==" in requirement else required).add(match.group(1).lower().replace("-", "_"))
    return optional - required


def check_installation() -> None:
    """The package comes from this environment's site-packages, with the compiled core, and
    imports without any optional extra installed or imported."""
    extras = optional_dependencies()
    installed = sorted(module for module in extras if importlib.util.find_spec(module) is not None)
    assert not installed, f"the smoke-test environment must have no optional extra, has {installed}"
    import mixedmodels
    from mixedmodels import _core

    for module in (mixedmodels, _core):
        assert Path(module.__file__ or "").resolve().is_relative_to(Path(sys.prefix).resolve()), f"{module.__name__} imported from {module.__file__}"
    imported = sorted(extras & set(sys.modules))
    assert not imported, f"import mixedmodels imported optional dependencies {imported}"
    for tool in ("cargo", "rustc"):
        assert shutil.which(tool) is None, f"{tool} is on PATH"
    versions = ", ".join(f"{dist} {importlib.metadata.version(dist)}" for dist in ("mixedmodels", "numpy", "pandas", "scipy", "patsy"))
    print(f"ok  mixedmodels imported from {Path(mixedmodels.__file__ or '').parent} ({versions}), no extra among {sorted(extras)}")


def check_lmer() -> None:
    import mixedmodels as mm

    sleepstudy = mm.datasets.load("sleepstudy")
    fit = mm.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)
    check_close("lmer fixed effects", fit.params[list(SLEEPSTUDY_FIXEF)], list(SLEEPSTUDY_FIXEF.values()), relative=1e-4)
    check_close("lmer standard errors", fit.bse[list(SLEEPSTUDY_FIXEF_SE)], list(SLEEPSTUDY_FIXEF_SE.values()), relative=1e-3)
    check_close("lmer REML criterion", fit.REMLcrit, SLEEPSTUDY_REML_CRITERION, absolute=2e-3)
    summary = str(fit.summary())
    assert f"REML criterion at convergence: {SLEEPSTUDY_REML_CRITERION:.4f}" in summary, summary
    assert "Satterthwaite" in summary, summary
    print("ok  lmer summary")
    # Fitted values are compared relative to lme4's sigma (tests/TOLERANCES.md).
    check_close("lmer predict", fit.predict(SLEEPSTUDY_NEWDATA), SLEEPSTUDY_PREDICTED, absolute=1e-4 * SLEEPSTUDY_SIGMA)


def check_glmer() -> None:
    import mixedmodels as mm

    fit = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", mm.datasets.load("cbpp"), family="binomial")
    check_close("glmer fixed effects", fit.params, CBPP_FIXEF, relative=2e-3)
    check_close("glmer log-likelihood", fit.llf, CBPP_LOGLIK, absolute=2e-3)
    assert "Generalized linear mixed model" in str(fit.summary())
    print("ok  glmer summary")


def check_lmer_many() -> None:
    """Two genes: sleepstudy's reaction times and 2 × them + 5, whose REML fit is lme4's with β
    mapped by the same affine map and the same t-test."""
    import mixedmodels as mm

    samples = mm.datasets.load("sleepstudy")
    reaction = samples["Reaction"].to_numpy()
    result = mm.lmer_many("~ Days + (Days | Subject)", samples, np.vstack([reaction, 2 * reaction + 5]))
    intercept, days = SLEEPSTUDY_FIXEF.values()
    check_close("lmer_many fixed effects", result.fixef, [[intercept, days], [2 * intercept + 5, 2 * days]], relative=1e-4)
    tests = result.table[result.table["coef"] == "Days"]
    check_close("lmer_many Satterthwaite df", tests["df"], [SLEEPSTUDY_DAYS_DF] * 2, relative=1e-3)
    check_close("lmer_many p-values", tests["p_value"], [SLEEPSTUDY_DAYS_P] * 2, relative=1e-3)


def check_command_line() -> None:
    executable = shutil.which("mixedmodels")
    assert executable is not None and Path(executable).parent.samefile(Path(sys.prefix, "bin")), f"the mixedmodels script on PATH is {executable}"
    completed = subprocess.run(
        [executable, "fit", "Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy"], capture_output=True, text=True, check=True, timeout=300
    )
    output = completed.stdout
    assert f"REML criterion at convergence: {SLEEPSTUDY_REML_CRITERION:.4f}" in output, output
    days_row = next(line for line in output.splitlines() if line.startswith("Days "))
    check_close("command line Days estimate (4 digits)", float(days_row.split()[1]), SLEEPSTUDY_FIXEF["Days"], relative=5e-4)


def main() -> None:
    check_installation()
    check_lmer()
    check_glmer()
    check_lmer_many()
    check_command_line()
    print("wheel smoke test passed")


if __name__ == "__main__":
    main()
