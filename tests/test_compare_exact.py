"""compare(..., reference="exact") on tiny data: every fit graded against the exact
posterior (enumeration), checked against an enumeration of our own (scipy only); and the
k-hat of a real CAVI fit there."""

import json

import numpy as np
import pytest

from ppl_mixtures import MixtureSpec
from ppl_mixtures.analysis.compare import KHAT_TOL, compare
from ppl_mixtures.results import Estimate, EvidenceEstimate, MixtureFit, make_idata

#: The family ``ppl_mixtures.fit`` records for each engine.
FAMILIES = {"nuts": "mcmc", "metropolis": "mcmc", "smc": "mcmc", "em": "point"}
# ------------------------------------------------------------- the exact reference

TINY_SPEC = MixtureSpec(n_components=2, mean_prior_sd=2.0, dirichlet_alpha=1.0, obs_sd=0.7)
TINY = np.array([[-1.9], [-1.2], [-1.6], [0.3], [1.4], [1.9], [2.2]])


def exact_draws(points, spec, n_chains, n_draws, seed):
    """Independent draws from the exact posterior, by an enumeration of our own.

    For each assignment z, log p(x, z) = log p(z) + sum_k log N(x_k | m0 1, sd^2 I +
    s0^2 1 1^T) (scipy's multivariate normal: the means integrated out, no sufficient
    statistics) with the Dirichlet-multinomial log p(z); then z ~ p(z | x), the means from
    their conjugate Normal given z and the weights from Dirichlet(alpha + n_k).
    """
    from itertools import product

    from scipy.special import gammaln, logsumexp
    from scipy.stats import multivariate_normal

    x = points[:, 0]
    n, K = len(x), spec.n_components
    m0, s0, sd, alpha = 0.0, spec.mean_prior_sd, spec.obs_sd, np.full(K, spec.dirichlet_alpha)
    zs = np.array(list(product(range(K), repeat=n)))
    log_joint = np.empty(len(zs))
    for a, z in enumerate(zs):
        counts = np.bincount(z, minlength=K)
        total = (
            gammaln(alpha.sum())
            - gammaln(alpha.sum() + n)
            + np.sum(gammaln(alpha + counts) - gammaln(alpha))
        )
        for k in range(K):
            xk = x[z == k]
            if xk.size:
                cov = sd**2 * np.eye(xk.size) + s0**2 * np.ones((xk.size, xk.size))
                total += multivariate_normal(np.full(xk.size, m0), cov).logpdf(xk)
        log_joint[a] = total
    post = np.exp(log_joint - logsumexp(log_joint))
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(zs), size=n_chains * n_draws, p=post / post.sum())
    means = np.empty((n_chains * n_draws, K, 1))
    weights = np.empty((n_chains * n_draws, K))
    for s, a in enumerate(picks):
        counts = np.bincount(zs[a], minlength=K)
        sums = np.bincount(zs[a], weights=x, minlength=K)
        prec = 1 / s0**2 + counts / sd**2
        means[s, :, 0] = rng.normal((m0 / s0**2 + sums / sd**2) / prec, 1 / np.sqrt(prec))
        weights[s] = rng.dirichlet(alpha + counts)
    return (
        means.reshape(n_chains, n_draws, K, 1),
        weights.reshape(n_chains, n_draws, K),
        float(logsumexp(log_joint)),
    )


def tiny_fit(engine, means, weights, **kwargs):
    kwargs.setdefault("family", FAMILIES.get(engine))
    return MixtureFit(
        engine=engine, spec=TINY_SPEC, idata=make_idata(means, weights, TINY), **kwargs
    )


@pytest.fixture(scope="module")
def exact_comparison():
    means, weights, log_z = exact_draws(TINY, TINY_SPEC, 4, 500, seed=3)
    fits = {
        "nuts": tiny_fit("nuts", means, weights),
        # the same draws moved by one unit: a wrong posterior
        "off": tiny_fit("metropolis", means + 1.0, weights),
        # an evidence estimate 2 nats high with se 0.3 (6.7 se), and one within its se
        "smc": tiny_fit("smc", means, weights, evidence=EvidenceEstimate(log_z + 2.0, 0.3, "runs")),
        "smc_ok": tiny_fit(
            "smc", means, weights, evidence=EvidenceEstimate(log_z - 0.2, 0.3, "runs")
        ),
        # an ELBO above log p(x): impossible for a lower bound
        "bad_elbo": tiny_fit(
            "em", means[:1, :1], weights[:1, :1], elbo_estimate=Estimate(log_z + 5.0, 0.0)
        ),
    }
    return compare(fits, reference="exact", khat=False), (means, weights, log_z)


