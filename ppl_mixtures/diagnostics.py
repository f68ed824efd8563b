"""Diagnostics for any fit: responsibilities, MCMC summaries, LOO and posterior predictive.

Everything here works from the posterior draws in ``fit.idata`` with numpy, so it serves
every engine (NUTS, Metropolis, the latent-z Gibbs engine, ADVI, CAVI, EM) the same way:

- :func:`responsibilities`: posterior mean (and sd) of p(z_i = k | x_i, theta);
- :func:`log_likelihood` / :func:`add_log_likelihood`: per-observation log p(x_i | theta)
  for every draw (what ``az.loo`` needs), for fits that did not store it;
- :func:`mcmc_summary`: ``az.summary`` of the model parameters plus the sampler's own
  health (divergences, tree depth, acceptance);
- :func:`loo`: ``az.loo`` on the fit, with a clear error when there is no log-likelihood;
- :func:`posterior_predictive`: replicated data sets, one per posterior draw.

Draws are processed in chunks so that memory stays near ``_CHUNK_ELEMENTS`` floats whatever
the number of draws and observations (4 chains x 1000 draws x 100 000 points would be
6.4 GB at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .density import log_responsibilities, mixture_logp
from .results import MixtureFit
from .validation import check_int, check_points

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "McmcSummary",
    "add_log_likelihood",
    "log_likelihood",
    "loo",
    "mcmc_summary",
    "posterior_predictive",
    "responsibilities",
]

#: Floats of the largest (draws, n_samples, n_components) block built at once (~32 MB).
_CHUNK_ELEMENTS = 2**22


# ---------------------------------------------------------------- flat parameter draws
def _check_fit(fit: Any) -> MixtureFit:
    if not isinstance(fit, MixtureFit):
        raise TypeError(f"fit: expected a MixtureFit, got {type(fit).__name__}. Pass the result "
                        f"of ppl_mixtures.fit(...).")
    return fit


def _parameter_draws(fit: MixtureFit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _points(fit: MixtureFit, points: Any) -> np.ndarray:
    if points is None:
        return fit.points
    data = check_points(points)
    if data.shape[1] != fit.n_features:
        raise ValueError(f"points: expected {fit.n_features} features (the fit's data), got "
                         f"{data.shape[1]}. Pass data with the columns the model was fitted "
                         f"on, or points=None for the fit's own data.")
    return data


def _chunks(n_total: int, per_draw: int):
    step = max(1, _CHUNK_ELEMENTS // max(per_draw, 1))
    for start in range(0, n_total, step):
        yield slice(start, min(start + step, n_total))


def _sd_slice(obs_sd: np.ndarray, chunk: slice) -> np.ndarray:
    return obs_sd[chunk] if obs_sd.ndim == 3 else obs_sd


# ---------------------------------------------------------------- responsibilities
def responsibilities(fit: MixtureFit, points: Any = None, *,
                     return_sd: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Posterior mean of the assignment probabilities p(z_i = k | x_i, theta).

    For every draw theta_s = (weights, means, obs_sd) of the fit,

        r_ik(theta_s) = w_k N(x_i | mu_k, sigma_k^2) / sum_j w_j N(x_i | mu_j, sigma_j^2)   (1)

    is computed in log space (``density.log_responsibilities``), exponentiated only after
    normalization, and averaged over the draws: E[r_ik | x] = (1/S) sum_s r_ik(theta_s),
    which is p(z_i = k | x) under the posterior. The components keep the fit's labels:
    relabel the fit first (``ppl_mixtures.relabel``) if its chains use different labels,
    otherwise the average mixes components.

    Parameters
    ----------
    fit : MixtureFit
        Any engine's fit (a point estimate is one draw).
    points : array-like of shape (n_samples, n_features), optional
        Where to evaluate; the fit's own data when None.
    return_sd : bool
        Also return the sd of (1) over the draws (0 for a single draw).

    Returns
    -------
    resp : ndarray of shape (n_samples, n_components)
        Rows sum to 1.
    resp_sd : ndarray of shape (n_samples, n_components)
        Only when ``return_sd=True``.

    Examples
    --------
    >>> resp = responsibilities(relabel(nuts_fit))                # doctest: +SKIP
    >>> resp.argmax(1)                                            # hard assignments
    """
    fit = _check_fit(fit)
    data = _points(fit, points)
    weights, means, obs_sd = _parameter_draws(fit)
    n_total, n_components = weights.shape
    total = np.zeros((data.shape[0], n_components))
    mean = np.zeros_like(total)
    m2 = np.zeros_like(total)
    count = 0
    for chunk in _chunks(n_total, data.shape[0] * n_components):
        resp = np.exp(log_responsibilities(data, weights[chunk], means[chunk],
                                           _sd_slice(obs_sd, chunk)))  # (b, N, K)
        total += resp.sum(0)
        if return_sd:  # Chan et al.'s pairwise update of mean and sum of squares
            n_b = resp.shape[0]
            mean_b = resp.mean(0)
            m2_b = ((resp - mean_b) ** 2).sum(0)
            delta = mean_b - mean
            new_count = count + n_b
            mean = mean + delta * (n_b / new_count)
            m2 = m2 + m2_b + delta**2 * (count * n_b / new_count)
            count = new_count
    resp_mean = total / n_total
    if not return_sd:
        return resp_mean
    return resp_mean, np.sqrt(m2 / n_total)


