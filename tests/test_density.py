"""The marginal mixture density: numpy reference and PyTensor version against scipy.

The comparison with the built-in ``pm.Mixture`` model's compiled logp lives in
tests/test_models.py, where the compiled models are shared.
"""

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from ppl_mixtures.model.density import log_responsibilities, mixture_logp


def scipy_mixture_logp(points, weights, means, obs_sd):
    """logsumexp_k [log w_k + log MVN(x | mu_k, diag(sd_k^2))], the oracle; (N,)."""
    obs_sd = np.broadcast_to(obs_sd, means.shape)
    comps = np.stack(
        [
            multivariate_normal(means[k], np.diag(obs_sd[k] ** 2)).logpdf(points)
            for k in range(len(weights))
        ],
        axis=-1,
    ).reshape(len(points), -1)
    return logsumexp(np.log(weights) + comps, axis=-1)


def random_case(seed, n_samples, n_components, n_features, learned):
    rng = np.random.default_rng(seed)
    points = rng.normal(scale=2.0, size=(n_samples, n_features))
    weights = rng.dirichlet(np.ones(n_components))
    means = rng.normal(scale=2.0, size=(n_components, n_features))
    if learned:
        obs_sd = rng.uniform(0.3, 2.0, size=(n_components, n_features))
    else:
        obs_sd = np.broadcast_to(
            rng.uniform(0.3, 2.0, size=n_features), (n_components, n_features)
        ).copy()
    return points, weights, means, obs_sd


CASES = [(0, 1, False), (1, 1, True), (2, 3, False), (3, 3, True)]  # (seed, D, learned sd)


@pytest.mark.parametrize("seed, n_features, learned", CASES)
def test_numpy_reference_equals_scipy(seed, n_features, learned):
    points, weights, means, obs_sd = random_case(seed, 25, 3, n_features, learned)
    np.testing.assert_allclose(
        mixture_logp(points, weights, means, obs_sd),
        scipy_mixture_logp(points, weights, means, obs_sd),
        rtol=1e-12,
    )


def test_numpy_reference_batches_draws_and_normalizes_responsibilities():
    points, weights, means, obs_sd = random_case(4, 10, 2, 2, True)
    stacked = mixture_logp(
        points,
        np.stack([weights, weights[::-1]]),
        np.stack([means, means[::-1]]),
        np.stack([obs_sd, obs_sd[::-1]]),
    )
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

    from ppl_mixtures.model.density import mixture_logp_pt

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
    np.testing.assert_allclose(got, scipy_mixture_logp(points, weights, means, obs_sd), rtol=1e-12)
    np.testing.assert_allclose(got, mixture_logp(points, weights, means, obs_sd), rtol=1e-12)


def test_pytensor_density_far_from_every_mean(pt_logp):
    # points 1e3 sd away: exp of the component terms underflows, logsumexp must not
    _points, weights, means, obs_sd = random_case(5, 6, 3, 2, True)
    far = means[0] + 1e3 * obs_sd.max() * np.array(
        [[1.0, -1.0], [-1.0, 1.0], [2.0, 0.0], [0.0, -2.0], [1.5, 1.5], [-3.0, 0.5]]
    )
    got = pt_logp(far, weights, means, obs_sd)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, scipy_mixture_logp(far, weights, means, obs_sd), rtol=1e-12)
    np.testing.assert_allclose(got, mixture_logp(far, weights, means, obs_sd), rtol=1e-12)


def test_pytensor_density_invariant_to_permuting_components(pt_logp):
    points, weights, means, obs_sd = random_case(6, 20, 4, 2, True)
    perm = np.array([2, 0, 3, 1])
    np.testing.assert_allclose(
        pt_logp(points, weights[perm], means[perm], obs_sd[perm]),
        pt_logp(points, weights, means, obs_sd),
        rtol=1e-13,
    )


