"""ELBO traces of the variational engines, with log p(x) and each final ELBO: :func:`plot_elbo`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.present.plots.common import (
    FeatureAxes,
    dataset_title,
    engine_colors,
    new_figure,
    outside_legend,
)
from ppl_mixtures.present.tables import fmt_estimate

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ppl_mixtures.analysis.compare import Comparison

__all__ = ["plot_elbo"]


def _running_mean(trace: np.ndarray) -> tuple[np.ndarray, bool]:
    """Smooth a noisy (minibatch / Monte Carlo) trace; returns (trace, smoothed?)."""
    if trace.size < 20:
        return trace, False
    decreases = np.mean(np.diff(trace) < 0)
    if decreases < 0.2:  # a coordinate-ascent trace: monotone, show as is
        return trace, False
    window = max(10, trace.size // 30)
    kernel = np.ones(window) / window
    smooth = np.convolve(trace, kernel, mode="valid")
    return np.concatenate([np.full(window - 1, np.nan), smooth]), True


def plot_elbo(
    comparison: Comparison,
    *,
    feature_names: Sequence[str] | None = None,
    units: str | Sequence[str] | None = None,
    data_transform: tuple[Any, Any] | None = None,
) -> Figure:
    """ELBO traces of every fit that has one, on one axis, in nats.

    Noisy traces (stochastic engines: more than 20 % of steps go down) are Monte Carlo or
    minibatch *estimates* of the ELBO and are shown as a running mean over 1/30 of the
    run (at least 10 steps); each engine's exact (or precise) final ELBO,
    ``fit.elbo_estimate.value``, is a dot at its last step. The log evidence log p(x)
    (``comparison.log_evidence``; labelled an estimate with its se, e.g. SMC's, unless it
    is exact or given) is a horizontal line: every true ELBO lies below it (the
    gap is KL(q || posterior)), but a noisy estimate, and its running mean, can stray
    above it (the legend says so when one does). The x axis is logarithmic, so a 30-step
    CAVI run and a 20,000-step ADVI run can be read together; the y range covers the last
    80 % of every engine's trace, so each engine stays in view.

    ``feature_names``, ``units`` and ``data_transform`` are checked like everywhere else
    (so one set of options can be passed to every figure) but the ELBO has no feature axis.

    Raises
    ------
    ValueError
        When no fit has an ELBO trace.
    """
    FeatureAxes.resolve(
        comparison.points.shape[1], feature_names, units, data_transform, comparison
    )
    traces = {
        name: fit.elbo
        for name, fit in comparison.fits.items()
        if fit.elbo is not None and fit.elbo.size
    }
    if not traces:
        raise ValueError(
            f"comparison: expected at least one fit with an ELBO trace, got "
            f"none among {', '.join(comparison.fits)}. Add a VI engine "
            f"(e.g. 'cavi' or 'advi')."
        )
    from matplotlib.lines import Line2D

    colors = engine_colors(list(comparison.fits))
    fig, axes = new_figure((8.0, 4.5))
    ax = axes[0, 0]
    lows, highs, handles, above = [], [], [], False
    evidence = comparison.log_evidence
    for name, trace in traces.items():
        shown, smoothed = _running_mean(np.asarray(trace, dtype=float))
        steps = np.arange(1, shown.size + 1)
        ax.plot(steps, shown, color=colors[name], lw=1.3)
        label = f"{name} (running mean of noisy estimates)" if smoothed else name
        handles.append(Line2D([], [], color=colors[name], lw=1.3, label=label))
        estimate = comparison.fits[name].elbo_estimate
        final = None if estimate is None else estimate.value
        if final is not None and np.isfinite(final):
            ax.plot(
                [shown.size],
                [final],
                marker="o",
                ms=6,
                color=colors[name],
                markeredgecolor="black",
                ls="",
            )
            lows.append(final)
            highs.append(final)
        tail = shown[shown.size // 5 :]
        tail = tail[np.isfinite(tail)]
        if tail.size:
            lows.append(np.percentile(tail, 2))
            highs.append(tail.max())
            above |= smoothed and evidence is not None and bool(tail.max() > evidence)
    handles.append(
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            color="0.5",
            markeredgecolor="black",
            label="final ELBO of the returned q",
        )
    )
    if evidence is not None:
        ax.axhline(evidence, color="black", ls="--", lw=1.2)
        handles.append(Line2D([], [], color="black", ls="--", label=_evidence_label(comparison)))
        highs.append(evidence)
    if above:
        handles.append(
            Line2D(
                [],
                [],
                ls="",
                label="a running mean above log p(x) is estimate\n"
                "noise: the ELBO itself is below it",
            )
        )
    if lows:
        low, high = min(lows), max(highs)
        pad = max(1.0, 0.05 * (high - low))
        ax.set_ylim(low - pad, high + pad)
    ax.set_xscale("log")
    ax.set_xlabel("iteration (log scale)")
    ax.set_ylabel("ELBO (nats, higher is better)")
    ax.set_title(dataset_title(comparison, "ELBO traces"))
    outside_legend(fig, handles, where="right upper", ncols=1)
    return fig


def _evidence_label(comparison: Comparison) -> str:
    """The log p(x) line's legend entry: exact, given, or an estimate with its se."""
    evidence, source = comparison.log_evidence, comparison.log_evidence_source
    if source == "exact":
        return f"log p(x) = {evidence:.2f} (exact, enumeration)"
    if source == "given":
        return f"log p(x) = {evidence:.1f} (given)"
    se = comparison.log_evidence_se
    estimate = (
        fmt_estimate(evidence, se)
        if se is not None and np.isfinite(se)
        else (f"{evidence:.1f} (no se)")
    )
    origin = f", {source}" if source else ""
    flags = getattr(comparison, "log_evidence_flags", ())
    flagged = f"; flags: {', '.join(flags)}" if flags else ""
    return f"log p(x) estimate {estimate}{origin}{flagged}"
