"""Merge moves for CAVI with truncated Dirichlet-process weights (``weights="dp"``).

Why: k-means++ starts T centres, so on large data every true cluster begins split among
several components; mean-field coordinate ascent then merges overlapping components only at
a crawl (a local optimum of the ELBO that scikit-learn's BayesianGaussianMixture shares).
The remedy (Ueda et al. 2000, "SMEM"; Bryant & Sudderth 2012; Hughes & Sudderth 2013,
"Memoized online variational inference for Dirichlet process mixture models", §4) is a
*merge move*:

1. rank pairs (a, b) of occupied components (E[N_k] >= 1) by how close their means are in
   units of their spreads, ``d_ab = sum_d (x̄_ad - x̄_bd)^2 / (S_ad + S_bd)`` (the diagonal
   of S for full covariances), closest first;
2. merge the pair's sufficient statistics (exact for the hard union of their points'
   responsibilities): N = N_a + N_b, x̄ = (N_a x̄_a + N_b x̄_b) / N,
   S = (N_a (S_a + (x̄_a - x̄)^2) + N_b (S_b + (x̄_b - x̄)^2)) / N (outer products for
   full covariances); the merged component takes the lower index, the freed one gets zero
   counts (its prior factor), and components are then relabelled by decreasing count
   (``sticks.size_biased``), the order under which the stick-breaking prior expects them;
3. set the global factors from those statistics (the family's ``update_globals``, twice so
   q(mu) sees the merged q(tau)), run one full CAVI sweep from them, and ACCEPT only if the
   ELBO of the result is higher than the current one.

Every accepted value is the ELBO of a complete sweep, so the trace stays a trace of valid
ELBOs and stays monotone; rejected proposals cost one pass each and leave no trace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ppl_mixtures.inference.conjugate import sticks
from ppl_mixtures.model.spec import MixtureSpec

__all__ = ["MergeRecord", "candidate_pairs", "iterate_with_merges", "merged_stats"]

#: A sweep: global factors -> (new global factors, ELBO, the pass's statistics).
Sweep = Callable[[Any], tuple[Any, float, Any]]


class MergeRecord(NamedTuple):
    """Merge moves of one run: proposals tried (one pass each) and accepted."""

    proposed: int
    accepted: int


def candidate_pairs(stats: Any, *, min_count: float = 1.0) -> list[tuple[int, int]]:
    """Pairs (a, b), a < b, of components with N >= ``min_count``, closest means first.

    The distance is ``sum_d (x̄_a - x̄_b)^2 / (S_a + S_b)`` per feature (diagonal of S for
    full covariances), a squared separation in units of the pair's spreads.
    """
    counts = np.asarray(stats.counts)
    occupied = np.flatnonzero(counts >= min_count)
    scatter = np.asarray(stats.scatter)
    spread = np.diagonal(scatter, axis1=1, axis2=2) if scatter.ndim == 3 else scatter
    spread = np.maximum(spread, 1e-12 * (1.0 + np.max(np.abs(spread))))
    pairs = []
    for i, a in enumerate(occupied):
        for b in occupied[i + 1 :]:
            dist = float(np.sum((stats.means[a] - stats.means[b]) ** 2 / (spread[a] + spread[b])))
            pairs.append((dist, int(a), int(b)))
    pairs.sort()
    return [(a, b) for _, a, b in pairs]


def merged_stats(stats: Any, a: int, b: int, spec: MixtureSpec) -> Any:
    """The statistics with components a and b merged into min(a, b), the other emptied,
    then relabelled by decreasing count (``sticks.size_biased``, dp only)."""
    low, high = min(a, b), max(a, b)
    counts = np.array(stats.counts, dtype=np.float64)
    means = np.array(stats.means, dtype=np.float64)
    scatter = np.array(stats.scatter, dtype=np.float64)
    n_low, n_high = counts[low], counts[high]
    total = n_low + n_high
    mean = (n_low * means[low] + n_high * means[high]) / total
    dev_low, dev_high = means[low] - mean, means[high] - mean
    if scatter.ndim == 3:
        between_low, between_high = np.outer(dev_low, dev_low), np.outer(dev_high, dev_high)
    else:
        between_low, between_high = dev_low**2, dev_high**2
    scatter[low] = (
        n_low * (scatter[low] + between_low) + n_high * (scatter[high] + between_high)
    ) / total
    counts[low], means[low] = total, mean
    counts[high], means[high], scatter[high] = 0.0, 0.0, 0.0
    merged = dataclasses.replace(stats, counts=counts, means=means, scatter=scatter)
    return sticks.size_biased(merged, spec)


def _merge_round(
    sweep: Sweep,
    start: Callable[[Any], Any],
    stats: Any,
    elbo: float,
    spec: MixtureSpec,
    max_proposals: int,
) -> tuple[list[tuple[Any, float, Any]], int]:
    """Up to ``max_proposals`` proposals, re-ranked after each accepted merge.

    Returns the accepted states (params, elbo, stats) in order and the proposals tried.
    """
    accepted: list[tuple[Any, float, Any]] = []
    tried = 0
    rejected: set[tuple[tuple[float, ...], tuple[float, ...]]] = set()
    while tried < max_proposals:
        pairs = [
            (a, b)
            for a, b in candidate_pairs(stats)
            if (tuple(stats.means[a]), tuple(stats.means[b])) not in rejected
        ]
        if not pairs:
            break
        a, b = pairs[0]
        tried += 1
        params, value, new_stats = sweep(start(merged_stats(stats, a, b, spec)))
        if np.isfinite(value) and value > elbo:
            accepted.append((params, value, new_stats))
            stats, elbo = new_stats, value
            rejected.clear()
        else:
            rejected.add((tuple(stats.means[a]), tuple(stats.means[b])))
    return accepted, tried


def iterate_with_merges(
    sweep: Sweep,
    start: Callable[[Any], Any],
    params: Any,
    spec: MixtureSpec,
    *,
    max_iter: int,
    converged_when: Callable[[list[float]], bool],
    report: Callable[[float], None],
    stall_tol: float = 1e-5,
    every: int = 10,
    max_proposals: int = 3,
) -> tuple[Any, np.ndarray, bool, MergeRecord]:
    """CAVI sweeps with merge rounds; the trace holds every sweep's ELBO (accepted merges
    included), at most ``max_iter`` of them.

    A merge round runs when the relative ELBO change drops below ``stall_tol`` and at least
    ``every`` sweeps have passed since the last round, and always before convergence is
    declared: a run converges only when its convergence test passed and a round right there
    accepted nothing.

    Parameters
    ----------
    sweep : callable
        params -> (params, elbo, stats): one full CAVI sweep.
    start : callable
        stats -> params: the global factors set from (merged) statistics.
    params : object
        The starting global factors.
    spec : MixtureSpec
    max_iter, converged_when, report
        As ``driver.iterate``.

    Returns
    -------
    (params, trace, converged, MergeRecord)
    """
    trace: list[float] = []
    stats: Any = None
    last_round = 0
    proposed = accepted_total = 0
    while len(trace) < max_iter:
        params, value, stats = sweep(params)
        trace.append(value)
        report(value)
        converged = converged_when(trace)
        change = abs(trace[-1] - trace[-2]) / abs(trace[-1]) if len(trace) > 1 else np.inf
        due = change <= stall_tol and len(trace) - last_round >= every
        if not (converged or due):
            continue
        last_round = len(trace)
        budget = min(max_proposals, max_iter - len(trace))
        accepted, tried = _merge_round(sweep, start, stats, value, spec, budget)
        proposed += tried
        accepted_total += len(accepted)
        for _, accepted_value, _ in accepted:
            trace.append(accepted_value)
            report(accepted_value)
        if accepted:
            params, value, stats = accepted[-1]
        if converged and not accepted:
            return params, np.array(trace), True, MergeRecord(proposed, accepted_total)
    return params, np.array(trace), False, MergeRecord(proposed, accepted_total)
