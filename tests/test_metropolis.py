"""Engine "metropolis": seed 001's recipe (find_MAP + Metropolis), blocked and compound variants."""

import numpy as np
import pytest

import ppl_mixtures as pmx
from ppl_mixtures import MixtureSpec, datasets, relabel

SPEC = MixtureSpec(n_components=2, mean_prior_sd=1.0, dirichlet_alpha=0.1, obs_sd=1.0)
# Seed 001's 100-point data; the posterior means it reports (its Metropolis run and our
# NUTS agree): component near (0.81, 1.00) with weight ~0.86, and near (-0.79, -1.46).
TRUE_MEANS = np.array([[-0.79, -1.46], [0.81, 1.00]])
TRUE_WEIGHTS = np.array([0.14, 0.86])
QUICK = {"draws": 300, "tune": 300, "chains": 2, "progressbar": False}
#: The reference values are rounded to 0.01 from long runs (their own Monte Carlo error is
#: below that), so a fit's posterior mean may differ from them by its MCSE (sd / sqrt(ESS),
#: from arviz) times K_MCSE plus REFERENCE_ERROR: a normal deviate beyond 4 standard errors
#: has probability 6e-5.
K_MCSE = 4.0
REFERENCE_ERROR = 0.01


def assert_mean_matches_reference(fit, name, reference):
    """|posterior mean - reference| < K_MCSE * MCSE + REFERENCE_ERROR per coordinate."""
    import arviz as az

    draws = fit.idata["posterior"][name]
    mean = draws.mean(("chain", "draw")).values
    mcse = az.mcse(draws).values
    assert np.all(np.abs(mean - reference) < K_MCSE * mcse + REFERENCE_ERROR), (
        mean,
        reference,
        mcse,
    )


@pytest.fixture(scope="module")
def points():
    return datasets.advi_notebook_points(100)


@pytest.fixture(scope="module")
def per_variable(points):
    return pmx.fit(points, SPEC, engine="metropolis", random_seed=1, **QUICK)


@pytest.fixture(scope="module")
def compound(points):
    return pmx.fit(
        points, SPEC, engine="metropolis", compound=True, start="data", random_seed=2, **QUICK
    )


def _assert_is_a_mode(points, start):
    """find_MAP's answer: the gradient of the log density (unconstrained) is ~0 there.

    Its scale: the gradient at a point one posterior sd (~0.1-0.3) away is O(1/sd) ~ 10, so
    1e-2 means the optimizer stopped well inside the mode.
    """
    from ppl_mixtures.inference.pymc.models import build_marginal_model

    model = build_marginal_model(points, SPEC)
    value = {}
    for rv in model.free_RVs:
        transform = model.rvs_to_transforms.get(rv)
        x = start[rv.name]
        value[model.rvs_to_values[rv].name] = (
            transform.forward(x, *rv.owner.inputs).eval() if transform is not None else x
        )
    # find_MAP maximizes the density of the constrained variables: no log|J| term
    grad = model.compile_dlogp(jacobian=False)(value)
    assert np.max(np.abs(grad)) < 1e-2, grad


def _check_schema(fit, n_draws=300, n_chains=2):
    post = fit.idata["posterior"]
    assert post["means"].dims == ("chain", "draw", "component", "feature")
    assert post["means"].shape == (n_chains, n_draws, 2, 2)
    assert post["weights"].dims == ("chain", "draw", "component")
    np.testing.assert_array_equal(post["component"].values, [0, 1])
    np.testing.assert_allclose(fit.draws("weights").sum(-1), 1.0)
    assert fit.idata["observed_data"]["x"].dims == ("obs", "feature")
    assert fit.idata["log_likelihood"]["x"].shape == (n_chains, n_draws, 100)
    assert fit.timings.build > 0 and fit.timings.run > 0
    assert fit.n_iter == n_draws and fit.engine == "metropolis"


def test_per_variable_map_start_schema_and_answer(per_variable):
    fit = per_variable
    _check_schema(fit)
    details = fit.details
    assert details.steps == ("Metropolis: [weights_stickbreaking__]", "Metropolis: [means]")
    assert set(details.acceptance) == set(details.steps)
    # a tuned random walk accepts neither almost never nor almost always
    assert all(0.05 < a < 0.95 for a in details.acceptance.values())
    assert fit.sampler.mean_acceptance == pytest.approx(
        float(fit.idata["sample_stats"]["accepted"].mean())
    )
    # find_MAP start: the same for every chain, and at the mode, where the log density's
    # gradient vanishes (the mode is not the posterior mean, so compare with the model)
    start = details.start
    assert all(np.array_equal(s["means"], start["means"]) for s in details.starts)
    _assert_is_a_mode(fit.points, start)
    aligned = relabel(fit, reference=TRUE_MEANS)
    assert_mean_matches_reference(aligned, "means", TRUE_MEANS)
    assert_mean_matches_reference(aligned, "weights", TRUE_WEIGHTS)
    assert fit.options["start"] == "map" and fit.options["random_seed"] == 1


