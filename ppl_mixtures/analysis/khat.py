"""How good is q? The PSIS Pareto k-hat of p/q for a variational fit: :func:`vi_khat`
(Yao et al. 2018), its importance log ratios :func:`vi_log_ratios`, and :func:`pareto_khat`
for any importance log ratios. CAVI/SVI fits are scored for every covariance type (full and
tied: a full Gaussian q(mu_k) and Wishart q(Lambda), drawn by Bartlett's decomposition) and
for truncated Dirichlet-process weights (Beta q(v_k) sticks, a Gamma q(alpha) when alpha is
learned), and ADVI fits too (for non-diag specs p is the PyMC model's own log density)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ppl_mixtures.analysis.draws import check_fit, check_fit_points, chunks
from ppl_mixtures.analysis.log_joint import (
    log_dirichlet,
    log_gamma,
    log_likelihood_sum,
    log_prior_means,
    pymc_unconstrained_log_joint,
    unconstrained_log_joint,
)
from ppl_mixtures.model.density import LOG_2PI
from ppl_mixtures.model.density_full import full_mixture_logp
from ppl_mixtures.model.priors import gamma_log_prior, wishart_log_normalizer
from ppl_mixtures.results import MixtureFit
from ppl_mixtures.validation import check_int

__all__ = ["VI_ENGINES", "pareto_khat", "vi_khat", "vi_log_ratios"]


#: Spread (nats) of the log ratios below which they count as constant (q = p).
_CONSTANT_RATIOS = 1e-8
#: Engines whose fit carries its q (the importance-sampling proposal of :func:`vi_khat`).
VI_ENGINES = ("advi", "fullrank_advi", "cavi", "svi")


def vi_khat(
    fit: MixtureFit, points: Any = None, *, n_draws: int = 4000, random_seed: int | None = 0
) -> float:
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
        space, from ``fit.details.unconstrained_mean``, ``.unconstrained_chol`` and
        ``.unconstrained_labels``; p in numpy for diag specs, by the PyMC model's own logp for
        the others), ``"cavi"`` or ``"svi"`` (q a product of
        Gaussians for the means, a Dirichlet for the weights and Gammas for learned
        precisions, from ``fit.details.variational_params``; every covariance type: with
        full and tied covariances q(mu_k) is a full Gaussian and q(Lambda) a Wishart per
        component, or one for tied; spherical: one Gamma per component; truncated DP
        weights: Beta sticks ``stick_a``, ``stick_b`` and, with a learned concentration,
        a Gamma q(alpha) from ``alpha_shape``, ``alpha_rate``).
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
    return pareto_khat(vi_log_ratios(fit, points, n_draws=n_draws, random_seed=random_seed))


def vi_log_ratios(
    fit: MixtureFit, points: Any = None, *, n_draws: int = 4000, random_seed: int | None = 0
) -> np.ndarray:
    """The importance log ratios log p(x, theta_s) - log q(theta_s), theta_s ~ q, of
    :func:`vi_khat` (same arguments, same seed -> same ratios), shape (n_draws,).

    Their log-mean-exp is an importance-sampling estimate of log p(x) (unbiased in p(x));
    their mean is E_q[log p(x, theta) - log q(theta)] >= the ELBO with q(z) (z is summed out
    here). For ADVI fits p carries log abs(det J) of the unconstrained coordinates.
    """
    fit = check_fit(fit)
    if fit.engine not in VI_ENGINES:
        raise ValueError(
            f"fit: expected a variational fit (engine {', '.join(map(repr, VI_ENGINES))}), "
            f"got engine {fit.engine!r}. k-hat grades q against p; an MCMC or "
            f"point fit has no q: check it with mcmc_summary (R-hat, ESS) instead."
        )
    n_draws = check_int("n_draws", n_draws, minimum=100, hint="Use e.g. n_draws=4000")
    data = check_fit_points(fit, points)
    rng = np.random.default_rng(random_seed)
    if fit.engine in ("advi", "fullrank_advi"):
        return _advi_log_ratios(fit, data, n_draws, rng)
    return _conjugate_log_ratios(fit, data, n_draws, rng)


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
        raise ValueError(
            "log_ratios: expected finite log ratios (or -inf for zero ratios), "
            "got NaN or +inf. Check that q's parameters and the data are finite."
        )
    finite = np.isfinite(log_ratios)
    if not finite.any():
        raise ValueError(
            "log_ratios: expected some finite log ratios, got none (q puts all "
            "its draws where p is zero)."
        )
    log_ratios = np.where(finite, log_ratios, log_ratios[finite].min())
    if np.ptp(log_ratios) < _CONSTANT_RATIOS:  # q = p up to round-off: no tail to fit
        return float("-inf")
    _, khat = array_stats.psislw(-(log_ratios - log_ratios.max()), r_eff=1.0)
    return float(khat)


def _log_dirichlet_draws(conc: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """log w for w ~ Dirichlet(conc), (S, K), without underflow for small concentrations.

    log G with G ~ Gamma(a) is drawn as log Gamma(a + 1) + log(U) / a (Marsaglia & Tsang's
    boost), then normalized in log space.
    """
    from scipy.special import logsumexp

    g = rng.gamma(conc + 1.0, size=(n_draws, conc.size))
    log_g = np.log(g) + np.log(rng.random((n_draws, conc.size))) / conc
    return log_g - logsumexp(log_g, axis=-1, keepdims=True)


def _variational_params(fit: MixtureFit) -> Mapping[str, Any]:
    """CAVI/SVI's q parameters, ``fit.details.variational_params`` (``mean_loc``,
    ``mean_var``, ``weight_conc``, ``prec_shape``, ``prec_rate``)."""
    params = getattr(fit.details, "variational_params", None)
    if params is None:
        raise ValueError(
            f"fit: expected fit.details.variational_params (q's parameters) in a "
            f"{fit.engine!r} fit, got none. Refit with ppl_mixtures.fit(...)."
        )
    return params


def _conjugate_log_ratios(
    fit: MixtureFit, data: np.ndarray, n_draws: int, rng: np.random.Generator
) -> np.ndarray:
    """log p(x, theta) - log q(theta) for theta ~ q, CAVI/SVI's conjugate family, (S,).

    The draws are made in a fixed order (means, weights, precisions) so that a diagonal
    spec gives the numbers it always gave."""
    spec = fit.spec
    params = _variational_params(fit)
    means, log_q = _mean_draws(params, n_draws, rng)
    n_components, n_features = means.shape[1:]
    log_p = log_prior_means(means, spec, n_features)
    if spec.fixed_weights:
        weights = np.broadcast_to(spec.fixed_weight_values(), (n_draws, n_components))
    elif spec.is_dp:
        weights, log_q_dp, log_p_dp = _stick_draws(params, spec, n_draws, rng)
        log_q, log_p = log_q + log_q_dp, log_p + log_p_dp
    else:
        conc = np.asarray(params["weight_conc"], dtype=np.float64)
        log_w = _log_dirichlet_draws(conc, n_draws, rng)
        weights = np.exp(log_w)
        log_q = log_q + log_dirichlet(log_w, conc)
        log_p = log_p + log_dirichlet(log_w, spec.alpha())
    if spec.covariance in ("full", "tied"):
        prec_chol, log_q_cov, log_p_cov = _precision_draws(params, spec, n_draws, n_features, rng)
        log_lik = _full_log_likelihood_sum(data, weights, means, prec_chol)
        return log_p + log_p_cov + log_lik - log_q - log_q_cov
    if spec.learned_covariance:  # diag (K, D) or spherical (K,) Gammas
        shape = np.asarray(params["prec_shape"], dtype=np.float64)
        rate = np.asarray(params["prec_rate"], dtype=np.float64)
        tau = rng.gamma(shape, 1.0 / rate, size=(n_draws, *shape.shape))
        log_tau = np.log(tau)
        prior_shape, prior_rate = spec.precision_prior_shape, spec.precision_prior_rate
        if spec.covariance == "spherical":  # tau (S, K): one precision for every feature
            log_q = log_q + gamma_log_prior(tau, log_tau, shape, rate).sum(axis=1)
            log_p = log_p + gamma_log_prior(tau, log_tau, prior_shape, prior_rate).sum(axis=1)
            log_tau = np.repeat(log_tau[..., None], n_features, axis=-1)
        else:
            log_q = log_q + log_gamma(tau, log_tau, shape, rate)
            log_p = log_p + log_gamma(tau, log_tau, prior_shape, prior_rate)
        obs_sd = np.exp(-0.5 * log_tau)
    else:
        obs_sd = spec.known_obs_sd(n_features)
    return log_p + log_likelihood_sum(data, weights, means, obs_sd) - log_q


def _stick_draws(
    params: Mapping[str, Any], spec: Any, n_draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truncated-DP weights from q: v_k ~ Beta(stick_a_k, stick_b_k), k < T, and (when
    learned) alpha ~ Gamma(alpha_shape, alpha_rate); returns the stick-broken weights
    (S, T) and log q, log p of (v, alpha), (S,) each.

    p(v | alpha) = prod_k Beta(v_k | 1, alpha) = prod_k alpha (1 - v_k)^(alpha - 1), times
    Gamma(alpha | dp_alpha_prior) when alpha is learned. q and p are densities of the same
    coordinates (v, alpha), so no Jacobian enters the ratio."""
    from scipy.stats import beta, gamma

    from ppl_mixtures.model.transforms import log_stick_weights

    stick_a = np.asarray(params["stick_a"], dtype=np.float64)
    stick_b = np.asarray(params["stick_b"], dtype=np.float64)
    sticks = rng.beta(stick_a, stick_b, size=(n_draws, stick_a.size))
    log_q = beta.logpdf(sticks, stick_a, stick_b).sum(axis=1)
    if spec.learned_dp_alpha:
        shape = float(np.asarray(params["alpha_shape"], dtype=np.float64).ravel()[0])
        rate = float(np.asarray(params["alpha_rate"], dtype=np.float64).ravel()[0])
        alpha = rng.gamma(shape, 1.0 / rate, size=n_draws)
        prior_shape, prior_rate = spec.dp_alpha_prior
        log_q = log_q + gamma.logpdf(alpha, shape, scale=1.0 / rate)
        log_p = gamma.logpdf(alpha, prior_shape, scale=1.0 / prior_rate)
    else:
        alpha = np.full(n_draws, float(spec.dp_alpha))
        log_p = np.zeros(n_draws)
    with np.errstate(divide="ignore"):  # a stick rounded to 1: (1 - v)^(alpha - 1) -> 0 or inf
        log_1mv = np.log1p(-sticks)
    # log Beta(v | 1, alpha) = log alpha + (alpha - 1) log(1 - v); 0 * -inf counts as 0
    tail = np.multiply(
        (alpha - 1.0)[:, None], log_1mv, out=np.zeros_like(sticks), where=alpha[:, None] != 1.0
    )
    log_p = log_p + (np.log(alpha)[:, None] + tail).sum(axis=1)
    return np.exp(log_stick_weights(sticks)), log_q, log_p


