"""How many components does the data use? :func:`occupied_components` for any fit.

A mixture with T components (a truncated Dirichlet process, ``weights="dp"``, or an
overfitted finite mixture with a small ``dirichlet_alpha``) answers "how many clusters" by the
number of components that hold at least one observation. For every posterior draw
theta_s of the fit,

    z_i ~ Categorical(r_i(theta_s)),   r_ik(theta_s) = p(z_i = k | x_i, theta_s)           (1)
    K_s = #{k : sum_i [z_i = k] >= 1}                                                      (2)

(r: the density of ``model.density`` / ``density_full`` written as one matrix product per
batch of draws, then z_i by inverse CDF with one uniform per point; 100 draws x 10^5
points x T = 10 take ~2 s on a loaded 2-core machine, was 11 s diagonal / 25 s full
with the (draw, point, component, feature) broadcast), so K_s is a draw from the
posterior of the number of occupied components, and its histogram over the draws estimates
that posterior: ``pmf[k]`` = P(k components occupied | x), k = 0..T. The count is
label-invariant: no relabeling is needed, and chains in different label modes agree.

The truncation check of a DP fit (Ishwaran & James 2001, Theorem 2: the truncation error of
the marginal density is bounded through E[w_T]): the posterior mean of the last weight,
``last_weight``, should be small; above :data:`TRUNCATION_LIMIT` a :class:`TruncationWarning`
says to raise ``n_components``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ppl_mixtures.analysis.draws import (
    ParameterDraws,
    check_fit,
    check_fit_points,
    chunks,
    parameter_draws,
)
from ppl_mixtures.results import MixtureFit
from ppl_mixtures.validation import check_int, check_seed

__all__ = ["TRUNCATION_LIMIT", "Occupancy", "TruncationWarning", "occupied_components"]

#: Largest acceptable posterior mean of the last weight w_T of a DP fit.
TRUNCATION_LIMIT = 0.01


class TruncationWarning(UserWarning):
    """The last stick of a truncated DP fit holds too much weight: raise n_components."""


@dataclass(frozen=True, eq=False)
class Occupancy:
    """The posterior of the number of occupied components (see :func:`occupied_components`).

    Attributes
    ----------
    pmf : ndarray of shape (n_components + 1,)
        ``pmf[k]`` = P(k components hold >= 1 observation | x), k = 0..T; sums to 1.
    mean : float
        Posterior mean of the number of occupied components.
    mean_mcse : float
        Monte Carlo standard error of ``mean`` (ArviZ's, over chains and draws, when every
        draw was used and there are >= 4 draws per chain; else the iid formula sd / sqrt(S);
        0 when every draw gave the same count).
    mode : int
        The most probable number of occupied components.
    effective_number : float
        CAVI and SVI fits: the number of components whose expected count
        E[N_k] = sum_i r_ik under the kept q is >= 1 (q's weight factor holds the counts:
        Dirichlet ``weight_conc`` = alpha + N_k, DP ``stick_a`` = 1 + N_k). Other fits: the
        posterior mean count, ``mean``.
    effective_number_method : str
        Which of the two ``effective_number`` is.
    last_weight : float
        Posterior mean of the last component's weight w_T (the truncation check of a DP).
    truncated : bool
        True for a DP fit (``spec.is_dp``): the T components truncate an infinite mixture.
    truncation_ok : bool
        DP fits: ``last_weight <= TRUNCATION_LIMIT``; other fits: True (a finite mixture
        has no truncation; read ``pmf[-1]``: if all K components are often occupied, an
        overfitted K was not large enough).
    n_draws : int
        Posterior draws used (one z per observation drawn for each).
    n_components : int
        T (or K).
    occupied : ndarray of shape (n_draws,)
        The count (2) of every draw used.
    """

    pmf: np.ndarray
    mean: float
    mean_mcse: float
    mode: int
    effective_number: float
    effective_number_method: str
    last_weight: float
    truncated: bool
    truncation_ok: bool
    n_draws: int
    n_components: int
    occupied: np.ndarray

    def to_markdown(self) -> str:
        """The pmf over 1..T as a one-row markdown table, and a line with the summaries."""
        ks = range(1, self.n_components + 1)
        head = "| occupied components | " + " | ".join(str(k) for k in ks) + " |"
        rule = "|---|" + "---|" * self.n_components
        row = "| posterior probability | " + " | ".join(f"{self.pmf[k]:.3f}" for k in ks) + " |"
        check = (
            f"last weight {self.last_weight:.2g} "
            f"({'truncation ok' if self.truncation_ok else 'TRUNCATION TOO LOW'}, "
            f"limit {TRUNCATION_LIMIT:g})"
            if self.truncated
            else f"last weight {self.last_weight:.2g} (finite mixture: no truncation)"
        )
        summary = (
            f"mean {self.mean:.2f} ± {self.mean_mcse:.2f} (MCSE), mode {self.mode}, "
            f"effective number {self.effective_number:.2f} ({self.effective_number_method}), "
            f"{check}; {self.n_draws} draws"
        )
        return "\n".join([head, rule, row, "", summary])

    def __str__(self) -> str:
        return self.to_markdown()


def _sample_occupied(
    data: np.ndarray, draws: ParameterDraws, rng: np.random.Generator
) -> np.ndarray:
    """Eqs. (1)-(2): the number of occupied components for each draw, shape (n_total,).

    log rho_ik(theta_s) = log w_k + log N(x_i | mu_k, Sigma_k) is a linear function of the
    features phi(x) = (x x^T entries, x) (squares only for diagonal covariances), so the
    (N, K) table of a batch of draws is one matrix product phi(X) C (data and means
    centred at the data's mean first, which keeps the expansion's rounding at the size of
    a spread); the table is laid out (b, K, N). z_i is then drawn by inverse CDF with one uniform per point: z_i = #{k :
    u_i sum_j rho_ij > sum_{j<=k} rho_ij}. The uniforms come from ``rng.random`` in draw
    order, one row of N per draw.
    """
    n_samples, n_components = data.shape[0], draws.n_components
    centre = data.mean(axis=0)
    centred = data - centre
    full = draws.obs_cov is not None
    if full:
        quad = (centred[:, :, None] * centred[:, None, :]).reshape(n_samples, -1)
    else:
        quad = centred**2
    features = np.concatenate([quad, centred], axis=1)  # (N, F)
    out = np.empty(draws.n_total, dtype=np.int64)
    for chunk in chunks(draws.n_total, n_samples * n_components):
        coef, const = _log_joint_coefficients(draws, chunk, centre, full)  # (b, K, F), (b, K)
        n_batch = const.shape[0]
        # (b, K, N): the K rows of a draw are contiguous in N, so the reductions over k
        # below are elementwise operations on rows (fast), not reductions of short rows
        table = np.matmul(coef, features.T)
        table += const[..., None]
        table -= table.max(axis=1, keepdims=True)
        np.exp(table, out=table)
        for k in range(1, n_components):  # unnormalized CDF over k, row by row
            table[:, k] += table[:, k - 1]
        u = rng.random((n_batch, n_samples)) * table[:, -1, :]  # one uniform per point
        z = np.zeros((n_batch, n_samples), dtype=np.int64)
        for k in range(n_components - 1):  # z = #{k < K - 1 : u > CDF_k}
            z += u > table[:, k]
        labels = z + n_components * np.arange(n_batch)[:, None]
        hits = np.bincount(labels.ravel(), minlength=n_batch * n_components)
        out[chunk] = (hits.reshape(n_batch, n_components) > 0).sum(-1)
    return out


def _log_joint_coefficients(
    draws: ParameterDraws, chunk: slice, centre: np.ndarray, full: bool
) -> tuple[np.ndarray, np.ndarray]:
    """C (b, K, F) and c (b, K) with log w_k + log N(x | mu_k, Sigma_k) = C_k phi(x - centre)
    + c_k for the chunk's draws (phi as in :func:`_sample_occupied`)."""
    with np.errstate(divide="ignore"):  # a zero weight is log 0 = -inf, which is correct
        log_w = np.log(draws.weights[chunk])  # (b, K)
    n_batch, n_components = log_w.shape
    means = draws.means[chunk] - centre  # (b, K, D)
    n_features = means.shape[-1]
    log_2pi = n_features * np.log(2.0 * np.pi)
    if full:
        assert draws.obs_cov is not None
        cov = draws.obs_cov[chunk] if draws.obs_cov.ndim == 4 else draws.obs_cov
        cov = np.broadcast_to(cov, (n_batch, n_components, n_features, n_features))
        prec = np.linalg.inv(cov)
        prec = 0.5 * (prec + np.swapaxes(prec, -1, -2))
        log_det = np.linalg.slogdet(cov)[1]
        linear = np.einsum("bkde,bke->bkd", prec, means)
        const = -0.5 * (np.einsum("bkd,bkd->bk", means, linear) + log_det + log_2pi)
        quad = -0.5 * prec.reshape(n_batch, n_components, -1)
    else:
        assert draws.obs_sd is not None
        sd = draws.obs_sd[chunk] if draws.obs_sd.ndim == 3 else draws.obs_sd
        sd = np.broadcast_to(sd, means.shape)
        prec = sd**-2.0
        linear = prec * means
        const = -0.5 * (np.sum(prec * means**2, -1) + log_2pi) - np.log(sd).sum(-1)
        quad = -0.5 * prec
    return np.concatenate([quad, linear], axis=-1), const + log_w  # (b, K, F), (b, K)


