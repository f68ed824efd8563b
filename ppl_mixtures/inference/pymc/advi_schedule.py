"""ADVI's optimisation plan: step sizes, iteration counts, the averaging window, the loop.

The defaults (see :func:`ppl_mixtures.inference.pymc.advi.describe_defaults`): the base
learning rate for the first 10% of the iterations (the warm phase), then Robbins-Monro decay,
eq. (4) of :mod:`ppl_mixtures.inference.pymc.advi`; the returned q is the Polyak-Ruppert
average of the raw parameters over the last 80% of the iterations, in whole blocks of
:data:`~ppl_mixtures.inference.pymc.advi_objective.BLOCK` iterations (the compiled objective
returns the sum of the iterates of each block).
"""

from __future__ import annotations

import numpy as np

from ppl_mixtures.inference.pymc.advi_objective import BLOCK, CompiledObjective

__all__ = [
    "AUTO_N_ITER",
    "AUTO_PASSES",
    "AVERAGE",
    "CONVERGENCE_WINDOW",
    "DEFAULT_TOLERANCE",
    "ELBO_BUDGET",
    "LEARNING_RATE",
    "SCHEDULES",
    "BlockSums",
    "auto_elbo_draws",
    "averaging_start",
    "optimize",
    "relative_change",
    "resolve_n_iter",
    "step_sizes",
    "window_mean",
]

#: ELBO window (iterations) of the early-stopping rule ``tolerance`` (schedule="constant").
CONVERGENCE_WINDOW = BLOCK
#: The relative ELBO change that counts as converged when ``tolerance`` is given.
DEFAULT_TOLERANCE = 0.01
#: Schedules of the step size (:func:`step_sizes`).
SCHEDULES = ("decay", "constant")
#: Default iterations: full data, and minibatches (``AUTO_PASSES`` passes over the data).
AUTO_N_ITER = 10_000
AUTO_PASSES = 100
#: Point evaluations the default final ELBO may spend (:func:`auto_elbo_draws`).
ELBO_BUDGET = 10_000_000
#: Default base learning rate (of the warm phase).
LEARNING_RATE = 0.05
#: Default fraction of the run (its end) whose iterates are averaged, schedule="decay".
AVERAGE = 0.8

#: Per block of :data:`BLOCK` iterations (the last may be shorter): how many iterations, and
#: the sum of their iterates by raw parameter name (``"mu"``, ``"rho"`` or ``"L_tril"``).
BlockSums = list[tuple[int, dict[str, np.ndarray]]]


def step_sizes(
    n_iter: int,
    learning_rate: float,
    schedule: str = "decay",
    *,
    warmup: float = 0.1,
    decay_scale: float = 0.05,
    decay_power: float = 0.6,
) -> np.ndarray:
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


def relative_change(trace: np.ndarray, stop: int, window: int) -> float:
    """|mean ELBO of the last window - the window before| / |mean of the last window|,
    over ``trace[:stop]``; inf when there are fewer than two windows."""
    if stop < 2 * window:
        return np.inf
    last = trace[stop - window : stop].mean()
    before = trace[stop - 2 * window : stop - window].mean()
    return float(abs(last - before) / max(abs(last), 1e-12))


def window_mean(block_sums: BlockSums, first_block: int, last_block: int) -> dict[str, np.ndarray]:
    """Mean of the iterates of blocks ``first_block .. last_block - 1``, by raw name."""
    blocks = block_sums[first_block:last_block]
    count = sum(c for c, _ in blocks)
    return {name: np.asarray(sum(s[name] for _, s in blocks)) / count for name in blocks[0][1]}


def optimize(
    objective: CompiledObjective,
    n_iter: int,
    tolerance: float | None,
    learning_rate: float,
    progressbar: bool,
) -> tuple[np.ndarray, BlockSums]:
    """Run the compiled step ``n_iter`` times (or until ``tolerance`` stops it).

    Returns
    -------
    elbo : ndarray of shape (n_run,)
        The single-draw ELBO of each iteration, full-data nats.
    block_sums : BlockSums
        Per block of :data:`BLOCK` iterations: how many iterations and the sum of their
        iterates, by raw parameter name.

    Raises
    ------
    FloatingPointError
        When the ELBO becomes NaN or infinite (the step is too large), naming the iteration.
    """
    from rich.progress import Progress

    window = CONVERGENCE_WINDOW
    elbo = np.empty(n_iter)
    block_sums: BlockSums = []
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
                    f"optimizer='adagrad_window'."
                )
            progress.update(
                task, advance=stop - start, description=f"ADVI  ELBO {block.mean():,.1f}"
            )
            if (
                tolerance is not None
                and stop % window == 0
                and relative_change(elbo, stop, window) < tolerance
            ):
                n_run = stop
                break
    return elbo[:n_run], block_sums
