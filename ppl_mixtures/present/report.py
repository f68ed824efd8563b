"""`write_report(comparison, out_dir)`: a report folder a reader can open and reproduce.

The folder holds::

    report.md               headline table, then per dataset: data summary, the model,
                            the comparison tables, figures inline, each fit's settings
    figures/*.png           the figures of ppl_mixtures.present.plots
    results.json            every number in the tables (NaN as null), verdicts, settings
    posteriors/<dataset>/<engine>.nc   each fit's posterior and sample_stats (netCDF)
    posteriors/<dataset>/points.npy    the data the fits saw
    .ppl-mixtures-report    the marker: this folder is a report of ours (JSON: version,
                            command, time)

Everything is written to a temporary folder beside ``out_dir`` (``.OUT.tmp-PID-*``) and
swapped into place in one step at the end, so a failure leaves nothing half-written. An
existing folder is replaced only with ``force=True`` and only when it is a report of ours
(the marker, and nothing but report files); the input data is never inside ``out_dir``.
Temporary folders left by a process that died are removed on the next run.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import errno
import glob
import json
import logging
import os
import platform
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ppl_mixtures.analysis.compare import (
    MEAN_SHIFT_TOL,
    Comparison,
    _fmt_est,
    _khat_cell,
    markdown_table,
    verdict_rules,
)

__all__ = ["MARKER", "ReportConflictError", "ReportStage", "check_out_dir", "clean_stale",
           "foreign_entries", "write_report"]

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
def _data_summary(comparison: Comparison) -> str:
    """Mean, sd, min and max of each feature, in the data's own units and names when the
    comparison knows them (the fits may have seen standardized data)."""
    points = comparison.points
    if comparison.data_transform is not None:
        center, scale = comparison.data_transform
        points = center + scale * points
    names = comparison.feature_names or tuple(f"feature {d}" for d in range(points.shape[1]))
    units = comparison.units
    labels = [name if units is None else
              f"{name} ({units if isinstance(units, str) else units[d]})"
              for d, name in enumerate(names)]
    rows = [[labels[d], f"{col.mean():.3f}", f"{col.std():.3f}", f"{col.min():.3f}",
             f"{col.max():.3f}"] for d, col in enumerate(points.T)]
    head = f"{points.shape[0]} points, {points.shape[1]} feature(s)"
    if comparison.data_transform is not None:
        head += " (in the data's own units; the engines fitted them standardized)"
    return head + ".\n\n" + markdown_table(["", "mean", "sd", "min", "max"], rows)


def _settings_table(comparison: Comparison) -> str:
    rows = []
    for name, fit in comparison.fits.items():
        options = ", ".join(f"{k}={v!r}" for k, v in fit.options.items()) or "(defaults)"
        rows.append([name, fit.engine, options, fit.n_iter if fit.n_iter is not None else "–",
                     {True: "yes", False: "no", None: "–"}[fit.converged]])
    return markdown_table(["fit", "engine", "options (incl. random_seed)", "iterations",
                           "converged"], rows)


#: The headline names the parameter with the largest shift when its label is this short.
_SHORT_PARAMETER = 14


def _shift_cell(row: Mapping[str, Any]) -> str:
    """The max shift in reference sd, with the parameter when it is beyond the tolerance."""
    text = _number(row["max_mean_shift"], 2)
    parameter = row.get("max_shift_parameter")
    if (parameter and len(str(parameter)) <= _SHORT_PARAMETER
            and np.isfinite(row["max_mean_shift"]) and row["max_mean_shift"] > MEAN_SHIFT_TOL):
        text += f" ({parameter})"
    return text


def _evidence_cell(row: Mapping[str, Any]) -> str:
    """log p(x) as estimate ± se, with the flags the fit or compare attached."""
    text = _fmt_est(row["log_evidence"], row["log_evidence_se"])
    flags = row.get("evidence_flags")
    if text != "–" and flags:
        text += f" ({', '.join(flags)})"
    return text


def _headline(comparisons: Mapping[str, Comparison]) -> str:
    has_khat = any(bool((c.engines["family"] == "vi").any()) for c in comparisons.values())
    rows = []
    for dataset, comp in comparisons.items():
        for name, r in comp.engines.iterrows():
            khat = [_khat_cell(r.get("khat", np.nan), r.get("khat_note", ""))
                    if r["family"] == "vi" else "–"] if has_khat else []
            rows.append([dataset, name, r["family"], _seconds(r["total_s"]),
                         _number(r["sd_ratio"], 2), _shift_cell(r),
                         _fmt_est(r["elbo"], r.get("elbo_se", np.nan)), _evidence_cell(r),
                         *khat, r["verdict"]])
        blanks = [""] * (6 + has_khat)
        rows += [[dataset, name, *blanks, f"not applicable: {why}"]
                 for name, why in comp.not_applicable.items()]
    return markdown_table(["dataset", "engine", "family", "time (s)", "sd ratio",
                           "max shift (ref sd)", "ELBO (nats)", "log p(x) estimate (nats)",
                           *(["k-hat"] if has_khat else []), "verdict"], rows)


def _number(value: float, digits: int) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def headline_table(comparisons: Comparison | Mapping[str, Comparison]) -> str:
    """The report's headline table (one row per dataset and engine) as markdown."""
    return _headline(_as_mapping(comparisons))


