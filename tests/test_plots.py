"""plots: every figure has a title, labelled axes and a legend; no legend covers data and no
text is clipped by the figure; nothing is shown. (Over 400 lines: every figure, for each
covariance type, is checked by the one readability checker defined here.)"""

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ppl_mixtures import MixtureSpec, fit
from ppl_mixtures.analysis.compare import compare
from ppl_mixtures.present import plots
from ppl_mixtures.results import EvidenceEstimate, MixtureFit, make_idata

RNG = np.random.default_rng(11)
POINTS_2D = np.concatenate([RNG.normal(-2, 1, (30, 2)), RNG.normal(2, 1, (30, 2))])
POINTS_1D = np.concatenate([RNG.normal(-5, 1, 30), RNG.normal(0, 1, 30), RNG.normal(5, 1, 30)])


def _fit(engine, points, spec, n_chains, n_draws, scale, seed, elbo=None, obs_sd=False):
    rng = np.random.default_rng(seed)
    n_features = points.shape[1]
    centers = np.linspace(-2, 2, spec.n_components)[:, None] * np.ones(n_features)
    means = centers + scale * rng.standard_normal(
        (n_chains, n_draws, spec.n_components, n_features)
    )
    weights = rng.dirichlet(np.full(spec.n_components, 200.0), size=(n_chains, n_draws))
    if spec.fixed_weights:
        weights = np.full_like(weights, 1.0 / spec.n_components)
    sd = np.exp(0.05 * rng.standard_normal(means.shape)) if obs_sd else None
    return MixtureFit(
        engine=engine, spec=spec, idata=make_idata(means, weights, points, obs_sd=sd), elbo=elbo
    )


def _evidence(value, se=float("nan"), method="given by the test"):
    """A log p(x) estimate on a synthetic fit (se NaN: an estimate without a standard error)."""
    return EvidenceEstimate(log_evidence=value, se=se, method=method)


@pytest.fixture(scope="module")
def comparison_2d():
    spec = MixtureSpec(n_components=2, obs_sd="learned")
    noisy = -300 - 500 * np.exp(-np.arange(3000) / 300) + RNG.normal(0, 8, 3000)
    fits = {
        "nuts": _fit("nuts", POINTS_2D, spec, 2, 200, 0.2, 1, obs_sd=True),
        "advi": _fit("advi", POINTS_2D, spec, 1, 300, 0.1, 2, elbo=noisy, obs_sd=True),
        "cavi": _fit(
            "cavi",
            POINTS_2D,
            spec,
            1,
            300,
            0.1,
            3,
            elbo=-320 - 50 * np.exp(-np.arange(40) / 4.0),
            obs_sd=True,
        ),
        "em": _fit("em", POINTS_2D, spec, 1, 1, 0.0, 4, obs_sd=True),
    }
    nuts = fits["nuts"]
    fits["nuts"] = nuts.replace(evidence=_evidence(-290.0))
    return compare(fits, name="two blobs")


@pytest.fixture(scope="module")
def comparison_1d():
    spec = MixtureSpec(n_components=3, weights="fixed", mean_prior_sd=10.0)
    return compare(
        {
            "nuts": _fit("nuts", POINTS_1D[:, None], spec, 2, 100, 0.1, 5),
            "cavi": _fit("cavi", POINTS_1D[:, None], spec, 1, 100, 0.05, 6),
        },
        name="1-D",
    )


@pytest.fixture(scope="module")
def faithful():
    """Real engines on standardized Old Faithful (tiny settings): CAVI, EM and SVI."""
    from ppl_mixtures import datasets

    raw = datasets.old_faithful()
    z, center, scale = datasets.standardize(raw)
    spec = MixtureSpec(n_components=2, obs_sd="learned")
    fits = {
        "cavi": fit(z, spec, engine="cavi", random_seed=1, progressbar=False),
        "em": fit(z, spec, engine="em", random_seed=1, progressbar=False),
        "svi": fit(z, spec, engine="svi", random_seed=1, progressbar=False),
    }
    return compare(fits, reference="cavi", name="Old Faithful"), raw, center, scale


FAITHFUL_AXES = {"feature_names": ["eruption duration", "waiting time"], "units": "min"}


# --------------------------------------------------------------------------- the checks
def _data_points(ax, renderer):
    """Display coordinates (n, 2) of everything plotted on ``ax`` that is in view.

    Lines are densified (20 points per segment, in display space) so a line crossing a
    legend counts even when none of its vertices is under it; scatter points are their
    offsets; patches are their outline vertices; filled rectangles (histogram bars) are
    handled separately by ``_bars``.
    """
    out = [np.empty((0, 2))]
    for line in ax.get_lines():
        if not line.get_visible():
            continue
        xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
        xy = xy[np.all(np.isfinite(xy), axis=1)]
        if len(xy) > 1:
            t = np.linspace(0, 1, 20)[:, None, None]
            xy = (xy[:-1] * (1 - t) + xy[1:] * t).reshape(-1, 2)
        out.append(xy)
    for coll in ax.collections:
        offsets = np.asarray(coll.get_offsets(), dtype=float)
        if coll.get_visible() and offsets.size:
            out.append(coll.get_offset_transform().transform(offsets))
    for patch in ax.patches:
        if patch.get_visible() and not isinstance(patch, Rectangle):
            out.append(patch.get_transform().transform(patch.get_path().vertices))
    xy = np.concatenate(out)
    box = ax.get_window_extent(renderer)
    inside = (
        (xy[:, 0] >= box.x0) & (xy[:, 0] <= box.x1) & (xy[:, 1] >= box.y0) & (xy[:, 1] <= box.y1)
    )
    return xy[inside]


