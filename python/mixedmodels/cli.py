"""Command line: ``mixedmodels fit FORMULA --data DATA`` fits a model and prints its summary: a
linear mixed model, or with ``--family`` a generalized one.

``--data`` takes a dataset the package ships (``mixedmodels datasets`` lists them), a CSV file, or
a Parquet file (when pyarrow is installed).

Example
-------
>>> from mixedmodels.cli import main
>>> main(["fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff"])  # doctest: +ELLIPSIS
Linear mixed model fit by REML
...
0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from . import datasets
from .errors import MixedModelError
from .models import glmer, lmer
from .results import MixedModelResult


def read_data(source: str) -> pd.DataFrame:
    """A shipped dataset by name, else a CSV or Parquet file by path.

    >>> read_data("sleepstudy").shape
    (180, 3)
    """
    path = Path(source)
    if not path.exists():
        if source.lower() in (name.lower() for name in datasets.names()):
            return datasets.load(source)
        raise MixedModelError(
            f"--data {source!r} is neither a file nor a shipped dataset ({', '.join(datasets.names())})"
        )
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except ImportError:
            raise MixedModelError("reading Parquet needs pyarrow: pip install pyarrow") from None
    else:
        frame = pd.read_csv(path)
    frame.attrs["name"] = path.name
    return frame


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixedmodels", description="Linear mixed models with lme4's formulas.")
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("fit", help="fit a linear mixed model and print its summary")
    fit.add_argument("formula", help='lme4 formula, e.g. "Reaction ~ Days + (Days | Subject)"')
    fit.add_argument("--data", required=True, help="shipped dataset name, CSV or Parquet path")
    fit.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    fit.add_argument("--weights", help="column of prior weights")
    fit.add_argument("--offset", help="column of a known offset")
    fit.add_argument("--na-action", choices=["omit", "raise"], default="omit", help="what to do with missing values")
    fit.add_argument("--family", help="fit a GLMM of this family (binomial, poisson, Gamma, inverse.gaussian, negative_binomial, ...)")
    fit.add_argument("--link", help="the GLMM's link (default: the family's canonical one)")
    fit.add_argument("--nagq", type=int, default=1, help="GLMM quadrature nodes: 0, 1 (Laplace) or 2-25")
    fit.add_argument("--compat", choices=["lme4"], help="reproduce lme4 1.1's numbers (its Laplace objective) instead of ours")
    commands.add_parser("datasets", help="list the shipped datasets")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mixedmodels`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "datasets":
        for name in datasets.names():
            print(f"{name:12s} {datasets.describe(name).splitlines()[0]}")
        return 0
    try:
        data = read_data(args.data)
        if args.family:
            result: MixedModelResult = glmer(
                args.formula,
                data,
                family=args.family,
                link=args.link,
                weights=args.weights,
                offset=args.offset,
                nAGQ=args.nagq,
                na_action=args.na_action,
                compat=args.compat,
            )
        else:
            result = lmer(
                args.formula, data, REML=not args.ml, weights=args.weights, offset=args.offset, na_action=args.na_action
            )
    except MixedModelError as err:
        print(f"mixedmodels: error: {err}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
