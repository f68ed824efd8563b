"""The fused E-step pass with full covariances, in numba: responsibilities -> FullStats.

The full-covariance twin of :mod:`ppl_mixtures.kernels.estep`. Each engine writes its local
step as

    log rho_ik = log_const_k - 1/2 (x_i - c_k)^T P_k (x_i - c_k)                (*)
    r_ik       = exp(log rho_ik - logsumexp_k log rho_ik)

(EM: c = means, P = Sigma^-1, log_const = log w_k + 1/2 log det P_k - D/2 log 2 pi;
CAVI/SVI: c = E[mu], P = E[Lambda] = nu W, log_const from E[log w], E[log det Lambda] and
the covariance of q(mu)), and gets back a :class:`FullStats` (Bishop 2006, eqs.
10.51-10.53):

    N_k   = sum_i r_ik                                    counts   (K,)
    x̄_k   = sum_i r_ik x_i / N_k                          means    (K, D)
    S_k   = sum_i r_ik (x_i - x̄_k)(x_i - x̄_k)^T / N_k     scatter  (K, D, D)
    H[q(z)] = -sum_ik r_ik log r_ik                       entropy
    sum_i logsumexp_k log rho_ik                          sum_log_norm (EM's log-likelihood)

``inference/conjugate/stats_full.py`` computes the same in plain numpy; the property test
in tests/test_estep_full.py holds the two together. The tricks are those of ``estep.py``:

- P_k = L_k L_k^T (Cholesky, once per call, in numpy); the quadratic form is |L_k^T d|^2
  with d = x - c_k, D(D+1)/2 multiply-adds per point and component, no inverse;
- sums about the center c_k, turned into x̄ and S at the end (far-out data keep digits);
- blocks of 256 points, every inner loop over the points of a block (LLVM vectorizes it),
  exp and log from :mod:`ppl_mixtures.kernels.numba_math` in base 2;
- chunks of 16,384 points, each into its own row of partial sums, reduced in chunk order:
  one thread and many give identical numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ppl_mixtures.kernels.estep import PARALLEL_MIN_SAMPLES, feature_major
from ppl_mixtures.kernels.numba_math import LN2, LOG2E, exp2_nonpositive, log_positive

__all__ = ["FullStats", "cholesky_lower", "pass_full_numba", "warm_up_full"]

_CHUNK = 16_384  # points per parallel task (results do not depend on the thread count)
_BLOCK = 256  # points per vectorized block
_LANES = 16  # log(total) of 16 products of 16 totals each (in [1, K])
_FASTMATH = {"contract", "reassoc"}


@dataclass(frozen=True, slots=True, eq=False)
class FullStats:
    """What the global step needs from the responsibilities, full covariance.

    Bishop (2006), eqs. 10.51-10.53 (EM: eqs. 9.24-9.27). Where N_k = 0, x̄_k is the pass's
    center (numba) or 0 (numpy) and S_k = 0: every update multiplies them by N_k.

    Attributes
    ----------
    counts : ndarray of shape (n_components,)
        N_k = sum_i r_ik.
    means : ndarray of shape (n_components, n_features)
        x̄_k = sum_i r_ik x_i / N_k.
    scatter : ndarray of shape (n_components, n_features, n_features)
        S_k = sum_i r_ik (x_i - x̄_k)(x_i - x̄_k)^T / N_k, symmetric positive semi-definite.
    entropy : float
        -sum_ik r_ik log r_ik (>= 0).
    sum_log_norm : float
        sum_i logsumexp_k log rho_ik (EM: the log-likelihood).
    """

    counts: np.ndarray
    means: np.ndarray
    scatter: np.ndarray
    entropy: float
    sum_log_norm: float


def cholesky_lower(precisions: np.ndarray) -> np.ndarray:
    """L_k with P_k = L_k L_k^T for each of the (K, D, D) ``precisions``.

    Raises
    ------
    ValueError
        When a P_k is not symmetric positive definite (names the component).
    """
    precisions = np.asarray(precisions, dtype=np.float64)
    chol = np.empty_like(precisions)
    for k, matrix in enumerate(precisions):
        try:
            chol[k] = np.linalg.cholesky(matrix)
        except np.linalg.LinAlgError as err:
            raise ValueError(
                f"precisions: expected symmetric positive definite (D, D) matrices, but "
                f"component {k}'s is not (Cholesky failed). Check the covariance it came from "
                f"(e.g. add reg_covar to its diagonal)."
            ) from err
    return chol


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy")
def _pass_chunks(rows, cols, first, last, chunk, log2_const, centers, chol_t, out, scalars):
    """Chunks ``first .. last - 1``; chunk c's partial sums go to ``out[c]`` and ``scalars[c]``.

    ``chol_t[k]`` = sqrt(log2(e) / 2) L_k^T (upper triangular), so l_ik = log2 rho_ik =
    log2_const_k - |chol_t[k] d|^2. ``out[c, k]`` holds, flattened: N_k, then
    sum r d (D values), then sum r d d^T (upper triangle, row by row), d = x - c_k.
    scalars[c] = (sum r (l - max l), sum max l, sum log total) (base 2 except the last).
    """
    n_components, n_features = centers.shape
    use_cols = cols.shape[1] > 0
    n_samples = cols.shape[1] if use_cols else rows.shape[0]
    xt = np.empty((n_features, _BLOCK))
    dev = np.empty((n_features, _BLOCK))
    wdev = np.empty((n_features, _BLOCK))
    y = np.empty(_BLOCK)
    log_r = np.empty((n_components, _BLOCK))
    resp = np.empty((n_components, _BLOCK))
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
            if not use_cols:  # C-ordered input: transpose the block into scratch
                for j in range(size):
                    for d in range(n_features):
                        xt[d, j] = rows[b + j, d]
            for k in range(n_components):
                lk = log_r[k]
                for d in range(n_features):
                    xd = cols[d, b : b + size] if use_cols else xt[d, :size]
                    ck = centers[k, d]
                    for j in range(size):
                        dev[d, j] = xd[j] - ck
                const = log2_const[k]
                for j in range(size):
                    lk[j] = const
                last = n_features - 1
                for i in range(last):  # y_i = sum_{m >= i} U_im d_m, U = chol_t[k]
                    u = chol_t[k, i, i]
                    for j in range(size):
                        y[j] = u * dev[i, j]
                    for m in range(i + 1, last):
                        u = chol_t[k, i, m]
                        for j in range(size):
                            y[j] += u * dev[m, j]
                    u = chol_t[k, i, last]  # the last term, fused with l -= y_i^2
                    for j in range(size):
                        t = y[j] + u * dev[last, j]
                        lk[j] -= t * t
                u = chol_t[k, last, last]
                for j in range(size):
                    t = u * dev[last, j]
                    lk[j] -= t * t
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
            for i in range(_LANES):
                lanes[i] = 1.0
            n_full = size // _LANES
            for g in range(n_full):
                for i in range(_LANES):
                    lanes[i] *= total[g * _LANES + i]
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
                for j in range(size):
                    r = rk[j] * total[j]
                    rk[j] = r
                    n_k += r
                    r_l += r * lk[j]  # r = 0 wherever 2^(l - max) underflowed
                row = out[c, k]
                row[0] += n_k
                sum_r_l += r_l
                pos = 1 + n_features
                for d in range(n_features):
                    xd = cols[d, b : b + size] if use_cols else xt[d, :size]
                    ck = centers[k, d]
                    s1 = 0.0
                    for j in range(size):
                        dd = xd[j] - ck
                        dev[d, j] = dd
                        w = rk[j] * dd
                        wdev[d, j] = w
                        s1 += w
                    row[1 + d] += s1
                for d in range(n_features):
                    for e in range(d, n_features):
                        s2 = 0.0
                        for j in range(size):
                            s2 += wdev[d, j] * dev[e, j]
                        row[pos] += s2
                        pos += 1
        scalars[c, 0] += sum_r_l
        scalars[c, 1] += sum_best
        scalars[c, 2] += sum_log_total


@numba.njit(cache=True, parallel=True)
def _pass_parallel(n_tasks, rows, cols, chunk, log2_const, centers, chol_t, out, scalars):
    """:func:`_pass_chunks` over all chunks, in ``n_tasks`` contiguous runs (one per thread)."""
    n_chunks = out.shape[0]
    for task in numba.prange(n_tasks):
        _pass_chunks(
            rows,
            cols,
            task * n_chunks // n_tasks,
            (task + 1) * n_chunks // n_tasks,
            chunk,
            log2_const,
            centers,
            chol_t,
            out,
            scalars,
        )


@numba.njit(cache=True)
def _reduce_chunks(out, scalars, centers):
    """Add the chunks' rows in chunk order; sums about c -> x̄ and S (Chan et al. 1983).

    x̄ - c = sum r d / N, S = sum r d d^T / N - (x̄ - c)(x̄ - c)^T; an empty component gets
    x̄ = c and S = 0.
    """
    n_chunks, n_components, width = out.shape
    n_features = centers.shape[1]
    sums = np.zeros((n_components, width))
    tail = np.zeros(3)
    for c in range(n_chunks):
        for k in range(n_components):
            for i in range(width):
                sums[k, i] += out[c, k, i]
        for i in range(3):
            tail[i] += scalars[c, i]
    counts = np.empty(n_components)
    means = np.empty((n_components, n_features))
    scatter = np.empty((n_components, n_features, n_features))
    shift = np.empty(n_features)
    for k in range(n_components):
        counts[k] = sums[k, 0]
        divisor = counts[k] if counts[k] > 0.0 else 1.0
        for d in range(n_features):
            shift[d] = sums[k, 1 + d] / divisor
            means[k, d] = centers[k, d] + shift[d]
        pos = 1 + n_features
        for d in range(n_features):
            for e in range(d, n_features):
                value = sums[k, pos] / divisor - shift[d] * shift[e]
                if d == e:
                    value = max(value, 0.0)
                scatter[k, d, e] = value
                scatter[k, e, d] = value
                pos += 1
    return counts, means, scatter, tail


def _layout(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols): Fortran-ordered float64 data are read in place as a (D, N) view."""
    n_features = points.shape[1]
    if points.flags.f_contiguous and points.dtype == np.float64:
        return np.empty((0, n_features)), points.T
    return np.ascontiguousarray(points, dtype=np.float64), np.empty((n_features, 0))


