"""Stochastic variational inference (SVI) for the MixtureSpec model: CAVI's family on minibatches.

Hoffman, Blei, Wang & Paisley (2013, JMLR 14, §2; also Blei et al. 2017, §4.3). Same
mean-field q as ``cavi`` (``_conjugate.VariationalParams``). One step:

1. draw a minibatch B of S points uniformly (with replacement) from the N points;
2. local step: the optimal q(z_i) for i in B given the current global factors (one fused
   pass over the batch, ``_kernels.one_pass``);
3. intermediate globals lambda-hat: the CAVI update computed as if the data were the
   batch repeated N/S times (the batch statistics scaled by N/S);
4. a natural-gradient step on each global factor's natural parameters,
   lambda <- (1 - rho_t) lambda + rho_t lambda-hat, with the Robbins-Monro schedule
   rho_t = (t + tau)^-kappa, tau >= 0 (delay), kappa in (0.5, 1] (forgetting rate).

For a conditionally conjugate factor, lambda-hat - lambda is the natural gradient of the
ELBO (Hoffman et al. 2013, §2), so step 4 is a stochastic natural-gradient step. The
natural parameters interpolated are: for q(mu_kd) = N(m, s2), the precision 1/s2 and
m/s2; for q(w) = Dir(conc), conc; for q(tau_kd) = Gamma(shape, rate), shape and rate.

The ELBO trace holds, at each step, an unbiased estimate in full-data nats of the ELBO of
the *current* globals with every q(z_i) at its optimum: the global terms exactly, plus
N/S times the batch's local terms (E[log p(x_i, z_i | ...)] + entropy of q(z_i)).
``extras["elbo_final"]`` is the exact ELBO of the returned q, from one full pass.
"""

from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple

import numpy as np

from ppl_mixtures import validation as v
from ppl_mixtures.inference.conjugate import common as conj
from ppl_mixtures.inference.registry import Engine
from ppl_mixtures.kernels import estep as kernels
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import ConvergenceWarning, MixtureFit, Timings, make_idata, stopwatch

__all__ = ["ENGINES", "SviInfo", "SviState", "exact_elbo", "fit", "init", "step"]


class SviState(NamedTuple):
    """Loop state of SVI.

    Attributes
    ----------
    params : _conjugate.VariationalParams
        The global factors of q.
    n_iter : int
        Steps taken (t); step t + 1 uses rho = (t + 1 + tau)^-kappa.
    batch_seed : int
        The minibatch of step t is drawn by ``np.random.default_rng((batch_seed, t))``, so
        a step is a pure function of its inputs.
    """

    params: conj.VariationalParams
    n_iter: int
    batch_seed: int


class SviInfo(NamedTuple):
    """What one :func:`step` saw.

    Attributes
    ----------
    elbo_estimate : float
        Unbiased minibatch estimate (full-data nats, higher is better) of the ELBO of the
        globals *before* the step, with the optimal q(z).
    step_size : float
        rho_t used in the step.
    counts : ndarray of shape (n_components,)
        N/S sum_{i in B} r_ik (estimated points per component).
    """

    elbo_estimate: float
    step_size: float
    counts: np.ndarray


def init(points: np.ndarray, spec: MixtureSpec, *, random_seed: int | None = None,
         init: str = "kmeans++") -> SviState:
    """Start from the same q as ``cavi.init`` (centers, hard assignments, global update).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    spec : MixtureSpec
    random_seed : int or None
        Seeds the centers and every later minibatch.
    init : {"kmeans++", "random_points"}

    Returns
    -------
    SviState
    """
    random_seed = v.check_seed(random_seed)
    v.check_choice("init", init, tuple(kernels.INITS))
    center_seed, batch_seed = kernels.restart_seeds(random_seed, 2)
    centers = kernels.INITS[init](points, spec.n_components, np.random.default_rng(center_seed))
    return SviState(conj.initial_params(points, spec, centers), 0, batch_seed)


def _scaled(stats: kernels.PassStats, factor: float) -> kernels.PassStats:
    return kernels.PassStats(stats.counts * factor, stats.sum_dev * factor,
                             stats.sum_sq_dev * factor, stats.sum_r_log_r * factor,
                             stats.sum_log_norm * factor)


def _natural_step(old: conj.VariationalParams, target: conj.VariationalParams,
                  rho: float) -> conj.VariationalParams:
    """(1 - rho) old + rho target in each factor's natural parameters."""
    old_prec, target_prec = 1.0 / old.mean_var, 1.0 / target.mean_var
    prec = (1.0 - rho) * old_prec + rho * target_prec
    loc = ((1.0 - rho) * old_prec * old.mean_loc + rho * target_prec * target.mean_loc) / prec

    def mix(a, b):
        return None if a is None else (1.0 - rho) * a + rho * b

    return conj.VariationalParams(loc, 1.0 / prec, mix(old.weight_conc, target.weight_conc),
                                  mix(old.prec_shape, target.prec_shape),
                                  mix(old.prec_rate, target.prec_rate))