# ---------------------------------------------------------------- log-likelihood
def log_likelihood(fit: MixtureFit, points: Any = None) -> np.ndarray:
    """log p(x_i | theta_s) for every draw and observation, with numpy.

    Parameters
    ----------
    fit : MixtureFit
    points : array-like of shape (n_samples, n_features), optional
        The fit's own data when None.

    Returns
    -------
    ndarray of shape (n_chains, n_draws, n_samples)
    """
    fit = _check_fit(fit)
    data = _points(fit, points)
    weights, means, obs_sd = _parameter_draws(fit)
    n_total, n_components = weights.shape
    out = np.empty((n_total, data.shape[0]))
    for chunk in _chunks(n_total, data.shape[0] * n_components):
        out[chunk] = mixture_logp(data, weights[chunk], means[chunk], _sd_slice(obs_sd, chunk))
    return out.reshape(fit.n_chains, fit.n_draws, data.shape[0])


def add_log_likelihood(fit: MixtureFit) -> MixtureFit:
    """A copy of ``fit`` with a ``log_likelihood`` group (``x``: chain, draw, obs).

    Computed with :func:`log_likelihood` from the posterior draws, so it works for every
    engine. A fit that already has the group is returned unchanged.
    """
    import xarray as xr

    fit = _check_fit(fit)
    if "log_likelihood" in fit.idata.children:
        return fit
    values = log_likelihood(fit)
    post = fit.idata["posterior"]
    group = xr.Dataset({"x": (("chain", "draw", "obs"), values)},
                       coords={"chain": post["chain"].values, "draw": post["draw"].values,
                               "obs": np.arange(values.shape[-1])})
    idata = fit.idata.copy()
    idata["log_likelihood"] = group
    return fit.replace(idata=idata)


def loo(fit: MixtureFit, **kwargs: Any) -> Any:
    """Pareto-smoothed importance-sampling LOO (``arviz.loo``) of the fit.

    Parameters
    ----------
    fit : MixtureFit
        Must hold a ``log_likelihood`` group: the PyMC engines store it by default
        (``log_likelihood=True``); for other fits use :func:`add_log_likelihood` first.
    **kwargs
        Passed to ``arviz.loo`` (e.g. ``pointwise=True``).

    Returns
    -------
    arviz_stats ELPDData
        ``elpd``, ``se``, ``p``, ``pareto_k``, ...
    """
    fit = _check_fit(fit)
    if "log_likelihood" not in fit.idata.children:
        raise ValueError(f"fit: expected a fit with a log_likelihood group, got engine "
                         f"{fit.engine!r} without one. Refit with log_likelihood=True, or "
                         f"call ppl_mixtures.diagnostics.add_log_likelihood(fit) first.")
    import arviz as az

    return az.loo(fit.idata, **kwargs)


