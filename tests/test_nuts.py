"""The ``nuts`` engine and the shared PyMC helpers (inference/pymc/sampling.py)."""

import logging

import arviz as az
import numpy as np
import pytest

from ppl_mixtures import MixtureSpec, fit
from ppl_mixtures.inference.pymc.sampling import pointwise_log_likelihood, sampler_diagnostics
from ppl_mixtures.model.density import mixture_logp

TRUE_MEANS = np.array([[-1.0, -1.5], [1.0, 1.0]])


def seed_001_points(n_samples=100):
    """Seed 001's generator (RandomState(123), multinomial labels, unit-covariance draws)."""
    rng = np.random.RandomState(123)
    zs = np.array([rng.multinomial(1, [0.2, 0.8]) for _ in range(n_samples)]).T
    xs = [
        z[:, None] * rng.multivariate_normal(m, np.eye(2), size=n_samples)
        for z, m in zip(zs, TRUE_MEANS, strict=True)
    ]
    return np.sum(np.dstack(xs), axis=2)


POINTS = seed_001_points()
SPEC = MixtureSpec(n_components=2, mean_prior_sd=1.0, dirichlet_alpha=0.1, obs_sd=1.0, ordered=True)
# small settings that finish in seconds on 100 points
QUICK = {"draws": 200, "tune": 200, "chains": 2, "cores": 1, "progressbar": False}
#: Tolerances in standard errors. Under a well-specified model the posterior is close to a
#: Normal around a point within ~1 sd of the truth (Bernstein-von Mises), so a coordinate
#: whose truth sits more than K_SD posterior sds from the posterior mean fails with
#: probability < 1e-4; the Monte Carlo error of the mean (MCSE = sd / sqrt(ESS)) adds in
#: quadrature.
K_SD = 4.0


def assert_truth_within_posterior(draws, truth, k=K_SD):
    """|posterior mean - truth| < k sqrt(sd^2 + MCSE^2), coordinate by coordinate.

    ``draws``: a DataArray with dims (chain, draw, ...); ``truth``: the trailing shape.
    """
    mean = draws.mean(("chain", "draw")).values
    sd = draws.std(("chain", "draw")).values
    mcse = az.mcse(draws).values
    scale = np.sqrt(sd**2 + mcse**2)
    assert np.all(np.abs(mean - truth) < k * scale), (mean, truth, scale)


@pytest.fixture(scope="module")
def nuts_fit():
    return fit(POINTS, SPEC, engine="nuts", random_seed=5, **QUICK)


def test_nuts_schema_and_sampler_stats(nuts_fit):
    post = nuts_fit.idata["posterior"]
    assert post["means"].dims == ("chain", "draw", "component", "feature")
    assert post["weights"].dims == ("chain", "draw", "component")
    assert list(post["component"].values) == [0, 1]
    assert list(post["feature"].values) == [0, 1]
    assert nuts_fit.idata["observed_data"]["x"].dims == ("obs", "feature")
    np.testing.assert_array_equal(nuts_fit.points, POINTS)
    assert nuts_fit.idata["log_likelihood"]["x"].dims == ("chain", "draw", "obs")
    assert {"diverging", "tree_depth", "step_size"} <= set(nuts_fit.idata["sample_stats"].data_vars)
    assert nuts_fit.n_chains == 2 and nuts_fit.n_draws == 200 and nuts_fit.n_iter == 200
    assert nuts_fit.timings.build > 0 and nuts_fit.timings.run > 0
    assert nuts_fit.timings.run == pytest.approx(post.attrs["sampling_time"])
    sampler = nuts_fit.sampler
    assert sampler.n_chains == 2 and sampler.n_draws == 200
    assert sampler.divergences == 0 and sampler.max_treedepth_hits == 0
    # target_accept 0.9: the adapted mean acceptance statistic sits near it
    assert 0.5 < sampler.mean_acceptance <= 1.0
    assert len(sampler.step_size) == 2 and all(size > 0 for size in sampler.step_size)
    assert nuts_fit.details.model == "marginal"
    assert nuts_fit.options["random_seed"] == 5


def test_nuts_recovers_seed_001_means_in_order(nuts_fit):
    means = nuts_fit.draws("means")
    assert np.all(np.diff(means[..., 0], axis=-1) > 0)  # ordered on feature 0, every draw
    # the data were drawn with TRUE_MEANS and weights (0.2, 0.8)
    post = nuts_fit.idata["posterior"]
    assert_truth_within_posterior(post["means"], TRUE_MEANS)
    assert_truth_within_posterior(post["weights"], np.array([0.2, 0.8]))
    assert float(az.rhat(nuts_fit.idata["posterior"]["means"]).max()) < 1.05


