"""ADVI: automatic differentiation variational inference, mean-field and full-rank.

Engines ``"advi"`` (q = a Gaussian with diagonal covariance) and ``"fullrank_advi"``
(q = a Gaussian with full covariance) over the *unconstrained* parameters of the
marginal mixture model of :func:`ppl_mixtures.inference.pymc.models.build_marginal_model`: the
means as they are, the weights through the stick-breaking transform (or PyMC's simplex
transform, ``spec.weights_transform``), learned precisions through log. PyMC's ``KLqp``
objective is differentiated and compiled once per problem and reused (see
:mod:`ppl_mixtures.inference.pymc.advi_objective`); our loop runs it.

The engine is split by meaning: this module holds the result's details
(:class:`AdviDetails`) and the fit; :mod:`.advi_options` the options (:class:`Options`,
shared by both engines); :mod:`.advi_schedule` the step sizes,
iteration counts, averaging window and optimisation loop; :mod:`.advi_convergence` the
convergence test and the ELBO estimates; :mod:`.advi_tables` q's readable tables. Their
public names are re-exported here (which, with this docstring -- chunked data included --
and :class:`AdviDetails`'s attribute docs, takes this module past 400 lines; the fit
itself is ~170).

What a fit returns (beyond the shared schema):

- ``fit.elbo``: the ELBO trace in **full-data nats** (higher is better) whatever the batch
  size: each entry is the single-draw estimate the optimiser used, with the minibatch
  log-likelihood scaled by N/B (``total_size``). It can be plotted beside CAVI's ELBO and
  compared with log p(x).
- ``fit.elbo_estimate``: ``Estimate(value, se)``, the ELBO of the returned q on the **full**
  data, ``E_q[log p(x, theta) + log|J|] + H[q]``, the expectation by Monte Carlo
  (``elbo_draws`` draws; ``se`` is the standard error of that mean), the entropy exact.
- ``fit.restarts``: one :class:`~ppl_mixtures.results.Restart` per restart (``n_init``),
  ``objective_name="elbo"``, ``kept=True`` on the one returned (the highest final ELBO).
- ``fit.converged``: the verdict of the convergence test
  (:func:`~ppl_mixtures.inference.pymc.advi_convergence.convergence_test`); a failed test
  raises a ``ConvergenceWarning`` that says what to try.
- ``fit.details``: an :class:`AdviDetails` (q readable, the convergence test's
  measurements, the step sizes, q's parameters, timings of the pieces).

Chunked data (a ``dask.array.Array`` through :func:`ppl_mixtures.fit`, arriving as a
:class:`~ppl_mixtures.validation.chunked.ChunkedPoints`): minibatch ADVI streams them, one
chunk in memory at a time (``batch_size`` is required; full-data ADVI needs every point at
every step and is refused). Every block of
:data:`~ppl_mixtures.inference.pymc.advi_objective.CHUNK_STEPS` iterations reads one chunk,
drawn with probability n_c / N, and draws the block's minibatches from it: each minibatch
row is uniform over all N points, so the objective's gradient stays unbiased, but the
minibatches of a block are correlated (they share a chunk), which adds variance that the
step decay and the iterate average must absorb (more so when chunks are sorted, e.g. by
cluster or time; a ``ChunkOrderWarning`` says so before the run when the chunk means
differ more than a random order allows, ``validation.chunk_order``). The start reads ``validation.chunked.init_sample`` (every point when
N <= 100,000: the in-memory start); the final ELBO and the convergence test's ELBO change
sum the log-likelihood chunk by chunk (one pass over the data each), so they are the same
full-data quantities as in memory. ``details.chunks_loaded`` lists the chunk read at each
block and ``details.buffer_rows`` the rows held in memory (the largest chunk).

The optimisation (defaults): adagrad_window at ``learning_rate`` for the first 10% of
the iterations, then Robbins-Monro decay (4); the returned q is the Polyak-Ruppert
average of the raw parameters over the last 80% of the iterations. ``schedule="constant",
average=0`` is PyMC's behaviour (a constant step, the last iterate).

Equations (numbered for the Notes of :func:`fit_advi`)::

    ELBO(q) = E_q[ log p(x | theta) + log p(theta) + log|J(theta)| ] + H[q]          (1)
    H[q]    = sum_i log L_ii + (d / 2) (1 + log 2 pi)                                (2)
    minibatch: log p(x | theta) ~= (N / B) sum_{i in batch} log p(x_i | theta)      (3)
    rate_t  = learning_rate / (1 + (t - t0) / tau)^kappa   for t >= t0               (4)

where theta is the d-vector of unconstrained coordinates and L the Cholesky factor of q's
covariance (diag(sd) for mean-field).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.inference.pymc.advi_convergence import (
    ELBO_CHANGE_FLOOR,
    ELBO_CHANGE_MAX_SE,
    LAST_ITERATE_MAX,
    PARAM_CHANGE_MAX,
    PARAM_SE_MAX,
    advice,
    convergence_test,
    final_elbo,
)
from ppl_mixtures.inference.pymc.advi_objective import (
    BLOCK,
    CompiledObjective,
    cache_info,
    clear_cache,
    get_objective,
)
from ppl_mixtures.inference.pymc.advi_options import Options
from ppl_mixtures.inference.pymc.advi_schedule import (
    AUTO_N_ITER,
    AUTO_PASSES,
    AVERAGE,
    CONVERGENCE_WINDOW,
    ELBO_BUDGET,
    LEARNING_RATE,
    averaging_start,
    optimize,
    relative_change,
    resolve_n_iter,
    step_sizes,
    window_mean,
)
from ppl_mixtures.inference.pymc.advi_tables import (
    approximation_tables,
    format_approximation,
    simplex_backward,
    weights_backward,
)
from ppl_mixtures.inference.pymc.cov_models import COVARIANCES
from ppl_mixtures.inference.registry import Engine
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import (
    ConvergenceWarning,
    Estimate,
    MixtureFit,
    Restart,
    Timings,
    make_idata,
    stopwatch,
)
from ppl_mixtures.validation import (
    build_options,
)
from ppl_mixtures.validation.chunk_order import (
    CHUNK_ORDER_ALPHA,
    ChunkOrderWarning,
    chunk_order_test,
)
from ppl_mixtures.validation.chunked import ChunkedPoints, init_sample

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AVERAGE",
    "CONVERGENCE_WINDOW",
    "ELBO_CHANGE_FLOOR",
    "ELBO_CHANGE_MAX_SE",
    "ENGINES",
    "LAST_ITERATE_MAX",
    "LEARNING_RATE",
    "PARAM_CHANGE_MAX",
    "PARAM_SE_MAX",
    "AdviDetails",
    "Options",
    "approximation_tables",
    "averaging_start",
    "cache_info",
    "clear_cache",
    "convergence_test",
    "describe_defaults",
    "final_elbo",
    "fit_advi",
    "fit_fullrank_advi",
    "format_approximation",
    "resolve_n_iter",
    "simplex_backward",
    "step_sizes",
    "weights_backward",
]


# --------------------------------------------------------------------------- details
@dataclass(frozen=True, eq=False)
class AdviDetails:
    """What an ADVI fit holds beyond the shared fields (``fit.details``).

    Attributes
    ----------
    approximation : pandas.DataFrame
        One row per unconstrained coordinate (``"means[0,1]"``,
        ``"weights_stickbreaking__[0]"``, ...), columns ``mean`` and ``sd`` of q.
    back_transform : pandas.DataFrame
        One row per model variable entry: ``at_q_mean``, ``q_mean``, ``q_sd``,
        ``difference`` (:func:`approximation_tables`).
    covariance, correlation : pandas.DataFrame of shape (d, d)
        q's, over the unconstrained coordinates, labelled (diagonal for mean-field).
    convergence : dict
        What :func:`convergence_test` measured (its limits, ``passed``, ``reason``); with
        ``tolerance``, also ``relative_change``.
    learning_rates : ndarray of shape (n_iter,)
        The step size of every iteration (:func:`step_sizes`).
    average_start : int
        The first averaged iteration (``n_iter`` when q is the last iterate).
    averaged_iterations : int
    cache_hit : bool
        The compiled objective came from the cache.
    compile_seconds, optimize_seconds, iterations_per_second : float
        Building the objective (when it was built), the optimisation loops of all
        restarts, and their speed.
    unconstrained_mean, unconstrained_sd : ndarray of shape (d,)
        q's mean and sds (averaged when ``average > 0``).
    unconstrained_chol : ndarray of shape (d, d)
        The Cholesky factor L of q's covariance (diagonal for mean-field).
    unconstrained_labels : list of str, length d
    raw_params : dict of ndarray
        PyMC's ``mu`` and ``rho`` (mean-field) or ``L_tril`` (full rank), averaged.
    chunks_loaded : ndarray of int
        Chunked data: the chunk read at each block of the returned run, in order (empty
        in memory).
    buffer_rows : int or None
        Chunked data: the rows of data held in memory during the run (the largest chunk);
        None in memory.
    """

    approximation: pd.DataFrame
    back_transform: pd.DataFrame
    covariance: pd.DataFrame
    correlation: pd.DataFrame
    convergence: dict[str, Any]
    learning_rates: np.ndarray
    average_start: int
    averaged_iterations: int
    cache_hit: bool
    compile_seconds: float
    optimize_seconds: float
    iterations_per_second: float
    unconstrained_mean: np.ndarray
    unconstrained_sd: np.ndarray
    unconstrained_chol: np.ndarray
    unconstrained_labels: list[str]
    raw_params: dict[str, np.ndarray]
    chunks_loaded: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, int))
    buffer_rows: int | None = None


# --------------------------------------------------------------------------- engine fit
@dataclass(frozen=True, eq=False)
class _Run:
    """One restart's outcome."""

    random_seed: int
    elbo_final: float
    elbo_final_se: float
    n_iter: int
    convergence: dict[str, Any]
    average_start: int
    seconds: float
    elbo: np.ndarray
    params: dict[str, np.ndarray]
    raw: dict[str, np.ndarray]
    rng: np.random.Generator
    rates: np.ndarray
    chunks: np.ndarray