def _figures(comparison: Comparison, folder: Path, stem: str) -> list[tuple[str, str]]:
    """Write the dataset's figures; return (caption, relative path) pairs."""
    from matplotlib.figure import Figure  # noqa: F401  (matplotlib is needed from here on)

    if comparison.points.shape[1] > 1:
        data_caption = ("One panel per engine: the data, each component's posterior-mean mean, "
                        "the 2-sd posterior ellipse of that mean and the 2-obs_sd ellipse of "
                        "the component")
    else:
        data_caption = ("Histogram of the data with each engine's fitted density, and each "
                        "engine's intervals of the component means below it")
    jobs: list[tuple[str, str, Callable[[], Any]]] = [
        (data_caption, "data", comparison.plot_data),
    ]
    if any(f.elbo is not None and f.elbo.size for f in comparison.fits.values()):
        jobs.append(("ELBO traces (nats)", "elbo", comparison.plot_elbo))
    if (comparison.parameters.query("engine == @comparison.reference")["sd"] > 0).any():
        jobs.append(("Posterior marginals", "marginals", comparison.plot_marginals))
    jobs.append(("Forest plot: 50 % and 89 % intervals, one panel per parameter group",
                 "forest", comparison.plot_forest))
    if comparison.reference_fit.n_draws > 1:
        jobs.append((f"Trace plot of the reference ({comparison.reference}): density and "
                     f"trace per chain, one colour per chain", "trace", comparison.plot_trace))
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
    lines = [f"## {dataset}", "", "### Data", "", _data_summary(comparison), "",
             "### Model", "", "```", comparison.spec.describe(), "```", "",
             f"### Comparison (reference: {comparison.reference})", "",
             comparison.to_markdown(rules=False)]
    cached = [name for name, fit in comparison.fits.items() if fit.extras.get("refcache_hit")]
    if cached:
        which = ", ".join(f"{name} (the reference)" if name == comparison.reference else name
                          for name in cached)
        lines += [f"Loaded from the reference cache, not re-run: {which} "
                  f"(ppl_mixtures.app.refcache: same data, model, engine, options, package "
                  f"versions and source); their build and run times are those of the run "
                  f"that filled the cache.", ""]
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
    parts += ["## Headline", "", _headline(comparisons), "", verdict_rules(), ""]
    parts += [sections[name] for name in comparisons]
    parts += ["## Versions", "", markdown_table(["package", "version"], list(versions.items())),
              "", f"Machine: {platform.platform()}, {os.cpu_count()} CPU(s).", ""]
    (folder / "report.md").write_text("\n".join(parts), encoding="utf-8")
    results = {"title": title, "command": command, "generated": now, "versions": versions,
               "datasets": {name: comp.to_dict() for name, comp in comparisons.items()}}
    (folder / "results.json").write_text(json.dumps(results, indent=1, allow_nan=False),
                                         encoding="utf-8")


# --------------------------------------------------------------------------- the folder
#: Written into every report folder; ``force`` replaces only folders that hold it.
MARKER = ".ppl-mixtures-report"
#: Everything a report folder holds at its top level (anything else is the user's).
REPORT_ENTRIES = frozenset({"report.md", "results.json", "figures", "posteriors", MARKER})
_TMP, _OLD, _NEW = "tmp", "old", "new"
_AT_FDCWD = -100
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2


