"""Coordinate-ascent variational inference (CAVI) for the MixtureSpec model, in numpy.

The model, the mean-field family and the updates are in ``meanfield.py``; one sweep is

1. the local step: q(z_i) for every point given the global factors, reduced at once to the
   sufficient statistics N_k, x̄_k, S_k (``stats.one_pass``: the numba pass, or the numpy
   reference ``stats.numpy_pass``; Bishop 2006, eqs. 10.46-10.53);
2. the global step: q(w), q(mu), then q(tau) from those statistics
   (``meanfield.update_weights``, ``update_means``, ``update_precisions``);
3. the ELBO of the result, as named terms (``elbo.elbo_terms``); it never decreases
   (Blei et al. 2017, §2.4; Bishop 2006, eq. 10.9).

``init`` / ``step`` / ``fit`` let a notebook step through it::

    state = cavi.init(points, spec, random_seed=0)
    elbos = []
    for _ in range(50):
        state, info = cavi.step(points, spec, state)
        elbos.append(info.elbo)                           # nats, higher is better

``fit`` runs ``n_init`` restarts through the shared driver (``driver.py``) and keeps the
one with the highest ELBO.

Merge moves (``weights="dp"`` only; ``merge.py``): k-means++ starts T centres, so on large
data each true cluster begins split among several components, which coordinate ascent
merges only at a crawl. When the relative ELBO change falls below 1e-5 (at most every 10
sweeps) and before convergence is declared, ``fit`` proposes merging the closest pairs of
occupied components (at most 3 per round): their sufficient statistics are combined, the
global factors set from them, one full sweep run, and the result kept only if its ELBO is
higher (Ueda et al. 2000; Hughes & Sudderth 2013). The trace stays monotone and every
value in it is the ELBO of a full sweep; ``fit.details.merges_proposed`` /
``merges_accepted`` count the moves. Other weights run the plain sweeps (same numbers as
before); :func:`step` never merges.

Covariance types: "diag" and "spherical" (one Gamma q(tau_k) per component) use
``meanfield.py`` and ``elbo.py`` as above; "full" (learned or known) and "tied" use the
Gaussian-Wishart family of ``fullcov_meanfield.py`` (q(mu_k) with full covariance,
q(Lambda_k) Wishart) with the full-covariance pass ``stats_full.full_pass`` and the ELBO
of ``fullcov_elbo.py``; the same three steps in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ppl_mixtures import validation as v
from ppl_mixtures.inference.conjugate import chunked, driver, merge
from ppl_mixtures.inference.conjugate import fullcov_meanfield as fm
from ppl_mixtures.inference.conjugate.elbo import elbo
from ppl_mixtures.inference.conjugate.family import q_family, q_posterior_draws
from ppl_mixtures.inference.conjugate.fullcov_meanfield import FullParams
from ppl_mixtures.inference.conjugate.meanfield import VariationalParams
from ppl_mixtures.inference.registry import Engine
from ppl_mixtures.kernels.estep import feature_major, warm_up
from ppl_mixtures.kernels.estep_full import warm_up_full
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import Estimate, MixtureFit, Timings, make_idata, stopwatch

__all__ = [
    "ENGINES",
    "CaviDetails",
    "CaviInfo",
    "CaviState",
    "FullParams",
    "Options",
    "VariationalParams",
    "elbo",
    "fit",
    "init",
    "step",
]


class CaviState(NamedTuple):
    """Loop state of CAVI.

    Attributes
    ----------
    params : VariationalParams or FullParams
        The current global factors of q (``FullParams`` for covariance "full" or "tied").
    elbo : float
        ELBO (nats, higher is better) of (q(z) from the last pass, ``params``); -inf after
        :func:`init`, which has no q(z) yet.
    n_iter : int
        Steps taken since :func:`init`.
    """

    params: VariationalParams | FullParams
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
        N_k = sum_i r_ik, the expected number of points per component.
    """

    elbo: float
    elbo_change: float
    counts: np.ndarray


