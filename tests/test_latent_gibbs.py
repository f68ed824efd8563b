"""Engine "latent_gibbs": explicit z (CategoricalGibbsMetropolis) + NUTS/Metropolis for the rest."""

import arviz as az
import numpy as np
import pytest

import ppl_mixtures as pmx
from ppl_mixtures import MixtureSpec, datasets, relabel
from ppl_mixtures.analysis.diagnostics import responsibilities
from ppl_mixtures.model.density import mixture_logp

SPEC = MixtureSpec(n_components=2, mean_prior_sd=1.0, dirichlet_alpha=0.1, obs_sd=1.0)
# Posterior means of seed 001's 100-point data (its Metropolis run; our NUTS agrees).
TRUE_MEANS = np.array([[-0.79, -1.46], [0.81, 1.00]])
TRUE_WEIGHTS = np.array([0.14, 0.86])
#: The references are rounded to 0.01 from long runs; a fit's posterior mean may differ from
#: them by K_SE times its MCSE (sd / sqrt(ESS), arviz) plus that rounding: a normal deviate
#: beyond 4 standard errors has probability 6e-5.
K_SE = 4.0
REFERENCE_ERROR = 0.01


def assert_mean_matches_reference(fit, name, reference):
    """|posterior mean - reference| < K_SE * MCSE + REFERENCE_ERROR per coordinate."""
    draws = fit.idata["posterior"][name]
    mean = draws.mean(("chain", "draw")).values
    mcse = az.mcse(draws).values
    assert np.all(np.abs(mean - reference) < K_SE * mcse + REFERENCE_ERROR), (mean, reference, mcse)


@pytest.fixture(scope="module")
def points():
    return datasets.advi_notebook_points(100)


@pytest.fixture(scope="module")
def gibbs_nuts(points):
    fit = pmx.fit(
        points,
        SPEC,
        engine="latent_gibbs",
        draws=250,
        tune=250,
        chains=2,
        random_seed=1,
        progressbar=False,
    )
    return relabel(fit, reference=TRUE_MEANS)


def test_schema_and_sampler_info(gibbs_nuts):
    fit = gibbs_nuts
    post = fit.idata["posterior"]
    assert post["means"].shape == (2, 250, 2, 2) and post["weights"].shape == (2, 250, 2)
    assert post["z"].dims == ("chain", "draw", "obs") and post["z"].shape == (2, 250, 100)
    assert set(np.unique(post["z"].values)) <= {0, 1}
    assert fit.parameter_names() == ("means", "weights")  # z is not a model parameter
    assert fit.details.steps == ("CategoricalGibbsMetropolis: [z]", "NUTS: [weights, means]")
    z = fit.draws("z")
    assert fit.details.z_switch_rate == pytest.approx(float((z[:, 1:] != z[:, :-1]).mean()))
    assert 0 < fit.details.z_switch_rate < 0.5  # z moves, but is not resampled blindly
    assert fit.sampler.divergences == 0
    assert fit.engine == "latent_gibbs" and fit.timings.run > 0


def test_posterior_matches_the_marginal_posterior(gibbs_nuts):
    # z summed out or sampled: the parameters have the same posterior. A z step that
    # ignores x (PyMC 6.4's proposal="proportional") gives two blurred components at the
    # data mean with weights near 1/2, far outside these tolerances.
    assert_mean_matches_reference(gibbs_nuts, "means", TRUE_MEANS)
    assert_mean_matches_reference(gibbs_nuts, "weights", TRUE_WEIGHTS)


