"""The ``ppl-mixtures`` command: demo | fit | compare | choose-k | engines | bench.

This module parses the command line and dispatches; the commands live in
:mod:`.commands` (fit, compare, choose-k, engines), :mod:`.demo` and :mod:`.bench`.
``main(argv=None) -> int`` runs in-process (the tests call it). Exit codes
(:mod:`.errors`): 0 success; 2 our own input checks refused something (a usage error, a
bad file, option, model or ``--out``), with one line on stderr and no traceback; 1
anything else, i.e. an internal failure, also one line (``--debug`` shows the
traceback); 130/143 stopped by SIGINT/SIGTERM (temporary folders removed, worker
processes ended).

(About 440 lines, over the house's ~400: one parser for six commands, each command's flags
and help text beside each other.)

Only the standard library is imported at start-up, so ``ppl-mixtures --help`` is
instant; engines, pandas and matplotlib load when a command runs. ``fit --help``,
``compare --help`` and ``engines`` read the engine registry (a second or so), so the
engines and options they list are exactly the registered ones.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ppl_mixtures.app.argtypes import columns, key_value, ks_list, obs_sd, seed
from ppl_mixtures.app.bench import run_bench
from ppl_mixtures.app.commands import run_choose_k, run_compare, run_engines, run_fit
from ppl_mixtures.app.demo import run_demo
from ppl_mixtures.app.errors import Signalled, exit_code, quiet_library_logs, signals_unwind
from ppl_mixtures.app.ui import PROG, UI

__all__ = ["build_parser", "main"]

DATA_HELP = """\
DATA is a CSV file (comma-separated; the header row is optional), a NumPy .npy file of
shape (n_samples, n_features), or a .zarr array store (read lazily, chunk by chunk; engines
cavi, em, svi, and advi with --batch-size; --columns by 0-based index; no --out).
Choose columns with --columns (names or 0-based indices).
Rows with missing values are an error that says where they are, unless --dropna.
Standardize (--standardize) when features have different scales (e.g. minutes and
seconds) or are far from 0: the default priors (mean_prior_sd=1, obs_sd=1) assume data of
roughly unit scale."""

FIT_EXAMPLES = """\
examples:
  ppl-mixtures fit faithful.csv -k 2 --engine cavi --standardize --obs-sd learned
  ppl-mixtures fit points.npy -k 3 --engine advi --n-iter 20000 --batch-size 200
  ppl-mixtures fit points.csv -k 2 --engine nuts --draws 500 --chains 2 --out fit_report
  ppl-mixtures fit points.csv -k 2 --engine em --option n_init=5"""

COMPARE_EXAMPLES = """\
The reference engine (default nuts) is what the others are judged against: components
are aligned to it, and each engine gets a verdict ("agrees", "too narrow by 2.3x",
"means off by 1.5 reference sd", "label-switched", "point estimate").

examples:
  ppl-mixtures compare points.csv -k 3 --engines nuts,advi,cavi,em --out cmp
  ppl-mixtures compare faithful.csv -k 2 --standardize --obs-sd learned --engines all --out cmp
  ppl-mixtures compare points.npy -k 2 --engines nuts,cavi --quick --out cmp --force"""

CHOOSE_K_EPILOG = """\
criteria (--criteria, comma-separated, or 'all'; default: all but smc and loo):
  elbo, elbo_logk   CAVI's ELBO, and ELBO + log K! (the K! label modes)   one CAVI fit per K
  exact             log p(x) by enumeration (tiny N, known covariance)    "—" otherwise
  smc               SMC's log p(x) +- se                                  one SMC run set per K
  loo               NUTS's PSIS-LOO elpd +- se                            one NUTS fit per K
  bic, aic, icl     at EM's maximum-likelihood estimate                   one EM fit per K
  dp                P(K occupied | x) under a truncated DP (T = max K + 4) one CAVI fit

