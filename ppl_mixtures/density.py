"""The marginal mixture log-density, with the assignments z summed out.

    log p(x_i | w, mu, sigma) = logsumexp_k [ log w_k + sum_d log N(x_id | mu_kd, sigma_kd^2) ]

This module holds the numpy reference (used by CAVI/EM tests, responsibilities and as the
oracle for the PyTensor version) and the PyTensor version that ``pm.CustomDist`` uses.
Everything stays in log space; nothing is exponentiated before it is normalized.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

__all__ = [
    "LOG_2PI",
    "log_joint_components",
    "log_responsibilities",
    "mixture_logp",
    "mixture_logp_pt",
]

LOG_2PI = float(np.log(2.0 * np.pi))


def _as_params(points, weights, means, obs_sd):
    points = np.asarray(points, dtype=np.float64)
    if points.ndim == 1:
        points = points[:, None]
    means = np.asarray(means, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if means.ndim == weights.ndim:  # 1-D data given as means of shape (..., K)
        means = means[..., None]
    obs_sd = np.broadcast_to(np.asarray(obs_sd, dtype=np.float64), means.shape)
    return points, weights, means, obs_sd


def log_joint_components(points, weights, means, obs_sd) -> np.ndarray:
    """log w_k + log N(x_i | mu_k, diag(sigma_k^2)) for every observation and component.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features) or (n_samples,)
    weights : ndarray of shape (..., n_components)
        Leading dims batch over parameter draws.
    means : ndarray of shape (..., n_components, n_features) or (..., n_components) for 1-D
    obs_sd : float or ndarray broadcastable to ``means``

    Returns
    -------
    ndarray of shape (..., n_samples, n_components)
    """
    points, weights, means, obs_sd = _as_params(points, weights, means, obs_sd)
    with np.errstate(divide="ignore"):  # a zero weight is log 0 = -inf, which is correct
        log_w = np.log(weights)
    diff = (points[..., :, None, :] - means[..., None, :, :]) / obs_sd[..., None, :, :]
    log_norm = -0.5 * LOG_2PI - np.log(obs_sd)                      # (..., K, D)
    log_comp = (log_norm[..., None, :, :] - 0.5 * diff**2).sum(-1)  # (..., N, K)
    return log_w[..., None, :] + log_comp


def mixture_logp(points, weights, means, obs_sd) -> np.ndarray:
    """Marginal log-density of each observation under the mixture.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features) or (n_samples,)
    weights : ndarray of shape (..., n_components)
    means : ndarray of shape (..., n_components, n_features)
    obs_sd : float, ndarray of shape (n_features,) or (..., n_components, n_features)

    Returns
    -------
    ndarray of shape (..., n_samples)
        One value per observation (LOO and WAIC need them separately).

    Examples
    --------
    >>> mixture_logp([[0.0]], [1.0], [[0.0]], 1.0).round(6)
    array([-0.918939])
    """
    return logsumexp(log_joint_components(points, weights, means, obs_sd), axis=-1)


def log_responsibilities(points, weights, means, obs_sd) -> np.ndarray:
    """log p(z_i = k | x_i, parameters), normalized in log space.

    Returns
    -------
    ndarray of shape (..., n_samples, n_components); ``exp`` of each row sums to 1.
    """
    log_joint = log_joint_components(points, weights, means, obs_sd)
    return log_joint - logsumexp(log_joint, axis=-1, keepdims=True)


# --------------------------------------------------------------------------- PyTensor
# The PyMC side. PyTensor is imported inside the functions, so ``import ppl_mixtures.density``
# stays a numpy-only import for CAVI, EM and the CLI.


def mixture_logp_pt(value, weights, means, obs_sd):
    """Marginal mixture log-density per observation, as a PyTensor graph.

    The ``logp`` of ``pm.CustomDist(..., signature="(k),(k,d),(k,d)->(d)")``. With a
    signature, PyMC passes the parameters with leading batch dimensions (typically of
    length 1) that broadcast against the observations, so every index below is written
    from the right with ``...``.

    Parameters
    ----------
    value : TensorVariable of shape (n_samples, n_features)
    weights : TensorVariable of shape (..., n_components)
    means : TensorVariable of shape (..., n_components, n_features)
    obs_sd : TensorVariable of shape (..., n_components, n_features)

    Returns
    -------
    TensorVariable of shape (n_samples,)
        log p(x_i | weights, means, obs_sd), one value per observation (LOO needs them).

    Notes
    -----
    log p(x_i) = logsumexp_k [log w_k + sum_d log N(x_id | mu_kd, sd_kd^2)]           (1)
    """
    import pytensor.tensor as pt

    value = pt.as_tensor_variable(value)
    weights, means, obs_sd = (pt.as_tensor_variable(a) for a in (weights, means, obs_sd))
    diff = (value[..., None, :] - means) / obs_sd                       # (N, K, D)
    log_comp = pt.sum(-0.5 * LOG_2PI - pt.log(obs_sd) - 0.5 * diff**2, axis=-1)  # (N, K)
    return pt.logsumexp(pt.log(weights) + log_comp, axis=-1)           # (N,)
