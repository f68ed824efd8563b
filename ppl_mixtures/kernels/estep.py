"""The fused E-step pass for CAVI, SVI and EM, in numba: responsibilities -> sufficient statistics.

All three algorithms alternate a local step (the responsibilities r_ik of every point) and
a global step that needs only per-component statistics of r. Each engine writes its
local step as

    log rho_ik = log_const_k - 1/2 sum_d prec_kd (x_id - center_kd)^2           (*)
    r_ik       = exp(log rho_ik - logsumexp_k log rho_ik)

(EM: center = means, prec = 1/variance, log_const = log w_k + 1/2 sum_d log(prec_kd / 2 pi);
CAVI/SVI: center = E[mu], prec = E[tau], log_const from E[log w], E[log tau] and the
variance of q(mu), see ``inference/conjugate/meanfield.py``), and needs back a
:class:`SufficientStats` (Bishop 2006, eqs. 10.51-10.53, diagonal):

    N_k   = sum_i r_ik                              counts   (n_components,)
    x̄_kd  = sum_i r_ik x_id / N_k                   means    (n_components, n_features)
    S_kd  = sum_i r_ik (x_id - x̄_kd)^2 / N_k        scatter  (n_components, n_features)
    H[q(z)] = -sum_ik r_ik log r_ik                 entropy
    sum_i logsumexp_k log rho_ik                    sum_log_norm (EM: the log-likelihood)

``inference/conjugate/stats.py`` computes the same statistics in plain numpy, line by line
from the book; this module is the fast pass that meets the same contract (the property
test in tests/test_conjugate_core.py holds the two together). Its numerical tricks stay
inside it:

- sums are taken about ``center`` (the current estimate), not about zero, and turned into
  x̄ and S at the end: the subtraction then involves numbers of the size of the spread,
  not of the size of x^2, so data far from the origin keep their digits;
- one fused pass in blocks of 256 points, no N x K array; the data are read once (in place
  when they are in Fortran order, as the engines' ``fit`` store them, see
  :func:`feature_major`). Every loop is vectorized: exp and log are the polynomial versions
  of :mod:`ppl_mixtures.kernels.numba_math`, computed in base 2, and the logs of the
  normalizers are taken on products of 16 of them;
- chunks of 16,384 points are reduced in a fixed order, so one thread and many give
  identical numbers.

``cache=True`` stores the compiled code beside this file; the very first call of a fresh
install compiles for a few seconds, later processes load the cache in ~0.1 s.

About 430 lines, over the house's ~400 on purpose: one fused kernel whose loops are written
out (an inlined helper measured ~10% slower, see :func:`_pass_chunks`), with the driver and
the reduction that finish it; split, the pass would be read in pieces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ppl_mixtures.kernels.numba_math import LN2, LOG2E, exp2_nonpositive, log_positive

__all__ = [
    "PARALLEL_MIN_SAMPLES",
    "SufficientStats",
    "feature_major",
    "pass_numba",
    "warm_up",
]

# Chunks of points per parallel task. Results do not depend on the thread count: the
# chunk partials are always reduced in the same order.
_CHUNK = 16_384
#: Passes over at least this many points use all numba threads.
PARALLEL_MIN_SAMPLES = 200_000


@dataclass(frozen=True, slots=True, eq=False)
class SufficientStats:
    """What the global step of CAVI, SVI and EM needs from the responsibilities r.

    Bishop (2006), eqs. 10.51-10.53 with diagonal scatter (the same N_k, x̄_k, S_k as EM's
    eqs. 9.24-9.27). Where N_k = 0 (an empty component), x̄_k and S_k are 0 in the numpy
    reference and the pass's center here: every update multiplies them by N_k.

    Attributes
    ----------
    counts : ndarray of shape (n_components,)
        N_k = sum_i r_ik, the expected number of points in component k.
    means : ndarray of shape (n_components, n_features)
        x̄_kd = sum_i r_ik x_id / N_k.
    scatter : ndarray of shape (n_components, n_features)
        S_kd = sum_i r_ik (x_id - x̄_kd)^2 / N_k (>= 0).
    entropy : float
        H[q(z)] = -sum_ik r_ik log r_ik (>= 0), the entropy term of the ELBO.
    sum_log_norm : float
        sum_i logsumexp_k log rho_ik; EM's log-likelihood when rho is its joint.
    """

    counts: np.ndarray
    means: np.ndarray
    scatter: np.ndarray
    entropy: float
    sum_log_norm: float


# The fused pass works in base 2: with l_ik = log2(e) log rho_ik (the caller's constants are
# scaled once), r_ik = 2^(l_ik - max_k l_ik) / sum_k(...), and the reduction of the exponent
# t = n + u needs no Cody-Waite split (t - round(t) is exact).
_BLOCK = 256  # points per vectorized block (scratch stays in L1)
_LANES = 16  # log(total) of 16 products of 16 totals each (in [1, K])
_FASTMATH = {"contract", "reassoc"}  # FMAs; reassociation vectorizes the block sums


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy")
def _pass_chunks(
    rows,
    cols,
    first,
    last,
    chunk,
    log2_const,
    centers,
    neg_half_prec2,
    counts,
    sum_dev,
    sum_sq_dev,
    scalars,
):
    """Chunks ``first .. last - 1`` of ``chunk`` points; chunk c's sums go to row c.

    The data come either as ``rows`` (N, D), C order -- each block is then transposed into
    scratch -- or as ``cols`` (D, N), C order, read in place; the other one is empty.
    Every inner loop runs over the points of a block with unit stride, no branch and no
    cross-iteration dependency except sums, so LLVM vectorizes it (AVX-512 here).

    scalars[c] = (sum_ik r_ik (l_ik - max_k l_ik), sum_i max_k l_ik, sum_i log total_i),
    with l = log2 rho; base-2 units except the last (nats). The difference l - max is
    formed point by point (a sum of r l minus a sum of max would cancel catastrophically
    for far-out points).
    """
    n_components, n_features = centers.shape
    n_pairs = (n_features + 1) // 2
    use_cols = cols.shape[1] > 0
    n_samples = cols.shape[1] if use_cols else rows.shape[0]
    xt = np.empty((n_features, _BLOCK))  # the block, feature-major (rows input)
    log_r = np.empty((n_components, _BLOCK))  # l = log2 rho, then l - max_k l
    resp = np.empty((n_components, _BLOCK))  # 2^(l - max), then r
    best = np.empty(_BLOCK)
    total = np.empty(_BLOCK)
    lanes = np.empty(_LANES)
    for c in range(first, last):
        start = c * chunk
        stop = min(start + chunk, n_samples)
        sum_best = 0.0
        sum_r_l = 0.0
        sum_log_total = 0.0
        for b in range(start, stop, _BLOCK):
            size = min(_BLOCK, stop - b)
            if not use_cols:
                block = rows[b : b + size]
                for d in range(n_features):
                    for j in range(size):
                        xt[d, j] = block[j, d]
            # l_ik = log2_const_k + sum_d a_kd (x_id - c_kd)^2, features two at a time (a lone
            # last feature is paired with itself at a = 0): half the passes over l
            for k in range(n_components):
                lk = log_r[k]
                for p in range(n_pairs):
                    d0 = 2 * p
                    d1 = min(d0 + 1, n_features - 1)
                    x0 = cols[d0, b : b + size] if use_cols else xt[d0, :size]
                    x1 = cols[d1, b : b + size] if use_cols else xt[d1, :size]
                    c0 = centers[k, d0]
                    c1 = centers[k, d1]
                    a0 = neg_half_prec2[k, d0]
                    a1 = neg_half_prec2[k, d1] if d1 > d0 else 0.0
                    if p == 0:
                        const = log2_const[k]
                        for j in range(size):
                            dev0 = x0[j] - c0
                            dev1 = x1[j] - c1
                            lk[j] = const + a0 * dev0 * dev0 + a1 * dev1 * dev1
                    else:
                        for j in range(size):
                            dev0 = x0[j] - c0
                            dev1 = x1[j] - c1
                            lk[j] += a0 * dev0 * dev0 + a1 * dev1 * dev1
            for j in range(size):
                best[j] = log_r[0, j]
                total[j] = 0.0
            for k in range(1, n_components):
                lk = log_r[k]
                for j in range(size):
                    best[j] = lk[j] if lk[j] > best[j] else best[j]
            for k in range(n_components):
                lk = log_r[k]
                rk = resp[k]
                for j in range(size):
                    t = lk[j] - best[j]
                    lk[j] = t
                    e = exp2_nonpositive(t)
                    rk[j] = e
                    total[j] += e
            # sum_j log total_j: 16 lanes of products of 16 totals (each in [1, K]), 16 logs
            for i in range(_LANES):
                lanes[i] = 1.0
            n_full = size // _LANES
            grouped = total[: n_full * _LANES].reshape((n_full, _LANES))
            for g in range(n_full):
                for i in range(_LANES):
                    lanes[i] *= grouped[g, i]
            for j in range(n_full * _LANES, size):
                lanes[0] *= total[j]
            for i in range(_LANES):
                sum_log_total += log_positive(lanes[i])
            for j in range(size):
                total[j] = 1.0 / total[j]
                sum_best += best[j]
            for k in range(n_components):
                lk = log_r[k]
                rk = resp[k]
                n_k = 0.0
                r_l = 0.0
                # the pair set-up is written out as in the first loop on purpose: an inlined
                # helper returning the two slices measured ~10% slower
                for p in range(n_pairs):
                    d0 = 2 * p
                    d1 = min(d0 + 1, n_features - 1)
                    x0 = cols[d0, b : b + size] if use_cols else xt[d0, :size]
                    x1 = cols[d1, b : b + size] if use_cols else xt[d1, :size]
                    c0 = centers[k, d0]
                    c1 = centers[k, d1]
                    s10 = 0.0
                    s20 = 0.0
                    s11 = 0.0
                    s21 = 0.0
                    if p == 0:  # r_ik = 2^(l - max) / total, kept for later pairs
                        for j in range(size):
                            r = rk[j] * total[j]
                            rk[j] = r
                            n_k += r
                            r_l += r * lk[j]  # r = 0 wherever 2^(l - max) underflowed
                            w0 = r * (x0[j] - c0)
                            s10 += w0
                            s20 += w0 * (x0[j] - c0)
                            w1 = r * (x1[j] - c1)
                            s11 += w1
                            s21 += w1 * (x1[j] - c1)
                    else:
                        for j in range(size):
                            w0 = rk[j] * (x0[j] - c0)
                            s10 += w0
                            s20 += w0 * (x0[j] - c0)
                            w1 = rk[j] * (x1[j] - c1)
                            s11 += w1
                            s21 += w1 * (x1[j] - c1)
                    sum_dev[c, k, d0] += s10
                    sum_sq_dev[c, k, d0] += s20
                    if d1 > d0:
                        sum_dev[c, k, d1] += s11
                        sum_sq_dev[c, k, d1] += s21
                counts[c, k] += n_k
                sum_r_l += r_l
        scalars[c, 0] += sum_r_l
        scalars[c, 1] += sum_best
        scalars[c, 2] += sum_log_total


@numba.njit(cache=True, parallel=True)
def _pass_parallel(
    n_tasks,
    rows,
    cols,
    chunk,
    log2_const,
    centers,
    neg_half_prec2,
    counts,
    sum_dev,
    sum_sq_dev,
    scalars,
):
    """:func:`_pass_chunks` over all chunks, in ``n_tasks`` contiguous runs (one per thread)."""
    n_chunks = counts.shape[0]
    for task in numba.prange(n_tasks):
        _pass_chunks(
            rows,
            cols,
            task * n_chunks // n_tasks,
            (task + 1) * n_chunks // n_tasks,
            chunk,
            log2_const,
            centers,
            neg_half_prec2,
            counts,
            sum_dev,
            sum_sq_dev,
            scalars,
        )


def feature_major(points: np.ndarray) -> np.ndarray:
    """``points`` in Fortran order, the layout :func:`pass_numba` reads fastest (in place).

    One copy of the data (none if they are Fortran-ordered already); the engines' ``fit``
    make it once, before their many passes. The values and shape are unchanged.
    """
    return np.asfortranarray(points, dtype=np.float64)


def _layout(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) for :func:`_pass_chunks`: Fortran-ordered data are read in place."""
    n_features = points.shape[1]
    if points.flags.f_contiguous and points.dtype == np.float64:
        return np.empty((0, n_features)), points.T  # (D, N) C-contiguous view
    return np.ascontiguousarray(points, dtype=np.float64), np.empty((n_features, 0))


