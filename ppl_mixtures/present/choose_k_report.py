"""The report folder of ``ppl-mixtures choose-k``: report.md, results.json and the figure.

The folder is built in a temporary folder and swapped into place in one step by
:class:`~ppl_mixtures.present.report_folder.StagedFolder` (the same machinery as
``compare``'s reports): a failure leaves nothing half-written, and an existing folder is
replaced only with ``force`` and only when it is a report of ours.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ppl_mixtures.analysis.select_k_table import SelectK
from ppl_mixtures.present.report_folder import StagedFolder, package_version

__all__ = ["FIGURE", "render_choose_k", "write_choose_k_report"]

#: The figure's path inside the report folder.
FIGURE = "figures/select_k.png"

_HOUSE_RULES = """\
- Every number is from a converged fit or carries a † with the reason below the table.
- "—" means not computed; the reason is listed (never a silent NaN).
- Bold: each criterion's choice. A criterion with a missing row makes no choice.
- nats: log-evidence and elpd units (higher is better); BIC units: the -2 log-likelihood
  scale of BIC, AIC and ICL (lower is better)."""


def _data_line(result: SelectK, data_label: str, data_transform: Any) -> str:
    scale = "standardized (each column centered, sd 1)" if data_transform is not None else "as read"
    return f"{data_label}: N = {result.n_samples}, {scale}"


def render_choose_k(
    result: SelectK,
    *,
    title: str,
    command: str | None = None,
    data_label: str = "data",
    data_transform: Any = None,
    figure: str | None = FIGURE,
) -> str:
    """report.md's text: the command, data and model, the table, the choices, the notes,
    the figure, the rules and the time per criterion."""
    widest = dataclasses.replace(result.spec, n_components=max(result.ks))
    model = widest.describe().splitlines()[1:]  # the first line states K
    seconds = ", ".join(f"{name} {sec:.1f} s" for name, sec in result.seconds.items())
    parts = [f"# {title}", ""]
    if command:
        parts += ["Reproduce with:", "", f"    {command}", ""]
    parts += [
        f"- Data: {_data_line(result, data_label, data_transform)}",
        f"- K: {', '.join(map(str, result.ks))}",
        f"- Model (K components, K from the table): {'; '.join(model)}",
        f"- ppl-mixtures {package_version()}; wall time per source: {seconds}",
        "",
        "## Every criterion, one row per K",
        "",
        result.to_markdown(),
        "",
    ]
    if figure:
        parts += [
            "## Differences from each criterion's best K",
            "",
            f"![each criterion's difference from its best K]({figure})",
            "",
        ]
    parts += ["## How to read this report", "", _HOUSE_RULES, ""]
    return "\n".join(parts)


def write_choose_k_report(
    result: SelectK,
    out_dir: str | os.PathLike,
    *,
    force: bool = False,
    command: str | None = None,
    title: str = "ppl-mixtures choose-k",
    inputs: Sequence[str | os.PathLike] = (),
    data_label: str = "data",
    data_transform: Any = None,
    name: str = "out_dir",
    force_hint: str = "Pass --force (force=True)",
) -> Path:
    """Write ``out_dir`` with report.md, results.json (:meth:`SelectK.to_dict`) and the
    figure (:func:`~ppl_mixtures.present.plots.plot_select_k`); return ``out_dir``.

    Raises what :class:`~ppl_mixtures.present.report_folder.StagedFolder` raises (an
    existing folder without ``force``, someone else's folder, an input inside it, ...),
    before anything is written.
    """
    from ppl_mixtures.present.plots.select_k import plot_select_k

    staged = StagedFolder(
        out_dir, force=force, inputs=inputs, command=command, name=name, force_hint=force_hint
    )
    try:
        folder = staged.folder
        (folder / "figures").mkdir()
        fig = plot_select_k(result, title=f"{title}: each criterion's difference from its best K")
        fig.savefig(folder / FIGURE, dpi=110)
        text = render_choose_k(
            result,
            title=title,
            command=command,
            data_label=data_label,
            data_transform=data_transform,
        )
        (folder / "report.md").write_text(text, encoding="utf-8")
        document = {"title": title, "command": command, "select_k": result.to_dict()}
        (folder / "results.json").write_text(
            json.dumps(document, indent=1, default=str) + "\n", encoding="utf-8"
        )
        return staged.install(command)
    except BaseException:
        staged.discard()
        raise
