"""The ``ppl-mixtures`` command: demo | fit | compare | engines | bench.

``main(argv=None) -> int`` runs in-process (the tests call it). Exit codes: 0 success;
2 our own input checks refused something (a usage error, a bad file, option, model or
``--out``), with one line on stderr and no traceback; 1 anything else, i.e. an internal
failure, also one line (``--debug`` shows the traceback); 130/143 stopped by
SIGINT/SIGTERM (temporary folders removed, worker processes ended).

An error counts as "our input check" when it is raised while the CLI reads and checks
the input (arguments, data file, model, options, ``--out``), or when a ValueError,
TypeError, OSError or NotImplementedError is raised by a ``raise`` statement in a
``ppl_mixtures`` module during the fit (an engine checking its options); an error raised
inside PyMC, numpy or elsewhere is internal.

Only the standard library is imported here at start-up, so ``--help`` is instant;
engines, pandas and matplotlib load when a command runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import linecache
import os
import re
import shlex
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["main"]

PROG = "ppl-mixtures"

ENGINES_HELP = """\
engines (run `ppl-mixtures engines` for the list this installation registers):
  nuts            Hamiltonian Monte Carlo (PyMC's NUTS): the accurate reference; slowest.
  metropolis      random-walk Metropolis: simple MCMC, needs many draws, mixes slowly.
  latent_gibbs    Gibbs sampling with the assignments z kept (conjugate updates).
  smc             sequential Monte Carlo: draws plus an estimate of log p(x).
  advi            mean-field ADVI (PyMC): fast, gradient-based; sds usually too narrow.
  fullrank_advi   ADVI with a full covariance: captures correlations, slower.
  cavi            coordinate-ascent VI (closed-form updates, numpy): fast, exact ELBO.
  svi             stochastic VI on minibatches: for 1e5+ points.
  em              expectation-maximization: a point estimate (MAP), no uncertainty."""

DATA_HELP = """\
DATA is a CSV file (comma-separated; the header row is optional) or a NumPy .npy file of
shape (n_samples, n_features). Choose columns with --columns (names or 0-based indices).
Rows with missing values are an error that says where they are, unless --dropna.
Standardize (--standardize) when features have different scales (e.g. minutes and
seconds) or are far from 0: the default priors (mean_prior_sd=1, obs_sd=1) assume data of
roughly unit scale."""

FIT_EPILOG = f"""{DATA_HELP}

{ENGINES_HELP}

examples:
  ppl-mixtures fit faithful.csv -k 2 --engine cavi --standardize --obs-sd learned
  ppl-mixtures fit points.npy -k 3 --engine advi --n-iter 20000 --batch-size 200
  ppl-mixtures fit points.csv -k 2 --engine nuts --draws 500 --chains 2 --out fit_report
  ppl-mixtures fit points.csv -k 2 --engine em --option n_init=5"""

COMPARE_EPILOG = f"""{DATA_HELP}

The reference engine (default nuts) is what the others are judged against: components
are aligned to it, and each engine gets a verdict ("agrees", "too narrow by 2.3x",
"means off by 1.5 reference sd", "label-switched", "point estimate").

{ENGINES_HELP}

examples:
  ppl-mixtures compare points.csv -k 3 --engines nuts,advi,cavi,em --out cmp
  ppl-mixtures compare faithful.csv -k 2 --standardize --obs-sd learned --engines all --out cmp
  ppl-mixtures compare points.npy -k 2 --engines nuts,cavi --quick --out cmp --force"""

DEMO_EPILOG = """\
The demo fits four built-in datasets and writes one report:
  advi_notebook_100    seed 001's 100 2-D points, K=2, with every registered engine;
  advi_notebook_100k   its 100,000-point version, with the scalable engines and NUTS;
  three_clusters_1d    seed 000's 1-D data (clusters at -10, 0.25, 5), K=3, fixed weights;
  old_faithful         Old Faithful eruptions, standardized, K=2, learned obs_sd.

examples:
  ppl-mixtures demo                       writes reports/demo/ (refuses to overwrite)
  ppl-mixtures demo --quick --out /tmp/demo --force
  ppl-mixtures demo --jobs 1              one fit at a time, in this process"""


# =========================================================================== output
class _UI:
    """Progress lines on stderr (rich), silenced by --quiet; results always go to stdout."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._console = None
        if not quiet:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False, soft_wrap=True)  # 1 note, 1 line

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        if self._console is None:
            yield
            return
        with self._console.status(message, spinner="dots"):
            yield

    def note(self, message: str) -> None:
        if self._console is not None:
            self._console.print(message, markup=False)

    def result(self, text: str) -> None:
        print(text)  # the answer itself is printed even with --quiet


class _UsageError(ValueError):
    """Bad command-line input detected by the CLI itself (exit code 2)."""


