"""A fit's parameter draws as flat numpy arrays, and the chunking that bounds memory.

Every diagnostic (:mod:`ppl_mixtures.analysis.diagnostics`) works from the posterior draws
in ``fit.idata`` with numpy, so it serves every engine the same way. Draws are processed in
chunks so that memory stays near :data:`CHUNK_ELEMENTS` floats whatever the number of draws
and observations (4 chains x 1000 draws x 100 000 points would be 6.4 GB at once).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ppl_mixtures.results import MixtureFit
from ppl_mixtures.validation import check_points

__all__ = [
    "CHUNK_ELEMENTS",
    "check_fit",
    "check_fit_points",
    "chunks",
    "parameter_draws",
    "sd_slice",
]


#: Floats of the largest (draws, n_samples, n_components) block built at once (~32 MB).
CHUNK_ELEMENTS = 2**22


def check_fit(fit: Any) -> MixtureFit:
    """``fit`` itself when it is a MixtureFit; a TypeError naming what came otherwise."""
    if not isinstance(fit, MixtureFit):
        raise TypeError(
            f"fit: expected a MixtureFit, got {type(fit).__name__}. Pass the result "
            f"of ppl_mixtures.fit(...)."
        )
    return fit


def parameter_draws(fit: MixtureFit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fit's draws as flat arrays over (chain, draw).

    Returns
    -------
    weights : ndarray of shape (n_total, n_components)
    means : ndarray of shape (n_total, n_components, n_features)
    obs_sd : ndarray of shape (n_total, n_components, n_features) or (n_components, n_features)
        From the posterior when the spec learns it, else the spec's known value.
    """
    means = fit.draws("means")
    n_components, n_features = means.shape[2:]
    means = means.reshape(-1, n_components, n_features)
    post = fit.idata["posterior"]
    if "weights" in post.data_vars:
        weights = fit.draws("weights").reshape(-1, n_components)
    else:  # fixed weights that an engine did not store
        weights = np.broadcast_to(fit.spec.fixed_weight_values(), means.shape[:2])
    if fit.spec.learned_obs_sd:
        obs_sd = fit.draws("obs_sd").reshape(-1, n_components, n_features)
    else:
        obs_sd = fit.spec.known_obs_sd(n_features)
    return weights, means, obs_sd


def check_fit_points(fit: MixtureFit, points: Any) -> np.ndarray:
    """``points`` checked, with the fit's features, shape (n_samples, n_features); the fit's
    own data when None."""
    if points is None:
        return fit.points
    data = check_points(points)
    if data.shape[1] != fit.n_features:
        raise ValueError(
            f"points: expected {fit.n_features} features (the fit's data), got "
            f"{data.shape[1]}. Pass data with the columns the model was fitted "
            f"on, or points=None for the fit's own data."
        )
    return data


def chunks(n_total: int, per_draw: int) -> Iterator[slice]:
    """Slices of the draws 0..n_total-1 holding about :data:`CHUNK_ELEMENTS` floats each,
    ``per_draw`` floats per draw."""
    step = max(1, CHUNK_ELEMENTS // max(per_draw, 1))
    for start in range(0, n_total, step):
        yield slice(start, min(start + step, n_total))


def sd_slice(obs_sd: np.ndarray, chunk: slice) -> np.ndarray:
    """The chunk's obs_sd draws, or the known obs_sd (n_components, n_features) as it is."""
    return obs_sd[chunk] if obs_sd.ndim == 3 else obs_sd
