"""SMC engine: its log evidence against exact enumeration, the ordered-start trap, the schema.

The oracle: for N = 8 points and K = 2 components, log p(x) is a log-sum-exp over all
K^N = 256 assignments z of

    log p(z) + sum_k log N(x_{z=k} | m0 1, obs_sd^2 I + s0^2 1 1^T)

with p(z) the Dirichlet-multinomial (weights integrated out) and each component's mean
integrated out (a Gaussian prior on a Gaussian mean makes the cluster's points jointly
Gaussian with that covariance). Written here with scipy, independently of
``ppl_mixtures.evidence``.
"""

import itertools

import numpy as np
import pytest
from scipy.special import gammaln, logsumexp
from scipy.stats import multivariate_normal

from ppl_mixtures import MixtureSpec, fit
from ppl_mixtures.engines import smc

POINTS = np.array([-2.1, -1.7, -1.2, -0.3, 0.4, 1.5, 1.9, 2.6])
PRIOR_MEAN, PRIOR_SD, OBS_SD, ALPHA = 0.3, 2.0, 0.8, 1.0
SPEC = MixtureSpec(n_components=2, mean_prior_mean=PRIOR_MEAN, mean_prior_sd=PRIOR_SD,
                   dirichlet_alpha=ALPHA, obs_sd=OBS_SD)
ORDERED = MixtureSpec(n_components=2, mean_prior_mean=PRIOR_MEAN, mean_prior_sd=PRIOR_SD,
                      dirichlet_alpha=ALPHA, obs_sd=OBS_SD, ordered=True)
OPTIONS = {"draws": 500, "chains": 2, "random_seed": 11, "progressbar": False}
# SMC's estimate with 500 particles scatters ~0.1 nats around the truth (measured: 0.05-0.11)
TOLERANCE = 0.3


def _exact_log_evidence(x, n_components, prior_mean, prior_sd, obs_sd, alpha):
    """log p(x) by enumerating every assignment (1-D data, known obs_sd, Dirichlet weights)."""
    n = x.size
    alphas = np.full(n_components, alpha)
    terms = []
    for z in itertools.product(range(n_components), repeat=n):
        z = np.array(z)
        counts = np.bincount(z, minlength=n_components)
        log_prior_z = (gammaln(alphas.sum()) - gammaln(n + alphas.sum())
                       + np.sum(gammaln(counts + alphas) - gammaln(alphas)))
        log_lik = 0.0
        for k in range(n_components):
            members = x[z == k]
            if members.size:
                cov = obs_sd**2 * np.eye(members.size) + prior_sd**2
                log_lik += multivariate_normal.logpdf(members, np.full(members.size, prior_mean), cov)
        terms.append(log_prior_z + log_lik)
    return float(logsumexp(terms))


EXACT = _exact_log_evidence(POINTS, 2, PRIOR_MEAN, PRIOR_SD, OBS_SD, ALPHA)


def test_oracle_agrees_with_the_package_enumeration():
    from ppl_mixtures.evidence import exact_log_evidence

    np.testing.assert_allclose(EXACT, exact_log_evidence(POINTS, SPEC), rtol=0, atol=1e-9)
    # sanity of the oracle itself: one component, no assignments to sum over
    one = _exact_log_evidence(POINTS, 1, PRIOR_MEAN, PRIOR_SD, OBS_SD, ALPHA)
    cov = OBS_SD**2 * np.eye(POINTS.size) + PRIOR_SD**2
    np.testing.assert_allclose(one, multivariate_normal.logpdf(POINTS, np.full(8, PRIOR_MEAN), cov))


@pytest.fixture(scope="module")
def smc_fit():
    return fit(POINTS, SPEC, engine="smc", **OPTIONS)


@pytest.fixture(scope="module")
def ordered_fit():
    return fit(POINTS, ORDERED, engine="smc", **OPTIONS)


def test_log_evidence_matches_exact_enumeration(smc_fit):
    log_z = smc_fit.extras["log_evidence"]
    assert abs(log_z - EXACT) < TOLERANCE, (log_z, EXACT)
    per_chain = smc_fit.extras["smc"]["log_evidence_per_chain"]
    assert len(per_chain) == 2 and np.mean(per_chain) == log_z
    np.testing.assert_allclose(smc_fit.extras["log_evidence_se"], np.std(per_chain, ddof=1) / np.sqrt(2))
    assert smc_fit.extras["smc"]["final_beta"] == [1.0, 1.0]


def test_ordered_start_avoids_the_collapse(ordered_fit):
    """API_NOTES §3: unsorted prior particles are invalid under ``ordered``; the run then
    collapses to one point with a wrong log evidence. With sorted starts the posterior is
    spread out, ordered in every draw, and the evidence is right: the sorted prior draws are
    the *normalized* ordered prior, whose evidence equals the unordered model's here (the
    prior is exchangeable)."""
    means = ordered_fit.draws("means")[..., 0]                       # (chain, draw, K)
    assert np.all(np.diff(means, axis=-1) > 0)
    assert np.all(means.std(axis=(0, 1)) > 0.2)                      # no collapse (was 0.004)
    assert means.mean(axis=(0, 1))[0] < -0.5 < 0.5 < means.mean(axis=(0, 1))[1]
    assert abs(ordered_fit.extras["log_evidence"] - EXACT) < TOLERANCE