def _marker_text(command: str | None, state: str) -> str:
    """The marker's JSON: who wrote the folder, when, with which command and process."""
    return json.dumps({"generator": "ppl-mixtures", "version": _versions()["ppl-mixtures"],
                       "command": command, "state": state, "pid": os.getpid(),
                       "host": socket.gethostname(),
                       "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")},
                      indent=1) + "\n"


def _marker(folder: Path) -> dict[str, Any] | None:
    """The folder's marker (a dict), or None when it has none of ours."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(marker, dict) and marker.get("generator") == "ppl-mixtures"
    return marker if ok else None


def _has_marker(folder: Path) -> bool:
    return _marker(folder) is not None


def _is_legacy_report(folder: Path, entries: set[str]) -> bool:
    """A report written before the marker existed: report files only, our results.json."""
    if not {"report.md", "results.json"} <= entries:
        return False
    try:
        results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(results, dict) and {"title", "datasets", "versions"} <= set(results)


def foreign_entries(folder: str | os.PathLike) -> list[str]:
    """What in ``folder`` is not part of a ppl-mixtures report ([] for a report of ours).

    A report of ours holds the :data:`MARKER` file (or, written before it existed, our
    ``results.json``) and nothing at its top level but :data:`REPORT_ENTRIES`. With no
    marker and no report files, every entry is foreign.
    """
    folder = Path(folder)
    entries = {p.name for p in folder.iterdir()}
    extra = sorted(entries - REPORT_ENTRIES)
    if extra:
        return extra
    if _has_marker(folder) or _is_legacy_report(folder, entries):
        return []
    return sorted(entries)


def _protected(out: Path) -> str | None:
    """Why ``out`` may never be a report folder (the cwd, an ancestor of it, home, root)."""
    if out == Path(out.anchor):
        return "the file system's root"
    try:
        if out == Path.home().resolve():
            return "your home folder"
    except RuntimeError:  # no home
        pass
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        return "the current folder" if out == cwd else "a folder holding the current folder"
    return None


def _existing_ancestor(path: Path) -> Path:
    """The nearest ancestor of ``path`` that exists (it may be a file)."""
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path(path.anchor or ".")


def _writable(folder: Path) -> str | None:
    """None when a folder can be created in ``folder``, else the OS's reason."""
    try:
        probe = tempfile.mkdtemp(prefix=".ppl-mixtures-probe-", dir=folder)
    except OSError as err:
        return err.strerror or type(err).__name__
    os.rmdir(probe)
    return None


def check_out_dir(out_dir: str | os.PathLike, force: bool, *, name: str = "out_dir",
                  force_hint: str = "Pass --force (force=True)",
                  inputs: Sequence[str | os.PathLike] = ()) -> None:
    """Raise when a report could not be written to ``out_dir``, before any work is done.

    ``out_dir`` must be a new or empty folder, or with ``force`` a report of ours (see
    :func:`foreign_entries`): ``force`` never replaces a folder holding anything else.
    It may never be, or hold, the current folder, the home folder, the root, or any of
    the ``inputs`` (the data files being read). The folder it goes in must be writable.
    The CLI calls this before fitting (``name="--out"``), so a refusal costs no work.

    Raises
    ------
    FileExistsError
        ``out_dir`` is a file, or holds files (not a report, or no ``force``).
    NotADirectoryError
        A parent of ``out_dir`` is a file.
    ValueError
        ``out_dir`` is (or holds) the current/home/root folder or an input file.
    PermissionError
        The folder cannot be created there.
    """
    out = Path(out_dir)
    full = out.resolve()
    why = _protected(full)
    if why is not None:
        raise ValueError(f"{name}: expected a folder of its own for the report, got "
                         f"{str(out)!r}, which is {why}. Choose a new folder, e.g. "
                         f"{name} report.")
    for given in inputs:
        data = Path(given).resolve()
        if full == data or full in data.parents:
            raise ValueError(f"{name}: expected a folder that does not hold the input data, "
                             f"got {str(out)!r}, which holds {str(given)!r}. Choose a new "
                             f"folder, e.g. {name} {out.name or 'report'}_report.")
    if out.is_symlink():
        raise FileExistsError(f"{name}: expected a folder, got the symbolic link "
                              f"{str(out)!r}. Choose another {name} path.")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{name}: expected a folder, got the file {str(out)!r}. "
                              f"Choose another {name} path.")
    where = _existing_ancestor(out) if not out.exists() else out.parent
    if not where.is_dir():
        raise NotADirectoryError(f"{name}: expected a folder path, got {str(out)!r}, but "
                                 f"{str(where)!r} is a file. Choose another {name} path.")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{name}: expected a new or empty folder, got {str(out)!r} "
                                  f"which already holds files. {force_hint} to replace it, or "
                                  f"choose another {name}.")
        foreign = foreign_entries(out)
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise FileExistsError(f"{name}: expected a ppl-mixtures report folder to replace "
                                  f"(force replaces only those), got {str(out)!r}, which "
                                  f"holds other files ({shown}). Choose another {name}, or "
                                  f"move those files away yourself.")
    reason = _writable(where)
    if reason is not None:
        raise PermissionError(f"{name}: expected a place where the report folder can be "
                              f"created, got {str(out)!r}, but {str(where)!r} refuses "
                              f"({reason}). Choose a folder you can write to.")


