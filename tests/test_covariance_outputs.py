"""Tables and verdicts for fits with a learned full (or tied) covariance, on constructed fits.

The fits are built with ``make_idata(obs_cov=...)`` from draws whose correlations are known,
so every number the tables show can be recomputed with numpy here: a covariance is tabled
as its sds (obs_sd) and its correlations obs_corr[k, i, j] for i < j, with readable labels,
and the verdict rules judge the correlations like any other parameter.
"""

import itertools

import numpy as np
import pytest

from ppl_mixtures import MixtureSpec
from ppl_mixtures.analysis.compare import compare
from ppl_mixtures.analysis.summaries import correlation_label, split_parameter, table_entries
from ppl_mixtures.analysis.verdicts import GROUPS, MEAN_SHIFT_TOL, verdict_rules
from ppl_mixtures.results import MixtureFit, Timings, make_idata

RNG = np.random.default_rng(21)
N_FEATURES = 3
TRUE_MEANS = np.array([[-2.0, -2.0, 0.0], [2.0, 2.0, 1.0]])
TRUE_CORR = np.array(
    [
        [[1.0, 0.6, -0.2], [0.6, 1.0, 0.1], [-0.2, 0.1, 1.0]],
        [[1.0, -0.4, 0.3], [-0.4, 1.0, 0.0], [0.3, 0.0, 1.0]],
    ]
)
TRUE_SD = np.array([[1.0, 2.0, 0.5], [0.8, 1.5, 1.2]])
POINTS = np.concatenate([RNG.normal(m, 1.0, (30, N_FEATURES)) for m in TRUE_MEANS])
SPEC = MixtureSpec(n_components=2, covariance="full", obs_cov="learned")
FAMILIES = {"nuts": "mcmc", "advi": "vi", "em": "point"}
PAIRS = [(i, j) for i, j in itertools.combinations(range(N_FEATURES), 2)]


def covariance_draws(n_chains, n_draws, seed, *, spread=1.0, corr_shift=0.0):
    """Covariance draws (C, S, K, D, D) around TRUE_SD / TRUE_CORR: each draw's correlation
    matrix is the true one with its off-diagonal entries moved by ``corr_shift`` plus
    noise of sd 0.03 * spread, rescaled to the sds (times exp(0.05 * spread * noise)).
    Positive definite for the shifts used here (the smallest eigenvalue of TRUE_CORR is
    above 0.3; moves of a few 0.03 keep it positive)."""
    rng = np.random.default_rng(seed)
    shape = (n_chains, n_draws, 2, N_FEATURES, N_FEATURES)
    noise = 0.03 * spread * rng.standard_normal(shape)
    noise = np.triu(noise, 1) + np.swapaxes(np.triu(noise, 1), -1, -2)
    off = 1.0 - np.eye(N_FEATURES)
    corr = TRUE_CORR + off * corr_shift + noise
    sd = TRUE_SD * np.exp(0.05 * spread * rng.standard_normal(shape[:-1]))
    cov = sd[..., :, None] * corr * sd[..., None, :]
    assert np.linalg.eigvalsh(cov).min() > 0
    return cov


def make_fit(engine, n_chains, n_draws, seed, **kwargs):
    rng = np.random.default_rng(seed + 100)
    means = TRUE_MEANS + 0.15 * rng.standard_normal((n_chains, n_draws, 2, N_FEATURES))
    w0 = 0.5 + 0.05 * rng.standard_normal((n_chains, n_draws))
    idata = make_idata(
        means,
        np.stack([w0, 1 - w0], -1),
        POINTS,
        obs_cov=covariance_draws(n_chains, n_draws, seed, **kwargs),
    )
    return MixtureFit(
        engine=engine,
        spec=SPEC,
        idata=idata,
        timings=Timings(build=1.0, run=2.0),
        family=FAMILIES[engine],
    )


def correlations(fit):
    """obs_corr draws recomputed from obs_cov, (n_draws_total, K, D, D): an independent route."""
    cov = fit.draws("obs_cov").reshape(-1, 2, N_FEATURES, N_FEATURES)
    sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
    return cov / (sd[..., :, None] * sd[..., None, :])


@pytest.fixture(scope="module")
def fits():
    return {
        "nuts": make_fit("nuts", 4, 300, seed=1),
        "advi": make_fit("advi", 1, 1200, seed=2, spread=0.5),
    }


@pytest.fixture(scope="module")
def comparison(fits):
    return compare(fits, reference="nuts")


