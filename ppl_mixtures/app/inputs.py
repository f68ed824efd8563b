"""Reading and checking what ``fit`` and ``compare`` are given: the data file, the model,
the engine names and ``--out``. Errors raised here name the flag and say what to try.

Only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from ppl_mixtures.app.errors import UsageError
from ppl_mixtures.app.ui import PROG

__all__ = [
    "check_exact_feasible",
    "check_out",
    "engine_list",
    "input_paths",
    "load_points",
    "spec_from_args",
]


def spec_from_args(args: argparse.Namespace) -> Any:
    """The :class:`MixtureSpec` of the model flags (it checks its own values)."""
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
    return (
        f"{PROG}: warning: --dropna: dropped {dropped} of {dropped + n_kept} rows "
        f"with missing values{where}; {n_kept} kept."
    )


def load_points(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The data, as :func:`datasets.load_table` reads it, and how to show it: ``{"feature_names":
    the chosen columns' names, "data_transform": (center, scale) with --standardize, else
    None}`` (keyword arguments of :func:`compare`). What the loader logged or warned (rows
    dropped by --dropna, ...) is printed on stderr, one line each, even with --quiet."""
    import logging
    import warnings

    from ppl_mixtures import datasets

    if str(args.data).rstrip("/").lower().endswith(".zarr"):
        return _open_zarr(args)

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign, assignment]
    package = logging.getLogger("ppl_mixtures")
    previous, propagate = logging.root.manager.disable, package.propagate
    logging.disable(logging.NOTSET)  # quiet_library_logs turned records off
    package.addHandler(handler)
    package.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            points, names = datasets.load_table(args.data, columns=args.columns, dropna=args.dropna)
    finally:
        package.removeHandler(handler)
        package.propagate = propagate
        logging.disable(previous)
    messages = [r.getMessage() for r in records] + [str(w.message) for w in caught]
    for message in dict.fromkeys(messages):
        print(_loading_note(message, len(points)), file=sys.stderr)
    shown: dict[str, Any] = {"feature_names": names, "data_transform": None}
    if args.standardize:
        points, center, scale = datasets.standardize(points)
        shown["data_transform"] = (center, scale)
    return points, shown


def _open_zarr(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """DATA as a ``.zarr`` store: a lazy dask array (``datasets.readers.open_zarr``); the
    engines that accept chunked data (cavi, em, svi, and advi/fullrank_advi with
    --batch-size) read it chunk by chunk."""
    from ppl_mixtures.datasets.readers import open_zarr

    if args.dropna:
        raise UsageError(
            "--dropna: not available for a .zarr store (rows cannot be dropped without "
            "reading it); a NaN is reported by chunk and row. Drop them when writing the store."
        )
    if args.standardize:
        raise UsageError(
            "--standardize: not available for a .zarr store (it would read the store once "
            "more); standardize when writing the store."
        )
    columns = None
    if args.columns is not None:
        try:
            columns = [int(c) for c in args.columns]
        except (TypeError, ValueError):
            raise UsageError(
                f"--columns: expected 0-based column indices for a .zarr store (it has no "
                f"column names), got {args.columns!r}. Try --columns 0,1."
            ) from None
    points, names = open_zarr(args.data, columns)
    return points, {"feature_names": names, "data_transform": None}


def input_paths(args: argparse.Namespace) -> list[str]:
    """The user's input files (``--out`` may neither be nor hold them)."""
    data = getattr(args, "data", None)
    return [data] if data else []


def check_out(args: argparse.Namespace) -> None:
    """Fail before any fitting when the report folder would be refused at the end (not a
    report of ours, no --force, holds the data or the current folder, not writable)."""
    if args.out is not None:
        from ppl_mixtures.present.report import check_out_dir, clean_stale

        if str(getattr(args, "data", "") or "").rstrip("/").lower().endswith(".zarr"):
            raise UsageError(
                "--out: a report needs the points in memory (its figures and k-hat read "
                "them), got a .zarr store, which stays on disk. Drop --out (the fit's summary "
                "is printed), or fit an in-memory sample (.npy, .csv) for a report."
            )

        clean_stale(args.out)  # what a killed run left (it may have set the old report aside)
        check_out_dir(
            args.out, args.force, name="--out", force_hint="Add --force", inputs=input_paths(args)
        )


def engine_list(text: str) -> list[str]:
    """``--engines``: registered names, comma-separated, or ``all``."""
    from ppl_mixtures.inference.registry import available_engines, get_engine

    if text.strip() == "all":
        return list(available_engines())
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(
            f"--engines: expected comma-separated engine names or 'all', got "
            f"{text!r}. Try --engines nuts,advi,cavi."
        )
    for name in names:
        get_engine(name)  # ValueError listing the valid names
    return list(dict.fromkeys(names))


def check_exact_feasible(points: Any, spec: Any) -> None:
    """``--reference exact``: refuse before fitting what enumeration cannot grade."""
    from ppl_mixtures.analysis.references import learned_covariance_words
    from ppl_mixtures.model.evidence import MAX_ASSIGNMENTS, exact_feasible

    if spec.learned_obs_sd:
        raise ValueError(
            "--reference: 'exact' needs a known obs_sd (the learned precisions do "
            "not integrate out in closed form), got --obs-sd learned. Use "
            "--reference nuts, or a known --obs-sd."
        )
    if spec.learned_covariance:
        raise ValueError(
            f"--reference: 'exact' needs a known covariance (the learned precisions do "
            f"not integrate out in closed form), got {learned_covariance_words(spec)}. "
            f"Use --reference nuts, or a known covariance (covariance='diag' with a known "
            f"--obs-sd, or covariance='full' with a known obs_cov matrix)."
        )
    n_samples, n_components = len(points), spec.n_components
    if not exact_feasible(n_samples, n_components):
        raise ValueError(
            f"--reference: 'exact' enumerates all K^N assignments and needs K^N "
            f"<= {MAX_ASSIGNMENTS:,} (N <= 20 at K = 2, 13 at K = 3, 10 at K = 4), "
            f"got K={n_components}, N={n_samples}. Use --reference nuts, or "
            f"grade on a subset of the rows."
        )