def test_compound_uses_nuts_for_the_means(compound):
    fit = compound
    _check_schema(fit)
    assert fit.details.steps == ("Metropolis: [weights_stickbreaking__]", "NUTS: [means]")
    stats = fit.idata["sample_stats"].data_vars
    assert {"diverging", "tree_depth", "accepted"} <= set(stats)
    assert fit.sampler.divergences == 0
    aligned = relabel(fit, reference=TRUE_MEANS)
    assert_mean_matches_reference(aligned, "means", TRUE_MEANS)


def test_nuts_mixes_the_means_better_than_metropolis(per_variable, compound):
    from ppl_mixtures.analysis.diagnostics import mcmc_summary

    metropolis = mcmc_summary(relabel(per_variable, reference=TRUE_MEANS))
    nuts_means = mcmc_summary(relabel(compound, reference=TRUE_MEANS))

    def ess(s):
        return s.table.loc[
            [i for i in s.table.index if i.startswith("means")],
            "ess_bulk",
        ].min()

    assert ess(nuts_means) > 1.5 * ess(metropolis)


def test_blocked_ordered_learned_sd_from_prior(points):
    spec = MixtureSpec(
        n_components=2, mean_prior_sd=1.0, dirichlet_alpha=1.0, obs_sd="learned", ordered=True
    )
    fit = pmx.fit(
        points,
        spec,
        engine="metropolis",
        blocked=True,
        start="prior",
        random_seed=3,
        draws=60,
        tune=60,
        chains=2,
        progressbar=False,
        log_likelihood=False,
    )
    post = fit.idata["posterior"]
    assert post["obs_sd"].dims == ("chain", "draw", "component", "feature")
    assert (fit.draws("obs_sd") > 0).all()
    assert (np.diff(fit.draws("means")[..., 0], axis=-1) > 0).all()  # ordered in every draw
    assert len(fit.details.steps) == 1  # one joint proposal
    assert "log_likelihood" not in fit.idata.children
    # each chain started at its own prior draw, sorted for the ordered transform
    first = [start["means_first"] for start in fit.details.starts]
    assert all(f[0] < f[1] for f in first) and not np.array_equal(first[0], first[1])


def test_data_start_gives_each_chain_its_own_overdispersed_start(compound, points):
    from ppl_mixtures.inference.pymc.models import initial_points

    starts = compound.details.starts
    expected = initial_points(SPEC, points, 2, random_seed=2)  # the fit's seed
    assert len(starts) == 2
    for got, want in zip(starts, expected, strict=True):
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    assert not np.array_equal(starts[0]["means"], starts[1]["means"])


def test_same_seed_same_draws(points):
    def run():
        return pmx.fit(
            points,
            SPEC,
            engine="metropolis",
            start="data",
            random_seed=7,
            draws=30,
            tune=30,
            chains=1,
            progressbar=False,
            log_likelihood=False,
        )

    np.testing.assert_array_equal(run().draws("means"), run().draws("means"))


def test_bad_options_are_rejected(points):
    with pytest.raises(
        ValueError, match="start: expected one of 'map', 'data', 'prior', got 'mode'"
    ):
        pmx.fit(points, SPEC, engine="metropolis", start="mode")
    with pytest.raises(TypeError, match="blocked: expected True or False, got 'yes'"):
        pmx.fit(points, SPEC, engine="metropolis", blocked="yes")
    fixed = MixtureSpec(n_components=2, weights="fixed")
    with pytest.raises(ValueError, match="compound: expected a spec with learned weights"):
        pmx.fit(points, fixed, engine="metropolis", compound=True)
    with pytest.raises(ValueError, match="draws: expected an integer >= 1, got 0"):
        pmx.fit(points, SPEC, engine="metropolis", draws=0)
    with pytest.raises(ValueError, match=r"^draws: expected at most \d+ draws here"):
        pmx.fit(points, SPEC, engine="metropolis", draws=10**12)
    with pytest.raises(ValueError, match="random_seed: expected an integer >= 0"):
        pmx.fit(points, SPEC, engine="metropolis", random_seed=-1)
