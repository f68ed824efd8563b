"""One pass over the data for CAVI, SVI and EM: log-responsibilities and sufficient statistics.

All three algorithms alternate a local step (responsibilities r_ik of every point) and a
global step that only needs per-component sums of r. Every engine writes its local step as

    log rho_ik = log_const_k - 1/2 sum_d prec_kd (x_id - center_kd)^2           (*)
    r_ik       = exp(log rho_ik - logsumexp_k log rho_ik)

(EM: center = means, prec = 1/variance, log_const = log w_k + 1/2 sum_d log(prec_kd / 2 pi);
CAVI: center = E[mu], prec = E[tau], log_const collects E[log w], E[log tau] and the
variance of q(mu), see ``cavi._log_rho_constants``), and needs back

    counts_k      = sum_i r_ik                          (n_components,)
    sum_dev_kd    = sum_i r_ik (x_id - center_kd)       (n_components, n_features)
    sum_sq_dev_kd = sum_i r_ik (x_id - center_kd)^2     (n_components, n_features)
    sum_r_log_r   = sum_ik r_ik log r_ik                (minus the entropy of q(z))
    sum_log_norm  = sum_i logsumexp_k log rho_ik        (EM: the log-likelihood)

The sums are taken about ``center`` (the current estimate) rather than about zero: the
M-step then subtracts numbers of the size of the spread, not of the size of x^2, so data
far from the origin keep their digits (sklearn sums x^2 and loses them).

Two backends compute exactly the same thing:

- :func:`pass_numpy`: the readable reference; materializes (N, K) arrays.
- :func:`pass_numba`: one fused pass in blocks of 256 points, no N x K array; the data
  are read once. exp is a vectorizable polynomial (:func:`_exp_reduced`, 2 ulp), the
  logs of the normalizers are taken on products of 32 of them. ``cache=True`` stores the compiled code beside this file;
  the very first call of a fresh install compiles for ~1-2 s, later processes load the
  cache in ~0.1 s.

This module also holds the numpy helpers the engines share (initial centers).
Engines import this module; it imports no engine.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from scipy.special import logsumexp

__all__ = [
    "BACKENDS",
    "PARALLEL_MIN_SAMPLES",
    "PassStats",
    "hard_assignment_stats",
    "kmeans_plusplus",
    "one_pass",
    "pass_numba",
    "pass_numpy",
    "random_points",
    "warm_up",
]

BACKENDS = ("numba", "numba_parallel", "numpy")

# Chunks of points per parallel task. Results do not depend on the thread count: the
# chunk partials are always reduced in the same order.
_CHUNK = 16_384
#: Passes over at least this many points use all numba threads.
PARALLEL_MIN_SAMPLES = 200_000


class PassStats(NamedTuple):
    """Sufficient statistics of one pass over the data (see the module docstring).

    Attributes
    ----------
    counts : ndarray of shape (n_components,)
    sum_dev : ndarray of shape (n_components, n_features)
    sum_sq_dev : ndarray of shape (n_components, n_features)
    sum_r_log_r : float
        sum_ik r_ik log r_ik (<= 0; minus the entropy of q(z)).
    sum_log_norm : float
        sum_i logsumexp_k log rho_ik.
    """

    counts: np.ndarray
    sum_dev: np.ndarray
    sum_sq_dev: np.ndarray
    sum_r_log_r: float
    sum_log_norm: float


def log_rho(points, log_const, centers, precisions):
    """The unnormalized log-responsibilities (*), shape (n_samples, n_components).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    log_const : ndarray of shape (n_components,)
    centers, precisions : ndarray of shape (n_components, n_features)
    """
    dev = points[:, None, :] - centers[None, :, :]                   # (N, K, D)
    return log_const[None, :] - 0.5 * np.einsum("nkd,kd->nk", dev**2, precisions)


def pass_numpy(points, log_const, centers, precisions) -> PassStats:
    """Reference implementation of the pass, in plain numpy (materializes (N, K, D)).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    log_const : ndarray of shape (n_components,)
    centers, precisions : ndarray of shape (n_components, n_features)

    Returns
    -------
    PassStats
    """
    dev = points[:, None, :] - centers[None, :, :]                   # (N, K, D)
    log_r = log_const[None, :] - 0.5 * np.einsum("nkd,kd->nk", dev**2, precisions)
    log_norm = logsumexp(log_r, axis=1)                               # (N,)
    log_r -= log_norm[:, None]                                        # normalized in log space
    resp = np.exp(log_r)
    return PassStats(counts=resp.sum(axis=0),
                     sum_dev=np.einsum("nk,nkd->kd", resp, dev),
                     sum_sq_dev=np.einsum("nk,nkd->kd", resp, dev**2),
                     sum_r_log_r=float(np.sum(resp * log_r, where=resp > 0)),
                     sum_log_norm=float(log_norm.sum()))


# exp(t) for t <= 0 as straight-line arithmetic, so that LLVM vectorizes it (numba has no
# SVML here; libm's scalar exp costs ~18 ns on this machine, this one ~1 ns per lane).
# Cody-Waite reduction t = n ln2 + u, |u| <= ln2/2, then the degree-12 Taylor polynomial
# of exp(u) (truncation < 2e-16 relative) and 2^n built from its bits. Below -708 the
# result is 0 (the true value < 3e-308 only matters next to exactly-zero responsibilities).
_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238       # ln 2 split so that n * _LN2_HI is exact for |n| < 2^21
_LN2_LO = 1.9082149292705877e-10
_EXP_FLOOR = -708.0
_BLOCK = 256                       # points per vectorized block (scratch stays in L1)
_LOG_GROUP = 32                    # totals multiplied before one log (each is in [1, K])


@numba.njit(cache=True, fastmath={"contract"}, nogil=True, inline="always")
def _exp_reduced(tc):
    """(mantissa, n) with exp(tc) = mantissa * 2^n, for _EXP_FLOOR <= tc <= 0."""
    n = np.floor(tc * _LOG2E + 0.5)
    u = (tc - n * _LN2_HI) - n * _LN2_LO
    p = 1.0 / 479001600.0                           # Horner: sum_{j<=12} u^j / j!
    p = p * u + 1.0 / 39916800.0
    p = p * u + 1.0 / 3628800.0
    p = p * u + 1.0 / 362880.0
    p = p * u + 1.0 / 40320.0
    p = p * u + 1.0 / 5040.0
    p = p * u + 1.0 / 720.0
    p = p * u + 1.0 / 120.0
    p = p * u + 1.0 / 24.0
    p = p * u + 1.0 / 6.0
    p = p * u + 0.5
    p = p * u + 1.0
    p = p * u + 1.0
    return p, (np.int64(n) + 1023) << 52


@numba.njit(cache=True, fastmath={"contract"}, nogil=True)
def _pass_chunk(points, start, stop, log_const, centers, neg_half_prec,
                counts, sum_dev, sum_sq_dev, scalars):
    """Accumulate points[start:stop] into the given partial sums (in place).

    Blocks of _BLOCK points are laid out feature-major so every inner loop runs over
    points with unit stride and no cross-iteration dependency (vectorizable without
    fastmath): sums go into per-lane accumulators that are reduced once at the end.
    """
    n_components, n_features = centers.shape
    xt = np.empty((n_features, _BLOCK))
    log_r = np.empty((n_components, _BLOCK))       # log rho, then log rho - max (floored)
    expo = np.empty((n_components, _BLOCK))        # exp mantissa, then r
    bits = np.empty((n_components, _BLOCK), dtype=np.int64)
    scale = bits.view(np.float64)                  # 2^n from its bits
    best = np.empty(_BLOCK)
    total = np.empty(_BLOCK)
    acc_n = np.zeros((n_components, _BLOCK))
    acc_dev = np.zeros((n_components, n_features, _BLOCK))
    acc_sq = np.zeros((n_components, n_features, _BLOCK))
    acc_rlr = np.zeros(_BLOCK)
    acc_best = np.zeros(_BLOCK)
    log_total_sum = 0.0
    for block_start in range(start, stop, _BLOCK):
        size = min(_BLOCK, stop - block_start)
        for j in range(size):
            for d in range(n_features):
                xt[d, j] = points[block_start + j, d]
        for k in range(n_components):
            for j in range(size):
                log_r[k, j] = log_const[k]
            for d in range(n_features):
                c = centers[k, d]
                a = neg_half_prec[k, d]
                for j in range(size):
                    dev = xt[d, j] - c
                    log_r[k, j] += a * dev * dev
        for j in range(size):
            best[j] = log_r[0, j]
            total[j] = 0.0
        for k in range(1, n_components):
            for j in range(size):
                best[j] = log_r[k, j] if log_r[k, j] > best[j] else best[j]
        for k in range(n_components):
            for j in range(size):
                t = log_r[k, j] - best[j]
                tc = t if t > _EXP_FLOOR else _EXP_FLOOR
                log_r[k, j] = tc
                expo[k, j], bits[k, j] = _exp_reduced(tc)
            for j in range(size):
                e = expo[k, j] * scale[k, j] if log_r[k, j] > _EXP_FLOOR else 0.0
                expo[k, j] = e
                total[j] += e
        # sum_i log(total_i) from products of _LOG_GROUP totals (each in [1, K])
        for g in range(0, size, _LOG_GROUP):
            prod = 1.0
            for j in range(g, min(g + _LOG_GROUP, size)):
                prod *= total[j]
            log_total_sum += np.log(prod)
        for j in range(size):
            total[j] = 1.0 / total[j]
            acc_best[j] += best[j]
        for k in range(n_components):
            for j in range(size):
                r = expo[k, j] * total[j]
                expo[k, j] = r
                acc_n[k, j] += r
                acc_rlr[j] += r * log_r[k, j]      # r = 0 wherever log_r was floored
            for d in range(n_features):
                c = centers[k, d]
                for j in range(size):
                    rd = expo[k, j] * (xt[d, j] - c)
                    acc_dev[k, d, j] += rd
                    acc_sq[k, d, j] += rd * (xt[d, j] - c)
    for k in range(n_components):
        counts[k] += acc_n[k].sum()
        for d in range(n_features):
            sum_dev[k, d] += acc_dev[k, d].sum()
            sum_sq_dev[k, d] += acc_sq[k, d].sum()
    # sum_ik r log r = sum_ik r (log rho - max) - sum_i log total_i   (sum_k r_ik = 1)
    scalars[0] += acc_rlr.sum() - log_total_sum
    scalars[1] += acc_best.sum() + log_total_sum


@numba.njit(cache=True, fastmath=False, parallel=True)
def _pass_parallel(points, log_const, centers, neg_half_prec, chunk):
    n_samples = points.shape[0]
    n_components, n_features = centers.shape
    n_chunks = (n_samples + chunk - 1) // chunk
    counts = np.zeros((n_chunks, n_components))
    sum_dev = np.zeros((n_chunks, n_components, n_features))
    sum_sq_dev = np.zeros((n_chunks, n_components, n_features))
    scalars = np.zeros((n_chunks, 2))
    for c in numba.prange(n_chunks):
        _pass_chunk(points, c * chunk, min((c + 1) * chunk, n_samples), log_const, centers,
                    neg_half_prec, counts[c], sum_dev[c], sum_sq_dev[c], scalars[c])
    # reduce in a fixed order: results do not depend on the number of threads
    return counts.sum(axis=0), sum_dev.sum(axis=0), sum_sq_dev.sum(axis=0), scalars.sum(axis=0)


@numba.njit(cache=True, fastmath=False)
def _pass_serial(points, log_const, centers, neg_half_prec, chunk):
    """:func:`_pass_parallel` in one thread, bit-for-bit the same sums."""
    n_samples = points.shape[0]
    n_components, n_features = centers.shape
    n_chunks = (n_samples + chunk - 1) // chunk
    counts = np.zeros((n_chunks, n_components))
    sum_dev = np.zeros((n_chunks, n_components, n_features))
    sum_sq_dev = np.zeros((n_chunks, n_components, n_features))
    scalars = np.zeros((n_chunks, 2))
    for c in range(n_chunks):
        _pass_chunk(points, c * chunk, min((c + 1) * chunk, n_samples), log_const, centers,
                    neg_half_prec, counts[c], sum_dev[c], sum_sq_dev[c], scalars[c])
    return counts.sum(axis=0), sum_dev.sum(axis=0), sum_sq_dev.sum(axis=0), scalars.sum(axis=0)


def pass_numba(points, log_const, centers, precisions, *, parallel: bool = False) -> PassStats:
    """The fused pass (numba): same arguments and result as :func:`pass_numpy`.

    Per block of points: K log-densities, their max, K exp, then the normalized
    responsibilities accumulated into per-lane sums. With ``parallel=True`` and at least
    ``PARALLEL_MIN_SAMPLES`` points, the chunks run on all numba threads
    (``numba.set_num_threads`` sets how many); otherwise one thread. Both sum the chunk
    partials in the same fixed order, so the numbers are identical. One thread is the
    default: on a shared, loaded machine, threads that wait for a core make the parallel
    pass slower (measured: 82 ms vs 13 ms per 1e6 points at load 5.5 on 2 cores).
    """
    use_parallel = parallel and points.shape[0] >= PARALLEL_MIN_SAMPLES
    run = _pass_parallel if use_parallel else _pass_serial
    counts, sum_dev, sum_sq_dev, scalars = run(
        points, np.ascontiguousarray(log_const, dtype=np.float64),
        np.ascontiguousarray(centers, dtype=np.float64),
        np.ascontiguousarray(-0.5 * np.asarray(precisions, dtype=np.float64)), _CHUNK)
    return PassStats(counts, sum_dev, sum_sq_dev, float(scalars[0]), float(scalars[1]))


def warm_up(backend: str, n_samples: int, n_features: int, n_components: int) -> None:
    """Compile (first run of a fresh install) or load (~0.1 s) the pass ``backend`` will use.

    First compilation costs ~5 s for the one-thread pass and ~15 s for the parallel one
    (2 shared cores); ``cache=True`` keeps the machine code for later processes.
    """
    if backend == "numpy":
        return
    points = np.zeros((2, n_features))
    centers = np.zeros((n_components, n_features))
    use_parallel = backend == "numba_parallel" and n_samples >= PARALLEL_MIN_SAMPLES
    run = _pass_parallel if use_parallel else _pass_serial
    run(points, np.zeros(n_components), centers, -0.5 * np.ones_like(centers), _CHUNK)


def _pass_numba_parallel(points, log_const, centers, precisions) -> PassStats:
    return pass_numba(points, log_const, centers, precisions, parallel=True)


_PASSES = {"numba": pass_numba, "numba_parallel": _pass_numba_parallel, "numpy": pass_numpy}


def one_pass(backend: str, points, log_const, centers, precisions) -> PassStats:
    """Dispatch to the backend's pass (``"numba"``, ``"numba_parallel"`` or ``"numpy"``)."""
    return _PASSES[backend](points, log_const, centers, precisions)


