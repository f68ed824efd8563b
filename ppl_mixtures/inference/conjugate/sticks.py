"""The stick factors of CAVI and SVI for truncated Dirichlet-process weights (``weights="dp"``).

The prior (``model/spec.py``; Ishwaran & James 2001 for the truncation, Blei & Jordan 2006,
Bayesian Analysis 1(1), §3 for the variational family), T = ``n_components``::

    v_k ~ Beta(1, alpha)  k < T,  v_T = 1,   w_k = v_k prod_{j<k} (1 - v_j)
    alpha fixed (dp_alpha), or alpha ~ Gamma(s1, s2) (dp_alpha_prior, shape/rate)

The factors of q (Blei & Jordan 2006, §3, with their Gamma factor on alpha)::

    q(v_k) = Beta(gamma1_k, gamma2_k)   k < T        q(alpha) = Gamma(w1, w2)

Given q(z) with expected counts N_k = sum_i r_ik, the optimal factors are (ibid.;
M_k = sum_{j>k} N_j)::

    gamma1_k = 1 + N_k,   gamma2_k = E[alpha] + M_k                                    (1)
    w1 = s1 + T - 1,      w2 = s2 - sum_{k<T} E[log(1 - v_k)]                          (2)

and E[log w_k] = E[log v_k] + sum_{j<k} E[log(1 - v_j)] (ibid.) takes the place of the
Dirichlet's psi(alpha_k) - psi(sum alpha) in q(z)'s update.

With alpha learned, (1) and (2) depend on each other. :func:`update` solves them jointly:
with a = E[alpha], (1) gives E[log(1 - v_k)] = psi(a + M_k) - psi(1 + N_k + M_k + a), and
(2) then says ``a (s2 + sum_k h_k(a)) = s1 + T - 1`` with
h_k(a) = psi(1 + N_k + M_k + a) - psi(a + M_k) > 0. The left side is strictly increasing in
a: a s2 is, and so is a h_k(a) = (y - M_k) h(y), y = a + M_k, whose derivative is at least
d/dy [y h(y)] (h decreases, M_k >= 0); and y h(y) = y (psi(y + c) - psi(y)), c = 1 + N_k
>= 1, equals int_0^inf e^-s g(s / y) ds with g(t) = (1 - e^-ct) / (1 - e^-t), which
decreases in t for c >= 1 (d/dt log g = c / (e^ct - 1) - 1 / (e^t - 1) <= 0), so y h(y)
increases. Hence exactly one root, found by Brent's method to machine precision. A
fixed point of the coordinate updates (1)-(2) is a stationary point of the ELBO in the
(q(v), q(alpha)) block, and there is only one, so the root is the block's optimum: each
CAVI sweep takes the exact block maximum, which keeps the ELBO monotone.

SVI (Hoffman et al. 2013): the Beta's natural parameters (gamma1 - 1, gamma2 - 1) and the
Gamma's (w1 - 1, -w2) are affine in (gamma1, gamma2) and (w1, w2), so the natural-gradient
step mixes those directly (:func:`natural_step`); its target is the joint optimum (1)-(2)
for the rescaled minibatch counts.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import brentq
from scipy.special import digamma

from ppl_mixtures.model.priors import beta_log_prior, gamma_log_prior, stick_log_prior
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.model.transforms import expected_log_stick_weights, log_stick_weights

__all__ = [
    "StickDraws",
    "StickFactors",
    "draws",
    "expected_alpha",
    "expected_counts",
    "expected_log_weights",
    "factors_of",
    "kl",
    "log_weight_expectations",
    "natural_step",
    "natural_step_of",
    "size_biased",
    "update",
    "values_per_draw",
    "weight_draws",
]


class StickFactors(NamedTuple):
    """q(v) and q(alpha): the four optional fields of ``VariationalParams`` / ``FullParams``.

    Attributes
    ----------
    stick_a, stick_b : ndarray of shape (T - 1,)
        q(v_k) = Beta(stick_a_k, stick_b_k) (gamma1, gamma2 of Blei & Jordan 2006).
    alpha_shape, alpha_rate : ndarray of shape (1,) or None
        q(alpha) = Gamma(shape, rate); None when alpha is fixed at ``spec.dp_alpha``.
    """

    stick_a: np.ndarray
    stick_b: np.ndarray
    alpha_shape: np.ndarray | None
    alpha_rate: np.ndarray | None


def _beta_log_means(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E[log v], E[log(1 - v)] for v ~ Beta(a, b) (psi(a) - psi(a + b), psi(b) - psi(a + b))."""
    total = digamma(a + b)
    return digamma(a) - total, digamma(b) - total


def expected_alpha(factors: StickFactors, spec: MixtureSpec) -> tuple[float, float]:
    """(E[alpha], E[log alpha]) under q(alpha) = Gamma(w1, w2): (w1 / w2, psi(w1) - log w2);
    the fixed ``spec.dp_alpha`` and its log when alpha is not learned."""
    if factors.alpha_shape is None or factors.alpha_rate is None:
        return spec.dp_alpha, float(np.log(spec.dp_alpha))
    shape, rate = float(factors.alpha_shape[0]), float(factors.alpha_rate[0])
    return shape / rate, float(digamma(shape) - np.log(rate))


