"""ADVI: automatic differentiation variational inference, mean-field and full-rank.

Engines ``"advi"`` (q = a Gaussian with diagonal covariance) and ``"fullrank_advi"``
(q = a Gaussian with full covariance) over the *unconstrained* parameters of the
marginal mixture model of :func:`ppl_mixtures.inference.pymc.models.build_marginal_model`: the means
as they are, the weights through the stick-breaking transform (or PyMC's simplex
transform, ``spec.weights_transform``), learned precisions through log. PyMC's ``KLqp``
objective is differentiated and compiled once per problem and reused (see
:mod:`ppl_mixtures.inference.pymc.advi_objective`); our loop runs it.

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
- ``extras["convergence"]``: the convergence test (:func:`convergence_test`) and what it
  measured; ``fit.converged`` is its verdict, and a failed test raises a
  ``ConvergenceWarning`` that says what to try.
- ``extras["learning_rates"]`` (n_iter,): the step size of every iteration
  (:func:`step_sizes`); ``extras["average_start"]``: the first averaged iteration.
- q's parameters (averaged when ``average > 0``): ``extras["unconstrained_mean"]`` (d,),
  ``extras["unconstrained_sd"]`` (d,), ``extras["unconstrained_chol"]`` (d, d) (the
  Cholesky factor L of q's covariance; diagonal for mean-field),
  ``extras["unconstrained_labels"]`` (d,), and ``extras["raw_params"]`` (PyMC's ``mu``
  and ``rho`` or ``L_tril``, averaged).

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

import itertools
import logging
import time
import warnings
from typing import Any

import numpy as np

from ppl_mixtures.inference.pymc.advi_objective import (
    BLOCK,
    OPTIMIZERS,
    CompiledObjective,
    cache_info,
    clear_cache,
    element_labels,
    get_objective,
)
from ppl_mixtures.inference.registry import Engine
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import ConvergenceWarning, MixtureFit, Timings, make_idata
from ppl_mixtures.validation import check_choice, check_int, check_positive, describe

__all__ = [
    "ENGINES",
    "approximation_tables",
    "cache_info",
    "clear_cache",
    "convergence_test",
    "describe_defaults",
    "fit_advi",
    "fit_fullrank_advi",
    "format_approximation",
    "resolve_n_iter",
    "simplex_backward",
    "step_sizes",
    "weights_backward",
]

logger = logging.getLogger(__name__)

#: ELBO window (iterations) of the early-stopping rule ``tolerance`` (schedule="constant").
CONVERGENCE_WINDOW = BLOCK
#: The relative ELBO change that counts as converged when ``tolerance`` is given.
DEFAULT_TOLERANCE = 0.01
#: Schedules of the step size (:func:`step_sizes`).
SCHEDULES = ("decay", "constant")
#: The convergence test (:func:`convergence_test`), all in units of q's own sd: the Monte
#: Carlo se of the Polyak average (batch means over up to N_BATCHES batches) at most ...
PARAM_SE_MAX = 0.2
N_BATCHES = 10
MIN_BATCHES = 4
#: ... and dropping the older half of the averaging window moves the average by at most
#: max(PARAM_CHANGE_MAX, DRIFT_Z x its se) per coordinate ...
PARAM_CHANGE_MAX = 0.1
DRIFT_Z = 4.0
#: ... and the full-data ELBO of the later half's averaged q differs from the earlier
#: half's by at most ELBO_CHANGE_MAX_SE standard errors or ELBO_CHANGE_FLOOR nats
#: (ELBO_CHANGE_DRAWS common random draws).
ELBO_CHANGE_MAX_SE = 3.0
ELBO_CHANGE_FLOOR = 0.25
ELBO_CHANGE_DRAWS = 20
#: Without averaging (q = the last iterate): its largest distance from the window's
#: average, in q's sds.
LAST_ITERATE_MAX = 0.25
#: Default iterations: full data, and minibatches (``AUTO_PASSES`` passes over the data).
AUTO_N_ITER = 10_000
AUTO_PASSES = 100
#: Point evaluations the default final ELBO may spend (:func:`auto_elbo_draws`).
ELBO_BUDGET = 10_000_000
#: Default base learning rate (of the warm phase).
LEARNING_RATE = 0.05
#: Default fraction of the run (its end) whose iterates are averaged, schedule="decay".
AVERAGE = 0.8
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
    transform, :func:`ppl_mixtures.model.transforms.stick_breaking_backward`) or ``"simplex"``
    (PyMC's, :func:`simplex_backward`). This is the seed's hand back-transform of the
    approximation's mean; read the docstring of :func:`approximation_tables` before using
    it as "the" weights of q.
    """
    from ppl_mixtures.model.transforms import stick_breaking_backward

    check_choice("transform", transform, ("stick_breaking", "simplex"))
    return stick_breaking_backward(y) if transform == "stick_breaking" else simplex_backward(y)