class _Signalled(BaseException):
    """SIGTERM/SIGINT arrived: unwind (context managers clean up), then exit 128 + signum.

    A BaseException, so ``except Exception`` (ours, PyMC's) does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``PROG CMD: error: MESSAGE (see PROG CMD --help)``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        text = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


# =========================================================================== parsing
def _option_value(text: str) -> Any:
    """``--option key=value`` values: JSON numbers/booleans/null, else the string."""
    lowered = {"true": True, "false": False, "none": None, "null": None}
    if text.lower() in lowered:
        return lowered[text.lower()]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.strip().replace("-", "_"), _option_value(value.strip())


def _obs_sd(text: str) -> float | str:
    if text == "learned":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'learned', got "
                                         f"{text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'learned', got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _columns(text: str) -> list[str | int]:
    return [int(c) if c.strip().isdigit() else c.strip() for c in text.split(",") if c.strip()]


def _add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", metavar="DATA", help="CSV or .npy file with the points.")
    p.add_argument("-k", "--n-components", type=int, required=True, metavar="K",
                   help="number of mixture components K (>= 1, at most the number of rows).")
    p.add_argument("--columns", type=_columns, default=None, metavar="A,B",
                   help="columns to use, by header name or 0-based index (default: all).")
    p.add_argument("--dropna", action="store_true",
                   help="drop rows with missing values instead of stopping with an error.")
    p.add_argument("--standardize", action="store_true",
                   help="center each column at 0 and scale it to sd 1 before fitting.")
    prior = p.add_argument_group("model and priors (the same for every engine)")
    prior.add_argument("--mean-prior-sd", type=float, default=None, metavar="SD",
                       help="prior sd of each component mean (default 1; use ~10 for "
                            "unstandardized data spread over tens of units).")
    prior.add_argument("--dirichlet-alpha", type=float, default=None, metavar="A",
                       help="Dirichlet concentration of the weights (default 1; < 1 lets "
                            "components empty out).")
    prior.add_argument("--fixed-weights", action="store_true",
                       help="fix every weight at 1/K instead of learning them.")
    prior.add_argument("--obs-sd", type=_obs_sd, default=None, metavar="SD|learned",
                       help="known observation sd of every component (default 1), or "
                            "'learned' (one sd per component and feature, Gamma prior on "
                            "the precision).")
    prior.add_argument("--ordered", action="store_true",
                       help="order components by their feature-0 mean (prevents label "
                            "switching in MCMC).")


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine options (passed on when the engine accepts them)")
    g.add_argument("--draws", type=int, help="MCMC draws per chain kept, or draws from q.")
    g.add_argument("--tune", type=int, help="MCMC tuning (warm-up) steps per chain.")
    g.add_argument("--chains", type=int, help="number of MCMC chains.")
    g.add_argument("--n-iter", type=int, help="iterations of an optimizer (ADVI, SVI).")
    g.add_argument("--max-iter", type=int, help="maximum iterations (CAVI, EM).")
    g.add_argument("--batch-size", type=int, help="minibatch size (ADVI, SVI) for large data.")
    g.add_argument("--random-seed", type=_seed, default=1,
                   help="seed for every engine (default 1): same seed, same numbers.")
    g.add_argument("--option", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="any other engine option, e.g. --option target_accept=0.95 "
                        "(repeatable; values are read as JSON: 5, 0.1, true, \"text\").")
    g.add_argument("--quick", action="store_true",
                   help="start from each engine's small 'quick' settings (seconds, rough).")


_NO_CACHE_HELP = ("fit the reference again instead of loading it from the reference cache "
                  "($PPL_MIXTURES_CACHE or ~/.cache/ppl-mixtures/fits; an entry is reused "
                  "only for the same data, model, engine, options, versions and package "
                  "source). Nothing is read from or written to the cache.")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = _ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fit one Gaussian mixture model with many inference engines (MCMC, "
                    "variational inference, EM) and compare their answers side by side.",
        epilog="Start with `ppl-mixtures demo`; then `ppl-mixtures compare --help`.")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress lines (results are still printed).")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback when something fails.")
    common = _ArgumentParser(add_help=False)  # the same flags after the command
    common.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress output.")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback when something fails.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=_ArgumentParser)

    demo = sub.add_parser("demo", parents=[common], help="compare every engine on four built-in datasets "
                          "and write a report.", epilog=DEMO_EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter,
                          description="The main job: run every registered engine on built-in "
                                      "data, compare them with NUTS, write a report folder "
                                      "and print the headline table.")
    demo.add_argument("--out", default="reports/demo", help="report folder (default "
                      "reports/demo).")
    demo.add_argument("--force", action="store_true", help="replace an existing report of "
                      "ours (never a folder holding other files).")
    demo.add_argument("--quick", action="store_true",
                      help="each engine's quick settings: a rough run in a fraction of the time.")
    demo.add_argument("--random-seed", type=_seed, default=1, help="seed for every engine.")
    demo.add_argument("--no-cache", action="store_true", help=_NO_CACHE_HELP)
    demo.add_argument("--jobs", type=int, default=None, metavar="N",
                      help="fits run at once, in N worker processes (default: the number "
                           "of CPUs, at most 2; 1 runs every fit in this process). Each fit "
                           "uses one core; the numbers do not depend on N.")
    demo.set_defaults(func=_cmd_demo)

    fit = sub.add_parser("fit", parents=[common], help="fit one engine to a data file.", epilog=FIT_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         description="Fit the mixture with one engine; print its summary, and "
                                     "with --out write a report folder.")
    _add_data_arguments(fit)
    fit.add_argument("--engine", required=True, help="engine name (see below).")
    _add_engine_options(fit)
    fit.add_argument("--out", default=None, help="write a report folder here.")
    fit.add_argument("--force", action="store_true",
                     help="replace an existing report of ours at --out (never a folder "
                          "holding other files).")
    fit.set_defaults(func=_cmd_fit)

    cmp_ = sub.add_parser("compare", parents=[common], help="fit several engines to a data file and compare "
                          "them.", epilog=COMPARE_EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter,
                          description="Fit several engines to the same data and model, judge "
                                      "each against a reference, print the table and write a "
                                      "report.")
    _add_data_arguments(cmp_)
    cmp_.add_argument("--engines", required=True, metavar="A,B,C",
                      help="comma-separated engine names, or 'all'.")
    cmp_.add_argument("--reference", default="nuts",
                      help="the engine the others are judged against (default nuts), or "
                           "'exact': every engine graded against the exact posterior by "
                           "enumeration (known --obs-sd and K^N <= 2,000,000 only: N <= 20 "
                           "at K = 2, 13 at K = 3, 10 at K = 4).")
    _add_engine_options(cmp_)
    cmp_.add_argument("--no-cache", action="store_true", help=_NO_CACHE_HELP)
    cmp_.add_argument("--out", default=None, help="write the report folder here.")
    cmp_.add_argument("--force", action="store_true",
                      help="replace an existing report of ours at --out (never a folder "
                           "holding other files).")
    cmp_.set_defaults(func=_cmd_compare)

    eng = sub.add_parser("engines", parents=[common], help="list the registered engines and their options.")
    eng.set_defaults(func=_cmd_engines)

    bench = sub.add_parser("bench", parents=[common], help="run the benchmarks (benchmarks/bench_*.py).",
                           description="Run every benchmarks/bench_*.py of a source checkout "
                                       "and write reports/benchmarks/<NAME>.md.")
    bench.add_argument("--quick", action="store_true", help="small settings (a smoke run).")
    bench.add_argument("--only", default=None, metavar="NAME",
                       help="run only the benchmark with this NAME.")
    bench.add_argument("--dir", default=None, help=argparse.SUPPRESS)
    bench.add_argument("--out", default=None, help="where to write the reports (default "
                       "reports/benchmarks next to the benchmarks folder).")
    bench.set_defaults(func=_cmd_bench)
    return parser


# =========================================================================== engines
def _accepted_options(engine_fit: Callable[..., Any]) -> set[str] | None:
    """Keyword-only option names of an engine's fit (None when it takes **kwargs)."""
    params = inspect.signature(engine_fit).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _cli_options(args: argparse.Namespace) -> dict[str, Any]:
    names = ("draws", "tune", "chains", "n_iter", "max_iter", "batch_size", "random_seed")
    options = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    options.update(dict(getattr(args, "option", []) or []))
    return options