# ----------------------------------------------------------------- initial centers
def random_points(points: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """K distinct data points chosen uniformly (seed 002's start), shape (K, n_features)."""
    index = rng.choice(points.shape[0], size=n_components, replace=False)
    return points[index].copy()


def kmeans_plusplus(points: np.ndarray, n_components: int,
                    rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007), shape (K, n_features).

    Each next center is a data point drawn with probability proportional to its squared
    distance to the nearest center chosen so far (one greedy-free draw per center).
    """
    n_samples = points.shape[0]
    centers = np.empty((n_components, points.shape[1]))
    centers[0] = points[rng.integers(n_samples)]
    closest = np.sum((points - centers[0]) ** 2, axis=1)
    for k in range(1, n_components):
        total = closest.sum()
        if total > 0:
            index = rng.choice(n_samples, p=closest / total)
        else:  # all points coincide with the centers already chosen
            index = rng.integers(n_samples)
        centers[k] = points[index]
        np.minimum(closest, np.sum((points - centers[k]) ** 2, axis=1), out=closest)
    return centers


INITS = {"random_points": random_points, "kmeans++": kmeans_plusplus}


def hard_assignment_stats(points: np.ndarray, centers: np.ndarray) -> PassStats:
    """PassStats of r_ik = [k = argmin_j |x_i - c_j|^2] (no N x K array beyond one block)."""
    n_components, n_features = centers.shape
    counts = np.zeros(n_components)
    sum_dev = np.zeros((n_components, n_features))
    sum_sq_dev = np.zeros((n_components, n_features))
    for start in range(0, points.shape[0], 65_536):
        block = points[start:start + 65_536]
        dist = ((block[:, None, :] - centers[None]) ** 2).sum(axis=2)
        label = dist.argmin(axis=1)
        dev = block - centers[label]
        counts += np.bincount(label, minlength=n_components)
        for d in range(n_features):
            sum_dev[:, d] += np.bincount(label, dev[:, d], minlength=n_components)
            sum_sq_dev[:, d] += np.bincount(label, dev[:, d] ** 2, minlength=n_components)
    return PassStats(counts, sum_dev, sum_sq_dev, 0.0, 0.0)


# ----------------------------------------------------------------- restarts and progress
def restart_seeds(random_seed: int | None, n_seeds: int) -> list[int]:
    """``n_seeds`` independent integer seeds drawn from ``random_seed`` (reproducible)."""
    rng = np.random.default_rng(random_seed)
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=n_seeds)]


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *args, **kwargs):
        return 0

    def update(self, *args, **kwargs):
        return None


def progress_bar(enabled: bool):
    """A rich progress bar (``add_task`` / ``update``), or a silent stand-in when disabled."""
    if not enabled:
        return _NoProgress()
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total}"),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), transient=True)