def _mean_draws(
    params: Mapping[str, Any], n_draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """means ~ q(mu) (S, K, D) and log q(means) (S,): independent Normals (``mean_var``)
    or one full Gaussian N(m_k, C_k) per component (``mean_cov``)."""
    from scipy.stats import norm

    loc = np.asarray(params["mean_loc"], dtype=np.float64)
    n_components, n_features = loc.shape
    if "mean_cov" not in params:
        sd = np.sqrt(np.asarray(params["mean_var"], dtype=np.float64))
        means = loc + sd * rng.standard_normal((n_draws, n_components, n_features))
        return means, norm.logpdf(means, loc, sd).sum(axis=(1, 2))
    chol = np.linalg.cholesky(np.asarray(params["mean_cov"], dtype=np.float64))  # (K, D, D)
    eps = rng.standard_normal((n_draws, n_components, n_features))
    means = loc + np.einsum("kij,skj->ski", chol, eps)
    # log N(mu | m, C) with mu = m + L eps: -|eps|^2/2 - sum log L_ii - D/2 log 2 pi
    log_det = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum()
    log_q = -0.5 * (eps**2).sum(axis=(1, 2)) - log_det - 0.5 * n_components * n_features * LOG_2PI
    return means, log_q


def _wishart_logpdf(prec: np.ndarray, dof: np.ndarray | float, scale: np.ndarray) -> np.ndarray:
    """log Wishart(Lambda | dof, scale) for Lambda (..., D, D), dof (...,) or a float and
    scale (..., D, D) broadcasting (Bishop 2006, eq. B.78; scipy's ``wishart.logpdf``)."""
    n_features = prec.shape[-1]
    log_det = np.linalg.slogdet(prec)[1]
    trace = np.einsum("...ij,...ji->...", np.linalg.inv(scale), prec)
    dof = np.asarray(dof, dtype=np.float64)
    return (
        wishart_log_normalizer(dof, scale) + 0.5 * (dof - n_features - 1.0) * log_det - 0.5 * trace
    )


def _precision_draws(
    params: Mapping[str, Any],
    spec: Any,
    n_draws: int,
    n_features: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cholesky factors of the precisions for the full density, (S, K, D, D) (or the known
    (K, D, D)), and log q, log p of the learned ones, (S,) each (0 when known).

    Lambda_f ~ Wishart(nu_f, W_f) per factor f (K for full, one for tied, shared by the
    components), drawn by Bartlett's decomposition: Lambda = L A A^T L^T with L L^T = W,
    A lower triangular, A_ii^2 ~ chi2(nu - i + 1), A_ij ~ N(0, 1) below the diagonal."""
    if not spec.learned_covariance:
        precision = np.linalg.inv(spec.known_obs_cov(n_features))
        precision = 0.5 * (precision + np.swapaxes(precision, -1, -2))
        return np.linalg.cholesky(precision), np.zeros(n_draws), np.zeros(n_draws)
    dof = np.asarray(params["wishart_dof"], dtype=np.float64)  # (F,)
    scale = np.asarray(params["wishart_scale"], dtype=np.float64)  # (F, D, D)
    n_factors = dof.shape[0]
    lower = np.tril(rng.standard_normal((n_draws, n_factors, n_features, n_features)), -1)
    chi2 = rng.chisquare(
        dof[None, :, None] - np.arange(n_features), (n_draws, n_factors, n_features)
    )
    root = np.linalg.cholesky(scale) @ (lower + np.sqrt(chi2)[..., None] * np.eye(n_features))
    prec_chol = np.linalg.cholesky(root @ np.swapaxes(root, -1, -2))  # (S, F, D, D)
    prec = prec_chol @ np.swapaxes(prec_chol, -1, -2)
    log_q = _wishart_logpdf(prec, dof, scale).sum(axis=1)
    log_p = _wishart_logpdf(prec, spec.wishart_dof(n_features), spec.wishart_scale(n_features))
    n_components = spec.n_components
    return (
        np.broadcast_to(prec_chol, (n_draws, n_components, n_features, n_features)),
        log_q,
        (log_p.sum(axis=1)),
    )


def _full_log_likelihood_sum(
    data: np.ndarray, weights: np.ndarray, means: np.ndarray, prec_chol: np.ndarray
) -> np.ndarray:
    """sum_i log p(x_i | theta_s) with full covariances, (S,), in chunks of draws."""
    n_total = weights.shape[0]
    out = np.empty(n_total)
    for chunk in chunks(n_total, data.shape[0] * weights.shape[1]):
        chol = prec_chol if prec_chol.ndim == 3 else prec_chol[chunk]
        out[chunk] = full_mixture_logp(data, weights[chunk], means[chunk], chol).sum(axis=-1)
    return out


def _advi_q(fit: MixtureFit) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """ADVI's q from ``fit.details``: its mean (d,), the Cholesky factor of its covariance
    (d, d) (``unconstrained_chol``; diagonal for mean-field) and the coordinates' labels."""
    details = fit.details
    names = ("unconstrained_mean", "unconstrained_chol", "unconstrained_labels")
    missing = [name for name in names if getattr(details, name, None) is None]
    if missing:
        raise ValueError(
            f"fit: expected q's parameters in fit.details ({', '.join(missing)}) of "
            f"an {fit.engine!r} fit, got none. Refit with ppl_mixtures.fit(...)."
        )
    mean = np.asarray(details.unconstrained_mean, dtype=np.float64)
    chol = np.asarray(details.unconstrained_chol, dtype=np.float64)
    return mean, chol, list(details.unconstrained_labels)


def _advi_log_ratios(
    fit: MixtureFit, data: np.ndarray, n_draws: int, rng: np.random.Generator
) -> np.ndarray:
    """log p(x, theta) + log abs(det J) - log q(theta) for theta ~ q on the unconstrained
    space, (S,)."""
    mean, chol, labels = _advi_q(fit)
    eps = rng.standard_normal((n_draws, mean.size))
    theta = mean + eps @ chol.T
    log_q = -0.5 * (eps**2).sum(axis=1) - np.log(np.diag(chol)).sum() - 0.5 * mean.size * LOG_2PI
    if fit.spec.covariance == "diag":  # numpy (fast; the numbers it always gave)
        return unconstrained_log_joint(theta, labels, fit.spec, data) - log_q
    return pymc_unconstrained_log_joint(theta, labels, fit.spec, data) - log_q