def _engine_options(engine: Any, base: Mapping[str, Any], requested: Mapping[str, Any],
                    strict: bool) -> dict[str, Any]:
    """Base settings + the user's options; non-strict drops options the engine lacks."""
    accepted = _accepted_options(engine.fit)
    options = {**base, **requested}
    if accepted is not None:
        if "progressbar" in accepted:
            options["progressbar"] = False  # the CLI shows its own progress line
        if not strict:
            options = {k: v for k, v in options.items() if k in accepted}
    return options


#: The dedicated flags, by option name (anything else came from --option).
_FLAGS = {"draws": "--draws", "tune": "--tune", "chains": "--chains", "n_iter": "--n-iter",
          "max_iter": "--max-iter", "batch_size": "--batch-size",
          "random_seed": "--random-seed"}


def _check_known_options(names: Sequence[str], requested: Mapping[str, Any]) -> None:
    """Refuse an option that none of the engines ``names`` accepts, listing the valid ones.

    An option accepted by some of them is kept for those (the others never see it).
    """
    from ppl_mixtures.inference.registry import get_engine

    accepted = [_accepted_options(get_engine(name).fit) for name in names]
    if any(a is None for a in accepted):  # an engine taking **kwargs accepts anything
        return
    valid = set().union(*accepted)
    unknown = [key for key in requested if key not in valid]
    if unknown:
        given = ", ".join(_FLAGS.get(k, f"--option {k}") for k in unknown)
        raise _UsageError(f"{given}: expected an option that at least one of the selected "
                          f"engines ({', '.join(names)}) accepts, got "
                          f"{', '.join(map(repr, unknown))}, which none of them accepts. "
                          f"Valid options: {', '.join(sorted(valid))}.")


def _run_engines(points: Any, spec: Any, plan: Sequence[tuple[str, dict[str, Any]]],
                 ui: _UI, label: str, reference: str | None = None,
                 failures: dict[str, str] | None = None, cache: Sequence[str] = (),
                 ) -> tuple[dict[str, Any], dict[str, str]]:
    """Fit each (engine, options) of ``plan``; NotImplementedError -> "not applicable".

    The reference engine raising is an error (nothing to compare to). With a ``failures``
    dict (the demo), any other engine that crashes is recorded there and in the returned
    "not applicable" mapping as "FAILED (...)", so one broken engine does not lose the
    other fits; the caller then exits with 1. The engines named in ``cache`` go through
    the reference cache (:func:`_fit_one`).
    """
    import warnings

    from ppl_mixtures.results import ConvergenceWarning

    fits, not_applicable = {}, {}
    for name, options in plan:
        start = time.perf_counter()
        with ui.status(f"[{label}] fitting {name} ..."), \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fits[name] = _fit_one(points, spec, name, options,
                                      cached=name in cache)
            except NotImplementedError as err:
                if name == reference:
                    raise
                not_applicable[name] = _one_line(err)
                ui.note(f"[{label}] {name}: not applicable ({_one_line(err)})")
                continue
            except Exception as err:
                if failures is None or name == reference:
                    raise
                reason = f"{type(err).__name__}: {_one_line(err)}"
                failures[f"{label}/{name}"] = reason
                not_applicable[name] = f"FAILED ({reason})"
                ui.note(f"[{label}] {name}: FAILED ({reason})")
                continue
        ui.note(f"[{label}] {name}: {_done_note(fits[name], time.perf_counter() - start)}")
        for warning in caught:  # the engine's own advice; PyMC's noise stays quiet
            if issubclass(warning.category, ConvergenceWarning):
                ui.note(f"[{label}] {name}: warning: {_one_line(warning.message)}")
    return fits, not_applicable


def _fit_one(points: Any, spec: Any, name: str, options: Mapping[str, Any],
             cached: bool = False) -> Any:
    """``fit(points, spec, engine=name, **options)``; with ``cached`` through the reference
    cache (:func:`ppl_mixtures.app.refcache.cached_fit`, keyed by the points, spec, engine and
    every option). A fit loaded from the cache carries ``extras["refcache_hit"] = True``
    (the report says so); a fit just computed is stored as the engine returned it."""
    from ppl_mixtures.inference.fit import fit

    if not cached:
        return fit(points, spec, engine=name, **options)
    from ppl_mixtures.app.refcache import cached_fit

    fitted, hit = cached_fit(points, spec, name, options,
                             lambda: fit(points, spec, engine=name, **options))
    return fitted.replace(extras={**fitted.extras, "refcache_hit": True}) if hit else fitted


