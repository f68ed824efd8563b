"""One restart/convergence driver for CAVI, SVI and EM (what sklearn's BaseMixture.fit does once).

An engine supplies ``run_one(seed, report) -> Run``: start from a seed, iterate its own
``step`` with :func:`iterate` until its convergence test passes or the iteration budget
is spent. :func:`fit_restarts` runs it for every seed, keeps the run with the highest
objective, refuses non-finite answers, emits the ConvergenceWarning and returns the typed
:class:`~ppl_mixtures.results.Restart` records. The shared options (seed, restarts, start,
backend, progress bar) are :class:`RestartOptions`, which each engine's ``Options`` extends.

Also here: k-means++ and random-point starts (:data:`INITS`) and the seeds of the restarts.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ppl_mixtures import validation as v
from ppl_mixtures.inference.conjugate import chunked
from ppl_mixtures.inference.conjugate.stats import BACKENDS
from ppl_mixtures.results import ConvergenceWarning, Restart
from ppl_mixtures.validation import NumericalError

__all__ = [
    "INITS",
    "RestartOptions",
    "Run",
    "epoch_mean_change_below",
    "fit_restarts",
    "iterate",
    "kmeans_plusplus",
    "random_points",
    "relative_change_below",
    "restart_seeds",
]


# ----------------------------------------------------------------- starting centers
def random_points(points: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """K distinct data points chosen uniformly (seed 002's start), shape (K, n_features).

    Chunked data: points of ``chunked.init_sample`` (every point when N <= 100,000).
    """
    if isinstance(points, chunked.ChunkedPoints):
        points = chunked.init_sample(points)
    index = rng.choice(points.shape[0], size=n_components, replace=False)
    return points[index].copy()


def kmeans_plusplus(points: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007), shape (K, n_features).

    Each next center is a data point drawn with probability proportional to its squared
    distance to the nearest center chosen so far. Values above 1e100 are first scaled by
    a power of two (the probabilities are scale-invariant; their squares would overflow).
    Chunked data: seeded on ``chunked.init_sample`` (rows floor(i N / m), m = min(N,
    100,000): every point when N <= 100,000, so the start is the in-memory fit's).
    """
    if isinstance(points, chunked.ChunkedPoints):
        points = chunked.init_sample(points)
    n_samples = points.shape[0]
    largest = float(np.max(np.abs(points))) if points.size else 0.0
    scaled = points if largest <= 1e100 else points * 2.0 ** -int(np.frexp(largest)[1])
    first = int(rng.integers(n_samples))
    chosen = [first]
    closest = np.sum((scaled - scaled[first]) ** 2, axis=1)
    for _ in range(1, n_components):
        total = closest.sum()
        if total > 0:
            index = int(rng.choice(n_samples, p=closest / total))
        else:  # all points coincide with the centers already chosen
            index = int(rng.integers(n_samples))
        chosen.append(index)
        np.minimum(closest, np.sum((scaled - scaled[index]) ** 2, axis=1), out=closest)
    return points[chosen].copy()


INITS: Mapping[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "random_points": random_points,
    "kmeans++": kmeans_plusplus,
}


def restart_seeds(random_seed: int | None, n_seeds: int) -> list[int]:
    """``n_seeds`` independent integer seeds drawn from ``random_seed`` (reproducible)."""
    rng = np.random.default_rng(random_seed)
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=n_seeds)]


# ----------------------------------------------------------------- shared options
@dataclass(frozen=True, kw_only=True)
class RestartOptions:
    """The options every conjugate engine takes (each engine's ``Options`` adds its own)."""

    random_seed: int | None = field(
        default=None, metadata={"help": "seeds the restarts (and draws): same seed, same numbers"}
    )
    n_init: int = field(
        default=5,
        metadata={"help": "starts from different centers; the one with the best objective is kept"},
    )
    init: str = field(
        default="kmeans++",
        metadata={"help": "starting centers: 'kmeans++' seeding or 'random_points'"},
    )
    backend: str = field(
        default="numba_parallel",
        metadata={
            "help": "E-step pass: 'numba_parallel' (all threads from 200k points), 'numba', 'numpy'"
        },
    )
    progressbar: bool = field(default=True, metadata={"help": "show a progress bar"})
    chunk_size: int | None = field(
        default=None,
        metadata={
            "help": "rows per chunk: passes run per chunk and reduce in a fixed tree, the numbers "
            "a dask array of such chunks gives (None: one pass, or the dask array's chunks)"
        },
    )

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: store the normalized values once
        set_(self, "random_seed", v.check_seed(self.random_seed))
        set_(self, "n_init", v.check_int("n_init", self.n_init, minimum=1))
        v.check_choice("init", self.init, tuple(INITS))
        v.check_choice("backend", self.backend, BACKENDS)
        set_(self, "progressbar", v.check_bool("progressbar", self.progressbar))
        if self.chunk_size is not None:
            set_(self, "chunk_size", v.check_int("chunk_size", self.chunk_size, minimum=1))

    def pass_backend(self, points: Any) -> str:
        """The backend the passes over ``points`` run: per chunk one numba thread."""
        if isinstance(points, chunked.ChunkedPoints):
            return chunked.chunk_backend(self.backend)
        return self.backend