def _expected_counts(fit: MixtureFit, n_samples: int) -> np.ndarray | None:
    """E[N_k] under a conjugate q (CAVI, SVI), from its weight factor; None otherwise."""
    params = getattr(fit.details, "variational_params", None)
    if not isinstance(params, dict):
        return None
    if params.get("stick_a") is not None:  # q(v_k) = Beta(1 + N_k, ...), k < T
        head = np.asarray(params["stick_a"], dtype=float) - 1.0
        return np.append(head, n_samples - head.sum())  # sum_k N_k = N
    if params.get("weight_conc") is not None:  # q(w) = Dirichlet(alpha + N)
        return np.asarray(params["weight_conc"], dtype=float) - fit.spec.alpha()
    return None


def _mcse_of_mean(occupied: np.ndarray, shape: tuple[int, int] | None) -> float:
    """MCSE of the mean count: ArviZ's over (chain, draw) when ``shape`` is given and every
    chain has >= 4 draws, else sd / sqrt(S); 0 for a constant count."""
    if np.ptp(occupied) == 0:
        return 0.0
    if shape is not None and shape[1] >= 4:
        import arviz as az

        return float(az.mcse(occupied.reshape(shape).astype(float)))
    return float(occupied.std(ddof=1) / np.sqrt(occupied.size)) if occupied.size > 1 else np.nan