def test_log_likelihood_matches_pymc_and_loo_works(nuts_fit):
    import pymc as pm

    from ppl_mixtures.inference.pymc.models import build_marginal_model

    draws = nuts_fit.idata["posterior"].to_dataset()[["means_first", "means_rest", "weights"]]
    small = az.from_dict(
        {"posterior": {k: draws[k].values[:, :5] for k in draws.data_vars}},
        dims={
            "means_first": ["component"],
            "means_rest": ["component", "feature_rest"],
            "weights": ["component"],
        },
        coords={"component": [0, 1], "feature_rest": [1]},
    )
    pm.compute_log_likelihood(small, model=build_marginal_model(POINTS, SPEC), progressbar=False)
    ours = nuts_fit.idata["log_likelihood"]["x"].values[:, :5]
    assert small["log_likelihood"]["x"].dims == ("chain", "draw", "obs")
    np.testing.assert_allclose(small["log_likelihood"]["x"].values, ours, rtol=1e-10)
    loo = az.loo(nuts_fit.idata)
    assert np.isfinite(loo.elpd) and loo.n_data_points == 100


def test_each_chain_starts_from_its_own_point(nuts_fit):
    from ppl_mixtures.inference.pymc.models import initial_points

    starts = nuts_fit.details.starts
    assert len(starts) == nuts_fit.n_chains == 2
    assert not np.array_equal(starts[0]["means_first"], starts[1]["means_first"])
    expected = initial_points(SPEC, POINTS, 2, random_seed=5)  # reproducible from the seed
    for got, want in zip(starts, expected, strict=True):
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    # both chains found the same mode from their own starts: their means differ by less
    # than 5 standard errors of the difference, sqrt(MCSE_0^2 + MCSE_1^2) with each chain's
    # MCSE = sd / sqrt(ESS) (P(|z| > 5) < 1e-6); a chain in the minor mode of the ordering
    # differs by > 1, dozens of MCSEs
    draws = nuts_fit.idata["posterior"]["means"]
    per_chain = draws.mean("draw").values  # (chain, K, D)
    mcse = np.stack([az.mcse(draws.isel(chain=[c])).values for c in range(2)])
    gap = np.abs(per_chain[0] - per_chain[1])
    assert np.all(gap < 5 * np.sqrt(mcse[0] ** 2 + mcse[1] ** 2)), (gap, mcse)


def test_same_seed_same_draws(nuts_fit):
    again = fit(POINTS, SPEC, engine="nuts", random_seed=5, log_likelihood=False, **QUICK)
    np.testing.assert_array_equal(again.draws("means"), nuts_fit.draws("means"))
    np.testing.assert_array_equal(again.draws("weights"), nuts_fit.draws("weights"))
    assert "log_likelihood" not in again.idata.children


def test_learned_sd_with_builtin_model_1d(caplog):
    spec = MixtureSpec(2, obs_sd="learned", mean_prior_sd=3.0)
    points = np.concatenate([np.full(20, -2.0), np.full(20, 2.0)])[:, None]
    points += np.random.default_rng(0).normal(scale=0.5, size=points.shape)
    with caplog.at_level(logging.WARNING):
        result = fit(
            points,
            spec,
            engine="nuts",
            model="builtin",
            draws=100,
            tune=150,
            chains=1,
            cores=1,
            random_seed=2,
            progressbar=False,
        )
    assert result.idata["posterior"]["obs_sd"].dims == ("chain", "draw", "component", "feature")
    assert result.idata["posterior"].attrs["model"] == "builtin"
    assert result.idata["observed_data"]["x"].shape == (40, 1)
    # simulated with means -2 and 2 and sd 0.5 (unordered spec: sort the components by
    # their posterior mean, as the truth is sorted; one chain stays in one label mode)
    order = np.argsort(result.posterior_mean("means")[:, 0])
    post = result.idata["posterior"].to_dataset().isel(component=order)
    assert_truth_within_posterior(post["means"], np.array([[-2.0], [2.0]]))
    assert_truth_within_posterior(post["obs_sd"], np.full((2, 1), 0.5))


@pytest.mark.parametrize(
    "option, value, error, message",
    [
        ("draws", 0, ValueError, "draws: expected an integer >= 1, got 0"),
        ("chains", 1.5, TypeError, "chains: expected an integer, got 1.5"),
        ("target_accept", 1.0, ValueError, r"target_accept: expected a number in \(0, 1\)"),
        ("model", "mixture", ValueError, "model: expected one of 'marginal', 'builtin'"),
        ("random_seed", -1, ValueError, "random_seed: expected an integer >= 0"),
        ("progressbar", "no", TypeError, "progressbar: expected True or False"),
    ],
)
def test_bad_options_raise(option, value, error, message):
    with pytest.raises(error, match=message):
        fit(POINTS, SPEC, engine="nuts", **{option: value})


