"""Truncated Dirichlet-process weights in the PyMC engines: the model's density against scipy,
the prior of the weights, NUTS on well-separated clusters, SMC's evidence against exact
enumeration, and the engines that refuse the DP."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pymc as pm
import pytensor
import pytest
from scipy import stats
from scipy.special import betaln, logsumexp

from ppl_mixtures import MixtureSpec, fit
from ppl_mixtures.analysis.occupancy import occupied_components
from ppl_mixtures.inference.pymc.models import build_marginal_model, initial_points
from ppl_mixtures.model.evidence import exact_log_evidence

RNG = np.random.default_rng(1515)
POINTS = np.concatenate([RNG.normal([-3.0, 0.0], 0.7, (6, 2)), RNG.normal([3.0, 1.0], 0.7, (6, 2))])


def _naive_weights(sticks: np.ndarray) -> np.ndarray:
    """w_k = v_k prod_{j<k} (1 - v_j), w_T = prod_{j<T} (1 - v_j), by plain products."""
    weights, left = [], 1.0
    for v in sticks:
        weights.append(v * left)
        left *= 1.0 - v
    return np.array([*weights, left])


def _value_point(model: pm.Model, constrained: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Constrained values by RV name -> the model's value variables (unconstrained)."""
    point = {}
    for rv in model.free_RVs:
        value = np.asarray(constrained[rv.name], dtype=np.float64)
        transform = model.rvs_to_transforms.get(rv)
        if transform is not None:
            value = transform.forward(pytensor.tensor.as_tensor(value), *rv.owner.inputs).eval()
        point[model.rvs_to_values[rv].name] = value
    return point


def _weights_fn(model: pm.Model):
    """The model's weights at a point of all its (unconstrained) value variables."""
    (weights,) = model.replace_rvs_by_values([model["weights"]])
    return model.compile_fn(weights, inputs=model.value_vars, on_unused_input="ignore")


# (name, spec, mixture log-likelihood of the points given weights and means, by scipy)
def _diag_loglik(weights, means):
    dens = [
        weights[k] * stats.multivariate_normal(means[k], np.diag([0.7**2, 0.7**2])).pdf(POINTS)
        for k in range(len(weights))
    ]
    return float(np.log(np.sum(dens, axis=0)).sum())


COV = np.array([[0.6, 0.2], [0.2, 0.9]])


def _full_loglik(weights, means):
    dens = [
        weights[k] * stats.multivariate_normal(means[k], COV).pdf(POINTS)
        for k in range(len(weights))
    ]
    return float(np.log(np.sum(dens, axis=0)).sum())


DENSITY_CASES = {
    "diag_learned_alpha": (
        MixtureSpec(5, weights="dp", dp_alpha_prior=(2.0, 1.5), obs_sd=0.7, mean_prior_sd=3.0),
        _diag_loglik,
    ),
    "full_fixed_alpha": (
        MixtureSpec(
            4, weights="dp", dp_alpha=0.7, covariance="full", obs_cov=COV, mean_prior_sd=3.0
        ),
        _full_loglik,
    ),
}


@pytest.mark.parametrize("case", list(DENSITY_CASES))
def test_dp_model_density_equals_scipy_at_random_points(case):
    spec, loglik = DENSITY_CASES[case]
    model = build_marginal_model(POINTS, spec)
    logp = model.compile_logp(jacobian=False)  # the density of the constrained variables
    weights_fn = _weights_fn(model)
    T = spec.n_components
    for _ in range(3):
        alpha = RNG.gamma(2.0, 1.0 / 1.5) if spec.dp_alpha_prior else spec.dp_alpha
        sticks = RNG.beta(1.0, alpha, T - 1)
        means = RNG.normal(0.0, 3.0, (T, 2))
        constrained = {"means": means, "dp_neg_log_rest": -np.log1p(-sticks)}
        if spec.dp_alpha_prior:
            constrained["dp_alpha"] = alpha
        point = _value_point(model, constrained)
        # The model samples e_k = -log(1 - v_k) (module docs of inference/pymc/dp.py): its
        # density is the Beta(1, alpha) density of v times |dv/de| = exp(-e) = 1 - v.
        expected = (
            stats.beta(1.0, alpha).logpdf(sticks).sum()
            + np.log1p(-sticks).sum()
            + stats.norm(0.0, 3.0).logpdf(means).sum()
            + loglik(_naive_weights(sticks), means)
        )
        if spec.dp_alpha_prior:
            expected += stats.gamma(2.0, scale=1 / 1.5).logpdf(alpha)
        # rel 1e-9: rounding of two float64 sums of ~100 terms taken in different orders
        # (the fused numba density vs scipy's densities; seen: 2e-10)
        assert logp(point) == pytest.approx(expected, rel=1e-9)
        np.testing.assert_allclose(weights_fn(point), _naive_weights(sticks), rtol=1e-12)


