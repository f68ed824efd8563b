"""SMC engine: its log evidence against exact enumeration, the ordered-start trap, the schema.

The oracle: for N = 8 points and K = 2 components, log p(x) is a log-sum-exp over all
K^N = 256 assignments z of

    log p(z) + sum_k log N(x_{z=k} | m0 1, obs_sd^2 I + s0^2 1 1^T)

with p(z) the Dirichlet-multinomial (weights integrated out) and each component's mean
integrated out (a Gaussian prior on a Gaussian mean makes the cluster's points jointly
Gaussian with that covariance). Written here with scipy, independently of
``ppl_mixtures.model.evidence``.
"""

import itertools

import numpy as np
import pytest
from scipy.special import gammaln, logsumexp
from scipy.stats import multivariate_normal

from ppl_mixtures import MixtureSpec, fit
from ppl_mixtures.inference.pymc import smc

POINTS = np.array([-2.1, -1.7, -1.2, -0.3, 0.4, 1.5, 1.9, 2.6])
PRIOR_MEAN, PRIOR_SD, OBS_SD, ALPHA = 0.3, 2.0, 0.8, 1.0
SPEC = MixtureSpec(
    n_components=2,
    mean_prior_mean=PRIOR_MEAN,
    mean_prior_sd=PRIOR_SD,
    dirichlet_alpha=ALPHA,
    obs_sd=OBS_SD,
)
ORDERED = MixtureSpec(
    n_components=2,
    mean_prior_mean=PRIOR_MEAN,
    mean_prior_sd=PRIOR_SD,
    dirichlet_alpha=ALPHA,
    obs_sd=OBS_SD,
    ordered=True,
)
# 8 independent runs: the se of eq. (3) then has ~7 degrees of freedom (see the coverage test)
OPTIONS = {"draws": 500, "runs": 8, "random_seed": 11, "progressbar": False}


def _exact_log_evidence(x, n_components, prior_mean, prior_sd, obs_sd, alpha):
    """log p(x) by enumerating every assignment (1-D data, known obs_sd, Dirichlet weights)."""
    n = x.size
    alphas = np.full(n_components, alpha)
    terms = []
    for z in itertools.product(range(n_components), repeat=n):
        z = np.array(z)
        counts = np.bincount(z, minlength=n_components)
        log_prior_z = (
            gammaln(alphas.sum())
            - gammaln(n + alphas.sum())
            + np.sum(gammaln(counts + alphas) - gammaln(alphas))
        )
        log_lik = 0.0
        for k in range(n_components):
            members = x[z == k]
            if members.size:
                cov = obs_sd**2 * np.eye(members.size) + prior_sd**2
                log_lik += multivariate_normal.logpdf(
                    members, np.full(members.size, prior_mean), cov
                )
        terms.append(log_prior_z + log_lik)
    return float(logsumexp(terms))


EXACT = _exact_log_evidence(POINTS, 2, PRIOR_MEAN, PRIOR_SD, OBS_SD, ALPHA)


def test_oracle_agrees_with_the_package_enumeration():
    from ppl_mixtures.model.evidence import exact_log_evidence

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


def _assert_covers_exact(evidence, k):
    """|log Z - truth| < k se, the se being the engine's own (eq. (3) over the runs)."""
    assert np.isfinite(evidence.se) and evidence.se > 0
    assert abs(evidence.log_evidence - EXACT) < k * evidence.se, (evidence, EXACT)


def test_log_evidence_interval_covers_exact_enumeration(smc_fit):
    evidence = smc_fit.evidence
    # +-4 se: se comes from 8 runs, so (log Z - truth) / se is ~Student-t with 7 degrees of
    # freedom, P(|t_7| > 4) = 0.005; the bias of eq. (2), ~ -se^2/2, is < 0.01 se here
    _assert_covers_exact(evidence, k=4)
    # a usable estimate: 5 se stay below DISAGREEMENT_NATS (1 nat), so models whose log
    # evidence differs by a nat are told apart
    assert 5 * evidence.se < smc.DISAGREEMENT_NATS
    runs = evidence.runs
    assert len(runs) == 8 and len(set(runs)) == 8  # independent runs
    assert (evidence.log_evidence, evidence.se) == smc.combine_runs(runs)
    assert smc_fit.details.log_evidence_mean_of_logs == pytest.approx(np.mean(runs), rel=1e-12)
    assert "8 independent SMC runs" in evidence.method
    assert evidence.flags == ()
    # the check's bound is a real lower bound: CAVI's ELBO sits below the exact log p(x)
    assert smc_fit.details.evidence_elbo < EXACT
    assert smc_fit.details.smc["final_beta"] == [1.0] * 8