# --------------------------------------------------------------------------- temp folders
def _aside_name(out: Path, kind: str) -> str:
    """``.OUT.tmp-PID-`` / ``.OUT.old-PID-``: our temporary folders beside ``out``."""
    return f".{out.name}.{kind}-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        pass
    return True


def clean_stale(out_dir: str | os.PathLike) -> list[Path]:
    """Remove our temporary folders beside ``out_dir`` left by processes that died.

    ``.OUT.tmp-PID-*`` (a report being built) and ``.OUT.old-PID-*`` (a replaced report
    set aside) whose PID is no longer running and which hold our :data:`MARKER` (or are
    empty; a ``.tmp`` marker must also name this host, as a PID means nothing on another
    machine sharing the folder) are removed, except that an ``.old`` folder is moved back
    to ``out_dir`` when ``out_dir`` is missing (the run died between setting the old report
    aside and moving the new one in). Returns the folders removed or restored.
    """
    out = Path(out_dir)
    done: list[Path] = []
    if out.name in ("", ".", ".."):
        return done
    try:
        for kind in (_OLD, _TMP):
            head = f".{out.name}.{kind}-"
            for folder in sorted(out.parent.glob(glob.escape(head) + "*")):
                pid_text = folder.name[len(head):].split("-", 1)[0]
                if not pid_text.isdigit() or _pid_alive(int(pid_text)) or not folder.is_dir() \
                        or folder.is_symlink() or not _stale_and_ours(folder, kind):
                    continue
                if kind == _OLD and not os.path.lexists(out):
                    os.rename(folder, out)
                    logger.warning("restored the report %s left aside by process %s", out,
                                   pid_text)
                else:
                    shutil.rmtree(folder, ignore_errors=True)
                done.append(folder)
    except OSError as err:  # an unreadable parent: check_out_dir says what is wrong
        logger.info("could not look for stale temporary folders beside %s: %s", out, err)
    return done


def _stale_and_ours(folder: Path, kind: str) -> bool:
    """Our marker inside (a ``.tmp`` one written on this host), or an empty folder."""
    marker = _marker(folder)
    if marker is None:
        return not any(folder.iterdir())
    return kind != _TMP or marker.get("host", socket.gethostname()) == socket.gethostname()


# --------------------------------------------------------------------------- the swap
@cache
def _renameat2() -> Callable[..., int] | None:
    """libc's ``renameat2`` (Linux, glibc >= 2.28), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                     ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


def _rename_flags(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(src, dst, flags)``; False when the system cannot do it (then fall back).

    Raises the OSError of a real failure (e.g. FileExistsError for RENAME_NOREPLACE).
    """
    func = _renameat2()
    if func is None:
        return False
    if func(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False  # kernel or file system without this flag
    raise OSError(code, os.strerror(code), str(dst))


def move_new(src: Path, dst: Path) -> None:
    """Move the folder ``src`` to ``dst``, which must not exist (FileExistsError if it does,
    even when it appears in the meantime: RENAME_NOREPLACE where the system has it)."""
    if _rename_flags(src, dst, _RENAME_NOREPLACE):
        return
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "File exists", str(dst))
    os.rename(src, dst)