# ----------------------------------------------------------------- one run
@dataclass(frozen=True, eq=False)
class Run:
    """One restart's outcome.

    Attributes
    ----------
    seed : int
    state : object
        The engine's final loop state.
    trace : ndarray of shape (n_iter,)
        The objective after each step (nats, higher is better).
    converged : bool or None
        The engine's convergence test passed (None: no test was asked for).
    objective : float
        What restarts are ranked by (the ELBO, or EM's objective of the returned state).
    extra : object
        Anything else the engine keeps from the run (EM: its final log-likelihood).
    """

    seed: int
    state: Any
    trace: np.ndarray
    converged: bool | None
    objective: float
    extra: Any = None

    @property
    def n_iter(self) -> int:
        return int(self.trace.size)


def relative_change_below(tol: float) -> Callable[[list[float]], bool]:
    """The test ``abs(f_t - f_{t-1}) <= tol * abs(f_t)`` on a trace (CAVI, EM)."""

    def converged(trace: list[float]) -> bool:
        return len(trace) > 1 and abs(trace[-1] - trace[-2]) <= tol * abs(trace[-1])

    return converged


def epoch_mean_change_below(tol: float, steps_per_epoch: int) -> Callable[[list[float]], bool]:
    """SVI's test: at the end of an epoch (``steps_per_epoch`` steps), the mean estimate of
    that epoch differs from the previous epoch's by at most ``tol`` times its size."""

    def converged(trace: list[float]) -> bool:
        if len(trace) % steps_per_epoch or len(trace) < 2 * steps_per_epoch:
            return False
        epoch = float(np.mean(trace[-steps_per_epoch:]))
        previous = float(np.mean(trace[-2 * steps_per_epoch : -steps_per_epoch]))
        return abs(epoch - previous) <= tol * abs(epoch)

    return converged


def iterate[S](
    step: Callable[[S], tuple[S, float]],
    state: S,
    *,
    max_iter: int,
    converged_when: Callable[[list[float]], bool] | None,
    report: Callable[[float], None],
) -> tuple[S, np.ndarray, bool | None]:
    """Call ``step`` (state -> (state, objective)) until ``converged_when(trace)`` or max_iter.

    Returns the last state, the objective trace and whether the test passed (None when
    there is no test).
    """
    trace: list[float] = []
    for _ in range(max_iter):
        state, value = step(state)
        trace.append(value)
        report(value)
        if converged_when is not None and converged_when(trace):
            return state, np.array(trace), True
    return state, np.array(trace), None if converged_when is None else False


# ----------------------------------------------------------------- restarts
def fit_restarts(
    engine: str,
    seeds: Sequence[int],
    run_one: Callable[[int, Callable[[float], None]], Run],
    *,
    total: int,
    progressbar: bool,
    objective_name: str,
    arrays: Callable[[Any], Mapping[str, np.ndarray | None]],
    not_converged: Callable[[Run], str],
) -> tuple[Run, tuple[Restart, ...]]:
    """Run every restart, keep the one with the highest objective, check it, warn.

    Parameters
    ----------
    engine : str
        For progress labels and messages.
    seeds : sequence of int
        One restart per seed, in order.
    run_one : callable
        ``run_one(seed, report) -> Run``; ``report(value)`` advances the progress bar.
    total : int
        Iteration budget per restart (the progress bar's length).
    objective_name : str
        ``"elbo"``, ``"log_lik"`` or ``"log_joint"`` (for the Restart records).
    arrays : callable
        The kept state's parameter arrays by name, checked for NaN/inf.
    not_converged : callable
        The ConvergenceWarning's message for a kept run with ``converged=False``.

    Returns
    -------
    (Run, tuple of Restart)
        The kept run, and every restart in seed order with ``kept=True`` on it.

    Raises
    ------
    NumericalError
        When the kept run's parameters or objective are NaN/inf.
    """
    runs = []
    with _progress_bar(progressbar) as progress:
        for seed in seeds:
            task = progress.add_task(f"{engine} seed {seed}", total=total, status="")

            def report(value: float, task: Any = task) -> None:
                progress.update(task, advance=1, status=f"{objective_name} {value:.4f}")

            runs.append(run_one(seed, report))
    objectives = [-np.inf if np.isnan(run.objective) else run.objective for run in runs]
    best = max(range(len(runs)), key=lambda j: objectives[j])  # ties: the first
    kept = runs[best]
    _check_finite(engine, arrays(kept.state), kept.objective, objective_name)
    if kept.converged is False:
        warnings.warn(not_converged(kept), ConvergenceWarning, stacklevel=3)
    restarts = tuple(
        Restart(
            random_seed=run.seed,
            objective=float(run.objective),
            objective_name=objective_name,
            n_iter=run.n_iter,
            converged=run.converged,
            kept=j == best,
        )
        for j, run in enumerate(runs)
    )
    return kept, restarts


def _check_finite(
    engine: str, arrays: Mapping[str, np.ndarray | None], objective: float, objective_name: str
) -> None:
    """NumericalError when ``arrays`` or the objective are NaN/inf (before anything is drawn
    from them or stored, where numpy would raise its own, less helpful error)."""
    bad = [
        name
        for name, value in arrays.items()
        if value is not None and not np.all(np.isfinite(value))
    ]
    if not np.isfinite(objective):
        bad.append(f"{objective_name} ({objective!r})")
    if bad:
        raise NumericalError(
            f"engine {engine!r} produced non-finite numbers in {', '.join(bad)}. Likely cause: "
            f"data far from the priors' scale (values whose squares overflow float64), or "
            f"priors at the edge of float64's range. Standardize the data (z, center, scale "
            f"= ppl_mixtures.datasets.standardize(points)) and use priors on that scale."
        )


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


def _progress_bar(enabled: bool) -> Any:
    """A rich progress bar (``add_task`` / ``update``), or a silent stand-in when disabled."""
    if not enabled:
        return _NoProgress()
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        transient=True,
    )
