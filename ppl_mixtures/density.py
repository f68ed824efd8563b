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