def test_combine_runs_is_log_mean_exp_with_delta_method_se():
    log_z = np.array([-1000.2, -1000.7, -999.9, -1000.05])
    log_mean, se = smc.combine_runs(log_z)
    # the same numbers with exp taken after a shift of 1000 (no underflow at this scale)
    z = np.exp(log_z + 1000.0)
    assert log_mean == pytest.approx(np.log(z.mean()) - 1000.0, rel=1e-13)
    assert se == pytest.approx(z.std(ddof=1) / np.sqrt(4) / z.mean(), rel=1e-12)
    assert np.isnan(smc.combine_runs([-5.0])[1]) and smc.combine_runs([-5.0])[0] == -5.0


def test_log_mean_exp_is_less_biased_than_the_mean_of_logs():
    """The module's justification, simulated: Z_r unbiased (log-normal with mean 1, so
    log p(x) = 0), sd of log Z_r = 0.5, R = 4 runs: E[log mean Z_r] ~ -sigma^2/(2R) = -0.03
    (delta method), closer to 0 than E[mean log Z_r] = -sigma^2/2 = -0.125."""
    rng = np.random.default_rng(0)
    sigma, n_rep = 0.5, 200_000
    log_z = rng.normal(-(sigma**2) / 2, sigma, size=(n_rep, 4))
    lme = logsumexp(log_z, axis=1) - np.log(4)
    mol = log_z.mean(axis=1)
    # both averages over 200 000 replicates have se < 0.002 (sd per replicate < 0.3)
    assert abs(mol.mean() + sigma**2 / 2) < 0.01
    assert abs(lme.mean() + sigma**2 / 8) < 0.02
    assert mol.mean() < lme.mean() - 0.05


def test_below_elbo_and_disagreeing_runs_are_flagged(monkeypatch):
    # constructed: an ELBO 5 nats above the exact log evidence (as if SMC read far too low)
    monkeypatch.setattr(smc, "elbo_bound", lambda points, spec, seed: EXACT + 5.0)
    with pytest.warns(smc.EvidenceWarning, match=r"below CAVI's ELBO .* Try more particles"):
        flagged = fit(
            POINTS,
            SPEC,
            engine="smc",
            draws=200,
            runs=2,
            random_seed=3,
            progressbar=False,
            log_likelihood=False,
        )
    assert flagged.evidence.flags == ("below_elbo",)
    assert flagged.details.evidence_elbo == EXACT + 5.0
    flags, reasons = smc.evidence_flags(np.array([-10.0, -12.5, -10.2]), -10.4, 0.2, None)
    assert flags == ["runs_disagree"] and "span 2.50 nats" in reasons[0]
    flags, _ = smc.evidence_flags(np.array([-10.0, -10.3]), -10.1, 0.1, -10.5)
    assert flags == []  # above the bound, runs within 1 nat
    flags, _ = smc.evidence_flags(np.array([-10.0, -10.3]), -10.1, 0.1, -9.85)
    assert flags == []  # 0.25 below the bound: within 3 se (0.3)
    flags, _ = smc.evidence_flags(np.array([-10.0, -10.3]), -10.1, 0.1, -9.7)
    assert flags == ["below_elbo"]  # 0.4 below: beyond 3 se
    flags, _ = smc.evidence_flags(np.array([-10.0, np.nan]), -10.0, np.nan, None)
    assert flags == ["nonfinite_runs"]


def test_check_elbo_false_skips_the_bound():
    again = fit(
        POINTS,
        SPEC,
        engine="smc",
        draws=100,
        runs=2,
        random_seed=3,
        progressbar=False,
        log_likelihood=False,
        check_elbo=False,
    )
    assert again.details.evidence_elbo is None