def test_prior_weights_have_the_stick_breaking_moments():
    # w_1 = v_1 ~ Beta(1, alpha): E = 1/(1+alpha), Var = alpha / ((1+alpha)^2 (2+alpha)).
    # w_T = prod_{j<T} (1 - v_j), independent sticks: E = (alpha/(1+alpha))^(T-1) and
    # E[w_T^2] = (E[(1-v)^2])^(T-1) = (alpha/(2+alpha))^(T-1). Tolerance: 4 standard errors
    # of a mean of S independent prior draws, sqrt(Var / S).
    alpha, T, S = 2.0, 4, 4000
    spec = MixtureSpec(T, weights="dp", dp_alpha=alpha, obs_sd=1.0)
    model = build_marginal_model(POINTS, spec)
    draws = pm.draw(model["weights"], draws=S, random_seed=7, mode="FAST_COMPILE")
    np.testing.assert_allclose(draws.sum(1), 1.0, atol=1e-12)
    mean_1, var_1 = 1 / (1 + alpha), alpha / ((1 + alpha) ** 2 * (2 + alpha))
    assert abs(draws[:, 0].mean() - mean_1) <= 4 * np.sqrt(var_1 / S)
    mean_T = (alpha / (1 + alpha)) ** (T - 1)
    var_T = (alpha / (2 + alpha)) ** (T - 1) - mean_T**2
    assert abs(draws[:, -1].mean() - mean_T) <= 4 * np.sqrt(var_T / S)


def test_dp_starts_are_valid_and_use_the_dirichlet_starts_weights():
    dp_spec = MixtureSpec(5, weights="dp", dp_alpha_prior=(1.0, 1.0), obs_sd=0.7)
    plain = initial_points(MixtureSpec(5, obs_sd=0.7), POINTS, 3, random_seed=4)
    model = build_marginal_model(POINTS, dp_spec)
    logp, weights_fn = model.compile_logp(), _weights_fn(model)
    for start, other in zip(initial_points(dp_spec, POINTS, 3, random_seed=4), plain, strict=True):
        point = _value_point(model, start)
        assert np.isfinite(logp(point))
        # the same overdispersed weights as the Dirichlet spec's start, written as sticks
        np.testing.assert_allclose(weights_fn(point), other["weights"], rtol=1e-12)
        np.testing.assert_array_equal(start["means"], other["means"])


def test_nuts_puts_its_mass_on_three_occupied_components():
    # 3 clusters 7 units apart, T = 5, the model's known sd 0.5. A DP puts real posterior
    # mass on an extra singleton cluster for a point far from its cluster's centre (its odds
    # grow like alpha exp(d^2 / (2 sd^2))): with noise sd 0.5 and alpha = 0.3 one data set
    # gave P(3) = 0.895. The data here have noise sd 0.4 (no lone outliers under the
    # model's 0.5): they gave P(3) = 0.958 (MCSE of the mean count 0.01); the test asks for
    # >= 0.9.
    rng = np.random.default_rng(3)
    centers = np.array([[-5.0, -5.0], [0.0, 0.0], [5.0, 5.0]])
    points = np.concatenate([c + 0.4 * rng.standard_normal((15, 2)) for c in centers])
    spec = MixtureSpec(5, weights="dp", dp_alpha=0.3, obs_sd=0.5, mean_prior_sd=5.0)
    nuts = fit(
        points,
        spec,
        engine="nuts",
        draws=500,
        tune=500,
        chains=2,
        cores=1,
        random_seed=1,
        progressbar=False,
    )
    post = nuts.idata["posterior"]
    assert post["dp_sticks"].dims == ("chain", "draw", "component_stick")
    assert post["dp_sticks"].shape == (2, 500, 4) and post["weights"].shape == (2, 500, 5)
    occ = occupied_components(nuts)
    assert occ.pmf[3] >= 0.9, occ.to_markdown()
    assert occ.truncation_ok, occ.to_markdown()