def test_ordered_start_particles():
    from ppl_mixtures import models

    model = models.build_marginal_model(POINTS, ORDERED)
    starts = smc._ordered_start(model, draws=50, chains=3, random_seed=4)
    assert len(starts) == 3
    names = {model.rvs_to_values[rv].name for rv in model.free_RVs}
    for start in starts:
        assert set(start) == names
        assert all(value.shape[0] == 50 and np.all(np.isfinite(value)) for value in start.values())
    # the ordered transform's first unconstrained coordinate is the smallest mean; the others
    # are log-gaps, finite only because the draws were sorted
    first = starts[0]["means_first_ordered__"]
    assert first.shape == (50, 2)
    assert not np.array_equal(starts[0]["means_first_ordered__"], starts[1]["means_first_ordered__"])
    again = smc._ordered_start(model, draws=50, chains=3, random_seed=4)
    np.testing.assert_array_equal(again[2]["means_first_ordered__"], starts[2]["means_first_ordered__"])


def test_schema(smc_fit):
    post = smc_fit.idata["posterior"]
    assert post["means"].dims == ("chain", "draw", "component", "feature")
    assert dict(post["means"].sizes) == {"chain": 2, "draw": 500, "component": 2, "feature": 1}
    assert post["weights"].dims == ("chain", "draw", "component")
    np.testing.assert_allclose(smc_fit.draws("weights").sum(-1), 1.0)
    assert smc_fit.idata["log_likelihood"]["x"].dims == ("chain", "draw", "obs")
    np.testing.assert_array_equal(smc_fit.points[:, 0], POINTS)
    assert smc_fit.engine == "smc" and smc_fit.n_iter == 500 and smc_fit.elbo is None
    assert smc_fit.options["random_seed"] == 11 and smc_fit.timings.run > 0
    assert "log_evidence" in smc_fit.extras and smc_fit.final_elbo is None


def test_same_seed_same_numbers(smc_fit):
    again = fit(POINTS, SPEC, engine="smc", **OPTIONS)
    assert again.extras["log_evidence"] == smc_fit.extras["log_evidence"]
    np.testing.assert_array_equal(again.draws("means"), smc_fit.draws("means"))


def test_unordered_exchangeable_spec_samples_one_label_mode(smc_fit):
    # SPEC is unordered with a scalar alpha: SMC samples its ordered form (sorted particles),
    # so every draw is ordered by feature 0, while the fit still reports the user's spec
    assert not SPEC.ordered and smc_fit.spec == SPEC
    first = smc_fit.draws("means")[..., 0]
    assert np.all(np.diff(first, axis=-1) > 0)
    assert smc_fit.options["one_label_mode"] is True


@pytest.mark.parametrize("options, err, match", [
    ({"draws": 1}, ValueError, r"^draws: expected an integer >= 2, got 1\. Use e\.g\. draws=1000"),
    ({"chains": 0}, ValueError, r"^chains: expected an integer >= 1, got 0"),
    ({"threshold": 1.5}, ValueError, r"^threshold: expected a number in \(0, 1\), got 1\.5\. Use "
                                     r"e\.g\. threshold=0\.5\.$"),
    ({"correlation_threshold": "low"}, TypeError, r"^correlation_threshold: expected a number in "
                                                  r"\(0, 1\), got 'low'"),
    ({"random_seed": -1}, ValueError, r"^random_seed: expected an integer >= 0, got -1"),
    ({"progressbar": 1}, TypeError, r"^progressbar: expected True or False, got 1"),
    ({"kernel": "mh"}, TypeError, r"unknown option\(s\) 'kernel'\. Valid options for 'smc': "
                                  r"draws, chains, threshold, correlation_threshold, random_seed, "
                                  r"progressbar, log_likelihood, one_label_mode\.$"),
])
def test_bad_options(options, err, match):
    with pytest.raises(err, match=match):
        fit(POINTS, SPEC, engine="smc", **options)


def test_ordered_start_is_valid_for_every_transform():
    """D = 2, learned sds (log transform), PyMC's simplex weights: every particle has a finite
    model log density; the same draws unsorted (SMC's default start) do not."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    from ppl_mixtures import models

    points = np.column_stack([POINTS, POINTS[::-1]])
    spec = MixtureSpec(n_components=3, obs_sd="learned", ordered=True, weights_transform="simplex")
    model = models.build_marginal_model(points, spec)
    [start] = smc._ordered_start(model, draws=20, chains=1, random_seed=5)
    logp = model.compile_logp(mode="FAST_COMPILE")
    particles = [{name: value[i] for name, value in start.items()} for i in range(20)]
    assert np.all(np.isfinite([logp(p) for p in particles]))
    transform = model.rvs_to_transforms[model["means_first"]]

    def evaluate(graph):
        return pytensor.function([], graph, mode="FAST_COMPILE")()

    means_first = evaluate(transform.backward(pt.as_tensor(start["means_first_ordered__"])))
    assert np.all(np.diff(means_first, axis=-1) > 0)
    # the trap: the prior's own (unsorted) draws, mapped through the ordered transform
    unsorted = pm.draw(model["means_first"], draws=20, random_seed=5, mode="FAST_COMPILE")
    assert np.any(np.diff(unsorted, axis=-1) < 0)
    assert not np.all(np.isfinite(evaluate(transform.forward(pt.as_tensor(unsorted)))))
