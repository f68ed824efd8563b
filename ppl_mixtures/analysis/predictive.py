"""The model's density at the draws: per-observation :func:`log_likelihood` (what
``az.loo`` needs; :func:`add_log_likelihood`, :func:`loo`), replicated data
(:func:`posterior_predictive`) and the posterior predictive density
(:func:`predictive_logpdf`, comparable with
:meth:`ppl_mixtures.model.evidence.ExactPosterior.predictive_logpdf`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ppl_mixtures.analysis.draws import (
    check_fit,
    check_fit_points,
    chunks,
    parameter_draws,
)
from ppl_mixtures.results import MixtureFit
from ppl_mixtures.validation import check_int

__all__ = [
    "add_log_likelihood",
    "log_likelihood",
    "loo",
    "posterior_predictive",
    "predictive_logpdf",
]


def log_likelihood(fit: MixtureFit, points: Any = None) -> np.ndarray:
    """log p(x_i | theta_s) for every draw and observation, with numpy.

    Every covariance type: diagonal and spherical draws through ``density.mixture_logp``,
    full and tied ones (learned ``obs_cov`` draws or the spec's known matrix) through
    ``density_full.full_mixture_logp``.

    Parameters
    ----------
    fit : MixtureFit
    points : array-like of shape (n_samples, n_features), optional
        The fit's own data when None.

    Returns
    -------
    ndarray of shape (n_chains, n_draws, n_samples)
    """
    fit = check_fit(fit)
    data = check_fit_points(fit, points)
    draws = parameter_draws(fit)
    out = np.empty((draws.n_total, data.shape[0]))
    for chunk in chunks(draws.n_total, data.shape[0] * draws.n_components):
        out[chunk] = draws.mixture_logp(data, chunk)
    return out.reshape(fit.n_chains, fit.n_draws, data.shape[0])


def add_log_likelihood(fit: MixtureFit) -> MixtureFit:
    """A copy of ``fit`` with a ``log_likelihood`` group (``x``: chain, draw, obs).

    Computed with :func:`log_likelihood` from the posterior draws, so it works for every
    engine. A fit that already has the group is returned unchanged.
    """
    import xarray as xr

    fit = check_fit(fit)
    if "log_likelihood" in fit.idata.children:
        return fit
    values = log_likelihood(fit)
    post = fit.idata["posterior"]
    group = xr.Dataset(
        {"x": (("chain", "draw", "obs"), values)},
        coords={
            "chain": post["chain"].values,
            "draw": post["draw"].values,
            "obs": np.arange(values.shape[-1]),
        },
    )
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
    fit = check_fit(fit)
    if "log_likelihood" not in fit.idata.children:
        raise ValueError(
            f"fit: expected a fit with a log_likelihood group, got engine "
            f"{fit.engine!r} without one. Refit with log_likelihood=True, or "
            f"call ppl_mixtures.analysis.diagnostics.add_log_likelihood(fit) first."
        )
    import arviz as az

    return az.loo(fit.idata, **kwargs)


def posterior_predictive(
    fit: MixtureFit, random_seed: int | None = None, n_draws: int | None = None
) -> np.ndarray:
    """Replicated data sets x_rep ~ p(x | theta_s), one per posterior draw, with numpy.

    For each draw, every replicated observation picks a component z ~ Categorical(weights)
    and then x_rep ~ Normal(means_z, Sigma_z) (Sigma_z = diag(obs_sd_z^2), or ``obs_cov`` for
    full and tied specs: means_z + chol(Sigma_z) eps); a replicate has as many rows as the
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
    fit = check_fit(fit)
    total_draws = fit.n_draws
    if n_draws is None:
        keep = np.arange(total_draws)
    else:
        n_draws = check_int(
            "n_draws",
            n_draws,
            minimum=1,
            maximum=total_draws,
            hint=f"Use between 1 and the fit's {total_draws} draws per chain",
        )
        keep = np.unique(np.linspace(0, total_draws - 1, n_draws).round().astype(int))
    select = (np.arange(fit.n_chains)[:, None] * total_draws + keep[None, :]).ravel()
    draws = parameter_draws(fit).select(select)
    weights, means = draws.weights, draws.means
    n_components, n_features = means.shape[1:]
    n_samples = fit.points.shape[0]
    rng = np.random.default_rng(random_seed)
    cdf = np.cumsum(weights, axis=-1)
    x_rep = np.empty((select.size, n_samples, n_features))
    for chunk in chunks(select.size, n_samples * max(n_components, n_features)):
        # z_si by inverse CDF: the first k with u < cumsum(weights)_k (clipped for round-off)
        u = rng.random((chunk.stop - chunk.start, n_samples))
        z = np.minimum((u[..., None] >= cdf[chunk, None, :]).sum(-1), n_components - 1)
        loc = np.take_along_axis(means[chunk], z[..., None], axis=1)  # (b, N, D)
        x_rep[chunk] = loc + draws.noise(z, chunk, rng)
    return x_rep.reshape(fit.n_chains, keep.size, n_samples, n_features)


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

    fit = check_fit(fit)
    values = log_likelihood(fit, points)  # (C, S, M)
    values = values.reshape(-1, values.shape[-1])
    return logsumexp(values, axis=0) - np.log(values.shape[0])