def step(points: np.ndarray, spec: MixtureSpec, state: SviState, *, batch_size: int = 1000,
         tau: float = 1.0, kappa: float = 0.7, backend: str = "numba_parallel",
         ) -> tuple[SviState, SviInfo]:
    """One SVI step on a fresh minibatch (see the module docstring).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    spec : MixtureSpec
    state : SviState
    batch_size : int
        S, points per minibatch (drawn with replacement).
    tau : float
        Delay >= 0 of the schedule rho_t = (t + tau)^-kappa.
    kappa : float
        Forgetting rate in (0.5, 1].
    backend : {"numba_parallel", "numba", "numpy"}
        The fused one-pass kernel on all numba threads from 200,000 points (one thread
        below; the default), on one thread always (``"numba"``: faster on a machine whose
        cores are busy), or the plain numpy reference (same numbers to ~1e-13).

    Returns
    -------
    (SviState, SviInfo)
    """
    n_samples = points.shape[0]
    t = state.n_iter + 1
    rng = np.random.default_rng((state.batch_seed, t))
    batch = points[np.sort(rng.integers(0, n_samples, size=batch_size))]
    params = state.params
    expect = conj.expectations(params, spec)
    stats = _scaled(kernels.one_pass(backend, batch, conj.log_rho_constants(params, expect),
                                     params.mean_loc, expect.prec), n_samples / batch_size)
    estimate = conj.elbo(stats, params.mean_loc, params, spec)
    target = conj.update_globals(stats, params.mean_loc, spec, expect.prec,
                                 spec.learned_obs_sd, params.weight_conc is not None)
    rho = float((t + tau) ** -kappa)
    new_state = SviState(_natural_step(params, target, rho), t, state.batch_seed)
    return new_state, SviInfo(estimate, rho, stats.counts)


def exact_elbo(points: np.ndarray, spec: MixtureSpec, params: conj.VariationalParams, *,
               backend: str = "numba_parallel") -> float:
    """The exact ELBO (nats) of the global factors ``params`` with the optimal q(z): one pass."""
    expect = conj.expectations(params, spec)
    stats = kernels.one_pass(backend, points, conj.log_rho_constants(params, expect),
                             params.mean_loc, expect.prec)
    return conj.elbo(stats, params.mean_loc, params, spec)


def _run(points, spec, seed, *, init_method, n_iter, batch_size, tau, kappa, tol, backend,
         progress, task):
    state = init(points, spec, random_seed=seed, init=init_method)
    steps_per_epoch = max(1, int(np.ceil(points.shape[0] / batch_size)))
    trace, converged, previous_epoch = [], False, None
    for _ in range(n_iter):
        state, info = step(points, spec, state, batch_size=batch_size, tau=tau, kappa=kappa,
                           backend=backend)
        trace.append(info.elbo_estimate)
        progress.update(task, advance=1, status=f"ELBO~ {info.elbo_estimate:.4f}")
        if tol is not None and len(trace) % steps_per_epoch == 0:
            epoch = float(np.mean(trace[-steps_per_epoch:]))
            if previous_epoch is not None and abs(epoch - previous_epoch) <= tol * abs(epoch):
                converged = True
                break
            previous_epoch = epoch
    return state, np.array(trace), converged


