"""Chunked data (a ``dask.array.Array``, or an in-memory array cut into row chunks).

:func:`check_chunked_points` is what ``check_points`` does for a dask array: the same checks
as for in-memory data (numeric dtype, 1-D or 2-D, at least one point and one feature, every
value finite, at least ``n_components`` points), with one pass over the data for the values
(NaN/inf are reported by chunk and row), all before any engine iterates. It returns a
:class:`ChunkedPoints`, the one type the engines that serve chunked data (CAVI, EM, SVI)
receive (and minibatch ADVI, which streams one chunk at a time: ``batch_size`` required);
every other engine is refused when it tries to read it as an array.

Chunks are along rows only: a dask array with several column chunks is rechunked to one
column chunk (a chunk holds whole points). Dask itself is never imported here unless the
caller already holds a dask array (it is an optional dependency:
``pip install 'ppl-mixtures[dask]'``).

The one pass also computes, per chunk, the count, column means and the scatter matrix
sum (x - x̄)(x - x̄)^T, combined in a fixed binary tree over the chunks (Chan, Golub &
LeVeque 1979): the data's moments for the data-scale check and EM's start, the same
numbers for the same chunking whatever runs the chunks.

Reading chunks (shared by the conjugate engines and minibatch ADVI, which must not import
each other; with them this module passes our ~400-line guide, kept whole so that everything
that touches a chunk is in one place): :func:`chunk_blocks` (one delayed object per chunk), :func:`read_chunk` (one
chunk, or some of its rows, into memory), :func:`chunk_epoch` (chunks drawn with
probability n_c / N, stratified over an epoch) and :func:`init_sample` (the deterministic subsample the starts read).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "CHUNKED_ENGINES",
    "INIT_SAMPLE_SIZE",
    "MINIBATCH_CHUNKED_ENGINES",
    "ChunkedPoints",
    "DataMoments",
    "check_chunked_engine",
    "check_chunked_points",
    "check_enough_rows",
    "check_table_shape",
    "chunk_blocks",
    "chunk_epoch",
    "chunk_moments",
    "combine_moments",
    "init_sample",
    "is_dask_array",
    "read_chunk",
    "tree_reduce",
]

#: The engines that accept chunked data: CAVI, EM and SVI (one pass per iteration, additive
#: statistics), and ADVI with minibatches (``batch_size``; it streams one chunk at a time).
CHUNKED_ENGINES = ("cavi", "em", "svi", "advi", "fullrank_advi")
#: Of those, the ones that accept chunked data only with ``batch_size`` set.
MINIBATCH_CHUNKED_ENGINES = ("advi", "fullrank_advi")
#: k-means++ and random-point starts on chunked data read at most this many rows: rows
#: floor(i N / m), i = 0..m-1 (every row when N <= m, so a small data set starts exactly
#: where the in-memory fit starts).
INIT_SAMPLE_SIZE = 100_000
_ACCEPTED = "'cavi', 'em', 'svi' and, with batch_size set, minibatch 'advi' and 'fullrank_advi'"

DASK_INSTALL_HINT = "pip install 'ppl-mixtures[dask]'"


def is_dask_array(value: Any) -> bool:
    """True for a ``dask.array.Array`` (checked without importing dask)."""
    kind = type(value)
    return kind.__name__ == "Array" and kind.__module__.startswith("dask.array")


@dataclass(frozen=True, eq=False)
class DataMoments:
    """Count, column means and scatter matrix sum_i (x_i - x̄)(x_i - x̄)^T of some rows."""

    count: float
    mean: np.ndarray
    scatter: np.ndarray

    @property
    def variance(self) -> np.ndarray:
        """Per-feature variance (divisor n), shape (n_features,)."""
        return np.diagonal(self.scatter) / self.count

    @property
    def covariance(self) -> np.ndarray:
        """Covariance matrix (divisor n), shape (n_features, n_features)."""
        return self.scatter / self.count


def chunk_moments(block: np.ndarray) -> DataMoments:
    """:class:`DataMoments` of one chunk (float64, any layout; C order is made first)."""
    block = np.ascontiguousarray(block, dtype=np.float64)
    mean = block.mean(axis=0)
    dev = block - mean
    return DataMoments(float(block.shape[0]), mean, dev.T @ dev)


def combine_moments(a: DataMoments, b: DataMoments) -> DataMoments:
    """Moments of the union of two disjoint sets of rows (Chan et al. 1979, pairwise)."""
    count = a.count + b.count
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.count / count)
    scatter = a.scatter + b.scatter + np.outer(delta, delta) * (a.count * b.count / count)
    return DataMoments(count, mean, scatter)


def tree_reduce[T](items: Sequence[T], combine: Callable[[T, T], T]) -> T:
    """Combine ``items`` pairwise in a fixed binary tree: (0,1), (2,3), ... then again.

    The order depends only on the number of items, never on which finished first, so the
    result is reproducible bit for bit.
    """
    if not items:
        raise ValueError("tree_reduce: expected at least one item, got none.")
    level = list(items)
    while len(level) > 1:
        level = [
            combine(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    return level[0]


@dataclass(frozen=True, eq=False)
class ChunkedPoints:
    """Validated data in row chunks: what CAVI, EM, SVI and minibatch ADVI receive.

    Attributes
    ----------
    source : ndarray or dask.array.Array
        Shape (n_samples, n_features): a float64 C-ordered array (the in-memory view that
        ``chunk_size=`` makes) or a dask array with one column chunk (any real dtype; each
        chunk is cast to float64 where it is read).
    bounds : tuple of int
        Row offsets of the chunks: chunk c holds rows ``bounds[c]:bounds[c + 1]``.
    moments : DataMoments or None
        The data's moments, computed by the validating pass (or on first use).
    fingerprint : str or None
        sha256 over the shape and each chunk's blake2b digest (float64, C order), in order.
    chunk_stats : tuple of DataMoments, or None
        Each chunk's moments, from the validating pass (``validation.chunk_order``).
    cache : dict
        Per-object memo (the k-means++ start's subsample, dask's per-chunk tasks).
    """

    source: Any
    bounds: tuple[int, ...]
    moments: DataMoments | None = None
    fingerprint: str | None = None
    chunk_stats: tuple[DataMoments, ...] | None = None
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.source.shape[0]), int(self.source.shape[1]))

    @property
    def ndim(self) -> int:
        return 2

    @property
    def n_chunks(self) -> int:
        return len(self.bounds) - 1

    @property
    def is_dask(self) -> bool:
        return not isinstance(self.source, np.ndarray)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise self.in_memory_error()

    def in_memory_error(self) -> TypeError:
        """The TypeError for code that needs every point in memory (every engine but
        CAVI, EM, SVI and minibatch ADVI, and the analyses that read the points)."""
        n_samples, n_features = self.shape
        return TypeError(
            f"points: this engine needs every point in memory, got chunked data "
            f"({n_samples} x {n_features} in {self.n_chunks} chunks). Chunked (dask) data "
            f"are accepted by engines {_ACCEPTED} only: NUTS, Metropolis, SMC and "
            f"full-data ADVI take a full pass over the data at every step and do not "
            f"distribute. Use engine='cavi', 'em' or 'svi', or pass points.compute() if "
            f"the data fit in memory."
        )

    def __repr__(self) -> str:
        kind = "dask" if self.is_dask else "in-memory"
        return f"ChunkedPoints({kind}, shape={self.shape}, n_chunks={self.n_chunks})"


def check_table_shape(name: str, shape: tuple[int, ...], described: str) -> None:
    """ValueError unless ``shape`` is (n_samples >= 1, n_features >= 1): the shape check of
    in-memory and chunked points (1-D input already made one column). ``described`` says
    what came, with ``{ndim}`` and ``{shape}`` filled in."""
    if len(shape) != 2:
        got = described.format(ndim=len(shape), shape=shape)
        raise ValueError(
            f"{name}: expected a 1-D or 2-D array (n_samples, n_features), got {got}. "
            f"Reshape to (n_samples, n_features)."
        )
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(
            f"{name}: expected at least one sample and one feature, got shape "
            f"{shape}. Pass non-empty data."
        )


def check_enough_rows(n_samples: int, n_components: int | None) -> None:
    """ValueError when there are fewer points than components."""
    if n_components is not None and n_samples < n_components:
        raise ValueError(
            f"n_components: expected at most n_samples={n_samples} components, "
            f"got {n_components}. Use fewer components or more data."
        )


def check_chunked_engine(engine: str, points: Any) -> None:
    """TypeError when chunked data (a dask array) go to an engine that does not accept them.

    Cheap (no pass over the data): ``fit`` calls it before validating the values. The
    engines of :data:`MINIBATCH_CHUNKED_ENGINES` pass here and check ``batch_size``
    themselves (a clear error when it is None).
    """
    if engine in CHUNKED_ENGINES or not (
        is_dask_array(points) or isinstance(points, ChunkedPoints)
    ):
        return
    raise TypeError(
        f"points: engine {engine!r} needs every point in memory, got a dask array of shape "
        f"{tuple(points.shape)}. Chunked data are accepted by engines {_ACCEPTED} only: "
        f"NUTS, Metropolis, SMC and the other PyMC engines take a full pass over the data "
        f"at every step and do not distribute. Use engine='cavi', 'em' or 'svi' (or "
        f"'advi' with batch_size), or pass points.compute() if the data fit in memory."
    )


def row_bounds(chunk_rows: Sequence[int]) -> tuple[int, ...]:
    """Offsets (0, n_0, n_0 + n_1, ...) of chunks of ``chunk_rows`` rows."""
    return tuple(int(b) for b in np.concatenate([[0], np.cumsum(chunk_rows, dtype=np.int64)]))


def _chunk_check(block: np.ndarray) -> tuple[int, int, DataMoments | None, str]:
    """One chunk's (n non-finite, first bad row (chunk-local, -1), moments, digest)."""
    block = np.asarray(block, dtype=np.float64)
    digest = hashlib.blake2b(np.ascontiguousarray(block).tobytes(), digest_size=16).hexdigest()
    finite = np.isfinite(block)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        return int((~finite).sum()), int(bad_rows[0]), None, digest
    return 0, -1, chunk_moments(block), digest