def _restart_seeds(random_seed: int | None, n_init: int) -> list[int]:
    """One 31-bit seed per restart, reproducible from ``random_seed``."""
    children = np.random.SeedSequence(random_seed).spawn(n_init)
    return [int(child.generate_state(1)[0] >> 1) for child in children]


def _run_restart(
    objective: CompiledObjective,
    points: np.ndarray | ChunkedPoints,
    spec: MixtureSpec,
    opts: Options,
    seed: int,
    index: int,
) -> _Run:
    """One optimisation from one start: the averaged q, its ELBO and the convergence test."""
    from ppl_mixtures.inference.pymc.models import initial_point

    # internal invariants (not user input): Options.for_data resolved these
    assert opts.n_iter is not None and opts.elbo_draws is not None and opts.average is not None
    start_points = init_sample(points) if isinstance(points, ChunkedPoints) else points
    start = initial_point(
        spec, start_points, random_seed=None if index == 0 else seed, check_input=False
    )
    rates = step_sizes(
        opts.n_iter,
        opts.learning_rate,
        opts.schedule,
        warmup=opts.warmup,
        decay_scale=opts.decay_scale,
        decay_power=opts.decay_power,
    )
    objective.reset(points, objective.unconstrain(start), rates, seed)
    loop_start = time.perf_counter()
    elbo, block_sums = optimize(
        objective, opts.n_iter, opts.tolerance, opts.learning_rate, opts.progressbar
    )
    seconds = time.perf_counter() - loop_start
    n_run = elbo.size
    avg_start = averaging_start(n_run, opts.average)
    if avg_start < n_run:
        raw = window_mean(block_sums, avg_start // BLOCK, len(block_sums))
    else:
        raw = objective.raw_params()
    # the test's window: the averaging window, or the last half when there is none
    test_start = avg_start if avg_start < n_run else averaging_start(n_run, 0.5)
    test = convergence_test(
        objective,
        elbo,
        block_sums,
        test_start,
        np.random.default_rng((seed, 3)),
        last_iterate=None if avg_start < n_run else raw,
    )
    if opts.tolerance is not None:  # the old rule: also stopped (or not) on the ELBO
        test["relative_change"] = relative_change(
            elbo, n_run - n_run % CONVERGENCE_WINDOW, CONVERGENCE_WINDOW
        )
    params = objective.params(raw)
    rng = np.random.default_rng((seed, 2))  # the optimiser's stream is (seed, 1)
    value, se = final_elbo(objective, params, rng, opts.elbo_draws)
    return _Run(
        random_seed=seed,
        elbo_final=value,
        elbo_final_se=se,
        n_iter=int(n_run),
        convergence=test,
        average_start=int(avg_start),
        seconds=seconds,
        elbo=elbo,
        params=params,
        raw=raw,
        rng=rng,
        rates=rates[:n_run],
        chunks=np.asarray(objective.chunk_history, dtype=np.int64),
    )


def _warn_sorted_chunks(points: ChunkedPoints, method: str) -> None:
    """A ChunkOrderWarning when the chunk means say the rows are not in random order."""
    test = chunk_order_test(points)
    if test is None or test.p_value >= CHUNK_ORDER_ALPHA:
        return
    warnings.warn(
        f"points: {method} draws each block of minibatches from one chunk, which is "
        f"unbiased only when the rows are in random order across the chunks; these chunk "
        f"means differ more than that allows (chi-square {test.statistic:.4g} on {test.dof} "
        f"degrees of freedom, p = {test.p_value:.2g}; chunk {test.worst_chunk} differs "
        f"most): the data look sorted (by cluster, time, site ...), and the fit will likely "
        f"not converge or be wrong. Shuffle the rows before writing the chunks, or use "
        f"engine='cavi' (docs/scaling.md).",
        ChunkOrderWarning,
        stacklevel=4,  # _warn_sorted_chunks <- _fit <- fit_advi <- the caller
    )


def _warn_not_converged(method: str, best: _Run, opts: Options) -> None:
    """The ConvergenceWarning of a failed test: what failed, and what to try."""
    test = best.convergence
    tips = advice(
        test,
        n_iter=opts.n_iter or 0,
        learning_rate=opts.learning_rate,
        batch_size=opts.batch_size,
        schedule=opts.schedule,
        average=opts.average or 0.0,
    )
    warnings.warn(
        f"{method}: not converged after {best.n_iter} iterations: {test['reason']}. {tips}",
        ConvergenceWarning,
        stacklevel=4,  # _warn_not_converged <- _fit <- fit_advi <- the caller
    )


def _details(
    objective: CompiledObjective,
    runs: list[_Run],
    best: _Run,
    tables: dict[str, Any],
    cache_hit: bool,
) -> AdviDetails:
    """The fit's :class:`AdviDetails`: q (``best``'s) and the timings of all ``runs``."""
    optimize_seconds = sum(r.seconds for r in runs)
    params = best.params
    return AdviDetails(
        **tables,
        convergence=best.convergence,
        learning_rates=best.rates,
        average_start=best.average_start,
        averaged_iterations=best.n_iter - best.average_start,
        cache_hit=cache_hit,
        compile_seconds=objective.build_seconds,
        optimize_seconds=optimize_seconds,
        iterations_per_second=sum(r.n_iter for r in runs) / max(optimize_seconds, 1e-12),
        unconstrained_mean=params["mean"],
        unconstrained_sd=params["std"],
        unconstrained_chol=params["chol"],
        unconstrained_labels=list(objective.labels),
        raw_params={k: np.array(v) for k, v in best.raw.items()},
        chunks_loaded=best.chunks,
        buffer_rows=objective.buffer_rows,
    )


def _fit(
    points: np.ndarray | ChunkedPoints, spec: MixtureSpec, method: str, options: Options
) -> MixtureFit:
    """Fit ``method`` ("advi" or "fullrank_advi"): restarts, the best kept, q's draws."""
    if isinstance(points, ChunkedPoints) and options.batch_size is None:
        raise ValueError(
            f"batch_size: expected a minibatch size for chunked data with {method} (it "
            f"streams one chunk at a time), got None (full-data ADVI reads all "
            f"{points.shape[0]} points of the {points.n_chunks} chunks at every step). "
            f"Pass e.g. batch_size=200, or use engine='cavi' or 'svi', or pass "
            f"points.compute() if the data fit in memory."
        )
    if isinstance(points, ChunkedPoints):
        _warn_sorted_chunks(points, method)
    opts = options.for_data(points.shape[0])
    with stopwatch() as build:
        objective, cache_hit = get_objective(
            points, spec, method, opts.batch_size, opts.optimizer, use_cache=opts.reuse_compiled
        )
    run_start = time.perf_counter()
    seeds = _restart_seeds(opts.random_seed, opts.n_init)
    runs = [
        _run_restart(objective, points, spec, opts, seed, index) for index, seed in enumerate(seeds)
    ]
    best_index = int(np.argmax([r.elbo_final for r in runs]))
    best = runs[best_index]
    params = best.params
    eps = best.rng.standard_normal((opts.draws, params["mean"].shape[0]))
    draws = objective.constrain(params["mean"] + eps @ params["chol"].T)
    tables = approximation_tables(objective, params, draws)
    idata = make_idata(
        draws["means"][None],
        draws["weights"][None],
        points,
        # learned full/tied: obs_cov (make_idata derives obs_sd and obs_corr); diag and
        # spherical: obs_sd; known covariances: neither
        obs_sd=draws["obs_sd"][None] if "obs_sd" in draws else None,
        obs_cov=draws["obs_cov"][None] if "obs_cov" in draws else None,
        attrs={"engine": method, "inference_library": "pymc"},
        extra_posterior=_dp_draws(draws),
    )
    run_seconds = time.perf_counter() - run_start
    test = best.convergence
    if not test["passed"]:
        _warn_not_converged(method, best, opts)
    details = _details(objective, runs, best, tables, cache_hit)
    restarts = tuple(
        Restart(
            random_seed=r.random_seed,
            objective=r.elbo_final,
            objective_name="elbo",
            n_iter=r.n_iter,
            converged=bool(r.convergence["passed"]),
            kept=index == best_index,
        )
        for index, r in enumerate(runs)
    )
    return MixtureFit(
        engine=method,
        spec=spec,
        idata=idata,
        family="vi",
        timings=Timings(build=build.seconds, run=run_seconds),
        elbo=best.elbo,
        converged=bool(test["passed"]),
        n_iter=best.n_iter,
        options={**dataclasses.asdict(opts), "restart_seeds": seeds},
        elbo_estimate=Estimate(best.elbo_final, best.elbo_final_se),
        restarts=restarts,
        details=details,
    )


def fit_advi(points: np.ndarray | ChunkedPoints, spec: MixtureSpec, **options: Any) -> MixtureFit:
    """Mean-field ADVI: q(theta) = prod_i Normal(theta_i | mu_i, sd_i^2).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features), or ChunkedPoints
        Validated data (``ppl_mixtures.fit`` validates it). Chunked data (a dask array)
        need ``batch_size``: they are streamed one chunk at a time, the minibatches of each
        block of iterations drawn from one chunk chosen with probability n_c / N (unbiased,
        but correlated within the block; module docs).
    spec : MixtureSpec
    **options
        The fields of :class:`Options` (``n_iter``, ``batch_size``, ``learning_rate``,
        ``schedule``, ``average``, ``random_seed``, ``draws``, ``n_init``, ...); docs/advi.md
        explains each.

    Returns
    -------
    MixtureFit
        ``elbo`` in full-data nats (the single-draw trace of the iterates),
        ``elbo_estimate``, ``restarts``, ``converged`` (a ``ConvergenceWarning`` when the
        test fails) and ``details`` (:class:`AdviDetails`); ``timings.build`` is ~0 on a
        cache hit.
    """
    return _fit(points, spec, "advi", build_options("advi", Options, options))


def fit_fullrank_advi(
    points: np.ndarray | ChunkedPoints, spec: MixtureSpec, **options: Any
) -> MixtureFit:
    """Full-rank ADVI: q(theta) = Normal(theta | mu, L L^T). Parameters and result as
    :func:`fit_advi` (the same :class:`Options`)."""
    return _fit(points, spec, "fullrank_advi", build_options("fullrank_advi", Options, options))


def describe_defaults() -> str:
    """The default optimisation settings, in words (for reports and benchmarks)."""
    return (
        f"adagrad_window({LEARNING_RATE}), schedule 'decay': the base rate for the "
        f"first 10% of the iterations, then rate / (1 + (t - t0) / tau)^0.6 with tau = 5% "
        f"of n_iter; the last {AVERAGE:.0%} of the iterates averaged (Polyak-Ruppert); "
        f"n_iter {AUTO_N_ITER:,} on full data, {AUTO_PASSES} passes over the data "
        f"(ceil({AUTO_PASSES} N / B), at least {AUTO_N_ITER:,}) with minibatches; "
        f"elbo_draws min(500, max(100, {ELBO_BUDGET:.0e} / N))"
    )


def _dp_draws(draws: dict[str, np.ndarray]) -> Any:
    """q's draws of the dp sticks (and of alpha when learned) for the posterior, as NUTS
    stores them; None for other weights."""
    if "dp_sticks" not in draws:
        return None
    import xarray as xr

    extra = {"dp_sticks": (("chain", "draw", "component_stick"), draws["dp_sticks"][None])}
    if "dp_alpha" in draws:
        extra["dp_alpha"] = (("chain", "draw"), draws["dp_alpha"][None])
    return xr.Dataset(extra)


ENGINES = (
    Engine(
        name="advi",
        covariances=COVARIANCES,
        fit=fit_advi,
        options=Options,
        family="vi",
        scalable=True,
        summary="Mean-field ADVI (PyMC KLqp, compiled once and reused), minibatches at scale",
    ),
    Engine(
        name="fullrank_advi",
        covariances=COVARIANCES,
        fit=fit_fullrank_advi,
        options=Options,
        family="vi",
        scalable=True,
        summary="Full-rank ADVI: a correlated Gaussian q, minibatches at scale",
    ),
)
