"""Coordinate-ascent variational inference (CAVI) for the MixtureSpec model, in numpy.

The model (``spec.py``)::

    mu_kd ~ N(m0_d, s0_d^2)     w ~ Dirichlet(alpha) or w = 1/K     tau_kd ~ Gamma(a0, b0) or known
    z_i ~ Cat(w)                x_id | z_i = k ~ N(mu_kd, 1/tau_kd)

The mean-field family (Blei et al. 2017, §2.2 and the mixture example of §3; Bishop 2006,
§10.2)::

    q(z, mu, w, tau) = prod_i Cat(z_i | r_i) prod_kd N(mu_kd | m_kd, s2_kd)
                       x Dir(w | alpha_hat) x prod_kd Gamma(tau_kd | a_kd, b_kd)

Each factor is set in turn to its optimum given the others, q_j* ∝ exp E_{-j}[log p(x, all)]
(Blei et al. 2017, the CAVI update of §2.4; Bishop 2006, eq. 10.9), so the ELBO never
decreases. The ELBO keeps every constant: it is a lower bound on log p(x) and equals, up
to the q(z) part, the ELBO ADVI maximizes for the same spec (see :func:`elbo`).

One iteration (:func:`step`) is one pass over the data (``_kernels.one_pass``) followed by
the O(KD) global updates. ``init`` / ``step`` / ``fit`` let a notebook step through it::

    state = cavi.init(points, spec, random_seed=0)
    for _ in range(50):
        state, info = cavi.step(points, spec, state)
        print(info.elbo)                                  # nats, higher is better
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from scipy.special import digamma, gammaln

from .. import validation as v
from ..results import ConvergenceWarning, MixtureFit, Timings, make_idata, stopwatch
from ..spec import MixtureSpec
from . import Engine
from . import _kernels as kernels

__all__ = ["ENGINES", "CaviInfo", "CaviState", "VariationalParams", "elbo", "fit", "init",
           "step"]

LOG_2PI = float(np.log(2.0 * np.pi))


class VariationalParams(NamedTuple):
    """The parameters of the global factors of q (the local q(z_i) are implied, see step).

    Attributes
    ----------
    mean_loc, mean_var : ndarray of shape (n_components, n_features)
        q(mu_kd) = N(mean_loc_kd, mean_var_kd).
    weight_conc : ndarray of shape (n_components,) or None
        q(w) = Dirichlet(weight_conc); None when the spec fixes the weights at 1/K.
    prec_shape, prec_rate : ndarray of shape (n_components, n_features) or None
        q(tau_kd) = Gamma(shape, rate) on the precisions; None when obs_sd is known.
    """

    mean_loc: np.ndarray
    mean_var: np.ndarray
    weight_conc: np.ndarray | None
    prec_shape: np.ndarray | None
    prec_rate: np.ndarray | None


class CaviState(NamedTuple):
    """Loop state of CAVI.

    Attributes
    ----------
    params : VariationalParams
        The current global factors of q.
    elbo : float
        ELBO (nats, higher is better) of (q(z) from the last pass, ``params``); -inf after
        :func:`init`, which has no q(z) yet.
    n_iter : int
        Steps taken since :func:`init`.
    """

    params: VariationalParams
    elbo: float
    n_iter: int


class CaviInfo(NamedTuple):
    """What one :func:`step` saw.

    Attributes
    ----------
    elbo : float
        The ELBO after the step, in nats (higher is better, every constant kept).
    elbo_change : float
        elbo minus the previous state's elbo (>= 0 up to rounding; +inf on the first step).
    counts : ndarray of shape (n_components,)
        sum_i r_ik, the expected number of points per component.
    """

    elbo: float
    elbo_change: float
    counts: np.ndarray


# ----------------------------------------------------------------- expectations under q
class _Expectations(NamedTuple):
    log_weights: np.ndarray   # (K,)   E[log w_k]
    prec: np.ndarray          # (K, D) E[tau_kd]
    log_prec: np.ndarray      # (K, D) E[log tau_kd]


def _expectations(params: VariationalParams, spec: MixtureSpec) -> _Expectations:
    """E[log w], E[tau], E[log tau] under q (Bishop 2006, eqs. 10.66 and B.30)."""
    n_features = params.mean_loc.shape[1]
    if params.weight_conc is None:
        log_weights = np.log(spec.fixed_weight_values())
    else:
        log_weights = digamma(params.weight_conc) - digamma(params.weight_conc.sum())
    if params.prec_shape is None:
        prec = spec.known_obs_sd(n_features) ** -2.0
        log_prec = np.log(prec)
    else:
        prec = params.prec_shape / params.prec_rate
        log_prec = digamma(params.prec_shape) - np.log(params.prec_rate)
    return _Expectations(log_weights, prec, log_prec)


def _log_rho_constants(params: VariationalParams, expect: _Expectations) -> np.ndarray:
    """log_const_k of the local update, shape (n_components,).

    Notes
    -----
    The optimal q(z_i) (Bishop 2006, eq. 10.46, with a diagonal Gaussian; Blei et al. 2017,
    §3 for fixed weights and unit variance) is r_ik ∝ rho_ik with::

        log rho_ik = E[log w_k] + sum_d ( 1/2 E[log tau_kd] - 1/2 log 2 pi
                                          - 1/2 E[tau_kd] ((x_id - m_kd)^2 + s2_kd) )

    The constant -1/2 log 2 pi cancels in r but is kept so that the kernel's
    sum_i logsumexp_k log rho_ik is a proper log-density term. Everything but
    -1/2 E[tau] (x - m)^2 goes into log_const; the kernel adds the rest.
    """
    per_feature = 0.5 * expect.log_prec - 0.5 * LOG_2PI - 0.5 * expect.prec * params.mean_var
    return expect.log_weights + per_feature.sum(axis=1)


# ----------------------------------------------------------------- global updates
def _update_globals(stats: kernels.PassStats, centers: np.ndarray, spec: MixtureSpec,
                    old_prec: np.ndarray, learned: bool, dirichlet: bool,
                    ) -> VariationalParams:
    """The optimal q(w), q(mu), then q(tau), given the statistics of q(z).

    Parameters
    ----------
    stats : PassStats
        Sums of r about ``centers`` (counts (K,), sum_dev (K, D), sum_sq_dev (K, D)).
    centers : ndarray of shape (n_components, n_features)
    old_prec : ndarray of shape (n_components, n_features)
        E[tau] under the current q(tau) (the q(mu) update needs it).

    Notes
    -----
    With N_k = sum_i r_ik and S_kd = sum_i r_ik x_id (Bishop 2006, eqs. 10.51-10.52):

    - q(w) = Dir(alpha + N)                                           (Bishop eq. 10.58)
    - q(mu_kd): precision 1/s0^2 + E[tau_kd] N_k, mean
      (m0/s0^2 + E[tau_kd] S_kd) / precision. This is Blei et al. 2017's m_k, s_k^2 update
      (§3) with a general prior and E[tau] in place of 1. We compute the mean as
      center + ((m0 - center)/s0^2 + E[tau] sum_dev) / precision, the same number with the
      large terms cancelled analytically.
    - q(tau_kd) = Gamma(a0 + N_k/2, b0 + 1/2 sum_i r_ik E[(x_id - mu_kd)^2]), with
      E[(x - mu)^2] = (x - m)^2 + s2 under the *new* q(mu).
      Deviation from Bishop §10.2: his conjugate Gaussian-Wishart prior ties mu to the
      precision and q(mu, Lambda) stays jointly conjugate; our prior is independent
      (semi-conjugate), so the mean-field q(mu) q(tau) is updated as two coordinates.
    """
    n_features = centers.shape[1]
    counts = stats.counts
    prior_mean = spec.prior_mean(n_features)
    prior_prec = spec.prior_sd(n_features) ** -2.0
    weight_conc = spec.alpha() + counts if dirichlet else None
    post_prec = prior_prec + old_prec * counts[:, None]                      # (K, D)
    shift = ((prior_mean - centers) * prior_prec + old_prec * stats.sum_dev) / post_prec
    mean_loc = centers + shift
    mean_var = 1.0 / post_prec
    if not learned:
        return VariationalParams(mean_loc, mean_var, weight_conc, None, None)
    # sum_i r_ik (x_id - m_new)^2 from sums about the old center (shift = m_new - center)
    sq_dev_new = np.maximum(stats.sum_sq_dev - 2.0 * shift * stats.sum_dev
                            + counts[:, None] * shift**2, 0.0)
    prec_shape = spec.precision_prior_shape + 0.5 * counts[:, None] * np.ones(n_features)
    prec_rate = spec.precision_prior_rate + 0.5 * (sq_dev_new + counts[:, None] * mean_var)
    return VariationalParams(mean_loc, mean_var, weight_conc, prec_shape, prec_rate)


# ----------------------------------------------------------------- the ELBO
def _dirichlet_log_norm(conc: np.ndarray) -> float:
    """log B(conc)^-1 = log Gamma(sum conc) - sum log Gamma(conc)."""
    return float(gammaln(conc.sum()) - gammaln(conc).sum())


def elbo(stats: kernels.PassStats, centers: np.ndarray, params: VariationalParams,
         spec: MixtureSpec) -> float:
    """ELBO(q) = E_q[log p(x, z, mu, w, tau)] - E_q[log q(z, mu, w, tau)], every constant kept.

    Parameters
    ----------
    stats : PassStats
        Statistics of q(z) (sums about ``centers``), from the pass that set q(z).
    centers : ndarray of shape (n_components, n_features)
    params : VariationalParams
        The global factors (usually just updated from ``stats``).

    Returns
    -------
    float
        Nats, higher is better; <= log p(x) (Jensen, Blei et al. 2017, eq. 13).

    Notes
    -----
    The terms (Bishop 2006, eqs. 10.70-10.77, for our diagonal semi-conjugate model), with
    Q_kd = sum_i r_ik (x_id - m_kd)^2:

    - E[log p(x | z, mu, tau)] = sum_kd N_k (1/2 E[log tau] - 1/2 log 2 pi)
      - 1/2 E[tau] (Q_kd + N_k s2_kd)
    - E[log p(z | w)] = sum_k N_k E[log w_k]   (N log(1/K) for fixed weights)
    - E[log p(mu)] = sum_kd -1/2 log(2 pi s0^2) - ((m - m0)^2 + s2) / (2 s0^2)
    - E[log p(w)] = log Gamma(sum alpha) - sum log Gamma(alpha) + sum (alpha - 1) E[log w]
    - E[log p(tau)] = a0 log b0 - log Gamma(a0) + (a0 - 1) E[log tau] - b0 E[tau]
    - entropies: -sum r log r; sum_kd 1/2 log(2 pi e s2); Dirichlet and Gamma entropies.

    Relation to ADVI's ELBO for the same spec: ADVI sums z out exactly,
    E_q[log sum_k w_k N(x | mu_k, ...)], while CAVI bounds it by q(z). For any q(mu, w, tau),
    the best q(z) closes that gap only inside the expectation, so both are lower bounds
    on the same log p(x), in the same units, and directly comparable.
    """
    n_features = centers.shape[1]
    expect = _expectations(params, spec)
    counts = stats.counts
    shift = params.mean_loc - centers
    sq_dev = np.maximum(stats.sum_sq_dev - 2.0 * shift * stats.sum_dev
                        + counts[:, None] * shift**2, 0.0)                     # Q (K, D)
    log_lik = np.sum(counts[:, None] * (0.5 * expect.log_prec - 0.5 * LOG_2PI)
                     - 0.5 * expect.prec * (sq_dev + counts[:, None] * params.mean_var))
    log_p_z = float(counts @ expect.log_weights)
    entropy_z = -stats.sum_r_log_r
    prior_mean = spec.prior_mean(n_features)
    prior_var = spec.prior_sd(n_features) ** 2
    log_p_mu = np.sum(-0.5 * np.log(2.0 * np.pi * prior_var)
                      - ((params.mean_loc - prior_mean) ** 2 + params.mean_var) / (2 * prior_var))
    entropy_mu = np.sum(0.5 * np.log(2.0 * np.pi * np.e * params.mean_var))
    total = log_lik + log_p_z + entropy_z + log_p_mu + entropy_mu
    if params.weight_conc is not None:
        alpha, conc = spec.alpha(), params.weight_conc
        log_p_w = _dirichlet_log_norm(alpha) + float((alpha - 1.0) @ expect.log_weights)
        entropy_w = -_dirichlet_log_norm(conc) - float((conc - 1.0) @ expect.log_weights)
        total += log_p_w + entropy_w
    if params.prec_shape is not None:
        a0, b0 = spec.precision_prior_shape, spec.precision_prior_rate
        shape, rate = params.prec_shape, params.prec_rate
        log_p_tau = np.sum(a0 * np.log(b0) - gammaln(a0) + (a0 - 1.0) * expect.log_prec
                           - b0 * expect.prec)
        entropy_tau = np.sum(shape - np.log(rate) + gammaln(shape)
                             + (1.0 - shape) * digamma(shape))
        total += log_p_tau + entropy_tau
    return float(total)


# ----------------------------------------------------------------- init / step
def init(points: np.ndarray, spec: MixtureSpec, *, random_seed: int | None = None,
         init: str = "kmeans++") -> CaviState:
    """A starting q: K centers, hard assignments to the nearest, then the global updates.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Validated data (``ppl_mixtures.validation.check_points``).
    spec : MixtureSpec
    random_seed : int or None
    init : {"kmeans++", "random_points"}
        How the K centers are chosen: k-means++ seeding, or K distinct random points.

    Returns
    -------
    CaviState
        With ``elbo = -inf`` (no q(z) yet) and ``n_iter = 0``.

    Notes
    -----
    The hard assignment r_ik = [k is the nearest center] plays the role of sklearn's
    k-means responsibilities: the first global update turns it into a q that respects the
    priors (q(tau) starts from the prior mean of tau in the q(mu) update).
    """
    v.check_choice("init", init, tuple(kernels.INITS))
    rng = np.random.default_rng(random_seed)
    n_features = points.shape[1]
    centers = kernels.INITS[init](points, spec.n_components, rng)
    stats = _hard_assignment_stats(points, centers)
    learned = spec.learned_obs_sd
    if learned:
        start_prec = np.full_like(centers, spec.precision_prior_shape / spec.precision_prior_rate)
    else:
        start_prec = spec.known_obs_sd(n_features) ** -2.0
    params = _update_globals(stats, centers, spec, start_prec, learned, not spec.fixed_weights)
    return CaviState(params=params, elbo=-np.inf, n_iter=0)


def _hard_assignment_stats(points: np.ndarray, centers: np.ndarray) -> kernels.PassStats:
    """PassStats of r_ik = [k = argmin_j |x_i - c_j|^2] (no N x K array beyond one block)."""
    n_components, n_features = centers.shape
    counts = np.zeros(n_components)
    sum_dev = np.zeros((n_components, n_features))
    sum_sq_dev = np.zeros((n_components, n_features))
    for start in range(0, points.shape[0], 65_536):
        block = points[start:start + 65_536]
        dist = ((block[:, None, :] - centers[None]) ** 2).sum(axis=2)
        label = dist.argmin(axis=1)
        dev = block - centers[label]
        counts += np.bincount(label, minlength=n_components)
        for d in range(n_features):
            sum_dev[:, d] += np.bincount(label, dev[:, d], minlength=n_components)
            sum_sq_dev[:, d] += np.bincount(label, dev[:, d] ** 2, minlength=n_components)
    return kernels.PassStats(counts, sum_dev, sum_sq_dev, 0.0, 0.0)


def step(points: np.ndarray, spec: MixtureSpec, state: CaviState, *,
         backend: str = "numba") -> tuple[CaviState, CaviInfo]:
    """One CAVI sweep: q(z) for every point, then q(w), q(mu), q(tau).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    spec : MixtureSpec
    state : CaviState
    backend : {"numba", "numpy"}
        The fused one-pass kernel, or the plain numpy reference (same numbers).

    Returns
    -------
    (CaviState, CaviInfo)
        The ELBO is that of the new state (q(z) from this pass, the new global factors).
    """
    params = state.params
    expect = _expectations(params, spec)
    centers = params.mean_loc
    stats = kernels.one_pass(backend, points, _log_rho_constants(params, expect), centers,
                             expect.prec)
    new_params = _update_globals(stats, centers, spec, expect.prec, spec.learned_obs_sd,
                                 params.weight_conc is not None)
    value = elbo(stats, centers, new_params, spec)
    new_state = CaviState(new_params, value, state.n_iter + 1)
    return new_state, CaviInfo(value, value - state.elbo, stats.counts)


# ----------------------------------------------------------------- fit
def _run(points, spec, seed, *, init_method, max_iter, tol, backend, progress, task):
    """One restart: init, then steps until the relative ELBO change is below tol."""
    state = init(points, spec, random_seed=seed, init=init_method)
    trace, converged = [], False
    for _ in range(max_iter):
        state, info = step(points, spec, state, backend=backend)
        trace.append(info.elbo)
        progress.update(task, advance=1, status=f"ELBO {info.elbo:.4f}")
        if len(trace) > 1 and abs(info.elbo_change) <= tol * abs(info.elbo):
            converged = True
            break
    return state, np.array(trace), converged


def _draws_from_q(params: VariationalParams, spec: MixtureSpec, n_draws: int,
                  rng: np.random.Generator):
    """Draws of means (1, S, K, D), weights (1, S, K) and obs_sd (1, S, K, D) or None."""
    n_components, n_features = params.mean_loc.shape
    means = rng.normal(params.mean_loc, np.sqrt(params.mean_var),
                       size=(1, n_draws, n_components, n_features))
    if params.weight_conc is None:
        weights = np.broadcast_to(spec.fixed_weight_values(), (1, n_draws, n_components)).copy()
    else:
        weights = rng.dirichlet(params.weight_conc, size=(1, n_draws))
    obs_sd = None
    if params.prec_shape is not None:
        tau = rng.gamma(params.prec_shape, 1.0 / params.prec_rate,
                        size=(1, n_draws, n_components, n_features))
        obs_sd = tau**-0.5
    return means, weights, obs_sd


def _sorted_by_first_feature(params: VariationalParams) -> VariationalParams:
    """The same q with components relabelled so that mean_loc[:, 0] increases."""
    order = np.argsort(params.mean_loc[:, 0], kind="stable")
    return VariationalParams(*(None if p is None else p[order] for p in params))


def fit(points: np.ndarray, spec: MixtureSpec, *, random_seed: int | None = None,
        max_iter: int = 1000, tol: float = 1e-8, n_init: int = 1, init: str = "kmeans++",
        n_draws: int = 1000, backend: str = "numba", progressbar: bool = True) -> MixtureFit:
    """Fit ``spec`` by CAVI; keep the restart with the highest ELBO.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Validated data.
    spec : MixtureSpec
    random_seed : int or None
        Seeds the restarts and the draws from q: same seed, same numbers.
    max_iter : int
        Sweeps per restart.
    tol : float
        Stop when |ELBO_t - ELBO_{t-1}| <= tol |ELBO_t| (relative change).
    n_init : int
        Restarts from different centers; the best final ELBO is kept, all are reported in
        ``extras["restarts"]``.
    init : {"kmeans++", "random_points"}
    n_draws : int
        Draws from q stored as one chain in ``idata.posterior``.
    backend : {"numba", "numpy"}
        Fused kernel or numpy reference for the pass over the data.
    progressbar : bool
        Show a rich progress bar.

    Returns
    -------
    MixtureFit
        ``elbo``: the trace of the kept restart; ``extras``: ``variational_params``
        (dict of arrays, see :class:`VariationalParams`), ``elbo_final``,
        ``elbo_final_se`` (0.0: the ELBO is exact), ``restarts``.

    Warns
    -----
    ConvergenceWarning
        When the kept restart used all ``max_iter`` sweeps.
    """
    max_iter = v.check_int("max_iter", max_iter, minimum=1)
    tol = v.check_positive("tol", tol)
    n_init = v.check_int("n_init", n_init, minimum=1)
    n_draws = v.check_int("n_draws", n_draws, minimum=1)
    v.check_choice("init", init, tuple(kernels.INITS))
    v.check_choice("backend", backend, kernels.BACKENDS)
    seeds = kernels.restart_seeds(random_seed, n_init + 1)
    with stopwatch() as build:
        if backend == "numba":  # compile, or load the cached machine code, outside the timing
            kernels.warm_up(points.shape[1], spec.n_components)
    runs = []
    with stopwatch() as run, kernels.progress_bar(progressbar) as progress:
        for seed in seeds[:n_init]:
            task = progress.add_task(f"cavi seed {seed}", total=max_iter, status="")
            runs.append((seed, *_run(points, spec, seed, init_method=init, max_iter=max_iter,
                                     tol=tol, backend=backend, progress=progress, task=task)))
    best = max(range(n_init), key=lambda j: runs[j][1].elbo)
    seed, state, trace, converged = runs[best]
    if not converged:
        warnings.warn(f"cavi: the ELBO did not converge in max_iter={max_iter} sweeps (last "
                      f"relative change {_relative_change(trace):.2e} > tol={tol:g}). Increase "
                      f"max_iter, loosen tol, or try n_init > 1.", ConvergenceWarning,
                      stacklevel=2)
    params = _sorted_by_first_feature(state.params) if spec.ordered else state.params
    means, weights, obs_sd = _draws_from_q(params, spec, n_draws,
                                           np.random.default_rng(seeds[-1]))
    idata = make_idata(means, weights, points, obs_sd=obs_sd, attrs={"engine": "cavi"})
    restarts = [{"random_seed": s, "elbo": float(st.elbo), "n_iter": st.n_iter,
                 "converged": bool(c)} for s, st, _, c in runs]
    extras = {"variational_params": {k: val for k, val in params._asdict().items()
                                     if val is not None},
              "elbo_final": float(state.elbo), "elbo_final_se": 0.0, "restarts": restarts}
    options = {"random_seed": random_seed, "max_iter": max_iter, "tol": tol, "n_init": n_init,
               "init": init, "n_draws": n_draws, "backend": backend}
    return MixtureFit(engine="cavi", spec=spec, idata=idata,
                      timings=Timings(build=build.seconds, run=run.seconds), elbo=trace,
                      converged=converged, n_iter=state.n_iter, extras=extras, options=options)


def _relative_change(trace: np.ndarray) -> float:
    if trace.size < 2:
        return float("inf")
    return float(abs(trace[-1] - trace[-2]) / abs(trace[-1]))


ENGINES = (
    Engine(name="cavi", fit=fit, family="vi", scalable=True,
           summary="Coordinate-ascent VI (mean-field, exact ELBO with all constants), numpy+numba",
           quick_options={"max_iter": 200, "n_draws": 200, "progressbar": False},
           large_data_options={"max_iter": 300}),
)