def _done_note(fitted: Any, seconds: float) -> str:
    if fitted.extras.get("refcache_hit"):
        return f"loaded from the reference cache in {seconds:.1f} s"
    return f"done in {seconds:.1f} s"


def _fit_in_worker(points: Any, spec: Any, name: str, options: dict[str, Any],
                   cached: bool = False) -> tuple[Any, list[str], float]:
    """One demo fit in a worker process: (fit, ConvergenceWarning messages, wall seconds).

    ``cached``: go through the reference cache (:func:`_fit_one`); the worker reads and
    writes the cache itself, so a hit costs the parent nothing but unpickling the fit.
    Exceptions (NotImplementedError included) travel back to the parent, which sorts them
    as :func:`_run_engines` does.
    """
    import warnings

    from ppl_mixtures.results import ConvergenceWarning

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = _fit_one(points, spec, name, options, cached)
    notes = [_one_line(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    return fitted, notes, time.perf_counter() - start


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


def _default_jobs() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus))


def _task_cost(n_samples: int, family: str, name: str) -> tuple:
    """Sort key, longest fits first (so two workers finish together): MCMC before VI before
    point estimates, larger data first."""
    rank = {"mcmc": 0, "vi": 1, "point": 2}.get(family, 1)
    return (rank, -n_samples, name)


@contextmanager
def _worker_pool(jobs: int) -> Iterator[Any]:
    """A process pool of ``jobs`` workers, or None for ``jobs == 1`` (work in this process).

    Workers are forked (spawned where fork is missing) when the pool is created, before any
    progress spinner (a thread) exists. Fits cross the process boundary with pickle
    (``MixtureFit`` pickles its read-only mappings as dicts).
    """
    if jobs == 1:
        yield None
        return
    import logging
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(method),
                               initializer=_worker_init,
                               initargs=(logging.root.manager.disable, os.getpid()))
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


def _parallel_order(work: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], str, dict]]:
    """The (dataset, engine, options) tasks in the order the workers take them.

    Dataset by dataset, so each dataset's report section can render while later fits still
    run: the large dataset first (its NUTS run is the longest single fit), then the others
    from the most points to the fewest (the smallest finishes last, with the shortest
    tail); within a dataset MCMC before VI before point estimates.
    """
    from ppl_mixtures.inference.registry import available_engines

    registry = available_engines()
    order = sorted(range(len(work)),
                   key=lambda i: (not work[i].get("large", False), -len(work[i]["points"]), i))
    tasks = []
    for i in order:
        item = work[i]
        plan = sorted(item["plan"], key=lambda p: _task_cost(len(item["points"]),
                                                             registry[p[0]].family, p[0]))
        tasks += [(item, name, options) for name, options in plan]
    return tasks