def _bars(ax, renderer):
    return [
        p.get_window_extent(renderer)
        for p in ax.patches
        if isinstance(p, Rectangle) and p.get_visible() and p.get_height() != 0
    ]


def assert_readable(fig):
    """Fail when a legend covers plotted data or a text artist is clipped by the figure.

    After ``fig.canvas.draw()``: (1) every legend's window extent (axes legends and figure
    legends) holds no display point of the data drawn on any visible axes and overlaps
    no bar; (2) every visible, non-empty text artist (titles, axis and tick labels, legend
    texts, suptitle) lies inside the figure's bounding box (1 pixel of slack for rounding).
    """
    if not isinstance(fig.canvas, FigureCanvasAgg):  # a bare Figure's canvas cannot draw
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = [ax for ax in fig.axes if ax.get_visible()]
    legends = [(ax.get_legend(), [ax]) for ax in axes if ax.get_legend()]
    legends += [(lg, axes) for lg in fig.legends]
    for legend, covered in legends:
        box = legend.get_window_extent(renderer)
        for ax in covered:
            xy = _data_points(ax, renderer)
            under = (
                (xy[:, 0] > box.x0)
                & (xy[:, 0] < box.x1)
                & (xy[:, 1] > box.y0)
                & (xy[:, 1] < box.y1)
            )
            assert not under.any(), (
                f"legend over {under.sum()} data point(s) of the axes titled {ax.get_title()!r}"
            )
            assert not any(box.overlaps(bar) for bar in _bars(ax, renderer)), "legend over a bar"
    frame = fig.bbox

    def inside(ext):
        return (
            ext.x0 >= frame.x0 - 1
            and ext.x1 <= frame.x1 + 1
            and ext.y0 >= frame.y0 - 1
            and ext.y1 <= frame.y1 + 1
        )

    for ax in axes:  # the drawn tick labels, axis labels and title of each axes
        assert inside(ax.get_tightbbox(renderer)), f"axes {ax.get_title()!r}: text clipped"
    texts = [t for ax in axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts)]
    texts += [t for lg, _ in legends for t in (*lg.get_texts(), lg.get_title())]
    texts += list(fig.texts)  # the figure's own texts: suptitle, supxlabel, supylabel, ...
    for text in texts:
        if text.get_visible() and text.get_text().strip():
            ext = text.get_window_extent(renderer)
            assert inside(ext), f"text {text.get_text()!r} clipped: {ext} vs {frame}"
    titles = [t for ax in axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label)]
    titles += list(fig.texts)
    for legend, _ in legends:  # nor does a legend cover a title or an axis label
        box = legend.get_window_extent(renderer)
        for text in titles:
            if text.get_visible() and text.get_text().strip():
                assert not box.overlaps(text.get_window_extent(renderer)), (
                    f"legend over the text {text.get_text()!r}"
                )


def _check(fig, *, title_part=None):
    assert isinstance(fig, Figure)
    titles = [fig.get_suptitle()]
    titles += [ax.get_title() for ax in fig.axes]
    assert any(titles), "figure has no title"
    if title_part:
        assert any(title_part in t for t in titles)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert all(
        ax.get_xlabel()
        for ax in visible
        if ax.get_xticklabels()
        and any(t.get_text() for t in ax.get_xticklabels())
        and ax.get_subplotspec().is_last_row()
    ), "an x axis without a label"
    legends = [ax.get_legend() for ax in visible if ax.get_legend()] + list(fig.legends)
    assert legends, "figure has no legend"
    assert_readable(fig)
    return legends


def _texts(legend):
    return [t.get_text() for t in legend.get_texts()]


# --------------------------------------------------------------------------- the checker itself
def test_assert_readable_catches_a_legend_over_data_and_a_clipped_label():
    fig = Figure(figsize=(4, 3), layout="constrained")
    ax = fig.subplots()
    ax.plot(np.linspace(0, 1, 50), np.linspace(0, 1, 50), label="data on the diagonal")
    ax.legend(loc="center")  # sits on the diagonal
    with pytest.raises(AssertionError, match="legend over"):
        assert_readable(fig)
    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], label="line")
    fig.legend(loc="outside right upper")
    ax.set_ylabel("a label pushed out of the figure", labelpad=200)
    with pytest.raises(AssertionError, match="clipped"):
        assert_readable(fig)
    fig = Figure(figsize=(4, 3), layout="constrained")
    ax = fig.subplots()
    ax.hist(RNG.normal(size=500), bins=20, label="bars")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.5))  # over the tallest bars
    with pytest.raises(AssertionError, match="legend over"):
        assert_readable(fig)


