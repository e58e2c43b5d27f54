"""Progress of a batch fit: a tqdm bar over genes (tqdm is optional), or nothing.

Example
-------
>>> with progress_bar(False, total=10, description="genes") as bar:
...     bar.update(10)
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Protocol

from ..errors import SpecificationError


class ProgressBar(Protocol):
    """What a batch fit needs of a bar: counting finished genes, and closing."""

    def update(self, n: int) -> object: ...

    def __enter__(self) -> ProgressBar: ...

    def __exit__(self, *exc: object) -> object: ...


class _Silent:
    """No bar."""

    def update(self, n: int) -> None:
        """Nothing to show."""

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def progress_bar(progress: bool | None, total: int, description: str) -> ProgressBar:
    """A tqdm bar over ``total`` genes on stderr when ``progress`` is True (an ImportError naming
    tqdm when it is not installed), none when False, and when None one only if stderr is a
    terminal and tqdm is installed.

    >>> progress_bar(None, total=5, description="genes").__class__.__name__  # doctest output is no terminal
    '_Silent'
    """
    if progress is not None and not isinstance(progress, bool):
        raise SpecificationError(f"progress must be True, False or None, not {progress!r}")
    if progress is False or (progress is None and not _stderr_is_a_terminal()):
        return _Silent()
    try:
        tqdm: Any = importlib.import_module("tqdm").tqdm
    except ImportError:
        if progress is None:
            return _Silent()
        raise ImportError("progress=True needs tqdm: pip install tqdm (or mixedmodels[progress])") from None
    bar: ProgressBar = tqdm(total=total, desc=description, unit="gene", file=sys.stderr, dynamic_ncols=True)
    return bar


def _stderr_is_a_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty is not None and isatty())
