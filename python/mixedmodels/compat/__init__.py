"""Front doors for code written for other libraries: :mod:`mixedmodels.compat.statsmodels` runs
``statsmodels.formula.api.mixedlm`` code (``import mixedmodels.compat.statsmodels as smf``) on
this package's lme4 fits.

Example
-------
>>> import mixedmodels as mm
>>> import mixedmodels.compat.statsmodels as smf
>>> df = mm.datasets.load("sleepstudy")
>>> r = smf.mixedlm("Reaction ~ Days", df, groups=df["Subject"]).fit()
>>> round(float(r.fe_params["Days"]), 4)
10.4673
"""

from __future__ import annotations