# --------------------------------------------------------------------------- data
def test_plot_data_2d_one_equal_aspect_panel_per_engine_with_both_ellipses(comparison_2d):
    fig = comparison_2d.plot_data()
    (legend,) = _check(fig, title_part="two blobs")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["nuts", "advi", "cavi", "em (point estimate)"]
    for ax in panels:
        assert ax.get_aspect() == 1.0
        assert ax.get_xlabel() == "feature 0 (data units)"
        assert ax.get_xlim() == panels[0].get_xlim() and ax.get_ylim() == panels[0].get_ylim()
    # posterior ellipse (filled) + density ellipse (dashed) per component; EM: density only
    assert [len(ax.patches) for ax in panels] == [4, 4, 4, 2]
    nuts = comparison_2d.fits["nuts"]
    density = [p for p in panels[0].patches if not p.get_fill()]
    posterior = [p for p in panels[0].patches if p.get_fill()]
    sd = nuts.posterior_mean("obs_sd")
    assert sorted((density[0].width, density[0].height)) == pytest.approx(sorted(4 * sd[0]))
    draws = nuts.draws("means").reshape(-1, 2, 2)[:, 0, :]
    eig = np.linalg.eigvalsh(np.cov(draws.T))
    assert sorted((posterior[0].width, posterior[0].height)) == pytest.approx(4 * np.sqrt(eig))
    assert {
        "2-sd ellipse of the mean's posterior",
        "2 obs_sd: the component density",
        "nuts (reference) means",
    } <= set(_texts(legend))


def test_plot_data_in_data_units_with_feature_names(faithful):
    comparison, raw, center, scale = faithful
    fig = comparison.plot_data(**FAITHFUL_AXES, data_transform=(center, scale))
    _check(fig, title_part="Old Faithful")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "eruption duration (min)" and ax.get_ylabel() == "waiting time (min)"
    shown = ax.collections[0].get_offsets()
    assert np.allclose(np.sort(shown[:, 1]), np.sort(raw[:, 1]))  # minutes, not z-scores
    lo, hi = ax.get_ylim()
    assert lo < raw[:, 1].min() and hi > raw[:, 1].max()


def test_plot_data_1d_is_a_histogram_with_densities_and_intervals(comparison_1d):
    fig = comparison_1d.plot_data()
    (legend,) = _check(fig)
    hist_ax, bars_ax = fig.axes
    assert hist_ax.get_ylabel().startswith("density")
    assert [t.get_text() for t in bars_ax.get_yticklabels()] == ["nuts", "cavi"]
    assert {"nuts density", "cavi density", "mean ± 2 posterior sd (thick)"} <= set(_texts(legend))


# --------------------------------------------------------------------------- ELBO
def test_plot_elbo_smooths_noisy_traces_and_marks_the_evidence(comparison_2d):
    fig = comparison_2d.plot_elbo()
    (legend,) = _check(fig, title_part="ELBO")
    ax = fig.axes[0]
    assert "nats" in ax.get_ylabel() and ax.get_xscale() == "log"
    labels = _texts(legend)
    assert labels[:2] == ["advi (running mean of noisy estimates)", "cavi"]
    # nuts gave no se, so compare flags the estimate exactly when some fit's final ELBO is
    # above it (advi's final ELBO is a noisy draw around -300: either case can occur), and
    # the label carries the flags
    finals = [f.final_elbo for f in comparison_2d.fits.values() if f.final_elbo is not None]
    below = max(finals) > -290.0
    assert ("below_elbo" in comparison_2d.log_evidence_flags) == below
    flags = f"; flags: {', '.join(comparison_2d.log_evidence_flags)}" if below else ""
    assert f"log p(x) estimate -290.0 (no se), nuts{flags}" in labels
    assert ax.get_ylim()[1] >= -290.0  # the evidence line is in view
    assert ax.get_ylim()[0] <= -370.0 + 1e-9  # cavi's whole trace in view too


def test_plot_elbo_explains_a_running_mean_above_the_evidence(comparison_2d):
    # advi's trace ends near -300 with noise sd 8; its running mean (window 100) has sd ~0.8,
    # so it stays below log p(x) = -290 but rises above a log p(x) of -302
    plain = comparison_2d.plot_elbo()
    assert not any("above log p(x)" in t for t in _texts(plain.legends[0]))
    fits = dict(comparison_2d.fits)
    fits["nuts"] = fits["nuts"].replace(evidence=_evidence(-302.0))
    fig = compare(fits, name="two blobs").plot_elbo()
    (legend,) = _check(fig)
    labels = _texts(legend)
    assert any(t.startswith("log p(x) estimate -302.0 (no se), nuts") for t in labels)
    assert any("above log p(x) is estimate" in t for t in labels)


def test_plot_elbo_labels_the_evidence_by_its_source(comparison_2d):
    fits = dict(comparison_2d.fits)
    fits["nuts"] = fits["nuts"].replace(evidence=_evidence(-301.234, se=0.033, method="smc"))
    labels = _texts(compare(fits, name="two blobs").plot_elbo().legends[0])
    # se to 2 significant digits
    assert any(t.startswith("log p(x) estimate -301.234 ± 0.033, nuts") for t in labels)
    given = compare(fits, name="two blobs", log_evidence=-299.5).plot_elbo()
    assert "log p(x) = -299.5 (given)" in _texts(given.legends[0])
    assert not any(t.startswith("log p(x) estimate") for t in _texts(given.legends[0]))


