"""`write_report(comparison, out_dir)`: a report folder a reader can open and reproduce.

(About 400 lines: the pure section renderers and the one entry point that writes them.)

The folder holds::

    report.md               headline table, then per dataset: data summary, the model,
                            the comparison tables, figures inline, each fit's settings
    figures/*.png           the figures of ppl_mixtures.present.plots
    results.json            every number in the tables (NaN as null), verdicts, settings
    posteriors/<dataset>/<engine>.nc   each fit's posterior and sample_stats (netCDF)
    posteriors/<dataset>/points.npy    the data the fits saw
    .ppl-mixtures-report    the marker: this folder is a report of ours (JSON: version,
                            command, time)

Rendering is pure (:func:`render_section`, :func:`render_report`,
:func:`results_document`: data in, text out); a dataset's figures and posteriors are
written by :mod:`ppl_mixtures.present.report_files`, and the folder itself (the marker,
the checks before any work, the atomic swap, stale temporary folders) is
:mod:`ppl_mixtures.present.report_folder`: everything is written to a temporary folder
beside ``out_dir`` and swapped into place in one step at the end, so a failure leaves
nothing half-written, and ``force`` replaces only a report of ours.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from ppl_mixtures.analysis.comparison import Comparison, has_dp, rule_groups
from ppl_mixtures.analysis.verdicts import verdict_rules
from ppl_mixtures.present import tables
from ppl_mixtures.present.report_files import slug, write_dataset_files
from ppl_mixtures.present.report_folder import (
    MARKER,
    ReportConflictError,
    StagedFolder,
    check_out_dir,
    clean_stale,
    foreign_entries,
)

__all__ = [
    "MARKER",
    "ReportConflictError",
    "ReportStage",
    "check_out_dir",
    "clean_stale",
    "foreign_entries",
    "headline_table",
    "render_report",
    "render_section",
    "results_document",
    "write_report",
]

logger = logging.getLogger(__name__)

_PACKAGES = ("ppl-mixtures", "numpy", "scipy", "pandas", "pymc", "pytensor", "arviz",
             "arviz-plots", "xarray", "matplotlib", "h5netcdf")  # fmt: skip
_DEFAULT_NAME = "data"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _as_mapping(comparisons: Comparison | Mapping[str, Comparison]) -> dict[str, Comparison]:
    if isinstance(comparisons, Comparison):
        return {comparisons.name or _DEFAULT_NAME: comparisons}
    if not isinstance(comparisons, Mapping) or not comparisons:
        raise TypeError(
            f"comparison: expected a Comparison or a non-empty mapping of dataset "
            f"name -> Comparison, got {type(comparisons).__name__}. Build one with "
            f"ppl_mixtures.compare(fits)."
        )
    for key, value in comparisons.items():
        _check_comparison(key, value)
    return dict(comparisons)


def _check_comparison(dataset: str, comparison: Any) -> None:
    if not isinstance(comparison, Comparison):
        raise TypeError(
            f"comparison[{dataset!r}]: expected a Comparison, got "
            f"{type(comparison).__name__}. Build one with ppl_mixtures.compare(fits)."
        )


def headline_table(comparisons: Comparison | Mapping[str, Comparison]) -> str:
    """The report's headline table (one row per dataset and engine) as markdown."""
    return tables.headline_table(_as_mapping(comparisons))