def _fingerprint(shape: tuple[int, int], digests: Sequence[str]) -> str:
    digest = hashlib.sha256(repr(shape).encode())
    for part in digests:
        digest.update(part.encode())
    return digest.hexdigest()


def check_chunked_points(
    points: Any, *, n_components: int | None = None, name: str = "points"
) -> ChunkedPoints:
    """Validate a dask array like ``check_points`` validates an array; one pass for the values.

    Parameters
    ----------
    points : dask.array.Array of shape (n_samples,) or (n_samples, n_features)
        Real numbers, chunked along rows (several column chunks are merged into one).
    n_components : int, optional
        When given, ``n_samples`` must be at least this.

    Returns
    -------
    ChunkedPoints
        With ``moments`` and ``fingerprint`` from the validating pass.

    Raises
    ------
    TypeError
        Non-numeric, boolean or complex dtype.
    ValueError
        Unknown (NaN) chunk sizes, more than 2 dimensions, no rows or columns, NaN/inf
        values (naming the first chunk and row that hold one), too few points.
    """
    dtype = np.dtype(points.dtype)
    if dtype.kind == "b" or not np.issubdtype(dtype, np.number):
        raise TypeError(
            f"{name}: expected numbers, got a dask array of dtype {dtype}. Convert the "
            f"data to float, e.g. points.astype('float64')."
        )
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError(
            f"{name}: expected real numbers, got a dask array of dtype {dtype}. Pass the "
            f"real part, or split real and imaginary into features."
        )
    if any(np.isnan(size) for sizes in points.chunks for size in sizes):
        raise ValueError(
            f"{name}: expected a dask array with known chunk sizes, got unknown (NaN) "
            f"chunk sizes {points.chunks} (e.g. after boolean indexing). Call "
            f"points.compute_chunk_sizes() first."
        )
    if points.ndim == 1:
        points = points[:, None]
    check_table_shape(name, tuple(points.shape), "a {ndim}-D dask array of shape {shape}")
    check_enough_rows(points.shape[0], n_components)
    if len(points.chunks[1]) > 1:  # a chunk must hold whole points
        points = points.rechunk({1: -1})
    return validate_chunks(points, name=name)


