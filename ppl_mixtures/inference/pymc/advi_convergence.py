"""ADVI's convergence test and ELBO estimates (eqs. (1)-(2) of
:mod:`ppl_mixtures.inference.pymc.advi`).

The test (:func:`convergence_test`) looks at the averaging window of a run: how uncertain
the Polyak average of q's parameters is, whether it still drifts, and whether the ELBO of the
later half's average differs from the earlier half's. Its verdict is ``fit.converged``; what
it measured is ``fit.details.convergence``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ppl_mixtures.inference.pymc.advi_objective import BLOCK, CompiledObjective
from ppl_mixtures.inference.pymc.advi_schedule import BlockSums, window_mean
from ppl_mixtures.model.density import LOG_2PI

__all__ = [
    "DRIFT_Z",
    "ELBO_CHANGE_DRAWS",
    "ELBO_CHANGE_FLOOR",
    "ELBO_CHANGE_MAX_SE",
    "LAST_ITERATE_MAX",
    "MIN_BATCHES",
    "N_BATCHES",
    "PARAM_CHANGE_MAX",
    "PARAM_SE_MAX",
    "advice",
    "convergence_test",
    "elbo_difference",
    "final_elbo",
]

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


def final_elbo(
    objective: CompiledObjective,
    params: dict[str, np.ndarray],
    rng: np.random.Generator,
    n_draws: int,
) -> tuple[float, float]:
    """Eq. (1) on the full data: Monte Carlo E_q[log p(x, theta)] plus the exact H[q] (2).

    Parameters
    ----------
    params : dict
        q's ``mean`` (d,) and ``chol`` (d, d), as :meth:`CompiledObjective.params` gives them.
    n_draws : int
        Draws theta = mean + L eps, eps standard normal (d,), from ``rng``.

    Returns
    -------
    elbo, se : float
        The estimate in nats and its Monte Carlo standard error (of the mean of the
        ``n_draws`` values of log p(x, theta)).
    """
    eps = rng.standard_normal((n_draws, params["mean"].shape[0]))
    theta = params["mean"] + eps @ params["chol"].T
    log_joint = objective.log_joint(theta)
    entropy = np.sum(np.log(np.diag(params["chol"]))) + 0.5 * theta.shape[1] * (1.0 + LOG_2PI)
    return (float(log_joint.mean() + entropy), float(log_joint.std(ddof=1) / np.sqrt(n_draws)))


def elbo_difference(
    objective: CompiledObjective,
    early: dict[str, np.ndarray],
    late: dict[str, np.ndarray],
    rng: np.random.Generator,
    n_draws: int,
) -> tuple[float, float]:
    """ELBO(q_late) - ELBO(q_early) on the full data, with common random numbers.

    ``early`` and ``late`` are raw parameters. Both expectations use the same standard-normal
    draws eps (theta = mean + L eps), so the Monte Carlo noise that the two q's share cancels;
    the entropies (2) are exact. Returns the difference and its standard error (from the
    paired differences).
    """
    q1, q2 = objective.params(early), objective.params(late)
    eps = rng.standard_normal((n_draws, q1["mean"].shape[0]))
    paired = objective.log_joint(q2["mean"] + eps @ q2["chol"].T) - objective.log_joint(
        q1["mean"] + eps @ q1["chol"].T
    )
    entropy = np.sum(np.log(np.diag(q2["chol"]))) - np.sum(np.log(np.diag(q1["chol"])))
    return (float(paired.mean() + entropy), float(paired.std(ddof=1) / np.sqrt(n_draws)))


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


def convergence_test(
    objective: CompiledObjective,
    elbo: np.ndarray,
    block_sums: BlockSums,
    window_start: int,
    rng: np.random.Generator,
    n_draws: int = ELBO_CHANGE_DRAWS,
    last_iterate: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
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
      half's, with common random numbers (``n_draws`` draws, :func:`elbo_difference`),
      and its standard error ``elbo_change_se``. Passes when ``|elbo_change| <=
      max(ELBO_CHANGE_MAX_SE * elbo_change_se, ELBO_CHANGE_FLOOR)``.

    - ``last_iterate_offset`` (only when q is the last iterate, ``last_iterate`` given):
      its distance from the window's average; at most :data:`LAST_ITERATE_MAX` (a
      constant step leaves the iterates jittering around the optimum).

    A window of fewer than :data:`MIN_BATCHES` blocks cannot be tested and fails.

    Returns
    -------
    dict
        The measured values above, the limits, ``window`` ([first, stop) iterations),
        ``passed`` (bool) and ``reason`` (why it failed, in words; "" when it passed).
    """
    n_run = elbo.size
    first = window_start // BLOCK
    n_blocks = len(block_sums) - first
    out = {
        "window": [int(window_start), int(n_run)],
        "param_se_max": PARAM_SE_MAX,
        "param_change_max": PARAM_CHANGE_MAX,
        "drift_z": DRIFT_Z,
        "elbo_change_max_se": ELBO_CHANGE_MAX_SE,
        "elbo_change_floor": ELBO_CHANGE_FLOOR,
    }
    if n_blocks < MIN_BATCHES:
        return {
            **out,
            "param_se": np.inf,
            "param_change": np.inf,
            "param_change_where": "",
            "elbo_change": np.nan,
            "elbo_change_se": np.nan,
            "passed": False,
            "reason": f"the window holds {n_blocks} block(s) of {BLOCK} iterations; the "
            f"test needs at least {MIN_BATCHES}",
        }
    whole_raw = window_mean(block_sums, first, len(block_sums))
    whole = _coordinates(objective, whole_raw)
    middle = first + n_blocks // 2
    late_raw = window_mean(block_sums, middle, len(block_sums))
    late = _coordinates(objective, late_raw)
    n_batches = min(N_BATCHES, n_blocks)
    edges = first + np.round(np.linspace(0, n_blocks, n_batches + 1)).astype(int)
    batches = np.array(
        [
            _coordinates(objective, window_mean(block_sums, a, b))
            for a, b in itertools.pairwise(edges)
        ]
    )
    names, unit = _coordinate_labels(objective)
    sd = objective.params(whole_raw)["std"][unit]
    se = batches.std(axis=0, ddof=1) / np.sqrt(n_batches) / sd
    change = np.abs(whole - late) / sd
    allowed = np.maximum(PARAM_CHANGE_MAX, DRIFT_Z * se)
    worst = int(np.argmax(change / allowed))
    elbo_change, elbo_se = elbo_difference(
        objective, window_mean(block_sums, first, middle), late_raw, rng, n_draws
    )
    offset = (
        np.nan
        if last_iterate is None
        else float(np.max(np.abs(_coordinates(objective, last_iterate) - whole) / sd))
    )
    last_ok = last_iterate is None or offset <= LAST_ITERATE_MAX
    se_ok = bool(se.max() <= PARAM_SE_MAX)
    change_ok = bool(np.all(change <= allowed))
    elbo_ok = abs(elbo_change) <= max(ELBO_CHANGE_MAX_SE * elbo_se, ELBO_CHANGE_FLOOR)
    reasons = []
    if not se_ok:
        reasons.append(
            f"the averaged q is uncertain by {se.max():.2f} of its sd "
            f"({names[int(np.argmax(se))]}; limit {PARAM_SE_MAX})"
        )
    if not change_ok:
        reasons.append(
            f"the averaged q moved by {change[worst]:.2f} of its sd "
            f"({names[worst]}) when the older half of the window was dropped "
            f"(limit {allowed[worst]:.2f})"
        )
    if not last_ok:
        reasons.append(
            f"the last iterate (the returned q) sits {offset:.2f} of q's sd from "
            f"the average of the window (limit {LAST_ITERATE_MAX}): the steps "
            f"are too large to stop at"
        )
    if not elbo_ok:
        reasons.append(
            f"the ELBO of the averaged q changed by {elbo_change:+.3g} nats = "
            f"{abs(elbo_change) / elbo_se:.1f} standard errors (limit "
            f"{ELBO_CHANGE_MAX_SE:g}, or {ELBO_CHANGE_FLOOR:g} nats)"
        )
    return {
        **out,
        "param_se": float(se.max()),
        "param_se_where": names[int(np.argmax(se))],
        "param_change": float(change.max()),
        "param_change_where": names[int(np.argmax(change))],
        "param_change_allowed": float(allowed[int(np.argmax(change))]),
        "elbo_change": elbo_change,
        "elbo_change_se": elbo_se,
        "last_iterate_offset": offset,
        "passed": bool(se_ok and change_ok and elbo_ok and last_ok),
        "reason": "; ".join(reasons),
    }


def advice(
    test: dict[str, Any],
    *,
    n_iter: int,
    learning_rate: float,
    batch_size: int | None,
    schedule: str,
    average: float,
) -> str:
    """What to try after a failed convergence test (the end of the ConvergenceWarning)."""
    rising = np.isfinite(test["elbo_change"]) and test["elbo_change"] > max(
        ELBO_CHANGE_MAX_SE * np.nan_to_num(test["elbo_change_se"]), ELBO_CHANGE_FLOOR
    )
    rising = rising or test["param_change"] > test.get("param_change_allowed", 0.0)
    tips = [f"more iterations (n_iter={2 * n_iter})"]
    if rising or not np.isfinite(test["elbo_change"]):
        tips.append(f"a larger learning_rate (q is still improving; now {learning_rate:g})")
    else:
        tips.append(
            f"a smaller learning_rate (the averaged iterates are noisy; now {learning_rate:g})"
        )
    if batch_size is not None:
        tips.append(f"a larger batch_size (now {batch_size})")
    if schedule == "constant" or average == 0:
        tips.append("the defaults schedule='decay', average=None (step decay + iterate averaging)")
    return "Try " + ", or ".join(tips) + "."
