"""Diagnostics for any fit: responsibilities, MCMC summaries, LOO and posterior predictive.

Everything here works from the posterior draws in ``fit.idata`` with numpy, so it serves
every engine (NUTS, Metropolis, the latent-z Gibbs engine, ADVI, CAVI, EM) the same way:

- :func:`responsibilities`: posterior mean (and sd) of p(z_i = k | x_i, theta);
- :func:`log_likelihood` / :func:`add_log_likelihood`: per-observation log p(x_i | theta)
  for every draw (what ``az.loo`` needs), for fits that did not store it;
- :func:`mcmc_summary`: ``az.summary`` of the model parameters plus the sampler's own
  health (divergences, tree depth, acceptance);
- :func:`loo`: ``az.loo`` on the fit, with a clear error when there is no log-likelihood;
- :func:`posterior_predictive`: replicated data sets, one per posterior draw;
- :func:`coclustering` and :func:`predictive_logpdf`: label-invariant grades of any fit
  (P(z_i = z_j | x) and log p(x_new | x)), comparable with ``evidence.exact_posterior``;
- :func:`vi_khat`: the PSIS Pareto k-hat of p/q for a variational fit (Yao et al. 2018).

Draws are processed in chunks so that memory stays near ``_CHUNK_ELEMENTS`` floats whatever
the number of draws and observations (4 chains x 1000 draws x 100 000 points would be
6.4 GB at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.model.density import log_responsibilities, mixture_logp
from ppl_mixtures.results import MixtureFit
from ppl_mixtures.validation import check_int, check_points

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MAX_COCLUSTERING_POINTS",
    "VI_ENGINES",
    "McmcSummary",
    "add_log_likelihood",
    "coclustering",
    "log_likelihood",
    "loo",
    "mcmc_summary",
    "pareto_khat",
    "posterior_predictive",
    "predictive_logpdf",
    "responsibilities",
    "unconstrained_log_joint",
    "vi_khat",
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
                         f"call ppl_mixtures.analysis.diagnostics.add_log_likelihood(fit) first.")
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


# ---------------------------------------------------------------- label-invariant grades
#: Largest number of observations :func:`coclustering` accepts (an (N, N) float matrix).
MAX_COCLUSTERING_POINTS = 5_000


def _coclustering_sum(data, weights, means, obs_sd, n_total) -> np.ndarray:
    """sum over draws of R_s R_s^T, R_s the (N, K) responsibilities of draw s: (N, N)."""
    n_samples, n_components = data.shape[0], weights.shape[1]
    total = np.zeros((n_samples, n_samples))
    for chunk in _chunks(n_total, n_samples * max(n_components, n_samples)):
        resp = np.exp(log_responsibilities(data, weights[chunk], means[chunk],
                                           _sd_slice(obs_sd, chunk)))        # (b, N, K)
        flat = resp.transpose(1, 0, 2).reshape(n_samples, -1)               # (N, b K)
        total += flat @ flat.T
    return total


def coclustering(fit: MixtureFit, points: Any = None) -> np.ndarray:
    """Posterior probability that two observations share a component, P(z_i = z_j | x).

    Given a draw theta_s the assignments are independent, so for i != j

        P(z_i = z_j | x, theta_s) = sum_k r_ik(theta_s) r_jk(theta_s)                    (1)

    with r the responsibilities of :func:`responsibilities`; the posterior probability is the
    mean of (1) over the draws, and the diagonal is 1. The sum over k makes it
    label-invariant: no relabeling is needed, and chains in different label modes agree.
    Compare it with :attr:`ppl_mixtures.model.evidence.ExactPosterior.coclustering` on tiny data.

    Parameters
    ----------
    fit : MixtureFit
        Any engine's fit (a point estimate gives its plug-in value).
    points : array-like of shape (n_samples, n_features), optional
        The fit's own data when None. At most :data:`MAX_COCLUSTERING_POINTS` rows.

    Returns
    -------
    ndarray of shape (n_samples, n_samples)
        Symmetric, entries in [0, 1], ones on the diagonal.
    """
    fit = _check_fit(fit)
    data = _points(fit, points)
    if data.shape[0] > MAX_COCLUSTERING_POINTS:
        raise ValueError(f"points: expected at most {MAX_COCLUSTERING_POINTS} observations "
                         f"(the result is an N x N matrix), got {data.shape[0]}. Pass a "
                         f"subset, e.g. points[:{MAX_COCLUSTERING_POINTS}].")
    weights, means, obs_sd = _parameter_draws(fit)
    out = _coclustering_sum(data, weights, means, obs_sd, weights.shape[0]) / weights.shape[0]
    np.fill_diagonal(out, 1.0)
    return np.clip(0.5 * (out + out.T), 0.0, 1.0)


def predictive_logpdf(fit: MixtureFit, points: Any = None) -> np.ndarray:
    """The posterior predictive log density log p(x_new | x) of each point, from the draws.

        log p(x_new | x) ~= log (1/S) sum_s p(x_new | theta_s)
                          = logsumexp_s log p(x_new | theta_s) - log S                    (1)

    a Monte Carlo estimate over the fit's S draws (all chains), label-invariant. For VI fits
    it is the predictive of q; for a point estimate, the plug-in density. Compare it with
    :meth:`ppl_mixtures.model.evidence.ExactPosterior.predictive_logpdf` on tiny data.

    Parameters
    ----------
    fit : MixtureFit
    points : array-like of shape (n_new, n_features), optional
        Where to evaluate; the fit's own data when None.

    Returns
    -------
    ndarray of shape (n_new,)
    """
    from scipy.special import logsumexp

    fit = _check_fit(fit)
    values = log_likelihood(fit, points)                                   # (C, S, M)
    values = values.reshape(-1, values.shape[-1])
    return logsumexp(values, axis=0) - np.log(values.shape[0])


# ---------------------------------------------------------------- VI: Pareto k-hat
#: Spread (nats) of the log ratios below which they count as constant (q = p).
_CONSTANT_RATIOS = 1e-8
#: Engines whose fit carries its q (the importance-sampling proposal of :func:`vi_khat`).
VI_ENGINES = ("advi", "fullrank_advi", "cavi", "svi")


def vi_khat(fit: MixtureFit, points: Any = None, *, n_draws: int = 4000,
            random_seed: int | None = 0) -> float:
    """Pareto k-hat of the importance ratios p(x, theta) / q(theta) of a VI fit (PSIS).

    Draws theta_s ~ q from the fit's own variational parameters, computes the log ratios
    log p(x, theta_s) - log q(theta_s) and fits a generalized Pareto distribution to their
    largest values (Pareto-smoothed importance sampling: Vehtari et al. 2024; as a VI
    diagnostic: Yao et al. 2018, "Yes, but did it work?"). k-hat is the shape of that tail:
    how heavy the right tail of p/q is, i.e. how badly q misses mass that p has.

    Reading (Yao et al. 2018, §3):

    - k-hat < 0.5: q is close to p where it matters; importance sampling with q works, and
      posterior means from q are usable;
    - 0.5 <= k-hat < 0.7: usable but rough (ok-ish): the variance of the ratios is
      infinite, PSIS still converges at a practical rate;
    - k-hat >= 0.7: q is unreliable as an approximation (typically too narrow or
      misplaced); do not trust its means or sds without a check by MCMC.

    Parameters
    ----------
    fit : MixtureFit
        A variational fit: ``"advi"``, ``"fullrank_advi"`` (q Gaussian on the unconstrained
        space, from ``extras["unconstrained_mean"]``, ``["unconstrained_sd"]``,
        ``["covariance"]``, ``["unconstrained_labels"]``), ``"cavi"`` or ``"svi"`` (q a
        product of Gaussians for the means, a Dirichlet for the weights and Gammas for
        learned precisions, from ``extras["variational_params"]``).
    points : array-like of shape (n_samples, n_features), optional
        The data of p(x, theta): the data q was fitted to (the fit's own data when None).
    n_draws : int
        Draws from q (>= 100; Yao et al. use thousands: the tail fit uses the largest
        min(S/5, 3 sqrt(S)) ratios).
    random_seed : int or None
        Seed of the draws from q (same seed -> same k-hat).

    Returns
    -------
    float
        k-hat (-inf when the ratios are constant, i.e. q = p). ``p`` is the model's unnormalized posterior p(x, theta) in the same
        coordinates as q (for ADVI: the unconstrained space, log abs(det J) included); k-hat does
        not depend on the normalizing constant. With ``spec.ordered`` the CAVI/SVI ratios
        use the unordered model (q then covers one of its K! label modes).

    Raises
    ------
    ValueError
        For fits without a q (MCMC and point estimates): use R-hat and ESS there.

    Notes
    -----
    The cost is n_draws x n_samples x K mixture-density terms in numpy: 10.5 s for 4000
    draws on 10,000 points (K = 2) on our 2-core machine, so ~100 s at 100,000 points.
    Pass fewer draws on large data (e.g. ``n_draws=1000``: the tail fit then uses the top
    95 ratios), not a subset of the points: q was fitted to all of them, and p(x_subset,
    theta) is another posterior.
    """
    fit = _check_fit(fit)
    if fit.engine not in VI_ENGINES:
        raise ValueError(f"fit: expected a variational fit (engine {', '.join(map(repr, VI_ENGINES))}), "
                         f"got engine {fit.engine!r}. k-hat grades q against p; an MCMC or "
                         f"point fit has no q: check it with mcmc_summary (R-hat, ESS) instead.")
    n_draws = check_int("n_draws", n_draws, minimum=100, hint="Use e.g. n_draws=4000")
    data = _points(fit, points)
    rng = np.random.default_rng(random_seed)
    if fit.engine in ("advi", "fullrank_advi"):
        log_ratio = _advi_log_ratios(fit, data, n_draws, rng)
    else:
        log_ratio = _conjugate_log_ratios(fit, data, n_draws, rng)
    return pareto_khat(log_ratio)


def pareto_khat(log_ratios: Any) -> float:
    """PSIS k-hat of importance log ratios, shape (n_draws,) -> float (ArviZ's estimator).

    Uses ``arviz_stats.base.array_stats.psislw``, whose input is a log-likelihood (it
    smooths the log ratios ``-input``, as LOO needs), so the log ratios go in negated.
    Ratios of exactly zero (log ratio -inf, e.g. a weight that underflowed) enter as the
    smallest finite ratio: only the right tail matters for k-hat. Constant ratios (spread
    below 1e-8 nats: q equals p) have no tail to fit and give -inf (a bounded tail).
    """
    from arviz_stats.base import array_stats

    log_ratios = np.asarray(log_ratios, dtype=np.float64).ravel()
    if np.any(np.isnan(log_ratios) | (log_ratios == np.inf)):
        raise ValueError("log_ratios: expected finite log ratios (or -inf for zero ratios), "
                         "got NaN or +inf. Check that q's parameters and the data are finite.")
    finite = np.isfinite(log_ratios)
    if not finite.any():
        raise ValueError("log_ratios: expected some finite log ratios, got none (q puts all "
                         "its draws where p is zero).")
    log_ratios = np.where(finite, log_ratios, log_ratios[finite].min())
    if np.ptp(log_ratios) < _CONSTANT_RATIOS:  # q = p up to round-off: no tail to fit
        return float("-inf")
    _, khat = array_stats.psislw(-(log_ratios - log_ratios.max()), r_eff=1.0)
    return float(khat)


# ------------------------------------------------------------- log p(x, theta) in numpy
def _log_prior_means(means: np.ndarray, spec, n_features: int) -> np.ndarray:
    """sum_kd log N(means_kd | m0_d, s0_d^2), means (S, K, D) -> (S,)."""
    from scipy.stats import norm

    return norm.logpdf(means, spec.prior_mean(n_features),
                       spec.prior_sd(n_features)).sum(axis=(1, 2))


def _log_dirichlet(log_w: np.ndarray, conc: np.ndarray) -> np.ndarray:
    """log Dirichlet(w | conc) from log w (S, K), w.r.t. Lebesgue measure on w_1..w_{K-1}."""
    from scipy.special import gammaln

    return gammaln(conc.sum()) - gammaln(conc).sum() + ((conc - 1.0) * log_w).sum(axis=-1)


def _log_gamma(tau: np.ndarray, log_tau: np.ndarray, shape, rate) -> np.ndarray:
    """sum over (K, D) of log Gamma(tau | shape, rate), tau (S, K, D) -> (S,)."""
    from scipy.special import gammaln

    return (shape * np.log(rate) - gammaln(shape) + (shape - 1.0) * log_tau
            - rate * tau).sum(axis=(1, 2))


def _log_likelihood_sum(data, weights, means, obs_sd) -> np.ndarray:
    """sum_i log p(x_i | theta_s), (S,), in chunks of draws."""
    n_total = weights.shape[0]
    out = np.empty(n_total)
    for chunk in _chunks(n_total, data.shape[0] * weights.shape[1]):
        out[chunk] = mixture_logp(data, weights[chunk], means[chunk],
                                  _sd_slice(obs_sd, chunk)).sum(axis=-1)
    return out


def _log_dirichlet_draws(conc: np.ndarray, n_draws: int, rng) -> np.ndarray:
    """log w for w ~ Dirichlet(conc), (S, K), without underflow for small concentrations.

    log G with G ~ Gamma(a) is drawn as log Gamma(a + 1) + log(U) / a (Marsaglia & Tsang's
    boost), then normalized in log space.
    """
    from scipy.special import logsumexp

    g = rng.gamma(conc + 1.0, size=(n_draws, conc.size))
    log_g = np.log(g) + np.log(rng.random((n_draws, conc.size))) / conc
    return log_g - logsumexp(log_g, axis=-1, keepdims=True)


def _conjugate_log_ratios(fit, data, n_draws, rng) -> np.ndarray:
    """log p(x, theta) - log q(theta) for theta ~ q, CAVI/SVI's conjugate family, (S,)."""
    from scipy.stats import norm

    spec = fit.spec
    params = fit.extras.get("variational_params")
    if params is None:
        raise ValueError(f"fit: expected extras['variational_params'] (q's parameters) in a "
                         f"{fit.engine!r} fit, got none. Refit with ppl_mixtures.fit(...).")
    loc = np.asarray(params["mean_loc"], dtype=np.float64)
    sd = np.sqrt(np.asarray(params["mean_var"], dtype=np.float64))
    n_components, n_features = loc.shape
    means = loc + sd * rng.standard_normal((n_draws, n_components, n_features))
    log_q = norm.logpdf(means, loc, sd).sum(axis=(1, 2))
    log_p = _log_prior_means(means, spec, n_features)
    if spec.fixed_weights:
        weights = np.broadcast_to(spec.fixed_weight_values(), (n_draws, n_components))
    else:
        conc = np.asarray(params["weight_conc"], dtype=np.float64)
        log_w = _log_dirichlet_draws(conc, n_draws, rng)
        weights = np.exp(log_w)
        log_q = log_q + _log_dirichlet(log_w, conc)
        log_p = log_p + _log_dirichlet(log_w, spec.alpha())
    if spec.learned_obs_sd:
        shape = np.asarray(params["prec_shape"], dtype=np.float64)
        rate = np.asarray(params["prec_rate"], dtype=np.float64)
        tau = rng.gamma(shape, 1.0 / rate, size=(n_draws, n_components, n_features))
        log_tau = np.log(tau)
        log_q = log_q + _log_gamma(tau, log_tau, shape, rate)
        log_p = log_p + _log_gamma(tau, log_tau, spec.precision_prior_shape,
                                   spec.precision_prior_rate)
        obs_sd = np.exp(-0.5 * log_tau)
    else:
        obs_sd = spec.known_obs_sd(n_features)
    return log_p + _log_likelihood_sum(data, weights, means, obs_sd) - log_q


def _simplex_log_jac_det(y: np.ndarray) -> np.ndarray:
    """log abs(det J) of PyMC's SimplexTransform.backward at y (S, K-1) -> (S,) (PyMC's formula)."""
    from scipy.special import logsumexp

    n = y.shape[-1] + 1
    total = y.sum(axis=-1, keepdims=True)
    expanded = np.concatenate([y + total, np.zeros_like(total)], axis=-1)
    return (np.log(n) + n * total - n * logsumexp(expanded, axis=-1, keepdims=True))[..., 0]


def _unconstrained_blocks(labels: list[str], theta: np.ndarray) -> dict[str, np.ndarray]:
    """Split (S, d) draws into value variables by label ("means[0,1]" -> "means"), (S, n)."""
    names = [label.split("[")[0] for label in labels]
    return {name: theta[:, [i for i, n in enumerate(names) if n == name]]
            for name in dict.fromkeys(names)}


def unconstrained_log_joint(theta: np.ndarray, labels: list[str], spec,
                            points: np.ndarray) -> np.ndarray:
    """log p(x, theta) + log abs(det J(theta)) at unconstrained points, in numpy, (S,).

    The density ADVI's q approximates (``models.build_marginal_model`` with
    ``logp(jacobian=True)``), for every parameterization the models use: free ``means``, or
    ``means_first`` through PyMC's ordered transform (x_0 = y_0, x_k = x_(k-1) + exp(y_k),
    log abs(det J) = sum_(k>=1) y_k) plus ``means_rest``; weights through our stick-breaking
    (:mod:`ppl_mixtures.model.transforms`) or PyMC's simplex transform; learned precisions through
    log (log abs(det J) = sum y).

    Parameters
    ----------
    theta : ndarray of shape (n_draws, d)
    labels : list of str, length d
        ADVI's ``extras["unconstrained_labels"]`` (value-variable names with indices, C order).
    spec : MixtureSpec
    points : ndarray of shape (n_samples, n_features)
    """
    from ppl_mixtures.model.transforms import stick_breaking_backward, stick_breaking_log_jac_det

    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    n_draws = theta.shape[0]
    n_components, n_features = spec.n_components, points.shape[1]
    blocks = _unconstrained_blocks(labels, theta)
    log_jac = np.zeros(n_draws)
    if "means" in blocks:
        means = blocks["means"].reshape(n_draws, n_components, n_features)
    else:
        y = blocks["means_first_ordered__"]
        first = np.cumsum(np.concatenate([y[:, :1], np.exp(y[:, 1:])], axis=1), axis=1)
        log_jac += y[:, 1:].sum(axis=1)
        rest = blocks.get("means_rest", np.zeros((n_draws, 0)))
        means = np.concatenate([first[:, :, None],
                                rest.reshape(n_draws, n_components, n_features - 1)], axis=2)
    log_p = _log_prior_means(means, spec, n_features)
    if spec.fixed_weights:
        weights = np.broadcast_to(spec.fixed_weight_values(), (n_draws, n_components))
    else:
        if "weights_stickbreaking__" in blocks:
            y = blocks["weights_stickbreaking__"]
            weights = stick_breaking_backward(y)
            log_jac += stick_breaking_log_jac_det(y)
        else:
            from ppl_mixtures.inference.pymc.advi import simplex_backward

            y = blocks["weights_simplex__"]
            weights = simplex_backward(y)
            log_jac += _simplex_log_jac_det(y)
        with np.errstate(divide="ignore"):
            log_p = log_p + _log_dirichlet(np.log(weights), spec.alpha())
    if spec.learned_obs_sd:
        log_tau = blocks["obs_precision_log__"].reshape(n_draws, n_components, n_features)
        tau = np.exp(log_tau)
        log_jac += log_tau.sum(axis=(1, 2))
        log_p = log_p + _log_gamma(tau, log_tau, spec.precision_prior_shape,
                                   spec.precision_prior_rate)
        obs_sd = np.exp(-0.5 * log_tau)
    else:
        obs_sd = spec.known_obs_sd(n_features)
    return log_p + log_jac + _log_likelihood_sum(points, weights, means, obs_sd)


def _advi_log_ratios(fit, data, n_draws, rng) -> np.ndarray:
    """log p(x, theta) + log abs(det J) - log q(theta) for theta ~ q on the unconstrained space, (S,)."""
    missing = [key for key in ("unconstrained_mean", "unconstrained_labels")
               if key not in fit.extras]
    if missing:
        raise ValueError(f"fit: expected q's parameters in extras ({', '.join(missing)}) of "
                         f"an {fit.engine!r} fit, got none. Refit with ppl_mixtures.fit(...).")
    mean = np.asarray(fit.extras["unconstrained_mean"], dtype=np.float64)
    if "covariance" in fit.extras:
        chol = np.linalg.cholesky(np.asarray(fit.extras["covariance"], dtype=np.float64))
    else:
        chol = np.diag(np.asarray(fit.extras["unconstrained_sd"], dtype=np.float64))
    eps = rng.standard_normal((n_draws, mean.size))
    theta = mean + eps @ chol.T
    log_q = (-0.5 * (eps**2).sum(axis=1) - np.log(np.diag(chol)).sum()
             - 0.5 * mean.size * np.log(2.0 * np.pi))
    labels = list(fit.extras["unconstrained_labels"])
    return unconstrained_log_joint(theta, labels, fit.spec, data) - log_q
