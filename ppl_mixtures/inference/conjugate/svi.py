"""Stochastic variational inference (SVI) for the MixtureSpec model: CAVI's family on minibatches.

Hoffman, Blei, Wang & Paisley (2013, JMLR 14, §2; also Blei et al. 2017, §4.3). Same
mean-field q as ``cavi`` (``meanfield.VariationalParams``). One step:

1. draw a minibatch B of S points uniformly (with replacement) from the N points;
2. local step: the optimal q(z_i) for i in B given the current global factors, reduced to
   the batch's sufficient statistics (``stats.one_pass``);
3. intermediate globals lambda-hat: the CAVI update (``meanfield.update_globals``) computed
   as if the data were the batch repeated N/S times (``stats.scaled``: N_k, the entropy
   and the log-normalizer scale by N/S; x̄_k and S_k, being averages, do not);
4. a natural-gradient step on each global factor's natural parameters,
   lambda <- (1 - rho_t) lambda + rho_t lambda-hat, with the Robbins-Monro schedule
   rho_t = (t + tau)^-kappa, tau >= 0 (delay), kappa in (0.5, 1] (forgetting rate).

For a conditionally conjugate factor, lambda-hat - lambda is the natural gradient of the
ELBO (Hoffman et al. 2013, §2), so step 4 is a stochastic natural-gradient step. The
natural parameters interpolated are: for q(mu_kd) = N(m, s2), the precision 1/s2 and
m/s2; for q(w) = Dir(conc), conc; for q(tau_kd) = Gamma(shape, rate), shape and rate
(spherical: q(tau_k), the same). Full and tied covariances (``fullcov_meanfield``): for
q(mu_k) = N(m_k, C_k), C_k^{-1} and C_k^{-1} m_k; for q(Lambda_k) = Wishart(nu_k, W_k),
nu_k and W_k^{-1} (the Wishart's natural parameters (nu - D - 1)/2 and -W^{-1}/2 are
linear in them; ``fullcov_meanfield.natural_step``).

The ELBO trace holds, at each step, an unbiased estimate in full-data nats of the ELBO of
the *current* globals with every q(z_i) at its optimum: the global terms exactly, plus
N/S times the batch's local terms. ``fit.elbo_estimate`` is the exact ELBO of the
returned q, from one full pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ppl_mixtures import validation as v
from ppl_mixtures.inference.conjugate import chunked, driver
from ppl_mixtures.inference.conjugate import fullcov_meanfield as fm
from ppl_mixtures.inference.conjugate import meanfield as mf
from ppl_mixtures.inference.conjugate.family import q_family, q_posterior_draws
from ppl_mixtures.inference.registry import Engine
from ppl_mixtures.kernels.estep import warm_up
from ppl_mixtures.kernels.estep_full import warm_up_full
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import Estimate, MixtureFit, Timings, make_idata, stopwatch

__all__ = [
    "ENGINES",
    "Options",
    "SviDetails",
    "SviInfo",
    "SviState",
    "exact_elbo",
    "fit",
    "init",
    "step",
]


class SviState(NamedTuple):
    """Loop state of SVI.

    Attributes
    ----------
    params : meanfield.VariationalParams or fullcov_meanfield.FullParams
        The global factors of q (``FullParams`` for covariance "full" or "tied").
    n_iter : int
        Steps taken (t); step t + 1 uses rho = (t + 1 + tau)^-kappa.
    batch_seed : int
        The minibatch of step t is drawn by ``np.random.default_rng((batch_seed, t))``, so
        a step is a pure function of its inputs.
    """

    params: mf.VariationalParams | fm.FullParams
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


@dataclass(frozen=True, kw_only=True)
class Options(driver.RestartOptions):
    """SVI's options (``fit(points, spec, **options)``); shared ones in RestartOptions."""

    n_iter: int = field(default=2000, metadata={"help": "minibatch steps per restart"})
    batch_size: int = field(
        default=1000,
        metadata={"help": "points per minibatch (drawn with replacement; capped at n_samples)"},
    )
    tau: float = field(
        default=1.0, metadata={"help": "delay >= 0 of the step sizes rho_t = (t + tau)^-kappa"}
    )
    kappa: float = field(default=0.7, metadata={"help": "forgetting rate in (0.5, 1]"})
    tol: float | None = field(
        default=None,
        metadata={
            "help": "stop when an epoch's mean ELBO estimate changes by at most tol (relative); "
            "None: run all n_iter steps"
        },
    )
    n_draws: int = field(default=1000, metadata={"help": "draws from q stored in the posterior"})

    def __post_init__(self) -> None:
        super().__post_init__()
        set_ = object.__setattr__
        set_(self, "n_iter", v.check_int("n_iter", self.n_iter, minimum=1))
        set_(self, "batch_size", v.check_int("batch_size", self.batch_size, minimum=1))
        set_(
            self,
            "tau",
            v.check_real(
                "tau",
                self.tau,
                minimum=0.0,
                hint="Use e.g. tau=1.0 (tau is the delay of the step-size schedule)",
            ),
        )
        set_(self, "kappa", v.check_positive("kappa", self.kappa))
        if not 0.5 < self.kappa <= 1.0:
            raise ValueError(
                f"kappa: expected a forgetting rate in (0.5, 1], got {self.kappa!r}. "
                f"Use e.g. kappa=0.7 (the Robbins-Monro conditions need > 0.5)."
            )
        if self.tol is not None:
            set_(self, "tol", v.check_positive("tol", self.tol))
        set_(self, "n_draws", v.check_int("n_draws", self.n_draws, minimum=1))


