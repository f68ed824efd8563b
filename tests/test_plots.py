"""plots: every figure has a title, labelled axes and a legend; nothing is shown."""

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from ppl_mixtures import MixtureSpec, plots
from ppl_mixtures.compare import compare
from ppl_mixtures.results import MixtureFit, make_idata

RNG = np.random.default_rng(11)
POINTS_2D = np.concatenate([RNG.normal(-2, 1, (30, 2)), RNG.normal(2, 1, (30, 2))])
POINTS_1D = np.concatenate([RNG.normal(-5, 1, 30), RNG.normal(0, 1, 30), RNG.normal(5, 1, 30)])


def _fit(engine, points, spec, n_chains, n_draws, scale, seed, elbo=None, obs_sd=False):
    rng = np.random.default_rng(seed)
    n_features = points.shape[1]
    centers = np.linspace(-2, 2, spec.n_components)[:, None] * np.ones(n_features)
    means = centers + scale * rng.standard_normal((n_chains, n_draws, spec.n_components, n_features))
    weights = rng.dirichlet(np.full(spec.n_components, 200.0), size=(n_chains, n_draws))
    if spec.fixed_weights:
        weights = np.full_like(weights, 1.0 / spec.n_components)
    sd = np.exp(0.05 * rng.standard_normal(means.shape)) if obs_sd else None
    return MixtureFit(engine=engine, spec=spec, idata=make_idata(means, weights, points, obs_sd=sd),
                      elbo=elbo)


@pytest.fixture(scope="module")
def comparison_2d():
    spec = MixtureSpec(n_components=2, obs_sd="learned")
    noisy = -300 - 500 * np.exp(-np.arange(3000) / 300) + RNG.normal(0, 8, 3000)
    fits = {"nuts": _fit("nuts", POINTS_2D, spec, 2, 200, 0.2, 1, obs_sd=True),
            "advi": _fit("advi", POINTS_2D, spec, 1, 300, 0.1, 2, elbo=noisy, obs_sd=True),
            "cavi": _fit("cavi", POINTS_2D, spec, 1, 300, 0.1, 3,
                         elbo=-320 - 50 * np.exp(-np.arange(40) / 4.0), obs_sd=True),
            "em": _fit("em", POINTS_2D, spec, 1, 1, 0.0, 4, obs_sd=True)}
    nuts = fits["nuts"]
    fits["nuts"] = nuts.replace(extras={"log_evidence": -290.0})
    return compare(fits, name="two blobs")


@pytest.fixture(scope="module")
def comparison_1d():
    spec = MixtureSpec(n_components=3, weights="fixed", mean_prior_sd=10.0)
    return compare({"nuts": _fit("nuts", POINTS_1D[:, None], spec, 2, 100, 0.1, 5),
                    "cavi": _fit("cavi", POINTS_1D[:, None], spec, 1, 100, 0.05, 6)},
                   name="1-D")


def _check(fig, *, title_part=None):
    assert isinstance(fig, Figure)
    titles = [fig._suptitle.get_text() if fig._suptitle else ""]
    titles += [ax.get_title() for ax in fig.axes]
    assert any(titles), "figure has no title"
    if title_part:
        assert any(title_part in t for t in titles)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert any(ax.get_xlabel() for ax in visible) or (fig._supxlabel and fig._supxlabel.get_text())
    legends = [ax.get_legend() for ax in visible if ax.get_legend()] + list(fig.legends)
    assert legends, "figure has no legend"
    return legends


def test_backend_is_headless():
    assert matplotlib.get_backend().lower() == "agg"


def test_plot_data_2d_draws_means_and_two_ellipses_per_component(comparison_2d):
    fig = comparison_2d.plot_data()
    (legend,) = _check(fig, title_part="two blobs")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "feature 0 (data units)" and ax.get_ylabel().startswith("feature 1")
    assert len(ax.patches) == 4 * 2 * 2  # engines x components x (1 sd, 2 sd)
    labels = [t.get_text() for t in legend.get_texts()]
    assert {"nuts means", "advi means", "cavi means", "em means", "1 sd", "2 sd"} <= set(labels)
    nuts_sd = comparison_2d.fits["nuts"].posterior_mean("obs_sd")
    assert ax.patches[0].width == pytest.approx(2 * nuts_sd[0, 0])


def test_plot_data_1d_is_a_histogram_with_densities(comparison_1d):
    fig = comparison_1d.plot_data()
    (legend,) = _check(fig)
    assert fig.axes[0].get_ylabel().startswith("density")
    labels = [t.get_text() for t in legend.get_texts()]
    assert "nuts density" in labels and "cavi density" in labels


def test_plot_elbo_smooths_noisy_traces_and_marks_the_evidence(comparison_2d):
    fig = comparison_2d.plot_elbo()
    (legend,) = _check(fig, title_part="ELBO")
    ax = fig.axes[0]
    assert "nats" in ax.get_ylabel() and ax.get_xscale() == "log"
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["advi (running mean)", "cavi", "log p(x) ≈ -290.0 (nuts)"]
    assert ax.get_ylim()[1] >= -290.0  # the evidence line is in view


def test_plot_elbo_without_any_trace_says_so(comparison_1d):
    with pytest.raises(ValueError, match="expected at least one fit with an ELBO trace"):
        comparison_1d.plot_elbo()


def test_plot_marginals_one_panel_per_varying_parameter(comparison_2d, comparison_1d):
    fig = comparison_2d.plot_marginals()
    _check(fig, title_part="Posterior marginals")
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert len(titles) == 4 + 2 + 4  # means, weights, obs_sd
    fig_1d = comparison_1d.plot_marginals()  # fixed weights have no spread: left out
    assert [ax.get_title() for ax in fig_1d.axes if ax.get_visible()] == [
        "means[0,0]", "means[1,0]", "means[2,0]"]


def test_arviz_forest_and_trace(comparison_2d):
    fig = comparison_2d.plot_forest()
    legends = _check(fig, title_part="Forest")
    texts = {t.get_text() for lg in legends for t in lg.get_texts()}
    assert {"nuts", "advi", "cavi", "em"} <= texts
    trace = comparison_2d.plot_trace()
    _check(trace, title_part="nuts (2 chains x 200 draws)")


def test_plot_responsibilities_2d_and_1d(comparison_2d, comparison_1d):
    fig = comparison_2d.plot_responsibilities()
    (legend,) = _check(fig, title_part="Responsibilities")
    assert [t.get_text() for t in legend.get_texts()][:2] == ["component 0", "component 1"]
    colours = fig.axes[0].collections[0].get_facecolors()
    assert colours.shape == (POINTS_2D.shape[0], 4)
    fig_1d = plots.plot_responsibilities(comparison_1d.fits["cavi"])
    _check(fig_1d)
    assert fig_1d.axes[0].get_ylabel() == "responsibility p(z = k | x)"
