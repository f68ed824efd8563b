"""The local step shared by CAVI, SVI and EM, in plain numpy: responsibilities -> statistics.

Read this module first; ``meanfield.py`` (the global updates), ``elbo.py`` (the objective)
and ``pointmass.py`` (EM, the point-mass case) all start from the :class:`SufficientStats`
built here.

Every engine writes its local step in one form (Bishop 2006, eqs. 10.46-10.49 for CAVI;
eq. 9.23 for EM)::

    log rho_ik = log_const_k - 1/2 sum_d prec_kd (x_id - center_kd)^2            (*)
    r_ik       = rho_ik / sum_j rho_ij          (in log space: never exp before normalizing)

and its global step needs only (Bishop 2006, eqs. 10.51-10.53, diagonal)::

    N_k  = sum_i r_ik                           (10.51)
    x̄_k  = sum_i r_ik x_i / N_k                 (10.52)
    S_k  = sum_i r_ik (x_i - x̄_k)^2 / N_k       (10.53, per feature)

plus the entropy of q(z) (the ELBO's) and sum_i log sum_k rho_ik (EM's log-likelihood).

:func:`numpy_pass` computes them exactly as written, materializing the (n_samples,
n_components) responsibilities. ``kernels/estep.py`` (``pass_numba``) is the fast pass
that returns the same :class:`SufficientStats` without that array; :func:`one_pass`
chooses between them, and ``tests/test_conjugate_core.py`` checks that they agree.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ppl_mixtures.inference.conjugate import chunked
from ppl_mixtures.kernels.estep import SufficientStats, pass_numba
from ppl_mixtures.validation.chunked import ChunkedPoints

__all__ = [
    "BACKENDS",
    "SufficientStats",
    "hard_assignment_stats",
    "log_rho",
    "numpy_pass",
    "one_pass",
    "responsibilities",
    "scaled",
    "sufficient_stats",
    "weighted_sq_dev",
]

#: The implementations of the pass: numba on all threads (from ``PARALLEL_MIN_SAMPLES``
#: points), numba on one thread, or the numpy reference below.
BACKENDS = ("numba", "numba_parallel", "numpy")


def log_rho(
    points: np.ndarray, log_const: np.ndarray, centers: np.ndarray, precisions: np.ndarray
) -> np.ndarray:
    """The unnormalized log-responsibilities (*).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    log_const : ndarray of shape (n_components,)
    centers, precisions : ndarray of shape (n_components, n_features)

    Returns
    -------
    ndarray of shape (n_samples, n_components)
    """
    dev = points[:, None, :] - centers[None, :, :]  # (N, K, D)
    return log_const[None, :] - 0.5 * np.einsum("nkd,kd->nk", dev**2, precisions)


def responsibilities(log_rho: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalize log rho over the components (Bishop 2006, eq. 10.49).

    Parameters
    ----------
    log_rho : ndarray of shape (n_samples, n_components)

    Returns
    -------
    resp, log_resp : ndarray of shape (n_samples, n_components)
        r_ik (rows sum to 1) and log r_ik.
    log_norm : ndarray of shape (n_samples,)
        logsumexp_k log rho_ik.
    """
    log_norm = logsumexp(log_rho, axis=1)
    log_resp = log_rho - log_norm[:, None]
    return np.exp(log_resp), log_resp, log_norm


def sufficient_stats(
    points: np.ndarray, resp: np.ndarray, *, entropy: float = 0.0, sum_log_norm: float = 0.0
) -> SufficientStats:
    """N_k, x̄_k and S_k of responsibilities ``resp`` (Bishop 2006, eqs. 10.51-10.53).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    resp : ndarray of shape (n_samples, n_components)
    entropy, sum_log_norm : float
        Carried into the result (see :class:`SufficientStats`).

    Returns
    -------
    SufficientStats
        An empty component (N_k = 0) gets x̄_k = S_k = 0.
    """
    counts = resp.sum(axis=0)  # (10.51)
    divisor = np.where(counts > 0.0, counts, 1.0)
    means = (resp.T @ points) / divisor[:, None]  # (10.52)
    scatter = np.empty_like(means)
    for k in range(resp.shape[1]):  # (10.53), two-pass
        scatter[k] = resp[:, k] @ (points - means[k]) ** 2 / divisor[k]
    return SufficientStats(counts, means, scatter, float(entropy), float(sum_log_norm))


