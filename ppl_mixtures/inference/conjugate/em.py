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
- ``spec.covariance="spherical"``, ``"tied"`` or ``"full"`` (learned): one variance per
  component, one full covariance shared by all, or one full covariance per component;
  with ``prior="none"`` the same as scikit-learn's ``GaussianMixture(covariance_type=...)``
  with its ``reg_covar``. A known full ``obs_cov`` stays fixed; only weights and means move.
- ``spec.weights="fixed"`` (or K = 1): the weights stay at 1/K.

EM is the point-mass case of CAVI's core: the E-step is the same pass (``stats.one_pass``,
or ``stats_full.full_pass`` for full and tied covariances, with the parameters themselves
where CAVI has expectations), and the M-step reads the same statistics N_k, x̄_k, S_k
(``pointmass.py``: :class:`EmState`, ``m_step`` and MAP's ``log_prior``; Bishop 2006,
§9.2.2, eqs. 9.23-9.27; Dempster, Laird & Rubin 1977). This module holds the loop
(``init`` / ``step``) and ``fit``, about 440 lines: the four covariance types share them,
and the few lines that tell the types apart (start, pass, posterior) sit beside the loop
they serve. The objective (log-likelihood, or log-likelihood plus log prior for MAP)
never decreases::

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
from ppl_mixtures.inference.conjugate import chunked, driver
from ppl_mixtures.inference.conjugate.pointmass import (
    PRIORS,
    EmState,
    full_state,
    log_const,
    log_prior,
    m_step,
    precisions,
    start_state,
)
from ppl_mixtures.inference.conjugate.stats import SufficientStats, hard_assignment_stats, one_pass
from ppl_mixtures.inference.conjugate.stats_full import (
    FullStats,
    full_pass,
    hard_assignment_full_stats,
)
from ppl_mixtures.inference.registry import Engine
from ppl_mixtures.kernels.estep import feature_major, warm_up
from ppl_mixtures.kernels.estep_full import warm_up_full
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import MixtureFit, Timings, make_idata, stopwatch

