"""Command line: ``mixedmodels fit FORMULA --data DATA`` fits a model and prints its summary: a
linear mixed model, or with ``--family`` a generalized one. ``mixedmodels batch FORMULA --samples
SAMPLES --responses RESPONSES --out RESULTS`` fits the model to every gene (:func:`lmer_many`, or
:func:`glmer_many` for counts with ``--family poisson`` or ``negative_binomial``), here or on a
Dask cluster (``--dask-scheduler``), and writes the results table.

``--data`` takes a dataset the package ships (``mixedmodels datasets`` lists them), a CSV file, or
a Parquet file (when pyarrow is installed; read through Arrow, text columns never as Python
objects, dictionary-encoded columns as factors in their order).

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
import contextlib
import importlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from . import datasets
from .batch import BatchResult, glmer_many, lmer_many
from .datasets import EXACT_FLOATS
from .errors import DataError, MixedModelError
from .formula.frames import as_pandas
from .models import glmer, lmer
from .results import MixedModelResult

COUNT_FAMILIES = ("poisson", "negative_binomial")


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
        frame = read_parquet(path)
    else:
        frame = pd.read_csv(path, **EXACT_FLOATS)
    frame.attrs["name"] = path.name
    return frame


def read_parquet(path: Path) -> pd.DataFrame:
    """A Parquet file read with pyarrow into pandas as the fitting functions read an Arrow table
    (:func:`mixedmodels.formula.frames.as_pandas`: text Arrow-backed, never Python objects,
    dictionary columns as Categoricals in their order); the index pandas wrote, if any, as the
    index.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "dyestuff.parquet"
    >>> datasets.load("Dyestuff").set_index("Batch").to_parquet(path)
    >>> frame = read_parquet(path)
    >>> frame.index.name, frame["Yield"].dtype, frame.shape
    ('Batch', dtype('float64'), (30, 1))
    """
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MixedModelError("reading Parquet needs pyarrow: pip install pyarrow") from None
    table = pq.read_table(path)
    metadata = table.schema.pandas_metadata or {}
    # pandas stores a named or non-default index as columns; a RangeIndex only as metadata.
    index_columns = [name for name in metadata.get("index_columns", []) if isinstance(name, str)]
    frame = as_pandas(table.drop_columns(index_columns))
    if index_columns:
        # Row labels as pandas reads them (they label results: gene ids), one value per row.
        labels = table.select(index_columns).replace_schema_metadata(None).to_pandas()
        names = [None if name.startswith("__index_level_") else name for name in index_columns]
        frame.index = pd.Index(labels.iloc[:, 0], name=names[0]) if len(names) == 1 else pd.MultiIndex.from_frame(labels, names=names)
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
    batch = commands.add_parser("batch", help="fit a mixed model to every gene and write a results table")
    batch.add_argument("formula", help='lme4 formula without a left-hand side, e.g. "~ condition + age + (1 | donor)"')
    batch.add_argument("--samples", help="one row per sample (CSV, TSV or Parquet); not with an .h5ad, whose obs are the samples")
    batch.add_argument("--sample-column", help="the column of sample ids in --samples (default: its first column)")
    batch.add_argument("--responses", required=True, help="genes × samples (CSV, TSV or Parquet: gene ids first, a column per sample id), or an .h5ad")
    batch.add_argument("--weights", help="per-gene precision weights, laid out as --responses")
    batch.add_argument("--layer", help="with an .h5ad: the layer of responses (default: X)")
    batch.add_argument("--weights-layer", help="with an .h5ad: the layer of weights")
    batch.add_argument("--coef", nargs="+", help="coefficients to test (default: every one), e.g. condition[T.treated]")
    batch.add_argument(
        "--family",
        choices=["gaussian", *COUNT_FAMILIES],
        default="gaussian",
        help="gaussian (default): a linear mixed model per gene (lmer_many); poisson or negative_binomial: a count model (glmer_many)",
    )
    batch.add_argument("--offset", help="counts: the column of --samples holding a known offset, e.g. log library size")
    batch.add_argument("--nagq", type=int, choices=[0, 1], help="counts: 1 (default) Laplace, 0 lme4's faster nAGQ = 0")
    batch.add_argument(
        "--ddf", choices=["satterthwaite", "kenward-roger", "asymptotic"], help="gaussian: the t-tests' df (default: satterthwaite; kenward-roger needs REML)"
    )
    batch.add_argument("--ml", action="store_true", help="gaussian: maximum likelihood instead of REML")
    batch.add_argument("--threads", type=int, default=-1, help="threads to use (default: every core); with --dask-scheduler local, worker processes")
    batch.add_argument("--chunk-size", type=int, help="genes per call into the core (or per Dask task)")
    batch.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="fit the chunks of genes on the Dask cluster of this scheduler (e.g. tcp://host:8786), or on a LocalCluster started for the fit with 'local'",
    )
    batch.add_argument("--out", required=True, help="the results table: .parquet, .csv or .tsv")
    commands.add_parser("datasets", help="list the shipped datasets")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mixedmodels`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "datasets":
        for name in datasets.names():
            print(f"{name:12s} {datasets.describe(name).splitlines()[0]}")
        return 0
    if args.command == "batch":
        return _batch(args)
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


def _batch(args: argparse.Namespace) -> int:
    """``mixedmodels batch``: read, fit every gene, write the table, print a one-line summary."""
    started = time.perf_counter()
    try:
        out = Path(args.out)
        writer = _table_format(out, "--out")
        if not out.parent.is_dir():
            raise MixedModelError(f"--out {args.out!r}: the folder {str(out.parent)!r} does not exist")
        options = _fit_options(args)
        if _table_format(Path(args.responses), "--responses") == "h5ad":
            if args.samples or args.weights or args.sample_column:
                raise MixedModelError("an .h5ad holds its samples (obs) and weights (a layer): no --samples, --weights, --sample-column")
            if args.family != "gaussian":
                raise MixedModelError("counts are read from a table (--responses as CSV, TSV or Parquet), not from an .h5ad")
            inputs: tuple[Any, ...] = (_read_h5ad(args.responses),)
            options |= {"layer": args.layer, "weights_layer": args.weights_layer}
        else:
            if args.layer or args.weights_layer:
                raise MixedModelError("--layer and --weights-layer are for an .h5ad --responses")
            if not args.samples:
                raise MixedModelError("--samples is needed (one row per sample) unless --responses is an .h5ad")
            inputs = (_read_samples(args.samples, args.sample_column), _read_genes(args.responses, "--responses"))
            if args.weights is not None:
                options["weights"] = _read_genes(args.weights, "--weights")
        fit: Any = lmer_many if args.family == "gaussian" else glmer_many
        with _dask(args.dask_scheduler, args.threads) as where:
            result = fit(args.formula, *inputs, **options, **where)
        _write(result, out, writer)
    except (MixedModelError, ImportError) as err:
        print(f"mixedmodels: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mixedmodels: interrupted", file=sys.stderr)
        return 130
    print(_summary(result, time.perf_counter() - started, out))
    return 0


def _fit_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of lmer_many (--family gaussian) or glmer_many (counts), refusing those of the other."""
    common = {"coef": args.coef, "n_jobs": args.threads, "chunk_size": args.chunk_size}
    if args.family == "gaussian":
        for option, given in (("--offset", args.offset), ("--nagq", args.nagq)):
            if given is not None:
                raise MixedModelError(f"{option} is for count models (--family poisson or negative_binomial), not for --family gaussian")
        return common | {"ddf": args.ddf or "satterthwaite", "REML": not args.ml}
    for option, given in (("--ddf", args.ddf), ("--ml", args.ml or None), ("--weights", args.weights)):
        if given is not None:
            raise MixedModelError(f"{option} is for --family gaussian: a count model is fitted by maximum likelihood, with z-tests and no precision weights")
    return common | {"family": args.family, "offset": args.offset, "nAGQ": 1 if args.nagq is None else args.nagq}