def test_z_frequencies_match_responsibilities(gibbs_nuts):
    # Rao-Blackwell: the posterior frequency of z_i = k estimates p(z_i = k | x), which
    # responsibilities() computes from the parameter draws alone; relabel maps z too.
    # Tolerance: freq_i is a mean of 0/1 indicators, with standard error
    # sqrt(p (1 - p) / ESS_i) (ESS of the indicator's chains, arviz; p floored at 1/draws
    # for points that never switch); 5 se with 100 points: P(any beyond) ~ 6e-5.
    z = gibbs_nuts.draws("z")
    indicator = (z == 1).astype(float)  # (chain, draw, obs)
    freq = indicator.mean(axis=(0, 1))
    resp = responsibilities(gibbs_nuts)[:, 1]
    n_draws = indicator.shape[0] * indicator.shape[1]
    ess = np.array([az.ess(indicator[..., i]) for i in range(indicator.shape[-1])])
    ess = np.where(np.isfinite(ess), ess, n_draws)
    var = np.maximum(freq * (1 - freq), 1.0 / n_draws)
    se = np.sqrt(var / ess)
    assert np.all(np.abs(freq - resp) < 5 * se), np.max(np.abs(freq - resp) / se)


def test_log_likelihood_is_the_marginal_density(gibbs_nuts, points):
    ll = gibbs_nuts.idata["log_likelihood"]["x"].values
    assert ll.shape == (2, 250, 100)
    expected = mixture_logp(
        points, gibbs_nuts.draws("weights")[1, 7], gibbs_nuts.draws("means")[1, 7], 1.0
    )
    np.testing.assert_allclose(ll[1, 7], expected, rtol=1e-12)


def test_metropolis_for_the_parameters_without_z(points):
    fit = pmx.fit(
        points,
        SPEC,
        engine="latent_gibbs",
        continuous_step="metropolis",
        keep_z=False,
        draws=60,
        tune=60,
        chains=1,
        random_seed=2,
        progressbar=False,
        log_likelihood=False,
    )
    assert "z" not in fit.idata["posterior"].data_vars
    assert "log_likelihood" not in fit.idata.children
    assert fit.details.steps[1] == "Metropolis: [weights, means]"
    assert "accepted" in fit.idata["sample_stats"].data_vars
    assert fit.options["continuous_step"] == "metropolis"


def test_bad_options_are_rejected(points):
    with pytest.raises(
        ValueError, match="continuous_step: expected one of 'nuts', 'metropolis', got 'hmc'"
    ):
        pmx.fit(points, SPEC, engine="latent_gibbs", continuous_step="hmc")
    with pytest.raises(TypeError, match="keep_z: expected True or False"):
        pmx.fit(points, SPEC, engine="latent_gibbs", keep_z=1)


def test_one_component_refused_up_front_naming_the_engines_that_can(points):
    spec = MixtureSpec(n_components=1, mean_prior_sd=1.0, obs_sd=1.0)
    with pytest.raises(
        ValueError,
        match=r"^n_components: expected at least 2 components for "
        r"engine 'latent_gibbs' .*got 1\. Fit K = 1 with "
        r"engine='nuts'",
    ):
        pmx.fit(points, spec, engine="latent_gibbs", draws=10, tune=10, progressbar=False)


@pytest.mark.parametrize(
    "option, value, err, match",
    [
        ("random_seed", -1, ValueError, r"^random_seed: expected an integer >= 0, got -1"),
        ("random_seed", 0.3, TypeError, r"^random_seed: expected an integer, got 0\.3"),
        ("random_seed", True, TypeError, r"^random_seed: expected an integer, got True"),
        ("progressbar", "no", TypeError, r"^progressbar: expected True or False, got 'no'"),
        ("draws", 10**12, ValueError, r"^draws: expected at most \d+ draws here"),
    ],
)
def test_options_checked_before_any_model_is_built(points, option, value, err, match):
    with pytest.raises(err, match=match):
        pmx.fit(points, SPEC, engine="latent_gibbs", **{"progressbar": False, option: value})


def test_numpy_integer_seed_gives_the_same_draws_as_int(points):
    kwargs = dict(draws=20, tune=20, chains=1, progressbar=False, log_likelihood=False)
    a = pmx.fit(points[:30], SPEC, engine="latent_gibbs", random_seed=np.int64(3), **kwargs)
    b = pmx.fit(points[:30], SPEC, engine="latent_gibbs", random_seed=3, **kwargs)
    np.testing.assert_array_equal(a.draws("means"), b.draws("means"))