@dataclass(frozen=True, eq=False)
class SviDetails:
    """SVI's own results (``fit.details``).

    Attributes
    ----------
    variational_params : dict of str -> ndarray
        The kept q's parameters, None entries left out: the fields of
        ``meanfield.VariationalParams`` (diag, spherical) or ``fullcov_meanfield.FullParams``
        (full, tied), as in ``cavi.CaviDetails``.
    step_sizes : ndarray of shape (n_iter,)
        rho_t of every step of the kept restart.
    elbo_estimator : str
        What ``fit.elbo`` holds, in words.
    """

    variational_params: dict[str, np.ndarray]
    step_sizes: np.ndarray
    elbo_estimator: str


def init(
    points: np.ndarray, spec: MixtureSpec, *, random_seed: int | None = None, init: str = "kmeans++"
) -> SviState:
    """Start from the same kind of q as ``cavi.init`` (centers, hard assignments, update).

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
    v.check_choice("init", init, tuple(driver.INITS))
    center_seed, batch_seed = driver.restart_seeds(random_seed, 2)
    centers = driver.INITS[init](points, spec.n_components, np.random.default_rng(center_seed))
    return SviState(q_family(spec)[0].initial_params(points, spec, centers), 0, batch_seed)


def step(
    points: np.ndarray,
    spec: MixtureSpec,
    state: SviState,
    *,
    batch_size: int = 1000,
    tau: float = 1.0,
    kappa: float = 0.7,
    backend: str = "numba_parallel",
) -> tuple[SviState, SviInfo]:
    """One SVI step on a fresh minibatch (see the module docstring).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features), or ChunkedPoints
        Chunked data: the batch comes from one chunk (``chunked.minibatch``: the chunk with
        probability n_c / N, then S of its rows with replacement), so the same chunking
        gives the same steps in memory and on dask.
    spec : MixtureSpec
    state : SviState
    batch_size : int
        S, points per minibatch (drawn with replacement).
    tau : float
        Delay >= 0 of the schedule rho_t = (t + tau)^-kappa.
    kappa : float
        Forgetting rate in (0.5, 1].
    backend : {"numba_parallel", "numba", "numpy"}
        As for ``cavi.step``.

    Returns
    -------
    (SviState, SviInfo)
    """
    n_samples = points.shape[0]
    t = state.n_iter + 1
    rng = np.random.default_rng((state.batch_seed, t))
    params = state.params
    family, family_elbo = q_family(spec)
    expect = family.expectations(params, spec)
    if isinstance(points, chunked.ChunkedPoints):  # a batch from one chunk, on its worker
        batch_stats = chunked.minibatch(
            points,
            rng,
            batch_size,
            lambda batch: family.local_pass(chunked.chunk_backend(backend), batch, params, expect),
        )
    else:
        batch = points[np.sort(rng.integers(0, n_samples, size=batch_size))]
        batch_stats = family.local_pass(backend, batch, params, expect)
    stats = family.scaled(batch_stats, n_samples / batch_size)
    estimate = family_elbo(stats, params, spec)
    target = family.update_globals(stats, spec, expect.prec)
    rho = float((t + tau) ** -kappa)
    new_state = SviState(family.natural_step(params, target, rho), t, state.batch_seed)
    return new_state, SviInfo(estimate, rho, stats.counts)


def exact_elbo(
    points: np.ndarray,
    spec: MixtureSpec,
    params: mf.VariationalParams | fm.FullParams,
    *,
    backend: str = "numba_parallel",
) -> float:
    """The exact ELBO (nats) of the global factors ``params`` with the optimal q(z): one pass."""
    family, family_elbo = q_family(spec)
    expect = family.expectations(params, spec)
    return family_elbo(family.local_pass(backend, points, params, expect), params, spec)


def fit(points: np.ndarray, spec: MixtureSpec, **options: Any) -> MixtureFit:
    """Fit ``spec`` by SVI; keep the restart with the highest exact final ELBO.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    spec : MixtureSpec
    **options
        The fields of :class:`Options`: ``random_seed``, ``n_iter`` (minibatch steps per
        restart), ``batch_size`` (capped at n_samples), ``tau``, ``kappa``, ``tol``,
        ``n_init`` (default 5; ranked by the exact ELBO of each restart's q, one full pass;
        restart j is seeded by the j-th of ``driver.restart_seeds(random_seed, n_init + 1)``,
        the last seeds the draws), ``init``, ``n_draws``, ``backend``, ``progressbar``,
        ``chunk_size`` (rows per chunk, as for CAVI; the minibatch then comes from one
        chunk). Chunked ``points`` (a dask array through ``fit``): batches from one chunk
        each, the exact final ELBO by the chunked pass (``chunked.py``).

    Returns
    -------
    MixtureFit
        ``elbo``: the trace of minibatch estimates (full-data nats); ``elbo_estimate``:
        the exact ELBO of the returned q (se 0); ``restarts``; ``details``: :class:`SviDetails`.
        ``converged`` is None unless ``tol`` is given.

    Warns
    -----
    ConvergenceWarning
        When ``tol`` is given and was not met within ``n_iter`` steps.
    """
    opts = v.build_options("svi", Options, options)
    family = q_family(spec)[0]
    batch_size = min(opts.batch_size, points.shape[0])
    n_draws = v.check_draws(
        "n_draws", opts.n_draws, values_per_draw=family.values_per_draw(spec, points.shape[1])
    )
    seeds = driver.restart_seeds(opts.random_seed, opts.n_init + 1)
    steps_per_epoch = max(1, int(np.ceil(points.shape[0] / batch_size)))
    with stopwatch() as build:
        data = chunked.prepare(points, opts.chunk_size)
        backend = opts.pass_backend(data)
        # compile the pass (first run of a fresh install) or load it from numba's cache
        (warm_up_full if family is fm else warm_up)(
            backend, points.shape[0], points.shape[1], spec.n_components
        )

    def one_step(state: SviState) -> tuple[SviState, float]:
        new_state, info = step(
            data,
            spec,
            state,
            batch_size=batch_size,
            tau=opts.tau,
            kappa=opts.kappa,
            backend=backend,
        )
        return new_state, info.elbo_estimate

    def run_one(seed: int, report: Any) -> driver.Run:
        state, trace, converged = driver.iterate(
            one_step,
            init(data, spec, random_seed=seed, init=opts.init),
            max_iter=opts.n_iter,
            report=report,
            converged_when=(
                None
                if opts.tol is None
                else driver.epoch_mean_change_below(opts.tol, steps_per_epoch)
            ),
        )
        final = exact_elbo(data, spec, state.params, backend=backend)
        return driver.Run(seed, state, trace, converged, final)

    with stopwatch() as run:
        kept, restarts = driver.fit_restarts(
            "svi",
            seeds[: opts.n_init],
            run_one,
            total=opts.n_iter,
            progressbar=opts.progressbar,
            objective_name="elbo",
            arrays=lambda state: state.params._asdict(),
            not_converged=lambda r: (
                f"svi: the epoch-mean ELBO estimate did not settle within n_iter={opts.n_iter} "
                f"steps (tol={opts.tol:g}). Increase n_iter or batch_size, or loosen tol."
            ),
        )
    params = kept.state.params
    means, weights, obs_sd, obs_cov, extra = q_posterior_draws(
        params, spec, n_draws, np.random.default_rng(seeds[-1])
    )
    if spec.ordered:  # details hold q sorted like its draws
        params = family.sorted_by_first_feature(params)
    details = SviDetails(
        variational_params={k: val for k, val in params._asdict().items() if val is not None},
        step_sizes=(np.arange(1, kept.n_iter + 1) + opts.tau) ** -opts.kappa,
        elbo_estimator="minibatch, unbiased, globals before each step, optimal q(z)",
    )
    recorded = {
        "random_seed": opts.random_seed,
        "n_iter": opts.n_iter,
        "batch_size": batch_size,
        "tau": opts.tau,
        "kappa": opts.kappa,
        "tol": opts.tol,
        "n_init": opts.n_init,
        "init": opts.init,
        "n_draws": n_draws,
        "backend": opts.backend,
        "chunk_size": opts.chunk_size,
    }
    return MixtureFit(
        engine="svi",
        spec=spec,
        family="vi",
        idata=make_idata(
            means,
            weights,
            points,
            obs_sd=obs_sd,
            obs_cov=obs_cov,
            attrs={"engine": "svi"},
            extra_posterior=extra,
        ),
        timings=Timings(build=build.seconds, run=run.seconds),
        elbo=kept.trace,
        converged=kept.converged,
        n_iter=kept.n_iter,
        elbo_estimate=Estimate(float(kept.objective), 0.0),
        restarts=restarts,
        details=details,
        options=recorded,
    )


ENGINES = (
    Engine(
        name="svi",
        fit=fit,
        options=Options,
        family="vi",
        scalable=True,
        summary="Stochastic VI (Hoffman et al. 2013): natural-gradient minibatch steps on "
        "CAVI's family",
        covariances=("diag", "full", "tied", "spherical"),
    ),
)