def test_plot_elbo_marks_each_final_elbo(faithful):
    comparison, *_ = faithful
    fig = comparison.plot_elbo()
    (legend,) = _check(fig)
    assert "final ELBO of the returned q" in _texts(legend)
    dots = [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "o"]
    finals = sorted(ln.get_ydata()[0] for ln in dots)
    expected = sorted(comparison.fits[n].elbo_estimate.value for n in ("cavi", "svi"))
    assert finals == pytest.approx(expected)


# --------------------------------------------------------------------------- marginals, forest
def test_plot_marginals_one_panel_per_varying_parameter(comparison_2d, comparison_1d):
    fig = comparison_2d.plot_marginals()
    _check(fig, title_part="Posterior marginals")
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert len(titles) == 4 + 2 + 4  # means, weights, obs_sd
    fig_1d = comparison_1d.plot_marginals()  # fixed weights have no spread: left out
    _check(fig_1d)
    assert [ax.get_title() for ax in fig_1d.axes if ax.get_visible()] == [
        "means[0,0]",
        "means[1,0]",
        "means[2,0]",
    ]


def test_plot_marginals_in_data_units(faithful):
    comparison, raw, center, scale = faithful
    fig = comparison.plot_marginals(**FAITHFUL_AXES, data_transform=(center, scale))
    _check(fig)
    ax = next(ax for ax in fig.axes if ax.get_title() == "means[0,1]")
    assert ax.get_xlabel() == "mean of waiting time (min)"
    lo, hi = ax.get_xlim()
    assert raw[:, 1].min() < lo < hi < raw[:, 1].max()  # minutes: inside the data's range


def test_plot_forest_one_panel_per_group_and_feature(comparison_2d, comparison_1d):
    fig = comparison_2d.plot_forest()
    (legend,) = _check(fig, title_part="Forest")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == [
        "means: feature 0",
        "means: feature 1",
        "weights",
        "obs_sd: feature 0",
        "obs_sd: feature 1",
    ]
    assert {"nuts", "advi", "cavi", "em", "50% interval", "89% interval"} <= set(_texts(legend))
    weights = panels[2]
    nuts_w = comparison_2d.fits["nuts"].draws("weights").reshape(-1, 2)
    lo, hi = weights.get_xlim()
    width = np.quantile(nuts_w[:, 0], 0.945) - np.quantile(nuts_w[:, 0], 0.055)
    assert width / (hi - lo) > 0.05  # the weight interval is visible on its own axis
    one = comparison_2d.plot_forest(n_draws=1)  # one draw per engine: intervals of width 0
    segments = np.concatenate([np.asarray(c.get_segments()) for c in one.axes[0].collections])
    assert np.allclose(segments[:, 0, 0], segments[:, 1, 0])
    fig_1d = comparison_1d.plot_forest()  # fixed weights: no weights panel
    _check(fig_1d)
    assert [ax.get_title() for ax in fig_1d.axes if ax.get_visible()] == ["means: feature 0"]


def test_plot_forest_in_data_units(faithful):
    comparison, _, center, scale = faithful
    fig = comparison.plot_forest(**FAITHFUL_AXES, data_transform=(center, scale))
    _check(fig)
    assert [ax.get_xlabel() for ax in fig.axes if ax.get_visible()][:2] == [
        "mean of eruption duration (min)",
        "mean of waiting time (min)",
    ]


# --------------------------------------------------------------------------- trace, responsibilities
def test_plot_trace_has_a_chain_key_and_leaves_fixed_parameters_out(comparison_2d, comparison_1d):
    trace = comparison_2d.plot_trace()
    (legend,) = _check(trace, title_part="nuts (2 chains x 200 draws)")
    assert _texts(legend) == ["chain 0", "chain 1"]
    assert len(trace.axes) == 2 * (4 + 2 + 4)
    fig_1d = comparison_1d.plot_trace()
    _check(fig_1d)
    assert [ax.get_ylabel() for ax in fig_1d.axes[::2]] == [
        "means[0,0]",
        "means[1,0]",
        "means[2,0]",
    ]
    short = plots.plot_trace(comparison_2d.fits["nuts"], max_parameters=3)
    _check(short, title_part="first 3 of 10 parameters")


def test_plot_responsibilities_2d_and_1d(comparison_2d, comparison_1d, faithful):
    fig = comparison_2d.plot_responsibilities()
    (legend,) = _check(fig, title_part="Responsibilities")
    assert _texts(legend)[:2] == ["component 0", "component 1"]
    colours = fig.axes[0].collections[0].get_facecolors()
    assert colours.shape == (POINTS_2D.shape[0], 4)
    assert fig.axes[0].get_aspect() == 1.0
    fig_1d = plots.plot_responsibilities(comparison_1d.fits["cavi"])
    _check(fig_1d)
    assert fig_1d.axes[0].get_ylabel() == "responsibility p(z = k | x)"
    comparison, _, center, scale = faithful
    fig_f = comparison.plot_responsibilities(**FAITHFUL_AXES, data_transform=(center, scale))
    _check(fig_f)
    assert fig_f.axes[0].get_ylabel() == "waiting time (min)"


