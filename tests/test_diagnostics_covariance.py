"""Diagnostics for full, tied and spherical covariances (#14): log-likelihood,
responsibilities, co-clustering, predictive density and replicates against
scipy.stats.multivariate_normal; the exact reference for a known full covariance; k-hat
scored for CAVI and ADVI fits of every type (importance-sampling and ELBO oracles);
the verdict rules name obs_corr. (About 410 lines: one oracle per covariance type and
diagnostic; the shared constructed fits keep them in one file.)"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from ppl_mixtures import MixtureSpec, fit
from ppl_mixtures.analysis import diagnostics as dg
from ppl_mixtures.analysis.compare import compare
from ppl_mixtures.analysis.khat import pareto_khat, vi_log_ratios
from ppl_mixtures.analysis.log_joint import pymc_unconstrained_log_joint, unconstrained_log_joint
from ppl_mixtures.app.inputs import check_exact_feasible
from ppl_mixtures.model import evidence
from ppl_mixtures.present.report import render_report
from ppl_mixtures.results import ConvergenceWarning, MixtureFit, make_idata

N_CHAINS, N_DRAWS, K, D = 2, 3, 2, 3
RNG = np.random.default_rng(14)
POINTS = RNG.normal(size=(12, D)) * 2.0


def random_covariances(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """SPD matrices A A^T + 0.5 I with correlated entries, shape (*shape, D, D)."""
    a = rng.normal(size=(*shape, D, D))
    return a @ np.swapaxes(a, -1, -2) + 0.5 * np.eye(D)


def constructed_fit(covariance: str, rng: np.random.Generator) -> tuple[MixtureFit, np.ndarray]:
    """A fit of each covariance type with random draws, and its (chain, draw, K, D, D)
    covariances as scipy should see them."""
    means = rng.normal(size=(N_CHAINS, N_DRAWS, K, D)) * 2.0
    weights = rng.dirichlet(np.ones(K), size=(N_CHAINS, N_DRAWS))
    if covariance == "full":
        cov = random_covariances(rng, (N_CHAINS, N_DRAWS, K))
        spec = MixtureSpec(n_components=K, covariance="full", obs_cov="learned")
        idata = make_idata(means, weights, POINTS, obs_cov=cov)
    elif covariance == "tied":
        one = random_covariances(rng, (N_CHAINS, N_DRAWS, 1))
        cov = np.repeat(one, K, axis=2)
        spec = MixtureSpec(n_components=K, covariance="tied")
        idata = make_idata(means, weights, POINTS, obs_cov=cov)
    elif covariance == "spherical":
        sd = np.exp(rng.normal(size=(N_CHAINS, N_DRAWS, K, 1)) * 0.3)
        cov = sd[..., None] ** 2 * np.eye(D)
        spec = MixtureSpec(n_components=K, covariance="spherical")
        idata = make_idata(means, weights, POINTS, obs_sd=np.repeat(sd, D, axis=-1))
    else:  # known full: no obs_* variable, the spec holds it
        known = random_covariances(rng, (K,))
        cov = np.broadcast_to(known, (N_CHAINS, N_DRAWS, K, D, D))
        spec = MixtureSpec(n_components=K, covariance="full", obs_cov=known)
        idata = make_idata(means, weights, POINTS)
    return MixtureFit(engine="nuts", spec=spec, idata=idata, family="mcmc"), cov


def scipy_log_joint(fit: MixtureFit, cov: np.ndarray, points: np.ndarray) -> np.ndarray:
    """log w_k + log N(x_i | mu_k, Sigma_k) by scipy, shape (S, N, K)."""
    means = fit.draws("means").reshape(-1, K, points.shape[1])
    weights = fit.draws("weights").reshape(-1, K)
    cov = cov.reshape(-1, K, points.shape[1], points.shape[1])
    out = np.empty((means.shape[0], points.shape[0], K))
    for s in range(means.shape[0]):
        for k in range(K):
            out[s, :, k] = np.log(weights[s, k]) + multivariate_normal(
                means[s, k], cov[s, k]
            ).logpdf(points)
    return out


COVARIANCES = ["full", "tied", "spherical", "known full"]


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_densities_and_assignments_match_scipy(covariance):
    rng = np.random.default_rng(COVARIANCES.index(covariance))
    mixture, cov = constructed_fit(covariance, rng)
    new = rng.normal(size=(7, D)) * 2.0
    for points in (None, new):
        data = POINTS if points is None else new
        joint = scipy_log_joint(mixture, cov, data)  # (S, N, K)
        log_lik = logsumexp(joint, axis=-1)  # (S, N)
        np.testing.assert_allclose(
            dg.log_likelihood(mixture, points),
            log_lik.reshape(N_CHAINS, N_DRAWS, -1),
            rtol=1e-10,
            atol=1e-10,
        )
        resp = np.exp(joint - log_lik[..., None])  # (S, N, K)
        got, got_sd = dg.responsibilities(mixture, points, return_sd=True)
        np.testing.assert_allclose(got, resp.mean(0), atol=1e-12)
        np.testing.assert_allclose(got_sd, resp.std(0), atol=1e-10)
        co = np.einsum("snk,smk->nm", resp, resp) / resp.shape[0]
        np.fill_diagonal(co, 1.0)
        np.testing.assert_allclose(dg.coclustering(mixture, points), co, atol=1e-12)
        predictive = logsumexp(log_lik, axis=0) - np.log(log_lik.shape[0])
        np.testing.assert_allclose(dg.predictive_logpdf(mixture, points), predictive, rtol=1e-10)


def test_loo_reads_the_full_covariance_log_likelihood():
    mixture, cov = constructed_fit("full", np.random.default_rng(3))
    with_ll = dg.add_log_likelihood(mixture)
    expected = logsumexp(scipy_log_joint(mixture, cov, POINTS), axis=-1)
    np.testing.assert_allclose(
        with_ll.idata["log_likelihood"]["x"].values.reshape(expected.shape), expected, rtol=1e-10
    )


@pytest.mark.parametrize("covariance", ["full", "known full"])
def test_replicates_have_each_components_covariance(covariance):
    # K = 2 components 40 sd apart: each replicate is assigned to its component by the
    # nearest mean without error (the chance of crossing half the gap is far below 1e-100).
    rng = np.random.default_rng(7)
    cov = random_covariances(rng, (K,))
    means = np.array([[-40.0, 0.0, 0.0], [40.0, 0.0, 0.0]]) * np.sqrt(cov[:, 0, 0].max())
    weights = np.array([0.3, 0.7])
    n_samples, n_draws = 2000, 4
    points = np.zeros((n_samples, D))
    tile = (1, n_draws, 1, 1)
    if covariance == "full":
        spec = MixtureSpec(n_components=K, covariance="full", obs_cov="learned")
        idata = make_idata(
            np.tile(means, tile),
            np.tile(weights, (1, n_draws, 1)),
            points,
            obs_cov=np.tile(cov, (1, n_draws, 1, 1, 1)),
        )
    else:
        spec = MixtureSpec(n_components=K, covariance="full", obs_cov=cov)
        idata = make_idata(np.tile(means, tile), np.tile(weights, (1, n_draws, 1)), points)
    mixture = MixtureFit(engine="nuts", spec=spec, idata=idata, family="mcmc")
    x_rep = dg.posterior_predictive(mixture, random_seed=1).reshape(-1, D)
    n_total = x_rep.shape[0]
    labels = (x_rep[:, 0] > 0).astype(int)
    # the share of component 1: binomial se sqrt(w (1 - w) / n); 4 se
    share = labels.mean()
    assert abs(share - weights[1]) < 4 * np.sqrt(weights[1] * weights[0] / n_total)
    for k in range(K):
        centered = x_rep[labels == k] - means[k]
        n_k = centered.shape[0]
        emp = centered.T @ centered / n_k
        # var(x_i x_j) = S_ii S_jj + S_ij^2 for a zero-mean Gaussian: se of each entry of
        # the empirical covariance (known mean) is sqrt(that / n_k); 4 se per entry
        se = np.sqrt((np.outer(np.diag(cov[k]), np.diag(cov[k])) + cov[k] ** 2) / n_k)
        assert np.all(np.abs(emp - cov[k]) < 4 * se), (emp, cov[k])
    again = dg.posterior_predictive(mixture, random_seed=1).reshape(-1, D)
    np.testing.assert_array_equal(again, x_rep)


def correlated_points(n_per: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [
            rng.multivariate_normal([-2.0, 0.0], [[1.0, 0.8], [0.8, 1.0]], n_per),
            rng.multivariate_normal([2.0, 0.5], [[1.0, -0.5], [-0.5, 1.0]], n_per),
        ]
    )


@pytest.fixture(scope="module")
def engine_fits():
    points = correlated_points(30, 0)
    spec = MixtureSpec(n_components=2, covariance="full", obs_cov="learned")
    return {name: fit(points, spec, engine=name, random_seed=1) for name in ("em", "cavi")}


@pytest.mark.parametrize("engine", ["em", "cavi"])
def test_engine_fits_match_scipy_at_their_own_draws(engine_fits, engine):
    mixture = engine_fits[engine]
    cov = mixture.draws("obs_cov")  # (chain, draw, K, D, D): read here, not by the module
    new = correlated_points(5, 1)
    joint = scipy_log_joint(mixture, cov, new)
    log_lik = logsumexp(joint, axis=-1)
    got = dg.log_likelihood(mixture, new)
    np.testing.assert_allclose(got.reshape(log_lik.shape), log_lik, rtol=1e-9)
    resp = np.exp(joint - log_lik[..., None]).mean(0)
    np.testing.assert_allclose(dg.responsibilities(mixture, new), resp, atol=1e-10)
    predictive = logsumexp(log_lik, axis=0) - np.log(log_lik.shape[0])
    np.testing.assert_allclose(dg.predictive_logpdf(mixture, new), predictive, rtol=1e-9)


def test_em_log_likelihood_is_the_engines_own(engine_fits):
    em = engine_fits["em"]
    total = dg.log_likelihood(em).sum()
    np.testing.assert_allclose(total, em.details.log_lik_final, rtol=1e-10)


def test_compare_tabulates_the_khat_of_a_full_covariance_cavi_fit(engine_fits):
    cavi = engine_fits["cavi"]
    comp = compare({"cavi": cavi}, reference="cavi", khat=True)
    row = comp.engines.loc["cavi"]
    assert row["khat"] == dg.vi_khat(cavi, cavi.points) and row["khat_note"] == ""


@pytest.mark.parametrize("ordered", [False, True])
def test_the_pymc_log_joint_equals_the_numpy_one_up_to_a_constant(ordered):
    # two evaluations of log p(x, theta) + log|J| on ADVI's coordinates of a diagonal spec:
    # equal up to a constant (k-hat does not see constants); 1e-6 nats covers round-off
    spec = MixtureSpec(2, obs_sd="learned", ordered=ordered)
    means = ["means_first_ordered__[0]", "means_first_ordered__[1]", "means_rest[0,0]"]
    means += ["means_rest[1,0]"]
    if not ordered:
        means = [f"means[{k},{d}]" for k in range(2) for d in range(2)]
    labels = ["weights_stickbreaking__[0]", *means]
    labels += [f"obs_precision_log__[{k},{d}]" for k in range(2) for d in range(2)]
    theta = np.random.default_rng(8).normal(size=(6, len(labels))) * 0.5
    points = correlated_points(10, 9)
    diff = pymc_unconstrained_log_joint(theta, labels, spec, points) - unconstrained_log_joint(
        theta, labels, spec, points
    )
    assert np.ptp(diff) < 1e-6 and abs(diff[0]) < 1e-6


def test_the_mean_log_ratio_of_advi_on_a_learned_full_covariance_is_its_elbo():
    # ADVI's ELBO is E_q[log p(x, theta) + log|J| - log q] on the same coordinates (the
    # Bartlett factors of the precisions here), for any q, converged or not: the mean of
    # vi_log_ratios estimates it. Standard errors: sd / sqrt(S) for the ratios, the fit's
    # own for its ELBO estimate; 4 combined se.
    spec = MixtureSpec(2, covariance="full", obs_cov="learned")
    with pytest.warns(ConvergenceWarning, match="not converged"):  # short on purpose
        advi = fit(
            correlated_points(10, 10),
            spec,
            engine="fullrank_advi",
            random_seed=0,
            n_iter=300,
            progressbar=False,
        )
    ratios = vi_log_ratios(advi, n_draws=2000)
    elbo = advi.elbo_estimate
    se = np.hypot(ratios.std() / np.sqrt(ratios.size), elbo.se)
    assert abs(ratios.mean() - elbo.value) < 4 * se
    row = compare({"advi": advi}, reference="advi", khat=True).engines.loc["advi"]
    assert row["khat"] == pareto_khat(vi_log_ratios(advi, n_draws=4000))


def test_rules_name_correlations_when_they_are_compared(engine_fits):
    comp = compare(dict(engine_fits), reference="cavi")
    assert "obs_corr" in set(comp.parameters["group"])
    assert "(means, weights, obs_sd, obs_corr) is named" in comp.rules_text()
    report = render_report(
        {"correlated": comp},
        {"correlated": ""},
        title="t",
        command=None,
        versions={"ppl-mixtures": "0"},
        generated="now",
        machine="m",
    )
    assert "(means, weights, obs_sd, obs_corr) is named" in report


@pytest.mark.parametrize(
    "spec, got",
    [
        (MixtureSpec(n_components=2, covariance="full", obs_cov="learned"), "obs_cov='learned'"),
        (MixtureSpec(n_components=2, covariance="tied"), "covariance='tied'"),
        (MixtureSpec(n_components=2, covariance="spherical"), "covariance='spherical'"),
    ],
)
def test_exact_reference_refuses_a_learned_covariance(spec, got):
    points = correlated_points(4, 2)
    with pytest.raises(ValueError, match=rf"--reference: 'exact' needs a known covariance.*{got}"):
        check_exact_feasible(points, spec)
    idata = make_idata(np.zeros((1, 1, 2, 2)), np.full((1, 1, 2), 0.5), points)
    mixture = MixtureFit(engine="em", spec=spec, idata=idata, family="point")
    with pytest.raises(ValueError, match=rf"reference: 'exact' needs a known covariance.*{got}"):
        compare({"em": mixture}, reference="exact")


KNOWN_COV = np.array([[1.0, 0.6], [0.6, 0.8]])


def test_exact_reference_grades_a_known_full_covariance_cavi_fit():
    points = correlated_points(4, 3)
    spec = MixtureSpec(n_components=2, covariance="full", obs_cov=KNOWN_COV)
    check_exact_feasible(points, spec)  # accepted: nothing to assert but no error
    cavi = fit(points, spec, engine="cavi", random_seed=0)
    comp = compare({"cavi": cavi}, reference="exact")
    row = comp.engines.loc["cavi"]
    exact = evidence.exact_posterior(points, spec)
    truth = exact.predictive_logpdf(points)
    expected = np.mean(np.abs(dg.predictive_logpdf(cavi, points) - truth))
    np.testing.assert_allclose(row["predictive_mean_err"], expected, rtol=1e-12)
    co_err = np.max(np.abs(dg.coclustering(cavi, points) - exact.coclustering))
    np.testing.assert_allclose(row["cocluster_max_err"], co_err, rtol=1e-12)
    # the ELBO is a lower bound on the exact log p(x): its error is <= 0 (up to round-off)
    assert row["evidence_err"] <= 1e-9


def test_one_component_known_full_covariance_predictive_matches_the_exact_one():
    # At K = 1 CAVI's q(mu) is the exact Gaussian posterior, so the only error of the
    # predictive density is Monte Carlo: log mean_s p_s has se ~ sd(p_s) / (mean(p_s) sqrt(S))
    # (delta method); allow 4 se per point.
    points = correlated_points(4, 4)[:6]
    spec = MixtureSpec(n_components=1, covariance="full", obs_cov=KNOWN_COV)
    cavi = fit(points, spec, engine="cavi", random_seed=0)
    new = correlated_points(3, 5)
    lik = np.exp(dg.log_likelihood(cavi, new).reshape(-1, new.shape[0]))  # (S, M)
    se = lik.std(0) / (lik.mean(0) * np.sqrt(lik.shape[0]))
    truth = evidence.exact_posterior(points, spec).predictive_logpdf(new)
    assert np.all(np.abs(dg.predictive_logpdf(cavi, new) - truth) < 4 * se + 1e-12)


def test_mcmc_summary_sees_chains_that_disagree_on_a_correlation():
    # means, weights and sds agree across 4 chains; only the correlation of component 1 sits
    # at a different value in each chain (0.1, 0.3, 0.5, 0.7 +- 0.01): R-hat must see it.
    rng = np.random.default_rng(11)
    n_chains, n_draws = 4, 100
    means = rng.normal(size=(n_chains, n_draws, K, 2))
    weights = rng.dirichlet([50.0, 50.0], size=(n_chains, n_draws))
    corr = 0.1 + 0.2 * np.arange(n_chains)[:, None] + 0.01 * rng.normal(size=(n_chains, n_draws))
    cov = np.broadcast_to(np.eye(2), (n_chains, n_draws, K, 2, 2)).copy()
    cov[:, :, 1, 0, 1] = cov[:, :, 1, 1, 0] = corr
    spec = MixtureSpec(n_components=K, covariance="full", obs_cov="learned")
    idata = make_idata(means, weights, np.zeros((5, 2)), obs_cov=cov)
    summary = dg.mcmc_summary(MixtureFit(engine="nuts", spec=spec, idata=idata, family="mcmc"))
    corr_rows = [label for label in summary.table.index if label.startswith("obs_corr")]
    assert corr_rows == ["obs_corr[0, 0, 1]", "obs_corr[1, 0, 1]"]
    worst = summary.table["r_hat"].idxmax()
    assert worst == "obs_corr[1, 0, 1]" and summary.rhat_max > 2.0
    # iid draws: R-hat - 1 is O(1/sqrt(chains x draws)) ~ 0.05 at most; constants give NaN
    assert summary.table.drop(index=worst)["r_hat"].max() < 1.1


# ------------------------------------------------------------ k-hat of CAVI's full-covariance q
def log_mean_exp_and_se(log_ratios: np.ndarray) -> tuple[float, float]:
    """log mean exp(r) and its delta-method se sd(w) / (mean(w) sqrt(S)), w = exp(r - max)."""
    w = np.exp(log_ratios - log_ratios.max())
    se = w.std() / (w.mean() * np.sqrt(w.size))
    return float(np.log(w.mean()) + log_ratios.max()), float(se)


def test_khat_of_an_exact_q_is_minus_infinity():
    # K = 1 with a known covariance: q(mu) = N(m, C) is the exact posterior, p/q constant
    spec = MixtureSpec(n_components=1, covariance="full", obs_cov=KNOWN_COV)
    cavi = fit(correlated_points(4, 3), spec, engine="cavi", random_seed=0)
    assert dg.vi_khat(cavi) == -np.inf


def test_importance_sampling_with_a_full_gaussian_q_recovers_the_exact_evidence():
    # p(x) = E_q[p(x, theta) / q(theta)] when q covers the posterior. CAVI's q sits in one of
    # the K! = 2 label modes of a symmetric posterior whose modes barely overlap on these
    # separated points, so the estimate is log p(x) - log 2; the se is the delta method's
    # (k-hat < 0.7 here, the ratios' tail is light enough for it); 4 se.
    points = correlated_points(4, 3)
    spec = MixtureSpec(n_components=2, covariance="full", obs_cov=KNOWN_COV)
    cavi = fit(points, spec, engine="cavi", random_seed=0)
    ratios = vi_log_ratios(cavi, n_draws=20_000, random_seed=1)
    estimate, se = log_mean_exp_and_se(ratios)
    exact = evidence.exact_posterior(points, spec).log_evidence
    assert abs(estimate + np.log(2.0) - exact) < 4 * se
    assert pareto_khat(ratios) < 0.7


def test_a_one_feature_wishart_q_scores_like_the_gamma_q_it_equals():
    # At D = 1 the Wishart(2a, I/(2b)) prior is Gamma(a, b) on the precision (the spec's
    # defaults), so covariance="full" learned and obs_sd="learned" are one model; CAVI
    # reaches the same q (checked), and the two scorings of the same q must agree: the mean
    # log ratio and the IS log-evidence, each within 4 combined standard errors.
    x = np.random.default_rng(1).normal(size=(30, 1))
    x[:15] += 3.0
    full = fit(
        x, MixtureSpec(2, covariance="full", obs_cov="learned"), engine="cavi", random_seed=0
    )
    diag = fit(x, MixtureSpec(2, obs_sd="learned"), engine="cavi", random_seed=0)
    qf, qd = full.details.variational_params, diag.details.variational_params
    np.testing.assert_allclose(qf["wishart_dof"], 2 * qd["prec_shape"][:, 0], rtol=1e-8)
    np.testing.assert_allclose(qf["wishart_scale"][:, 0, 0], 0.5 / qd["prec_rate"][:, 0], rtol=1e-8)
    r_full = vi_log_ratios(full, n_draws=20_000, random_seed=2)
    r_diag = vi_log_ratios(diag, n_draws=20_000, random_seed=3)
    se_mean = np.hypot(r_full.std(), r_diag.std()) / np.sqrt(r_full.size)
    assert abs(r_full.mean() - r_diag.mean()) < 4 * se_mean
    (e_full, se_full), (e_diag, se_diag) = map(log_mean_exp_and_se, (r_full, r_diag))
    assert abs(e_full - e_diag) < 4 * np.hypot(se_full, se_diag)


@pytest.mark.parametrize("covariance", ["full", "tied", "spherical"])
def test_the_mean_log_ratio_is_above_the_cavi_elbo(covariance):
    # E_q[log p(x, theta) - log q(theta)] sums z out exactly, so it is >= CAVI's ELBO, whose
    # q(z) is one more factor: a wrong constant in the Wishart or Gamma terms breaks it.
    # The mean of S ratios has se sd / sqrt(S); 4 se.
    spec = MixtureSpec(
        2, covariance=covariance, obs_cov="learned" if covariance == "full" else None
    )
    cavi = fit(correlated_points(30, 0), spec, engine="cavi", random_seed=0)
    ratios = vi_log_ratios(cavi, n_draws=4000)
    elbo = cavi.elbo_estimate.value
    assert elbo <= ratios.mean() + 4 * ratios.std() / np.sqrt(ratios.size)
    assert np.isfinite(dg.vi_khat(cavi))


def test_a_one_feature_spherical_q_gives_the_diagonal_ratios():
    # At D = 1 "spherical" and obs_sd="learned" are one model with the same Gamma prior;
    # CAVI reaches the same q, and the same seed draws the same theta: equal log ratios
    x = np.random.default_rng(12).normal(size=(20, 1))
    x[:10] += 3.0
    sph = fit(x, MixtureSpec(2, covariance="spherical"), engine="cavi", random_seed=0)
    diag = fit(x, MixtureSpec(2, obs_sd="learned"), engine="cavi", random_seed=0)
    np.testing.assert_allclose(
        vi_log_ratios(sph, n_draws=500), vi_log_ratios(diag, n_draws=500), rtol=1e-9
    )