@contextlib.contextmanager
def _dask(scheduler: str | None, threads: int) -> Iterator[dict[str, Any]]:
    """Where the fit runs: here (no --dask-scheduler), on a LocalCluster started by the fit
    ('local'), or on the cluster of a scheduler's address, connected to for the fit."""
    if scheduler is None:
        yield {}
        return
    if scheduler == "local":
        yield {"backend": "dask"}
        return
    if threads != -1:
        raise MixedModelError("--threads is for fits here or on --dask-scheduler local; a scheduler's workers bring their own threads")
    try:
        distributed = importlib.import_module("distributed")
    except ImportError:
        raise MixedModelError("--dask-scheduler needs dask.distributed: pip install mixedmodels[dask]") from None
    try:
        client = distributed.Client(scheduler, set_as_default=False)
    except (OSError, ValueError) as err:
        raise MixedModelError(f"--dask-scheduler {scheduler!r}: cannot connect ({err})") from None
    with client:
        yield {"client": client}


def _table_format(path: Path, option: str) -> str:
    suffixes = [suffix.lower() for suffix in path.suffixes if suffix.lower() not in (".gz", ".bz2", ".xz", ".zst")]
    kind = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".h5ad": "h5ad"}.get(suffixes[-1] if suffixes else "")
    if kind is None or (option == "--out" and kind == "h5ad"):
        allowed = ".parquet, .csv or .tsv" if option == "--out" else ".csv, .tsv, .parquet or .h5ad"
        raise MixedModelError(f"{option} {str(path)!r}: give a {allowed} file")
    return kind