def exchange(new: Path, out: Path) -> Path:
    """Put the folder ``new`` at ``out`` and return where ``out``'s old content went.

    One atomic ``renameat2(RENAME_EXCHANGE)`` where the system has it (the old folder is
    then at ``new``). Otherwise the old folder is renamed aside (``.OUT.old-PID-*``) and
    ``new`` renamed in; if the second rename fails the old folder is renamed back, and a
    crash between the two leaves it aside, where :func:`clean_stale` restores it.
    """
    if _rename_flags(new, out, _RENAME_EXCHANGE):
        return new
    aside = Path(tempfile.mkdtemp(prefix=_aside_name(out, _OLD), dir=out.parent))
    os.rmdir(aside)  # a free, unique name (mkdtemp's random part) for the rename
    os.rename(out, aside)
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(aside, out)
        raise
    return aside


class ReportConflictError(FileExistsError):
    """The report folder changed while the report was being made; the new report was kept
    elsewhere (``kept``, also named in the message)."""

    def __init__(self, message: str, kept: Path) -> None:
        super().__init__(message)
        self.kept = kept


class ReportStage:
    """A report folder being written: dataset sections first, then :meth:`finish`.

    The folder is built in a temporary folder beside ``out_dir`` (``.OUT.tmp-PID-*``,
    holding the :data:`MARKER`); :meth:`add` renders one dataset's section (figures,
    netCDF posteriors) as soon as its comparison is ready, in the ``executor``'s workers
    when one is given (the demo renders a finished dataset while other fits still run);
    :meth:`finish` writes report.md and results.json and swaps the folder into place in
    one step (see :meth:`finish`). Used as a context manager, a failure (or a signal
    turned into an exception) removes the temporary folder and leaves ``out_dir`` as it
    was. Temporary folders of dead processes are removed first (:func:`clean_stale`).
    :func:`write_report` is the one-call form.

    Parameters
    ----------
    out_dir : str or path-like
    force : bool
        Replace an existing report folder of ours (checked here, before any work, and
        again at the swap); never a folder holding anything else.
    figures : bool
    executor : concurrent.futures.Executor, optional
        Its workers must see the temporary folder (processes on this machine do); the
        comparisons must pickle.
    inputs : sequence of paths
        Data files being read: ``out_dir`` may not be or hold them.
    command : str, optional
        Recorded in the marker.
    name, force_hint : str
        How messages name ``out_dir`` and ``force`` (the CLI: ``"--out"``, ``"Add --force"``).
    """

    def __init__(self, out_dir: str | os.PathLike, *, force: bool = False,
                 figures: bool = True, executor: Any = None,
                 inputs: Sequence[str | os.PathLike] = (), command: str | None = None,
                 name: str = "out_dir", force_hint: str = "Pass --force (force=True)") -> None:
        out = Path(out_dir)
        clean_stale(out)
        check_out_dir(out, force, name=name, force_hint=force_hint, inputs=inputs)
        self.out, self.force, self.figures, self.executor = out, force, figures, executor
        self.name, self._finished = name, False
        self._created = [p for p in reversed(out.absolute().parents) if not p.exists()]
        out.parent.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=_aside_name(out, _TMP), dir=out.parent))
        (self.folder / MARKER).write_text(_marker_text(command, "building"), encoding="utf-8")
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
        """Write report.md and results.json (datasets in ``comparisons``' order), swap the
        folder into place and return ``out_dir``. Datasets not added yet are added now.

        The target is checked again at the swap. Absent: the folder is renamed in (never
        over a folder that appeared meanwhile). Empty, or a report of ours with ``force``:
        exchanged in one atomic step (``renameat2(RENAME_EXCHANGE)`` on Linux; elsewhere
        two renames, the old report restored if the second fails), then the old one is
        removed. Anything else (someone else's files, or a report without ``force``):
        nothing is replaced, the new report is kept as ``OUT.new-DATE-TIME`` beside it and
        :class:`ReportConflictError` says where.
        """
        for name, comp in comparisons.items():
            if name not in self._sections:
                self.add(name, comp)
        sections = {name: value if isinstance(value, str) else value.result()
                    for name, value in self._sections.items()}
        _render(comparisons, sections, self.folder, title=title, command=command)
        (self.folder / MARKER).write_text(_marker_text(command, "complete"), encoding="utf-8")
        self._install()
        self._finished = True
        logger.info("report written to %s", self.out)
        return self.out

    def _target(self) -> str:
        """The target now: "absent", "empty", "report" (ours) or "foreign"."""
        out = self.out
        if not os.path.lexists(out):
            return "absent"
        if out.is_symlink() or not out.is_dir():
            return "foreign"
        if not any(out.iterdir()):
            return "empty"
        return "foreign" if foreign_entries(out) else "report"

    def _install(self) -> None:
        """Swap the finished folder into place (or keep it aside and raise)."""
        state = self._target()
        if state == "absent":
            try:
                move_new(self.folder, self.out)
                return
            except FileExistsError:  # appeared since the check a moment ago
                state = self._target()
        if state == "empty" or (state == "report" and self.force):
            old = exchange(self.folder, self.out)
            shutil.rmtree(old, ignore_errors=True)
            return
        kept = self._keep()
        what = ("a ppl-mixtures report, and force was not given" if state == "report"
                else "not a ppl-mixtures report")
        raise ReportConflictError(
            f"{self.name}: expected to put the report at {str(self.out)!r}, but that folder "
            f"appeared or changed while the report was being made and is {what}; nothing "
            f"was replaced. The new report is kept in {str(kept)!r}: move it where you "
            f"want it.", kept)

    def _keep(self) -> Path:
        """Move the finished folder to a visible ``OUT.new-DATE-TIME`` beside ``out``."""
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = self.out.parent / f"{self.out.name}.{_NEW}-{stamp}"
        for attempt in range(100):
            kept = base if attempt == 0 else base.with_name(f"{base.name}-{attempt}")
            try:
                move_new(self.folder, kept)
            except FileExistsError:
                continue
            self.folder = kept
            self._finished = True  # kept: discard() must not remove it
            return kept
        raise FileExistsError(f"{self.name}: could not find a free name beside "
                              f"{str(self.out)!r} to keep the new report; it is in "
                              f"{str(self.folder)!r}.")

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
        if not self._finished:
            self.discard()


