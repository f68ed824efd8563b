"""Figures for a :class:`~ppl_mixtures.compare.Comparison` (matplotlib, headless).

Every function returns a ``matplotlib.figure.Figure`` with a title, labelled axes (with
units) and a legend; nothing is shown (no ``plt.show()``), so the functions work under
the Agg backend in tests, reports and CI. Engines keep one colour across all figures.

- :func:`plot_data`: the data with each engine's component means and 1- and 2-sd
  ellipses of the component densities (a histogram and the fitted densities for 1-D data);
- :func:`plot_elbo`: ELBO traces of the variational engines, in nats, with the known
  log evidence (an upper bound for every ELBO) as a horizontal line;
- :func:`plot_marginals`: each parameter's posterior marginal, one outline per engine;
- :func:`plot_forest`, :func:`plot_trace`: arviz-plots' forest and trace plots;
- :func:`plot_responsibilities`: points coloured by their component responsibilities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .results import MixtureFit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .compare import Comparison

__all__ = [
    "engine_colors",
    "plot_data",
    "plot_elbo",
    "plot_forest",
    "plot_marginals",
    "plot_responsibilities",
    "plot_trace",
]


def _new_figure(figsize: tuple[float, float], nrows: int = 1, ncols: int = 1, **kwargs: Any):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def engine_colors(names: Sequence[str]) -> dict[str, Any]:
    """One colour per engine (tab10, in the given order)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def _component_colors(n_components: int) -> np.ndarray:
    """RGB colours of the components, shape (n_components, 3)."""
    from matplotlib import colormaps

    cmap = colormaps["Set1" if n_components <= 9 else "tab20"]
    return np.array([cmap(k % cmap.N)[:3] for k in range(n_components)])