def test_density_module_import_is_numpy_only():
    import subprocess
    import sys

    code = (
        "import sys, ppl_mixtures.model.density; "
        "print(any(m.split('.')[0] in ('pytensor', 'pymc') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- fused Op
@pytest.mark.parametrize("n_features", [1, 3])
def test_fused_gradient_passes_verify_grad(n_features):
    import pytensor

    from ppl_mixtures.model.density import fused_mixture_logp

    points, weights, means, obs_sd = random_case(7 + n_features, 12, 3, n_features, True)
    pytensor.gradient.verify_grad(
        fused_mixture_logp,
        [points, np.log(weights), means, obs_sd],
        rng=np.random.default_rng(0),
        abs_tol=1e-6,
        rel_tol=1e-6,
    )


@pytest.fixture(scope="module")
def fused_and_elementwise():
    """logp and gradients (w.r.t. x, log w, means, sd) of the sum, fused vs elementwise."""
    import pytensor
    import pytensor.tensor as pt

    from ppl_mixtures.model.density import fused_mixture_logp, mixture_logp_pt_elementwise

    x, means, obs_sd = pt.matrix("x"), pt.matrix("means"), pt.matrix("obs_sd")
    log_w = pt.vector("log_w")
    outs = []
    for total in (
        fused_mixture_logp(x, log_w, means, obs_sd).sum(),
        mixture_logp_pt_elementwise(x, pt.exp(log_w), means, obs_sd).sum(),
    ):
        outs += [total, *pytensor.grad(total, [x, log_w, means, obs_sd])]
    fn = pytensor.function([x, log_w, means, obs_sd], outs)

    def both(*args):
        values = fn(*args)
        return values[:5], values[5:]

    return both


@pytest.mark.parametrize("seed, n_samples, n_features", [(1, 1, 2), (2, 700, 2), (3, 1100, 1)])
def test_fused_value_and_gradient_equal_the_elementwise_graph(
    fused_and_elementwise, seed, n_samples, n_features
):
    # 700 and 1100 rows span several of the kernels' 512-row blocks, with a partial last one
    points, weights, means, obs_sd = random_case(seed, n_samples, 3, n_features, True)
    fused, reference = fused_and_elementwise(points, np.log(weights), means, obs_sd)
    for got, want in zip(fused, reference, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


def test_fused_handles_zero_weights(fused_and_elementwise):
    points, _, means, obs_sd = random_case(4, 30, 3, 2, True)
    log_w = np.array([-np.inf, np.log(0.4), np.log(0.6)])  # one component off: log 0 = -inf
    fused, _ = fused_and_elementwise(points, log_w, means, obs_sd)
    np.testing.assert_allclose(
        fused[0], mixture_logp(points, np.exp(log_w), means, obs_sd).sum(), rtol=1e-12
    )
    assert all(np.all(np.isfinite(g)) for g in fused[1:])
    assert fused[2][0] == 0.0  # no responsibility, no gradient, and no NaN
    nothing, _ = fused_and_elementwise(points, np.full(3, -np.inf), means, obs_sd)
    assert nothing[0] == -np.inf
    assert all(np.all(g == 0.0) for g in nothing[1:])


def test_fused_sum_and_gradient_compile_to_one_pass():
    """The rewrites fire: the constant cotangent of N ones becomes one value, and log p and
    its gradient (what NUTS asks for) become one MixtureLogpAndGradParams node."""
    import pytensor
    import pytensor.tensor as pt

    from ppl_mixtures.kernels.density_op import (
        MixtureLogp,
        MixtureLogpAndGradParams,
        MixtureLogpGradParams,
    )
    from ppl_mixtures.model.density import mixture_logp_pt

    points, weights, means, obs_sd = random_case(8, 600, 2, 2, True)  # >= FUSED_MIN_ROWS
    w, mu = pt.vector("w"), pt.matrix("mu")
    total = mixture_logp_pt(pt.constant(points), w, mu, pt.constant(obs_sd)).sum()
    fn = pytensor.function([w, mu], [total, *pytensor.grad(total, [w, mu])])
    ops = [node.op for node in fn.maker.fgraph.toposort()]
    fused = [n for n in fn.maker.fgraph.toposort() if isinstance(n.op, MixtureLogpAndGradParams)]
    assert len(fused) == 1 and fused[0].inputs[4].type.shape == (1,)
    assert not any(isinstance(op, MixtureLogp | MixtureLogpGradParams) for op in ops)
    grad_only = pytensor.function([w, mu], pytensor.grad(total, [w, mu]))
    nodes = grad_only.maker.fgraph.toposort()
    params = [n for n in nodes if isinstance(n.op, MixtureLogpGradParams)]
    assert len(params) == 1 and params[0].inputs[4].type.shape == (1,)
    for got, want in zip(grad_only(weights, means), fn(weights, means)[1:], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-13)
    value, g_w, g_mu = fn(weights, means)
    np.testing.assert_allclose(
        value, mixture_logp(points, weights, means, obs_sd).sum(), rtol=1e-12
    )
    eps = 1e-6  # central differences on one mean coordinate and one weight
    for k, d in [(0, 0), (1, 1)]:
        step = np.zeros_like(means)
        step[k, d] = eps
        numeric = (
            mixture_logp(points, weights, means + step, obs_sd).sum()
            - mixture_logp(points, weights, means - step, obs_sd).sum()
        ) / (2 * eps)
        np.testing.assert_allclose(g_mu[k, d], numeric, rtol=1e-6)
    step = np.array([eps, 0.0])
    numeric = (
        mixture_logp(points, weights + step, means, obs_sd).sum()
        - mixture_logp(points, weights - step, means, obs_sd).sum()
    ) / (2 * eps)
    np.testing.assert_allclose(g_w[0], numeric, rtol=1e-6)


def test_per_observation_parameters_fall_back_to_the_elementwise_graph():
    import pytensor
    import pytensor.tensor as pt

    from ppl_mixtures.kernels.density_op import MixtureLogp
    from ppl_mixtures.model.density import mixture_logp_pt

    points, weights, means, obs_sd = random_case(9, 5, 2, 2, False)
    batched_means = means[None] + np.arange(5.0)[:, None, None]  # (N, K, D)
    out = mixture_logp_pt(
        pt.constant(points),
        pt.constant(weights[None]),
        pt.constant(batched_means),
        pt.constant(obs_sd[None]),
    )
    fn = pytensor.function([], out)
    assert not any(isinstance(n.op, MixtureLogp) for n in fn.maker.fgraph.toposort())
    want = [mixture_logp(points[i : i + 1], weights, batched_means[i], obs_sd)[0] for i in range(5)]
    np.testing.assert_allclose(fn(), want, rtol=1e-12)


def test_fused_propagates_nan(fused_and_elementwise):
    points, weights, means, obs_sd = random_case(10, 8, 2, 2, True)
    means[1, 0] = np.nan  # a sampler must see NaN, not a finite value that ignores it
    fused, _ = fused_and_elementwise(points, np.log(weights), means, obs_sd)
    assert np.isnan(fused[0])


def test_compiled_fused_density_pickles_by_reference():
    """PyMC sends compiled models to its sampling processes: the Ops must unpickle to the
    same module-level classes and the function to the same numbers."""
    import pickle

    import pytensor
    import pytensor.tensor as pt

    from ppl_mixtures.kernels import density_op
    from ppl_mixtures.model.density import mixture_logp_pt

    points, weights, means, obs_sd = random_case(11, 40, 2, 2, True)
    w, mu = pt.vector("w"), pt.matrix("mu")
    data = pytensor.shared(points, shape=points.shape)  # as build_marginal_model makes it
    total = mixture_logp_pt(data, w, mu, pt.constant(obs_sd)).sum()
    fn = pytensor.function([w, mu], [total, *pytensor.grad(total, [w, mu])])
    again = pickle.loads(pickle.dumps(fn))
    ops = {type(node.op) for node in again.maker.fgraph.toposort()}
    assert density_op.MixtureLogpAndGradParams in ops
    for got, want in zip(again(weights, means), fn(weights, means), strict=True):
        np.testing.assert_array_equal(got, want)
