"""Are the rows of chunked data in random order? A chi-square test on the chunk means.

Engines that draw a block of minibatches from one chunk (streamed ADVI,
``inference.pymc.advi``) are unbiased only in expectation over the chunks; when the chunks
hold different parts of the distribution (rows sorted by cluster, time or site) each block
optimises a different problem and the fit fails (docs/scaling.md measures it). The
validating pass already has every chunk's moments (``ChunkedPoints.chunk_stats``), so the
test costs nothing more than a few D x D products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppl_mixtures.validation.chunked import ChunkedPoints, combine_moments, tree_reduce

__all__ = ["CHUNK_ORDER_ALPHA", "ChunkOrderTest", "ChunkOrderWarning", "chunk_order_test"]


#: :func:`chunk_order_test` p-values below this count as "the rows are not in random order".
CHUNK_ORDER_ALPHA = 1e-6


class ChunkOrderWarning(UserWarning):
    """The chunks' means differ more than randomly ordered rows allow (sorted data): an
    engine that draws a block of minibatches from one chunk (streamed ADVI) is biased."""


@dataclass(frozen=True)
class ChunkOrderTest:
    """:func:`chunk_order_test`'s result: ``statistic`` ~ chi2(``dof``) under random row
    order, its upper-tail ``p_value``, and ``worst_chunk`` (the largest contribution)."""

    statistic: float
    dof: int
    p_value: float
    worst_chunk: int


def chunk_order_test(points: ChunkedPoints) -> ChunkOrderTest | None:
    """Are the rows in random order across the chunks? A test on the chunk means.

    With C chunks of n_c rows, chunk means m_c, overall mean m and covariance S (divisor
    N), the statistic ``(N - 1) / N * sum_c n_c (m_c - m)^T S^+ (m_c - m)`` is the between-
    chunk scatter in units of the data's covariance. When the N rows are split into the
    chunks at random, the expected between-chunk scatter is (C - 1) / (N - 1) times the
    total scatter, so the statistic has mean (C - 1) r (r = rank of S) and, by the central
    limit theorem over large chunks, is approximately chi2((C - 1) r). Rows sorted by
    cluster, time or site give a huge statistic. Needs the per-chunk moments of the
    validating pass; None when they are missing or there is one chunk.
    """
    stats = points.chunk_stats
    if stats is None or len(stats) < 2 or any(m is None for m in stats):
        return None
    total = tree_reduce(list(stats), combine_moments)
    covariance = total.covariance
    rank = int(np.linalg.matrix_rank(covariance))
    if rank == 0:
        return None
    precision = np.linalg.pinv(covariance)
    parts = np.array(
        [m.count * (m.mean - total.mean) @ precision @ (m.mean - total.mean) for m in stats]
    )
    statistic = float(parts.sum() * (total.count - 1.0) / total.count)
    dof = (len(stats) - 1) * rank
    from scipy.stats import chi2

    return ChunkOrderTest(statistic, dof, float(chi2.sf(statistic, dof)), int(np.argmax(parts)))