def validate_chunks(points: Any, *, name: str = "points") -> ChunkedPoints:
    """The values pass of :func:`check_chunked_points` (finite values, moments, fingerprint)."""
    import dask

    bounds = row_bounds(points.chunks[0])
    blocks = points.to_delayed().ravel()
    results = dask.compute(*[dask.delayed(_chunk_check)(b) for b in blocks])
    for c, (n_bad, first_row, _, _) in enumerate(results):
        if n_bad:
            total = sum(r[0] for r in results)
            chunks = sum(1 for r in results if r[0])
            row = bounds[c] + first_row
            raise ValueError(
                f"{name}: expected finite values, got {total} NaN/inf entries in {chunks} "
                f"of {len(results)} chunks; the first in chunk {c} (rows {bounds[c]} to "
                f"{bounds[c + 1] - 1}), at 0-based row {row}. Drop or impute them, e.g. "
                f"points[dask.array.isfinite(points).all(axis=1)] then "
                f".compute_chunk_sizes()."
            )
    moments = tree_reduce([r[2] for r in results], combine_moments)
    shape = (int(points.shape[0]), int(points.shape[1]))
    return ChunkedPoints(
        points,
        bounds,
        moments,
        _fingerprint(shape, [r[3] for r in results]),
        chunk_stats=tuple(r[2] for r in results),
    )