examples:
  ppl-mixtures choose-k points.csv --ks 1-6 --out choose_k
  ppl-mixtures choose-k faithful.csv --ks 1-5 --standardize --covariance full --out ck
  ppl-mixtures choose-k points.csv --ks 2,3,4 --criteria all --quick --out ck --force"""

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

NO_CACHE_HELP = (
    "fit the reference again instead of loading it from the reference cache "
    "($PPL_MIXTURES_CACHE or ~/.cache/ppl-mixtures/fits; an entry is reused "
    "only for the same data, model, engine, options, versions and package "
    "source). Nothing is read from or written to the cache."
)
FORCE_HELP = "replace an existing report of ours at --out (never a folder holding other files)."


class _ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (``PROG CMD: error: MESSAGE (see PROG CMD --help)``)
    and an epilog that may be built only when the help is shown (``epilog_factory``)."""

    def __init__(
        self, *args: Any, epilog_factory: Callable[[], str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.epilog_factory = epilog_factory

    def format_help(self) -> str:
        if self.epilog_factory is not None:
            self.epilog = self.epilog_factory()
        return super().format_help()

    def error(self, message: str) -> None:  # type: ignore[override]
        text = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


def _registry_epilog(text: str) -> Callable[[], str]:
    """``DATA_HELP``, the engines and their options (read from the registry), ``text``."""

    def build() -> str:
        from ppl_mixtures.app.options import engine_help

        engines = (
            "engines and their options (name: type = default  help; the flags above "
            "or --option KEY=VALUE set them):\n" + engine_help()
        )
        return f"{DATA_HELP}\n\n{engines}\n\n{text}"

    return build


# --------------------------------------------------------------------------- arguments
def _add_data_arguments(p: argparse.ArgumentParser, with_k: bool = True) -> None:
    p.add_argument("data", metavar="DATA", help="CSV, .npy or .zarr store with the points.")
    if with_k:
        p.add_argument(
            "-k",
            "--n-components",
            type=int,
            required=True,
            metavar="K",
            help="number of mixture components K (>= 1, at most the number of rows).",
        )
    p.add_argument(
        "--columns",
        type=columns,
        default=None,
        metavar="A,B",
        help="columns to use, by header name or 0-based index (default: all).",
    )
    p.add_argument(
        "--dropna",
        action="store_true",
        help="drop rows with missing values instead of stopping with an error.",
    )
    p.add_argument(
        "--standardize",
        action="store_true",
        help="center each column at 0 and scale it to sd 1 before fitting.",
    )
    prior = p.add_argument_group("model and priors (the same for every engine)")
    prior.add_argument(
        "--mean-prior-sd",
        type=float,
        default=None,
        metavar="SD",
        help="prior sd of each component mean (default 1; use ~10 for "
        "unstandardized data spread over tens of units).",
    )
    prior.add_argument(
        "--dirichlet-alpha",
        type=float,
        default=None,
        metavar="A",
        help="Dirichlet concentration of the weights (default 1; < 1 lets components empty out).",
    )
    prior.add_argument(
        "--fixed-weights",
        action="store_true",
        help="fix every weight at 1/K instead of learning them.",
    )
    prior.add_argument(
        "--obs-sd",
        type=obs_sd,
        default=None,
        metavar="SD|learned",
        help="known observation sd of every component (default 1), or "
        "'learned' (one sd per component and feature, Gamma prior on "
        "the precision).",
    )
    prior.add_argument(
        "--ordered",
        action="store_true",
        help="order components by their feature-0 mean (prevents label switching in MCMC).",
    )


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "engine options (each goes to the engines that take it; the list below says which)"
    )
    g.add_argument("--draws", type=int, help="draws per chain kept, or draws from q.")
    g.add_argument("--tune", type=int, help="tuning (warm-up) steps per chain.")
    g.add_argument("--chains", type=int, help="number of chains.")
    g.add_argument("--n-iter", type=int, help="iterations of an optimizer.")
    g.add_argument("--max-iter", type=int, help="maximum iterations (sweeps).")
    g.add_argument("--batch-size", type=int, help="minibatch size, for large data.")
    g.add_argument(
        "--random-seed",
        type=seed,
        default=1,
        help="seed for every engine (default 1): same seed, same numbers.",
    )
    g.add_argument(
        "--option",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other engine option, e.g. --option target_accept=0.95 "
        '(repeatable; values are read as JSON: 5, 0.1, true, "text").',
    )
    g.add_argument(
        "--quick",
        action="store_true",
        help="start from each engine's small 'quick' settings (seconds, rough).",
    )


def _add_report_arguments(p: argparse.ArgumentParser, out_help: str) -> None:
    p.add_argument("--out", default=None, help=out_help)
    p.add_argument("--force", action="store_true", help=FORCE_HELP)


def _subcommand(
    sub: Any, name: str, func: Callable[..., int], common: argparse.ArgumentParser, **kwargs: Any
) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name, parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs
    )
    parser.set_defaults(func=func)
    return parser