def pass_numba(
    points: np.ndarray,
    log_const: np.ndarray,
    centers: np.ndarray,
    precisions: np.ndarray,
    *,
    parallel: bool = False,
) -> SufficientStats:
    """The fused pass: the :class:`SufficientStats` of the responsibilities (*).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Fortran order (:func:`feature_major`, what the engines' ``fit`` pass) is read in
        place; C-ordered data are transposed block by block (slower: see the C-order row of
        reports/benchmarks/cavi_em.md).
    log_const : ndarray of shape (n_components,)
    centers, precisions : ndarray of shape (n_components, n_features)

    Returns
    -------
    SufficientStats
        The same statistics as ``inference.conjugate.stats.numpy_pass`` (to round-off).

    Notes
    -----
    Per block of 256 points: K log-densities, their max, K exp, then the normalized
    responsibilities summed into the statistics, all in loops LLVM vectorizes (see
    :func:`_pass_chunks`).

    With ``parallel=True`` and at least ``PARALLEL_MIN_SAMPLES`` points, the chunks are
    split between all numba threads (``numba.set_num_threads`` sets how many); otherwise
    one thread does them all. Each chunk's sums land in their own row and the rows are
    added in the same fixed order either way, so both give identical numbers. The engines
    default to ``backend="numba_parallel"``, like scikit-learn, which uses all cores; on a
    shared, loaded machine threads that wait for a core can make the parallel pass slower
    (measured with an earlier kernel: 82 ms vs 13 ms per 1e6 points at load 5.5 on 2 cores),
    and ``backend="numba"`` keeps it on one thread.
    """
    counts, sum_dev, sum_sq_dev, scalars = _run(
        points, log_const, centers, precisions, parallel and points.shape[0] >= PARALLEL_MIN_SAMPLES
    )
    counts, means, scatter, (sum_r_l, sum_best, sum_log_total) = _reduce_chunks(
        counts, sum_dev, sum_sq_dev, scalars, np.asarray(centers, dtype=np.float64)
    )
    # -sum_ik r log r = sum_i log total_i - sum_ik r (log rho - max)   (sum_k r_ik = 1)
    return SufficientStats(
        counts,
        means,
        scatter,
        float(sum_log_total - LN2 * sum_r_l),
        float(LN2 * sum_best + sum_log_total),
    )