# ---------------------------------------------------------------- MCMC summary
@dataclass(frozen=True)
class McmcSummary:
    """``az.summary`` of the model parameters plus the sampler's own health checks.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per scalar parameter: mean, sd, interval, ess_bulk, ess_tail, r_hat, mcse.
    rhat_max, ess_bulk_min, ess_tail_min : float
        Worst values over the parameters (NaN with one chain or a point estimate).
    divergences : int or None
        Divergent transitions (NUTS); None when the sampler has no such statistic.
    reached_max_treedepth : int or None
        Draws whose trajectory hit the maximum tree depth (NUTS).
    max_tree_depth : int or None
        Deepest tree seen.
    acceptance : float or None
        Mean acceptance rate (NUTS ``acceptance_rate``; Metropolis ``accepted``, the
        fraction of proposals accepted, or else ``accept`` clipped to 1).
    n_chains, n_draws : int
    """

    table: pd.DataFrame
    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int | None
    reached_max_treedepth: int | None
    max_tree_depth: int | None
    acceptance: float | None
    n_chains: int
    n_draws: int

    def __str__(self) -> str:
        lines = [f"{self.n_chains} chains x {self.n_draws} draws: max R-hat {self.rhat_max:.3f}, "
                 f"min ESS bulk {self.ess_bulk_min:.0f}, tail {self.ess_tail_min:.0f}"]
        extra = []
        if self.divergences is not None:
            extra.append(f"divergences {self.divergences}")
        if self.max_tree_depth is not None:
            extra.append(f"max tree depth {self.max_tree_depth} "
                         f"({self.reached_max_treedepth} draws at the limit)")
        if self.acceptance is not None:
            extra.append(f"mean acceptance {self.acceptance:.2f}")
        if extra:
            lines.append(", ".join(extra))
        lines.append(self.table.to_string())
        return "\n".join(lines)

    __repr__ = __str__


def _stat(stats: Any, name: str) -> np.ndarray | None:
    if stats is None or name not in stats.data_vars:
        return None
    return np.asarray(stats[name].values)


def mcmc_summary(fit: MixtureFit, **kwargs: Any) -> McmcSummary:
    """R-hat, ESS (bulk, tail), MCSE and the sampler's statistics for a fit.

    Relabel first (``ppl_mixtures.relabel``) when the chains may use different component
    labels; otherwise R-hat reports the label switching, not a convergence failure.

    Parameters
    ----------
    fit : MixtureFit
    **kwargs
        Passed to ``arviz.summary`` (e.g. ``ci_prob=0.94``).

    Returns
    -------
    McmcSummary
    """
    import warnings

    fit = _check_fit(fit)
    kwargs.setdefault("var_names", list(fit.parameter_names()))
    with warnings.catch_warnings():  # one chain or one draw: R-hat/ESS are NaN, not an error
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        table = fit.summary(**kwargs)

    def worst(column: str, reduce: Any) -> float:
        if column not in table.columns or table[column].isna().all():
            return float("nan")
        return float(reduce(table[column].to_numpy(dtype=float)))

    stats = fit.idata["sample_stats"] if "sample_stats" in fit.idata.children else None
    diverging = _stat(stats, "diverging")
    depth = _stat(stats, "tree_depth")
    at_max = _stat(stats, "reached_max_treedepth")
    acceptance = _stat(stats, "acceptance_rate")
    if acceptance is None:  # Metropolis: the fraction of accepted proposals per step
        acceptance = _stat(stats, "accepted")
    if acceptance is None:
        accept = _stat(stats, "accept")  # the MH ratio, may exceed 1
        acceptance = None if accept is None else np.minimum(accept.astype(float), 1.0)
    return McmcSummary(
        table=table,
        rhat_max=worst("r_hat", np.nanmax),
        ess_bulk_min=worst("ess_bulk", np.nanmin),
        ess_tail_min=worst("ess_tail", np.nanmin),
        divergences=None if diverging is None else int(diverging.sum()),
        reached_max_treedepth=None if at_max is None else int(at_max.sum()),
        max_tree_depth=None if depth is None else int(depth.max()),
        acceptance=None if acceptance is None else float(np.nanmean(acceptance)),
        n_chains=fit.n_chains,
        n_draws=fit.n_draws,
    )