@dataclass(frozen=True, kw_only=True)
class Options(driver.RestartOptions):
    """CAVI's options (``fit(points, spec, **options)``); shared ones in RestartOptions."""

    max_iter: int = field(default=1000, metadata={"help": "sweeps per restart"})
    tol: float = field(
        default=1e-8, metadata={"help": "stop when the relative ELBO change is at most tol"}
    )
    n_draws: int = field(default=1000, metadata={"help": "draws from q stored in the posterior"})

    def __post_init__(self) -> None:
        super().__post_init__()
        set_ = object.__setattr__
        set_(self, "max_iter", v.check_int("max_iter", self.max_iter, minimum=1))
        set_(self, "tol", v.check_positive("tol", self.tol))
        # >= 1 here; the upper limit depends on the data's shape, so fit checks it
        set_(self, "n_draws", v.check_int("n_draws", self.n_draws, minimum=1))


@dataclass(frozen=True, eq=False)
class CaviDetails:
    """CAVI's own results (``fit.details``).

    Attributes
    ----------
    variational_params : dict of str -> ndarray
        The kept q's parameters (None entries left out), components sorted by feature 0
        when the spec is ``ordered``. Diag and spherical: the fields of
        :class:`VariationalParams` (``mean_loc``, ``mean_var``, ``weight_conc``,
        ``prec_shape``, ``prec_rate``; spherical: one Gamma per component, shape (K,)).
        Full and tied: the fields of :class:`FullParams` (``mean_loc`` (K, D), ``mean_cov``
        (K, D, D), ``weight_conc``, ``wishart_dof`` (K,), ``wishart_scale`` (K, D, D);
        tied: one Wishart factor, shapes (1,) and (1, D, D)). ``weights="dp"``: no
        ``weight_conc``; instead the stick factors ``stick_a``, ``stick_b`` (T - 1,) and,
        with ``dp_alpha_prior``, ``alpha_shape``, ``alpha_rate`` (1,)
        (``DPVariationalParams`` / ``DPFullParams``; ``sticks.expected_counts`` reads E[N_k]).
    merges_proposed, merges_accepted : int
        ``weights="dp"``: merge moves (``merge.py``) the kept restart tried (one pass each)
        and accepted (each one a sweep in the ELBO trace); 0 for other specs.
    """

    variational_params: dict[str, np.ndarray]
    merges_proposed: int = 0
    merges_accepted: int = 0