@numba.njit(cache=True)
def _reduce_chunks(counts, sum_dev, sum_sq_dev, scalars, centers):
    """Add the chunks' rows in order, then turn the sums about the center c into x̄ and S.

    x̄ - c = sum r (x - c) / N and S = sum r (x - c)^2 / N - (x̄ - c)^2 (>= 0 up to
    rounding, clipped); an empty component (N = 0, both sums 0) gets x̄ = c and S = 0.
    One compiled call: the same dozen numpy calls on (K, D) arrays cost ~20 us per pass.
    """
    n_chunks, n_components = counts.shape
    n_features = centers.shape[1]
    total = np.zeros(n_components)
    means = np.empty((n_components, n_features))
    scatter = np.empty((n_components, n_features))
    sums = np.zeros(3)
    for c in range(n_chunks):
        for k in range(n_components):
            total[k] += counts[c, k]
        for j in range(3):
            sums[j] += scalars[c, j]
    for k in range(n_components):
        divisor = total[k] if total[k] > 0.0 else 1.0
        for d in range(n_features):
            first = 0.0
            second = 0.0
            for c in range(n_chunks):
                first += sum_dev[c, k, d]
                second += sum_sq_dev[c, k, d]
            shift = first / divisor
            means[k, d] = centers[k, d] + shift
            scatter[k, d] = max(second / divisor - shift * shift, 0.0)
    return total, means, scatter, sums


