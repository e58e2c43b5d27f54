"""From an lme4 formula and a DataFrame to the arrays a model fits: the formula parser
(:mod:`.parser`), the columns read from the data (:mod:`.columns`), model matrices
(:mod:`.model_matrix`) and the assembled design (:mod:`.design`).

Example
-------
>>> from mixedmodels.formula import parse_formula
>>> parse_formula("Reaction ~ Days + (Days | Subject)").fixed
'Days'
"""

from __future__ import annotations

from .parser import ParsedFormula, RandomTerm, parse_formula

__all__ = ["ParsedFormula", "RandomTerm", "parse_formula"]