def write_report(comparison: Comparison | Mapping[str, Comparison], out_dir: str | os.PathLike,
                 *, force: bool = False, command: str | None = None,
                 title: str = "ppl-mixtures: one mixture model, many inference engines",
                 figures: bool = True, executor: Any = None,
                 inputs: Sequence[str | os.PathLike] = (), name: str = "out_dir",
                 force_hint: str = "Pass --force (force=True)") -> Path:
    """Write a report folder for one comparison, or several (one section per dataset).

    Parameters
    ----------
    comparison : Comparison or Mapping[str, Comparison]
        One dataset's comparison, or ``{dataset name: Comparison}`` (the demo's form).
    out_dir : str or path-like
        The report folder. Its parent is created if needed.
    force : bool
        Replace an existing report folder of ours (one holding the :data:`MARKER` file
        and report files only). Without it an existing non-empty folder is an error; with
        it a folder holding anything else still is.
    command : str, optional
        The exact command that reproduces the report (shown at the top).
    title : str
        The report's heading.
    figures : bool
        Draw the figures (the slow part); False writes tables and data only.
    executor : concurrent.futures.Executor, optional
        Render the datasets' sections (figures, netCDF posteriors) in its workers, one
        task per dataset (the demo passes its process pool). The comparisons must pickle.
    inputs : sequence of paths
        Data files that were read: ``out_dir`` may not be or hold any of them.
    name, force_hint : str
        How error messages name ``out_dir`` and ``force``.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    FileExistsError
        ``out_dir`` exists and is not empty, and ``force`` is False, or it holds files
        that are not a ppl-mixtures report; :class:`ReportConflictError` when that is
        found only at the final swap (the new report is then kept beside it).
    ValueError, NotADirectoryError, PermissionError
        See :func:`check_out_dir`.
    TypeError
        ``comparison`` is not a Comparison or a mapping of them.
    """
    comparisons = _as_mapping(comparison)
    with ReportStage(out_dir, force=force, figures=figures, executor=executor, inputs=inputs,
                     command=command, name=name, force_hint=force_hint) as stage:
        # the largest datasets first: with an executor they take longest
        for key in sorted(comparisons, key=lambda n: -comparisons[n].points.size):
            stage.add(key, comparisons[key])
        return stage.finish(comparisons, title=title, command=command)