def expected_log_weights(factors: StickFactors) -> np.ndarray:
    """E[log w_k] of the stick-broken weights, shape (T,) (Blei & Jordan 2006, §3)."""
    return expected_log_stick_weights(*_beta_log_means(factors.stick_a, factors.stick_b))


def update(counts: np.ndarray, spec: MixtureSpec) -> StickFactors:
    """The optimal q(v) (and q(alpha)) given expected counts N_k, shape (T,): (1)-(2) of the
    module docs, solved jointly when alpha is learned (the block's exact optimum)."""
    counts = np.asarray(counts, dtype=np.float64)
    n_sticks = counts.shape[0] - 1
    stick_a = 1.0 + counts[:-1]
    after = np.cumsum(counts[::-1])[::-1][1:]  # M_k = sum_{j>k} N_j, k < T
    if spec.dp_alpha_prior is None:
        return StickFactors(stick_a, spec.dp_alpha + after, None, None)
    s1, s2 = spec.dp_alpha_prior
    shape = s1 + n_sticks

    def excess(a: float) -> float:  # a (s2 + sum_k h_k(a)) - (s1 + T - 1), increasing in a
        return a * (s2 + float(np.sum(digamma(stick_a + after + a) - digamma(after + a)))) - shape

    low, high = 1e-300, shape / s2  # excess(high) >= 0 since every h_k > 0
    mean_alpha = high if excess(high) <= 0.0 else brentq(excess, low, high, xtol=1e-300, rtol=1e-15)
    _, e_log_1mv = _beta_log_means(stick_a, mean_alpha + after)
    rate = s2 - float(e_log_1mv.sum())
    return StickFactors(stick_a, mean_alpha + after, np.array([shape]), np.array([rate]))


def kl(factors: StickFactors, spec: MixtureSpec) -> float:
    """KL(q(v) || p(v | alpha)) averaged over q(alpha), plus KL(q(alpha) || p(alpha)), nats.

    With a = E[alpha] and E[log alpha] under q(alpha) (their fixed values otherwise)::

        E[log p(v | alpha)] = sum_{k<T} E[log alpha] + (E[alpha] - 1) E[log(1 - v_k)]
        E[log q(v)]         = sum_{k<T} E[log Beta(v_k | gamma1_k, gamma2_k)]
        KL(q(alpha) || p)   = E[log Gamma(alpha | w1, w2)] - E[log Gamma(alpha | s1, s2)]

    (``model.priors``: ``stick_log_prior``, ``beta_log_prior``, ``gamma_log_prior``; a
    factor's negative entropy is its own log-density in expectation.)
    """
    e_log_v, e_log_1mv = _beta_log_means(factors.stick_a, factors.stick_b)
    mean_alpha, mean_log_alpha = expected_alpha(factors, spec)
    log_q_v = beta_log_prior(e_log_v, e_log_1mv, factors.stick_a, factors.stick_b).sum()
    total = float(log_q_v - stick_log_prior(e_log_1mv, mean_alpha, mean_log_alpha))
    if factors.alpha_shape is not None and factors.alpha_rate is not None:
        assert spec.dp_alpha_prior is not None
        shape, rate = factors.alpha_shape[0], factors.alpha_rate[0]
        moments = np.asarray(mean_alpha), np.asarray(mean_log_alpha)
        log_q_alpha = gamma_log_prior(*moments, shape, rate)
        total += float(log_q_alpha - gamma_log_prior(*moments, *spec.dp_alpha_prior))
    return total


