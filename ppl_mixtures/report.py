"""`write_report(comparison, out_dir)`: a report folder a reader can open and reproduce.

The folder holds::

    report.md               headline table, then per dataset: data summary, the model,
                            the comparison tables, figures inline, each fit's settings
    figures/*.png           the figures of ppl_mixtures.plots
    results.json            every number in the tables (NaN as null), verdicts, settings
    posteriors/<dataset>/<engine>.nc   each fit's posterior and sample_stats (netCDF)
    posteriors/<dataset>/points.npy    the data the fits saw

Everything is written to a temporary folder beside ``out_dir`` and moved into place at
the end, so a failure leaves nothing half-written, and an existing report is replaced only
with ``force=True``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .compare import (
    LABEL_SWITCH_FRACTION,
    MEAN_SHIFT_TOL,
    RHAT_TOL,
    SD_RATIO_TOL,
    Comparison,
    markdown_table,
)

__all__ = ["ReportStage", "write_report"]

logger = logging.getLogger(__name__)

_PACKAGES = ("ppl-mixtures", "numpy", "scipy", "pandas", "pymc", "pytensor", "arviz",
             "arviz-plots", "xarray", "matplotlib", "h5netcdf")
_DEFAULT_NAME = "data"
#: DataTree groups saved for each fit (see _write_posteriors).
NETCDF_GROUPS = ("posterior", "sample_stats")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _slug(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return keep.strip("_") or _DEFAULT_NAME


def _as_mapping(comparisons: Comparison | Mapping[str, Comparison]) -> dict[str, Comparison]:
    if isinstance(comparisons, Comparison):
        return {comparisons.name or _DEFAULT_NAME: comparisons}
    if not isinstance(comparisons, Mapping) or not comparisons:
        raise TypeError(f"comparison: expected a Comparison or a non-empty mapping of dataset "
                        f"name -> Comparison, got {type(comparisons).__name__}. Build one with "
                        f"ppl_mixtures.compare(fits).")
    for key, value in comparisons.items():
        if not isinstance(value, Comparison):
            raise TypeError(f"comparison[{key!r}]: expected a Comparison, got "
                            f"{type(value).__name__}. Build one with ppl_mixtures.compare(fits).")
    return dict(comparisons)


# --------------------------------------------------------------------------- pieces
def _data_summary(points: np.ndarray) -> str:
    rows = [[f"feature {d}", f"{col.mean():.3f}", f"{col.std():.3f}", f"{col.min():.3f}",
             f"{col.max():.3f}"] for d, col in enumerate(points.T)]
    head = f"{points.shape[0]} points, {points.shape[1]} feature(s).\n\n"
    return head + markdown_table(["", "mean", "sd", "min", "max"], rows)


def _settings_table(comparison: Comparison) -> str:
    rows = []
    for name, fit in comparison.fits.items():
        options = ", ".join(f"{k}={v!r}" for k, v in fit.options.items()) or "(defaults)"
        rows.append([name, fit.engine, options, fit.n_iter if fit.n_iter is not None else "–",
                     {True: "yes", False: "no", None: "–"}[fit.converged]])
    return markdown_table(["fit", "engine", "options (incl. random_seed)", "iterations",
                           "converged"], rows)


def _headline(comparisons: Mapping[str, Comparison]) -> str:
    rows = []
    for dataset, comp in comparisons.items():
        for name, r in comp.engines.iterrows():
            rows.append([dataset, name, r["family"], _seconds(r["total_s"]),
                         _number(r["sd_ratio"], 2), _number(r["max_mean_shift"], 2),
                         _number(r["elbo"], 1), _number(r["log_evidence"], 1), r["verdict"]])
        rows += [[dataset, name, "", "", "", "", "", "", f"not applicable: {why}"]
                 for name, why in comp.not_applicable.items()]
    return markdown_table(["dataset", "engine", "family", "time (s)", "sd ratio",
                           "max shift (ref sd)", "ELBO (nats)", "log p(x) (nats)", "verdict"],
                          rows)


def _number(value: float, digits: int) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def headline_table(comparisons: Comparison | Mapping[str, Comparison]) -> str:
    """The report's headline table (one row per dataset and engine) as markdown."""
    return _headline(_as_mapping(comparisons))


