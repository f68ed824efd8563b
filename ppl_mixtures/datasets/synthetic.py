"""Data drawn from a Gaussian mixture (:func:`make_mixture`), and :func:`standardize`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ppl_mixtures import validation as v

__all__ = ["make_mixture", "standardize"]


# --------------------------------------------------------------------------- synthetic
def make_mixture(
    n_samples: int, means: Any, weights: Any, obs_sd: Any = 1.0, random_seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Draw points from a Gaussian mixture with diagonal covariances, with their labels.

    Parameters
    ----------
    n_samples : int
        Number of points, >= 1.
    means : array-like of shape (n_components, n_features) or (n_components,)
        Component means; 1-D means give 1-D data.
    weights : array-like of shape (n_components,)
        Mixture weights, >= 0, summing to 1.
    obs_sd : float, array-like of shape (n_features,) or (n_components, n_features)
        Per-feature standard deviations, > 0. With 1-D ``means`` an array of shape
        (n_components,) gives each component its own sd.
    random_seed : int, optional
        Seed of ``np.random.default_rng``.

    Returns
    -------
    points : ndarray of shape (n_samples, n_features), or (n_samples,) for 1-D ``means``
    labels : ndarray of int, shape (n_samples,)
        The component each point was drawn from.

    Examples
    --------
    >>> points, labels = make_mixture(500, [[-2.0, 0.0], [2.0, 0.0]], [0.3, 0.7], 0.5,
    ...                               random_seed=0)
    >>> points.shape, labels.shape
    ((500, 2), (500,))
    """
    n_samples = v.check_int("n_samples", n_samples, minimum=1)
    means_arr = _check_means(means)
    one_d = means_arr.ndim == 1
    means_arr = means_arr[:, None] if one_d else means_arr
    n_components, n_features = means_arr.shape
    weights_arr = _check_weights(weights, n_components)
    sd = _check_obs_sd(obs_sd, n_components, n_features, one_d)
    rng = np.random.default_rng(v.check_seed(random_seed))
    labels = rng.choice(n_components, size=n_samples, p=weights_arr)
    noise = rng.standard_normal((n_samples, n_features))
    points = means_arr[labels] + sd[labels] * noise
    return (points[:, 0] if one_d else points), labels


def _as_array(name: str, value: Any) -> np.ndarray:
    """np.asarray(value), with our message for ragged nested sequences."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{name}: expected a rectangular array of numbers, got a ragged nested "
            f"sequence ({v.describe(value)}). Make every row the same length."
        ) from err


def _check_means(means: Any) -> np.ndarray:
    """Means as float64 of shape (K, D) or (K,)."""
    arr = _as_array("means", means)
    if arr.dtype == bool or arr.dtype.kind in "mMc" or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(
            f"means: expected numbers of shape (n_components, n_features), got "
            f"{v.describe(means)}. Pass e.g. [[-1.0, 0.0], [1.0, 0.0]]."
        )
    arr = arr.astype(np.float64)
    if arr.ndim not in (1, 2) or arr.size == 0:
        raise ValueError(
            f"means: expected shape (n_components, n_features) or (n_components,), "
            f"got shape {arr.shape}. Pass one row per component."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"means: expected finite values, got {arr.tolist()}. Remove NaN/inf.")
    return arr


def _check_weights(weights: Any, n_components: int) -> np.ndarray:
    """Weights as float64 of shape (K,), >= 0, summing to 1."""
    arr = _as_array("weights", weights)
    if arr.dtype == bool or arr.dtype.kind in "mMc" or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(
            f"weights: expected {n_components} numbers summing to 1, got "
            f"{v.describe(weights)}. Pass e.g. {[round(1 / n_components, 3)] * n_components}."
        )
    arr = arr.astype(np.float64)
    if arr.shape != (n_components,):
        raise ValueError(
            f"weights: expected shape ({n_components},) (one per row of means), got "
            f"shape {arr.shape}. Pass one weight per component."
        )
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or not np.isclose(arr.sum(), 1.0):
        raise ValueError(
            f"weights: expected non-negative values summing to 1, got "
            f"{arr.tolist()} (sum {arr.sum():.6g}). Divide by their sum."
        )
    return arr / arr.sum()


def _check_obs_sd(obs_sd: Any, n_components: int, n_features: int, one_d: bool) -> np.ndarray:
    """obs_sd broadcast to (K, D), every entry finite and > 0."""
    arr = _as_array("obs_sd", obs_sd)
    if arr.dtype == bool or arr.dtype.kind in "mMc" or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(
            f"obs_sd: expected a positive number or array, got {v.describe(obs_sd)}. "
            f"Pass e.g. obs_sd=1.0."
        )
    arr = arr.astype(np.float64)
    if one_d and arr.shape == (n_components,):
        arr = arr[:, None]
    if arr.shape not in ((), (n_features,), (n_components, n_features)):
        raise ValueError(
            f"obs_sd: expected a scalar, shape ({n_features},) or "
            f"({n_components}, {n_features}), got shape {arr.shape}. Pass one sd, "
            f"one per feature, or one per component and feature."
        )
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(
            f"obs_sd: expected finite values > 0, got {arr.tolist()}. "
            f"Standard deviations must be positive."
        )
    return np.broadcast_to(arr, (n_components, n_features)).copy()


def standardize(points: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Center each feature at 0 and scale it to sd 1.

    Parameters
    ----------
    points : array-like of shape (n_samples, n_features) or (n_samples,)

    Returns
    -------
    z : ndarray of shape (n_samples, n_features)
        ``(points - center) / scale``; 1-D input becomes one column.
    center : ndarray of shape (n_features,)
        Feature means.
    scale : ndarray of shape (n_features,)
        Feature sds (ddof=0); 1.0 for a constant feature, so nothing is divided by zero.
        Map results back with ``means * scale + center`` and ``obs_sd * scale``.
    """
    arr = v.check_points(points)
    center = arr.mean(axis=0)
    scale = arr.std(axis=0)
    scale[scale == 0] = 1.0
    return (arr - center) / scale, center, scale