def test_huge_draws_are_refused_before_anything_is_built(monkeypatch):
    from ppl_mixtures.inference.pymc import models
    from ppl_mixtures.inference.pymc.sampling import SAMPLE_STATS_PER_DRAW
    from ppl_mixtures.validation import MAX_STORED_VALUES

    def never(*args, **kwargs):
        raise AssertionError("the model was built before draws was checked")

    monkeypatch.setattr(models, "build_marginal_model", never)
    with pytest.raises(ValueError, match=r"^draws: expected at most \d+ draws here"):
        fit(POINTS, SPEC, engine="nuts", draws=10**12)
    # the limit: 4 chains x (K(4D + 2) + stats + N log-likelihood values) per draw
    n, d = POINTS.shape
    per_draw = 4 * (SPEC.n_components * (4 * d + 2) + SAMPLE_STATS_PER_DRAW + n)
    limit = MAX_STORED_VALUES // per_draw
    with pytest.raises(ValueError, match=f"expected at most {limit} draws"):
        fit(POINTS, SPEC, engine="nuts", draws=limit + 1, chains=4)
    # without the log-likelihood a draw stores less, so more draws are allowed
    small = MAX_STORED_VALUES // (4 * (SPEC.n_components * (4 * d + 2) + SAMPLE_STATS_PER_DRAW))
    with pytest.raises(ValueError, match=f"expected at most {small} draws"):
        fit(POINTS, SPEC, engine="nuts", draws=small + 1, chains=4, log_likelihood=False)


def test_helpers_pointwise_log_likelihood_and_empty_diagnostics():
    rng = np.random.default_rng(1)
    means = rng.normal(size=(2, 3, 2, 2))
    weights = rng.dirichlet(np.ones(2), size=(2, 3))
    got = pointwise_log_likelihood(POINTS, means, weights, 1.0, chunk_elements=500)
    assert got.shape == (2, 3, 100)
    np.testing.assert_allclose(got[1, 2], mixture_logp(POINTS, weights[1, 2], means[1, 2], 1.0))
    # no sample_stats (e.g. draws from q): no sampler record
    assert sampler_diagnostics(az.from_dict({"posterior": {"a": np.zeros((1, 2))}})) is None


def test_parallel_chains_with_the_fused_density():
    """cores=2 pickles the model (and its fused Ops) into worker processes."""
    rng = np.random.default_rng(4)
    points = np.concatenate([rng.normal(-2.0, 1.0, (250, 2)), rng.normal(2.0, 1.0, (250, 2))])
    spec = MixtureSpec(2, ordered=True, mean_prior_sd=3.0)
    result = fit(
        points,
        spec,
        engine="nuts",
        draws=60,
        tune=100,
        chains=2,
        cores=2,
        random_seed=8,
        progressbar=False,
        log_likelihood=False,
    )
    assert result.n_chains == 2 and result.sampler.divergences == 0
    assert_truth_within_posterior(
        result.idata["posterior"]["means"], np.array([[-2.0, -2.0], [2.0, 2.0]])
    )


def test_sample_stats_fit_the_per_draw_budget(nuts_fit):
    from ppl_mixtures.inference.pymc.sampling import SAMPLE_STATS_PER_DRAW

    stats = nuts_fit.idata["sample_stats"]
    per_draw = sum(int(np.prod(stats[name].shape[2:])) for name in stats.data_vars)
    assert per_draw <= SAMPLE_STATS_PER_DRAW  # check_draws's count is an upper bound
    post = nuts_fit.idata["posterior"]
    k, d = nuts_fit.n_components, nuts_fit.n_features
    assert sum(int(np.prod(post[name].shape[2:])) for name in post.data_vars) <= k * (4 * d + 2)


def test_a_fit_checks_its_data_once(monkeypatch):
    """``ppl_mixtures.fit`` validates the points; the engine and the builders trust them."""
    from ppl_mixtures.inference.pymc import models

    def refuse(*args, **kwargs):
        raise AssertionError("the builders validated the points again")

    monkeypatch.setattr(models, "check_points", refuse)
    result = fit(
        POINTS[:30],
        SPEC,
        engine="nuts",
        draws=5,
        tune=5,
        chains=1,
        cores=1,
        random_seed=1,
        progressbar=False,
        log_likelihood=False,
    )
    assert result.n_draws == 5
    with pytest.raises(AssertionError, match="validated the points again"):
        models.build_marginal_model(POINTS, SPEC)  # public use: checked


@pytest.mark.parametrize("engine", ["nuts", "metropolis", "smc", "latent_gibbs"])
def test_every_option_has_help_and_a_default_that_passes_its_own_checks(engine):
    """The CLI builds --help from the options dataclass, and ``Options()`` must be valid."""
    import dataclasses

    from ppl_mixtures.inference.registry import get_engine

    options = get_engine(engine).options
    fields = dataclasses.fields(options)
    assert fields and all(f.metadata.get("help", "").strip() for f in fields)
    options()  # raises if a default fails the dataclass's own checks