def _verdict_rules() -> str:
    return (f"Verdicts compare each engine with the reference: \"too narrow/wide by r x\" when "
            f"the geometric-mean sd ratio leaves [1/{SD_RATIO_TOL}, {SD_RATIO_TOL}]; "
            f"\"means off by s reference sd\" when a posterior mean is more than "
            f"{MEAN_SHIFT_TOL} reference sd from the reference's; \"label-switched\" when "
            f">= {LABEL_SWITCH_FRACTION:.0%} of the draws had to be relabeled; \"chains "
            f"disagree\" when R-hat > {RHAT_TOL}. Components are aligned to the reference "
            f"before anything is compared.")


def _figures(comparison: Comparison, folder: Path, stem: str) -> list[tuple[str, str]]:
    """Write the dataset's figures; return (caption, relative path) pairs."""
    from matplotlib.figure import Figure  # noqa: F401  (matplotlib is needed from here on)

    jobs: list[tuple[str, str, Callable[[], Any]]] = [
        ("Data with each engine's component means and 1-/2-sd ellipses", "data",
         comparison.plot_data),
    ]
    if any(f.elbo is not None and f.elbo.size for f in comparison.fits.values()):
        jobs.append(("ELBO traces (nats)", "elbo", comparison.plot_elbo))
    if (comparison.parameters.query("engine == @comparison.reference")["sd"] > 0).any():
        jobs.append(("Posterior marginals", "marginals", comparison.plot_marginals))
    jobs.append(("Forest plot (arviz-plots)", "forest", comparison.plot_forest))
    if comparison.reference_fit.n_draws > 1:
        jobs.append((f"Trace plot of the reference ({comparison.reference})", "trace",
                     comparison.plot_trace))
    jobs.append((f"Responsibilities under the reference ({comparison.reference})",
                 "responsibilities", comparison.plot_responsibilities))
    out = []
    for caption, kind, make in jobs:
        fig = make()
        rel = f"figures/{stem}_{kind}.png"
        fig.savefig(folder / rel, dpi=90)
        out.append((caption, rel))
    return out


def _netcdf_ready(tree: Any) -> Any:
    """A copy of a DataTree that netCDF can store (object arrays and odd attrs removed)."""
    import xarray as xr

    def clean_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
        ok = {}
        for key, val in attrs.items():
            if isinstance(val, str | int | float | np.number) and not isinstance(val, bool):
                ok[key] = val
            elif isinstance(val, bool | np.bool_):
                ok[key] = int(val)
            else:
                ok[key] = repr(val)
        return ok

    nodes = {}
    for node in tree.subtree:
        ds = node.to_dataset()
        dropped = [n for n, var in ds.variables.items() if var.dtype == object]
        ds = ds.drop_vars(dropped)
        ds.attrs = clean_attrs(ds.attrs)
        if dropped:
            ds.attrs["dropped_object_variables"] = ", ".join(map(str, dropped))
        for name in ds.variables:
            ds[name].attrs = clean_attrs(ds[name].attrs)
        nodes[node.path] = ds
    return xr.DataTree.from_dict(nodes)


def _write_netcdf(tree: Any, path: Path) -> str:
    """One fit's DataTree as netCDF; returns the path written, relative to the report.

    netCDF4 (one file with a group per DataTree node) needs h5py under h5netcdf; when it
    is missing, each group is written as its own netCDF3 file (scipy) in a folder instead.
    """
    ready = _netcdf_ready(tree)
    try:
        ready.to_netcdf(path.with_suffix(".nc"), engine="h5netcdf")
        return path.with_suffix(".nc").name
    except ImportError:
        path.with_suffix(".nc").unlink(missing_ok=True)
    path.mkdir()
    for node in ready.subtree:
        if node.is_root and not node.to_dataset().variables:
            continue
        ds = node.to_dataset()
        for name, var in ds.variables.items():  # netCDF3 has no int64
            if var.dtype == np.int64:
                ds[name] = var.astype(np.int32) if name not in ds.coords else var
        ds = ds.assign_coords({c: ds[c].astype(np.int32) for c in ds.coords
                               if ds[c].dtype == np.int64})
        ds.to_netcdf(path / f"{node.name or 'root'}.nc", engine="scipy")
    return path.name + "/"


