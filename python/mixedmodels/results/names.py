"""How results label things the way lme4 prints them.

Example
-------
>>> display_name("Intercept"), display_name("Days")
('(Intercept)', 'Days')
>>> make_unique(["Subject", "Subject", "Batch"])
['Subject', 'Subject.1', 'Batch']
"""

from __future__ import annotations


def display_name(name: str) -> str:
    """lme4's spelling of a patsy column name, for tables: ``Intercept`` → ``(Intercept)``.

    >>> display_name("Intercept")
    '(Intercept)'
    """
    return "(Intercept)" if name == "Intercept" else name


def make_unique(names: list[str]) -> list[str]:
    """R's ``make.unique``: later duplicates get ``.1``, ``.2``, ... (lme4's VarCorr group names).

    >>> make_unique(["g", "g", "g"])
    ['g', 'g.1', 'g.2']
    """
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        if name in seen:
            seen[name] += 1
            unique.append(f"{name}.{seen[name]}")
        else:
            seen[name] = 0
            unique.append(name)
    return unique