# --------------------------------------------------------------------------- option checks
def _check_options(points: np.ndarray, opts: dict[str, Any]) -> dict[str, Any]:
    n_samples = points.shape[0]
    out = dict(opts)
    if opts["n_iter"] is not None:
        out["n_iter"] = check_int("n_iter", opts["n_iter"], minimum=1,
                                  hint="Use e.g. n_iter=10000, or None for the default")
    if opts["batch_size"] is not None:
        out["batch_size"] = check_int(
            "batch_size", opts["batch_size"], minimum=1, maximum=n_samples,
            hint=f"Use a batch of at most n_samples={n_samples}, or batch_size=None")
    check_choice("optimizer", opts["optimizer"], OPTIMIZERS)
    out["learning_rate"] = check_positive("learning_rate", opts["learning_rate"],
                                          hint="Use e.g. learning_rate=0.05")
    check_choice("schedule", opts["schedule"], SCHEDULES)
    out["warmup"] = _check_unit("warmup", opts["warmup"], "0.2", closed=False)
    out["decay_scale"] = check_positive("decay_scale", opts["decay_scale"],
                                        hint="Use e.g. decay_scale=0.05 (tau = 5% of n_iter)")
    out["decay_power"] = check_positive("decay_power", opts["decay_power"],
                                        hint="Use e.g. decay_power=0.6")
    if not 0.5 < out["decay_power"] <= 1.0:
        raise ValueError(f"decay_power: expected a number in (0.5, 1] (Robbins-Monro: the "
                         f"rates must sum to infinity and their squares must not), got "
                         f"{out['decay_power']!r}. Use e.g. decay_power=0.6.")
    if opts["average"] is None:
        out["average"] = AVERAGE if opts["schedule"] == "decay" else 0.0
    else:
        out["average"] = _check_unit("average", opts["average"], "0.5", closed=True)
    if opts["tolerance"] is not None:
        out["tolerance"] = check_positive("tolerance", opts["tolerance"],
                                          hint="Use e.g. tolerance=0.001, or None")
        if opts["schedule"] != "constant" or out["average"] > 0:
            raise ValueError(
                f"tolerance: early stopping on the relative ELBO change works only with "
                f"schedule='constant' and average=0 (the decay schedule and the averaging "
                f"window are laid out over all n_iter iterations), got tolerance="
                f"{out['tolerance']!r} with schedule={opts['schedule']!r}, average="
                f"{out['average']!r}. Pass tolerance=None (the convergence test runs anyway), "
                f"or schedule='constant', average=0.")
    if opts["random_seed"] is not None:
        out["random_seed"] = check_int("random_seed", opts["random_seed"], minimum=0,
                                       hint="Pass a non-negative integer such as 1, or None")
    for name in ("progressbar", "reuse_compiled"):
        if not isinstance(opts[name], bool | np.bool_):
            raise TypeError(f"{name}: expected True or False, got {describe(opts[name])}. "
                            f"Pass {name}=True or {name}=False.")
    out["draws"] = check_int("draws", opts["draws"], minimum=1, hint="Use e.g. draws=1000")
    out["n_init"] = check_int("n_init", opts["n_init"], minimum=1, hint="Use e.g. n_init=4")
    if opts["elbo_draws"] is None:
        out["elbo_draws"] = auto_elbo_draws(n_samples)
    else:
        out["elbo_draws"] = check_int("elbo_draws", opts["elbo_draws"], minimum=2,
                                      hint="Use e.g. elbo_draws=500 (at least 2 for a "
                                           "standard error), or None for the default")
    return out