def _exact_dp_log_evidence(x: np.ndarray, T: int, alpha: float, sd: float, tau: float) -> float:
    """log p(x) of the truncated DP mixture (1-D, known sd, means ~ N(0, tau^2)), by
    enumerating every z in {1..T}^N:
    p(z) = prod_{k<T} B(1 + n_k, alpha + m_k) / B(1, alpha), m_k = sum_{j>k} n_j (the Beta
    integrals of the sticks), and p(x | z) = prod_k N(x_k | 0, sd^2 I + tau^2 11^T)."""
    terms = []
    for z in itertools.product(range(T), repeat=x.size):
        z = np.array(z)
        n = np.bincount(z, minlength=T)
        after = np.cumsum(n[::-1])[::-1][1:]  # m_k, k = 1..T-1
        term = float(np.sum(betaln(1 + n[:-1], alpha + after) - betaln(1.0, alpha)))
        for k in range(T):
            xs = x[z == k]
            if xs.size:
                cov = sd**2 * np.eye(xs.size) + tau**2
                term += stats.multivariate_normal(np.zeros(xs.size), cov).logpdf(xs)
        terms.append(term)
    return float(logsumexp(terms))


def test_smc_evidence_matches_exact_enumeration_of_the_truncated_model():
    x = np.array([-2.1, -1.7, -1.9, 1.8, 2.2, 2.4])
    spec = MixtureSpec(3, weights="dp", dp_alpha=1.0, obs_sd=1.0, mean_prior_sd=2.0)
    exact = _exact_dp_log_evidence(x, 3, 1.0, 1.0, 2.0)
    # the package's enumeration agrees with this one (two codes, one number)
    assert exact_log_evidence(x, spec) == pytest.approx(exact, abs=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no EvidenceWarning: no flag is raised
        smc = fit(
            x[:, None],
            spec,
            engine="smc",
            draws=1000,
            runs=4,
            random_seed=3,
            progressbar=False,
            log_likelihood=False,
        )
    # the engine's own delta-method se over 4 independent runs; 4 se
    assert abs(smc.evidence.log_evidence - exact) <= 4 * smc.evidence.se
    assert smc.evidence.se < 0.1  # and the se is small enough for the check to bite


def test_latent_gibbs_refuses_dp_naming_the_engines_that_serve_it():
    spec = MixtureSpec(3, weights="dp", obs_sd=1.0)
    with pytest.raises(NotImplementedError, match="latent_gibbs") as info:
        fit(POINTS, spec, engine="latent_gibbs")
    message = str(info.value)
    for engine in ("nuts", "metropolis", "smc"):
        assert engine in message.split("Engines that do:")[1], message


@pytest.mark.parametrize(
    "covariance, extra",
    [
        ("diag", {"obs_sd": "learned"}),
        ("full", {"obs_cov": "learned"}),
        ("tied", {}),
        ("spherical", {}),
    ],
)
def test_every_covariance_type_has_a_dp_model_with_finite_starts(covariance, extra):
    spec = MixtureSpec(
        4,
        weights="dp",
        covariance=covariance,
        dp_alpha_prior=(1.0, 1.0),
        mean_prior_sd=5.0,
        **extra,
    )
    model = build_marginal_model(POINTS, spec)
    assert model.named_vars_to_dims["dp_sticks"] == ("component_stick",)
    # Python-mode graphs: two evaluations do not pay for a numba compile
    logp = model.compile_logp(mode="FAST_COMPILE")
    dlogp = model.compile_dlogp(mode="FAST_COMPILE")
    for start in initial_points(spec, POINTS, 2, random_seed=2):
        point = _value_point(model, start)
        assert np.isfinite(logp(point)) and np.all(np.isfinite(dlogp(point)))


def test_advi_stores_the_sticks_and_alpha_of_its_draws():
    """ADVI's posterior carries q's sticks and alpha, consistent with its weights."""
    from ppl_mixtures.model.transforms import stick_weights

    rng = np.random.default_rng(0)
    points = np.r_[rng.normal(-3, 0.5, (60, 1)), rng.normal(3, 0.5, (60, 1))]
    spec = MixtureSpec(n_components=4, weights="dp", dp_alpha_prior=(2.0, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short run: convergence is not what is tested
        result = fit(points, spec, engine="advi", n_iter=500, random_seed=1, progressbar=False)
    posterior = result.idata["posterior"]
    assert posterior["dp_sticks"].dims == ("chain", "draw", "component_stick")
    np.testing.assert_allclose(
        posterior["weights"].values, stick_weights(posterior["dp_sticks"].values), rtol=1e-10
    )
    assert posterior["dp_alpha"].dims == ("chain", "draw")
    assert np.all(posterior["dp_alpha"].values > 0)
