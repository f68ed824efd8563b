"""log p(x, theta) in numpy: the prior and likelihood terms, and
:func:`unconstrained_log_joint`, the density ADVI's q approximates (the p of ADVI's k-hat);
:func:`pymc_unconstrained_log_joint` evaluates the same density with the PyMC model itself
(every covariance type, e.g. the Bartlett coordinates of a learned full covariance)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ppl_mixtures.analysis.draws import chunks, sd_slice
from ppl_mixtures.model.density import mixture_logp
from ppl_mixtures.model.priors import dirichlet_log_prior, gamma_log_prior, normal_log_prior

if TYPE_CHECKING:
    from ppl_mixtures.model.spec import MixtureSpec

__all__ = [
    "log_dirichlet",
    "log_gamma",
    "log_likelihood_sum",
    "log_prior_means",
    "pymc_unconstrained_log_joint",
    "unconstrained_log_joint",
]


def log_prior_means(means: np.ndarray, spec: MixtureSpec, n_features: int) -> np.ndarray:
    """sum_kd log N(means_kd | m0_d, s0_d^2), means (S, K, D) -> (S,)."""
    prior_var = spec.prior_sd(n_features) ** 2
    return normal_log_prior(means, 0.0, spec.prior_mean(n_features), prior_var).sum(axis=(1, 2))


def log_dirichlet(log_w: np.ndarray, conc: np.ndarray) -> np.ndarray:
    """log Dirichlet(w | conc) from log w (S, K) -> (S,), w.r.t. Lebesgue measure on
    w_1..w_{K-1}."""
    return dirichlet_log_prior(log_w, conc)


def log_gamma(
    tau: np.ndarray, log_tau: np.ndarray, shape: np.ndarray | float, rate: np.ndarray | float
) -> np.ndarray:
    """sum over (K, D) of log Gamma(tau | shape, rate), tau (S, K, D) -> (S,)."""
    return gamma_log_prior(tau, log_tau, shape, rate).sum(axis=(1, 2))


def log_likelihood_sum(
    data: np.ndarray, weights: np.ndarray, means: np.ndarray, obs_sd: np.ndarray
) -> np.ndarray:
    """sum_i log p(x_i | theta_s), (S,), in chunks of draws."""
    n_total = weights.shape[0]
    out = np.empty(n_total)
    for chunk in chunks(n_total, data.shape[0] * weights.shape[1]):
        out[chunk] = mixture_logp(data, weights[chunk], means[chunk], sd_slice(obs_sd, chunk)).sum(
            axis=-1
        )
    return out


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
    return {
        name: theta[:, [i for i, n in enumerate(names) if n == name]]
        for name in dict.fromkeys(names)
    }


def _dp_unconstrained(
    blocks: dict[str, np.ndarray], spec: MixtureSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truncated-DP weights (S, T), log p and log abs(det J) (S,) each, from the PyMC
    model's value variables (:mod:`ppl_mixtures.inference.pymc.dp`).

    ``dp_neg_log_rest_log__`` holds y = log e with e_k = -log(1 - v_k) ~ Exponential(alpha)
    (log p = log alpha - alpha e, log abs(det J) = y); ``dp_alpha_log__`` (learned alpha)
    holds log alpha, alpha ~ Gamma(dp_alpha_prior) (log abs(det J) = log alpha). The
    weights follow in log space: log w_k = log(1 - exp(-e_k)) - sum_{j<k} e_j,
    log w_T = -sum_{j<T} e_j.
    """
    y = blocks["dp_neg_log_rest_log__"]  # (S, T-1)
    rest = np.exp(y)
    log_jac = y.sum(axis=1)
    if spec.learned_dp_alpha:
        log_alpha = blocks["dp_alpha_log__"][:, 0]
        alpha = np.exp(log_alpha)
        log_jac = log_jac + log_alpha
        log_p = gamma_log_prior(alpha, log_alpha, *spec.dp_alpha_prior)
    else:
        alpha = np.full(y.shape[0], float(spec.dp_alpha))
        log_alpha = np.log(alpha)
        log_p = np.zeros(y.shape[0])
    log_p = log_p + (log_alpha[:, None] - alpha[:, None] * rest).sum(axis=1)
    left = -np.cumsum(rest, axis=1)  # log of the stick left after break k
    before = np.concatenate([np.zeros((y.shape[0], 1)), left[:, :-1]], axis=1)
    with np.errstate(divide="ignore"):  # e = 0 exactly: a stick of 0, weight 0
        log_v = np.log(-np.expm1(-rest))
    log_w = np.concatenate([log_v + before, left[:, -1:]], axis=1)
    return np.exp(log_w), log_p, log_jac