def _add_choose_k(sub: Any, common: argparse.ArgumentParser) -> None:
    choose = _subcommand(
        sub,
        "choose-k",
        run_choose_k,
        common,
        help="every criterion for the number of components K, side by side.",
        epilog=f"{DATA_HELP}\n\n{CHOOSE_K_EPILOG}",
        description="Fit the mixture for each K and print one table of every criterion "
        "(ELBO, ELBO + log K!, exact and SMC log p(x), LOO, BIC, AIC, ICL, the DP's "
        "P(K | x)), each criterion's choice and the flags; with --out write a report.",
    )
    _add_data_arguments(choose, with_k=False)
    choose.add_argument(
        "--ks",
        type=ks_list,
        default=list(range(1, 7)),
        metavar="KS",
        help="the K values: a range 1-6 (default) or a list 2,3,5.",
    )
    choose.add_argument(
        "--covariance",
        choices=("diag", "full", "tied", "spherical"),
        default="diag",
        help="the components' covariance (default diag, with --obs-sd); full, tied and "
        "spherical are learned.",
    )
    choose.add_argument(
        "--criteria",
        default=None,
        metavar="A,B",
        help="comma-separated criteria, or 'all' (default: all but smc and loo; see below).",
    )
    choose.add_argument(
        "--seed",
        "--random-seed",
        dest="random_seed",
        type=seed,
        default=0,
        metavar="N",
        help="seed of every fit (default 0): same seed, same table.",
    )
    choose.add_argument(
        "--quick",
        action="store_true",
        help="small sampler settings for smc and loo (NUTS 2 x (200 tune + 200 draws), "
        "SMC 4 runs x 500 particles).",
    )
    choose.add_argument(
        "--dp-truncation",
        type=int,
        default=None,
        metavar="T",
        help="the DP's truncation level (default: the largest K + 4, at most the rows).",
    )
    _add_report_arguments(choose, "write the report folder here.")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = _ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fit one Gaussian mixture model with many inference engines (MCMC, "
        "variational inference, EM) and compare their answers side by side.",
        epilog="Start with `ppl-mixtures demo`; then `ppl-mixtures compare --help`.",
    )
    common = _ArgumentParser(add_help=False)  # the same flags before or after the command
    for p, default in ((parser, False), (common, argparse.SUPPRESS)):
        p.add_argument(
            "--quiet",
            action="store_true",
            default=default,
            help="no progress lines (results are still printed).",
        )
        p.add_argument(
            "--debug",
            action="store_true",
            default=default,
            help="show the full traceback when something fails.",
        )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_ArgumentParser
    )

    demo = _subcommand(
        sub,
        "demo",
        run_demo,
        common,
        epilog=DEMO_EPILOG,
        help="compare every engine on four built-in datasets and write a report.",
        description="The main job: run every registered engine on built-in "
        "data, compare them with NUTS, write a report folder and "
        "print the headline table.",
    )
    demo.add_argument("--out", default="reports/demo", help="report folder (default reports/demo).")
    demo.add_argument("--force", action="store_true", help=FORCE_HELP)
    demo.add_argument(
        "--quick",
        action="store_true",
        help="each engine's quick settings: a rough run in a fraction of the time.",
    )
    demo.add_argument("--random-seed", type=seed, default=1, help="seed for every engine.")
    demo.add_argument("--no-cache", action="store_true", help=NO_CACHE_HELP)
    demo.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="fits run at once, in N worker processes (default: the number "
        "of CPUs, at most 2; 1 runs every fit in this process). Each fit "
        "uses one core; the numbers do not depend on N.",
    )

    fit = _subcommand(
        sub,
        "fit",
        run_fit,
        common,
        help="fit one engine to a data file.",
        epilog_factory=_registry_epilog(FIT_EXAMPLES),
        description="Fit the mixture with one engine; print its summary, and "
        "with --out write a report folder.",
    )
    _add_data_arguments(fit)
    fit.add_argument("--engine", required=True, help="engine name (see below).")
    _add_engine_options(fit)
    _add_report_arguments(fit, "write a report folder here.")

    cmp_ = _subcommand(
        sub,
        "compare",
        run_compare,
        common,
        help="fit several engines to a data file and compare them.",
        epilog_factory=_registry_epilog(COMPARE_EXAMPLES),
        description="Fit several engines to the same data and model, judge "
        "each against a reference, print the table and write a "
        "report.",
    )
    _add_data_arguments(cmp_)
    cmp_.add_argument(
        "--engines", required=True, metavar="A,B,C", help="comma-separated engine names, or 'all'."
    )
    cmp_.add_argument(
        "--reference",
        default="nuts",
        help="the engine the others are judged against (default nuts), or "
        "'exact': every engine graded against the exact posterior by "
        "enumeration (known --obs-sd and K^N <= 2,000,000 only: N <= 20 "
        "at K = 2, 13 at K = 3, 10 at K = 4).",
    )
    _add_engine_options(cmp_)
    cmp_.add_argument("--no-cache", action="store_true", help=NO_CACHE_HELP)
    _add_report_arguments(cmp_, "write the report folder here.")

    _add_choose_k(sub, common)

    _subcommand(
        sub, "engines", run_engines, common, help="list the registered engines and their options."
    )

    bench = _subcommand(
        sub,
        "bench",
        run_bench,
        common,
        help="run the benchmarks (benchmarks/bench_*.py).",
        description="Run every benchmarks/bench_*.py of a source checkout "
        "and write reports/benchmarks/<NAME>.md.",
    )
    bench.add_argument("--quick", action="store_true", help="small settings (a smoke run).")
    bench.add_argument(
        "--only", default=None, metavar="NAME", help="run only the benchmark with this NAME."
    )
    bench.add_argument("--dir", default=None, help=argparse.SUPPRESS)
    bench.add_argument(
        "--out",
        default=None,
        help="where to write the reports (default "
        "reports/benchmarks next to the benchmarks folder).",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 internal failure, 2 bad input,
    130/143 stopped by SIGINT/SIGTERM)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    args.command_line = shlex.join([PROG, *argv])
    ui = UI(args.quiet)
    try:
        with signals_unwind(), quiet_library_logs(args.debug):
            return int(args.func(args, ui))
    except (Exception, KeyboardInterrupt, Signalled) as err:
        return exit_code(err, args.debug)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
