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

EM is the point-mass case of CAVI's core: the E-step is the same pass (``stats.one_pass``,
with the parameters themselves where CAVI has expectations), and the M-step reads the same
:class:`~ppl_mixtures.kernels.estep.SufficientStats` N_k, x̄_k, S_k (``pointmass.py``:
:class:`EmState`, ``m_step`` and MAP's ``log_prior``; Bishop 2006, §9.2.2, eqs. 9.23-9.27
with diagonal covariances; Dempster, Laird & Rubin 1977). This module holds the loop
(``init`` / ``step``) and ``fit``. The objective
(log-likelihood, or log-likelihood plus log prior for MAP) never decreases::

    state = em.init(points, spec, random_seed=0)
    log_liks = []
    for _ in range(100):
        state, info = em.step(points, spec, state)
        log_liks.append(info.log_lik)                 # nats, higher is better
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ppl_mixtures import validation as v
from ppl_mixtures.inference.conjugate import driver
from ppl_mixtures.inference.conjugate.pointmass import (
    PRIORS,
    EmState,
    log_const,
    log_prior,
    m_step,
)
from ppl_mixtures.inference.conjugate.stats import SufficientStats, hard_assignment_stats, one_pass
from ppl_mixtures.inference.registry import Engine
from ppl_mixtures.kernels.estep import feature_major, warm_up
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import MixtureFit, Timings, make_idata, stopwatch