def _run(points, log_const, centers, precisions, parallel):
    """Per-chunk partial sums (counts, sum_dev, sum_sq_dev, scalars), one row per chunk."""
    rows, cols = _layout(points)
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    n_components, n_features = centers.shape
    n_chunks = max(1, -(-points.shape[0] // _CHUNK))
    counts = np.zeros((n_chunks, n_components))
    sum_dev = np.zeros((n_chunks, n_components, n_features))
    sum_sq_dev = np.zeros((n_chunks, n_components, n_features))
    scalars = np.zeros((n_chunks, 3))
    args = (
        _CHUNK,
        LOG2E * np.asarray(log_const, dtype=np.float64),
        centers,
        (-0.5 * LOG2E) * np.asarray(precisions, dtype=np.float64),
        counts,
        sum_dev,
        sum_sq_dev,
        scalars,
    )
    if parallel:
        _pass_parallel(numba.get_num_threads(), rows, cols, *args)
    else:
        _pass_chunks(rows, cols, 0, n_chunks, *args)
    return counts, sum_dev, sum_sq_dev, scalars


def warm_up(backend: str, n_samples: int, n_features: int, n_components: int) -> None:
    """Compile (first run of a fresh install) or load (~0.1 s) the pass ``backend`` will use.

    First compilation costs ~5 s for the one-thread pass and ~15 s for the parallel one
    (2 shared cores); ``cache=True`` keeps the machine code for later processes.
    """
    if backend == "numpy":
        return
    parallel = backend == "numba_parallel" and n_samples >= PARALLEL_MIN_SAMPLES
    centers = np.zeros((n_components, n_features))
    counts, sum_dev, sum_sq_dev, scalars = _run(
        np.zeros((2, n_features)), np.zeros(n_components), centers, np.ones_like(centers), parallel
    )
    _reduce_chunks(counts, sum_dev, sum_sq_dev, scalars, centers)