def numpy_pass(
    points: np.ndarray, log_const: np.ndarray, centers: np.ndarray, precisions: np.ndarray
) -> SufficientStats:
    """The local step written out: log rho (*) -> r -> statistics (the reference pass).

    Same arguments as :func:`log_rho`; materializes (n_samples, n_components, n_features).
    """
    resp, log_resp, log_norm = responsibilities(log_rho(points, log_const, centers, precisions))
    entropy = -float(np.sum(resp * log_resp, where=resp > 0))  # 0 log 0 = 0
    return sufficient_stats(points, resp, entropy=entropy, sum_log_norm=float(log_norm.sum()))


def one_pass(
    backend: str,
    points: np.ndarray,
    log_const: np.ndarray,
    centers: np.ndarray,
    precisions: np.ndarray,
) -> SufficientStats:
    """The local step on ``backend`` (one of :data:`BACKENDS`); same result to round-off.

    Chunked ``points`` (``ChunkedPoints``): this pass on every chunk (one numba thread
    each), the statistics combined in a fixed tree (``chunked.map_reduce``).
    """
    if isinstance(points, ChunkedPoints):
        per_chunk = chunked.chunk_backend(backend)
        return chunked.map_reduce(
            points, lambda block: one_pass(per_chunk, block, log_const, centers, precisions)
        )
    if backend == "numpy":
        return numpy_pass(points, log_const, centers, precisions)
    return pass_numba(points, log_const, centers, precisions, parallel=backend == "numba_parallel")


def weighted_sq_dev(stats: SufficientStats, loc: np.ndarray) -> np.ndarray:
    """sum_i r_ik (x_id - loc_kd)^2 = N_k (S_kd + (x̄_kd - loc_kd)^2), shape (K, D).

    The one place the weighted squared deviation about a new location is formed (q(tau)'s
    update, the ELBO's expected log-likelihood, EM's variances); both terms are >= 0, so
    nothing cancels.
    """
    return stats.counts[:, None] * (stats.scatter + (stats.means - loc) ** 2)


def scaled(stats: SufficientStats, factor: float) -> SufficientStats:
    """The statistics of ``factor`` copies of the data (SVI: a batch standing in for N points).

    Counts and the two sums over points scale; x̄ and S, being averages, do not.
    """
    return SufficientStats(
        stats.counts * factor,
        stats.means,
        stats.scatter,
        stats.entropy * factor,
        stats.sum_log_norm * factor,
    )


def hard_assignment_stats(points: np.ndarray, centers: np.ndarray) -> SufficientStats:
    """The statistics of r_ik = [k = argmin_j |x_i - c_j|^2] (k-means responsibilities).

    Starts of CAVI, SVI and EM; the entropy of a hard assignment is 0 and ``sum_log_norm``
    is left at 0 (there is no rho). No N x K array beyond one block of 65,536 points.
    Chunked ``points``: per chunk, combined in the fixed tree of ``chunked.map_reduce``.
    """
    if isinstance(points, ChunkedPoints):
        return chunked.map_reduce(points, lambda block: hard_assignment_stats(block, centers))
    n_components, n_features = centers.shape
    labels = np.concatenate(
        [
            ((block[:, None, :] - centers[None]) ** 2).sum(axis=2).argmin(axis=1)
            for block in np.array_split(points, max(1, -(-points.shape[0] // 65_536)))
        ]
    )
    counts = np.bincount(labels, minlength=n_components).astype(np.float64)
    divisor = np.where(counts > 0.0, counts, 1.0)
    means = np.empty((n_components, n_features))
    scatter = np.empty((n_components, n_features))
    for d in range(n_features):
        means[:, d] = np.bincount(labels, points[:, d], minlength=n_components) / divisor
        dev = points[:, d] - means[labels, d]
        scatter[:, d] = np.bincount(labels, dev * dev, minlength=n_components) / divisor
    return SufficientStats(counts, means, scatter, 0.0, 0.0)