# --------------------------------------------------------------------------- one fit, no compare
@pytest.fixture(scope="module")
def single_fits():
    """Real EM, CAVI and (small) NUTS fits of POINTS_2D, obs_sd learned."""
    spec = MixtureSpec(n_components=2, obs_sd="learned")
    return {
        "em": fit(POINTS_2D, spec, engine="em", random_seed=1, progressbar=False),
        "cavi": fit(POINTS_2D, spec, engine="cavi", random_seed=1, progressbar=False),
        "nuts": fit(
            POINTS_2D,
            spec,
            engine="nuts",
            draws=100,
            tune=100,
            chains=2,
            cores=1,
            random_seed=1,
            progressbar=False,
            log_likelihood=False,
        ),
    }


@pytest.fixture(scope="module")
def single_fits_1d():
    """Real EM and CAVI fits of POINTS_1D (three clusters, weights learned)."""
    spec = MixtureSpec(n_components=3, mean_prior_sd=10.0, obs_sd="learned")
    points = POINTS_1D[:, None]
    return {
        "em": fit(points, spec, engine="em", random_seed=1, progressbar=False),
        "cavi": fit(points, spec, engine="cavi", random_seed=1, progressbar=False),
    }


def _ellipses(ax):
    """(width, height, angle, filled) of every ellipse on ``ax``, rounded for comparison."""
    return sorted(
        (round(p.width, 9), round(p.height, 9), round(p.angle % 180, 6), p.get_fill())
        for p in ax.patches
    )


@pytest.mark.parametrize("engine", ["em", "cavi", "nuts"])
def test_fit_plot_data_2d_is_the_comparisons_panel_alone(single_fits, engine):
    one = single_fits[engine]
    fig = one.plot_data()
    (legend,) = _check(fig, title_part=f"Data and the {engine} fit's components")
    (ax,) = [a for a in fig.axes if a.get_visible()]
    point = " (point estimate)" if engine == "em" else ""
    assert ax.get_title() == f"{engine}{point}" and ax.get_aspect() == 1.0
    assert ax.get_xlabel() == "feature 0 (data units)"
    assert np.allclose(ax.collections[0].get_offsets(), one.points)  # its own data by default
    # dashed density ellipses: 2 obs_sd wide per axis (axis-aligned), the oracle is obs_sd itself
    density = sorted((p for p in ax.patches if not p.get_fill()), key=lambda p: p.center[0])
    order = np.argsort(one.posterior_mean("means")[:, 0])
    for patch, sd in zip(density, one.posterior_mean("obs_sd")[order], strict=True):
        assert sorted((patch.width, patch.height)) == pytest.approx(sorted(4 * sd))
    assert len(ax.patches) == (2 if engine == "em" else 4)  # EM: no posterior ellipse
    assert not any("reference" in t for t in _texts(legend))  # no comparison, no reference
    # the comparison draws exactly this panel for the engine (one drawing code path)
    both = compare(dict(single_fits), reference="cavi")
    panel = next(a for a in both.plot_data().axes if a.get_title().split()[0] == engine)
    assert _ellipses(panel) == _ellipses(ax)
    assert np.allclose(panel.collections[1].get_offsets(), ax.collections[1].get_offsets())


def test_fit_plot_data_takes_other_points_names_and_units(single_fits):
    cavi = single_fits["cavi"]
    held_out = np.random.default_rng(5).normal(0, 2, (25, 2))
    fig = cavi.plot_data(held_out, feature_names=["eruption", "waiting"], units="min")
    (legend,) = _check(fig)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "eruption (min)" and ax.get_ylabel() == "waiting (min)"
    assert np.allclose(ax.collections[0].get_offsets(), held_out)
    assert "data (25 points)" in _texts(legend)
    # data_transform: drawn at center + scale * value, so the grey points are in data units
    moved = cavi.plot_data(data_transform=([10.0, 50.0], [2.0, 5.0]))
    _check(moved)
    assert np.allclose(
        moved.axes[0].collections[0].get_offsets(),
        [10.0, 50.0] + np.array([2.0, 5.0]) * cavi.points,
    )


@pytest.mark.parametrize("engine", ["em", "cavi", "nuts"])
def test_fit_plot_data_1d_density_integrates_to_one_in_data_units(
    single_fits_1d, comparison_1d, engine
):
    one = {**single_fits_1d, "nuts": comparison_1d.fits["nuts"]}[engine]  # nuts: synthetic draws
    fig = one.plot_data(feature_names=["time"], units="min", data_transform=(10.0, 2.0))
    (legend,) = _check(fig, title_part=f"the {engine} fit's mixture")
    hist_ax, bars_ax = fig.axes
    assert hist_ax.get_ylabel() == "density (1 / min)" and bars_ax.get_xlabel() == "time (min)"
    assert [t.get_text() for t in bars_ax.get_yticklabels()] == [engine]
    assert f"{engine} density" in _texts(legend)
    # the drawn density is a probability density in minutes: the grid reaches >= 1.2 data
    # sds (2.4 min) beyond the data, whose clusters have sd ~1 (2 min), so the mass outside
    # is < 1e-3; 400 grid points make the trapezoid error ~1e-5
    line = hist_ax.get_lines()[0]
    assert np.trapezoid(line.get_ydata(), line.get_xdata()) == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("engine", ["em", "cavi", "nuts"])
