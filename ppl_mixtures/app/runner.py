"""Running the planned fits: in this process, or side by side in worker processes.

One fit is :func:`timed_fit` wherever it runs (a top-level function, so the pool can
pickle it; ``MixtureFit`` pickles itself). Its outcome, a fit, an engine declining the
model (NotImplementedError: "not applicable") or a crash, is sorted in one place,
:class:`DatasetFits`. Fits are independent and seeded, so the numbers do not depend on
where they ran.

Worker processes are forked (spawned where fork is missing) before any progress spinner
(a thread) exists, die with the CLI's process however it ends, and are ended when the
command fails or is stopped. Only the standard library is imported at module level.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ppl_mixtures.app.ui import UI, one_line

__all__ = [
    "DatasetFits",
    "Work",
    "default_jobs",
    "fit_one",
    "run_parallel",
    "run_serial",
    "timed_fit",
    "worker_pool",
]

Plan = Sequence[tuple[str, Mapping[str, Any]]]


@dataclass
class Work:
    """One dataset's fits: ``plan`` is (engine, options) in report order; the ``reference``
    engine failing is an error (nothing to compare to); the engines in ``cached`` go
    through the reference cache; ``large`` datasets are started first."""

    label: str
    points: Any
    spec: Any
    plan: Plan
    reference: str
    cached: Sequence[str] = ()
    large: bool = False


def fit_one(
    points: Any, spec: Any, name: str, options: Mapping[str, Any], cached: bool = False
) -> Any:
    """``fit(points, spec, engine=name, **options)``; with ``cached`` through the reference
    cache (:func:`ppl_mixtures.app.refcache.cached_fit`, keyed by the points, spec, engine
    and every option). A fit loaded from the cache has ``from_cache=True`` (the report says
    so); a fit just computed is stored as the engine returned it."""
    from ppl_mixtures.inference.fit import fit

    if not cached:
        return fit(points, spec, engine=name, **options)
    from ppl_mixtures.app.refcache import cached_fit

    fitted, hit = cached_fit(
        points, spec, name, options, lambda: fit(points, spec, engine=name, **options)
    )
    return fitted.replace(from_cache=True) if hit else fitted


def timed_fit(
    points: Any, spec: Any, name: str, options: Mapping[str, Any], cached: bool = False
) -> tuple[Any, list[str], float]:
    """One fit: (fit, its ConvergenceWarning messages, wall seconds).

    In a worker, the worker reads and writes the reference cache itself, so a hit costs the
    parent nothing but unpickling the fit. Exceptions travel back to the caller.
    """
    import warnings

    from ppl_mixtures.results import ConvergenceWarning

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = fit_one(points, spec, name, dict(options), cached)
    notes = [one_line(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    return fitted, notes, time.perf_counter() - start


@dataclass
class DatasetFits:
    """The outcomes of one dataset's fits as they arrive, and the progress line of each.

    ``failures`` (the demo's, shared by every dataset) turns a crashing engine other than
    the reference into a "FAILED (...)" entry, so one broken engine does not lose the other
    fits (the caller then exits 1); without it a crash is raised.
    """

    work: Work
    ui: UI
    failures: dict[str, str] | None = None
    fits: dict[str, Any] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)

    def done(self, name: str, outcome: tuple[Any, list[str], float]) -> None:
        fitted, notes, seconds = outcome
        self.fits[name] = fitted
        how = "loaded from the reference cache" if fitted.from_cache else "done"
        self.ui.note(f"[{self.work.label}] {name}: {how} in {seconds:.1f} s")
        for note in notes:  # the engine's own advice; PyMC's noise stays quiet
            self.ui.note(f"[{self.work.label}] {name}: warning: {note}")

    def failed(self, name: str, err: Exception) -> None:
        """Sort a fit's exception: "not applicable", "FAILED (...)", or raise it."""
        if name == self.work.reference:
            raise err
        if isinstance(err, NotImplementedError):
            self.not_applicable[name] = one_line(err)
            self.ui.note(f"[{self.work.label}] {name}: not applicable ({one_line(err)})")
            return
        if self.failures is None:
            raise err
        reason = f"{type(err).__name__}: {one_line(err)}"
        self.failures[f"{self.work.label}/{name}"] = reason
        self.not_applicable[name] = f"FAILED ({reason})"
        self.ui.note(f"[{self.work.label}] {name}: FAILED ({reason})")

    def result(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(the fits in plan order, {engine: why it has no fit})."""
        fits = {name: self.fits[name] for name, _ in self.work.plan if name in self.fits}
        return fits, self.not_applicable


def run_serial(
    work: Work,
    ui: UI,
    failures: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Fit each (engine, options) of ``work.plan`` in this process, one after the other."""
    outcome = DatasetFits(work, ui, failures)
    for name, options in work.plan:
        with ui.status(f"[{work.label}] fitting {name} ..."):
            try:
                result = timed_fit(work.points, work.spec, name, options, name in work.cached)
            except Exception as err:
                outcome.failed(name, err)
                continue
        outcome.done(name, result)
    return outcome.result()


def _task_cost(n_samples: int, family: str, name: str) -> tuple[int, int, str]:
    """Sort key, longest fits first (so two workers finish together): MCMC before VI before
    point estimates, larger data first."""
    rank = {"mcmc": 0, "vi": 1, "point": 2}.get(family, 1)
    return (rank, -n_samples, name)


def _parallel_order(work: Sequence[Work]) -> list[tuple[Work, str, Mapping[str, Any]]]:
    """The (dataset, engine, options) tasks in the order the workers take them.

    Dataset by dataset, so each dataset's report section can render while later fits still
    run: large datasets first (their NUTS run is the longest single fit), then the others
    from the most points to the fewest (the smallest finishes last, with the shortest
    tail); within a dataset MCMC before VI before point estimates.
    """
    from ppl_mixtures.inference.registry import available_engines

    registry = available_engines()
    order = sorted(range(len(work)), key=lambda i: (not work[i].large, -len(work[i].points), i))
    tasks = []
    for i in order:
        item = work[i]
        plan = sorted(
            item.plan, key=lambda p: _task_cost(len(item.points), registry[p[0]].family, p[0])
        )
        tasks += [(item, name, options) for name, options in plan]
    return tasks


OnDone = Callable[[Work, dict[str, Any], dict[str, str]], None]


def run_parallel(
    work: Sequence[Work],
    pool: Any,
    jobs: int,
    ui: UI,
    failures: dict[str, str],
    on_done: OnDone | None = None,
) -> dict[str, tuple[dict[str, Any], dict[str, str]]]:
    """Fit every (dataset, engine) of ``work`` in the ``jobs`` worker processes of ``pool``;
    per dataset label, what :func:`run_serial` returns.

    At most ``jobs`` fits are handed to the pool at a time, so work the caller submits from
    ``on_done(work, fits, not_applicable)`` (called as each dataset's last fit finishes)
    runs before the remaining fits.
    """
    from concurrent.futures import FIRST_COMPLETED, wait

    pending = _parallel_order(work)[::-1]  # pop() takes the next task
    left = {item.label: len(item.plan) for item in work}
    outcomes = {item.label: DatasetFits(item, ui, failures) for item in work}
    running: dict[Any, tuple[Work, str]] = {}

    def submit_next() -> None:
        item, name, options = pending.pop()
        future = pool.submit(
            timed_fit, item.points, item.spec, name, dict(options), name in item.cached
        )
        running[future] = (item, name)

    try:
        while pending and len(running) < jobs:
            submit_next()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                item, name = running.pop(future)
                try:
                    outcomes[item.label].done(name, future.result())
                except Exception as err:
                    outcomes[item.label].failed(name, err)
                left[item.label] -= 1
                if left[item.label] == 0 and on_done is not None:
                    on_done(item, *outcomes[item.label].result())
                if pending:
                    submit_next()
    finally:
        for future in running:  # the reference failed: do not wait for the other fits
            future.cancel()
    return {label: outcome.result() for label, outcome in outcomes.items()}


# --------------------------------------------------------------------------- the pool
#: prctl(2) option: the signal a process gets when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1
#: How often a worker without prctl checks that its parent is alive (seconds).
_PARENT_POLL_S = 1.0


def _die_with_parent(parent: int) -> None:
    """Make this worker process end when ``parent`` (the CLI's process) ends, however it
    ends (SIGKILL included): prctl(PR_SET_PDEATHSIG, SIGKILL) on Linux, else a thread
    that polls the parent's pid. SIGTERM ends the worker at once (the forked handler of
    the parent is dropped); SIGINT (Ctrl-C reaches the whole process group) is left to
    the parent, which ends its workers."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    armed = False
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
    if not armed:

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(_PARENT_POLL_S)
            os._exit(1)

        threading.Thread(target=watch, name="ppl-mixtures-parent-watch", daemon=True).start()


def _worker_init(log_disable: int, parent: int | None = None) -> None:
    """Worker set-up: die with the parent, the parent's log silencing (spawned workers do
    not inherit it) and no graph-creation tracebacks."""
    import logging

    if parent is not None:
        _die_with_parent(parent)
    import pytensor

    logging.disable(log_disable)
    # no creation stack trace on every graph variable (only PyTensor's error messages use
    # it): ~10% of a PyMC fit's set-up time
    pytensor.config.traceback__limit = 0


def default_jobs() -> int:
    """The CPUs this process may use, at most 2 (each fit uses one core)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus))


@contextmanager
def worker_pool(jobs: int) -> Iterator[Any]:
    """A process pool of ``jobs`` workers, or None for ``jobs == 1`` (work in this process).

    The workers start when the pool is created (fork: before any thread exists).
    """
    if jobs == 1:
        yield None
        return
    import logging
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context(method),
        initializer=_worker_init,
        initargs=(logging.root.manager.disable, os.getpid()),
    )
    try:
        pool.submit(int).result()  # start the workers now (fork: before any thread)
        yield pool
    except BaseException:  # a failure or a signal: end the workers now, not after their fits
        _end_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _end_workers(pool: Any, grace_s: float = 5.0) -> None:
    """Terminate a process pool's workers (SIGTERM, then SIGKILL after ``grace_s``) and
    wait for them, so none outlives the command."""
    # Python < 3.14 has no public way (ProcessPoolExecutor.terminate_workers) to reach them
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + grace_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    pool.shutdown(wait=False, cancel_futures=True)
