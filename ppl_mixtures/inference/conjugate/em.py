"""Expectation-maximization for the MixtureSpec model: maximum likelihood or MAP, in numpy.

``prior="none"`` (default) maximizes the likelihood p(x | w, mu, sd); ``prior="map"``
maximizes the posterior density p(w, mu, tau | x) of the spec's priors, in the
parameterization (weights, means, precisions tau = sd^-2). Which parameters are free
follows the spec, so EM answers the spec's question:

- ``spec.obs_sd="learned"``: one variance per component and feature is learned. With
  ``prior="none"`` this is seed 002's model, "EM with learned diagonal covariances (ML)",
  the same as scikit-learn's ``GaussianMixture(covariance_type="diag")`` including its
  ``reg_covar`` (added to every ML variance).
- known ``obs_sd``: the variances stay fixed at the spec's value; only weights and means move.
- ``spec.weights="fixed"`` (or K = 1): the weights stay at 1/K.

One iteration (:func:`step`) is one pass over the data (the E-step, ``_kernels.one_pass``)
and an O(KD) M-step (Bishop 2006, §9.2.2, eqs. 9.23-9.27 with diagonal covariances;
Dempster, Laird & Rubin 1977). The objective (log-likelihood, or log-likelihood plus log
prior for MAP) never decreases::

    state = em.init(points, spec, random_seed=0)
    log_liks = []
    for _ in range(100):
        state, info = em.step(points, spec, state)
        log_liks.append(info.log_lik)                 # nats, higher is better
"""

from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple

import numpy as np
from scipy.special import gammaln

from ppl_mixtures import validation as v
from ppl_mixtures.inference.registry import Engine
from ppl_mixtures.kernels import estep as kernels
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import ConvergenceWarning, MixtureFit, Timings, make_idata, stopwatch

__all__ = ["ENGINES", "EmInfo", "EmState", "fit", "init", "log_prior", "step"]

LOG_2PI = float(np.log(2.0 * np.pi))
PRIORS = ("none", "map")
# scikit-learn's guard against empty components (GaussianMixture._estimate_gaussian_parameters)
_EMPTY_GUARD = 10.0 * np.finfo(np.float64).eps


class EmState(NamedTuple):
    """Loop state of EM (the current point estimate).

    Attributes
    ----------
    weights : ndarray of shape (n_components,)
    means : ndarray of shape (n_components, n_features)
    variances : ndarray of shape (n_components, n_features)
        Observation variances sd^2 (fixed at the spec's value when obs_sd is known).
    objective : float
        The objective (log-likelihood, or log joint for MAP) of the *previous* state,
        computed in the E-step of the step that produced this one; -inf after init.
    n_iter : int
    """

    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    objective: float
    n_iter: int


class EmInfo(NamedTuple):
    """What one :func:`step` saw.

    Attributes
    ----------
    log_lik : float
        log p(x | parameters before the step), nats (higher is better).
    objective : float
        log_lik for ``prior="none"``; log_lik + log prior (the log joint) for ``"map"``.
    objective_change : float
        objective minus the previous step's (>= 0 up to rounding; +inf on the first step).
    counts : ndarray of shape (n_components,)
        sum_i r_ik.
    """

    log_lik: float
    objective: float
    objective_change: float
    counts: np.ndarray


def log_prior(state: EmState, spec: MixtureSpec) -> float:
    """log p(w, mu, tau) of the spec's priors at a point estimate (MAP's extra term).

    Means: Normal(m0, s0^2); weights: Dirichlet(max(alpha, 1)) (see :func:`_map_weights`);
    precisions tau = 1/variance: Gamma(a0, b0) density on tau, only when learned.
    """
    n_features = state.means.shape[1]
    prior_mean, prior_var = spec.prior_mean(n_features), spec.prior_sd(n_features) ** 2
    total = np.sum(-0.5 * np.log(2.0 * np.pi * prior_var)
                   - (state.means - prior_mean) ** 2 / (2.0 * prior_var))
    if not spec.fixed_weights:
        alpha = np.maximum(spec.alpha(), 1.0)
        with np.errstate(divide="ignore"):
            log_w = np.log(state.weights)
        total += (gammaln(alpha.sum()) - gammaln(alpha).sum()
                  + np.sum((alpha - 1.0) * np.where(alpha > 1.0, log_w, 0.0)))
    if spec.learned_obs_sd:
        a0, b0 = spec.precision_prior_shape, spec.precision_prior_rate
        tau = 1.0 / state.variances
        total += np.sum(a0 * np.log(b0) - gammaln(a0) + (a0 - 1.0) * np.log(tau) - b0 * tau)
    return float(total)