def natural_step(old: StickFactors, target: StickFactors, rho: float) -> StickFactors:
    """(1 - rho) old + rho target: the natural parameters (gamma1 - 1, gamma2 - 1) of each
    Beta and (w1 - 1, -w2) of the Gamma are affine in the fields, so the fields mix."""

    def mix(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
        return None if a is None or b is None else (1.0 - rho) * a + rho * b

    stick_a, stick_b = mix(old.stick_a, target.stick_a), mix(old.stick_b, target.stick_b)
    assert stick_a is not None and stick_b is not None
    return StickFactors(
        stick_a,
        stick_b,
        mix(old.alpha_shape, target.alpha_shape),
        mix(old.alpha_rate, target.alpha_rate),
    )


class StickDraws(NamedTuple):
    """Draws from q: weights (1, S, T), sticks (1, S, T - 1), alpha (1, S) or None."""

    weights: np.ndarray
    sticks: np.ndarray
    alpha: np.ndarray | None


def draws(factors: StickFactors, n_draws: int, rng: np.random.Generator) -> StickDraws:
    """Sticks v ~ q(v), their stick-broken weights (unsorted: the order is part of the
    prior), and alpha ~ q(alpha) when learned (drawn after the sticks)."""
    n_sticks = factors.stick_a.shape[0]
    sticks = rng.beta(factors.stick_a, factors.stick_b, size=(1, n_draws, n_sticks))
    weights = np.exp(log_stick_weights(sticks))
    alpha = None
    if factors.alpha_shape is not None and factors.alpha_rate is not None:
        alpha = rng.gamma(factors.alpha_shape[0], 1.0 / factors.alpha_rate[0], size=(1, n_draws))
    return StickDraws(weights, sticks, alpha)


def factors_of(params: Any) -> StickFactors | None:
    """The stick factors held by a ``VariationalParams`` / ``FullParams`` (None if not dp)."""
    if getattr(params, "stick_a", None) is None or params.stick_b is None:
        return None
    return StickFactors(params.stick_a, params.stick_b, params.alpha_shape, params.alpha_rate)


def expected_counts(variational_params: Any, spec: MixtureSpec) -> np.ndarray:
    """E[N_k] = sum_i r_ik, shape (T,), of the q(z) a CAVI fit's stick factors were set from.

    Reads ``fit.details.variational_params`` (a dict or a params record): by (1) and (2),
    N_k = stick_a_k - 1 for k < T and N_T = stick_b_{T-1} - E[alpha] (E[alpha] =
    alpha_shape / alpha_rate when learned, ``spec.dp_alpha`` otherwise). Exact for CAVI,
    whose kept factors are (1)-(2) of its last pass; for SVI the factors are running
    averages, so these are smoothed minibatch estimates.
    """
    get = (
        variational_params.get
        if isinstance(variational_params, dict)
        else lambda name: getattr(variational_params, name, None)
    )
    stick_a, stick_b = get("stick_a"), get("stick_b")
    if stick_a is None or stick_b is None:
        raise ValueError(
            "variational_params: expected the stick factors 'stick_a' and 'stick_b' of a "
            "weights='dp' fit with n_components >= 2, got none. Fit a "
            "MixtureSpec(weights='dp', n_components=T >= 2) with engine 'cavi' or 'svi'."
        )
    shape, rate = get("alpha_shape"), get("alpha_rate")
    mean_alpha = spec.dp_alpha if shape is None or rate is None else float(shape[0] / rate[0])
    stick_a, stick_b = np.asarray(stick_a, float), np.asarray(stick_b, float)
    return np.append(stick_a - 1.0, stick_b[-1] - mean_alpha)


# ------------------------------------------------ the weights' factor, whichever the spec has
def log_weight_expectations(params: Any, spec: MixtureSpec) -> np.ndarray:
    """E[log w_k] under q's weight factor, shape (K,): stick-breaking (Blei & Jordan 2006), Dirichlet
    (psi(conc_k) - psi(sum conc)), or log(1/K) for fixed weights."""
    factors = factors_of(params)
    if factors is not None:
        return expected_log_weights(factors)
    if params.weight_conc is None:
        return np.log(spec.fixed_weight_values())
    return digamma(params.weight_conc) - digamma(params.weight_conc.sum())


def weight_draws(
    params: Any, spec: MixtureSpec, n_draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Weights (1, S, K) from q's weight factor, and for dp the extra posterior draws
    ``dp_sticks`` (1, S, T - 1) and, when alpha is learned, ``dp_alpha`` (1, S)."""
    factors = factors_of(params)
    n_components = spec.n_components
    if factors is not None:
        drawn = draws(factors, n_draws, rng)
        extras = {"dp_sticks": drawn.sticks}
        if drawn.alpha is not None:
            extras["dp_alpha"] = drawn.alpha
        return drawn.weights, extras
    if params.weight_conc is None:
        fixed = np.broadcast_to(spec.fixed_weight_values(), (1, n_draws, n_components)).copy()
        return fixed, {}
    return rng.dirichlet(params.weight_conc, size=(1, n_draws)), {}


def values_per_draw(spec: MixtureSpec) -> int:
    """Floats a dp draw stores beyond the weights: T - 1 sticks and alpha when learned."""
    if not spec.is_dp or spec.fixed_weights:
        return 0
    return spec.n_components - 1 + (1 if spec.learned_dp_alpha else 0)


def natural_step_of(old: Any, target: Any, rho: float) -> StickFactors | None:
    """SVI's step on the stick factors of two dp params records; None when not dp."""
    old_factors, target_factors = factors_of(old), factors_of(target)
    if old_factors is None or target_factors is None:
        return None
    return natural_step(old_factors, target_factors, rho)


def size_biased(stats: Any, spec: MixtureSpec) -> Any:
    """For dp: the hard-assignment statistics (``SufficientStats`` or ``FullStats``) with
    components relabelled by decreasing count (stable), the order under which the
    stick-breaking prior expects them; unchanged otherwise."""
    if not spec.is_dp:
        return stats
    order = np.argsort(-stats.counts, kind="stable")
    return dataclasses.replace(
        stats,
        counts=stats.counts[order],
        means=stats.means[order],
        scatter=stats.scatter[order],
    )