def fit(points: np.ndarray, spec: MixtureSpec, *, random_seed: int | None = None,
        n_iter: int = 2000, batch_size: int = 1000, tau: float = 1.0, kappa: float = 0.7,
        tol: float | None = None, n_init: int = 5, init: str = "kmeans++",
        n_draws: int = 1000, backend: str = "numba_parallel", progressbar: bool = True) -> MixtureFit:
    """Fit ``spec`` by SVI; keep the restart with the highest exact final ELBO.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    spec : MixtureSpec
    random_seed : int or None
    n_iter : int
        Minibatch steps per restart (SVI's max_iter).
    batch_size : int
        Points per minibatch; capped at n_samples.
    tau : float
        Delay in rho_t = (t + tau)^-kappa, finite and >= 0.
    kappa : float
        Forgetting rate in (0.5, 1] (the Robbins-Monro conditions need kappa > 0.5).
    tol : float or None
        None (default): run all n_iter steps. Otherwise stop when the mean ELBO estimate
        of an epoch (N / batch_size steps) changes by at most tol relative to the last one.
    n_init : int
        Starts from different centers (default 5: a single start can stop in a poor local
        optimum); the restart with the highest exact final ELBO (one full pass) is kept,
        all are reported in ``extras["restarts"]``. Restart j is seeded by the j-th of
        ``kernels.restart_seeds(random_seed, n_init + 1)`` (the last seeds the draws), so
        a seed fixes every number. ``n_init=1`` is a single start.
    init : {"kmeans++", "random_points"}
    n_draws : int
        Draws from q stored as one chain (at most ``validation.MAX_STORED_VALUES`` stored
        floats in all).
    backend : {"numba_parallel", "numba", "numpy"}
        The fused one-pass kernel on all numba threads from 200,000 points (one thread
        below; the default), on one thread always (``"numba"``: faster on a machine whose
        cores are busy), or the plain numpy reference (same numbers to ~1e-13).
    progressbar : bool

    Returns
    -------
    MixtureFit
        ``elbo``: the trace of minibatch estimates (full-data nats); ``extras``:
        ``elbo_final`` (exact, one full pass) and ``elbo_final_se`` = 0.0,
        ``variational_params``, ``step_sizes``, ``restarts``.

    Warns
    -----
    ConvergenceWarning
        When ``tol`` is given and was not met within ``n_iter`` steps.
    """
    random_seed = v.check_seed(random_seed)
    n_iter = v.check_int("n_iter", n_iter, minimum=1)
    batch_size = min(v.check_int("batch_size", batch_size, minimum=1), points.shape[0])
    if (isinstance(tau, bool | np.bool_) or not isinstance(tau, numbers.Real)
            or not 0 <= tau < np.inf):
        raise ValueError(f"tau: expected a finite number >= 0 (the delay of the step-size "
                         f"schedule), got {v.describe(tau)}. Use e.g. tau=1.0.")
    kappa = v.check_positive("kappa", kappa)
    if not 0.5 < kappa <= 1.0:
        raise ValueError(f"kappa: expected a forgetting rate in (0.5, 1], got {kappa!r}. "
                         f"Use e.g. kappa=0.7 (the Robbins-Monro conditions need > 0.5).")
    tol = None if tol is None else v.check_positive("tol", tol)
    n_init = v.check_int("n_init", n_init, minimum=1)
    n_draws = v.check_draws("n_draws", n_draws,
                            values_per_draw=kernels.values_per_draw(points, spec))
    v.check_choice("init", init, tuple(kernels.INITS))
    v.check_choice("backend", backend, kernels.BACKENDS)
    progressbar = v.check_bool("progressbar", progressbar)
    seeds = kernels.restart_seeds(random_seed, n_init + 1)
    with stopwatch() as build:
        kernels.warm_up(backend, *points.shape, spec.n_components)  # compile or load
    runs = []
    with stopwatch() as run, kernels.progress_bar(progressbar) as progress:
        for seed in seeds[:n_init]:
            task = progress.add_task(f"svi seed {seed}", total=n_iter, status="")
            state, trace, converged = _run(
                points, spec, seed, init_method=init, n_iter=n_iter, batch_size=batch_size,
                tau=float(tau), kappa=kappa, tol=tol, backend=backend, progress=progress,
                task=task)
            final = exact_elbo(points, spec, state.params, backend=backend)
            runs.append((seed, state, trace, converged, final))
    best = kernels.best_restart([run_[4] for run_ in runs])
    seed, state, trace, converged, final = runs[best]
    kernels.check_finite("svi", state.params._asdict(), final, "ELBO")
    if tol is not None and not converged:
        warnings.warn(f"svi: the epoch-mean ELBO estimate did not settle within n_iter={n_iter} "
                      f"steps (tol={tol:g}). Increase n_iter or batch_size, or loosen tol.",
                      ConvergenceWarning, stacklevel=2)
    params = conj.sorted_by_first_feature(state.params) if spec.ordered else state.params
    means, weights, obs_sd = conj.draws_from_q(params, spec, n_draws,
                                               np.random.default_rng(seeds[-1]))
    idata = make_idata(means, weights, points, obs_sd=obs_sd, attrs={"engine": "svi"})
    steps = np.arange(1, state.n_iter + 1)
    extras = {"variational_params": {k: val for k, val in params._asdict().items()
                                     if val is not None},
              "elbo_final": float(final), "elbo_final_se": 0.0,
              "step_sizes": (steps + float(tau)) ** -kappa,
              "elbo_estimator": "minibatch, unbiased, globals before each step, optimal q(z)",
              "restarts": [{"random_seed": s, "elbo": float(f), "n_iter": st.n_iter,
                            "converged": bool(c)} for s, st, _, c, f in runs]}
    options = {"random_seed": random_seed, "n_iter": n_iter, "batch_size": batch_size,
               "tau": float(tau), "kappa": kappa, "tol": tol, "n_init": n_init, "init": init,
               "n_draws": n_draws, "backend": backend}
    return MixtureFit(engine="svi", spec=spec, idata=idata,
                      timings=Timings(build=build.seconds, run=run.seconds), elbo=trace,
                      converged=converged if tol is not None else None, n_iter=state.n_iter,
                      extras=extras, options=options)


ENGINES = (
    Engine(name="svi", fit=fit, family="vi", scalable=True,
           summary="Stochastic VI (Hoffman et al. 2013): natural-gradient minibatch steps on "
                   "CAVI's family",
           quick_options={"n_iter": 300, "batch_size": 50, "n_draws": 200, "n_init": 2,
                          "progressbar": False},
           large_data_options={"n_iter": 2000, "batch_size": 1000}),
)