# ----------------------------------------------------------------- init / step
def init(
    points: np.ndarray, spec: MixtureSpec, *, random_seed: int | None = None, init: str = "kmeans++"
) -> CaviState:
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
    """
    random_seed = v.check_seed(random_seed)
    v.check_choice("init", init, tuple(driver.INITS))
    centers = driver.INITS[init](points, spec.n_components, np.random.default_rng(random_seed))
    params = q_family(spec)[0].initial_params(points, spec, centers)
    return CaviState(params=params, elbo=-np.inf, n_iter=0)


def step(
    points: np.ndarray, spec: MixtureSpec, state: CaviState, *, backend: str = "numba_parallel"
) -> tuple[CaviState, CaviInfo]:
    """One CAVI sweep: q(z) for every point, then q(w), q(mu), q(tau) (or q(Lambda)); the ELBO.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Any memory order; ``feature_major(points)`` (Fortran order, what ``fit`` passes) is
        read in place and makes the numba pass ~10% faster.
    spec : MixtureSpec
    state : CaviState
    backend : {"numba_parallel", "numba", "numpy"}
        The fused numba pass on all threads from 200,000 points (one thread below; the
        default), on one thread always (``"numba"``: faster on a machine whose cores are
        busy), or the plain numpy reference (same numbers to ~1e-13).

    Returns
    -------
    (CaviState, CaviInfo)
        The ELBO is that of the new state (q(z) from this pass, the new global factors).
    """
    new_params, value, stats = _sweep(points, spec, state.params, backend)
    new_state = CaviState(new_params, value, state.n_iter + 1)
    return new_state, CaviInfo(value, value - state.elbo, stats.counts)


def _sweep(
    points: np.ndarray, spec: MixtureSpec, params: Any, backend: str
) -> tuple[Any, float, Any]:
    """One sweep from the global factors ``params``: (new factors, their ELBO, the pass's
    sufficient statistics)."""
    family, family_elbo = q_family(spec)
    expect = family.expectations(params, spec)
    stats = family.local_pass(backend, points, params, expect)
    new_params = family.update_globals(stats, spec, expect.prec)
    return new_params, family_elbo(stats, new_params, spec), stats


def _globals_from_stats(stats: Any, spec: MixtureSpec) -> Any:
    """The global factors set from (merged) statistics: q(mu) first given the prior mean
    of the precisions (as ``initial_params``), then twice more given the new q's."""
    family = q_family(spec)[0]
    n_components, n_features = stats.means.shape
    if family is fm:
        if spec.learned_covariance:
            start = spec.wishart_dof(n_features) * spec.wishart_scale(n_features)
        else:
            start = np.linalg.inv(spec.known_obs_cov(n_features))
        prec = np.broadcast_to(start, (n_components, n_features, n_features)).copy()
    elif spec.learned_obs_sd or spec.covariance == "spherical":
        prec = np.full(stats.means.shape, spec.precision_prior_shape / spec.precision_prior_rate)
    else:
        prec = np.broadcast_to(spec.known_obs_sd(n_features) ** -2.0, stats.means.shape).copy()
    params = family.update_globals(stats, spec, prec)
    for _ in range(2):
        params = family.update_globals(stats, spec, family.expectations(params, spec).prec)
    return params