def _write_posteriors(comparison: Comparison, folder: Path, stem: str) -> list[str]:
    """Each fit's ``NETCDF_GROUPS`` as netCDF, and the data once as ``points.npy``.

    The pointwise log-likelihood (chain x draw x obs: 800 MB for 1000 draws of 1e5 points)
    and per-fit copies of the data are left out; ``diagnostics.add_log_likelihood``
    recomputes the former from the posterior and the points.
    """
    import xarray as xr

    out = []
    target = folder / "posteriors" / stem
    target.mkdir(parents=True, exist_ok=True)
    np.save(target / "points.npy", comparison.points)
    for name, fit in comparison.fits.items():
        groups = {f"/{g}": fit.idata[g].to_dataset() for g in NETCDF_GROUPS
                  if g in fit.idata.children}
        written = _write_netcdf(xr.DataTree.from_dict(groups), target / _slug(name))
        out.append(f"posteriors/{stem}/{written}")
    return out


def _dataset_section(dataset: str, comparison: Comparison, folder: Path, figures: bool) -> str:
    stem = _slug(dataset)
    lines = [f"## {dataset}", "", "### Data", "", _data_summary(comparison.points), "",
             "### Model", "", "```", comparison.spec.describe(), "```", "",
             f"### Comparison (reference: {comparison.reference})", "",
             comparison.to_markdown()]
    if comparison.log_evidence is not None:
        lines += [f"Known log evidence log p(x) = {comparison.log_evidence:.3f} nats.", ""]
    if comparison.not_applicable:
        lines += ["Not applicable to this model:", ""]
        lines += [f"- {name}: {why}" for name, why in comparison.not_applicable.items()]
        lines.append("")
    if figures:
        lines += ["### Figures", ""]
        for caption, rel in _figures(comparison, folder, stem):
            lines += [f"![{caption}]({rel})", "", f"*{caption}.*", ""]
    lines += ["### Settings of each fit", "", _settings_table(comparison), ""]
    files = _write_posteriors(comparison, folder, stem)
    lines += ["Posterior draws (netCDF; a `.nc` file opens with `xarray.open_datatree(path)`, "
              "a folder holds one netCDF file per group): "
              + ", ".join(f"[{f.rstrip('/').split('/')[-1]}]({f})" for f in files)
              + f"; the data: [points.npy](posteriors/{stem}/points.npy).", ""]
    return "\n".join(lines)


def _render(comparisons: Mapping[str, Comparison], sections: Mapping[str, str],
            folder: Path, *, title: str, command: str | None) -> None:
    """report.md (the sections in ``comparisons``' order) and results.json into ``folder``."""
    versions = _versions()
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"# {title}", "",
             f"Generated {now} by ppl-mixtures {versions['ppl-mixtures']}.", ""]
    if command:
        parts += ["Reproduce with:", "", "```", command, "```", ""]
    parts += ["## Headline", "", _headline(comparisons), "", _verdict_rules(), ""]
    parts += [sections[name] for name in comparisons]
    parts += ["## Versions", "", markdown_table(["package", "version"], list(versions.items())),
              "", f"Machine: {platform.platform()}, {os.cpu_count()} CPU(s).", ""]
    (folder / "report.md").write_text("\n".join(parts), encoding="utf-8")
    results = {"title": title, "command": command, "generated": now, "versions": versions,
               "datasets": {name: comp.to_dict() for name, comp in comparisons.items()}}
    (folder / "results.json").write_text(json.dumps(results, indent=1, allow_nan=False),
                                         encoding="utf-8")


