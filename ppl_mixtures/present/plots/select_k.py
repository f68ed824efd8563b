""":func:`plot_select_k`: each criterion's difference from its best K, in one figure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.analysis.select_k_criteria import CRITERIA
from ppl_mixtures.present.plots.common import new_figure, outside_legend

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ppl_mixtures.analysis.select_k_table import SelectK

__all__ = ["plot_select_k"]

_MARKERS = {"elbo": "o", "elbo_logk": "s", "smc": "D", "exact": "*", "loo": "^"}
_MARKERS_BIC = {"bic": "o", "aic": "s", "icl": "D"}
#: Differences within this many units are drawn linearly (symlog axis), so the gaps near
#: the best K stay readable beside the thousands of nats K = 1 loses.
_LINTHRESH = 10.0


def _panel(ax: Any, result: SelectK, names: list[str], colors: dict, markers: dict) -> list:
    """One panel of differences (value - best) per criterion, dodged along K."""
    from matplotlib.lines import Line2D

    ks = np.asarray(result.ks, float)
    handles = []
    width = 0.5 / max(len(names), 1)
    for i, name in enumerate(names):
        if name not in result.differences:
            continue
        x = ks + (i - (len(names) - 1) / 2) * width
        y = result.differences[name].to_numpy(float)
        se = (
            result.difference_se[name].to_numpy(float)
            if name in result.difference_se
            else np.zeros_like(y)
        )
        color, marker = colors[name], markers[name]
        ax.errorbar(
            x, y, yerr=np.where(np.isfinite(se), 2 * se, 0.0), color=color, marker=marker,
            markersize=5, linewidth=1, capsize=3, label=CRITERIA[name].label,
        )  # fmt: skip
        flagged = [j for j, k in enumerate(result.ks) if k in result.flags.get(name, {})]
        if flagged:
            ax.plot(x[flagged], y[flagged], "x", color="black", markersize=9, zorder=4)
        best = result.choices.get(name)
        if best is not None and best in result.ks:
            j = result.ks.index(best)
            ax.plot(x[j], y[j], marker=marker, markersize=13, markerfacecolor="none",
                    markeredgecolor=color, markeredgewidth=2, zorder=5)  # fmt: skip
        handles.append(
            Line2D([], [], color=color, marker=marker, label=f"{CRITERIA[name].label} → K = {best}")
        )
    ax.axhline(0.0, color="grey", linewidth=0.8, zorder=0)
    ax.set_yscale("symlog", linthresh=_LINTHRESH)
    values = result.differences[[n for n in names if n in result.differences]].to_numpy(float)
    values = values[np.isfinite(values)]
    if values.size:  # room beyond the farthest point (a factor 3 on the log part)
        low, high = min(values.min(), -1.0), max(values.max(), 1.0)
        ax.set_ylim(
            low * 3 if low < -_LINTHRESH else low - 3, high * 3 if high > _LINTHRESH else high + 3
        )
    ax.set_xticks(result.ks)
    ax.set_xlabel("number of components K")
    ax.grid(alpha=0.3)
    return handles


def plot_select_k(result: SelectK, *, title: str | None = None) -> Figure:
    """Each criterion's difference from its best K (not raw values), per K.

    Panels: the log-evidence and elpd criteria (value - best, nats: 0 at the choice,
    below it worse), the EM criteria (value - best in BIC units: 0 at the choice, above it
    worse), and the DP's posterior probability of each K. Error bars are ±2 se of the
    difference where there is one (SMC: the two estimates' se combined; LOO: the paired
    se). A large open marker is each criterion's choice; a black x marks a flagged number.
    The y axes are symmetric-log: linear within ±10, logarithmic beyond.

    Parameters
    ----------
    result : SelectK
        What :func:`ppl_mixtures.select_k` returned.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import to_hex
    from matplotlib.lines import Line2D

    from ppl_mixtures.present.plots.common import engine_colors

    nats = [c for c in result.criteria if CRITERIA[c].units == "nats"]
    bic = [c for c in result.criteria if CRITERIA[c].units == "BIC units"]
    dp = "dp" in result.criteria
    panels = [p for p in (nats, bic) if p] + ([["dp"]] if dp else [])
    fig, axes = new_figure((4.4 * len(panels) + 0.6, 4.8), 1, len(panels))
    colors = {name: to_hex(c) for name, c in engine_colors(list(CRITERIA)).items()}
    handles: list[Any] = []
    col = 0
    if nats:
        ax = axes[0, col]
        handles += _panel(ax, result, nats, colors, _MARKERS)
        ax.set_ylabel("value − value at the best K (nats)")
        ax.set_title("log evidence, LOO elpd: higher is better", fontsize="medium")
        col += 1
    if bic:
        ax = axes[0, col]
        handles += _panel(ax, result, bic, colors, _MARKERS_BIC)
        ax.set_ylabel("value − value at the best K (BIC units)")
        ax.set_title("EM BIC, AIC, ICL: lower is better", fontsize="medium")
        col += 1
    if dp:
        ax = axes[0, col]
        mass = result.table["dp"].to_numpy(float)
        ax.bar(result.ks, np.nan_to_num(mass), color=colors["dp"], width=0.6)
        best = result.choices.get("dp")
        if best is not None and best in result.ks:
            ax.bar([best], [mass[result.ks.index(best)]], width=0.6, fill=False,
                   edgecolor="black", linewidth=2)  # fmt: skip
        ax.set_ylim(0, 1.05)
        ax.set_xticks(result.ks)
        ax.set_xlabel("number of occupied components K")
        ax.set_ylabel("posterior probability P(K | x)")
        ax.set_title("truncated DP (CAVI)", fontsize="medium")
        ax.grid(alpha=0.3, axis="y")
        handles.append(Line2D([], [], color=colors["dp"], linewidth=6,
                              label=f"{CRITERIA['dp'].label} → K = {best}"))  # fmt: skip
    handles.append(Line2D([], [], linestyle="", marker="o", markersize=11, markerfacecolor="none",
                          markeredgecolor="black", label="each criterion's choice"))  # fmt: skip
    if any(result.flags.values()):
        handles.append(Line2D([], [], linestyle="", marker="x", color="black",
                              markersize=9, label="flagged (see the table)"))  # fmt: skip
    outside_legend(fig, handles, where="lower center", ncols=min(len(handles), 4))
    fig.suptitle(
        title or f"Choosing K: each criterion's difference from its best K (N = {result.n_samples})"
    )
    return fig
