"""Private helpers shared by the PyMC engines (nuts, metropolis, advi, smc, ...).

- :func:`to_mixture_fit` turns a PyMC ``DataTree`` into a :class:`MixtureFit` in the shared
  schema (posterior ``means``/``weights``/``obs_sd`` with integer coords, observed_data
  ``x`` (obs, feature), optional log_likelihood ``x`` (chain, draw, obs), PyMC's
  sample_stats kept as they are).
- :func:`sampler_diagnostics` summarizes sample_stats (divergences, tree depth, acceptance,
  step size) as the :class:`~ppl_mixtures.results.SamplerStats` of ``MixtureFit.sampler``.
- :func:`pointwise_log_likelihood` computes log p(x_i | draw) with the numpy density, in
  chunks of draws (model-agnostic: it works for minibatch and latent models, where
  ``pm.compute_log_likelihood`` would score a batch or the conditional p(x | z)).
- :func:`values_per_draw` counts the floats a sampler stores per draw, for
  :func:`ppl_mixtures.validation.check_draws` (``draws=10**12`` refused before allocating).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ppl_mixtures.model.density import mixture_logp
from ppl_mixtures.model.density_full import full_mixture_logp
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import (
    PARAMETERS,
    EvidenceEstimate,
    MixtureFit,
    SamplerStats,
    Timings,
    make_idata,
)

__all__ = [
    "SAMPLE_STATS_PER_DRAW",
    "pointwise_log_likelihood",
    "sampler_diagnostics",
    "to_mixture_fit",
    "values_per_draw",
]

logger = logging.getLogger(__name__)

#: An upper bound on the sample statistics PyMC stores per draw and chain (NUTS writes 18
#: scalars with PyMC 6.4: acceptance_rate, diverging, energy, ..., tree_depth; Metropolis
#: fewer). tests/test_nuts.py checks it.
SAMPLE_STATS_PER_DRAW = 24


def values_per_draw(
    points: np.ndarray, spec: MixtureSpec, chains: int, *, log_likelihood: bool
) -> int:
    """float64 values a PyMC sampler stores per draw (over all chains), for
    :func:`~ppl_mixtures.validation.check_draws`: means, obs_sd and PyMC's other per-
    component variables (at most 4 * K * D + 2 * K: e.g. precisions, unconstrained copies),
    at most ``SAMPLE_STATS_PER_DRAW`` sample statistics, and with ``log_likelihood`` one
    value per observation."""
    n_samples, n_features = points.shape
    per_chain = spec.n_components * (4 * n_features + 2) + SAMPLE_STATS_PER_DRAW
    if spec.covariance in ("full", "tied"):  # obs_cov, obs_corr (K, D, D), Bartlett variables
        per_chain += spec.n_components * 3 * n_features * n_features
    if log_likelihood:
        per_chain += n_samples
    return chains * per_chain


def pointwise_log_likelihood(
    points: np.ndarray,
    means: np.ndarray,
    weights: np.ndarray,
    obs_sd: np.ndarray | None = None,
    *,
    prec_chol: np.ndarray | None = None,
    chunk_elements: int = 2_000_000,
) -> np.ndarray:
    """log p(x_i | weights, means, obs_sd or prec_chol) for every draw and observation.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    means : ndarray of shape (n_chains, n_draws, n_components, n_features)
    weights : ndarray of shape (n_chains, n_draws, n_components)
    obs_sd : ndarray of shape (n_chains, n_draws, n_components, n_features) or (K, D)
        Diagonal components; give this or ``prec_chol``.
    prec_chol : ndarray of shape (n_chains, n_draws, K, D, D) or (K, D, D), optional
        Full components: lower Cholesky factors of the precision matrices
        (:func:`ppl_mixtures.model.density_full.full_mixture_logp`).
    chunk_elements : int
        Draws are processed in chunks of about this many (draw, obs, component, feature)
        elements to bound memory.

    Returns
    -------
    ndarray of shape (n_chains, n_draws, n_samples)
    """
    n_chains, n_draws, n_components, n_features = means.shape
    density: Callable[..., np.ndarray]
    scale: np.ndarray
    if prec_chol is None:
        if obs_sd is None:
            raise ValueError(
                "obs_sd: expected the observation sds (diagonal components) or prec_chol "
                "(full components), got neither. Pass one of them."
            )
        scale = np.broadcast_to(obs_sd, means.shape).reshape(-1, n_components, n_features)
        density, width = mixture_logp, n_features
    else:
        shape = (*means.shape, n_features)
        scale = np.broadcast_to(prec_chol, shape).reshape(-1, n_components, n_features, n_features)
        density, width = full_mixture_logp, n_features * n_features
    flat = (means.reshape(-1, n_components, n_features), weights.reshape(-1, n_components), scale)
    step = max(1, chunk_elements // max(1, points.shape[0] * n_components * width))
    out = np.empty((n_chains * n_draws, points.shape[0]))
    for start in range(0, out.shape[0], step):
        part = slice(start, start + step)
        out[part] = density(points, flat[1][part], flat[0][part], flat[2][part])
    return out.reshape(n_chains, n_draws, points.shape[0])


def sampler_diagnostics(idata: Any) -> SamplerStats | None:
    """A summary of a PyMC sampler's ``sample_stats``, for ``MixtureFit.sampler``.

    Returns
    -------
    SamplerStats or None
        None when there are no sample_stats. Fields the sampler does not report stay None:
        ``divergences`` (int, total), ``max_treedepth_hits`` (int), ``mean_tree_depth``,
        ``mean_acceptance`` (NUTS ``acceptance_rate`` or Metropolis ``accepted``),
        ``step_size`` (per chain, after tuning).
    """
    if "sample_stats" not in idata.children:
        return None
    stats = idata["sample_stats"]
    names = set(stats.data_vars)
    found: dict[str, Any] = {}
    if "diverging" in names:
        found["divergences"] = int(np.asarray(stats["diverging"].values).sum())
    if "reached_max_treedepth" in names:
        found["max_treedepth_hits"] = int(np.asarray(stats["reached_max_treedepth"].values).sum())
    if "tree_depth" in names:
        found["mean_tree_depth"] = float(np.mean(stats["tree_depth"].values))
    for key in ("acceptance_rate", "accepted", "accept"):
        if key in names:
            found["mean_acceptance"] = float(np.mean(np.asarray(stats[key].values, dtype=float)))
            break
    if "step_size" in names:
        found["step_size"] = tuple(float(v) for v in np.asarray(stats["step_size"].values)[:, -1])
    return SamplerStats(
        n_chains=int(stats.sizes.get("chain", 0)), n_draws=int(stats.sizes.get("draw", 0)), **found
    )


#: Posterior variables :func:`make_idata` writes itself (PyMC's copies are dropped).
_SCHEMA_VARS = (*PARAMETERS, "obs_cov", "obs_corr")


def _covariance_draws(post: Any, spec: MixtureSpec) -> tuple[Any, Any]:
    """(obs_sd, obs_cov) from a PyMC posterior: obs_sd (chain, draw, K, D) for learned diag
    and spherical sds, obs_cov (chain, draw, K, D, D) for learned full and tied covariances;
    None for what the spec does not learn."""
    if not spec.learned_covariance:
        return None, None
    if spec.covariance in ("full", "tied"):
        dims = ("chain", "draw", "component", "feature", "feature_b")
        return None, np.asarray(post["obs_cov"].transpose(*dims).values)
    sd_dims = ("chain", "draw", "component", "feature")
    return np.asarray(post["obs_sd"].transpose(*sd_dims).values), None


def _log_likelihood(
    points: np.ndarray,
    spec: MixtureSpec,
    means: np.ndarray,
    weights: np.ndarray,
    obs_sd: np.ndarray | None,
    obs_cov: np.ndarray | None,
) -> np.ndarray:
    """Pointwise log p(x_i | draw), (chain, draw, obs), for the spec's covariance type."""
    n_features = points.shape[1]
    if spec.covariance == "full" and obs_cov is None:  # known full covariance
        obs_cov = spec.known_obs_cov(n_features)
    if obs_cov is not None:
        prec_chol = np.linalg.cholesky(np.linalg.inv(obs_cov))
        return pointwise_log_likelihood(points, means, weights, prec_chol=prec_chol)
    sd = obs_sd if obs_sd is not None else spec.known_obs_sd(n_features)
    return pointwise_log_likelihood(points, means, weights, sd)