# --------------------------------------------------------------------------- rendering
def render_section(
    dataset: str,
    comparison: Comparison,
    figures: Sequence[tuple[str, str]],
    posterior_files: Sequence[str],
) -> str:
    """One dataset's section of report.md (pure: no files are read or written).

    Parameters
    ----------
    dataset : str
    comparison : Comparison
    figures : sequence of (caption, relative path)
        The figures written for it (none: no "Figures" heading).
    posterior_files : sequence of str
        The posterior files written for it, relative to the report folder.
    """
    stem = slug(dataset)
    lines = [f"## {dataset}", "", "### Data", "", tables.data_summary(comparison), "",
             "### Model", "", "```", comparison.spec.describe(), "```", "",
             f"### Comparison (reference: {comparison.reference})", "",
             tables.comparison_markdown(comparison, rules=False)]  # fmt: skip
    cached = [name for name, fit in comparison.fits.items() if fit.from_cache]
    if cached:
        which = ", ".join(
            f"{name} (the reference)" if name == comparison.reference else name for name in cached
        )
        lines += [f"Loaded from the reference cache, not re-run: {which} "
                  f"(ppl_mixtures.app.refcache: same data, model, engine, options, package "
                  f"versions and source); their build and run times are those of the run "
                  f"that filled the cache.", ""]  # fmt: skip
    if comparison.not_applicable:
        lines += ["Not applicable to this model:", ""]
        lines += [f"- {name}: {why}" for name, why in comparison.not_applicable.items()]
        lines.append("")
    if figures:
        lines += ["### Figures", ""]
        for caption, rel in figures:
            lines += [f"![{caption}]({rel})", "", f"*{caption}.*", ""]
    lines += ["### Settings of each fit", "", tables.settings_table(comparison), ""]
    lines += ["Posterior draws (netCDF; a `.nc` file opens with `xarray.open_datatree(path)`, "
              "a folder holds one netCDF file per group): "
              + ", ".join(f"[{f.rstrip('/').split('/')[-1]}]({f})" for f in posterior_files)
              + f"; the data: [points.npy](posteriors/{stem}/points.npy).", ""]  # fmt: skip
    return "\n".join(lines)


def render_report(
    comparisons: Mapping[str, Comparison],
    sections: Mapping[str, str],
    *,
    title: str,
    command: str | None,
    versions: Mapping[str, str],
    generated: str,
    machine: str,
) -> str:
    """report.md (pure): the title, how to reproduce it, the headline table and the rules
    once, the sections in ``comparisons``' order, then the versions and the machine."""
    parts = [f"# {title}", "",
             f"Generated {generated} by ppl-mixtures {versions['ppl-mixtures']}.", ""]  # fmt: skip
    if command:
        parts += ["Reproduce with:", "", "```", command, "```", ""]
    parts += ["## Headline", "", tables.headline_table(comparisons), "",
              verdict_rules(groups=rule_groups(comparisons.values()),
                            dp=has_dp(comparisons.values())), ""]  # fmt: skip
    parts += [sections[name] for name in comparisons]
    parts += ["## Versions", "",
              tables.markdown_table(["package", "version"], list(versions.items())), "",
              f"Machine: {machine}.", ""]  # fmt: skip
    return "\n".join(parts)


def results_document(
    comparisons: Mapping[str, Comparison],
    *,
    title: str,
    command: str | None,
    versions: Mapping[str, str],
    generated: str,
) -> dict[str, Any]:
    """results.json's content (pure, JSON-ready: NaN as None): every dataset's numbers."""
    return {"title": title, "command": command, "generated": generated,
            "versions": dict(versions),
            "datasets": {name: comp.to_dict() for name, comp in comparisons.items()}}  # fmt: skip


def _dataset_section(dataset: str, comparison: Comparison, folder: Path, figures: bool) -> str:
    """Write ``dataset``'s files into ``folder`` and return its section (a worker's task)."""
    drawn, posterior_files = write_dataset_files(dataset, comparison, folder, figures)
    return render_section(dataset, comparison, drawn, posterior_files)


def _render(
    comparisons: Mapping[str, Comparison],
    sections: Mapping[str, str],
    folder: Path,
    *,
    title: str,
    command: str | None,
) -> None:
    """Write report.md and results.json into ``folder`` (:func:`render_report` and
    :func:`results_document` with this run's versions, time and machine)."""
    versions = _versions()
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.platform()}, {os.cpu_count()} CPU(s)"
    text = render_report(comparisons, sections, title=title, command=command,
                         versions=versions, generated=now, machine=machine)  # fmt: skip
    (folder / "report.md").write_text(text, encoding="utf-8")
    results = results_document(comparisons, title=title, command=command, versions=versions,
                               generated=now)  # fmt: skip
    (folder / "results.json").write_text(
        json.dumps(results, indent=1, allow_nan=False), encoding="utf-8"
    )