__all__ = [
    "ENGINES",
    "EmDetails",
    "EmInfo",
    "EmState",
    "Options",
    "fit",
    "full_state",
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
        default=1e-6,
        metadata={
            "help": "added to every ML variance / covariance diagonal (scikit-learn's default 1e-6)"
        },
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
        The returned obs_sd^2 (components sorted like the posterior); for full and tied
        covariances their diagonals.
    covariances : ndarray of shape (n_components, n_features, n_features) or None
        The returned covariance matrices for ``covariance`` "full" (learned or known),
        "tied" (the same matrix K times) and "spherical" (sigma_k^2 I); None for "diag".
    """

    log_lik: np.ndarray
    objective: str
    log_lik_final: float
    objective_final: float
    variances: np.ndarray
    covariances: np.ndarray | None = None


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
        to reproduce scikit-learn), build ``EmState(weights, means, variances, -np.inf, 0)``
        (diag; spherical: each row one value repeated), or ``full_state(weights, means,
        covariances)`` (full; tied: the same matrix K times).

    Notes
    -----
    Like scikit-learn's ``init_params="k-means++"`` (hard responsibilities, then an M-step),
    except that our centers are only k-means++ seeds, not a k-means solution.
    """
    random_seed = v.check_seed(random_seed)
    v.check_choice("init", init, tuple(driver.INITS))
    centers = driver.INITS[init](points, spec.n_components, np.random.default_rng(random_seed))
    start = start_state(points, spec, centers, reg_covar)
    full = spec.covariance in ("full", "tied")
    stats = (hard_assignment_full_stats if full else hard_assignment_stats)(points, centers)
    return _state(m_step(stats, start, spec, prior, reg_covar), -np.inf, 0)


def _state(update: tuple[np.ndarray, ...], objective: float, n_iter: int) -> EmState:
    """The EmState of an M-step's (weights, means, variances or covariances)."""
    weights, means, covariance = update
    if covariance.ndim == 3:
        return full_state(weights, means, covariance, objective, n_iter)
    return EmState(weights, means, covariance, objective, n_iter)


def _check_state(state: EmState, spec: MixtureSpec) -> None:
    """A full/tied spec needs ``state.covariances``; diag and spherical ones must not have it."""
    wants_matrices = spec.covariance in ("full", "tied")
    if wants_matrices == (state.covariances is not None):
        return
    if wants_matrices:
        expected, got, build = "with", "without", "em.full_state(weights, means, covariances)"
    else:
        expected, got, build = "without", "with", "em.EmState(weights, means, variances, -inf, 0)"
    raise ValueError(
        f"state: expected an EmState {expected} covariance matrices for "
        f"covariance={spec.covariance!r}, got one {got}. Start from em.init(points, spec) or "
        f"build it with {build}."
    )


def _e_step(
    points: np.ndarray, state: EmState, spec: MixtureSpec, prior: str, backend: str
) -> tuple[SufficientStats | FullStats, float, float]:
    """The pass at ``state``: its statistics, log-likelihood and objective.

    Diagonal and spherical states use the diagonal pass; full and tied ones the full pass.
    """
    stats: SufficientStats | FullStats
    if state.covariances is None:
        stats = one_pass(backend, points, log_const(state), state.means, precisions(state))
    else:
        stats = full_pass(points, log_const(state), state.means, precisions(state), backend=backend)
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
        Added to every ML variance / covariance diagonal (``prior="none"``), as in sklearn.
    backend : {"numba_parallel", "numba", "numpy"}
        As for ``cavi.step``.

    Returns
    -------
    (EmState, EmInfo)
        ``info.log_lik`` is the log-likelihood of the *input* state (the E-step computes
        it for free), as scikit-learn's ``lower_bound_``.
    """
    _check_state(state, spec)
    stats, log_lik, objective = _e_step(points, state, spec, prior, backend)
    new_state = _state(m_step(stats, state, spec, prior, reg_covar), objective, state.n_iter + 1)
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
        ``driver.restart_seeds(random_seed, n_init)``), ``backend``, ``progressbar``,
        ``chunk_size`` (rows per chunk, as for CAVI). Chunked ``points`` (a dask array
        through ``fit``) run every pass per chunk, reduced in a fixed tree (``chunked.py``).

    Returns
    -------
    MixtureFit
        The point estimate as one chain of one draw: ``obs_sd`` in the posterior when the
        spec learns it (diag; spherical: equal over the features), ``obs_cov`` (with
        ``obs_sd`` and ``obs_corr``) for learned full and tied covariances, nothing for known
        ones; ``elbo=None``; ``restarts``; ``details``: :class:`EmDetails` (its
        ``covariances`` hold the matrices of every non-diagonal type).

    Warns
    -----
    ConvergenceWarning
        When the kept restart used all ``max_iter`` iterations.
    """
    opts = v.build_options("em", Options, options)
    seeds = driver.restart_seeds(opts.random_seed, opts.n_init)
    with stopwatch() as build:
        data = chunked.prepare(points, opts.chunk_size)
        backend = opts.pass_backend(data)
        # compile the pass (first run of a fresh install) or load it from numba's cache
        warm = warm_up_full if spec.covariance in ("full", "tied") else warm_up
        warm(backend, points.shape[0], points.shape[1], spec.n_components)
        if not isinstance(data, chunked.ChunkedPoints):
            data = feature_major(points)  # read in place by the pass

    def one_step(state: EmState) -> tuple[EmState, float]:
        new_state, info = step(
            data, spec, state, prior=opts.prior, reg_covar=opts.reg_covar, backend=backend
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
        _, log_lik, objective = _e_step(data, state, spec, opts.prior, backend)
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
            arrays=_restart_arrays,
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
    covariances = _covariances(state, spec)
    covariances = None if covariances is None else covariances[order]
    learned_sd = spec.learned_obs_sd or spec.covariance == "spherical"
    obs_sd = np.sqrt(variances)[None, None] if learned_sd else None
    learned_cov = spec.covariance in ("full", "tied") and spec.learned_covariance
    obs_cov = covariances[None, None] if learned_cov and covariances is not None else None
    return MixtureFit(
        engine="em",
        spec=spec,
        family="point",
        idata=make_idata(
            means[None, None],
            weights[None, None],
            points,
            obs_sd=obs_sd,
            obs_cov=obs_cov,
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
            covariances=covariances,
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
            "chunk_size": opts.chunk_size,
        },
    )


def _covariances(state: EmState, spec: MixtureSpec) -> np.ndarray | None:
    """The state's covariance matrices (K, D, D): full/tied as kept, spherical sigma^2 I."""
    if state.covariances is not None:
        return state.covariances
    if spec.covariance == "spherical":
        n_features = state.means.shape[1]
        return state.variances[:, :1, None] * np.eye(n_features)
    return None


def _restart_arrays(state: EmState) -> dict[str, np.ndarray]:
    """The kept state's parameter arrays, which the driver checks for NaN/inf."""
    arrays = {"weights": state.weights, "means": state.means, "variances": state.variances}
    if state.covariances is not None:
        arrays["covariances"] = state.covariances
    return arrays


ENGINES = (
    Engine(
        name="em",
        fit=fit,
        options=Options,
        family="point",
        scalable=True,
        summary="Expectation-maximization, ML (prior='none') or MAP (prior='map'), numpy+numba",
        covariances=("diag", "full", "tied", "spherical"),
        weights=("dirichlet", "fixed"),  # no Dirichlet-process weights (a point estimate)
    ),
)
