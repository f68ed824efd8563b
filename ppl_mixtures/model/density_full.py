"""The marginal mixture log-density with full-covariance components, z summed out.

    log p(x_n) = logsumexp_k [log w_k + log N(x_n | mu_k, Lambda_k^-1)]                    (1)
    log N(x | mu, Lambda^-1) = -D/2 log 2 pi + sum_i log L_ii - 1/2 ||L^T (x - mu)||^2      (2)

with Lambda_k = L_k L_k^T the precision matrix of component k and L_k its lower-triangular
Cholesky factor (positive diagonal). Only the lower triangle of each L_k is read: entries
above the diagonal are ignored by every function here (so the value and the gradient do not
depend on them). log |Lambda_k|^(1/2) = sum_i log L_k,ii: the log-determinant comes from the
diagonal of the factor, and no matrix is inverted or factorized.

This module holds the numpy reference :func:`full_mixture_logp` (tests, diagnostics; with
:func:`full_log_responsibilities`) and the
PyTensor versions: :func:`full_mixture_logp_pt` (the ``pm.CustomDist`` logp) and the plain
graph :func:`full_mixture_logp_pt_elementwise` it is checked against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import logsumexp

if TYPE_CHECKING:
    from pytensor.graph.basic import Variable

__all__ = [
    "LOG_2PI",
    "full_log_joint_components",
    "full_log_responsibilities",
    "full_mixture_logp",
    "full_mixture_logp_pt",
    "full_mixture_logp_pt_elementwise",
    "fused_full_mixture_logp",
]

LOG_2PI = float(np.log(2.0 * np.pi))


def _check_shapes(
    points: np.ndarray, weights: np.ndarray, means: np.ndarray, prec_chol: np.ndarray
) -> None:
    """ValueError naming the argument when the shapes of eq. (1)'s inputs disagree."""
    if points.ndim != 2:
        raise ValueError(
            f"points: expected an array of shape (n_samples, n_features), got shape "
            f"{points.shape}. Reshape 1-D data with points[:, None]."
        )
    n_features = points.shape[1]
    if means.ndim < 2 or means.shape[-1] != n_features:
        raise ValueError(
            f"means: expected shape (..., n_components, {n_features}) to match points, got "
            f"{means.shape}."
        )
    n_components = means.shape[-2]
    if weights.shape[-1:] != (n_components,):
        raise ValueError(
            f"weights: expected shape (..., {n_components}) to match means, got {weights.shape}."
        )
    if prec_chol.shape[-3:] != (n_components, n_features, n_features):
        raise ValueError(
            f"prec_chol: expected shape (..., {n_components}, {n_features}, {n_features}) "
            f"(one Cholesky factor of a precision matrix per component), got {prec_chol.shape}."
        )


def full_log_joint_components(
    points: ArrayLike, weights: ArrayLike, means: ArrayLike, prec_chol: ArrayLike
) -> np.ndarray:
    """log w_k + log N(x_n | mu_k, Lambda_k^-1), eq. (2), for every observation and component.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    weights : ndarray of shape (..., n_components)
        Leading dims batch over parameter draws.
    means : ndarray of shape (..., n_components, n_features)
    prec_chol : ndarray of shape (..., n_components, n_features, n_features)
        Lower-triangular Cholesky factors L_k of the precision matrices (Lambda_k = L_k L_k^T),
        positive diagonal; the upper triangle is ignored.

    Returns
    -------
    ndarray of shape (..., n_samples, n_components)
    """
    points = np.asarray(points, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    prec_chol = np.asarray(prec_chol, dtype=np.float64)
    _check_shapes(points, weights, means, prec_chol)
    chol = np.tril(prec_chol)
    with np.errstate(divide="ignore"):  # a zero weight is log 0 = -inf, which is correct
        log_w = np.log(weights)
    log_det_half = np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)  # (..., K)
    diff = points[:, None, :] - means[..., None, :, :]  # (..., N, K, D)
    z = np.einsum("...nki,...kij->...nkj", diff, chol)  # L^T (x - mu), row form
    log_comp = -0.5 * points.shape[1] * LOG_2PI + log_det_half[..., None, :] - 0.5 * (z**2).sum(-1)
    return log_w[..., None, :] + log_comp


def full_mixture_logp(
    points: ArrayLike, weights: ArrayLike, means: ArrayLike, prec_chol: ArrayLike
) -> np.ndarray:
    """Eq. (1): marginal log-density of each observation, full-covariance components.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    weights : ndarray of shape (..., n_components)
    means : ndarray of shape (..., n_components, n_features)
    prec_chol : ndarray of shape (..., n_components, n_features, n_features)
        Lower Cholesky factors of the precision matrices (upper triangle ignored).

    Returns
    -------
    ndarray of shape (..., n_samples)

    Examples
    --------
    >>> full_mixture_logp([[0.0, 0.0]], [1.0], [[0.0, 0.0]], [np.eye(2)]).round(6)
    array([-1.837877])
    """
    return logsumexp(full_log_joint_components(points, weights, means, prec_chol), axis=-1)


