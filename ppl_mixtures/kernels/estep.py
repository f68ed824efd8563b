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
  are read once (in place when they are in Fortran order, as the engines' ``fit`` store
  them). Every loop is vectorized: exp and log are the polynomial versions of
  :mod:`ppl_mixtures.kernels.numba_math`, computed in base 2, and the logs of the normalizers are
  taken on products of 16 of them. ``cache=True`` stores the compiled code beside this
  file; the very first call of a fresh install compiles for a few seconds, later processes
  load the cache in ~0.1 s.

This module also holds the numpy helpers the engines share (initial centers).
Engines import this module; it imports no engine.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from scipy.special import logsumexp

from ppl_mixtures.kernels.numba_math import LN2, LOG2E, exp2_nonpositive, log_positive
from ppl_mixtures.validation import NumericalError

__all__ = [
    "BACKENDS",
    "PARALLEL_MIN_SAMPLES",
    "PassStats",
    "feature_major",
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


# The fused pass works in base 2: with l_ik = log2(e) log rho_ik (the caller's constants are
# scaled once), r_ik = 2^(l_ik - max_k l_ik) / sum_k(...), and the reduction of the exponent
# t = n + u needs no Cody-Waite split (t - round(t) is exact).
_BLOCK = 256                       # points per vectorized block (scratch stays in L1)
_LANES = 16                        # log(total) of 16 products of 16 totals each (in [1, K])
_FASTMATH = {"contract", "reassoc"}   # FMAs; reassociation vectorizes the block sums


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy")
def _pass_chunks(rows, cols, first, last, chunk, log2_const, centers, neg_half_prec2,
                 counts, sum_dev, sum_sq_dev, scalars):
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
    xt = np.empty((n_features, _BLOCK))            # the block, feature-major (rows input)
    log_r = np.empty((n_components, _BLOCK))       # l = log2 rho, then l - max_k l
    resp = np.empty((n_components, _BLOCK))        # 2^(l - max), then r
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
                block = rows[b:b + size]
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
                    x0 = cols[d0, b:b + size] if use_cols else xt[d0, :size]
                    x1 = cols[d1, b:b + size] if use_cols else xt[d1, :size]
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
            grouped = total[:n_full * _LANES].reshape((n_full, _LANES))
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
                    x0 = cols[d0, b:b + size] if use_cols else xt[d0, :size]
                    x1 = cols[d1, b:b + size] if use_cols else xt[d1, :size]
                    c0 = centers[k, d0]
                    c1 = centers[k, d1]
                    s10 = 0.0
                    s20 = 0.0
                    s11 = 0.0
                    s21 = 0.0
                    if p == 0:                 # r_ik = 2^(l - max) / total, kept for later pairs
                        for j in range(size):
                            r = rk[j] * total[j]
                            rk[j] = r
                            n_k += r
                            r_l += r * lk[j]   # r = 0 wherever 2^(l - max) underflowed
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
def _pass_parallel(n_tasks, rows, cols, chunk, log2_const, centers, neg_half_prec2,
                   counts, sum_dev, sum_sq_dev, scalars):
    """:func:`_pass_chunks` over all chunks, in ``n_tasks`` contiguous runs (one per thread)."""
    n_chunks = counts.shape[0]
    for task in numba.prange(n_tasks):
        _pass_chunks(rows, cols, task * n_chunks // n_tasks, (task + 1) * n_chunks // n_tasks,
                     chunk, log2_const, centers, neg_half_prec2, counts, sum_dev, sum_sq_dev,
                     scalars)


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
        return np.empty((0, n_features)), points.T             # (D, N) C-contiguous view
    return np.ascontiguousarray(points, dtype=np.float64), np.empty((n_features, 0))


def pass_numba(points, log_const, centers, precisions, *, parallel: bool = False) -> PassStats:
    """The fused pass (numba): same arguments and result as :func:`pass_numpy`.

    Per block of 256 points: K log-densities, their max, K exp, then the normalized
    responsibilities summed into the statistics, all in loops LLVM vectorizes (see
    :func:`_pass_chunks`). Data in Fortran order (``np.asfortranarray(points)``, what the
    engines' ``fit`` pass) are read in place; C-ordered data are transposed block by block,
    which costs about a third more time.

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
        points, log_const, centers, precisions,
        parallel and points.shape[0] >= PARALLEL_MIN_SAMPLES)
    sum_r_l, sum_best, sum_log_total = scalars.sum(axis=0)
    # sum_ik r log r = sum_ik r (log rho - max) - sum_i log total_i   (sum_k r_ik = 1)
    return PassStats(counts.sum(axis=0), sum_dev.sum(axis=0), sum_sq_dev.sum(axis=0),
                     float(LN2 * sum_r_l - sum_log_total),
                     float(LN2 * sum_best + sum_log_total))


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
    args = (_CHUNK, LOG2E * np.asarray(log_const, dtype=np.float64), centers,
            (-0.5 * LOG2E) * np.asarray(precisions, dtype=np.float64),
            counts, sum_dev, sum_sq_dev, scalars)
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
    _run(np.zeros((2, n_features)), np.zeros(n_components), centers, np.ones_like(centers),
         parallel)


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
    scaled = _overflow_safe(points)
    first = rng.integers(n_samples)
    chosen = [first]
    closest = np.sum((scaled - scaled[first]) ** 2, axis=1)
    for _ in range(1, n_components):
        total = closest.sum()
        if total > 0:
            index = rng.choice(n_samples, p=closest / total)
        else:  # all points coincide with the centers already chosen
            index = rng.integers(n_samples)
        chosen.append(index)
        np.minimum(closest, np.sum((scaled - scaled[index]) ** 2, axis=1), out=closest)
    return points[chosen].copy()


def _overflow_safe(points: np.ndarray) -> np.ndarray:
    """``points``, or for huge values (> 1e100) the points times a power of two that brings
    them into [-1, 1]: k-means++'s probabilities are scale-invariant, and squared distances
    of raw values near 1e155 would overflow to inf (then NaN probabilities). Below 1e100
    nothing changes, so seeds give the same centers as before."""
    largest = float(np.max(np.abs(points))) if points.size else 0.0
    if largest <= 1e100:
        return points
    return points * 2.0 ** -int(np.frexp(largest)[1])


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
def best_restart(objectives: list[float]) -> int:
    """Index of the restart with the highest objective; NaN counts as -inf, ties go first."""
    values = [-np.inf if np.isnan(value) else value for value in map(float, objectives)]
    return max(range(len(values)), key=lambda j: values[j])


def check_finite(engine: str, arrays: dict, objective: float, objective_name: str) -> None:
    """Raise ``NumericalError`` when the kept restart's ``arrays`` (name -> array or None)
    or its objective are NaN/inf (before they are drawn from or stored, where numpy would
    raise its own, less helpful error)."""
    bad = [name for name, value in arrays.items()
           if value is not None and not np.all(np.isfinite(value))]
    if not np.isfinite(objective):
        bad.append(f"{objective_name} ({objective!r})")
    if bad:
        raise NumericalError(
            f"engine {engine!r} produced non-finite numbers in {', '.join(bad)}. Likely cause: "
            f"data far from the priors' scale (values whose squares overflow float64), or "
            f"priors at the edge of float64's range. Standardize the data (z, center, scale "
            f"= ppl_mixtures.datasets.standardize(points)) and use priors on that scale.")


def values_per_draw(points: np.ndarray, spec) -> int:
    """Floats one stored draw from q holds: means (K, D), weights (K), obs_sd (K, D)."""
    n_components, n_features = spec.n_components, points.shape[1]
    return n_components * (2 * n_features + 1)


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