def _run_engines_parallel(work: Sequence[dict[str, Any]], pool: Any, jobs: int, ui: _UI,
                          failures: dict[str, str],
                          on_done: Callable[[dict[str, Any], dict[str, Any], dict[str, str]],
                                            None] | None = None,
                          ) -> dict[str, tuple[dict[str, Any], dict[str, str]]]:
    """Fit every (dataset, engine) of ``work`` in the ``jobs`` worker processes of ``pool``.

    ``work`` items: ``label``, ``points``, ``spec``, ``plan`` (engine, options),
    ``reference`` and optionally ``large``. The outcome is that of :func:`_run_engines` per
    dataset: the fits in plan order, and "not applicable" reasons (NotImplementedError, or
    "FAILED (...)" recorded in ``failures``); the reference engine failing raises. Fits are
    independent and seeded, so the numbers are those of a sequential run.

    At most ``jobs`` fits are handed to the pool at a time, so work the caller submits from
    ``on_done(item, fits, not_applicable)`` (called here as each dataset's last fit
    finishes) runs before the remaining fits. The engines an item names in ``cached``
    go through the reference cache, in the worker that runs them.
    """
    from concurrent.futures import FIRST_COMPLETED, wait

    pending = _parallel_order(work)[::-1]  # pop() takes the next task
    left = {item["label"]: len(item["plan"]) for item in work}
    outcome: dict[str, dict[str, Any]] = {item["label"]: {} for item in work}
    not_applicable: dict[str, dict[str, str]] = {item["label"]: {} for item in work}
    running: dict[Any, tuple[dict[str, Any], str]] = {}

    def submit_next() -> None:
        item, name, options = pending.pop()
        future = pool.submit(_fit_in_worker, item["points"], item["spec"], name, options,
                             name in item.get("cached", ()))
        running[future] = (item, name)

    def collect(future: Any, item: dict[str, Any], name: str) -> None:
        label = item["label"]
        try:
            fitted, notes, seconds = future.result()
        except NotImplementedError as err:
            if name == item["reference"]:
                raise
            not_applicable[label][name] = _one_line(err)
            ui.note(f"[{label}] {name}: not applicable ({_one_line(err)})")
            return
        except Exception as err:
            if name == item["reference"]:
                raise
            reason = f"{type(err).__name__}: {_one_line(err)}"
            failures[f"{label}/{name}"] = reason
            not_applicable[label][name] = f"FAILED ({reason})"
            ui.note(f"[{label}] {name}: FAILED ({reason})")
            return
        outcome[label][name] = fitted
        ui.note(f"[{label}] {name}: {_done_note(fitted, seconds)}")
        for note in notes:
            ui.note(f"[{label}] {name}: warning: {note}")

    def result(item: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        label = item["label"]
        return ({name: outcome[label][name] for name, _ in item["plan"] if name in outcome[label]},
                not_applicable[label])

    try:
        while pending and len(running) < jobs:
            submit_next()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                item, name = running.pop(future)
                collect(future, item, name)
                left[item["label"]] -= 1
                if left[item["label"]] == 0 and on_done is not None:
                    on_done(item, *result(item))
                if pending:
                    submit_next()
    finally:
        for future in running:  # the reference failed: do not wait for the other fits
            future.cancel()
    return {item["label"]: result(item) for item in work}


def _spec_from_args(args: argparse.Namespace) -> Any:
    from ppl_mixtures.model.spec import MixtureSpec

    kwargs: dict[str, Any] = {"n_components": args.n_components, "ordered": args.ordered}
    for name in ("mean_prior_sd", "dirichlet_alpha", "obs_sd"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    if args.fixed_weights:
        kwargs["weights"] = "fixed"
    return MixtureSpec(**kwargs)


_DROPPED = re.compile(r"dropped (\d+) rows? with missing values(?: \((.*)\))?")


def _loading_note(message: str, n_kept: int) -> str:
    """One stderr line for a message the data loader logged or warned.

    The --dropna message becomes "dropped D of N rows ..." (the loader reports D; N = D +
    the rows kept).
    """
    text = " ".join(message.split())
    found = _DROPPED.search(text)
    if found is None:
        return f"{PROG}: warning: {text}"
    dropped = int(found.group(1))
    where = f" ({found.group(2)})" if found.group(2) else ""
    return (f"{PROG}: warning: --dropna: dropped {dropped} of {dropped + n_kept} rows "
            f"with missing values{where}; {n_kept} kept.")


class _Collect:
    """A logging handler keeping the records it gets (the data loader's notices)."""

    def __init__(self) -> None:
        import logging

        self.handler = logging.Handler(logging.WARNING)
        self.records: list[Any] = []
        self.handler.emit = self.records.append  # type: ignore[method-assign]


def _load(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The data, as :func:`datasets.load_table` reads it, and how to show it: ``{"feature_names":
    the chosen columns' names, "data_transform": (center, scale) with --standardize, else
    None}`` (keyword arguments of :func:`compare`). What the loader logged or warned (rows
    dropped by --dropna, ...) is printed on stderr, one line each, even with --quiet."""
    import logging
    import warnings

    from ppl_mixtures import datasets

    collect = _Collect()
    package = logging.getLogger("ppl_mixtures")
    previous, propagate = logging.root.manager.disable, package.propagate
    logging.disable(logging.NOTSET)  # _quiet_library_logs turned records off
    package.addHandler(collect.handler)
    package.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            points, names = datasets.load_table(args.data, columns=args.columns,
                                                dropna=args.dropna)
    finally:
        package.removeHandler(collect.handler)
        package.propagate = propagate
        logging.disable(previous)
    messages = [r.getMessage() for r in collect.records] + [str(w.message) for w in caught]
    for message in dict.fromkeys(messages):
        print(_loading_note(message, len(points)), file=sys.stderr)
    shown: dict[str, Any] = {"feature_names": names, "data_transform": None}
    if args.standardize:
        points, center, scale = datasets.standardize(points)
        shown["data_transform"] = (center, scale)
    return points, shown


def _check_out(args: argparse.Namespace) -> None:
    """Fail before any fitting when the report folder would be refused at the end (not a
    report of ours, no --force, holds the data or the current folder, not writable)."""
    if args.out is not None:
        from ppl_mixtures.present.report import check_out_dir, clean_stale

        clean_stale(args.out)  # what a killed run left (it may have set the old report aside)
        check_out_dir(args.out, args.force, name="--out", force_hint="Add --force",
                      inputs=_inputs(args))


def _inputs(args: argparse.Namespace) -> list[str]:
    data = getattr(args, "data", None)
    return [data] if data else []


def _write(comparison: Any, args: argparse.Namespace, title: str) -> None:
    from ppl_mixtures.present.report import write_report

    write_report(comparison, args.out, force=args.force, command=args.command_line,
                 title=title, inputs=_inputs(args), name="--out", force_hint="Add --force")


# =========================================================================== error kinds
_INPUT_KINDS = (ValueError, TypeError, OSError, NotImplementedError)


def _mark(err: BaseException, kind: str) -> None:
    """Tag ``err`` as "input" (exit 2) or "internal" (exit 1); the first tag wins."""
    try:
        if not hasattr(err, "_ppl_mixtures_kind"):
            err._ppl_mixtures_kind = kind  # type: ignore[attr-defined]
    except AttributeError:  # an exception type without a __dict__
        pass


@contextmanager
def _input_checks() -> Iterator[None]:
    """Reading and checking the user's input: a ValueError, TypeError, OSError or
    NotImplementedError raised here is the input refused (exit 2)."""
    try:
        yield
    except _INPUT_KINDS as err:
        _mark(err, "input")
        raise


@contextmanager
def _internal() -> Iterator[None]:
    """Work on our own settings (the demo): anything raised here is internal (exit 1)."""
    try:
        yield
    except Exception as err:
        _mark(err, "internal")
        raise


def _raised_by_our_checks(err: BaseException) -> bool:
    """True when ``err`` comes from a ``raise`` statement in a ppl_mixtures module.

    The last traceback entry is where the exception started; an error that numpy or PyMC
    raised (even when called from our code) ends in their frame or in a line of ours that
    is not a ``raise``.
    """
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = str(tb.tb_frame.f_globals.get("__name__", ""))
    if module != "ppl_mixtures" and not module.startswith("ppl_mixtures."):
        return False
    line = linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno).strip()
    return line.startswith("raise ") or line == "raise"


def _is_input_error(err: BaseException) -> bool:
    """Exit 2 (our input check refused something) or 1 (anything else)?"""
    from ppl_mixtures.present.report import ReportConflictError

    if isinstance(err, _UsageError | ReportConflictError):
        return True
    kind = getattr(err, "_ppl_mixtures_kind", None)
    if kind is not None:
        return kind == "input"
    return isinstance(err, _INPUT_KINDS) and _raised_by_our_checks(err)


# =========================================================================== commands
def _cmd_fit(args: argparse.Namespace, ui: _UI) -> int:
    from ppl_mixtures.inference.registry import get_engine
    from ppl_mixtures.validation import check_engine_options

    with _input_checks():
        _check_out(args)
        engine = get_engine(args.engine)
        base = dict(engine.quick_options) if args.quick else {}
        options = _engine_options(engine, base, _cli_options(args), strict=True)
        check_engine_options(args.engine, engine.fit, options)
        points, shown = _load(args)
        spec = _spec_from_args(args)
    fits, _ = _run_engines(points, spec, [(args.engine, options)], ui, Path(args.data).name,
                           reference=args.engine)
    fitted = fits[args.engine]
    ui.result(str(fitted))
    if not args.out and shown["data_transform"] is None:
        return 0
    from ppl_mixtures.analysis.compare import compare

    # one comparison serves both the table and the report (k-hat only for the report)
    comparison = compare(fits, reference=args.engine, name=Path(args.data).stem,
                         khat="auto" if args.out else False, **shown)
    if shown["data_transform"] is not None:  # the numbers above are in standardized units
        ui.result(comparison.parameter_table_markdown())
    if args.out:
        _write(comparison, args, title=f"ppl-mixtures fit: {args.engine} on "
                                       f"{Path(args.data).name}")
        ui.note(f"report written to {args.out}/report.md")
    return 0


def _engine_list(text: str) -> list[str]:
    from ppl_mixtures.inference.registry import available_engines, get_engine

    if text.strip() == "all":
        return list(available_engines())
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise _UsageError(f"--engines: expected comma-separated engine names or 'all', got "
                          f"{text!r}. Try --engines nuts,advi,cavi.")
    for name in names:
        get_engine(name)  # ValueError listing the valid names
    return list(dict.fromkeys(names))


def _cmd_compare(args: argparse.Namespace, ui: _UI) -> int:
    from ppl_mixtures.analysis.compare import compare
    from ppl_mixtures.inference.registry import get_engine

    with _input_checks():
        _check_out(args)
        names = _engine_list(args.engines)
        if args.reference not in names and args.reference != "exact":
            raise _UsageError(f"--reference: expected one of the engines to run "
                              f"({', '.join(names)}) or 'exact', got {args.reference!r}. Add "
                              f"it to --engines or pick another --reference.")
        requested = _cli_options(args)
        _check_known_options(names, requested)
        plan = []
        for name in names:
            engine = get_engine(name)
            base = dict(engine.quick_options) if args.quick else {}
            # non-strict: options the engine lacks are dropped, so there is nothing to check
            plan.append((name, _engine_options(engine, base, requested, strict=False)))
        points, shown = _load(args)
        spec = _spec_from_args(args)
        if args.reference == "exact":
            _check_exact_feasible(points, spec)
    label = Path(args.data).name
    fits, not_applicable = _run_engines(points, spec, plan, ui, label, reference=args.reference,
                                        cache=() if args.no_cache else (args.reference,))
    if not fits:
        raise _UsageError(f"--engines: none of {', '.join(names)} could fit this model "
                          f"({'; '.join(f'{k}: {v}' for k, v in not_applicable.items())}). "
                          f"Pick other --engines.")
    comparison = compare(fits, reference=args.reference, not_applicable=not_applicable,
                         name=Path(args.data).stem, **shown)
    ui.result(comparison.to_markdown())
    if args.out:
        with ui.status("writing the report ..."):
            _write(comparison, args, title=f"ppl-mixtures compare: {label}")
        ui.note(f"report written to {args.out}/report.md")
    return 0


def _check_exact_feasible(points: Any, spec: Any) -> None:
    """--reference exact: refuse before fitting what enumeration cannot grade."""
    from ppl_mixtures.model.evidence import MAX_ASSIGNMENTS, exact_feasible

    if spec.learned_obs_sd:
        raise ValueError("--reference: 'exact' needs a known obs_sd (the learned precisions do "
                         "not integrate out in closed form), got --obs-sd learned. Use "
                         "--reference nuts, or a known --obs-sd.")
    n_samples, n_components = len(points), spec.n_components
    if not exact_feasible(n_samples, n_components):
        raise ValueError(f"--reference: 'exact' enumerates all K^N assignments and needs K^N "
                         f"<= {MAX_ASSIGNMENTS:,} (N <= 20 at K = 2, 13 at K = 3, 10 at K = 4), "
                         f"got K={n_components}, N={n_samples}. Use --reference nuts, or "
                         f"grade on a subset of the rows.")


def _cmd_engines(args: argparse.Namespace, ui: _UI) -> int:
    from ppl_mixtures.inference.registry import available_engines

    for name, engine in available_engines().items():
        accepted = _accepted_options(engine.fit)
        options = ", ".join(sorted(accepted)) if accepted is not None else "(any)"
        scal = ", scalable" if engine.scalable else ""
        print(f"{name} [{engine.family}{scal}]: {engine.summary}\n    options: {options}")
    return 0


# --------------------------------------------------------------------------- demo
#: Optional demo-dataset keys passed on to compare(): names, units, (center, scale).
_FEATURE_KEYS = ("feature_names", "units", "data_transform")


def demo_datasets() -> list[dict[str, Any]]:
    """The demo's datasets: name, points, spec, and which engines run on each; optionally
    ``feature_names``, ``units`` and ``data_transform`` (center, scale) of a standardized
    dataset, so its tables and figures are in the data's own units."""
    import numpy as np

    from ppl_mixtures import datasets
    from ppl_mixtures.model.spec import MixtureSpec

    faithful, center, scale = datasets.standardize(datasets.old_faithful())
    return [
        {"name": "advi_notebook_100", "points": datasets.advi_notebook_points(100),
         "spec": MixtureSpec(n_components=2, mean_prior_sd=1.0, dirichlet_alpha=0.1, obs_sd=1.0),
         "large": False,
         "about": "seed 001's 100 points: two 2-D Gaussians (weights 0.2/0.8), identity "
                  "covariance, the PyMC3 ADVI notebook's model."},
        {"name": "advi_notebook_100k", "points": datasets.advi_notebook_large_points(),
         "spec": MixtureSpec(n_components=2, mean_prior_sd=float(np.sqrt(10.0)),
                             dirichlet_alpha=0.1, obs_sd=1.0),
         "large": True,
         "about": "seed 001's 100,000 points (prior precision 0.1 on the means, as in the "
                  "notebook): scalable engines (minibatch or cheap passes) and NUTS."},
        {"name": "three_clusters_1d", "points": datasets.three_clusters_1d()[0],
         "spec": MixtureSpec(n_components=3, mean_prior_sd=float(np.sqrt(10.0)),
                             weights="fixed", obs_sd=1.0),
         "large": False,
         "about": "seed 000's 1000 1-D points around -10, 0.25 and 5; Blei et al.'s model "
                  "(fixed weights 1/K, unit sd), prior variance 10 on the means (sd "
                  "sqrt(10) = 3.16)."},
        {"name": "old_faithful", "points": faithful, "spec": MixtureSpec(n_components=2,
                                                                         obs_sd="learned"),
         "large": False, "feature_names": datasets.OLD_FAITHFUL_FEATURES,
         "units": datasets.OLD_FAITHFUL_UNITS, "data_transform": (center, scale),
         "about": "Old Faithful (eruption duration, waiting time), standardized; K=2 with a "
                  "learned sd per component and feature."},
    ]


#: NUTS settings on the 100k-point dataset: a reference worth the name (4 chains from
#: overdispersed starts x 1000 draws; compare calls it strong only with R-hat <= 1.01 and
#: bulk ESS >= 400 on every parameter). 500 tuning steps are enough there: measured with
#: random_seed 1 (the demo's), max R-hat 1.0014 and min bulk ESS 3,918 after relabeling,
#: no divergences (docs/mcmc.md). Each gradient touches every point, so this is the
#: demo's longest fit; it goes through the reference cache (--no-cache to re-run it).
LARGE_DATA_NUTS = {"draws": 1000, "tune": 500, "chains": 4}
#: Demo fits that go through the reference cache besides each dataset's reference: SMC,
#: the demo's log p(x) estimate (a reference for the ELBOs), and its slowest fit after the
#: 100k NUTS run (6 independent runs: 30-80 s per dataset on the shared 2-core machine).
DEMO_CACHED_ENGINES = ("smc",)
#: On 1e5 points the pointwise log-likelihood (chain x draw x obs) would take ~1 GB.
LARGE_DATA_COMMON = {"log_likelihood": False}
#: Every demo fit: the report neither uses nor stores the pointwise log-likelihood
#: (``diagnostics.add_log_likelihood`` recomputes it from a saved posterior), so the MCMC
#: engines skip computing it (and the workers skip sending it back).
DEMO_COMMON = {"log_likelihood": False}


def demo_plan(large: bool, quick: bool, seed: int | None) -> list[tuple[str, dict[str, Any]]]:
    """(engine, options) for one demo dataset: every engine, or scalable ones + NUTS."""
    from ppl_mixtures.inference.registry import available_engines

    plan = []
    for name, engine in available_engines().items():
        if large and not (engine.scalable or name == "nuts"):
            continue
        base = dict(engine.quick_options) if quick else dict(engine.demo_options)
        base.update(DEMO_COMMON)
        if large:
            base.update(LARGE_DATA_NUTS if name == "nuts" and not quick else {})
            base.update(engine.large_data_options)
            base.update(LARGE_DATA_COMMON)
        requested = {} if seed is None else {"random_seed": seed}
        plan.append((name, _engine_options(engine, base, requested, strict=False)))
    return plan


def _drop_too_slow(plan: list[tuple[str, dict[str, Any]]], n_samples: int,
                   ) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, str]]:
    """Split off the engines whose ``max_samples`` is below ``n_samples`` (with the reason)."""
    from ppl_mixtures.inference.registry import available_engines

    registry = available_engines()
    kept, skipped = [], {}
    for name, options in plan:
        limit = registry[name].max_samples
        if limit is not None and n_samples > limit:
            skipped[name] = (f"impractically slow above {limit} points "
                             f"(this dataset has {n_samples})")
        else:
            kept.append((name, options))
    return kept, skipped


def _demo_reference(names: Sequence[str]) -> str:
    """NUTS when it runs, else the first MCMC engine, else the first engine."""
    from ppl_mixtures.inference.registry import available_engines

    if "nuts" in names:
        return "nuts"
    registry = available_engines()
    mcmc = [n for n in names if n in registry and registry[n].family == "mcmc"]
    return (mcmc or list(names))[0]


def _cmd_demo(args: argparse.Namespace, ui: _UI) -> int:
    from ppl_mixtures.analysis.compare import compare
    from ppl_mixtures.present.report import ReportStage, headline_table

    with _input_checks():
        _check_out(args)
        jobs = _default_jobs() if args.jobs is None else args.jobs
        if jobs < 1:
            raise _UsageError(f"--jobs: expected a positive number of worker processes, got "
                              f"{jobs}. Use --jobs 1 to fit in this process.")
    comparisons: dict[str, Any] = {}
    failures: dict[str, str] = {}
    work = []
    for item in demo_datasets():
        plan, skipped = _drop_too_slow(demo_plan(item["large"], args.quick, args.random_seed),
                                       n_samples=len(item["points"]))
        reference = _demo_reference([name for name, _ in plan])
        cached = () if args.no_cache else (reference, *DEMO_CACHED_ENGINES)
        work.append({**item, "label": item["name"], "plan": plan, "skipped": skipped,
                     "reference": reference, "cached": cached})

    with _input_checks():  # the --out checks again, as the folder is made
        stage = ReportStage(args.out, force=args.force, command=args.command_line,
                            name="--out", force_hint="Add --force")
    with stage, _internal():  # built-in data and settings: any failure is ours
        def dataset_done(item: dict[str, Any], fits: dict[str, Any],
                         not_applicable: dict[str, str]) -> None:
            """Compare a dataset's fits and start its report section."""
            comparisons[item["name"]] = compare(
                fits, reference=item["reference"],
                not_applicable={**not_applicable, **item["skipped"]}, name=item["name"],
                **{key: item.get(key) for key in _FEATURE_KEYS})
            stage.add(item["name"], comparisons[item["name"]])

        with _worker_pool(jobs) as pool:
            if pool is not None:
                stage.executor = pool  # sections render in the workers, between fits
                _run_engines_parallel(work, pool, jobs, ui, failures, on_done=dataset_done)
            else:
                for item in work:
                    fits, not_applicable = _run_engines(
                        item["points"], item["spec"], item["plan"], ui, item["name"],
                        reference=item["reference"], failures=failures,
                        cache=item["cached"])
                    with ui.status(f"[{item['name']}] comparing and drawing ..."):
                        dataset_done(item, fits, not_applicable)
            with ui.status("writing the report ..."):
                ordered = {item["name"]: comparisons[item["name"]] for item in work}
                stage.finish(ordered, command=args.command_line,
                             title="ppl-mixtures demo: one mixture model, many inference "
                                   "engines")
    ui.result(headline_table(ordered))
    ui.note(f"report written to {args.out}/report.md")
    if failures:
        listed = "; ".join(f"{where}: {why}" for where, why in failures.items())
        print(f"{PROG}: internal error: {len(failures)} engine run(s) failed ({listed}); "
              f"the report lists them (run with --debug for the traceback)", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- bench
def _benchmarks_dir(given: str | None) -> Path:
    folder = Path(given) if given else Path(__file__).resolve().parents[2] / "benchmarks"
    if not folder.is_dir():
        raise FileNotFoundError(f"bench: expected a benchmarks folder at {str(folder)!r}, got "
                                f"none. Benchmarks ship with the source checkout: run from a "
                                f"git clone of ppl-mixtures.")
    return folder


def _cmd_bench(args: argparse.Namespace, ui: _UI) -> int:
    folder = _benchmarks_dir(args.dir)
    out = Path(args.out) if args.out else folder.parent / "reports" / "benchmarks"
    scripts = sorted(folder.glob("bench_*.py"))
    if not scripts:
        raise FileNotFoundError(f"bench: expected bench_*.py files in {str(folder)!r}, got "
                                f"none. Add a benchmark (see the developers' guide).")
    ran = 0
    for script in scripts:
        module_name = f"_ppl_mixtures_bench_{script.stem}"
        spec = importlib.util.spec_from_file_location(module_name, script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        name = getattr(module, "NAME", script.stem.removeprefix("bench_"))
        if args.only and name != args.only:
            continue
        start = time.perf_counter()
        with ui.status(f"benchmark {name} ..."):
            body = module.run(quick=args.quick)
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"{name}.md"
        target.write_text(body if body.endswith("\n") else body + "\n", encoding="utf-8")
        ui.note(f"benchmark {name}: {time.perf_counter() - start:.1f} s -> {target}")
        ran += 1
    if args.only and not ran:
        raise _UsageError(f"--only: expected a benchmark NAME in {str(folder)!r}, got "
                          f"{args.only!r}. Run `ppl-mixtures bench` to run them all.")
    return 0


# =========================================================================== main
def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    if isinstance(err, KeyError | FileNotFoundError) and not text:
        text = type(err).__name__
    return text or type(err).__name__


@contextmanager
def _quiet_library_logs(debug: bool) -> Iterator[None]:
    """Library log records up to WARNING off (PyMC's chatter; its advice is in the report).

    ``logging.disable`` rather than logger levels: PyMC resets its logger's level when it
    is imported, which happens lazily inside the command. Kept with ``--debug``.
    """
    import logging

    if debug:
        yield
        return
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


@contextmanager
def _signals_unwind() -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`_Signalled` in the main thread, so every context
    manager on the way out runs (temporary folders removed, worker processes ended).

    One signal is enough: later ones are ignored while the command cleans up. The
    previous handlers come back at the end (``main`` also runs in-process, in tests).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kinds = (signal.SIGTERM, signal.SIGINT)
    previous = {kind: signal.getsignal(kind) for kind in kinds}

    def handler(signum: int, frame: Any) -> None:
        for kind in kinds:
            signal.signal(kind, signal.SIG_IGN)
        raise _Signalled(signum)

    for kind in kinds:
        signal.signal(kind, handler)
    try:
        yield
    finally:
        for kind, old in previous.items():
            signal.signal(kind, old)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 internal failure, 2 bad input,
    130/143 stopped by SIGINT/SIGTERM)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    args.command_line = shlex.join([PROG, *argv])
    ui = _UI(args.quiet)
    try:
        with _signals_unwind(), _quiet_library_logs(args.debug):
            return int(args.func(args, ui))
    except _Signalled as stop:
        print(f"{PROG}: stopped by {signal.Signals(stop.signum).name} (temporary folders "
              f"removed, worker processes ended)", file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            traceback.print_exc()
        if _is_input_error(err):
            print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
            return 2
        print(f"{PROG}: internal error: {type(err).__name__}: {_one_line(err)} "
              f"(run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