def full_log_responsibilities(
    points: ArrayLike, weights: ArrayLike, means: ArrayLike, prec_chol: ArrayLike
) -> np.ndarray:
    """log p(z_n = k | x_n, parameters) with full-covariance components, normalized in log space.

    Same arguments as :func:`full_mixture_logp`.

    Returns
    -------
    ndarray of shape (..., n_samples, n_components); ``exp`` of each row sums to 1.
    """
    log_joint = full_log_joint_components(points, weights, means, prec_chol)
    return log_joint - logsumexp(log_joint, axis=-1, keepdims=True)


# --------------------------------------------------------------------------- PyTensor
# PyTensor is imported inside the functions: importing this module stays numpy-only.


def full_mixture_logp_pt(value: Any, log_weights: Any, means: Any, prec_chol: Any) -> Variable:
    """Eq. (1) per observation as a PyTensor graph: the logp of a full-covariance CustomDist.

    Parameters
    ----------
    value : TensorVariable of shape (n_samples, n_features)
    log_weights : TensorVariable of shape (..., n_components)
        log w_k (not the weights).
    means : TensorVariable of shape (..., n_components, n_features)
    prec_chol : TensorVariable of shape (..., n_components, n_features, n_features)
        Lower-triangular Cholesky factors L_k of the precision matrices, positive diagonal;
        the upper triangle is ignored.

    Returns
    -------
    TensorVariable of shape (n_samples,)
        log p(x_n), one value per observation (LOO needs them).

    Notes
    -----
    Leading batch dimensions of length 1 (what ``pm.CustomDist`` with a signature passes)
    are dropped and the graph is one fused Op, :func:`fused_full_mixture_logp`, whose value
    and gradient are single-pass numba kernels (with both asked for, as NUTS and ADVI do, a
    graph rewrite computes them in one kernel call). Parameters that vary per observation (non-broadcastable batch dimensions)
    fall back to :func:`full_mixture_logp_pt_elementwise`, shape (..., N).
    """
    import pytensor.tensor as pt

    value = pt.as_tensor_variable(value)
    log_weights, means, prec_chol = (
        pt.as_tensor_variable(a) for a in (log_weights, means, prec_chol)
    )
    batch_free = (
        value.ndim == 2
        and all(log_weights.type.broadcastable[:-1])
        and all(means.type.broadcastable[:-2])
        and all(prec_chol.type.broadcastable[:-3])
    )
    if not batch_free:
        return full_mixture_logp_pt_elementwise(value, log_weights, means, prec_chol)
    log_weights = log_weights[(0,) * (log_weights.ndim - 1)]
    means = means[(0,) * (means.ndim - 2)]
    prec_chol = prec_chol[(0,) * (prec_chol.ndim - 3)]
    # a tied covariance may come as one (1, D, D) factor: give every component its copy
    prec_chol = pt.broadcast_to(prec_chol, (means.shape[0], means.shape[1], means.shape[1]))
    log_weights = pt.broadcast_to(log_weights, (means.shape[0],))
    return fused_full_mixture_logp(value, log_weights, means, prec_chol)


def full_mixture_logp_pt_elementwise(
    value: Any, log_weights: Any, means: Any, prec_chol: Any
) -> Variable:
    """Eq. (1) as a plain PyTensor graph (any batch shapes that broadcast); (..., N).

    Builds (N, K, D) and (N, K, D, D) temporaries: the reference the fused Op is checked
    against, and the baseline of benchmarks/bench_density_full.py.
    """
    import pytensor.tensor as pt
    from pytensor.gradient import zero_grad

    value = pt.as_tensor_variable(value)
    log_weights, means, prec_chol = (
        pt.as_tensor_variable(a) for a in (log_weights, means, prec_chol)
    )
    chol = pt.tril(prec_chol)
    log_det_half = pt.sum(pt.log(pt.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)  # (..., K)
    diff = value[..., :, None, :] - means[..., None, :, :]  # (..., N, K, D)
    z = pt.sum(diff[..., :, None] * chol[..., None, :, :, :], axis=-2)  # (..., N, K, D)
    n_features = value.shape[-1]
    log_comp = (
        -0.5 * pt.cast(n_features, "float64") * LOG_2PI
        + log_det_half[..., None, :]
        - 0.5 * pt.sum(z**2, axis=-1)
    )  # (..., N, K)
    # log-sum-exp written out: pt.logsumexp is an OpFromGraph whose compiled gradient does
    # not pickle (PyMC pickles compiled models for its sampling processes). The row maximum
    # is held constant for the gradient: the value does not depend on it.
    log_joint = log_weights[..., None, :] + log_comp
    top = zero_grad(pt.max(log_joint, axis=-1, keepdims=True))
    top = pt.switch(pt.isinf(top), 0.0, top)  # every term -inf: the result is -inf, not NaN
    return pt.log(pt.sum(pt.exp(log_joint - top), axis=-1)) + top[..., 0]


def fused_full_mixture_logp(value: Any, log_weights: Any, means: Any, prec_chol: Any) -> Variable:
    """Eq. (1) as one PyTensor Op with numba kernels (value and gradient).

    ``value`` (n_samples, n_features), ``log_weights`` (n_components,), ``means``
    (n_components, n_features), ``prec_chol`` (n_components, n_features, n_features); returns
    (n_samples,). :func:`ppl_mixtures.kernels.density_full_op.fused_full_mixture_logp`,
    imported on first use (it imports PyTensor and numba).
    """
    from ppl_mixtures.kernels.density_full_op import fused_full_mixture_logp as fused

    return fused(value, log_weights, means, prec_chol)