def occupied_components(
    fit: MixtureFit, points: Any = None, *, n_draws: int | None = None, random_seed: Any = 0
) -> Occupancy:
    """The posterior of the number of occupied components, eqs. (1)-(2) of the module docs.

    Parameters
    ----------
    fit : MixtureFit
        Any fit with posterior draws (DP or Dirichlet weights, any covariance type); a point
        estimate (EM) is one draw.
    points : array-like of shape (n_samples, n_features), optional
        The observations to assign; the fit's own data when None.
    n_draws : int, optional
        Use this many posterior draws, chosen at random without replacement (at most the
        fit's number); all draws when None.
    random_seed : int or None
        Seeds the choice of draws and the z draws (same seed, same numbers).

    Returns
    -------
    Occupancy

    Warns
    -----
    TruncationWarning
        For a DP fit whose posterior mean last weight exceeds :data:`TRUNCATION_LIMIT`.

    Examples
    --------
    >>> occ = occupied_components(nuts_fit)  # doctest: +SKIP
    >>> occ.pmf[3]  # P(3 occupied components | x)  # doctest: +SKIP
    """
    fit = check_fit(fit)
    data = check_fit_points(fit, points)
    rng = np.random.default_rng(check_seed(random_seed))
    draws = parameter_draws(fit)
    sizes = fit.idata["posterior"].sizes
    shape: tuple[int, int] | None = (int(sizes["chain"]), int(sizes["draw"]))
    last_weight = float(draws.weights[:, -1].mean())
    if n_draws is not None:
        n_draws = check_int(
            "n_draws",
            n_draws,
            minimum=1,
            maximum=draws.n_total,
            hint=f"Pass at most the fit's {draws.n_total} draws, or None for all",
        )
        draws = draws.select(np.sort(rng.choice(draws.n_total, size=n_draws, replace=False)))
        shape = None
    occupied = _sample_occupied(data, draws, rng)
    n_components = draws.n_components
    pmf = np.bincount(occupied, minlength=n_components + 1) / occupied.size
    mean = float(occupied.mean())
    counts = _expected_counts(fit, fit.points.shape[0])
    if counts is not None:
        effective, method = float((counts >= 1.0).sum()), "components with E[N_k] >= 1 under q"
    else:
        effective, method = mean, "posterior mean count"
    truncated = bool(fit.spec.is_dp)
    ok = (last_weight <= TRUNCATION_LIMIT) if truncated else True
    if not ok:
        warnings.warn(
            f"occupied_components: the last component's posterior mean weight is "
            f"{last_weight:.3g} > {TRUNCATION_LIMIT:g}, so the truncation at T = "
            f"{n_components} may cut off mass the data would use; increase n_components "
            f"(the truncation level) and fit again.",
            TruncationWarning,
            stacklevel=2,
        )
    return Occupancy(
        pmf=pmf,
        mean=mean,
        mean_mcse=_mcse_of_mean(occupied, shape),
        mode=int(np.argmax(pmf)),
        effective_number=effective,
        effective_number_method=method,
        last_weight=last_weight,
        truncated=truncated,
        truncation_ok=bool(ok),
        n_draws=int(occupied.size),
        n_components=n_components,
        occupied=occupied,
    )
