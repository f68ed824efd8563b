"""The local step with full covariances, in plain numpy: responsibilities -> FullStats.

The full-covariance twin of ``stats.py`` (read that first). Every engine writes its local
step as (Bishop 2006, eq. 9.23 for EM; eqs. 10.46-10.49 for CAVI)::

    log rho_nk = log_const_k - 1/2 (x_n - c_k)^T P_k (x_n - c_k)                (*)
    r_nk       = rho_nk / sum_j rho_nj          (in log space)

and its global step needs only (Bishop 2006, eqs. 10.51-10.53)::

    N_k = sum_n r_nk                                              (10.51)
    x̄_k = sum_n r_nk x_n / N_k                                    (10.52)
    S_k = sum_n r_nk (x_n - x̄_k)(x_n - x̄_k)^T / N_k               (10.53)

plus the entropy -sum r log r and sum_n log sum_k rho_nk (EM's log-likelihood).

:func:`numpy_full_pass` computes them as written; ``kernels/estep_full.py``
(``pass_full_numba``) is the fast pass meeting the same :class:`FullStats` contract, and
:func:`full_pass` chooses between them (tests/test_estep_full.py holds them together).
Tied and spherical covariances use the same statistics: a tied model passes K copies of
its one precision, a spherical one tau_k I.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ppl_mixtures.inference.conjugate import chunked
from ppl_mixtures.kernels.estep_full import FullStats, cholesky_lower, pass_full_numba
from ppl_mixtures.validation.chunked import ChunkedPoints

__all__ = [
    "BACKENDS",
    "FullStats",
    "full_pass",
    "full_stats",
    "hard_assignment_full_stats",
    "log_rho_full",
    "numpy_full_pass",
]

#: numba on one thread, numba on all threads (from ``PARALLEL_MIN_SAMPLES`` points), numpy.
BACKENDS = ("numba", "numba_parallel", "numpy")


def log_rho_full(
    points: np.ndarray, log_const: np.ndarray, centers: np.ndarray, precisions: np.ndarray
) -> np.ndarray:
    """The unnormalized log-responsibilities (*), shape (n_samples, n_components).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    log_const : ndarray of shape (n_components,)
    centers : ndarray of shape (n_components, n_features)
    precisions : ndarray of shape (n_components, n_features, n_features)
        Symmetric positive definite.
    """
    chol = cholesky_lower(precisions)  # P_k = L_k L_k^T: the form is |L_k^T (x - c_k)|^2
    dev = points[:, None, :] - centers[None, :, :]  # (N, K, D)
    proj = np.einsum("nkd,kde->nke", dev, chol)  # (L_k^T d)_e = sum_d d_d L_k[d, e]
    return log_const[None, :] - 0.5 * np.sum(proj**2, axis=2)


def full_stats(
    points: np.ndarray, resp: np.ndarray, *, entropy: float = 0.0, sum_log_norm: float = 0.0
) -> FullStats:
    """N_k, x̄_k, S_k of responsibilities ``resp`` (n_samples, n_components), eqs. 10.51-10.53.

    Two-pass (about x̄_k); an empty component (N_k = 0) gets x̄_k = 0 and S_k = 0.
    """
    counts = resp.sum(axis=0)  # (10.51)
    divisor = np.where(counts > 0.0, counts, 1.0)
    means = (resp.T @ points) / divisor[:, None]  # (10.52)
    n_components, n_features = means.shape
    scatter = np.empty((n_components, n_features, n_features))
    for k in range(n_components):  # (10.53)
        dev = points - means[k]
        scatter[k] = (resp[:, k, None] * dev).T @ dev / divisor[k]
        scatter[k] = 0.5 * (scatter[k] + scatter[k].T)
    return FullStats(counts, means, scatter, float(entropy), float(sum_log_norm))


def numpy_full_pass(
    points: np.ndarray, log_const: np.ndarray, centers: np.ndarray, precisions: np.ndarray
) -> FullStats:
    """The reference pass: log rho (*) -> r -> statistics, materializing (N, K, D)."""
    points = np.asarray(points, dtype=np.float64)
    log_rho = log_rho_full(points, np.asarray(log_const, dtype=np.float64), centers, precisions)
    log_norm = logsumexp(log_rho, axis=1)
    log_resp = log_rho - log_norm[:, None]
    resp = np.exp(log_resp)
    entropy = -float(np.sum(resp * log_resp, where=resp > 0))  # 0 log 0 = 0
    return full_stats(points, resp, entropy=entropy, sum_log_norm=float(log_norm.sum()))


def full_pass(
    points: np.ndarray,
    log_const: np.ndarray,
    centers: np.ndarray,
    precisions: np.ndarray,
    *,
    backend: str = "numba",
) -> FullStats:
    """The local step (*) and its :class:`FullStats`, on ``backend`` (one of :data:`BACKENDS`).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        ``kernels.estep.feature_major(points)`` (Fortran order) is read in place by numba.
    log_const : ndarray of shape (n_components,)
    centers : ndarray of shape (n_components, n_features)
    precisions : ndarray of shape (n_components, n_features, n_features)
        Symmetric positive definite (ValueError naming the component otherwise).
    backend : {"numba", "numba_parallel", "numpy"}

    Returns
    -------
    FullStats
        The same statistics on every backend, to round-off.
    """
    if backend not in BACKENDS:
        raise ValueError(
            f"backend: expected one of {BACKENDS}, got {backend!r}. Use backend='numba'."
        )
    if isinstance(points, ChunkedPoints):  # per chunk, combined in chunked's fixed tree
        per_chunk = chunked.chunk_backend(backend)
        return chunked.map_reduce(
            points,
            lambda block: full_pass(block, log_const, centers, precisions, backend=per_chunk),
        )
    if backend == "numpy":
        return numpy_full_pass(points, log_const, centers, precisions)
    return pass_full_numba(
        points, log_const, centers, precisions, parallel=backend == "numba_parallel"
    )


def hard_assignment_full_stats(points: np.ndarray, centers: np.ndarray) -> FullStats:
    """FullStats of r_nk = [k = argmin_j |x_n - c_j|^2] (the k-means start); entropy 0.

    ``sum_log_norm`` is left at 0 (there is no rho). Chunked ``points``: per chunk, combined
    in the fixed tree of ``chunked.map_reduce``.
    """
    if isinstance(points, ChunkedPoints):
        return chunked.map_reduce(points, lambda block: hard_assignment_full_stats(block, centers))
    n_components = centers.shape[0]
    labels = np.concatenate(
        [
            ((block[:, None, :] - centers[None]) ** 2).sum(axis=2).argmin(axis=1)
            for block in np.array_split(points, max(1, -(-points.shape[0] // 65_536)))
        ]
    )
    resp = np.zeros((points.shape[0], n_components))
    resp[np.arange(points.shape[0]), labels] = 1.0
    return full_stats(np.asarray(points, dtype=np.float64), resp)
