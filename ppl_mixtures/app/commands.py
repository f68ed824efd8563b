"""The ``fit``, ``compare``, ``choose-k`` and ``engines`` commands (``demo``: :mod:`.demo`; ``bench``:
:mod:`.bench`). Each takes the parsed arguments and the :class:`UI` and returns the exit
code; the input is read and checked first, under :func:`input_checks` (exit 2).

Only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ppl_mixtures.app import runner
from ppl_mixtures.app.demo import QUICK_OPTIONS
from ppl_mixtures.app.errors import UsageError, input_checks
from ppl_mixtures.app.inputs import (
    check_exact_feasible,
    check_out,
    engine_list,
    input_paths,
    load_points,
    spec_from_args,
)
from ppl_mixtures.app.options import check_known_options, engine_help, engine_options
from ppl_mixtures.app.ui import UI

__all__ = ["FLAGS", "cli_options", "run_choose_k", "run_compare", "run_engines", "run_fit"]

#: The engine options with a flag of their own (any other comes from ``--option``).
FLAGS = {
    "draws": "--draws",
    "tune": "--tune",
    "chains": "--chains",
    "n_iter": "--n-iter",
    "max_iter": "--max-iter",
    "batch_size": "--batch-size",
    "random_seed": "--random-seed",
}


def cli_options(args: argparse.Namespace) -> dict[str, Any]:
    """The engine options the user gave: the dedicated flags, then ``--option`` pairs."""
    options = {n: getattr(args, n) for n in FLAGS if getattr(args, n, None) is not None}
    options.update(dict(getattr(args, "option", []) or []))
    return options


def _write(comparison: Any, args: argparse.Namespace, title: str) -> None:
    from ppl_mixtures.present.report import write_report

    write_report(
        comparison,
        args.out,
        force=args.force,
        command=args.command_line,
        title=title,
        inputs=input_paths(args),
        name="--out",
        force_hint="Add --force",
    )


def run_fit(args: argparse.Namespace, ui: UI) -> int:
    """``fit``: one engine; its summary, and with ``--out`` a report folder."""
    from ppl_mixtures.inference.registry import get_engine
    from ppl_mixtures.validation import check_engine_options

    with input_checks():
        check_out(args)
        engine = get_engine(args.engine)
        base = QUICK_OPTIONS.get(args.engine, {}) if args.quick else {}
        options = engine_options(engine, base, cli_options(args), strict=True)
        check_engine_options(args.engine, engine.options or engine.fit, options)
        points, shown = load_points(args)
        spec = spec_from_args(args)
    label = Path(args.data).name
    work = runner.Work(label, points, spec, [(args.engine, options)], reference=args.engine)
    fits, _ = runner.run_serial(work, ui)
    ui.result(str(fits[args.engine]))
    if not args.out and shown["data_transform"] is None:
        return 0
    from ppl_mixtures.analysis.compare import compare

    # one comparison serves both the table and the report (k-hat only for the report)
    comparison = compare(
        fits,
        reference=args.engine,
        name=Path(args.data).stem,
        khat="auto" if args.out else False,
        **shown,
    )
    if shown["data_transform"] is not None:  # the numbers above are in standardized units
        ui.result(comparison.parameter_table_markdown())
    if args.out:
        _write(comparison, args, title=f"ppl-mixtures fit: {args.engine} on {label}")
        ui.note(f"report written to {args.out}/report.md")
    return 0


def run_compare(args: argparse.Namespace, ui: UI) -> int:
    """``compare``: several engines judged against a reference; the table, and a report."""
    from ppl_mixtures.analysis.compare import compare
    from ppl_mixtures.inference.registry import get_engine

    with input_checks():
        check_out(args)
        names = engine_list(args.engines)
        if args.reference not in names and args.reference != "exact":
            raise UsageError(
                f"--reference: expected one of the engines to run "
                f"({', '.join(names)}) or 'exact', got {args.reference!r}. Add "
                f"it to --engines or pick another --reference."
            )
        requested = cli_options(args)
        check_known_options(names, requested, FLAGS)
        plan = []
        for name in names:
            base = QUICK_OPTIONS.get(name, {}) if args.quick else {}
            # non-strict: each engine gets the options it takes (checked above: each is
            # taken by at least one)
            plan.append((name, engine_options(get_engine(name), base, requested, strict=False)))
        points, shown = load_points(args)
        spec = spec_from_args(args)
        if args.reference == "exact":
            check_exact_feasible(points, spec)
    label = Path(args.data).name
    cached = () if args.no_cache else (args.reference,)
    work = runner.Work(label, points, spec, plan, reference=args.reference, cached=cached)
    fits, not_applicable = runner.run_serial(work, ui)
    if not fits:
        raise UsageError(
            f"--engines: none of {', '.join(names)} could fit this model "
            f"({'; '.join(f'{k}: {v}' for k, v in not_applicable.items())}). "
            f"Pick other --engines."
        )
    comparison = compare(
        fits,
        reference=args.reference,
        not_applicable=not_applicable,
        name=Path(args.data).stem,
        **shown,
    )
    ui.result(comparison.to_markdown())
    if args.out:
        with ui.status("writing the report ..."):
            _write(comparison, args, title=f"ppl-mixtures compare: {label}")
        ui.note(f"report written to {args.out}/report.md")
    return 0


def _choose_k_spec(args: argparse.Namespace) -> Any:
    """The base spec of ``choose-k`` (its n_components is replaced by each K)."""
    from ppl_mixtures.model.spec import MixtureSpec

    if args.covariance != "diag" and args.obs_sd is not None:
        raise UsageError(
            f"--obs-sd: expected it only with --covariance diag, got --obs-sd {args.obs_sd} "
            f"with --covariance {args.covariance} (whose covariances are learned). Drop "
            f"--obs-sd, or use --covariance diag."
        )
    kwargs: dict[str, Any] = {"n_components": 1, "ordered": args.ordered}
    for name in ("mean_prior_sd", "dirichlet_alpha", "obs_sd"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    if args.fixed_weights:
        kwargs["weights"] = "fixed"
    kwargs["covariance"] = args.covariance
    if args.covariance == "full":
        kwargs["obs_cov"] = "learned"
    return MixtureSpec(**kwargs)


def _criteria(text: str | None) -> Any:
    """``--criteria``: comma-separated names, 'all', or the defaults."""
    from ppl_mixtures.analysis.select_k import CRITERIA, DEFAULT_CRITERIA

    if text is None:
        return DEFAULT_CRITERIA
    if text.strip() == "all":
        return "all"
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CRITERIA]
    if not names or unknown:
        raise UsageError(
            f"--criteria: expected comma-separated names among {', '.join(CRITERIA)} or "
            f"'all', got {text!r}. Try --criteria elbo,bic,dp."
        )
    return names


def run_choose_k(args: argparse.Namespace, ui: UI) -> int:
    """``choose-k``: every criterion for K; the table, each choice, and a report."""
    from ppl_mixtures.analysis.select_k import select_k

    with input_checks():
        if str(args.data).rstrip("/").lower().endswith(".zarr"):
            raise UsageError(
                f"DATA: choose-k needs the points in memory (the exact, DP and sampler "
                f"criteria read them), got the .zarr store {args.data!r}. Pass a .npy or "
                f".csv file (a sample of the store, for large data)."
            )
        check_out(args)
        criteria = _criteria(args.criteria)
        points, shown = load_points(args)
        spec = _choose_k_spec(args)
        if max(args.ks) > len(points):
            raise UsageError(
                f"--ks: expected every K at most the number of rows N = {len(points)}, got "
                f"{max(args.ks)}. Use a smaller --ks, or more data."
            )
        spec.check_features(points.shape[1])
        if args.dp_truncation is not None and not max(args.ks) <= args.dp_truncation <= len(points):
            raise UsageError(
                f"--dp-truncation: expected a number from the largest K ({max(args.ks)}) to "
                f"the number of rows ({len(points)}), got {args.dp_truncation}. Drop it for "
                f"the default (the largest K + 4, at most the rows)."
            )
    quick = {"nuts_options": QUICK_OPTIONS["nuts"], "smc_options": QUICK_OPTIONS["smc"]}
    label = Path(args.data).name
    with input_checks():  # select_k's own checks of the options (dp truncation ...)
        call = _select_k_call(select_k, points, spec, args, criteria, quick if args.quick else {})
    with ui.status(f"[{label}] fitting K = {', '.join(map(str, args.ks))} ..."):
        result = call()
    ui.result(result.to_markdown())
    if args.out:
        from ppl_mixtures.present.choose_k_report import write_choose_k_report

        with ui.status("writing the report ..."):
            write_choose_k_report(
                result,
                args.out,
                force=args.force,
                command=args.command_line,
                title=f"ppl-mixtures choose-k: {label}",
                inputs=input_paths(args),
                data_label=f"{label} (columns {', '.join(map(str, shown['feature_names']))})",
                data_transform=shown["data_transform"],
                name="--out",
                force_hint="Add --force",
            )
        ui.note(f"report written to {args.out}/report.md")
    return 0


def _select_k_call(
    select_k: Any, points: Any, spec: Any, args: argparse.Namespace, criteria: Any, extra: dict
) -> Any:
    """select_k's argument checks now (exit 2), the fits when the returned call runs."""
    from functools import partial

    call = partial(
        select_k,
        points,
        spec,
        args.ks,
        criteria=criteria,
        random_seed=args.random_seed,
        progressbar=False,
        dp_truncation=args.dp_truncation,
        **extra,
    )
    # the same checks select_k makes before fitting, run on no K at all
    from ppl_mixtures.analysis.select_k import check_arguments

    check_arguments(points, spec, args.ks, criteria, args.dp_truncation)
    return call


def run_engines(args: argparse.Namespace, ui: UI) -> int:
    """``engines``: every registered engine, its family and summary, and its options."""
    ui.result(engine_help())
    return 0