def test_chains_is_the_older_name_of_runs():
    old = fit(
        POINTS,
        SPEC,
        engine="smc",
        draws=100,
        chains=3,
        random_seed=3,
        progressbar=False,
        log_likelihood=False,
        check_elbo=False,
    )
    assert len(old.evidence.runs) == 3 and old.n_chains == 3
    assert old.options["runs"] == 3 and "chains" not in old.options
    with pytest.raises(ValueError, match=r"^runs: expected runs or chains .* got both"):
        fit(POINTS, SPEC, engine="smc", runs=2, chains=3)


def test_ordered_start_avoids_the_collapse(ordered_fit):
    """API_NOTES §3: unsorted prior particles are invalid under ``ordered``; the run then
    collapses to one point with a wrong log evidence. With sorted starts the posterior is
    spread out, ordered in every draw, and the evidence is right: the sorted prior draws are
    the *normalized* ordered prior, whose evidence equals the unordered model's here (the
    prior is exchangeable)."""
    means = ordered_fit.draws("means")[..., 0]  # (chain, draw, K)
    assert np.all(np.diff(means, axis=-1) > 0)
    assert np.all(means.std(axis=(0, 1)) > 0.2)  # no collapse (was 0.004)
    assert means.mean(axis=(0, 1))[0] < -0.5 < 0.5 < means.mean(axis=(0, 1))[1]
    # the same 8-run Student-t argument as for the unordered spec: P(|t_7| > 4) = 0.005
    _assert_covers_exact(ordered_fit.evidence, k=4)


def test_ordered_start_particles():
    from ppl_mixtures.inference.pymc import models

    model = models.build_marginal_model(POINTS, ORDERED)
    starts = smc.ordered_start(model, draws=50, chains=3, random_seed=4)
    assert len(starts) == 3
    names = {model.rvs_to_values[rv].name for rv in model.free_RVs}
    for start in starts:
        assert set(start) == names
        assert all(value.shape[0] == 50 and np.all(np.isfinite(value)) for value in start.values())
    # the ordered transform's first unconstrained coordinate is the smallest mean; the others
    # are log-gaps, finite only because the draws were sorted
    first = starts[0]["means_first_ordered__"]
    assert first.shape == (50, 2)
    assert not np.array_equal(
        starts[0]["means_first_ordered__"], starts[1]["means_first_ordered__"]
    )
    again = smc.ordered_start(model, draws=50, chains=3, random_seed=4)
    np.testing.assert_array_equal(
        again[2]["means_first_ordered__"], starts[2]["means_first_ordered__"]
    )


def test_schema(smc_fit):
    post = smc_fit.idata["posterior"]
    assert post["means"].dims == ("chain", "draw", "component", "feature")
    assert dict(post["means"].sizes) == {"chain": 8, "draw": 500, "component": 2, "feature": 1}
    assert post["weights"].dims == ("chain", "draw", "component")
    np.testing.assert_allclose(smc_fit.draws("weights").sum(-1), 1.0)
    assert smc_fit.idata["log_likelihood"]["x"].dims == ("chain", "draw", "obs")
    np.testing.assert_array_equal(smc_fit.points[:, 0], POINTS)
    assert smc_fit.engine == "smc" and smc_fit.n_iter == 500 and smc_fit.elbo is None
    assert smc_fit.options["random_seed"] == 11 and smc_fit.timings.run > 0
    assert smc_fit.final_elbo is None and smc_fit.sampler is None


def test_same_seed_same_numbers():
    small = {
        "draws": 100,
        "runs": 2,
        "random_seed": 5,
        "progressbar": False,
        "log_likelihood": False,
    }
    first, again = (fit(POINTS, SPEC, engine="smc", **small) for _ in range(2))
    assert again.evidence == first.evidence
    assert again.details.evidence_elbo == first.details.evidence_elbo
    np.testing.assert_array_equal(again.draws("means"), first.draws("means"))


def test_unordered_exchangeable_spec_samples_one_label_mode(smc_fit):
    # SPEC is unordered with a scalar alpha: SMC samples its ordered form (sorted particles),
    # so every draw is ordered by feature 0, while the fit still reports the user's spec
    assert not SPEC.ordered and smc_fit.spec == SPEC
    first = smc_fit.draws("means")[..., 0]
    assert np.all(np.diff(first, axis=-1) > 0)
    assert smc_fit.options["one_label_mode"] is True