def test_correlation_rows_are_the_upper_triangle_with_the_draws_mean_and_sd(fits, comparison):
    params = comparison.parameters
    rows = params[params["group"] == "obs_corr"]
    expected_labels = [f"obs_corr[{k},{i},{j}]" for k in range(2) for i, j in PAIRS]
    for name, fit in fits.items():
        mine = rows[rows["engine"] == name].set_index("parameter")
        # K * D(D-1)/2 rows: no diagonal ones, no lower triangle, no raw Cholesky entries
        assert list(mine.index) == expected_labels
        corr = correlations(fit)
        for k, (i, j) in itertools.product(range(2), PAIRS):
            row = mine.loc[f"obs_corr[{k},{i},{j}]"]
            # the same draws through numpy: equal to round-off (1e-12 of values ~0.5)
            assert row["mean"] == pytest.approx(corr[:, k, i, j].mean(), abs=1e-12)
            assert row["sd"] == pytest.approx(corr[:, k, i, j].std(), abs=1e-12)
    # the sds of a covariance are tabled as obs_sd, the square roots of its variances
    sd_rows = params[(params["group"] == "obs_sd") & (params["engine"] == "nuts")]
    cov = fits["nuts"].draws("obs_cov").reshape(-1, 2, N_FEATURES, N_FEATURES)
    expected_sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1)).mean(0).ravel()
    np.testing.assert_allclose(sd_rows["mean"].to_numpy(), expected_sd, rtol=1e-12)
    assert not params["group"].isin(["obs_cov"]).any()


def test_correlation_sd_ratios_count_in_the_engines_width(fits, comparison):
    rows = comparison.parameters
    advi = rows[(rows["engine"] == "advi") & rows["free"]]
    ratio = advi.set_index("parameter")["sd_ratio"]
    corr = {name: correlations(fit) for name, fit in fits.items()}
    for k, (i, j) in itertools.product(range(2), PAIRS):
        expected = corr["advi"][:, k, i, j].std() / corr["nuts"][:, k, i, j].std()
        assert ratio[f"obs_corr[{k},{i},{j}]"] == pytest.approx(expected, rel=1e-10)
    # the engine's sd ratio is the geometric mean over every free row, correlations included
    geometric = float(np.exp(np.log(advi["sd_ratio"]).mean()))
    assert comparison.engines.loc["advi", "sd_ratio"] == pytest.approx(geometric, rel=1e-12)
    assert advi["group"].eq("obs_corr").sum() == 2 * len(PAIRS)


def test_markdown_labels_correlations_by_feature_name_and_leaves_them_unscaled(fits):
    center, scale = np.array([3.0, 70.0, 10.0]), np.array([1.1, 13.0, 2.0])
    names = ("duration", "waiting", "height")
    comp = compare(
        fits,
        reference="nuts",
        feature_names=names,
        units=("min", "min", "m"),
        data_transform=(center, scale),
    )
    text = comp.to_markdown()
    corr = correlations(fits["nuts"])
    for k, (i, j) in itertools.product(range(2), PAIRS):
        label = f"corr[{k}: {names[i]}, {names[j]}]"
        # a correlation is unit-free and unchanged by rescaling the features: the cell is
        # the mean ± sd of the standardized fit's correlation draws, 3 decimals
        cell = f"{corr[:, k, i, j].mean():.3f} ± {corr[:, k, i, j].std():.3f}"
        assert f"| {label} | {cell} |" in text
        assert f"| {label} | " in text.split("sd ratio engine / nuts")[1]  # the ratio table
    assert "obs_corr[" not in text.split("Posterior mean ± sd")[1].split("How to read")[0]
    assert "corr[0: duration, duration]" not in text  # no diagonal ones
    assert "Correlations corr[k: i, j] are unit-free" in text
    # without feature names the features are numbered
    plain = compare(fits, reference="nuts").to_markdown()
    assert "| corr[1: feature 0, feature 2] |" in plain


def test_a_shift_in_a_correlation_is_named_in_the_verdict(fits):
    # advi's correlations all moved by +0.15: 0.15 / 0.03 = 5 reference sd (> MEAN_SHIFT_TOL)
    shifted = make_fit("advi", 1, 1200, seed=2, corr_shift=0.15)
    comp = compare({"nuts": fits["nuts"], "advi": shifted}, reference="nuts")
    verdict = comp.engines.loc["advi", "verdict"]
    rows = comp.parameters[(comp.parameters["engine"] == "advi")]
    corr_rows = rows[rows["group"] == "obs_corr"]
    assert corr_rows["significant"].all() and (corr_rows["shift"] > MEAN_SHIFT_TOL).all()
    worst = corr_rows.loc[corr_rows["mean_shift"].idxmax()]
    assert f"{worst['parameter']} {worst['shift']:.1f} reference sd above" in verdict
    # the engine table names the worst shift with its readable label
    k, i, j = (int(c) for c in worst["parameter"][len("obs_corr[") : -1].split(","))
    engine_line = next(
        line for line in comp.to_markdown().splitlines() if line.startswith("| advi |")
    )
    assert f"{worst['mean_shift']:.2f} (corr[{k}: feature {i}, feature {j}])" in engine_line
    # the same fits without the shift name no correlation
    assert "obs_corr" not in compare(fits, reference="nuts").engines.loc["advi", "verdict"]