# ----------------------------------------------------------------- fit
def fit(points: np.ndarray, spec: MixtureSpec, **options: Any) -> MixtureFit:
    """Fit ``spec`` by CAVI; keep the restart with the highest ELBO.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Validated data.
    spec : MixtureSpec
    **options
        The fields of :class:`Options`: ``random_seed``, ``max_iter`` (sweeps per restart),
        ``tol`` (stop when ``abs(ELBO_t - ELBO_{t-1}) <= tol * abs(ELBO_t)``), ``n_init``
        (default 5; restart j is seeded by the j-th of
        ``driver.restart_seeds(random_seed, n_init + 1)``, the last seeds the draws),
        ``init``, ``n_draws`` (draws from q stored as one chain, at most
        ``validation.MAX_STORED_VALUES`` floats in all), ``backend``, ``progressbar``,
        ``chunk_size`` (rows per chunk: the chunked pass of ``chunked.py``, the numbers
        of a dask array with those chunks; None: one pass, or the dask array's chunks).

        ``points`` may be chunked (``validation.chunked.ChunkedPoints``, what ``fit``
        makes of a dask array): every pass then runs per chunk and the statistics reduce in
        a fixed tree (``chunked.py``); the start reads ``chunked.init_sample``.

    Returns
    -------
    MixtureFit
        ``elbo``: the trace of the kept restart; ``elbo_estimate``: its final ELBO (exact,
        se 0); ``restarts``: every restart; ``details``: :class:`CaviDetails`.

    Warns
    -----
    ConvergenceWarning
        When the kept restart used all ``max_iter`` sweeps.
    """
    opts = v.build_options("cavi", Options, options)
    family = q_family(spec)[0]
    n_draws = v.check_draws(
        "n_draws", opts.n_draws, values_per_draw=family.values_per_draw(spec, points.shape[1])
    )
    seeds = driver.restart_seeds(opts.random_seed, opts.n_init + 1)
    with stopwatch() as build:
        data = chunked.prepare(points, opts.chunk_size)
        backend = opts.pass_backend(data)
        # compile the pass (first run of a fresh install) or load it from numba's cache
        (warm_up_full if family is fm else warm_up)(
            backend, points.shape[0], points.shape[1], spec.n_components
        )
        if not isinstance(data, chunked.ChunkedPoints):
            data = feature_major(points)  # read in place by the pass

    def run_one(seed: int, report: Any) -> driver.Run:
        if spec.is_dp and not spec.fixed_weights:  # merge moves (merge.py)
            params, merge_trace, merged_ok, record = merge.iterate_with_merges(
                lambda p: _sweep(data, spec, p, backend),
                lambda stats: _globals_from_stats(stats, spec),
                init(data, spec, random_seed=seed, init=opts.init).params,
                spec,
                max_iter=opts.max_iter,
                converged_when=driver.relative_change_below(opts.tol),
                report=report,
            )
            merged = CaviState(params, float(merge_trace[-1]), int(merge_trace.size))
            return driver.Run(seed, merged, merge_trace, merged_ok, merged.elbo, extra=record)
        state, trace, converged = driver.iterate(
            lambda s: _step_elbo(data, spec, s, backend),
            init(data, spec, random_seed=seed, init=opts.init),
            max_iter=opts.max_iter,
            converged_when=driver.relative_change_below(opts.tol),
            report=report,
        )
        return driver.Run(seed, state, trace, converged, state.elbo)

    with stopwatch() as run:
        kept, restarts = driver.fit_restarts(
            "cavi",
            seeds[: opts.n_init],
            run_one,
            total=opts.max_iter,
            progressbar=opts.progressbar,
            objective_name="elbo",
            arrays=lambda state: state.params._asdict(),
            not_converged=lambda r: (
                f"cavi: the ELBO did not converge in max_iter={opts.max_iter} sweeps (last "
                f"relative change {_relative_change(r.trace):.2e} > tol={opts.tol:g}). "
                f"Increase max_iter, loosen tol, or try n_init > 1."
            ),
        )
    params = kept.state.params
    means, weights, obs_sd, obs_cov, extra = q_posterior_draws(
        params, spec, n_draws, np.random.default_rng(seeds[-1])
    )
    if spec.ordered:  # details hold q sorted like its draws
        params = family.sorted_by_first_feature(params)
    return MixtureFit(
        engine="cavi",
        spec=spec,
        family="vi",
        idata=make_idata(
            means,
            weights,
            points,
            obs_sd=obs_sd,
            obs_cov=obs_cov,
            attrs={"engine": "cavi"},
            extra_posterior=extra,
        ),
        timings=Timings(build=build.seconds, run=run.seconds),
        elbo=kept.trace,
        converged=kept.converged,
        n_iter=kept.n_iter,
        elbo_estimate=Estimate(float(kept.objective), 0.0),
        restarts=restarts,
        details=CaviDetails(
            {k: val for k, val in params._asdict().items() if val is not None},
            merges_proposed=kept.extra.proposed if kept.extra is not None else 0,
            merges_accepted=kept.extra.accepted if kept.extra is not None else 0,
        ),
        options={name: getattr(opts, name) for name in _RECORDED_OPTIONS},
    )


#: The options recorded in ``fit.options`` (everything but the progress bar).
_RECORDED_OPTIONS = (
    "random_seed",
    "max_iter",
    "tol",
    "n_init",
    "init",
    "n_draws",
    "backend",
    "chunk_size",
)


def _step_elbo(
    points: np.ndarray, spec: MixtureSpec, state: CaviState, backend: str
) -> tuple[CaviState, float]:
    new_state, info = step(points, spec, state, backend=backend)
    return new_state, info.elbo


def _relative_change(trace: np.ndarray) -> float:
    if trace.size < 2:
        return float("inf")
    return float(abs(trace[-1] - trace[-2]) / abs(trace[-1]))


ENGINES = (
    Engine(
        name="cavi",
        fit=fit,
        options=Options,
        family="vi",
        scalable=True,
        summary="Coordinate-ascent VI (mean-field, exact ELBO with all constants), numpy+numba",
        covariances=("diag", "full", "tied", "spherical"),
    ),
)