def to_mixture_fit(
    engine: str,
    spec: MixtureSpec,
    points: np.ndarray,
    idata: Any,
    timings: Timings,
    *,
    options: Any,
    log_likelihood: bool = True,
    sampler: SamplerStats | None = None,
    evidence: EvidenceEstimate | None = None,
    details: Any = None,
    n_iter: int | None = None,
    converged: bool | None = None,
    attrs: Mapping[str, Any] | None = None,
    family: str = "mcmc",
) -> MixtureFit:
    """Normalize a PyMC result to the shared schema and wrap it in a :class:`MixtureFit`.

    Parameters
    ----------
    engine : str
    spec : MixtureSpec
    points : ndarray of shape (n_samples, n_features)
        The full data (stored as observed_data ``x``, whatever the model observed).
    idata : xarray.DataTree
        From ``pm.sample``/``approx.sample``/``pm.sample_smc``: a ``posterior`` with
        ``means`` (chain, draw, component, feature) and ``weights`` (chain, draw, component)
        (+ ``obs_sd`` for learned diagonal or spherical sds, ``obs_cov`` (chain, draw,
        component, feature, feature_b) for learned full and tied covariances, which
        :func:`~ppl_mixtures.results.make_idata` turns into ``obs_cov``, ``obs_sd`` and
        ``obs_corr``), as the builders in
        :mod:`ppl_mixtures.inference.pymc.models` name them. Other posterior variables
        (``means_first``, ``obs_precision``, ``z``...) are kept; ``sample_stats`` is kept
        as PyMC wrote it.
    timings : Timings
    options : dataclass instance or mapping
        The engine's options (its ``Options``), stored as a dict in ``MixtureFit.options``.
    log_likelihood : bool
        Add log_likelihood ``x`` (chain, draw, obs) of the *marginal* density (numpy,
        :func:`pointwise_log_likelihood`) so ``az.loo`` works. It holds chains x draws x
        n_samples floats: pass False for large data.
    sampler, evidence, details, n_iter, converged
        Passed to :class:`MixtureFit`.
    attrs : mapping, optional
        Set on the posterior group (PyMC's own posterior attrs, e.g. ``sampling_time``,
        are kept; ``engine`` is added).
    family : {"mcmc", "vi", "point"}
        Recorded as ``MixtureFit.family`` (the PyMC samplers are all "mcmc").

    Returns
    -------
    MixtureFit
    """
    post = idata["posterior"].to_dataset()
    means = np.asarray(post["means"].transpose("chain", "draw", "component", "feature").values)
    weights = np.asarray(post["weights"].transpose("chain", "draw", "component").values)
    obs_sd, obs_cov = _covariance_draws(post, spec)
    log_lik = None
    if log_likelihood:
        log_lik = _log_likelihood(points, spec, means, weights, obs_sd, obs_cov)
    sample_stats = None
    if "sample_stats" in idata.children:
        stats = idata["sample_stats"].to_dataset()
        sample_stats = {
            k: np.asarray(stats[k].values)
            for k in stats.data_vars
            if stats[k].dims[:2] == ("chain", "draw")
        }
    tree = make_idata(
        means,
        weights,
        points,
        obs_sd=obs_sd,
        sample_stats=sample_stats,
        log_likelihood=log_lik,
        attrs={**post.attrs, **dict(attrs or {}), "engine": engine},
        obs_cov=obs_cov,
        extra_posterior=post.drop_vars([v for v in _SCHEMA_VARS if v in post.data_vars]),
    )
    options = dataclasses.asdict(options) if dataclasses.is_dataclass(options) else options
    return MixtureFit(
        engine=engine,
        spec=spec,
        idata=tree,
        timings=timings,
        converged=converged,
        n_iter=n_iter,
        options=dict(options),
        family=family,
        sampler=sampler,
        evidence=evidence,
        details=details,
    )