def _check_unit(name: str, value: Any, example: str, *, closed: bool) -> float:
    """A number in [0, 1) (``closed=False``) or [0, 1] (``closed=True``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name}: expected a number in [0, 1{']' if closed else ')'}, got "
                        f"{describe(value)}. Use e.g. {name}={example}.")
    value = float(value)
    if not (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0):
        raise ValueError(f"{name}: expected a number in [0, 1{']' if closed else ')'}, got "
                         f"{value!r}. Use e.g. {name}={example}.")
    return value


def _restart_seeds(random_seed: int | None, n_init: int) -> list[int]:
    """One 31-bit seed per restart, reproducible from ``random_seed``."""
    children = np.random.SeedSequence(random_seed).spawn(n_init)
    return [int(child.generate_state(1)[0] >> 1) for child in children]


# --------------------------------------------------------------------------- the schedule
def step_sizes(n_iter: int, learning_rate: float, schedule: str = "decay", *,
               warmup: float = 0.1, decay_scale: float = 0.05,
               decay_power: float = 0.6) -> np.ndarray:
    """The learning rate of every iteration, shape (n_iter,).

    ``schedule="decay"``: the base rate for the first ``t0 = round(warmup * n_iter)``
    iterations (the warm phase), then Robbins-Monro decay::

        rate_t = learning_rate / (1 + (t - t0) / tau) ** kappa,   t >= t0,              (4)

    with ``tau = max(1, decay_scale * n_iter)`` and ``kappa = decay_power`` in (0.5, 1], so
    that sum(rate) diverges while sum(rate^2) converges. ``schedule="constant"``: the base
    rate throughout (PyMC's behaviour).
    """
    rates = np.full(n_iter, float(learning_rate))
    if schedule == "constant":
        return rates
    t0 = round(warmup * n_iter)
    tau = max(1.0, decay_scale * n_iter)
    t = np.arange(t0, n_iter, dtype=np.float64)
    rates[t0:] = learning_rate / (1.0 + (t - t0) / tau) ** decay_power
    return rates


def auto_elbo_draws(n_samples: int) -> int:
    """The default ``elbo_draws``: 500, fewer on large data so that the final ELBO costs at
    most ~:data:`ELBO_BUDGET` point evaluations (each draw is a full-data log p), never
    fewer than 100. On seed 001's 100,000 points: 100 draws, a standard error of ~0.2
    nats."""
    return int(min(500, max(100, ELBO_BUDGET // max(n_samples, 1))))


def resolve_n_iter(n_iter: int | None, n_samples: int, batch_size: int | None) -> int:
    """``n_iter``, or the default when None: :data:`AUTO_N_ITER` on full data, and with
    minibatches enough iterations to see the data :data:`AUTO_PASSES` times
    (``ceil(AUTO_PASSES * N / B)``, at least :data:`AUTO_N_ITER`).

    Why passes: averaged minibatch SGD settles within about ``sqrt(N / (M B))`` of q's sd
    of the optimum after averaging M iterates of B points (the average behaves like an
    estimate from the M B points it has seen); 100 passes with half of them averaged put
    that at 0.14 sd.
    """
    if n_iter is not None:
        return n_iter
    if batch_size is None or batch_size >= n_samples:
        return AUTO_N_ITER
    return max(AUTO_N_ITER, int(np.ceil(AUTO_PASSES * n_samples / batch_size)))


def averaging_start(n_iter: int, average: float) -> int:
    """First iteration of the averaging window: the last ``average`` fraction of the run,
    rounded to whole blocks of :data:`BLOCK` iterations (at least one block); ``n_iter``
    when ``average`` is 0 (no averaging: the last iterate)."""
    if average <= 0:
        return n_iter
    n_blocks = -(-n_iter // BLOCK)
    n_avg = min(n_blocks, max(1, round(average * n_blocks)))
    return (n_blocks - n_avg) * BLOCK


# --------------------------------------------------------------------------- the loop
def _relative_change(trace: np.ndarray, stop: int, window: int) -> float:
    """|mean ELBO of the last window - the window before| / |mean of the last window|."""
    if stop < 2 * window:
        return np.inf
    last = trace[stop - window:stop].mean()
    before = trace[stop - 2 * window:stop - window].mean()
    return float(abs(last - before) / max(abs(last), 1e-12))


def _optimize(objective: CompiledObjective, n_iter: int, tolerance: float | None,
              learning_rate: float, progressbar: bool,
              ) -> tuple[np.ndarray, list[tuple[int, dict[str, np.ndarray]]]]:
    """Run the compiled step ``n_iter`` times (or until ``tolerance`` stops it).

    Returns
    -------
    elbo : ndarray of shape (n_run,)
        The single-draw ELBO of each iteration, full-data nats.
    block_sums : list of (count, dict)
        Per block of :data:`BLOCK` iterations (the last may be shorter): how many
        iterations and the sum of their iterates, by raw parameter name.
    """
    from rich.progress import Progress

    window = CONVERGENCE_WINDOW
    elbo = np.empty(n_iter)
    block_sums = []
    n_run = n_iter
    with Progress(disable=not progressbar) as progress:
        task = progress.add_task("ADVI", total=n_iter)
        for start in range(0, n_iter, window):
            stop = min(start + window, n_iter)
            block_sums.append((stop - start, objective.run(stop - start, elbo[start:stop])))
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
            if (tolerance is not None and stop % window == 0
                    and _relative_change(elbo, stop, window) < tolerance):
                n_run = stop
                break
    return elbo[:n_run], block_sums


def _window_mean(block_sums, first_block: int, last_block: int) -> dict[str, np.ndarray]:
    """Mean of the iterates of blocks ``first_block .. last_block - 1``, by raw name."""
    blocks = block_sums[first_block:last_block]
    count = sum(c for c, _ in blocks)
    return {name: sum(s[name] for _, s in blocks) / count for name in blocks[0][1]}


def _coordinates(objective: CompiledObjective, raw: dict[str, np.ndarray]) -> np.ndarray:
    """q's parameters as one flat vector, each entry in units of the coordinate's own scale
    *before* dividing: the means, then the sds (mean-field) or the rows of the Cholesky
    factor L (full rank). Shape (ndim * 2,) or (ndim + ndim^2,)."""
    q = objective.params(raw)
    second = q["std"] if objective.method == "advi" else q["chol"].ravel()
    return np.concatenate([q["mean"], second])


def _coordinate_labels(objective: CompiledObjective) -> tuple[list[str], np.ndarray]:
    """Labels of :func:`_coordinates`, and the index of the unconstrained coordinate whose
    sd is the unit of each entry."""
    labels, n = objective.labels, objective.ndim
    names = [f"mean of {lab}" for lab in labels]
    unit = list(range(n))
    if objective.method == "advi":
        names += [f"sd of {lab}" for lab in labels]
        unit += list(range(n))
    else:
        names += [f"L[{i},{j}] ({labels[i]})" for i in range(n) for j in range(n)]
        unit += [i for i in range(n) for _ in range(n)]
    return names, np.asarray(unit)


def _elbo_difference(objective: CompiledObjective, early: dict, late: dict,
                     rng: np.random.Generator, n_draws: int) -> tuple[float, float]:
    """ELBO(q_late) - ELBO(q_early) on the full data, with common random numbers.

    Both expectations use the same standard-normal draws eps (theta = mean + L eps), so the
    Monte Carlo noise that the two q's share cancels; the entropies (2) are exact.
    Returns the difference and its standard error (from the paired differences).
    """
    q1, q2 = objective.params(early), objective.params(late)
    eps = rng.standard_normal((n_draws, q1["mean"].shape[0]))
    paired = (objective.log_joint(q2["mean"] + eps @ q2["chol"].T)
              - objective.log_joint(q1["mean"] + eps @ q1["chol"].T))
    entropy = np.sum(np.log(np.diag(q2["chol"]))) - np.sum(np.log(np.diag(q1["chol"])))
    return (float(paired.mean() + entropy), float(paired.std(ddof=1) / np.sqrt(n_draws)))


def convergence_test(objective: CompiledObjective, elbo: np.ndarray, block_sums: list,
                     window_start: int, rng: np.random.Generator,
                     n_draws: int = ELBO_CHANGE_DRAWS,
                     last_iterate: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The convergence test of a run, over the window of iterations ``window_start:``.

    All parameter quantities are in units of q's own sd (coordinate by coordinate; for
    full rank, row i of the Cholesky factor L in units of the sd of coordinate i), over
    q's means and sds (mean-field) or means and L (full rank):

    - ``param_se``: the Monte Carlo standard error of the Polyak average over the window,
      by batch means (the window split into up to :data:`N_BATCHES` batches of whole
      blocks); max over coordinates. Passes when <= :data:`PARAM_SE_MAX`;
    - ``param_change``: how much the average moves when the older half of the window is
      dropped (half the difference between the halves' averages). Each coordinate passes
      when its change is <= max(:data:`PARAM_CHANGE_MAX`, :data:`DRIFT_Z` x its se): a
      drift the noise cannot explain, and large enough to matter, fails;
    - ``elbo_change``: the full-data ELBO of the later half's averaged q minus the earlier
      half's, with common random numbers (``n_draws`` draws, :func:`_elbo_difference`),
      and its standard error ``elbo_change_se``. Passes when ``|elbo_change| <=
      max(ELBO_CHANGE_MAX_SE * elbo_change_se, ELBO_CHANGE_FLOOR)``.

    - ``last_iterate_offset`` (only when q is the last iterate, ``last_iterate`` given):
      its distance from the window's average; at most :data:`LAST_ITERATE_MAX` (a
      constant step leaves the iterates jittering around the optimum).

    A window of fewer than :data:`MIN_BATCHES` blocks cannot be tested and fails.
    """
    n_run = elbo.size
    first = window_start // BLOCK
    n_blocks = len(block_sums) - first
    out = {"window": [int(window_start), int(n_run)], "param_se_max": PARAM_SE_MAX,
           "param_change_max": PARAM_CHANGE_MAX, "drift_z": DRIFT_Z,
           "elbo_change_max_se": ELBO_CHANGE_MAX_SE, "elbo_change_floor": ELBO_CHANGE_FLOOR}
    if n_blocks < MIN_BATCHES:
        return {**out, "param_se": np.inf, "param_change": np.inf, "param_change_where": "",
                "elbo_change": np.nan, "elbo_change_se": np.nan, "passed": False,
                "reason": f"the window holds {n_blocks} block(s) of {BLOCK} iterations; the "
                          f"test needs at least {MIN_BATCHES}"}
    whole_raw = _window_mean(block_sums, first, len(block_sums))
    whole = _coordinates(objective, whole_raw)
    middle = first + n_blocks // 2
    late_raw = _window_mean(block_sums, middle, len(block_sums))
    late = _coordinates(objective, late_raw)
    n_batches = min(N_BATCHES, n_blocks)
    edges = first + np.round(np.linspace(0, n_blocks, n_batches + 1)).astype(int)
    batches = np.array([_coordinates(objective, _window_mean(block_sums, a, b))
                        for a, b in itertools.pairwise(edges)])
    names, unit = _coordinate_labels(objective)
    sd = objective.params(whole_raw)["std"][unit]
    se = batches.std(axis=0, ddof=1) / np.sqrt(n_batches) / sd
    change = np.abs(whole - late) / sd
    allowed = np.maximum(PARAM_CHANGE_MAX, DRIFT_Z * se)
    worst = int(np.argmax(change / allowed))
    elbo_change, elbo_se = _elbo_difference(
        objective, _window_mean(block_sums, first, middle), late_raw, rng, n_draws)
    offset = (np.nan if last_iterate is None else
              float(np.max(np.abs(_coordinates(objective, last_iterate) - whole) / sd)))
    last_ok = last_iterate is None or offset <= LAST_ITERATE_MAX
    se_ok = bool(se.max() <= PARAM_SE_MAX)
    change_ok = bool(np.all(change <= allowed))
    elbo_ok = abs(elbo_change) <= max(ELBO_CHANGE_MAX_SE * elbo_se, ELBO_CHANGE_FLOOR)
    reasons = []
    if not se_ok:
        reasons.append(f"the averaged q is uncertain by {se.max():.2f} of its sd "
                       f"({names[int(np.argmax(se))]}; limit {PARAM_SE_MAX})")
    if not change_ok:
        reasons.append(f"the averaged q moved by {change[worst]:.2f} of its sd "
                       f"({names[worst]}) when the older half of the window was dropped "
                       f"(limit {allowed[worst]:.2f})")
    if not last_ok:
        reasons.append(f"the last iterate (the returned q) sits {offset:.2f} of q's sd from "
                       f"the average of the window (limit {LAST_ITERATE_MAX}): the steps "
                       f"are too large to stop at")
    if not elbo_ok:
        reasons.append(f"the ELBO of the averaged q changed by {elbo_change:+.3g} nats = "
                       f"{abs(elbo_change) / elbo_se:.1f} standard errors (limit "
                       f"{ELBO_CHANGE_MAX_SE:g}, or {ELBO_CHANGE_FLOOR:g} nats)")
    return {**out, "param_se": float(se.max()),
            "param_se_where": names[int(np.argmax(se))],
            "param_change": float(change.max()),
            "param_change_where": names[int(np.argmax(change))],
            "param_change_allowed": float(allowed[int(np.argmax(change))]),
            "elbo_change": elbo_change, "elbo_change_se": elbo_se,
            "last_iterate_offset": offset,
            "passed": bool(se_ok and change_ok and elbo_ok and last_ok),
            "reason": "; ".join(reasons)}


def _advice(test: dict[str, Any], opts: dict[str, Any]) -> str:
    """What to try after a failed convergence test."""
    rising = np.isfinite(test["elbo_change"]) and test["elbo_change"] > max(
        ELBO_CHANGE_MAX_SE * np.nan_to_num(test["elbo_change_se"]), ELBO_CHANGE_FLOOR)
    rising = rising or test["param_change"] > test.get("param_change_allowed", 0.0)
    tips = [f"more iterations (n_iter={2 * opts['n_iter']})"]
    if rising or not np.isfinite(test["elbo_change"]):
        tips.append(f"a larger learning_rate (q is still improving; now "
                    f"{opts['learning_rate']:g})")
    else:
        tips.append(f"a smaller learning_rate (the averaged iterates are noisy; now "
                    f"{opts['learning_rate']:g})")
    if opts["batch_size"] is not None:
        tips.append(f"a larger batch_size (now {opts['batch_size']})")
    if opts["schedule"] == "constant" or opts["average"] == 0:
        tips.append("the defaults schedule='decay', average=None (step decay + iterate "
                    "averaging)")
    return "Try " + ", or ".join(tips) + "."


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
def _run_restart(objective: CompiledObjective, points: np.ndarray, spec: MixtureSpec,
                 opts: dict[str, Any], seed: int, index: int) -> dict[str, Any]:
    """One optimisation from one start: the averaged q, its ELBO and the convergence test."""
    from ppl_mixtures.inference.pymc.models import initial_point

    start = initial_point(spec, points, random_seed=None if index == 0 else seed)
    rates = step_sizes(opts["n_iter"], opts["learning_rate"], opts["schedule"],
                       warmup=opts["warmup"], decay_scale=opts["decay_scale"],
                       decay_power=opts["decay_power"])
    objective.reset(points, objective.unconstrain(start), rates, seed)
    loop_start = time.perf_counter()
    elbo, block_sums = _optimize(objective, opts["n_iter"], opts["tolerance"],
                                 opts["learning_rate"], opts["progressbar"])
    seconds = time.perf_counter() - loop_start
    n_run = elbo.size
    avg_start = averaging_start(n_run, opts["average"])
    if avg_start < n_run:
        raw = _window_mean(block_sums, avg_start // BLOCK, len(block_sums))
    else:
        raw = objective.raw_params()
    # the test's window: the averaging window, or the last half when there is none
    test_start = avg_start if avg_start < n_run else averaging_start(n_run, 0.5)
    test = convergence_test(objective, elbo, block_sums, test_start,
                            np.random.default_rng((seed, 3)),
                            last_iterate=None if avg_start < n_run else raw)
    if opts["tolerance"] is not None:  # the old rule: also stopped (or not) on the ELBO
        test["relative_change"] = _relative_change(elbo, n_run - n_run % CONVERGENCE_WINDOW,
                                                   CONVERGENCE_WINDOW)
    params = objective.params(raw)
    rng = np.random.default_rng((seed, 2))  # the optimiser's stream is (seed, 1)
    elbo_final, elbo_se = _final_elbo(objective, params, rng, opts["elbo_draws"])
    return {"random_seed": seed, "elbo_final": elbo_final, "elbo_final_se": elbo_se,
            "n_iter": int(n_run), "converged": test["passed"], "convergence": test,
            "average_start": int(avg_start), "seconds": seconds, "_elbo": elbo,
            "_params": params, "_raw": raw, "_rng": rng, "_rates": rates[:n_run]}


def _fit(points: np.ndarray, spec: MixtureSpec, method: str, opts: dict[str, Any]) -> MixtureFit:
    opts = _check_options(points, opts)
    opts["n_iter"] = resolve_n_iter(opts["n_iter"], points.shape[0], opts["batch_size"])
    with _timer() as build:
        objective, cache_hit = get_objective(points, spec, method, opts["batch_size"],
                                             opts["optimizer"], use_cache=opts["reuse_compiled"])
    run_start = time.perf_counter()
    seeds = _restart_seeds(opts["random_seed"], opts["n_init"])
    runs = [_run_restart(objective, points, spec, opts, seed, index)
            for index, seed in enumerate(seeds)]
    best_index = int(np.argmax([r["elbo_final"] for r in runs]))
    best = runs[best_index]
    params, rng = best["_params"], best["_rng"]
    eps = rng.standard_normal((opts["draws"], params["mean"].shape[0]))
    draws = objective.constrain(params["mean"] + eps @ params["chol"].T)
    tables = approximation_tables(objective, params, draws)
    idata = make_idata(draws["means"][None], draws["weights"][None], points,
                       obs_sd=draws["obs_sd"][None] if "obs_sd" in draws else None,
                       attrs={"engine": method, "inference_library": "pymc"})
    run_seconds = time.perf_counter() - run_start
    test = best["convergence"]
    if not test["passed"]:
        warnings.warn(f"{method}: not converged after {best['n_iter']} iterations: "
                      f"{test['reason']}. {_advice(test, opts)}",
                      ConvergenceWarning, stacklevel=3)
    optimize_seconds = sum(r["seconds"] for r in runs)
    iterations = sum(r["n_iter"] for r in runs)
    restarts = [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs]
    extras = {"elbo_final": best["elbo_final"], "elbo_final_se": best["elbo_final_se"],
              "convergence": test, "restarts": restarts, "best_restart": best_index,
              "learning_rates": best["_rates"], "average_start": best["average_start"],
              "averaged_iterations": best["n_iter"] - best["average_start"],
              "cache_hit": cache_hit, "compile_seconds": objective.build_seconds,
              "optimize_seconds": optimize_seconds,
              "iterations_per_second": iterations / max(optimize_seconds, 1e-12), **tables,
              "unconstrained_mean": params["mean"], "unconstrained_sd": params["std"],
              "unconstrained_chol": params["chol"],
              "unconstrained_labels": list(objective.labels),
              "raw_params": {k: np.array(v) for k, v in best["_raw"].items()}}
    return MixtureFit(engine=method, spec=spec, idata=idata,
                      timings=Timings(build=build.seconds, run=run_seconds), elbo=best["_elbo"],
                      converged=bool(test["passed"]), n_iter=best["n_iter"], extras=extras,
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
    n_iter : int or None
        Optimiser iterations (per restart). None: 10,000 on full data; with minibatches
        enough to pass over the data 100 times, ``max(10000, ceil(100 N / B))`` (50,000
        for N = 100,000, B = 200), because the averaged minibatch iterates settle within
        about ``sqrt(N / (M B))`` of q's sd after averaging M of them.
    batch_size : int or None
        Minibatch size; None uses all the data in every step. The likelihood of a batch is
        scaled by N/B (``total_size``), eq. (3), so q targets the full-data posterior.
    optimizer : {"adagrad_window", "adagrad", "adam"}
        PyMC's optimisers, run at the rate of :func:`step_sizes`. ``"adagrad"`` (seed
        001's choice at scale) also anneals its steps by itself.
    learning_rate : float
        The base rate (of the warm phase). Changing it does not recompile.
    schedule : {"decay", "constant"}
        ``"decay"``: the base rate for the first ``warmup`` fraction of the iterations,
        then Robbins-Monro decay, eq. (4), with ``tau = decay_scale * n_iter`` and
        ``kappa = decay_power``. ``"constant"``: the base rate throughout.
    warmup : float in [0, 1)
    decay_scale : float > 0
    decay_power : float in (0.5, 1]
    average : float in [0, 1] or None
        Fraction of the run (its end, whole blocks of 100 iterations) whose iterates are
        averaged into the returned q (Polyak-Ruppert); 0 returns the last iterate. None:
        0.8 with ``schedule="decay"``, 0 with ``"constant"``.
    tolerance : float or None
        Only with ``schedule="constant", average=0``: stop when the mean ELBO of the last
        100 iterations differs from the 100 before by less than ``tolerance`` relative
        (Stan's ``tol_rel_obj``). The convergence test runs in every case.
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
    elbo_draws : int or None
        Monte Carlo draws for the final full-data ELBO and its standard error. None: 500,
        fewer on large data (``min(500, max(100, 1e7 / N))``; 100 at N = 100,000).
    reuse_compiled : bool
        Reuse the compiled objective of an earlier fit with the same spec, data shape,
        batch size and optimiser (swapping the data and resetting the state), instead of
        compiling again.

    Returns
    -------
    MixtureFit
        ``elbo`` in full-data nats (the single-draw trace of the iterates); ``converged``
        from :func:`convergence_test` (a ``ConvergenceWarning`` when it fails); ``extras``
        as in the module docs; ``timings.build`` is ~0 on a cache hit.
"""


def _engine_fit(method: str, name: str, summary: str):
    """The public fit function of ``method``: one keyword signature for both families.

    ``inspect.signature`` of the result lists the same keyword-only options as a plain
    ``def`` (the CLI and ``validation.check_engine_options`` read them from it), and its
    name is the module attribute it is bound to (so it pickles by reference).
    """
    def fit(points: np.ndarray, spec: MixtureSpec, *, n_iter: int | None = None,
            batch_size: int | None = None, optimizer: str = "adagrad_window",
            learning_rate: float = LEARNING_RATE, schedule: str = "decay",
            warmup: float = 0.1, decay_scale: float = 0.05, decay_power: float = 0.6,
            average: float | None = None, tolerance: float | None = None,
            random_seed: int | None = None, progressbar: bool = True,
            draws: int = 1000, n_init: int = 1, elbo_draws: int | None = None,
            reuse_compiled: bool = True) -> MixtureFit:
        opts = dict(locals())  # the options, plus ``method`` (a closure variable)
        del opts["points"], opts["spec"], opts["method"]
        return _fit(points, spec, method, opts)

    fit.__name__ = fit.__qualname__ = name
    fit.__doc__ = summary + "\n" + _DOC_OPTIONS
    return fit


fit_advi = _engine_fit(
    "advi", "fit_advi", "Mean-field ADVI: q(theta) = prod_i Normal(theta_i | mu_i, sd_i^2).")
fit_fullrank_advi = _engine_fit(
    "fullrank_advi", "fit_fullrank_advi",
    "Full-rank ADVI: q(theta) = Normal(theta | mu, L L^T).")

_QUICK = {"n_iter": 3000, "draws": 200, "elbo_draws": 100}
# At scale only the batch changes: the default schedule (warm phase, Robbins-Monro decay,
# Polyak averaging) and n_iter (100 passes over the data) converge on seed 001's 100,000
# points (reports/benchmarks/advi.md); constant steps leave the means several posterior
# sds off.
_LARGE = {"batch_size": 200}


def describe_defaults() -> str:
    """The default optimisation settings, in words (for reports and benchmarks)."""
    return (f"adagrad_window({LEARNING_RATE}), schedule 'decay': the base rate for the "
            f"first 10% of the iterations, then rate / (1 + (t - t0) / tau)^0.6 with tau = 5% "
            f"of n_iter; the last {AVERAGE:.0%} of the iterates averaged (Polyak-Ruppert); "
            f"n_iter {AUTO_N_ITER:,} on full data, {AUTO_PASSES} passes over the data "
            f"(ceil({AUTO_PASSES} N / B), at least {AUTO_N_ITER:,}) with minibatches; "
            f"elbo_draws min(500, max(100, {ELBO_BUDGET:.0e} / N))")


ENGINES = (
    Engine(name="advi", fit=fit_advi, family="vi", scalable=True,
           summary="Mean-field ADVI (PyMC KLqp, compiled once and reused), minibatches at scale",
           quick_options=_QUICK, large_data_options=_LARGE),
    Engine(name="fullrank_advi", fit=fit_fullrank_advi, family="vi", scalable=True,
           summary="Full-rank ADVI: a correlated Gaussian q, minibatches at scale",
           quick_options=_QUICK, large_data_options=_LARGE),
)