# ---------------------------------------------------------------- posterior predictive
def posterior_predictive(fit: MixtureFit, random_seed: int | None = None,
                         n_draws: int | None = None) -> np.ndarray:
    """Replicated data sets x_rep ~ p(x | theta_s), one per posterior draw, with numpy.

    For each draw, every replicated observation picks a component z ~ Categorical(weights)
    and then x_rep ~ Normal(means_z, diag(obs_sd_z^2)); a replicate has as many rows as the
    fit's data, so it can be compared with it directly (``az.plot_ppc_dist`` after wrapping
    it, or any statistic of your own).

    Parameters
    ----------
    fit : MixtureFit
        Any engine's fit.
    random_seed : int, optional
        Same seed -> same replicates.
    n_draws : int, optional
        Use this many draws per chain, evenly spaced (all draws when None). Memory is
        n_chains x n_draws x n_samples x n_features floats: thin on large data.

    Returns
    -------
    ndarray of shape (n_chains, n_draws, n_samples, n_features)
        A plain array (not a DataTree group) so it serves every engine and any statistic;
        ``xarray.DataArray(x_rep, dims=("chain", "draw", "obs", "feature"))`` makes it a
        ``posterior_predictive`` variable.

    Notes
    -----
    PyMC's own path also works for the PyMC engines: ``pm.sample_posterior_predictive(
    fit.idata, model=models.build_marginal_model(points, spec))`` draws from the observed
    ``CustomDist``'s ``random=``.
    """
    fit = _check_fit(fit)
    total_draws = fit.n_draws
    if n_draws is None:
        keep = np.arange(total_draws)
    else:
        n_draws = check_int("n_draws", n_draws, minimum=1, maximum=total_draws,
                            hint=f"Use between 1 and the fit's {total_draws} draws per chain")
        keep = np.unique(np.linspace(0, total_draws - 1, n_draws).round().astype(int))
    weights, means, obs_sd = _parameter_draws(fit)
    n_components, n_features = means.shape[1:]
    select = (np.arange(fit.n_chains)[:, None] * total_draws + keep[None, :]).ravel()
    weights, means = weights[select], means[select]
    obs_sd = obs_sd[select] if obs_sd.ndim == 3 else np.broadcast_to(obs_sd, means.shape)
    n_samples = fit.points.shape[0]
    rng = np.random.default_rng(random_seed)
    cdf = np.cumsum(weights, axis=-1)
    x_rep = np.empty((select.size, n_samples, n_features))
    for chunk in _chunks(select.size, n_samples * max(n_components, n_features)):
        # z_si by inverse CDF: the first k with u < cumsum(weights)_k (clipped for round-off)
        u = rng.random((chunk.stop - chunk.start, n_samples))
        z = np.minimum((u[..., None] >= cdf[chunk, None, :]).sum(-1), n_components - 1)
        loc = np.take_along_axis(means[chunk], z[..., None], axis=1)               # (b, N, D)
        scale = np.take_along_axis(obs_sd[chunk], z[..., None], axis=1)
        x_rep[chunk] = loc + scale * rng.standard_normal(loc.shape)
    return x_rep.reshape(fit.n_chains, keep.size, n_samples, n_features)