def test_fit_plot_marginals_one_panel_per_parameter(single_fits, engine):
    one = single_fits[engine]
    fig = one.plot_marginals(**FAITHFUL_AXES)
    what = "Point estimates" if engine == "em" else "Posterior marginals"
    _check(fig, title_part=f"{what}: {engine}")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 4 + 2 + 4  # means, weights, obs_sd entries
    ax = next(a for a in panels if a.get_title() == "means[1,1]")
    assert ax.get_xlabel() == "mean of waiting time (min)"
    draws = one.draws("means")[:, :, 1, 1].ravel()
    if engine == "em":  # a point estimate: a dotted line at its value
        (line,) = ax.get_lines()
        assert line.get_xdata()[0] == pytest.approx(draws[0]) and line.get_linestyle() == ":"
        assert [t.get_text() for t in ax.texts] == [f" {draws[0]:.4g}"]  # the value, written
        lo, hi = ax.get_xlim()
        assert lo < draws[0] - 0.4 and hi > draws[0] + 0.4  # centred, not at an edge
        assert ax.get_ylabel() == "point estimate" and not len(ax.get_yticks())
    else:  # a KDE of the pooled draws (oracle: scipy's gaussian_kde on the same grid)
        from scipy.stats import gaussian_kde

        (line,) = ax.get_lines()
        assert np.allclose(line.get_ydata(), gaussian_kde(draws)(line.get_xdata()))


def test_fit_plot_marginals_arguments(single_fits, comparison_1d):
    nuts = single_fits["nuts"]
    fig = nuts.plot_marginals(parameters=["weights[0]"], data_transform=(1.0, 3.0))
    _check(fig)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["weights[0]"]
    means = nuts.plot_marginals(parameters=["means[0,0]"], data_transform=(1.0, 3.0))
    grid = means.axes[0].get_lines()[0].get_xdata()
    draws = 1.0 + 3.0 * nuts.draws("means")[:, :, 0, 0]
    assert grid.min() < np.median(draws) < grid.max()  # drawn in data units
    # fixed weights do not vary: left out, as in the comparison's figure
    synthetic = comparison_1d.fits["nuts"]
    titles = [ax.get_title() for ax in synthetic.plot_marginals().axes if ax.get_visible()]
    assert titles == ["means[0,0]", "means[1,0]", "means[2,0]"]


def test_fit_plot_trace_per_engine(single_fits):
    nuts = single_fits["nuts"]
    fig = nuts.plot_trace()
    (legend,) = _check(fig, title_part="nuts (2 chains x 100 draws)")
    assert _texts(legend) == ["chain 0", "chain 1"] and len(fig.axes) == 2 * 10
    trace_ax = fig.axes[1]  # means[0,0], trace per chain, data_transform applied
    moved = nuts.plot_trace(data_transform=(5.0, 2.0))
    _check(moved)
    assert np.allclose(
        moved.axes[1].get_lines()[0].get_ydata(), 5.0 + 2.0 * trace_ax.get_lines()[0].get_ydata()
    )
    cavi = single_fits["cavi"].plot_trace(max_parameters=4)
    (legend,) = _check(cavi, title_part="cavi (1 chain x 1000 draws; first 4 of 10 parameters")
    assert _texts(legend) == ["chain 0"]


# --------------------------------------------------------------------------- bad input
NAMES = "feature_names: expected a sequence of 2 names"
UNITS = "units: expected one string or 2 strings"
BAD_INPUT = [  # (fixture, call on it, pinned message); every one a ValueError
    ("comparison_2d", lambda c: c.plot_data(feature_names=["only one"]), NAMES),
    ("comparison_2d", lambda c: c.plot_elbo(feature_names="ab"), NAMES),
    ("comparison_2d", lambda c: c.plot_forest(units=["min"]), UNITS),
    (
        "comparison_2d",
        lambda c: c.plot_marginals(data_transform=(0.0, -1.0)),
        "data_transform: expected finite centers and positive",
    ),
    (
        "comparison_2d",
        lambda c: c.plot_forest(n_draws=0),
        "n_draws: expected a positive int or None",
    ),
    ("comparison_2d", lambda c: c.plot_trace("em"), "expected draws that vary"),
    ("comparison_1d", lambda c: c.plot_elbo(), "expected at least one fit with an ELBO trace"),
    (
        "single_fits",
        lambda f: f["cavi"].plot_data(np.zeros((25, 1))),
        r"points: expected shape \(n_samples, 2\)",
    ),
    ("single_fits", lambda f: f["cavi"].plot_data(feature_names=["one"]), NAMES),
    (
        "single_fits",
        lambda f: f["nuts"].plot_marginals(parameters=["means[9,9]"]),
        r"parameters: expected labels of this fit's",
    ),
    ("single_fits", lambda f: f["em"].plot_trace(), "expected draws that vary"),
    ("single_fits", lambda f: f["nuts"].plot_trace(units=["min"]), UNITS),
]


@pytest.mark.parametrize("fixture, call, message", BAD_INPUT)
def test_bad_input_is_refused_with_a_message_that_teaches(request, fixture, call, message):
    with pytest.raises(ValueError, match=message):
        call(request.getfixturevalue(fixture))


