"""A fit's parameter draws as flat numpy arrays, and the chunking that bounds memory.

Every diagnostic (:mod:`ppl_mixtures.analysis.diagnostics`) works from the posterior draws
in ``fit.idata`` with numpy, so it serves every engine the same way. Draws are processed in
chunks so that memory stays near :data:`CHUNK_ELEMENTS` floats whatever the number of draws
and observations (4 chains x 1000 draws x 100 000 points would be 6.4 GB at once).

:class:`ParameterDraws` holds the covariances in one of two forms, whatever the covariance
type: ``obs_sd`` (diag and spherical: the diagonal density of ``model.density``, today's
numbers) or ``obs_cov`` (full and tied, learned or known: the full density of
``model.density_full``, through the Cholesky factors of the precision matrices).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ppl_mixtures.model.density import log_responsibilities, mixture_logp
from ppl_mixtures.model.density_full import full_log_responsibilities, full_mixture_logp
from ppl_mixtures.results import MixtureFit
from ppl_mixtures.validation import check_points

__all__ = [
    "CHUNK_ELEMENTS",
    "ParameterDraws",
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


@dataclass(frozen=True)
class ParameterDraws:
    """A fit's draws over (chain, draw), flattened, with its covariances in one form.

    Attributes
    ----------
    weights : ndarray of shape (n_total, n_components)
    means : ndarray of shape (n_total, n_components, n_features)
    obs_sd : ndarray of shape (n_total, n_components, n_features) or (n_components, n_features)
        Diagonal and spherical specs (learned draws, or the known value); None otherwise.
    obs_cov : ndarray of shape (n_total, n_components, n_features, n_features) or \
(n_components, n_features, n_features)
        Full and tied specs (learned draws, or the known matrix); None otherwise.
    """

    weights: np.ndarray
    means: np.ndarray
    obs_sd: np.ndarray | None = None
    obs_cov: np.ndarray | None = None

    @property
    def n_total(self) -> int:
        """The number of draws over all chains."""
        return int(self.weights.shape[0])

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[1])

    def _prec_chol(self, chunk: slice) -> np.ndarray:
        """Lower Cholesky factors L of the precisions, Lambda = Sigma^-1 = L L^T, of the
        chunk's draws (..., K, D, D) (the known matrix's as they are)."""
        cov = self.obs_cov
        assert cov is not None  # only called for full and tied draws
        cov = cov if cov.ndim == 3 else cov[chunk]
        precision = np.linalg.inv(cov)
        return np.linalg.cholesky(0.5 * (precision + np.swapaxes(precision, -1, -2)))

    def mixture_logp(self, data: np.ndarray, chunk: slice) -> np.ndarray:
        """log p(x_i | theta_s) of the chunk's draws, (b, n_samples)."""
        weights, means = self.weights[chunk], self.means[chunk]
        if self.obs_cov is None:
            return mixture_logp(data, weights, means, sd_slice(self.obs_sd, chunk))
        return full_mixture_logp(data, weights, means, self._prec_chol(chunk))

    def log_responsibilities(self, data: np.ndarray, chunk: slice) -> np.ndarray:
        """log p(z_i = k | x_i, theta_s) of the chunk's draws, (b, n_samples, n_components)."""
        weights, means = self.weights[chunk], self.means[chunk]
        if self.obs_cov is None:
            return log_responsibilities(data, weights, means, sd_slice(self.obs_sd, chunk))
        return full_log_responsibilities(data, weights, means, self._prec_chol(chunk))

    def select(self, index: np.ndarray) -> ParameterDraws:
        """The draws at ``index`` (an integer array over 0..n_total-1)."""

        def pick(array: np.ndarray | None, known_ndim: int) -> np.ndarray | None:
            if array is None or array.ndim == known_ndim:
                return array
            return array[index]

        return ParameterDraws(
            self.weights[index],
            self.means[index],
            pick(self.obs_sd, 2),
            pick(self.obs_cov, 3),
        )

    def noise(
        self, z: np.ndarray, index: slice | np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """x - means_z for x ~ Normal(means_z, Sigma_z): draw ``index[i]``, component ``z[i]``
        of each row (b, n) -> (b, n, D) (diagonal: sd * eps; full: chol(Sigma) eps)."""
        shape = (*z.shape, self.means.shape[-1])
        if self.obs_cov is None:
            sd = self.obs_sd
            assert sd is not None  # every ParameterDraws has obs_sd or obs_cov
            sd = sd if sd.ndim == 2 else sd[index]
            if sd.ndim == 2:
                sd = np.broadcast_to(sd, (z.shape[0], *sd.shape))
            scale = np.take_along_axis(sd, z[..., None], axis=1)
            return scale * rng.standard_normal(shape)
        cov = self.obs_cov if self.obs_cov.ndim == 3 else self.obs_cov[index]
        chol = np.linalg.cholesky(cov)  # (K, D, D) or (b, K, D, D)
        chol_z = chol[z] if chol.ndim == 3 else chol[np.arange(z.shape[0])[:, None], z]
        return np.einsum("bnij,bnj->bni", chol_z, rng.standard_normal(shape))


def parameter_draws(fit: MixtureFit) -> ParameterDraws:
    """The fit's draws as flat arrays over (chain, draw), for every covariance type.

    Weights from the posterior (the spec's fixed values when an engine did not store
    them); covariances as ``obs_sd`` for "diag" and "spherical" (learned draws, else the
    spec's known value) and as ``obs_cov`` for "full" and "tied" (the learned ``obs_cov``
    draws, else ``spec.known_obs_cov``).

    Returns
    -------
    ParameterDraws
    """
    means = fit.draws("means")
    n_components, n_features = means.shape[2:]
    means = means.reshape(-1, n_components, n_features)
    post = fit.idata["posterior"]
    if "weights" in post.data_vars:
        weights = fit.draws("weights").reshape(-1, n_components)
    else:  # fixed weights that an engine did not store
        weights = np.broadcast_to(fit.spec.fixed_weight_values(), means.shape[:2])
    spec = fit.spec
    if spec.covariance in ("full", "tied"):
        if spec.learned_covariance:
            obs_cov = fit.draws("obs_cov").reshape(-1, n_components, n_features, n_features)
        else:
            obs_cov = spec.known_obs_cov(n_features)
        return ParameterDraws(weights, means, obs_cov=obs_cov)
    if spec.learned_covariance:
        obs_sd = fit.draws("obs_sd").reshape(-1, n_components, n_features)
    else:
        obs_sd = spec.known_obs_sd(n_features)
    return ParameterDraws(weights, means, obs_sd=obs_sd)


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