def _log_const(state: EmState) -> np.ndarray:
    """log w_k + sum_d log N-normalizer, shape (n_components,) (the kernel adds the rest)."""
    with np.errstate(divide="ignore"):
        log_w = np.log(state.weights)
    return log_w - 0.5 * np.sum(LOG_2PI + np.log(state.variances), axis=1)


def _map_weights(counts: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """argmax_w sum_k (N_k + alpha_k - 1) log w_k on the simplex, with alpha -> max(alpha, 1).

    For alpha_k < 1 the posterior density of w is unbounded at w_k = 0, so no MAP exists;
    raising those alpha_k to 1 (flat in that direction) keeps the MAP defined and EM
    monotone. In the interior the mode is w_k ∝ N_k + alpha_k - 1.
    """
    numer = counts + np.maximum(alpha, 1.0) - 1.0
    return numer / numer.sum()


def _m_step(stats: kernels.PassStats, state: EmState, spec: MixtureSpec, prior: str,
            reg_covar: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New (weights, means, variances) from the E-step statistics (sums about state.means).

    Notes
    -----
    ML (Bishop 2006, eqs. 9.24-9.26, diagonal): N_k = sum_i r_ik (+ sklearn's 10 eps guard),
    mu_k = x-bar_k, var_kd = sum_i r_ik (x_id - mu_kd)^2 / N_k + reg_covar, w_k = N_k / N.
    MAP: an ECM step (Meng & Rubin 1993) since the independent Normal prior on mu couples
    mu and tau: first mu_kd = (m0/s0^2 + tau_kd S_kd) / (1/s0^2 + tau_kd N_k) at the old
    tau, then tau_kd = (a0 - 1 + N_k/2) / (b0 + 1/2 sum_i r_ik (x_id - mu_kd)^2) at the new
    mu (the Gamma mode), and w from :func:`_map_weights`. reg_covar is not added in MAP
    mode: the Gamma prior already keeps variances away from zero.
    """
    n_features = state.means.shape[1]
    counts = stats.counts + _EMPTY_GUARD
    centers = state.means
    if prior == "none":
        shift = stats.sum_dev / counts[:, None]
    else:
        prior_mean = spec.prior_mean(n_features)
        prior_prec = spec.prior_sd(n_features) ** -2.0
        prec = 1.0 / state.variances
        shift = (((prior_mean - centers) * prior_prec + prec * stats.sum_dev)
                 / (prior_prec + prec * counts[:, None]))
    means = centers + shift
    if spec.learned_obs_sd:
        sq_dev = np.maximum(stats.sum_sq_dev - 2.0 * shift * stats.sum_dev
                            + counts[:, None] * shift**2, 0.0)     # sum r (x - mu_new)^2
        if prior == "none":
            variances = sq_dev / counts[:, None] + reg_covar
        else:
            a0, b0 = spec.precision_prior_shape, spec.precision_prior_rate
            numer = np.maximum(a0 - 1.0 + 0.5 * counts[:, None], np.finfo(float).tiny)
            variances = (b0 + 0.5 * sq_dev) / numer
    else:
        variances = state.variances
    if spec.fixed_weights:
        weights = state.weights
    elif prior == "none":
        weights = counts / counts.sum()
    else:
        weights = _map_weights(stats.counts, spec.alpha())
    return weights, means, variances


def init(points: np.ndarray, spec: MixtureSpec, *, random_seed: int | None = None,
         init: str = "kmeans++", prior: str = "none", reg_covar: float = 1e-6) -> EmState:
    """A starting point estimate: K centers, hard assignments to the nearest, one M-step.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    spec : MixtureSpec
    random_seed : int or None
    init : {"kmeans++", "random_points"}
        k-means++ seeding, or K distinct random points (seed 002's start).
    prior : {"none", "map"}
    reg_covar : float

    Returns
    -------
    EmState
        ``objective = -inf``, ``n_iter = 0``. To start from given parameters instead (e.g.
        to reproduce scikit-learn), build ``EmState(weights, means, variances, -np.inf, 0)``.

    Notes
    -----
    Like scikit-learn's ``init_params="k-means++"`` (hard responsibilities, then an M-step),
    except that our centers are only k-means++ seeds, not a k-means solution.
    """
    random_seed = v.check_seed(random_seed)
    v.check_choice("init", init, tuple(kernels.INITS))
    rng = np.random.default_rng(random_seed)
    n_components, n_features = spec.n_components, points.shape[1]
    centers = kernels.INITS[init](points, n_components, rng)
    if spec.learned_obs_sd:
        variances = np.broadcast_to(points.var(axis=0) + reg_covar, centers.shape).copy()
    else:
        variances = spec.known_obs_sd(n_features) ** 2
    weights = spec.fixed_weight_values()
    start = EmState(weights, centers, variances, -np.inf, 0)
    stats = kernels.hard_assignment_stats(points, centers)
    weights, means, variances = _m_step(stats, start, spec, prior, reg_covar)
    return EmState(weights, means, variances, -np.inf, 0)


def step(points: np.ndarray, spec: MixtureSpec, state: EmState, *, prior: str = "none",
         reg_covar: float = 1e-6, backend: str = "numba_parallel") -> tuple[EmState, EmInfo]:
    """One EM iteration: E-step (responsibilities, log-likelihood), then M-step.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Any memory order; ``kernels.feature_major(points)`` (Fortran order, what ``fit``
        passes) is read in place and makes the numba pass ~10% faster.
    spec : MixtureSpec
    state : EmState
    prior : {"none", "map"}
    reg_covar : float
        Added to every ML variance (``prior="none"`` with learned obs_sd), as in sklearn.
    backend : {"numba_parallel", "numba", "numpy"}
        The fused one-pass kernel on all numba threads from 200,000 points (one thread
        below; the default), on one thread always (``"numba"``: faster on a machine whose
        cores are busy), or the plain numpy reference (same numbers to ~1e-13).

    Returns
    -------
    (EmState, EmInfo)
        ``info.log_lik`` is the log-likelihood of the *input* state (the E-step computes
        it for free), as scikit-learn's ``lower_bound_``.
    """
    stats = kernels.one_pass(backend, points, _log_const(state), state.means,
                             1.0 / state.variances)
    log_lik = stats.sum_log_norm
    objective = log_lik + (log_prior(state, spec) if prior == "map" else 0.0)
    weights, means, variances = _m_step(stats, state, spec, prior, reg_covar)
    new_state = EmState(weights, means, variances, objective, state.n_iter + 1)
    return new_state, EmInfo(log_lik, objective, objective - state.objective, stats.counts)


def _run(points, spec, seed, *, init_method, prior, reg_covar, max_iter, tol, backend,
         progress, task):
    state = init(points, spec, random_seed=seed, init=init_method, prior=prior,
                 reg_covar=reg_covar)
    trace, converged = [], False
    for _ in range(max_iter):
        state, info = step(points, spec, state, prior=prior, reg_covar=reg_covar,
                           backend=backend)
        trace.append(info.objective)
        progress.update(task, advance=1, status=f"objective {info.objective:.4f}")
        if len(trace) > 1 and abs(info.objective_change) <= tol * abs(info.objective):
            converged = True
            break
    # the objective of the returned parameters (one more E-step, no M-step)
    final = kernels.one_pass(backend, points, _log_const(state), state.means,
                             1.0 / state.variances).sum_log_norm
    final_objective = final + (log_prior(state, spec) if prior == "map" else 0.0)
    return state, np.array(trace), converged, final, final_objective


def fit(points: np.ndarray, spec: MixtureSpec, *, random_seed: int | None = None,
        prior: str = "none", init: str = "kmeans++", reg_covar: float = 1e-6,
        max_iter: int = 1000, tol: float = 1e-10, n_init: int = 5, backend: str = "numba_parallel",
        progressbar: bool = True) -> MixtureFit:
    """Fit ``spec`` by EM (ML or MAP); keep the restart with the highest objective.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    spec : MixtureSpec
    random_seed : int or None
    prior : {"none", "map"}
        Maximum likelihood, or maximum a posteriori under the spec's priors.
    init : {"kmeans++", "random_points"}
    reg_covar : float
        >= 0, added to ML variances (sklearn's default 1e-6).
    max_iter : int
    tol : float
        Stop when the relative change of the objective is <= tol.
    n_init : int
        Starts from different centers (default 5: a single start can stop in a poor local
        optimum); the restart whose final objective (log-likelihood, or log joint for MAP,
        of its returned parameters) is highest is kept, all are reported in
        ``extras["restarts"]``. Restart j is seeded by the j-th of
        ``kernels.restart_seeds(random_seed, n_init)``. ``n_init=1`` is a single start.
    backend : {"numba_parallel", "numba", "numpy"}
        The fused one-pass kernel on all numba threads from 200,000 points (one thread
        below; the default), on one thread always (``"numba"``: faster on a machine whose
        cores are busy), or the plain numpy reference (same numbers to ~1e-13).
    progressbar : bool

    Returns
    -------
    MixtureFit
        The point estimate as one chain of one draw (``obs_sd`` in the posterior only when
        the spec learns it); ``elbo=None``; ``extras``: ``log_lik`` (objective trace, nats),
        ``objective`` ("log_lik" or "log_joint"), ``log_lik_final`` and
        ``objective_final`` (of the returned parameters), ``variances``, ``restarts``.
    """
    random_seed = v.check_seed(random_seed)
    v.check_choice("prior", prior, PRIORS)
    v.check_choice("init", init, tuple(kernels.INITS))
    v.check_choice("backend", backend, kernels.BACKENDS)
    progressbar = v.check_bool("progressbar", progressbar)
    if isinstance(reg_covar, bool | np.bool_) or not isinstance(reg_covar, numbers.Real) or not (
            np.isfinite(reg_covar) and reg_covar >= 0):
        raise ValueError(f"reg_covar: expected a finite number >= 0, got {v.describe(reg_covar)}. "
                         f"Use e.g. reg_covar=1e-6 (scikit-learn's default).")
    max_iter = v.check_int("max_iter", max_iter, minimum=1)
    tol = v.check_positive("tol", tol)
    n_init = v.check_int("n_init", n_init, minimum=1)
    seeds = kernels.restart_seeds(random_seed, n_init)
    with stopwatch() as build:
        kernels.warm_up(backend, *points.shape, spec.n_components)  # compile or load
        data = kernels.feature_major(points)                        # read in place by the pass
    runs = []
    with stopwatch() as run, kernels.progress_bar(progressbar) as progress:
        for seed in seeds:
            task = progress.add_task(f"em seed {seed}", total=max_iter, status="")
            runs.append((seed, *_run(data, spec, seed, init_method=init, prior=prior,
                                     reg_covar=float(reg_covar), max_iter=max_iter, tol=tol,
                                     backend=backend, progress=progress, task=task)))
    best = kernels.best_restart([run_[5] for run_ in runs])
    seed, state, trace, converged, log_lik_final, objective_final = runs[best]
    kernels.check_finite("em", {"weights": state.weights, "means": state.means,
                                "variances": state.variances}, objective_final, "objective")
    if not converged:
        warnings.warn(f"em: the objective did not converge in max_iter={max_iter} iterations "
                      f"(tol={tol:g}). Increase max_iter, loosen tol, or try n_init > 1.",
                      ConvergenceWarning, stacklevel=2)
    order = (np.argsort(state.means[:, 0], kind="stable") if spec.ordered
             else np.arange(spec.n_components))
    weights, means, variances = state.weights[order], state.means[order], state.variances[order]
    obs_sd = np.sqrt(variances)[None, None] if spec.learned_obs_sd else None
    idata = make_idata(means[None, None], weights[None, None], points, obs_sd=obs_sd,
                       attrs={"engine": "em", "prior": prior})
    restarts = [{"random_seed": s, "objective": float(obj), "log_lik": float(ll),
                 "n_iter": st.n_iter, "converged": bool(c)}
                for s, st, _, c, ll, obj in runs]
    extras = {"log_lik": trace, "objective": "log_lik" if prior == "none" else "log_joint",
              "log_lik_final": float(log_lik_final), "objective_final": float(objective_final),
              "variances": variances, "restarts": restarts}
    options = {"random_seed": random_seed, "prior": prior, "init": init,
               "reg_covar": float(reg_covar), "max_iter": max_iter, "tol": tol,
               "n_init": n_init, "backend": backend}
    return MixtureFit(engine="em", spec=spec, idata=idata,
                      timings=Timings(build=build.seconds, run=run.seconds), elbo=None,
                      converged=converged, n_iter=state.n_iter, extras=extras, options=options)


ENGINES = (
    Engine(name="em", fit=fit, family="point", scalable=True,
           summary="Expectation-maximization, ML (prior='none') or MAP (prior='map'), numpy+numba",
           quick_options={"max_iter": 200, "n_init": 2, "progressbar": False},
           large_data_options={"max_iter": 300}),
)