# --------------------------------------------------------------------------- the stage
class ReportStage:
    """A report folder being written: dataset sections first, then :meth:`finish`.

    The folder is built in a temporary folder beside ``out_dir`` (``.OUT.tmp-PID-*``,
    holding the :data:`MARKER`; see :class:`~ppl_mixtures.present.report_folder.StagedFolder`);
    :meth:`add` renders one dataset's section (figures, netCDF posteriors) as soon as its
    comparison is ready, in the ``executor``'s workers when one is given (the demo renders a
    finished dataset while other fits still run); :meth:`finish` writes report.md and
    results.json and swaps the folder into place in one step. Used as a context manager, a
    failure (or a signal turned into an exception) removes the temporary folder and leaves
    ``out_dir`` as it was. Temporary folders of dead processes are removed first
    (:func:`clean_stale`). :func:`write_report` is the one-call form.

    Parameters
    ----------
    out_dir : str or path-like
    force : bool
        Replace an existing report folder of ours (checked here, before any work, and
        again at the swap); never a folder holding anything else.
    figures : bool
    executor : concurrent.futures.Executor, optional
        Its workers must see the temporary folder (processes on this machine do); the
        comparisons must pickle. May also be set later (``stage.executor = pool``).
    inputs : sequence of paths
        Data files being read: ``out_dir`` may not be or hold them.
    command : str, optional
        Recorded in the marker.
    name, force_hint : str
        How messages name ``out_dir`` and ``force`` (the CLI: ``"--out"``, ``"Add --force"``).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        *,
        force: bool = False,
        figures: bool = True,
        executor: Any = None,
        inputs: Sequence[str | os.PathLike] = (),
        command: str | None = None,
        name: str = "out_dir",
        force_hint: str = "Pass --force (force=True)",
    ) -> None:
        self._staged = StagedFolder(
            out_dir, force=force, inputs=inputs, command=command, name=name,
            force_hint=force_hint,
        )  # fmt: skip
        self.out, self.force, self.name = self._staged.out, force, name
        self.figures, self.executor = figures, executor
        self._finished = False
        (self.folder / "figures").mkdir()
        self._sections: dict[str, Any] = {}

    @property
    def folder(self) -> Path:
        """The temporary folder being filled (the kept folder after a conflict)."""
        return self._staged.folder

    def add(self, dataset: str, comparison: Comparison) -> None:
        """Render ``dataset``'s section now (or submit it to the executor)."""
        _check_comparison(dataset, comparison)
        if self.executor is None:
            self._sections[dataset] = _dataset_section(
                dataset, comparison, self.folder, self.figures
            )
        else:
            self._sections[dataset] = self.executor.submit(
                _dataset_section, dataset, comparison, self.folder, self.figures
            )

    def finish(
        self, comparisons: Mapping[str, Comparison], *, title: str, command: str | None = None
    ) -> Path:
        """Write report.md and results.json (datasets in ``comparisons``' order), swap the
        folder into place and return ``out_dir``. Datasets not added yet are added now.

        The target is checked again at the swap
        (:meth:`~ppl_mixtures.present.report_folder.StagedFolder.install`): absent, empty,
        or a report of ours with ``force``, the new folder takes its place in one step;
        anything else is left alone, the new report is kept as ``OUT.new-DATE-TIME``
        beside it and :class:`ReportConflictError` says where.
        """
        for name, comp in comparisons.items():
            if name not in self._sections:
                self.add(name, comp)
        sections = {
            name: value if isinstance(value, str) else value.result()
            for name, value in self._sections.items()
        }
        _render(comparisons, sections, self.folder, title=title, command=command)
        self._staged.install(command)
        self._finished = True
        logger.info("report written to %s", self.out)
        return self.out

    def discard(self) -> None:
        """Cancel pending sections; remove the temporary folder and the parent folders
        this stage created."""
        for value in self._sections.values():
            if not isinstance(value, str):
                value.cancel()
        self._staged.discard()

    def __enter__(self) -> ReportStage:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self._finished:
            self.discard()


def write_report(
    comparison: Comparison | Mapping[str, Comparison],
    out_dir: str | os.PathLike,
    *,
    force: bool = False,
    command: str | None = None,
    title: str = "ppl-mixtures: one mixture model, many inference engines",
    figures: bool = True,
    executor: Any = None,
    inputs: Sequence[str | os.PathLike] = (),
    name: str = "out_dir",
    force_hint: str = "Pass --force (force=True)",
) -> Path:
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
    with ReportStage(
        out_dir,
        force=force,
        figures=figures,
        executor=executor,
        inputs=inputs,
        command=command,
        name=name,
        force_hint=force_hint,
    ) as stage:
        # the largest datasets first: with an executor they take longest
        for key in sorted(comparisons, key=lambda n: -comparisons[n].points.size):
            stage.add(key, comparisons[key])
        return stage.finish(comparisons, title=title, command=command)