def _thin(points: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """At most ``max_points`` rows (a fixed random subset), so 1e5 points plot fast."""
    if points.shape[0] <= max_points:
        return points
    idx = np.random.default_rng(seed).choice(points.shape[0], max_points, replace=False)
    return points[np.sort(idx)]


def _component_sd(fit: MixtureFit) -> np.ndarray:
    """Posterior-mean obs_sd of each component, shape (n_components, n_features)."""
    if "obs_sd" in fit.parameter_names():
        return fit.posterior_mean("obs_sd")
    return fit.spec.known_obs_sd(fit.n_features)


def _dataset_title(comparison: Comparison, what: str) -> str:
    return f"{what}: {comparison.name}" if comparison.name else what


# --------------------------------------------------------------------------- data
def plot_data(comparison: Comparison, *, max_points: int = 5000) -> Figure:
    """The data with each engine's components: means and 1-/2-sd ellipses.

    The ellipses are the component densities' own spread (``obs_sd``, posterior mean
    when learned), centred at the engine's posterior-mean component means: they show
    what each engine thinks a cluster looks like. Features 0 and 1 are drawn when there
    are more than two. For 1-D data: a histogram with each engine's fitted mixture
    density at the posterior mean, and the component means with +-1 and +-2 sd bars.

    Parameters
    ----------
    comparison : Comparison
    max_points : int
        Points drawn at most (a fixed random subset of larger data).

    Returns
    -------
    matplotlib.figure.Figure
    """
    points = comparison.points
    colors = engine_colors(list(comparison.fits))
    if points.shape[1] == 1:
        return _plot_data_1d(comparison, colors)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Ellipse

    fig, axes = _new_figure((6.5, 5.5))
    ax = axes[0, 0]
    shown = _thin(points, max_points)
    ax.scatter(shown[:, 0], shown[:, 1], s=8, c="0.55", alpha=min(1.0, 300 / len(shown)),
               linewidths=0, label=f"data ({points.shape[0]} points)")
    markers = "oXsD^vP*<>"
    handles = [Line2D([], [], ls="", marker=".", color="0.55", label=f"data ({points.shape[0]} points)")]
    for i, (name, fit) in enumerate(comparison.fits.items()):
        means, sds = fit.posterior_mean("means"), _component_sd(fit)
        marker = markers[i % len(markers)]
        ax.scatter(means[:, 0], means[:, 1], s=60, marker=marker, color=colors[name],
                   edgecolors="black", linewidths=0.6, zorder=3)
        for mean, sd in zip(means, sds, strict=True):
            for n_sd, style in ((1, "-"), (2, "--")):
                ax.add_patch(Ellipse(tuple(mean[:2]), 2 * n_sd * sd[0], 2 * n_sd * sd[1],
                                     fill=False, ls=style, lw=1.2, color=colors[name]))
        handles.append(Line2D([], [], ls="", marker=marker, color=colors[name],
                              markeredgecolor="black", label=f"{name} means"))
    handles += [Line2D([], [], ls="-", color="black", label="1 sd"),
                Line2D([], [], ls="--", color="black", label="2 sd")]
    ax.legend(handles=handles, loc="best", fontsize="small", framealpha=0.8)
    ax.set_xlabel("feature 0 (data units)")
    ax.set_ylabel("feature 1 (data units)")
    extra = f", features 0 and 1 of {points.shape[1]}" if points.shape[1] > 2 else ""
    ax.set_title(_dataset_title(comparison, f"Data and each engine's components{extra}"))
    return fig


def _plot_data_1d(comparison: Comparison, colors: Mapping[str, Any]) -> Figure:
    from .density import mixture_logp

    x = comparison.points[:, 0]
    fig, axes = _new_figure((7.0, 4.5))
    ax = axes[0, 0]
    ax.hist(x, bins=min(60, max(10, len(x) // 10)), density=True, color="0.8",
            label=f"data ({len(x)} points)")
    grid = np.linspace(x.min() - 0.1 * np.ptp(x) - 1, x.max() + 0.1 * np.ptp(x) + 1, 400)
    top = ax.get_ylim()[1]
    for i, (name, fit) in enumerate(comparison.fits.items()):
        weights, means, sds = (fit.posterior_mean("weights"), fit.posterior_mean("means"),
                               _component_sd(fit))
        density = np.exp(mixture_logp(grid[:, None], weights, means, sds))
        ax.plot(grid, density, color=colors[name], lw=1.5, label=f"{name} density")
        y = -top * (0.04 + 0.035 * i)
        for mean, sd in zip(means[:, 0], sds[:, 0], strict=True):
            ax.plot([mean - 2 * sd, mean + 2 * sd], [y, y], color=colors[name], lw=1)
            ax.plot([mean - sd, mean + sd], [y, y], color=colors[name], lw=3.5)
            ax.plot([mean], [y], marker="o", color=colors[name], markeredgecolor="black")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("feature 0 (data units)")
    ax.set_ylabel("density (1 / data unit)")
    ax.set_title(_dataset_title(comparison, "Data and each engine's mixture"))
    ax.text(0.99, 0.02, "bars: component mean ± 1 sd (thick), ± 2 sd (thin)",
            transform=ax.transAxes, ha="right", va="bottom", fontsize="small")
    ax.legend(loc="best", fontsize="small")
    return fig


# --------------------------------------------------------------------------- ELBO
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


def plot_elbo(comparison: Comparison) -> Figure:
    """ELBO traces of every fit that has one, on one axis, in nats.

    Noisy traces (stochastic gradient engines: more than 20 % of steps go down) are shown
    as a running mean over 1/30 of the run (at least 10 steps). The x axis is logarithmic, so a 30-step CAVI
    run and a 20,000-step ADVI run can be read together. The known log evidence log p(x)
    (``comparison.log_evidence``) is drawn as a horizontal line: every ELBO lies below it,
    and the gap is the KL divergence from q to the posterior.

    Raises
    ------
    ValueError
        When no fit has an ELBO trace.
    """
    traces = {name: fit.elbo for name, fit in comparison.fits.items()
              if fit.elbo is not None and fit.elbo.size}
    if not traces:
        raise ValueError(f"comparison: expected at least one fit with an ELBO trace, got "
                         f"none among {', '.join(comparison.fits)}. Add a VI engine "
                         f"(e.g. 'cavi' or 'advi').")
    colors = engine_colors(list(comparison.fits))
    fig, axes = _new_figure((7.0, 4.5))
    ax = axes[0, 0]
    lows, highs = [], []
    for name, trace in traces.items():
        shown, smoothed = _running_mean(np.asarray(trace, dtype=float))
        steps = np.arange(1, shown.size + 1)
        label = f"{name} (running mean)" if smoothed else name
        ax.plot(steps, shown, color=colors[name], lw=1.3, label=label)
        tail = shown[shown.size // 5:]
        tail = tail[np.isfinite(tail)]
        if tail.size:
            lows.append(np.percentile(tail, 2))
            highs.append(tail.max())
    if comparison.log_evidence is not None:
        source = f" ({comparison.log_evidence_source})" if comparison.log_evidence_source else ""
        ax.axhline(comparison.log_evidence, color="black", ls="--", lw=1.2,
                   label=f"log p(x) ≈ {comparison.log_evidence:.1f}{source}")
        highs.append(comparison.log_evidence)
    if lows:
        low, high = min(lows), max(highs)
        pad = max(1.0, 0.05 * (high - low))
        ax.set_ylim(low - pad, high + pad)
    ax.set_xscale("log")
    ax.set_xlabel("iteration (log scale)")
    ax.set_ylabel("ELBO (nats, higher is better)")
    ax.set_title(_dataset_title(comparison, "ELBO traces"))
    ax.legend(loc="lower right", fontsize="small")
    return fig


# --------------------------------------------------------------------------- marginals
def _units(label: str) -> str:
    if label.startswith("weights"):
        return "weight (probability)"
    feature = label.rstrip("]").split(",")[-1]
    return f"{label.split('[')[0]} (feature {feature} units)"


def plot_marginals(comparison: Comparison, *, parameters: Sequence[str] | None = None,
                   max_panels: int = 16, bins: int = 20) -> Figure:
    """Each parameter's marginal: one density per engine (Gaussian KDE), a line for point estimates.

    Parameters the reference does not vary (fixed weights) are left out. Components are
    the aligned ones (``comparison.fits``), so panel ``means[0,1]`` is the same component
    in every engine.

    Parameters
    ----------
    comparison : Comparison
    parameters : sequence of str, optional
        Labels such as ``"means[0,1]"``; default: every varying parameter.
    max_panels : int
        At most this many panels (the first ones in table order).
    bins : int
        Histogram bins for engines with fewer than 20 draws (too few for a KDE).
    """
    table = comparison.parameters
    ref = table[table["engine"] == comparison.reference].set_index("parameter")
    if parameters is None:
        parameters = [p for p in ref.index if ref.loc[p, "sd"] > 0]
    from scipy.stats import gaussian_kde

    parameters = list(parameters)[:max_panels]
    if not parameters:
        raise ValueError("parameters: expected at least one parameter with posterior spread, "
                         "got none. The reference fit has no uncertainty to compare.")
    colors = engine_colors(list(comparison.fits))
    ncols = min(3, len(parameters))
    nrows = -(-len(parameters) // ncols)
    fig, axes = _new_figure((3.3 * ncols, 2.6 * nrows + 0.6), nrows, ncols)
    flat = {name: _labelled_draws(fit) for name, fit in comparison.fits.items()}
    for ax, label in zip(axes.ravel(), parameters, strict=False):
        spread = [d[label] for d in flat.values() if label in d and d[label].size > 1]
        values = np.concatenate(spread) if spread else np.array([ref.loc[label, "mean"]])
        lo, hi = np.percentile(values, [0.5, 99.5])
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        pad = 0.1 * (hi - lo)
        grid = np.linspace(lo - pad, hi + pad, 200)
        for name, draws in flat.items():
            if label not in draws:
                continue
            x = draws[label]
            if x.size <= 1 or np.ptp(x) == 0:
                ax.axvline(x[0], color=colors[name], lw=1.5, ls=":")
            elif x.size < 20:  # too few draws for a density estimate
                ax.hist(x, bins=np.linspace(lo, hi, bins + 1), density=True,
                        histtype="step", color=colors[name], lw=1.4)
            else:
                ax.plot(grid, gaussian_kde(x)(grid), color=colors[name], lw=1.4)
        ax.set_title(label, fontsize="medium")
        ax.set_xlabel(_units(label), fontsize="small")
        ax.set_ylabel("density")
    for ax in axes.ravel()[len(parameters):]:
        ax.set_visible(False)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[name],
                      ls=":" if fit.n_chains * fit.n_draws <= 1 else "-",
                      label=f"{name}{' (point estimate)' if fit.n_chains * fit.n_draws <= 1 else ''}")
               for name, fit in comparison.fits.items()]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5),
               fontsize="small")
    fig.suptitle(_dataset_title(comparison, "Posterior marginals (components aligned to "
                                            f"{comparison.reference})"))
    return fig


def _labelled_draws(fit: MixtureFit) -> dict[str, np.ndarray]:
    """``{"means[0,1]": draws of shape (n_chains * n_draws,)}`` for every parameter entry."""
    out = {}
    for name in fit.parameter_names():
        draws = fit.draws(name)
        flat = draws.reshape(draws.shape[0] * draws.shape[1], -1)
        for j, idx in enumerate(np.ndindex(*draws.shape[2:])):
            out[f"{name}[{','.join(str(i) for i in idx)}]"] = flat[:, j]
    return out


# --------------------------------------------------------------------------- arviz-plots
def _pooled_tree(fit: MixtureFit, n_draws: int, seed: int = 0) -> Any:
    """A DataTree with one chain of ``n_draws`` draws resampled from the fit's draws.

    arviz-plots stacks several models along a new dimension; models with different
    chain/draw counts would be padded with NaN, so every fit is brought to one size first.
    """
    import xarray as xr

    post = fit.idata["posterior"].to_dataset()[list(fit.parameter_names())]
    stacked = post.stack(sample=("chain", "draw"))
    total = stacked.sizes["sample"]
    idx = (np.arange(total) if total == n_draws
           else np.random.default_rng(seed).choice(total, n_draws, replace=total < n_draws))
    pooled = (stacked.isel(sample=idx).drop_vars(["sample", "chain", "draw"])
              .rename({"sample": "draw"}).expand_dims(chain=[0])
              .assign_coords(draw=np.arange(n_draws)).transpose("chain", "draw", ...))
    return xr.DataTree.from_dict({"posterior": pooled})


def plot_forest(comparison: Comparison, *, n_draws: int = 1000) -> Figure:
    """ArviZ forest plot: every engine's 50 % and 89 % intervals for every parameter.

    Draws are pooled over chains (and resampled to ``n_draws`` per engine, so engines with
    different draw counts line up); a point estimate is a dot without interval.
    """
    import arviz as az

    names = list(comparison.fits)
    trees = {name: _pooled_tree(fit, n_draws) for name, fit in comparison.fits.items()}
    rows = sum(int(np.prod(fit.draws(p).shape[2:]))
               for fit in [comparison.reference_fit] for p in fit.parameter_names())
    height = min(2.0 + 0.22 * rows * max(1, len(names)) ** 0.5, 14.0)
    pc = az.plot_forest(trees, var_names=list(comparison.reference_fit.parameter_names()),
                        combined=True, figure_kwargs={"figsize": (7.0, height)})
    pc.add_legend("model", title="engine", loc="upper right", bbox_to_anchor=(0.995, 0.93))
    fig = pc.viz["figure"].item()
    fig.set_size_inches(8.5, height)
    fig.subplots_adjust(right=0.8, top=0.93)  # room for the legend and the title
    fig.suptitle(_dataset_title(comparison, "Forest plot: posterior mean, 50 % and 89 % "
                                            "intervals per engine"), fontsize="medium")
    fig.supxlabel("parameter value (means, obs_sd: data units; weights: probability)",
                  fontsize="small")
    return fig


def plot_trace(fit: MixtureFit, *, title: str | None = None) -> Figure:
    """ArviZ trace plot (marginal density per chain and the trace) of one fit."""
    import arviz as az

    names = [n for n in fit.parameter_names() if np.ptp(fit.draws(n)) > 0]  # not fixed ones
    if not names:
        raise ValueError(f"fit: expected draws that vary, got a fit of {fit.engine!r} with "
                         f"{fit.n_chains * fit.n_draws} constant draw(s). A trace plot needs "
                         f"a sampler's or VI engine's draws.")
    pc = az.plot_trace_dist(fit.idata, var_names=names,
                            figure_kwargs={"figsize": (9.0, 1.9 * len(names) + 1.2)})
    fig = pc.viz["figure"].item()
    if fit.n_chains > 1:
        pc.add_legend("chain", title="chain")
    else:
        fig.legend(handles=[_line_handle("C0", "chain 0")], loc="upper right",
                   fontsize="small")
    fig.suptitle(title or f"Trace plot: {fit.engine} ({fit.n_chains} chains x "
                          f"{fit.n_draws} draws); x axes: value (left), draw (right)",
                 fontsize="medium")
    return fig


def _line_handle(color: Any, label: str) -> Any:
    from matplotlib.lines import Line2D

    return Line2D([], [], color=color, label=label)


# --------------------------------------------------------------------------- responsibilities
def _responsibilities(fit: MixtureFit, points: np.ndarray) -> np.ndarray:
    """p(z_i = k | x_i) averaged over the fit's draws, shape (n_points, n_components)."""
    try:
        from .diagnostics import responsibilities
    except ImportError:  # pragma: no cover - diagnostics ships with the package
        from .density import log_responsibilities

        return np.exp(log_responsibilities(points, fit.posterior_mean("weights"),
                                           fit.posterior_mean("means"), _component_sd(fit)))
    return np.asarray(responsibilities(fit, points))


def plot_responsibilities(fit: MixtureFit, *, max_points: int = 5000,
                          title: str | None = None) -> Figure:
    """The data coloured by each point's responsibilities under one fit.

    A point's colour mixes the component colours in proportion to p(z_i = k | x): pure
    colours are confident assignments, blends are points the model is unsure about.
    For 1-D data, each component's responsibility is plotted against x instead.
    """
    from matplotlib.patches import Patch

    points = _thin(fit.points, max_points)  # computed only where drawn
    resp = _responsibilities(fit, points)
    colors = _component_colors(fit.n_components)
    idx = np.arange(points.shape[0])
    fig, axes = _new_figure((6.5, 5.0) if points.shape[1] > 1 else (7.0, 4.0))
    ax = axes[0, 0]
    handles = [Patch(color=colors[k], label=f"component {k}") for k in range(fit.n_components)]
    if points.shape[1] == 1:
        for k in range(fit.n_components):
            ax.scatter(points[idx, 0], resp[idx, k], s=8, color=colors[k], alpha=0.6)
        ax.set_xlabel("feature 0 (data units)")
        ax.set_ylabel("responsibility p(z = k | x)")
        ax.set_ylim(-0.05, 1.05)
    else:
        mixed = np.clip(resp[idx] @ colors, 0.0, 1.0)
        ax.scatter(points[idx, 0], points[idx, 1], s=12, c=mixed, linewidths=0)
        means = fit.posterior_mean("means")
        ax.scatter(means[:, 0], means[:, 1], s=90, marker="X", c=colors, edgecolors="black",
                   zorder=3)
        handles.append(Patch(facecolor="white", edgecolor="black", label="X: component mean"))
        ax.set_xlabel("feature 0 (data units)")
        ax.set_ylabel("feature 1 (data units)")
    ax.legend(handles=handles, loc="best", fontsize="small")
    default = (f"Responsibilities under {fit.engine}" if points.shape[1] == 1
               else f"Responsibilities under {fit.engine} (colour mix = uncertainty)")
    ax.set_title(title or default, fontsize="medium")
    return fig