def _read_table(source: str, option: str) -> pd.DataFrame:
    path = Path(source)
    kind = _table_format(path, option)
    if not path.is_file():
        raise MixedModelError(f"{option} {source!r}: no such file")
    if kind == "parquet":
        return read_parquet(path)
    return pd.read_csv(path, sep="\t" if kind == "tsv" else ",", **EXACT_FLOATS)


def _read_samples(source: str, column: str | None) -> pd.DataFrame:
    """The samples indexed by their ids, as text (the column names of the responses are text)."""
    samples = _read_table(source, "--samples")
    column = samples.columns[0] if column is None else column
    if column not in samples.columns:
        raise DataError(f"--sample-column {column!r} is not a column of --samples (its columns: {list(samples.columns)})")
    return samples.set_index(samples.pop(column).astype(str).rename(column))


def _read_genes(source: str, option: str) -> pd.DataFrame:
    """Genes × samples: gene ids in the first column (or a Parquet file's own index)."""
    frame = _read_table(source, option)
    if isinstance(frame.index, pd.RangeIndex):
        frame = frame.set_index(frame.columns[0])
    frame.columns = frame.columns.astype(str)
    return frame


def _read_h5ad(source: str) -> Any:
    if not Path(source).is_file():
        raise MixedModelError(f"--responses {source!r}: no such file")
    try:
        import anndata
    except ImportError:
        raise MixedModelError("reading .h5ad needs anndata: pip install anndata (or mixedmodels[anndata])") from None
    return anndata.read_h5ad(source)


def _write(result: BatchResult, out: Path, kind: str) -> None:
    if kind == "parquet":
        result.to_parquet(out)
    else:
        # 17 significant digits: every float64 written back exactly.
        result.table.to_csv(out, sep="\t" if kind == "tsv" else ",", index=False, float_format="%.17g")


def _summary(result: BatchResult, seconds: float, out: Path) -> str:
    """One line: genes fitted, failed and singular, and the time taken."""
    per_gene = result.table.iloc[:: len(result.coefficients)]
    failed = int(per_gene["error"].notna().sum())
    singular = int(per_gene["singular"].sum())
    return f"{len(result.genes)} genes: {len(result.genes) - failed} fitted, {failed} failed, {singular} singular in {seconds:.1f} s; results in {out}"


if __name__ == "__main__":
    sys.exit(main())