def test_exact_reference_grades_every_engine(exact_comparison):
    comp, (means, weights, log_z) = exact_comparison
    assert comp.graded_by == "exact" and comp.reference == "nuts"
    # the enumeration in evidence.py and ours (scipy's multivariate normal) agree
    np.testing.assert_allclose(comp.exact_log_evidence, log_z, rtol=0, atol=1e-9)
    assert comp.log_evidence_source == "exact" and comp.log_evidence_se == 0.0
    eng = comp.engines
    # Exact draws: each co-clustering entry is a mean over 2000 independent draws of
    # sum_k r_ik r_jk in [0, 1], so its se is at most 0.5 / sqrt(2000) = 0.011; 4 se.
    assert eng.loc["nuts", "cocluster_max_err"] < 4 * 0.5 / np.sqrt(2000)
    # predictive: log of a mean of S densities; its se is the relative se of that mean
    dens = np.exp(mixture_logp_draws(means, weights))  # (S, N)
    rel_se = dens.std(0) / np.sqrt(dens.shape[0]) / dens.mean(0)
    assert eng.loc["nuts", "predictive_mean_err"] < 4 * rel_se.max()
    # the wrong posterior is graded far worse on both label-invariant metrics
    assert eng.loc["off", "cocluster_max_err"] > 5 * eng.loc["nuts", "cocluster_max_err"]
    assert eng.loc["off", "predictive_mean_err"] > 10 * eng.loc["nuts", "predictive_mean_err"]


def mixture_logp_draws(means, weights):
    """log p(x_i | theta_s) of TINY for every draw, (S, N), with scipy."""
    from scipy.special import logsumexp
    from scipy.stats import norm

    m = means.reshape(-1, 2)
    w = weights.reshape(-1, 2)
    comp = norm.logpdf(TINY[:, 0][None, :, None], m[:, None, :], TINY_SPEC.obs_sd)
    return logsumexp(np.log(w)[:, None, :] + comp, axis=-1)


def test_exact_reference_flags_evidence_and_elbo(exact_comparison):
    comp, _ = exact_comparison
    verdicts, eng = comp.verdicts(), comp.engines
    assert "log p(x) estimate 2.00 nats (6.7 se) above the exact value" in verdicts["smc"]
    assert "the exact value" not in verdicts["smc_ok"]  # within its se of the truth
    np.testing.assert_allclose(eng.loc["smc_ok", "evidence_err"], -0.2, atol=1e-9)
    assert "ELBO 5.00 nats above the exact log p(x)" in verdicts["bad_elbo"]
    text = comp.to_markdown()
    assert "Every engine against the exact posterior" in text
    assert "Exact log evidence log p(x) = " in text
    data = json.loads(json.dumps(comp.to_dict(), allow_nan=False))
    assert data["graded_by"] == "exact"
    assert data["engines"]["off"]["cocluster_max_err"] > 0


def test_exact_reference_states_its_limit():
    rng = np.random.default_rng(0)
    big = rng.normal(size=(21, 1))
    fit = MixtureFit(
        engine="nuts",
        spec=TINY_SPEC,
        idata=make_idata(np.zeros((2, 5, 2, 1)), np.full((2, 5, 2), 0.5), big),
    )
    with pytest.raises(
        ValueError,
        match=r"reference: 'exact' enumerates all K\^N assignments "
        r"and needs K\^N <= 2,000,000 .* got K=2, N=21",
    ):
        compare({"nuts": fit}, reference="exact")
    learned = MixtureFit(
        engine="nuts",
        spec=MixtureSpec(2, obs_sd="learned"),
        idata=make_idata(
            np.zeros((2, 5, 2, 1)), np.full((2, 5, 2), 0.5), TINY, obs_sd=np.ones((2, 5, 2, 1))
        ),
    )
    with pytest.raises(ValueError, match="reference: 'exact' needs a known obs_sd"):
        compare({"nuts": learned}, reference="exact")


@pytest.fixture(scope="module")
def real_vi_comparison():
    """NUTS-like exact draws and a real CAVI fit on the tiny data (k-hat from its q)."""
    import ppl_mixtures as pmx

    means, weights, _ = exact_draws(TINY, TINY_SPEC, 4, 500, seed=4)
    cavi = pmx.fit(TINY, TINY_SPEC, engine="cavi", random_seed=1)
    return compare({"nuts": tiny_fit("nuts", means, weights), "cavi": cavi}), cavi


def test_vi_fits_get_a_khat_column_with_its_reading(real_vi_comparison):
    from ppl_mixtures.analysis.diagnostics import vi_khat

    comp, cavi = real_vi_comparison
    khat = comp.engines.loc["cavi", "khat"]
    assert khat == vi_khat(cavi, TINY)  # same default seed: same number
    assert np.isnan(comp.engines.loc["nuts", "khat"])  # MCMC: no q, no k-hat
    reading = "usable" if khat < KHAT_TOL else "unreliable"
    assert f"| {khat:.2f} ({reading}) |" in comp.to_markdown()
    assert ("k-hat" in comp.verdicts()["cavi"]) == (khat >= KHAT_TOL)