@pytest.mark.parametrize(
    "options, err, match",
    [
        (
            {"draws": 1},
            ValueError,
            r"^draws: expected an integer >= 2, got 1\. Use e\.g\. draws=2000",
        ),
        ({"chains": 0}, ValueError, r"^chains: expected an integer >= 1, got 0"),
        ({"runs": 0}, ValueError, r"^runs: expected an integer >= 1, got 0\. Use e\.g\. runs=4"),
        ({"check_elbo": "yes"}, TypeError, r"^check_elbo: expected True or False"),
        (
            {"threshold": 1.5},
            ValueError,
            r"^threshold: expected a number in \(0, 1\), got 1\.5\. Use "
            r"e\.g\. threshold=0\.8\.$",
        ),
        (
            {"correlation_threshold": "low"},
            TypeError,
            r"^correlation_threshold: expected a number in "
            r"\(0, 1\), got 'low'",
        ),
        ({"random_seed": -1}, ValueError, r"^random_seed: expected an integer >= 0, got -1"),
        ({"progressbar": 1}, TypeError, r"^progressbar: expected True or False, got 1"),
        (
            {"kernel": "mh"},
            TypeError,
            r"unknown option\(s\) 'kernel'\. Valid options for 'smc': "
            r"draws, runs, chains, threshold, correlation_threshold, "
            r"random_seed, progressbar, log_likelihood, one_label_mode, "
            r"check_elbo\.$",
        ),
    ],
)
def test_bad_options(options, err, match):
    with pytest.raises(err, match=match):
        fit(POINTS, SPEC, engine="smc", **options)


def test_ordered_start_is_valid_for_every_transform():
    """D = 2, learned sds (log transform), PyMC's simplex weights: every particle has a finite
    model log density; the same draws unsorted (SMC's default start) do not."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    from ppl_mixtures.inference.pymc import models

    points = np.column_stack([POINTS, POINTS[::-1]])
    spec = MixtureSpec(n_components=3, obs_sd="learned", ordered=True, weights_transform="simplex")
    model = models.build_marginal_model(points, spec)
    [start] = smc.ordered_start(model, draws=20, chains=1, random_seed=5)
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


def test_one_run_reads_pymc_one_chain_stats():
    # PyMC lays out sample_stats differently for one chain (per-stage values on "chain")
    one = fit(
        POINTS,
        SPEC,
        engine="smc",
        draws=100,
        runs=1,
        random_seed=2,
        progressbar=False,
        log_likelihood=False,
        check_elbo=False,
    )
    [log_z] = one.evidence.runs
    assert np.isfinite(log_z) and one.evidence.log_evidence == log_z
    assert np.isnan(one.evidence.se)
    assert one.details.smc["final_beta"] == [1.0] and one.details.smc["n_stages"][0] > 1


def test_ordered_non_exchangeable_spec_skips_the_elbo_check():
    # with a vector alpha the sorted-prior start is a different model from CAVI's: no bound
    spec = MixtureSpec(
        n_components=2,
        mean_prior_sd=PRIOR_SD,
        dirichlet_alpha=(1.0, 2.0),
        obs_sd=OBS_SD,
        ordered=True,
    )
    ordered = fit(
        POINTS,
        spec,
        engine="smc",
        draws=100,
        runs=2,
        random_seed=3,
        progressbar=False,
        log_likelihood=False,
    )
    assert ordered.details.evidence_elbo is None
    assert "below_elbo" not in ordered.evidence.flags


def test_label_switching_sampling_still_estimates_the_evidence():
    # one_label_mode=False: all K! modes sampled; the modes have equal mass and identical
    # likelihood increments, so the estimate is unbiased all the same (docs/smc.md)
    free = fit(
        POINTS,
        SPEC,
        engine="smc",
        draws=500,
        runs=4,
        random_seed=4,
        progressbar=False,
        log_likelihood=False,
        one_label_mode=False,
    )
    # +-5 se: se from 4 runs is ~Student-t with 3 degrees of freedom, P(|t_3| > 5) = 1.5%
    _assert_covers_exact(free.evidence, k=5)
    first = free.draws("means")[..., 0]
    assert np.any(np.diff(first, axis=-1) < 0)  # unordered draws are present
