"""CAVI, EM and SVI on chunked data: the per-chunk pass, mapped and reduced in a fixed tree.

A :class:`~ppl_mixtures.validation.chunked.ChunkedPoints` (a dask array, or an in-memory
array cut into chunks by the engines' ``chunk_size=`` option) goes through the same
functions as an in-memory array: ``stats.one_pass``, ``stats_full.full_pass`` and the
hard-assignment statistics of the start see it and call :func:`map_reduce` here, which

1. applies the numba pass (the same ``pass_numba`` / ``pass_full_numba`` the in-memory fit
   runs) to every chunk, with the current global factors as arguments (a few K x D
   arrays: the broadcast), on one numba thread per chunk -- the chunks run in parallel
   instead (dask's threads or workers; a thread pool for in-memory chunks);
2. combines the per-chunk :class:`SufficientStats` (or ``FullStats``) in a fixed binary tree
   over the chunk index (:func:`combine_stats`, Chan et al. 1979's pairwise update of
   counts, means and scatter; entropy and log-normalizer add), on the caller's side.

Only the statistics travel: with ``dask.distributed`` the chunks stay on the workers
(``points.persist()``), each task returns a few hundred bytes. The result depends only on
the chunking, never on which chunk finished first, so an in-memory fit with
``chunk_size=c`` and a dask array of row chunks of c give identical numbers, bit for bit.

Also here: the start's data (:func:`init_sample`, a deterministic subsample by index for
k-means++; it lives in ``validation.chunked`` with the other chunk readers, which minibatch
ADVI shares), EM's data moments (:func:`data_moments`) and SVI's minibatch from one chunk
(:func:`minibatch`). The global updates never change: they run on the reduced statistics.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ppl_mixtures.kernels.estep import SufficientStats
from ppl_mixtures.kernels.estep_full import FullStats
from ppl_mixtures.validation.chunked import (
    CHUNKED_ENGINES,
    INIT_SAMPLE_SIZE,
    ChunkedPoints,
    DataMoments,
    chunk_blocks,
    chunk_moments,
    combine_moments,
    in_memory_chunks,
    init_sample,
    tree_reduce,
)

__all__ = [
    "CHUNKED_ENGINES",
    "INIT_SAMPLE_SIZE",
    "ChunkedPoints",
    "chunk_backend",
    "combine_stats",
    "data_moments",
    "init_sample",
    "map_chunks",
    "map_reduce",
    "minibatch",
    "prepare",
]


def chunk_backend(backend: str) -> str:
    """The pass each chunk runs: one numba thread ("numba_parallel" -> "numba"), since the
    chunks themselves run in parallel; "numba" and "numpy" as asked."""
    return "numba" if backend == "numba_parallel" else backend


def prepare(points: Any, chunk_size: int | None) -> Any:
    """What an engine iterates on: ``points`` itself, or chunks of ``chunk_size`` rows.

    An in-memory array with ``chunk_size`` becomes a :class:`ChunkedPoints` view (no copy);
    chunked data with ``chunk_size`` are re-chunked to it (dask: ``rechunk``); chunked data
    without it keep their chunks.
    """
    if chunk_size is None:
        return points
    if isinstance(points, ChunkedPoints):
        if not points.is_dask:
            return in_memory_chunks(points.source, chunk_size)
        from ppl_mixtures.validation.chunked import validate_chunks

        return validate_chunks(points.source.rechunk({0: chunk_size, 1: -1}))
    return in_memory_chunks(np.asarray(points), chunk_size)


def _apply(fn: Callable[[np.ndarray], Any], block: Any) -> Any:
    """``fn`` of one chunk as C-ordered float64 (no copy for the chunks of a C-ordered
    array or a zarr store): every path hands the pass the same bytes in the same layout."""
    return fn(np.ascontiguousarray(block, dtype=np.float64))


def _apply_rows(fn: Callable[[np.ndarray], Any], block: Any, rows: np.ndarray) -> Any:
    return fn(np.ascontiguousarray(np.asarray(block)[rows], dtype=np.float64))


_dask_blocks = chunk_blocks  # one delayed object per chunk (validation.chunked)


def map_chunks[T](points: ChunkedPoints, fn: Callable[[np.ndarray], T]) -> list[T]:
    """``fn`` of every chunk, in chunk order.

    A dask array: one task per chunk through ``dask.compute`` (the default scheduler: dask's
    threads, or the active ``dask.distributed`` Client); ``fn`` and its arguments travel with
    the task, the chunk does not. In memory: a thread pool over the chunks (the numba
    passes release the GIL).
    """
    if points.is_dask:
        import dask

        tasks = [dask.delayed(_apply, pure=False)(fn, b) for b in _dask_blocks(points)]
        return list(dask.compute(*tasks))
    source = points.source
    bounds = points.bounds
    blocks = [source[a:b] for a, b in itertools.pairwise(bounds)]
    workers = min(len(blocks), os.cpu_count() or 1)
    if workers <= 1:
        return [_apply(fn, block) for block in blocks]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda block: _apply(fn, block), blocks))


def map_reduce[S: (SufficientStats, FullStats)](
    points: ChunkedPoints, fn: Callable[[np.ndarray], S]
) -> S:
    """``fn`` (a pass returning statistics) on every chunk, combined by :func:`combine_stats`
    in the fixed tree of ``validation.chunked.tree_reduce``."""
    return tree_reduce(map_chunks(points, fn), combine_stats)


def combine_stats[S: (SufficientStats, FullStats)](a: S, b: S) -> S:
    """The statistics of two disjoint sets of points from theirs (pairwise, Chan et al. 1979).

    N = N_a + N_b; x̄ = x̄_a + d N_b / N with d = x̄_b - x̄_a; S = (N_a S_a + N_b S_b
    + d d^T N_a N_b / N) / N (diagonal statistics: d^2 per feature); entropy and
    sum_log_norm add. A component empty in both keeps x̄_a and S = 0.
    """
    counts = a.counts + b.counts
    occupied = counts > 0.0
    safe = np.where(occupied, counts, 1.0)
    delta = b.means - a.means
    frac_b = np.where(occupied, b.counts / safe, 0.0)
    means = a.means + delta * frac_b[:, None]
    cross = np.where(occupied, a.counts * b.counts / safe, 0.0)
    if isinstance(a, FullStats):
        outer = delta[:, :, None] * delta[:, None, :]
        total = a.counts[:, None, None] * a.scatter + b.counts[:, None, None] * b.scatter
        scatter = (total + outer * cross[:, None, None]) / safe[:, None, None]
        return FullStats(
            counts, means, scatter, a.entropy + b.entropy, a.sum_log_norm + b.sum_log_norm
        )
    total = a.counts[:, None] * a.scatter + b.counts[:, None] * b.scatter
    scatter = (total + delta**2 * cross[:, None]) / safe[:, None]
    return SufficientStats(
        counts, means, scatter, a.entropy + b.entropy, a.sum_log_norm + b.sum_log_norm
    )


# ----------------------------------------------------------------- the start
def data_moments(points: ChunkedPoints) -> DataMoments:
    """The data's count, mean and scatter matrix (EM's start), from the validating pass or
    one pass now; the same tree over the same chunks either way."""
    if points.moments is not None:
        return points.moments
    if "moments" not in points.cache:
        points.cache["moments"] = tree_reduce(map_chunks(points, chunk_moments), combine_moments)
    return points.cache["moments"]


# ----------------------------------------------------------------- SVI's minibatch
def minibatch[T](
    points: ChunkedPoints,
    rng: np.random.Generator,
    batch_size: int,
    fn: Callable[[np.ndarray], T],
) -> T:
    """``fn`` of a minibatch drawn from one chunk: the chunk with probability n_c / N (one
    uniform row u of the N, the chunk holding it), then ``batch_size`` rows of that chunk
    uniformly with replacement, sorted. Each point is in the batch with the same expected
    multiplicity S / N as with whole-data sampling, so N / S times the batch's statistics
    stay unbiased. On dask one task, on the worker that holds the chunk.
    """
    n_samples = points.shape[0]
    row = int(rng.integers(0, n_samples))
    chunk = int(np.searchsorted(points.bounds, row, side="right") - 1)
    size = points.bounds[chunk + 1] - points.bounds[chunk]
    rows = np.sort(rng.integers(0, size, size=batch_size))
    if points.is_dask:
        import dask

        task = dask.delayed(_apply_rows, pure=False)(fn, _dask_blocks(points)[chunk], rows)
        return dask.compute(task)[0]
    block = points.source[points.bounds[chunk] : points.bounds[chunk + 1]]
    return _apply_rows(fn, block, rows)
