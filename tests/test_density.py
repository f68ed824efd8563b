"""The marginal mixture density: numpy reference and PyTensor version against scipy.

The comparison with the built-in ``pm.Mixture`` model's compiled logp lives in
tests/test_models.py, where the compiled models are shared.
"""

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from ppl_mixtures.density import log_responsibilities, mixture_logp


def scipy_mixture_logp(points, weights, means, obs_sd):
    """logsumexp_k [log w_k + log MVN(x | mu_k, diag(sd_k^2))], the oracle; (N,)."""
    obs_sd = np.broadcast_to(obs_sd, means.shape)
    comps = np.stack([multivariate_normal(means[k], np.diag(obs_sd[k] ** 2)).logpdf(points)
                      for k in range(len(weights))], axis=-1).reshape(len(points), -1)
    return logsumexp(np.log(weights) + comps, axis=-1)


def random_case(seed, n_samples, n_components, n_features, learned):
    rng = np.random.default_rng(seed)
    points = rng.normal(scale=2.0, size=(n_samples, n_features))
    weights = rng.dirichlet(np.ones(n_components))
    means = rng.normal(scale=2.0, size=(n_components, n_features))
    if learned:
        obs_sd = rng.uniform(0.3, 2.0, size=(n_components, n_features))
    else:
        obs_sd = np.broadcast_to(rng.uniform(0.3, 2.0, size=n_features),
                                 (n_components, n_features)).copy()
    return points, weights, means, obs_sd


CASES = [(0, 1, False), (1, 1, True), (2, 3, False), (3, 3, True)]  # (seed, D, learned sd)


@pytest.mark.parametrize("seed, n_features, learned", CASES)
def test_numpy_reference_equals_scipy(seed, n_features, learned):
    points, weights, means, obs_sd = random_case(seed, 25, 3, n_features, learned)
    np.testing.assert_allclose(mixture_logp(points, weights, means, obs_sd),
                               scipy_mixture_logp(points, weights, means, obs_sd), rtol=1e-12)


def test_numpy_reference_batches_draws_and_normalizes_responsibilities():
    points, weights, means, obs_sd = random_case(4, 10, 2, 2, True)
    stacked = mixture_logp(points, np.stack([weights, weights[::-1]]),
                           np.stack([means, means[::-1]]), np.stack([obs_sd, obs_sd[::-1]]))
    assert stacked.shape == (2, 10)
    np.testing.assert_allclose(stacked[0], stacked[1], rtol=1e-12)
    resp = np.exp(log_responsibilities(points, weights, means, obs_sd))
    np.testing.assert_allclose(resp.sum(-1), 1.0)


# --------------------------------------------------------------------------- PyTensor
@pytest.fixture(scope="module")
def pt_logp():
    """Compiled mixture_logp_pt, called the way CustomDist calls it (leading batch dim 1)."""
    import pytensor
    import pytensor.tensor as pt

    from ppl_mixtures.density import mixture_logp_pt

    value = pt.matrix("value")
    weights = pt.tensor("weights", shape=(1, None))
    means = pt.tensor("means", shape=(1, None, None))
    obs_sd = pt.tensor("obs_sd", shape=(1, None, None))
    out = mixture_logp_pt(value, weights, means, obs_sd)
    fn = pytensor.function([value, weights, means, obs_sd], out)
    return lambda x, w, m, s: fn(x, w[None], m[None], s[None])


@pytest.mark.parametrize("seed, n_features, learned", CASES)
def test_pytensor_density_equals_scipy_and_numpy(pt_logp, seed, n_features, learned):
    points, weights, means, obs_sd = random_case(seed, 25, 3, n_features, learned)
    got = pt_logp(points, weights, means, obs_sd)
    assert got.shape == (25,)  # one value per observation, not (1, N)
    np.testing.assert_allclose(got, scipy_mixture_logp(points, weights, means, obs_sd),
                               rtol=1e-12)
    np.testing.assert_allclose(got, mixture_logp(points, weights, means, obs_sd), rtol=1e-12)


def test_pytensor_density_far_from_every_mean(pt_logp):
    # points 1e3 sd away: exp of the component terms underflows, logsumexp must not
    _points, weights, means, obs_sd = random_case(5, 6, 3, 2, True)
    far = means[0] + 1e3 * obs_sd.max() * np.array([[1.0, -1.0], [-1.0, 1.0], [2.0, 0.0],
                                                    [0.0, -2.0], [1.5, 1.5], [-3.0, 0.5]])
    got = pt_logp(far, weights, means, obs_sd)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, scipy_mixture_logp(far, weights, means, obs_sd), rtol=1e-12)
    np.testing.assert_allclose(got, mixture_logp(far, weights, means, obs_sd), rtol=1e-12)


def test_pytensor_density_invariant_to_permuting_components(pt_logp):
    points, weights, means, obs_sd = random_case(6, 20, 4, 2, True)
    perm = np.array([2, 0, 3, 1])
    np.testing.assert_allclose(pt_logp(points, weights[perm], means[perm], obs_sd[perm]),
                               pt_logp(points, weights, means, obs_sd), rtol=1e-13)


def test_density_module_import_is_numpy_only():
    import subprocess
    import sys

    code = ("import sys, ppl_mixtures.density; "
            "print(any(m.split('.')[0] in ('pytensor', 'pymc') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
