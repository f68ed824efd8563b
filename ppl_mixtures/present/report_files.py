"""A dataset's files in a report folder: its figures (PNG) and its fits' posteriors (netCDF).

:func:`write_dataset_files` writes them into a report folder being built and returns what
the report's section links to; rendering the section is
:func:`ppl_mixtures.present.report.render_section` (pure).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ppl_mixtures.analysis.comparison import Comparison

__all__ = ["NETCDF_GROUPS", "slug", "write_dataset_files"]

_DEFAULT_NAME = "data"
#: DataTree groups saved for each fit (see _write_posteriors).
NETCDF_GROUPS = ("posterior", "sample_stats")


def slug(name: str) -> str:
    """A file-name-safe form of a dataset or fit name ("data" when nothing is left)."""
    keep = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return keep.strip("_") or _DEFAULT_NAME


def write_dataset_files(
    dataset: str, comparison: Comparison, folder: Path, figures: bool
) -> tuple[list[tuple[str, str]], list[str]]:
    """Write ``dataset``'s figures (when ``figures``) and posteriors into ``folder``.

    Returns
    -------
    figures : list of (caption, path relative to ``folder``)
    posteriors : list of paths relative to ``folder`` (a ``.nc`` file, or a folder of
        netCDF files ending in "/")
    """
    stem = slug(dataset)
    drawn = _figures(comparison, folder, stem) if figures else []
    return drawn, _write_posteriors(comparison, folder, stem)


def _figures(comparison: Comparison, folder: Path, stem: str) -> list[tuple[str, str]]:
    """Write the dataset's figures; return (caption, relative path) pairs."""
    from matplotlib.figure import Figure  # noqa: F401  (matplotlib is needed from here on)

    if comparison.points.shape[1] > 1:
        data_caption = (
            "One panel per engine: the data, each component's posterior-mean mean, "
            "the 2-sd posterior ellipse of that mean and the 2-obs_sd ellipse of "
            "the component"
        )
    else:
        data_caption = (
            "Histogram of the data with each engine's fitted density, and each "
            "engine's intervals of the component means below it"
        )
    jobs: list[tuple[str, str, Callable[[], Any]]] = [
        (data_caption, "data", comparison.plot_data),
    ]
    if any(f.elbo is not None and f.elbo.size for f in comparison.fits.values()):
        jobs.append(("ELBO traces (nats)", "elbo", comparison.plot_elbo))
    if (comparison.parameters.query("engine == @comparison.reference")["sd"] > 0).any():
        jobs.append(("Posterior marginals", "marginals", comparison.plot_marginals))
    jobs.append(
        (
            "Forest plot: 50 % and 89 % intervals, one panel per parameter group",
            "forest",
            comparison.plot_forest,
        )
    )
    if comparison.reference_fit.n_draws > 1:
        jobs.append(
            (
                f"Trace plot of the reference ({comparison.reference}): density and "
                f"trace per chain, one colour per chain",
                "trace",
                comparison.plot_trace,
            )
        )
    jobs.append(
        (
            f"Responsibilities under the reference ({comparison.reference})",
            "responsibilities",
            comparison.plot_responsibilities,
        )
    )
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
        ds = ds.assign_coords(
            {c: ds[c].astype(np.int32) for c in ds.coords if ds[c].dtype == np.int64}
        )
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
        groups = {
            f"/{g}": fit.idata[g].to_dataset() for g in NETCDF_GROUPS if g in fit.idata.children
        }
        written = _write_netcdf(xr.DataTree.from_dict(groups), target / slug(name))
        out.append(f"posteriors/{stem}/{written}")
    return out