def check_out_dir(out_dir: str | os.PathLike, force: bool, *, name: str = "out_dir",
                  force_hint: str = "Pass --force (force=True)") -> None:
    """Raise FileExistsError when a report could not be written to ``out_dir``.

    ``out_dir`` must be a new folder, or an empty one, or any folder when ``force``. The
    CLI calls this before fitting (``name="--out"``), so a refusal costs no work.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{name}: expected a folder, got the file {str(out)!r}. "
                              f"Choose another --out path.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{name}: expected a new or empty folder, got {str(out)!r} "
                              f"which already holds files. {force_hint} to replace it, or "
                              f"choose another --out.")


class ReportStage:
    """A report folder being written: dataset sections first, then :meth:`finish`.

    The folder is built in a temporary folder beside ``out_dir``; :meth:`add` renders one
    dataset's section (figures, netCDF posteriors) as soon as its comparison is ready,
    in the ``executor``'s workers when one is given (the demo renders a finished dataset
    while other fits still run); :meth:`finish` writes report.md and results.json and
    moves the folder into place. Used as a context manager, a failure removes the
    temporary folder and leaves ``out_dir`` as it was. :func:`write_report` is the
    one-call form.

    Parameters
    ----------
    out_dir : str or path-like
    force : bool
        Replace an existing non-empty folder (checked here, before any work).
    figures : bool
    executor : concurrent.futures.Executor, optional
        Its workers must see the temporary folder (processes on this machine do); the
        comparisons must pickle.
    """

    def __init__(self, out_dir: str | os.PathLike, *, force: bool = False,
                 figures: bool = True, executor: Any = None) -> None:
        out = Path(out_dir)
        check_out_dir(out, force)
        self.out, self.figures, self.executor = out, figures, executor
        self._created = [p for p in reversed(out.absolute().parents) if not p.exists()]
        out.parent.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        (self.folder / "figures").mkdir()
        self._sections: dict[str, Any] = {}

    def add(self, dataset: str, comparison: Comparison) -> None:
        """Render ``dataset``'s section now (or submit it to the executor)."""
        if not isinstance(comparison, Comparison):
            raise TypeError(f"comparison[{dataset!r}]: expected a Comparison, got "
                            f"{type(comparison).__name__}. Build one with "
                            f"ppl_mixtures.compare(fits).")
        if self.executor is None:
            self._sections[dataset] = _dataset_section(dataset, comparison, self.folder,
                                                       self.figures)
        else:
            self._sections[dataset] = self.executor.submit(
                _dataset_section, dataset, comparison, self.folder, self.figures)

    def finish(self, comparisons: Mapping[str, Comparison], *, title: str,
               command: str | None = None) -> Path:
        """Write report.md and results.json (datasets in ``comparisons``' order), move the
        folder into place and return ``out_dir``. Datasets not added yet are added now."""
        for name, comp in comparisons.items():
            if name not in self._sections:
                self.add(name, comp)
        sections = {name: value if isinstance(value, str) else value.result()
                    for name, value in self._sections.items()}
        _render(comparisons, sections, self.folder, title=title, command=command)
        out = self.out
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / "report")
            os.replace(self.folder, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.folder, out)
        logger.info("report written to %s", out)
        return out

    def discard(self) -> None:
        """Remove the temporary folder and the parent folders this stage created."""
        for value in self._sections.values():
            if not isinstance(value, str):
                value.cancel()
        shutil.rmtree(self.folder, ignore_errors=True)
        for parent in reversed(self._created):  # deepest first
            try:
                parent.rmdir()
            except OSError:
                break

    def __enter__(self) -> ReportStage:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.discard()


def write_report(comparison: Comparison | Mapping[str, Comparison], out_dir: str | os.PathLike,
                 *, force: bool = False, command: str | None = None,
                 title: str = "ppl-mixtures: one mixture model, many inference engines",
                 figures: bool = True, executor: Any = None) -> Path:
    """Write a report folder for one comparison, or several (one section per dataset).

    Parameters
    ----------
    comparison : Comparison or Mapping[str, Comparison]
        One dataset's comparison, or ``{dataset name: Comparison}`` (the demo's form).
    out_dir : str or path-like
        The report folder. Its parent is created if needed.
    force : bool
        Replace an existing folder. Without it an existing non-empty folder is an error.
    command : str, optional
        The exact command that reproduces the report (shown at the top).
    title : str
        The report's heading.
    figures : bool
        Draw the figures (the slow part); False writes tables and data only.
    executor : concurrent.futures.Executor, optional
        Render the datasets' sections (figures, netCDF posteriors) in its workers, one
        task per dataset (the demo passes its process pool). The comparisons must pickle.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    FileExistsError
        ``out_dir`` exists and is not empty, and ``force`` is False.
    TypeError
        ``comparison`` is not a Comparison or a mapping of them.
    """
    comparisons = _as_mapping(comparison)
    with ReportStage(out_dir, force=force, figures=figures, executor=executor) as stage:
        # the largest datasets first: with an executor they take longest
        for name in sorted(comparisons, key=lambda n: -comparisons[n].points.size):
            stage.add(name, comparisons[name])
        return stage.finish(comparisons, title=title, command=command)