def _run(points, log_const, centers, chol, parallel):
    """Per-chunk partial sums (out, scalars)."""
    rows, cols = _layout(points)
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    n_components, n_features = centers.shape
    n_chunks = max(1, -(-points.shape[0] // _CHUNK))
    width = 1 + n_features + n_features * (n_features + 1) // 2
    out = np.zeros((n_chunks, n_components, width))
    scalars = np.zeros((n_chunks, 3))
    chol_t = np.ascontiguousarray(np.sqrt(0.5 * LOG2E) * np.transpose(chol, (0, 2, 1)))
    args = (_CHUNK, LOG2E * np.asarray(log_const, dtype=np.float64), centers, chol_t, out, scalars)
    if parallel:
        _pass_parallel(numba.get_num_threads(), rows, cols, *args)
    else:
        _pass_chunks(rows, cols, 0, n_chunks, *args)
    return out, scalars, centers


def pass_full_numba(
    points: np.ndarray,
    log_const: np.ndarray,
    centers: np.ndarray,
    precisions: np.ndarray,
    *,
    parallel: bool = False,
) -> FullStats:
    """The fused full-covariance pass: the :class:`FullStats` of the responsibilities (*).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Fortran order (``feature_major``) is read in place; C order is transposed per block.
    log_const : ndarray of shape (n_components,)
    centers : ndarray of shape (n_components, n_features)
    precisions : ndarray of shape (n_components, n_features, n_features)
        Symmetric positive definite (else ValueError).
    parallel : bool
        Use all numba threads from ``PARALLEL_MIN_SAMPLES`` points; same numbers either way.

    Returns
    -------
    FullStats
        The statistics of ``stats_full.full_pass(..., backend="numpy")`` to round-off.
    """
    chol = cholesky_lower(precisions)
    out, scalars, centers = _run(
        points, log_const, centers, chol, parallel and points.shape[0] >= PARALLEL_MIN_SAMPLES
    )
    counts, means, scatter, (sum_r_l, sum_best, sum_log_total) = _reduce_chunks(
        out, scalars, centers
    )
    # -sum_ik r log r = sum_i log total_i - sum_ik r (log rho - max)   (sum_k r_ik = 1)
    return FullStats(
        counts,
        means,
        scatter,
        float(sum_log_total - LN2 * sum_r_l),
        float(LN2 * sum_best + sum_log_total),
    )


def warm_up_full(backend: str, n_samples: int, n_features: int, n_components: int) -> None:
    """Compile (first run) or load from numba's cache the pass ``backend`` will use."""
    if backend == "numpy":
        return
    parallel = backend == "numba_parallel" and n_samples >= PARALLEL_MIN_SAMPLES
    eye = np.broadcast_to(np.eye(n_features), (n_components, n_features, n_features))
    centers = np.zeros((n_components, n_features))
    out, scalars, centers = _run(
        feature_major(np.zeros((2, n_features))),
        np.zeros(n_components),
        centers,
        eye.copy(),
        parallel,
    )
    _reduce_chunks(out, scalars, centers)
