"""ADVI: automatic differentiation variational inference, mean-field and full-rank.

Engines ``"advi"`` (q = a Gaussian with diagonal covariance) and ``"fullrank_advi"``
(q = a Gaussian with full covariance) over the *unconstrained* parameters of the
marginal mixture model of :func:`ppl_mixtures.models.build_marginal_model`: the means
as they are, the weights through the stick-breaking transform (or PyMC's simplex
transform, ``spec.weights_transform``), learned precisions through log. PyMC's ``KLqp``
objective is differentiated and compiled once per problem and reused (see
:mod:`ppl_mixtures.engines._advi_objective`); our loop runs it.

What a fit returns (beyond the shared schema):

- ``fit.elbo``: the ELBO trace in **full-data nats** (higher is better) whatever the batch
  size: each entry is the single-draw estimate the optimiser used, with the minibatch
  log-likelihood scaled by N/B (``total_size``). It can be plotted beside CAVI's ELBO and
  compared with log p(x).
- ``extras["elbo_final"]``, ``extras["elbo_final_se"]``: the ELBO of the final q on the
  **full** data, ``E_q[log p(x, theta) + log|J|] + H[q]``, the expectation by Monte Carlo
  (``elbo_draws`` draws; the standard error is of that mean), the entropy exact.
- ``extras["approximation"]``, ``extras["back_transform"]``, ``extras["covariance"]``,
  ``extras["correlation"]``: q itself, readable (:func:`approximation_tables`,
  :func:`format_approximation`).
- ``extras["restarts"]``: one dict per restart (``n_init``), the best kept.

Equations (numbered for the Notes of :func:`fit_advi`)::

    ELBO(q) = E_q[ log p(x | theta) + log p(theta) + log|J(theta)| ] + H[q]          (1)
    H[q]    = sum_i log L_ii + (d / 2) (1 + log 2 pi)                                (2)
    minibatch: log p(x | theta) ~= (N / B) sum_{i in batch} log p(x_i | theta)      (3)

where theta is the d-vector of unconstrained coordinates and L the Cholesky factor of q's
covariance (diag(sd) for mean-field).
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import numpy as np

from ..results import ConvergenceWarning, MixtureFit, Timings, make_idata
from ..spec import MixtureSpec
from ..validation import check_choice, check_int, check_positive, describe
from . import Engine
from ._advi_objective import (
    BLOCK,
    OPTIMIZERS,
    CompiledObjective,
    cache_info,
    clear_cache,
    element_labels,
    get_objective,
)

__all__ = [
    "ENGINES",
    "approximation_tables",
    "cache_info",
    "clear_cache",
    "fit_advi",
    "fit_fullrank_advi",
    "format_approximation",
    "simplex_backward",
    "weights_backward",
]

logger = logging.getLogger(__name__)

#: ELBO window (iterations) of the convergence criterion (one block of pre-drawn noise).
CONVERGENCE_WINDOW = BLOCK
#: The relative ELBO change that counts as converged when no ``tolerance`` is given (Stan's
#: ``tol_rel_obj``); the run is then not stopped early, only labelled.
DEFAULT_TOLERANCE = 0.01
_LOG_2PI = float(np.log(2.0 * np.pi))


# --------------------------------------------------------------------------- back-transforms
def simplex_backward(y) -> np.ndarray:
    """PyMC's ``SimplexTransform.backward`` in numpy: (..., K-1) -> (..., K).

    The additive log-ratio with a zero-sum shift: append ``-sum(y)`` and take the softmax.
    """
    y = np.asarray(y, dtype=np.float64)
    full = np.concatenate([y, -y.sum(axis=-1, keepdims=True)], axis=-1)
    full = full - full.max(axis=-1, keepdims=True)
    return np.exp(full) / np.exp(full).sum(axis=-1, keepdims=True)


def weights_backward(y, transform: str = "stick_breaking") -> np.ndarray:
    """The mixture weights at unconstrained coordinates ``y`` (..., K-1) -> (..., K).

    ``transform`` is ``spec.weights_transform``: ``"stick_breaking"`` (our Stan-style
    transform, :func:`ppl_mixtures.transforms.stick_breaking_backward`) or ``"simplex"``
    (PyMC's, :func:`simplex_backward`). This is the seed's hand back-transform of the
    approximation's mean; read the docstring of :func:`approximation_tables` before using
    it as "the" weights of q.
    """
    from ..transforms import stick_breaking_backward

    check_choice("transform", transform, ("stick_breaking", "simplex"))
    return stick_breaking_backward(y) if transform == "stick_breaking" else simplex_backward(y)


# --------------------------------------------------------------------------- option checks
def _check_options(points: np.ndarray, opts: dict[str, Any]) -> dict[str, Any]:
    n_samples = points.shape[0]
    out = dict(opts)
    out["n_iter"] = check_int("n_iter", opts["n_iter"], minimum=1,
                              hint="Use e.g. n_iter=10000 (seed 001 used 5000)")
    if opts["batch_size"] is not None:
        out["batch_size"] = check_int(
            "batch_size", opts["batch_size"], minimum=1, maximum=n_samples,
            hint=f"Use a batch of at most n_samples={n_samples}, or batch_size=None")
    check_choice("optimizer", opts["optimizer"], OPTIMIZERS)
    out["learning_rate"] = check_positive("learning_rate", opts["learning_rate"],
                                          hint="Use e.g. learning_rate=0.05")
    if opts["tolerance"] is not None:
        out["tolerance"] = check_positive("tolerance", opts["tolerance"],
                                          hint="Use e.g. tolerance=0.001, or None")
    if opts["random_seed"] is not None:
        out["random_seed"] = check_int("random_seed", opts["random_seed"], minimum=0,
                                       hint="Pass a non-negative integer such as 1, or None")
    for name in ("progressbar", "reuse_compiled"):
        if not isinstance(opts[name], bool | np.bool_):
            raise TypeError(f"{name}: expected True or False, got {describe(opts[name])}. "
                            f"Pass {name}=True or {name}=False.")
    out["draws"] = check_int("draws", opts["draws"], minimum=1, hint="Use e.g. draws=1000")
    out["n_init"] = check_int("n_init", opts["n_init"], minimum=1, hint="Use e.g. n_init=4")
    out["elbo_draws"] = check_int("elbo_draws", opts["elbo_draws"], minimum=2,
                                  hint="Use e.g. elbo_draws=500 (at least 2 for a standard "
                                       "error)")
    return out


def _restart_seeds(random_seed: int | None, n_init: int) -> list[int]:
    """One 31-bit seed per restart, reproducible from ``random_seed``."""
    children = np.random.SeedSequence(random_seed).spawn(n_init)
    return [int(child.generate_state(1)[0] >> 1) for child in children]


# --------------------------------------------------------------------------- the loop
def _relative_change(trace: np.ndarray, stop: int, window: int) -> float:
    """|mean ELBO of the last window - the window before| / |mean of the last window|."""
    if stop < 2 * window:
        return np.inf
    last = trace[stop - window:stop].mean()
    before = trace[stop - 2 * window:stop - window].mean()
    return float(abs(last - before) / max(abs(last), 1e-12))


def _optimize(objective: CompiledObjective, n_iter: int, tolerance: float | None,
              learning_rate: float, progressbar: bool) -> tuple[np.ndarray, float]:
    """Run the compiled step ``n_iter`` times (or until converged).

    Returns
    -------
    elbo : ndarray of shape (n_run,)
        The single-draw ELBO of each iteration, full-data nats.
    relative_change : float
        The convergence criterion at the end (see :func:`_relative_change`).
    """
    from rich.progress import Progress

    window = CONVERGENCE_WINDOW
    elbo = np.empty(n_iter)
    change = np.inf
    n_run = n_iter
    with Progress(disable=not progressbar) as progress:
        task = progress.add_task("ADVI", total=n_iter)
        for start in range(0, n_iter, window):
            stop = min(start + window, n_iter)
            objective.run(stop - start, elbo[start:stop])
            block = elbo[start:stop]
            if not np.all(np.isfinite(block)):
                bad = start + int(np.argmin(np.isfinite(block)))
                raise FloatingPointError(
                    f"learning_rate: expected a rate at which the optimisation stays "
                    f"finite, got {learning_rate} (the ELBO became {elbo[bad]} at "
                    f"iteration {bad}). Try a smaller learning_rate or "
                    f"optimizer='adagrad_window'.")
            progress.update(task, advance=stop - start,
                            description=f"ADVI  ELBO {block.mean():,.1f}")
            if stop % window == 0:
                change = _relative_change(elbo, stop, window)
                if tolerance is not None and change < tolerance:
                    n_run = stop
                    break
    elbo = elbo[:n_run]
    return elbo, change


def _final_elbo(objective: CompiledObjective, params: dict[str, np.ndarray],
                rng: np.random.Generator, n_draws: int) -> tuple[float, float]:
    """Eq. (1) on the full data: Monte Carlo E_q[log p(x, theta)] plus the exact H[q] (2)."""
    eps = rng.standard_normal((n_draws, params["mean"].shape[0]))
    theta = params["mean"] + eps @ params["chol"].T
    log_joint = objective.log_joint(theta)
    entropy = (np.sum(np.log(np.diag(params["chol"])))
               + 0.5 * theta.shape[1] * (1.0 + _LOG_2PI))
    return (float(log_joint.mean() + entropy),
            float(log_joint.std(ddof=1) / np.sqrt(n_draws)))


# --------------------------------------------------------------------------- tables
def approximation_tables(objective: CompiledObjective, params: dict[str, np.ndarray],
                         constrained_draws: dict[str, np.ndarray]) -> dict[str, Any]:
    """q in readable form: unconstrained mean/sd, back-transforms, covariance.

    Parameters
    ----------
    objective : CompiledObjective
    params : dict
        ``mean`` (d,), ``std`` (d,), ``chol`` (d, d) of q over the unconstrained coordinates.
    constrained_draws : dict
        Draws from q mapped to the model variables, ``means`` (S, K, D), ``weights`` (S, K),
        ``obs_sd`` (S, K, D) when learned.

    Returns
    -------
    dict of pandas.DataFrame
        ``approximation``: one row per unconstrained coordinate (``"means[0,1]"``,
        ``"weights_stickbreaking__[0]"``, ``"obs_precision_log__[1,0]"``), columns ``mean``
        and ``sd`` of q. ``back_transform``: one row per model variable entry
        (``"weights[0]"``, ...), columns ``at_q_mean`` (the model variable at q's
        unconstrained mean: what seed 001 computed by hand), ``q_mean`` and ``q_sd`` (the
        mean and sd of the constrained draws) and ``difference`` = q_mean - at_q_mean.
        ``covariance`` and ``correlation``: (d, d) over the unconstrained coordinates, with
        the labels on both axes (diagonal for mean-field).

    Notes
    -----
    The back-transform of the mean is not the mean of the back-transform. The weights live
    on the simplex and q lives on R^(K-1): w = g(y) with g the stick-breaking (or simplex)
    map. For a nonlinear g, ``g(E_q[y]) != E_q[g(y)]`` (Jensen). For K = 2,
    ``w_0 = logistic(y)``; with y ~ Normal(m, s^2) the mean ``E[w_0]`` is pulled towards
    1/2 as s grows, while ``logistic(m)`` is not. Seed 001 reported ``g(E_q[y])``; the
    posterior mean under q is ``E_q[g(y)]``, the ``q_mean`` column, which is what the
    posterior group of the fit holds. The means are untransformed, so both columns agree
    for them (up to Monte Carlo error).
    """
    import pandas as pd

    labels = objective.labels
    at_mean = objective.constrain(params["mean"][None])
    rows = {}
    for name in objective.constrained_names:
        values_at_mean = at_mean[name][0]
        for label, a, m, s in zip(element_labels(name, values_at_mean.shape),
                                  values_at_mean.ravel(),
                                  constrained_draws[name].mean(axis=0).ravel(),
                                  constrained_draws[name].std(axis=0).ravel(), strict=True):
            rows[label] = {"at_q_mean": a, "q_mean": m, "q_sd": s, "difference": m - a}
    chol = params["chol"]
    cov = chol @ chol.T
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    return {
        "approximation": pd.DataFrame({"mean": params["mean"], "sd": params["std"]},
                                      index=pd.Index(labels, name="unconstrained")),
        "back_transform": pd.DataFrame.from_dict(rows, orient="index").rename_axis("variable"),
        "covariance": pd.DataFrame(cov, index=labels, columns=labels),
        "correlation": pd.DataFrame(corr, index=labels, columns=labels),
    }


def format_approximation(fit: MixtureFit, *, correlation: bool | None = None) -> str:
    """The approximation of an ADVI fit as text (for notebooks, logs and reports).

    Parameters
    ----------
    fit : MixtureFit
        From engine ``"advi"`` or ``"fullrank_advi"``.
    correlation : bool, optional
        Show the correlation matrix; default: only for full-rank fits.
    """
    if "approximation" not in fit.extras:
        raise ValueError(f"fit: expected a fit of engine 'advi' or 'fullrank_advi', got "
                         f"engine {fit.engine!r}. Fit with engine='advi' first.")
    if correlation is None:
        correlation = fit.engine == "fullrank_advi"
    import pandas as pd

    fmt = "{:.4f}".format
    parts = [f"q = {'full-rank' if fit.engine == 'fullrank_advi' else 'mean-field'} "
             f"Gaussian over the unconstrained coordinates",
             fit.extras["approximation"].to_string(float_format=fmt), "",
             "Model variables: at q's mean (back-transform of the mean) vs mean of draws",
             fit.extras["back_transform"].to_string(float_format=fmt)]
    if correlation:
        corr = fit.extras["correlation"]
        short = [str(i) for i in range(len(corr))]  # columns by number, rows by label
        table = pd.DataFrame(corr.to_numpy(), index=[f"{i} {lab}" for i, lab in
                                                     zip(short, corr.index, strict=True)],
                             columns=short)
        parts += ["", "Correlation of q", table.to_string(float_format="{:.2f}".format)]
    return "\n".join(parts)


# --------------------------------------------------------------------------- engine fit
def _fit(points: np.ndarray, spec: MixtureSpec, method: str, opts: dict[str, Any]) -> MixtureFit:
    from ..models import initial_point

    opts = _check_options(points, opts)
    with _timer() as build:
        objective, cache_hit = get_objective(points, spec, method, opts["batch_size"],
                                             opts["optimizer"], use_cache=opts["reuse_compiled"])
    run_start = time.perf_counter()
    seeds = _restart_seeds(opts["random_seed"], opts["n_init"])
    restarts, best = [], None
    optimize_seconds, iterations = 0.0, 0
    for index, seed in enumerate(seeds):
        start = initial_point(spec, points, random_seed=None if index == 0 else seed)
        objective.reset(points, objective.unconstrain(start), opts["learning_rate"], seed)
        loop_start = time.perf_counter()
        elbo, change = _optimize(objective, opts["n_iter"], opts["tolerance"],
                                 opts["learning_rate"], opts["progressbar"])
        optimize_seconds += time.perf_counter() - loop_start
        iterations += elbo.size
        params = objective.params()
        rng = np.random.default_rng((seed, 2))  # the optimiser's stream is (seed, 1)
        elbo_final, elbo_se = _final_elbo(objective, params, rng, opts["elbo_draws"])
        converged = bool(change < (opts["tolerance"] or DEFAULT_TOLERANCE))
        restarts.append({"random_seed": seed, "elbo_final": elbo_final, "elbo_final_se": elbo_se,
                         "n_iter": int(elbo.size), "converged": converged,
                         "relative_change": change})
        if best is None or elbo_final > best[0]:
            best = (elbo_final, elbo_se, elbo, params, rng, converged, index)
    elbo_final, elbo_se, elbo, params, rng, converged, best_index = best
    eps = rng.standard_normal((opts["draws"], params["mean"].shape[0]))
    draws = objective.constrain(params["mean"] + eps @ params["chol"].T)
    tables = approximation_tables(objective, params, draws)
    idata = make_idata(draws["means"][None], draws["weights"][None], points,
                       obs_sd=draws["obs_sd"][None] if "obs_sd" in draws else None,
                       attrs={"engine": method, "inference_library": "pymc"})
    run_seconds = time.perf_counter() - run_start
    if opts["tolerance"] is not None and not converged:
        warnings.warn(f"{method}: the ELBO had not converged after {opts['n_iter']} iterations "
                      f"(relative change {restarts[best_index]['relative_change']:.2g} > "
                      f"tolerance {opts['tolerance']}). Raise n_iter or the learning_rate.",
                      ConvergenceWarning, stacklevel=3)
    extras = {"elbo_final": elbo_final, "elbo_final_se": elbo_se, "restarts": restarts,
              "best_restart": best_index, "cache_hit": cache_hit,
              "compile_seconds": objective.build_seconds,
              "optimize_seconds": optimize_seconds,
              "iterations_per_second": iterations / max(optimize_seconds, 1e-12), **tables,
              "unconstrained_mean": params["mean"], "unconstrained_sd": params["std"],
              "unconstrained_labels": list(objective.labels)}
    return MixtureFit(engine=method, spec=spec, idata=idata,
                      timings=Timings(build=build.seconds, run=run_seconds), elbo=elbo,
                      converged=converged, n_iter=int(elbo.size), extras=extras,
                      options={**opts, "random_seed": opts["random_seed"],
                               "restart_seeds": seeds})


class _timer:
    seconds = 0.0

    def __enter__(self):
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start


_DOC_OPTIONS = """
    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Validated data (``ppl_mixtures.fit`` validates it).
    spec : MixtureSpec
    n_iter : int
        Optimiser iterations (per restart).
    batch_size : int or None
        Minibatch size; None uses all the data in every step. The likelihood of a batch is
        scaled by N/B (``total_size``), eq. (3), so q targets the full-data posterior.
    optimizer : {"adagrad_window", "adagrad", "adam"}
        PyMC's optimisers. ``"adagrad"`` (seed 001's choice at scale) anneals its steps;
        ``"adagrad_window"`` (PyMC's default) keeps them at ``learning_rate``.
    learning_rate : float
        Changing it does not recompile.
    tolerance : float or None
        Stop when the mean ELBO of the last 100 iterations differs from the 100 before by
        less than ``tolerance`` relative (Stan's ``tol_rel_obj``), and warn when that never
        happens. None runs all ``n_iter`` iterations; ``converged`` then reports whether the
        change at the end was below 0.01.
    random_seed : int or None
        Seeds the start of restarts after the first, q's Monte Carlo draws, the minibatch
        indices, and the draws from q. Same seed -> same numbers, cached or not.
    progressbar : bool
    draws : int
        Draws from q stored in the posterior (one chain).
    n_init : int
        Restarts; the first starts from data quantiles, the others from random data
        points. The restart with the best final ELBO is kept; ``extras["restarts"]``
        lists all of them.
    elbo_draws : int
        Monte Carlo draws for the final full-data ELBO and its standard error.
    reuse_compiled : bool
        Reuse the compiled objective of an earlier fit with the same spec, data shape,
        batch size and optimiser (swapping the data and resetting the state), instead of
        compiling again.

    Returns
    -------
    MixtureFit
        ``elbo`` in full-data nats; ``extras`` as in the module docs;
        ``timings.build`` is ~0 on a cache hit.
"""


def fit_advi(points: np.ndarray, spec: MixtureSpec, *, n_iter: int = 10_000,
             batch_size: int | None = None, optimizer: str = "adagrad_window",
             learning_rate: float = 0.05, tolerance: float | None = None,
             random_seed: int | None = None, progressbar: bool = True, draws: int = 1000,
             n_init: int = 1, elbo_draws: int = 500, reuse_compiled: bool = True) -> MixtureFit:
    opts = dict(locals())
    del opts["points"], opts["spec"]
    return _fit(points, spec, "advi", opts)


def fit_fullrank_advi(points: np.ndarray, spec: MixtureSpec, *, n_iter: int = 10_000,
                      batch_size: int | None = None, optimizer: str = "adagrad_window",
                      learning_rate: float = 0.05, tolerance: float | None = None,
                      random_seed: int | None = None, progressbar: bool = True,
                      draws: int = 1000, n_init: int = 1, elbo_draws: int = 500,
                      reuse_compiled: bool = True) -> MixtureFit:
    opts = dict(locals())
    del opts["points"], opts["spec"]
    return _fit(points, spec, "fullrank_advi", opts)


fit_advi.__doc__ = ("Mean-field ADVI: q(theta) = prod_i Normal(theta_i | mu_i, sd_i^2).\n"
                    + _DOC_OPTIONS)
fit_fullrank_advi.__doc__ = ("Full-rank ADVI: q(theta) = Normal(theta | mu, L L^T).\n"
                             + _DOC_OPTIONS)

_QUICK = {"n_iter": 3000, "draws": 200, "elbo_draws": 100}
# Seed 001's adagrad(0.1) for 1500 iterations finds the means but leaves q's sds 10x too
# wide at N = 1e5 (adagrad anneals before rho gets there); these reach both (docs/advi.md).
_LARGE = {"batch_size": 200, "n_iter": 10_000, "optimizer": "adagrad_window",
          "learning_rate": 0.01, "elbo_draws": 100}

ENGINES = (
    Engine(name="advi", fit=fit_advi, family="vi", scalable=True,
           summary="Mean-field ADVI (PyMC KLqp, compiled once and reused), minibatches at scale",
           quick_options=_QUICK, large_data_options=_LARGE),
    Engine(name="fullrank_advi", fit=fit_fullrank_advi, family="vi", scalable=True,
           summary="Full-rank ADVI: a correlated Gaussian q, minibatches at scale",
           quick_options=_QUICK, large_data_options=_LARGE),
)
