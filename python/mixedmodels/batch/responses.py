"""Where a batch fit reads its responses from, a chunk of genes at a time: matrices in memory
(genes × samples) or an AnnData layer (samples × genes, dense or scipy sparse; ``anndata`` is
optional and never imported here: an AnnData is recognised when the caller has imported it).

Every chunk comes as the core takes it: kept samples × genes in Fortran order, with each gene's
weights divided by their mean over all its samples (variancePartition's ``dream``).

Example
-------
>>> import numpy as np
>>> source = InMemoryResponses(pd.Index(["a", "b", "c"]), np.arange(6.0).reshape(3, 2), None)
>>> y, w = source.chunk(1, 3)
>>> y.tolist(), y.flags.f_contiguous, w
([[2.0, 4.0], [3.0, 5.0]], True, None)
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import DataError
from ..formula.frames import arrow_table, as_pandas, is_arrow_frame
from ..models.base import as_float_array


class ResponseChunks(Protocol):
    """Genes and their responses (and weights), a chunk of genes at a time."""

    @property
    def genes(self) -> pd.Index: ...

    def chunk(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]: ...


def dream_normalised(weights: np.ndarray) -> np.ndarray:
    """Each gene's (row's) weights over their mean (``dream``'s scaling of voom weights).

    >>> dream_normalised(np.array([[1.0, 3.0]])).tolist()
    [[0.5, 1.5]]
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(weights / weights.mean(axis=1, keepdims=True))


class InMemoryResponses:
    """Responses (genes × kept samples) and normalised weights already in memory.

    >>> InMemoryResponses(pd.RangeIndex(2), np.ones((2, 3)), None).genes.tolist()
    [0, 1]
    """

    def __init__(self, genes: pd.Index, responses: np.ndarray, weights: np.ndarray | None) -> None:
        self._genes = genes
        self._responses = responses
        self._weights = weights

    @property
    def genes(self) -> pd.Index:
        return self._genes

    def chunk(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        y = np.asfortranarray(self._responses[start:stop].T)
        return y, None if self._weights is None else np.asfortranarray(self._weights[start:stop].T)


def batch_samples(samples: object) -> pd.DataFrame:
    """The samples as a pandas DataFrame whose index holds the sample ids. A polars or Arrow
    table has no index: its first column holds the sample ids (and stays a variable too).

    >>> import pyarrow as pa
    >>> batch_samples(pa.table({"sample": ["s1", "s2"], "age": [30, 41]})).index.tolist()
    ['s1', 's2']
    """
    frame = as_pandas(samples, "samples")
    if is_arrow_frame(samples) and frame.shape[1] > 0:
        frame = frame.set_axis(pd.Index(frame.iloc[:, 0].array, name=None), axis=0)
    return frame


def batch_matrix(values: object, sample_ids: pd.Index, what: str) -> object:
    """A genes × samples polars or Arrow table as a pandas DataFrame indexed by gene whose columns
    are the sample ids; anything else as it is. The table's columns named by a sample id (as text,
    so that ids that are numbers match too) are the samples; its first column, when it is not one
    of them, holds the gene ids (else the genes are numbered 0, 1, ...).

    >>> import pyarrow as pa
    >>> Y = batch_matrix(pa.table({"gene": ["g1", "g2"], "s2": [1.0, 2.0], "s1": [3.0, 4.0]}), pd.Index(["s1", "s2"]), "Y")
    >>> Y.index.tolist(), Y.columns.tolist(), Y.to_numpy().tolist()
    (['g1', 'g2'], ['s2', 's1'], [[1.0, 3.0], [2.0, 4.0]])
    """
    if not is_arrow_frame(values):
        return values
    table = arrow_table(values, what)
    if not sample_ids.is_unique:
        raise DataError(
            f"samples' index (a polars or Arrow table's first column) has repeated sample ids; {what} as a table is matched to it by column name"
        )
    names = table.column_names
    if not names:
        raise DataError(f"{what} has no columns")
    positions = pd.Index(sample_ids.astype(str)).get_indexer(pd.Index(names, dtype=object))
    genes: pd.Index = pd.RangeIndex(table.num_rows)
    if positions[0] < 0:
        genes = pd.Index(table.column(0).to_pandas(), name=names[0])  # as pandas reads ids: G values, not G × samples
        table = table.drop_columns([names[0]])
        names, positions = names[1:], positions[1:]
    if np.any(positions < 0):
        unknown = [names[i] for i in np.flatnonzero(positions < 0)[:3]]
        raise DataError(
            f"{what} has {int(np.sum(positions < 0))} column(s) that are not sample ids of samples, e.g. {unknown}: only its first column may hold the gene ids"
        )
    # Numbers only: Arrow's own conversion to numpy, column blocks joined in C++ (nulls as NaN).
    frame = table.to_pandas()
    frame.index = genes
    frame.columns = sample_ids[positions]
    return frame


def is_anndata(value: object) -> bool:
    """Whether ``value`` is an AnnData (anndata being loaded when the caller made one)."""
    module = sys.modules.get("anndata")
    return module is not None and isinstance(value, module.AnnData)


class AnnDataResponses:
    """The genes (``var_names``) of an AnnData and their values in a layer (or ``.X``), with
    optional weights in another layer; chunks are densified one at a time, so a large sparse
    matrix is never dense as a whole. A sparse matrix's implicit zeros are zeros, not missing.

    >>> from types import SimpleNamespace
    >>> adata = SimpleNamespace(X=sparse.csr_matrix(np.eye(3)), layers={}, var_names=["g1", "g2", "g3"], n_obs=3, n_vars=3)
    >>> y, _ = AnnDataResponses(adata, None, None, kept=np.array([0, 2])).chunk(0, 2)
    >>> y.tolist()  # samples 0 and 2 × genes g1, g2
    [[1.0, 0.0], [0.0, 0.0]]
    """

    def __init__(self, adata: Any, layer: str | None, weights_layer: str | None, kept: np.ndarray) -> None:
        self._genes = pd.Index(adata.var_names)
        self._values = _layer(adata, layer, "layer")
        self._weights = None if weights_layer is None else _layer(adata, weights_layer, "weights_layer")
        self._kept = None if len(kept) == adata.n_obs else kept

    @property
    def genes(self) -> pd.Index:
        return self._genes

    def chunk(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        y = _gene_major(self._values, start, stop, "the responses")
        weights = None
        if self._weights is not None:
            weights = dream_normalised(_gene_major(self._weights, start, stop, "the weights"))
        if self._kept is not None:
            y = y[:, self._kept]
            weights = None if weights is None else weights[:, self._kept]
        return np.asfortranarray(y.T), None if weights is None else np.asfortranarray(weights.T)


def _layer(adata: Any, layer: str | None, what: str) -> Any:
    """``adata.layers[layer]`` (``.X`` for None); sparse matrices as CSC, whose column (gene)
    slices cost only their own entries."""
    if layer is None:
        values = adata.X
        if values is None:
            raise DataError("the AnnData has no .X: name the layer of responses with layer=")
    elif not isinstance(layer, str) or layer not in adata.layers:
        raise DataError(f"{what}={layer!r} is not a layer of the AnnData (its layers: {list(adata.layers.keys())})")
    else:
        values = adata.layers[layer]
    if adata.n_vars == 0:
        raise DataError("the AnnData has no genes (variables)")
    if sparse.issparse(values) and values.format != "csc":
        return values.tocsc()
    return values


def _gene_major(values: Any, start: int, stop: int, what: str) -> np.ndarray:
    """Genes ``start:stop`` of a samples × genes matrix as dense float64, genes × samples."""
    block = values[:, start:stop]
    dense = block.toarray() if sparse.issparse(block) else block
    return np.ascontiguousarray(as_float_array(dense, what).T)