__all__ = [
    "ENGINES",
    "EmDetails",
    "EmInfo",
    "EmState",
    "Options",
    "fit",
    "init",
    "log_prior",
    "m_step",
    "step",
]


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
        N_k = sum_i r_ik.
    """

    log_lik: float
    objective: float
    objective_change: float
    counts: np.ndarray


@dataclass(frozen=True, kw_only=True)
class Options(driver.RestartOptions):
    """EM's options (``fit(points, spec, **options)``); shared ones in RestartOptions."""

    prior: str = field(
        default="none",
        metadata={
            "help": "'none': maximum likelihood; 'map': maximum a posteriori under the spec's priors"
        },
    )
    reg_covar: float = field(
        default=1e-6, metadata={"help": "added to every ML variance (scikit-learn's default 1e-6)"}
    )
    max_iter: int = field(default=1000, metadata={"help": "EM iterations per restart"})
    tol: float = field(
        default=1e-10,
        metadata={"help": "stop when the relative change of the objective is at most tol"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        set_ = object.__setattr__
        v.check_choice("prior", self.prior, PRIORS)
        set_(
            self,
            "reg_covar",
            v.check_real(
                "reg_covar",
                self.reg_covar,
                minimum=0.0,
                hint="Use e.g. reg_covar=1e-6 (scikit-learn's default)",
            ),
        )
        set_(self, "max_iter", v.check_int("max_iter", self.max_iter, minimum=1))
        set_(self, "tol", v.check_positive("tol", self.tol))


@dataclass(frozen=True, eq=False)
class EmDetails:
    """EM's own results (``fit.details``).

    Attributes
    ----------
    log_lik : ndarray of shape (n_iter,)
        The objective after each step of the kept restart (nats; despite the name, the log
        joint for ``prior="map"``, see ``objective``).
    objective : str
        ``"log_lik"`` or ``"log_joint"``.
    log_lik_final, objective_final : float
        Of the returned parameters (one more E-step after the last M-step).
    variances : ndarray of shape (n_components, n_features)
        The returned obs_sd^2 (components sorted like the posterior).
    """

    log_lik: np.ndarray
    objective: str
    log_lik_final: float
    objective_final: float
    variances: np.ndarray


# ----------------------------------------------------------------- init / step
def init(
    points: np.ndarray,
    spec: MixtureSpec,
    *,
    random_seed: int | None = None,
    init: str = "kmeans++",
    prior: str = "none",
    reg_covar: float = 1e-6,
) -> EmState:
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
    v.check_choice("init", init, tuple(driver.INITS))
    n_features = points.shape[1]
    centers = driver.INITS[init](points, spec.n_components, np.random.default_rng(random_seed))
    if spec.learned_obs_sd:
        variances = np.broadcast_to(points.var(axis=0) + reg_covar, centers.shape).copy()
    else:
        variances = spec.known_obs_sd(n_features) ** 2
    start = EmState(spec.fixed_weight_values(), centers, variances, -np.inf, 0)
    weights, means, variances = m_step(
        hard_assignment_stats(points, centers), start, spec, prior, reg_covar
    )
    return EmState(weights, means, variances, -np.inf, 0)


def _e_step(
    points: np.ndarray, state: EmState, spec: MixtureSpec, prior: str, backend: str
) -> tuple[SufficientStats, float, float]:
    """The pass at ``state``: its statistics, log-likelihood and objective."""
    stats = one_pass(backend, points, log_const(state), state.means, 1.0 / state.variances)
    log_lik = stats.sum_log_norm
    return stats, log_lik, log_lik + (log_prior(state, spec) if prior == "map" else 0.0)


def step(
    points: np.ndarray,
    spec: MixtureSpec,
    state: EmState,
    *,
    prior: str = "none",
    reg_covar: float = 1e-6,
    backend: str = "numba_parallel",
) -> tuple[EmState, EmInfo]:
    """One EM iteration: E-step (responsibilities, log-likelihood), then M-step.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Any memory order; ``feature_major(points)`` (Fortran order, what ``fit`` passes)
        is read in place and makes the numba pass ~10% faster.
    spec : MixtureSpec
    state : EmState
    prior : {"none", "map"}
    reg_covar : float
        Added to every ML variance (``prior="none"`` with learned obs_sd), as in sklearn.
    backend : {"numba_parallel", "numba", "numpy"}
        As for ``cavi.step``.

    Returns
    -------
    (EmState, EmInfo)
        ``info.log_lik`` is the log-likelihood of the *input* state (the E-step computes
        it for free), as scikit-learn's ``lower_bound_``.
    """
    stats, log_lik, objective = _e_step(points, state, spec, prior, backend)
    weights, means, variances = m_step(stats, state, spec, prior, reg_covar)
    new_state = EmState(weights, means, variances, objective, state.n_iter + 1)
    return new_state, EmInfo(log_lik, objective, objective - state.objective, stats.counts)


# ----------------------------------------------------------------- fit
def fit(points: np.ndarray, spec: MixtureSpec, **options: Any) -> MixtureFit:
    """Fit ``spec`` by EM (ML or MAP); keep the restart with the highest objective.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    spec : MixtureSpec
    **options
        The fields of :class:`Options`: ``random_seed``, ``prior`` ("none" or "map"),
        ``init``, ``reg_covar`` (>= 0), ``max_iter``, ``tol`` (relative change of the
        objective), ``n_init`` (default 5; ranked by the final objective of each restart's
        returned parameters; restart j is seeded by the j-th of
        ``driver.restart_seeds(random_seed, n_init)``), ``backend``, ``progressbar``.

    Returns
    -------
    MixtureFit
        The point estimate as one chain of one draw (``obs_sd`` in the posterior only when
        the spec learns it); ``elbo=None``; ``restarts``; ``details``: :class:`EmDetails`.

    Warns
    -----
    ConvergenceWarning
        When the kept restart used all ``max_iter`` iterations.
    """
    opts = v.build_options("em", Options, options)
    seeds = driver.restart_seeds(opts.random_seed, opts.n_init)
    with stopwatch() as build:
        # compile the pass (first run of a fresh install) or load it from numba's cache
        warm_up(opts.backend, points.shape[0], points.shape[1], spec.n_components)
        data = feature_major(points)  # read in place by the pass

    def one_step(state: EmState) -> tuple[EmState, float]:
        new_state, info = step(
            data, spec, state, prior=opts.prior, reg_covar=opts.reg_covar, backend=opts.backend
        )
        return new_state, info.objective

    def run_one(seed: int, report: Any) -> driver.Run:
        start = init(
            data, spec, random_seed=seed, init=opts.init, prior=opts.prior, reg_covar=opts.reg_covar
        )
        state, trace, converged = driver.iterate(
            one_step,
            start,
            max_iter=opts.max_iter,
            report=report,
            converged_when=driver.relative_change_below(opts.tol),
        )
        # the objective of the returned parameters (one more E-step, no M-step)
        _, log_lik, objective = _e_step(data, state, spec, opts.prior, opts.backend)
        return driver.Run(seed, state, trace, converged, objective, extra=log_lik)

    objective_name = "log_lik" if opts.prior == "none" else "log_joint"
    with stopwatch() as run:
        kept, restarts = driver.fit_restarts(
            "em",
            seeds,
            run_one,
            total=opts.max_iter,
            progressbar=opts.progressbar,
            objective_name=objective_name,
            arrays=lambda s: {"weights": s.weights, "means": s.means, "variances": s.variances},
            not_converged=lambda r: (
                f"em: the objective did not converge in max_iter={opts.max_iter} iterations "
                f"(tol={opts.tol:g}). Increase max_iter, loosen tol, or try n_init > 1."
            ),
        )
    state = kept.state
    order = (
        np.argsort(state.means[:, 0], kind="stable")
        if spec.ordered
        else np.arange(spec.n_components)
    )
    weights, means, variances = state.weights[order], state.means[order], state.variances[order]
    obs_sd = np.sqrt(variances)[None, None] if spec.learned_obs_sd else None
    return MixtureFit(
        engine="em",
        spec=spec,
        family="point",
        idata=make_idata(
            means[None, None],
            weights[None, None],
            points,
            obs_sd=obs_sd,
            attrs={"engine": "em", "prior": opts.prior},
        ),
        timings=Timings(build=build.seconds, run=run.seconds),
        elbo=None,
        converged=kept.converged,
        n_iter=kept.n_iter,
        restarts=restarts,
        details=EmDetails(
            log_lik=kept.trace,
            objective=objective_name,
            log_lik_final=float(kept.extra),
            objective_final=float(kept.objective),
            variances=variances,
        ),
        options={
            "random_seed": opts.random_seed,
            "prior": opts.prior,
            "init": opts.init,
            "reg_covar": opts.reg_covar,
            "max_iter": opts.max_iter,
            "tol": opts.tol,
            "n_init": opts.n_init,
            "backend": opts.backend,
        },
    )


ENGINES = (
    Engine(
        name="em",
        fit=fit,
        options=Options,
        family="point",
        scalable=True,
        summary="Expectation-maximization, ML (prior='none') or MAP (prior='map'), numpy+numba",
    ),
)
