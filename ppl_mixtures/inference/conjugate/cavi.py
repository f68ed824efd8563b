"""Coordinate-ascent variational inference (CAVI) for the MixtureSpec model, in numpy.

The model (``spec.py``)::

    mu_kd ~ N(m0_d, s0_d^2)     w ~ Dirichlet(alpha) or w = 1/K     tau_kd ~ Gamma(a0, b0) or known
    z_i ~ Cat(w)                x_id | z_i = k ~ N(mu_kd, 1/tau_kd)

The mean-field family (Blei et al. 2017, §2.3 and the mixture example of §3; Bishop 2006,
§10.2)::

    q(z, mu, w, tau) = prod_i Cat(z_i | r_i) prod_kd N(mu_kd | m_kd, s2_kd)
                       x Dir(w | alpha_hat) x prod_kd Gamma(tau_kd | a_kd, b_kd)

Each factor is set in turn to its optimum given the others, q_j* ∝ exp E_{-j}[log p(x, all)]
(Blei et al. 2017, the CAVI update of §2.4; Bishop 2006, eq. 10.9), so the ELBO never
decreases. The ELBO keeps every constant: it is a lower bound on log p(x) and equals, up
to the q(z) part, the ELBO ADVI maximizes for the same spec (see :func:`elbo`).

One iteration (:func:`step`) is one pass over the data (``_kernels.one_pass``) followed by
the O(KD) global updates; ``engines/_conjugate.py`` derives the updates and the ELBO term
by term. ``init`` / ``step`` / ``fit`` let a notebook step through it::

    state = cavi.init(points, spec, random_seed=0)
    elbos = []
    for _ in range(50):
        state, info = cavi.step(points, spec, state)
        elbos.append(info.elbo)                           # nats, higher is better
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from ppl_mixtures import validation as v
from ppl_mixtures.inference.conjugate import common as conj
from ppl_mixtures.inference.conjugate.common import VariationalParams, elbo
from ppl_mixtures.inference.registry import Engine
from ppl_mixtures.kernels import estep as kernels
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import ConvergenceWarning, MixtureFit, Timings, make_idata, stopwatch

__all__ = ["ENGINES", "CaviInfo", "CaviState", "VariationalParams", "elbo", "fit", "init",
           "step"]


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
    random_seed = v.check_seed(random_seed)
    v.check_choice("init", init, tuple(kernels.INITS))
    centers = kernels.INITS[init](points, spec.n_components, np.random.default_rng(random_seed))
    return CaviState(params=conj.initial_params(points, spec, centers), elbo=-np.inf, n_iter=0)


def step(points: np.ndarray, spec: MixtureSpec, state: CaviState, *,
         backend: str = "numba_parallel") -> tuple[CaviState, CaviInfo]:
    """One CAVI sweep: q(z) for every point, then q(w), q(mu), q(tau).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Any memory order; ``kernels.feature_major(points)`` (Fortran order, what ``fit``
        passes) is read in place and makes the numba pass ~10% faster.
    spec : MixtureSpec
    state : CaviState
    backend : {"numba_parallel", "numba", "numpy"}
        The fused one-pass kernel on all numba threads from 200,000 points (one thread
        below; the default), on one thread always (``"numba"``: faster on a machine whose
        cores are busy), or the plain numpy reference (same numbers to ~1e-13).

    Returns
    -------
    (CaviState, CaviInfo)
        The ELBO is that of the new state (q(z) from this pass, the new global factors).
    """
    params = state.params
    expect = conj.expectations(params, spec)
    centers = params.mean_loc
    stats = kernels.one_pass(backend, points, conj.log_rho_constants(params, expect), centers,
                             expect.prec)
    new_params = conj.update_globals(stats, centers, spec, expect.prec, spec.learned_obs_sd,
                                 params.weight_conc is not None)
    value = conj.elbo(stats, centers, new_params, spec)
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


def fit(points: np.ndarray, spec: MixtureSpec, *, random_seed: int | None = None,
        max_iter: int = 1000, tol: float = 1e-8, n_init: int = 5, init: str = "kmeans++",
        n_draws: int = 1000, backend: str = "numba_parallel", progressbar: bool = True) -> MixtureFit:
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
        Stop when ``abs(ELBO_t - ELBO_{t-1}) <= tol * abs(ELBO_t)`` (relative change).
    n_init : int
        Starts from different centers (default 5: a single start can stop in a poor local
        optimum); the restart with the highest final ELBO is kept, all are reported in
        ``extras["restarts"]``. Restart j is seeded by the j-th of
        ``kernels.restart_seeds(random_seed, n_init + 1)`` (the last one seeds the draws),
        so a seed fixes every number. ``n_init=1`` is a single start.
    init : {"kmeans++", "random_points"}
    n_draws : int
        Draws from q stored as one chain in ``idata.posterior`` (at most
        ``validation.MAX_STORED_VALUES`` stored floats in all).
    backend : {"numba_parallel", "numba", "numpy"}
        The fused one-pass kernel on all numba threads from 200,000 points (one thread
        below; the default), on one thread always (``"numba"``: faster on a machine whose
        cores are busy), or the plain numpy reference (same numbers to ~1e-13).
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
    random_seed = v.check_seed(random_seed)
    max_iter = v.check_int("max_iter", max_iter, minimum=1)
    tol = v.check_positive("tol", tol)
    n_init = v.check_int("n_init", n_init, minimum=1)
    n_draws = v.check_draws("n_draws", n_draws,
                            values_per_draw=kernels.values_per_draw(points, spec))
    v.check_choice("init", init, tuple(kernels.INITS))
    v.check_choice("backend", backend, kernels.BACKENDS)
    progressbar = v.check_bool("progressbar", progressbar)
    seeds = kernels.restart_seeds(random_seed, n_init + 1)
    with stopwatch() as build:
        kernels.warm_up(backend, *points.shape, spec.n_components)  # compile or load
        data = kernels.feature_major(points)                        # read in place by the pass
    runs = []
    with stopwatch() as run, kernels.progress_bar(progressbar) as progress:
        for seed in seeds[:n_init]:
            task = progress.add_task(f"cavi seed {seed}", total=max_iter, status="")
            runs.append((seed, *_run(data, spec, seed, init_method=init, max_iter=max_iter,
                                     tol=tol, backend=backend, progress=progress, task=task)))
    best = kernels.best_restart([state.elbo for _, state, _, _ in runs])
    seed, state, trace, converged = runs[best]
    kernels.check_finite("cavi", state.params._asdict(), state.elbo, "ELBO")
    if not converged:
        warnings.warn(f"cavi: the ELBO did not converge in max_iter={max_iter} sweeps (last "
                      f"relative change {_relative_change(trace):.2e} > tol={tol:g}). Increase "
                      f"max_iter, loosen tol, or try n_init > 1.", ConvergenceWarning,
                      stacklevel=2)
    params = conj.sorted_by_first_feature(state.params) if spec.ordered else state.params
    means, weights, obs_sd = conj.draws_from_q(params, spec, n_draws,
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
           quick_options={"max_iter": 200, "n_draws": 200, "n_init": 2, "progressbar": False},
           large_data_options={"max_iter": 300}),
)