def unconstrained_log_joint(
    theta: np.ndarray, labels: list[str], spec: MixtureSpec, points: np.ndarray
) -> np.ndarray:
    """log p(x, theta) + log abs(det J(theta)) at unconstrained points, in numpy, (S,).

    The density ADVI's q approximates (``models.build_marginal_model`` with
    ``logp(jacobian=True)``), for every parameterization the models use: free ``means``, or
    ``means_first`` through PyMC's ordered transform (x_0 = y_0, x_k = x_(k-1) + exp(y_k),
    log abs(det J) = sum_(k>=1) y_k) plus ``means_rest``; weights through our stick-breaking
    (:mod:`ppl_mixtures.model.transforms`) or PyMC's simplex transform, or truncated-DP
    sticks through e = -log(1 - v) ~ Exponential(alpha) and log (and a learned alpha
    through log); learned precisions through log (log abs(det J) = sum y).

    Parameters
    ----------
    theta : ndarray of shape (n_draws, d)
    labels : list of str, length d
        ADVI's ``fit.details.unconstrained_labels`` (value-variable names with indices, C order).
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
        means = np.concatenate(
            [first[:, :, None], rest.reshape(n_draws, n_components, n_features - 1)], axis=2
        )
    log_p = log_prior_means(means, spec, n_features)
    if spec.fixed_weights:
        weights = np.broadcast_to(spec.fixed_weight_values(), (n_draws, n_components))
    elif spec.is_dp:
        weights, log_p_dp, log_jac_dp = _dp_unconstrained(blocks, spec)
        log_p, log_jac = log_p + log_p_dp, log_jac + log_jac_dp
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
            log_p = log_p + log_dirichlet(np.log(weights), spec.alpha())
    if spec.learned_obs_sd:
        log_tau = blocks["obs_precision_log__"].reshape(n_draws, n_components, n_features)
        tau = np.exp(log_tau)
        log_jac += log_tau.sum(axis=(1, 2))
        log_p = log_p + log_gamma(
            tau, log_tau, spec.precision_prior_shape, spec.precision_prior_rate
        )
        obs_sd = np.exp(-0.5 * log_tau)
    else:
        obs_sd = spec.known_obs_sd(n_features)
    return log_p + log_jac + log_likelihood_sum(points, weights, means, obs_sd)


def pymc_unconstrained_log_joint(
    theta: np.ndarray, labels: list[str], spec: MixtureSpec, points: np.ndarray
) -> np.ndarray:
    """log p(x, theta) + log abs(det J(theta)) at unconstrained points, by the PyMC model, (S,).

    The model of ``models.build_marginal_model(points, spec)`` (full data), its
    ``logp(jacobian=True)`` compiled once (FAST_COMPILE: about 0.2 s) and evaluated draw by
    draw; ``labels`` (ADVI's ``fit.details.unconstrained_labels``, value-variable names with
    indices in C order) say which value variable each coordinate of theta fills. For a
    diagonal spec it equals :func:`unconstrained_log_joint` up to a constant below 1e-6
    nats; it serves every covariance type.

    Parameters
    ----------
    theta : ndarray of shape (n_draws, d)
    labels : list of str, length d
    spec : MixtureSpec
    points : ndarray of shape (n_samples, n_features)
    """
    from ppl_mixtures.inference.pymc.models import build_marginal_model

    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    model = build_marginal_model(points, spec, batch_size=None, check_input=False)
    shapes = {name: np.shape(value) for name, value in model.initial_point().items()}
    names = list(dict.fromkeys(label.split("[")[0] for label in labels))
    missing = [name for name in names if name not in shapes]
    if missing or sum(int(np.prod(shapes[n])) for n in names) != theta.shape[1]:
        raise ValueError(
            f"labels: expected the value variables of the spec's PyMC model "
            f"({', '.join(shapes)}), got {', '.join(names)} for {theta.shape[1]} "
            f"coordinates. Pass the labels of an ADVI fit of this spec."
        )
    bounds = np.cumsum([0] + [int(np.prod(shapes[n])) for n in names])
    logp = model.compile_logp(jacobian=True, mode="FAST_COMPILE")
    return np.array(
        [
            float(
                logp(
                    {
                        n: row[bounds[i] : bounds[i + 1]].reshape(shapes[n])
                        for i, n in enumerate(names)
                    }
                )
            )
            for row in theta
        ]
    )