# --------------------------------------------------------------------------- full covariance
FULL_COV = np.array([[[1.0, 0.7], [0.7, 0.9]], [[0.6, -0.3], [-0.3, 0.8]]])


def _full_fit(engine, n_chains, n_draws, seed, learned=True, kind="full"):
    """A constructed fit: covariance "full" with draws of obs_cov around FULL_COV (learned)
    or FULL_COV known; "tied": draws of FULL_COV[0] shared by both components;
    "spherical": obs_sd draws equal across features."""
    rng = np.random.default_rng(seed)
    means = np.array([[-2.0, -2.0], [2.0, 2.0]]) + 0.1 * rng.standard_normal(
        (n_chains, n_draws, 2, 2)
    )
    weights = np.full((n_chains, n_draws, 2), 0.5)
    jitter = np.exp(0.05 * rng.standard_normal((n_chains, n_draws, 2, 1, 1)))
    if kind == "spherical":
        sd = np.broadcast_to(0.8 * jitter[..., 0], means.shape).copy()
        spec = MixtureSpec(n_components=2, covariance="spherical")
        idata = make_idata(means, weights, POINTS_2D, obs_sd=sd)
    elif kind == "tied":
        # A A^T with A = chol(FULL_COV[0]) times a positive number: positive definite
        factor = np.linalg.cholesky(FULL_COV[0]) * jitter[:, :, :1]
        cov = np.repeat(factor @ np.swapaxes(factor, -1, -2), 2, axis=2)
        spec = MixtureSpec(n_components=2, covariance="tied")
        idata = make_idata(means, weights, POINTS_2D, obs_cov=cov)
    elif learned:
        factor = np.linalg.cholesky(FULL_COV) * jitter
        cov = factor @ np.swapaxes(factor, -1, -2)
        spec = MixtureSpec(n_components=2, covariance="full", obs_cov="learned")
        idata = make_idata(means, weights, POINTS_2D, obs_cov=cov)
    else:
        spec = MixtureSpec(n_components=2, covariance="full", obs_cov=FULL_COV)
        idata = make_idata(means, weights, POINTS_2D)
    return MixtureFit(engine=engine, spec=spec, idata=idata, family="mcmc")


def _mahalanobis_of_outline(patch, ax, center, cov):
    """sqrt((x - center)^T cov^-1 (x - center)) at 64 points of an Ellipse patch's exact
    outline in data units (from its center, width, height and angle; the drawn path is a
    Bezier approximation of it, within ~2e-3). ``ax`` must draw the patch in data units."""
    assert patch.get_transform() == patch.get_patch_transform() + ax.transData
    t = np.linspace(0.0, 2.0 * np.pi, 64)
    a = np.radians(patch.angle)
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    axes = np.vstack([0.5 * patch.width * np.cos(t), 0.5 * patch.height * np.sin(t)])
    xy = (rotation @ axes).T + np.asarray(patch.center) - center
    return np.sqrt(np.einsum("nd,de,ne->n", xy, np.linalg.inv(cov), xy))


@pytest.mark.parametrize("learned", [True, False])
def test_plot_data_draws_the_full_covariance_as_1_and_2_sd_contours(learned):
    fits = {"nuts": _full_fit("nuts", 2, 100, 1, learned)}
    if learned:
        fits["advi"] = _full_fit("advi", 1, 200, 2, learned)
    comp = compare(fits, reference="nuts", name="two correlated blobs")
    for fig in (comp.plot_data(), plots.plot_fit_data(fits["nuts"])):
        (legend,) = _check(fig)
        assert {"component density, 1 sd", "component density, 2 sd"} <= set(_texts(legend))
        assert "2 obs_sd: the component density" not in _texts(legend)
        for ax in [a for a in fig.axes if a.get_visible()]:
            assert ax.get_aspect() == 1.0
            assert ax.get_xlabel() == "feature 0 (data units)"
            assert ax.get_ylabel() == "feature 1 (data units)"
        ax = fig.axes[0]
        nuts = fits["nuts"]
        cov = nuts.posterior_mean("obs_cov") if learned else FULL_COV
        means = nuts.posterior_mean("means")
        contours = [p for p in ax.patches if not p.get_fill()]
        assert len(contours) == 4  # 2 components x (1 sd, 2 sd)
        for k in range(2):
            # every outline vertex lies on the 1-sd or the 2-sd contour of N(mean_k, cov_k)
            # (to 1e-6: the display round trip in float64)
            radii = sorted(
                float(np.median(_mahalanobis_of_outline(p, ax, means[k], cov[k])))
                for p in contours
                if np.allclose(p.center, means[k])
            )
            assert radii == pytest.approx([1.0, 2.0], abs=1e-6)
            for p in contours:
                if np.allclose(p.center, means[k]):
                    r = _mahalanobis_of_outline(p, ax, means[k], cov[k])
                    assert np.ptp(r) < 1e-6
        # the axes hold every 2-sd contour
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        for k in range(2):
            half = 2 * np.sqrt(np.diag(cov[k]))
            assert x0 < means[k, 0] - half[0] and means[k, 0] + half[0] < x1
            assert y0 < means[k, 1] - half[1] and means[k, 1] + half[1] < y1