def test_a_diagonal_comparison_has_no_correlation_rows_and_the_same_rules():
    rng = np.random.default_rng(5)
    means = TRUE_MEANS + 0.1 * rng.standard_normal((2, 50, 2, N_FEATURES))
    sd = np.exp(0.05 * rng.standard_normal(means.shape))
    weights = np.full((2, 50, 2), 0.5)
    fit = MixtureFit(
        engine="nuts",
        spec=MixtureSpec(n_components=2, obs_sd="learned"),
        idata=make_idata(means, weights, POINTS, obs_sd=sd),
        family="mcmc",
    )
    comp = compare({"nuts": fit}, reference="nuts")
    assert set(comp.parameters["group"]) == {"means", "weights", "obs_sd"}
    assert "(means, weights, obs_sd) is named" in comp.rules_text()
    with_corr = tuple(g for g in GROUPS if g != "dp_alpha")  # a learned DP alpha adds one
    assert "(means, weights, obs_sd, obs_corr) is named" in verdict_rules(with_corr)


def test_labels_and_entries_of_a_correlation():
    labels, entries = table_entries("obs_corr", (2, 3, 3))
    assert labels == [f"obs_corr[{k},{i},{j}]" for k in range(2) for i, j in PAIRS]
    # flat index of (k, i, j) in a (2, 3, 3) array
    assert list(entries) == [9 * k + 3 * i + j for k in range(2) for i, j in PAIRS]
    assert table_entries("means", (2, 3))[0] == [
        f"means[{k},{d}]" for k in range(2) for d in range(3)
    ]
    assert split_parameter("obs_corr[1,0,2]") == ("obs_corr", None)
    assert split_parameter("obs_sd[1,2]") == ("obs_sd", 2)
    assert correlation_label("obs_corr[1,0,2]", ("a", "b", "c")) == "corr[1: a, c]"
    with pytest.raises(ValueError, match=r"^label: expected a correlation label"):
        correlation_label("means[0,1]")


def _shared_fit(engine, covariance, n_chains, n_draws, seed, spread=1.0):
    """A tied fit (one covariance repeated for both components) or a spherical one (one sd
    per component, repeated across features)."""
    rng = np.random.default_rng(seed)
    means = TRUE_MEANS + 0.15 * rng.standard_normal((n_chains, n_draws, 2, N_FEATURES))
    w0 = 0.5 + 0.05 * rng.standard_normal((n_chains, n_draws))
    weights = np.stack([w0, 1 - w0], -1)
    if covariance == "tied":
        cov = covariance_draws(n_chains, n_draws, seed, spread=spread)[:, :, :1]
        idata = make_idata(means, weights, POINTS, obs_cov=np.repeat(cov, 2, axis=2))
    else:
        sd = np.exp(0.05 * spread * rng.standard_normal((n_chains, n_draws, 2, 1)))
        idata = make_idata(means, weights, POINTS, obs_sd=np.repeat(sd, N_FEATURES, axis=3))
    return MixtureFit(
        engine=engine,
        spec=MixtureSpec(n_components=2, covariance=covariance),
        idata=idata,
        family=FAMILIES[engine],
    )


@pytest.mark.parametrize("covariance", ["tied", "spherical"])
def test_repeated_rows_of_tied_and_spherical_covariances_are_counted_once(covariance):
    fits = {
        "nuts": _shared_fit("nuts", covariance, 4, 200, 1),
        "advi": _shared_fit("advi", covariance, 1, 800, 2, spread=0.5),
    }
    comp = compare(fits, reference="nuts")
    rows = comp.parameters[comp.parameters["engine"] == "advi"].set_index("parameter")
    for label, row in rows.iterrows():
        name, idx = label.rstrip("]").split("[")
        idx = [int(i) for i in idx.split(",")]
        repeats = (covariance == "tied" and name in ("obs_sd", "obs_corr") and idx[0] > 0) or (
            covariance == "spherical" and name == "obs_sd" and idx[1] > 0
        )
        if repeats:  # shown, with the numbers of the entry it repeats, but not counted
            assert not row["free"]
            first = (
                f"{name}[0,{','.join(map(str, idx[1:]))}]"
                if covariance == "tied"
                else (f"obs_sd[{idx[0]},0]")
            )
            assert row["mean"] == rows.loc[first, "mean"] and rows.loc[first, "free"]
    free = rows[rows["free"]]
    n_shared = N_FEATURES + len(PAIRS) if covariance == "tied" else 2
    # means (2 x 3) + one free weight + the covariance's distinct entries
    assert len(free) == 6 + 1 + n_shared
    geometric = float(np.exp(np.log(free["sd_ratio"]).mean()))
    assert comp.engines.loc["advi", "sd_ratio"] == pytest.approx(geometric, rel=1e-12)
