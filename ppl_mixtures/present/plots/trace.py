"""Per-chain densities and traces of one fit: :func:`plot_trace`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.analysis.summaries import split_parameter
from ppl_mixtures.present.plots.common import (
    FeatureAxes,
    engine_colors,
    labelled_chain_draws,
    new_figure,
    outside_legend,
)
from ppl_mixtures.results import MixtureFit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_trace"]


def plot_trace(
    fit: MixtureFit,
    *,
    title: str | None = None,
    max_parameters: int = 12,
    feature_names: Sequence[str] | None = None,
    units: str | Sequence[str] | None = None,
    data_transform: tuple[Any, Any] | None = None,
) -> Figure:
    """Trace plot of one fit: per parameter entry, each chain's density (left) and trace (right).

    Chains have one colour each (the key is below the panels). Fixed parameters (constant
    draws) are left out; at most ``max_parameters`` entries are drawn (the title says how
    many of how many).
    """
    from matplotlib.lines import Line2D
    from scipy.stats import gaussian_kde

    features = FeatureAxes.resolve(fit.n_features, feature_names, units, data_transform)
    draws = {k: v for k, v in labelled_chain_draws(fit).items() if np.ptp(v) > 0}
    if not draws:
        raise ValueError(
            f"fit: expected draws that vary, got a fit of {fit.engine!r} with "
            f"{fit.n_chains * fit.n_draws} constant draw(s). A trace plot needs "
            f"a sampler's or VI engine's draws."
        )
    labels = list(draws)[:max_parameters]
    fig, axes = new_figure((9.0, 1.25 * len(labels) + 1.6), len(labels), 2, width_ratios=[1.0, 2.2])
    chain_colors = engine_colors([f"chain {c}" for c in range(fit.n_chains)])
    for row, label in zip(axes, labels, strict=True):
        pname, d = split_parameter(label)
        x = features.of_parameter(pname, d, draws[label])  # (n_chains, n_draws)
        grid = np.linspace(x.min(), x.max(), 150)
        for c in range(fit.n_chains):
            color = chain_colors[f"chain {c}"]
            if np.ptp(x[c]) > 0 and x.shape[1] > 2:
                row[0].plot(grid, gaussian_kde(x[c])(grid), color=color, lw=1)
            row[1].plot(np.arange(x.shape[1]), x[c], color=color, lw=0.6, alpha=0.8)
        row[0].set_ylabel(label, fontsize="small")
        row[0].set_yticks([])
        row[1].tick_params(labelsize="small")
        row[0].tick_params(labelsize="small")
    axes[-1, 0].set_xlabel("value (the parameter's units)", fontsize="small")
    axes[-1, 1].set_xlabel("draw", fontsize="small")
    axes[0, 0].set_title("density per chain", fontsize="small")
    axes[0, 1].set_title("trace per chain", fontsize="small")
    handles = [
        Line2D([], [], color=chain_colors[f"chain {c}"], lw=1.5, label=f"chain {c}")
        for c in range(fit.n_chains)
    ]
    outside_legend(fig, handles, ncols=min(len(handles), 8))
    shown = "" if len(labels) == len(draws) else f"; first {len(labels)} of {len(draws)} parameters"
    chains = f"{fit.n_chains} chain{'' if fit.n_chains == 1 else 's'}"
    fig.suptitle(
        title or f"Trace plot: {fit.engine} ({chains} x {fit.n_draws} draws{shown})",
        fontsize="medium",
    )
    return fig