def test_plot_data_of_a_full_covariance_in_data_units_scales_the_covariance():
    nuts = _full_fit("nuts", 2, 100, 1)
    center, scale = np.array([3.0, 70.0]), np.array([1.1, 13.0])
    fig = plots.plot_fit_data(
        nuts, feature_names=("duration", "waiting"), units="min", data_transform=(center, scale)
    )
    _check(fig)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "duration (min)" and ax.get_ylabel() == "waiting (min)"
    # in data units the covariance is diag(scale) cov diag(scale)
    cov = nuts.posterior_mean("obs_cov")[0] * np.outer(scale, scale)
    mean = center + scale * nuts.posterior_mean("means")[0]
    outlines = [p for p in ax.patches if not p.get_fill() and np.allclose(p.center, mean)]
    radii = sorted(float(np.median(_mahalanobis_of_outline(p, ax, mean, cov))) for p in outlines)
    assert radii == pytest.approx([1.0, 2.0], abs=1e-6)


@pytest.mark.parametrize(
    "learned, kind", [(True, "full"), (False, "full"), (True, "tied"), (True, "spherical")]
)
def test_plot_responsibilities_of_full_tied_and_spherical_fits(learned, kind):
    from scipy.stats import multivariate_normal

    nuts = _full_fit("nuts", 2, 30, 3, learned, kind)
    fig = plots.plot_responsibilities(nuts)
    _check(fig, title_part="Responsibilities")
    assert fig.axes[0].get_aspect() == 1.0
    # oracle: scipy's multivariate normal per draw, normalized, averaged over the draws
    means = nuts.draws("means").reshape(-1, 2, 2)
    weights = nuts.draws("weights").reshape(-1, 2)
    if kind == "spherical":
        covs = nuts.draws("obs_sd").reshape(-1, 2, 2)[..., None] ** 2 * np.eye(2)
    elif learned:
        covs = nuts.draws("obs_cov").reshape(-1, 2, 2, 2)
    else:
        covs = np.broadcast_to(FULL_COV, (len(means), 2, 2, 2))
    resp = np.zeros((POINTS_2D.shape[0], 2))
    for s in range(len(means)):
        dens = np.column_stack(
            [
                weights[s, k] * multivariate_normal(means[s, k], covs[s, k]).pdf(POINTS_2D)
                for k in range(2)
            ]
        )
        resp += dens / dens.sum(1, keepdims=True)
    resp /= len(means)
    colours = np.array([[0.894, 0.102, 0.110], [0.216, 0.494, 0.722]])  # Set1's first two
    expected = np.clip(resp @ colours, 0.0, 1.0)
    # Set1's RGB values are written to 3 decimals here: colours agree within 1e-3 per
    # channel, so the mixes (convex combinations) within 2e-3
    np.testing.assert_allclose(
        fig.axes[0].collections[0].get_facecolors()[:, :3], expected, atol=2e-3
    )


def test_plot_data_of_tied_and_spherical_fits():
    tied = _full_fit("nuts", 2, 50, 4, kind="tied")
    fig = plots.plot_fit_data(tied)
    (legend,) = _check(fig)
    assert "component density, 2 sd" in _texts(legend)
    cov = tied.posterior_mean("obs_cov")
    np.testing.assert_allclose(cov[0], cov[1])  # one shared covariance
    ax, means = fig.axes[0], tied.posterior_mean("means")
    for k in range(2):
        outlines = [p for p in ax.patches if not p.get_fill() and np.allclose(p.center, means[k])]
        radii = sorted(
            float(np.median(_mahalanobis_of_outline(p, ax, means[k], cov[k]))) for p in outlines
        )
        assert radii == pytest.approx([1.0, 2.0], abs=1e-9)
    spherical = _full_fit("nuts", 2, 50, 5, kind="spherical")
    fig = plots.plot_fit_data(spherical)
    (legend,) = _check(fig)
    assert "2 obs_sd: the component density" in _texts(legend)  # as a diagonal fit
    sd = spherical.posterior_mean("obs_sd")
    density = [p for p in fig.axes[0].patches if not p.get_fill()]
    assert len(density) == 2
    for p, s in zip(density, sd, strict=True):
        assert p.width == pytest.approx(4 * s[0]) and p.height == pytest.approx(4 * s[1])


def test_plot_forest_has_a_panel_per_correlation():
    fits = {"nuts": _full_fit("nuts", 2, 100, 1), "advi": _full_fit("advi", 1, 200, 2)}
    comp = compare(fits, reference="nuts")
    fig = comp.plot_forest(feature_names=("duration", "waiting"))
    _check(fig, title_part="Forest plot")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    titles = [ax.get_title() for ax in panels]
    assert titles[-1] == "correlation: duration, waiting"
    assert panels[-1].get_xlabel() == "correlation (unitless)"
    # the nuts mean dot of component k sits at the mean of its correlation draws
    corr = comp.fits["nuts"].draws("obs_corr").reshape(-1, 2, 2, 2)[:, :, 0, 1].mean(0)
    dots = [line for line in panels[-1].get_lines() if line.get_marker() == "o"]
    np.testing.assert_allclose(dots[0].get_xdata(), corr, rtol=1e-12)