def in_memory_chunks(points: np.ndarray, chunk_size: int) -> ChunkedPoints:
    """A validated in-memory array viewed as chunks of ``chunk_size`` rows (the last shorter).

    The same chunk functions and the same tree then give the numbers a dask array with
    these chunks gives, bit for bit.
    """
    points = np.ascontiguousarray(points, dtype=np.float64)
    n_samples = points.shape[0]
    sizes = [min(chunk_size, n_samples - start) for start in range(0, n_samples, chunk_size)]
    bounds = row_bounds(sizes)
    blocks = [points[a:b] for a, b in itertools.pairwise(bounds)]
    checks = [_chunk_check(block) for block in blocks]
    # in-memory points arrive validated (finite), so every chunk has its moments
    chunk_stats = tuple(c[2] for c in checks if c[2] is not None)
    moments = tree_reduce(list(chunk_stats), combine_moments)
    shape = (int(points.shape[0]), int(points.shape[1]))
    return ChunkedPoints(
        points,
        bounds,
        moments,
        _fingerprint(shape, [c[3] for c in checks]),
        chunk_stats=chunk_stats,
    )


# ----------------------------------------------------------------- reading chunks
def chunk_blocks(points: ChunkedPoints) -> list[Any]:
    """One delayed object per chunk of a dask-backed ``points`` (made once, kept in
    ``points.cache``)."""
    if "blocks" not in points.cache:
        points.cache["blocks"] = list(points.source.to_delayed().ravel())
    return points.cache["blocks"]


def apply_rows(fn: Callable[[np.ndarray], Any], block: Any, rows: np.ndarray | None) -> Any:
    """``fn`` of ``block`` (or of its ``rows``) as C-ordered float64."""
    block = np.asarray(block)
    if rows is not None:
        block = block[rows]
    return fn(np.ascontiguousarray(block, dtype=np.float64))


def _identity(block: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(block)


def read_chunk(points: ChunkedPoints, chunk: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Chunk ``chunk`` (or its chunk-local ``rows``) in memory, float64 C order, shape
    (n_rows, n_features). On dask one task: only this chunk is read."""
    if points.is_dask:
        import dask

        block = chunk_blocks(points)[chunk]
        return dask.compute(dask.delayed(apply_rows, pure=False)(_identity, block, rows))[0]
    block = points.source[points.bounds[chunk] : points.bounds[chunk + 1]]
    return apply_rows(_identity, block, rows)


def chunk_epoch(points: ChunkedPoints, rng: np.random.Generator) -> np.ndarray:
    """One epoch of chunk reads, shape (n_chunks,): chunks drawn by stratified sampling in
    proportion to their rows, in random order.

    Read j of the epoch takes the chunk holding row floor((j + U) N / C) (U uniform, one
    for the epoch, C = n_chunks), then the reads are shuffled. Each read on its own is the
    chunk holding a uniform row -- chunk c with probability n_c / N, so a minibatch drawn
    uniformly from it is unbiased for the full data -- while over the epoch every chunk is
    read about C n_c / N times (equal chunks: each exactly once), which removes most of
    the chunk-to-chunk variance that independent draws would leave (two ``rng`` calls).
    """
    n_chunks, n_samples = points.n_chunks, points.shape[0]
    rows = np.floor((np.arange(n_chunks) + rng.random()) * (n_samples / n_chunks))
    rows = np.minimum(rows.astype(np.int64), n_samples - 1)
    chunks = np.searchsorted(points.bounds, rows, side="right") - 1
    return rng.permutation(chunks)


def init_sample(points: ChunkedPoints, size: int = INIT_SAMPLE_SIZE) -> np.ndarray:
    """Rows ``floor(i N / m)``, i = 0..m-1, m = min(N, ``size``), as float64 (in memory).

    The k-means++, random-point and ADVI starts draw from these rows; every row when
    N <= ``size``. Read once per ChunkedPoints (one task per chunk, each returning its
    rows of the subsample) and kept for the restarts.
    """
    if "init_sample" in points.cache:
        return points.cache["init_sample"]
    n_samples = points.shape[0]
    m = min(n_samples, size)
    index = (np.arange(m, dtype=np.int64) * n_samples) // m
    bounds = np.asarray(points.bounds)
    chunk_of = np.searchsorted(bounds, index, side="right") - 1
    local = [index[chunk_of == c] - bounds[c] for c in range(points.n_chunks)]
    if points.is_dask:
        import dask

        tasks = [
            dask.delayed(apply_rows, pure=False)(_identity, b, rows)
            for b, rows in zip(chunk_blocks(points), local, strict=True)
        ]
        parts = list(dask.compute(*tasks))
    else:
        parts = [
            np.asarray(points.source[points.bounds[c] : points.bounds[c + 1]][rows], np.float64)
            for c, rows in enumerate(local)
        ]
    sample = np.ascontiguousarray(np.concatenate(parts), dtype=np.float64)
    points.cache["init_sample"] = sample
    return sample
