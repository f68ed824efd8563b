"""The full-covariance marginal mixture density: numpy reference, fused Ops, plain graph.

Oracles: scipy.stats.multivariate_normal + logsumexp (numpy reference), the plain PyTensor
graph and its autodiff gradient (fused Ops), central finite differences (gradients), and
pm.Mixture of pm.MvNormal components (one case). Invariants: permuting components, the
ignored upper triangle, points far from every mean, serial == parallel kernels bit for bit.

Tolerances: the quantities compared are sums of O(N) terms of size O(10) computed in
float64 in different orders, so they agree to ~N * 1e-16 relative; rtol 1e-10 (with an
atol of 1e-10 times the largest entry, for entries that cancel to ~0) leaves a factor of
>= 1e3 of headroom at N <= 60 while a wrong term (an error of O(1e-2) or more) fails.
"""

import pickle

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from ppl_mixtures.model.density_full import full_log_responsibilities, full_mixture_logp

GRID = [(d, k) for d in range(1, 6) for k in range(1, 5)]  # D = 1..5, K = 1..4


def random_case(seed, n_samples, n_components, n_features):
    """Data, weights, means and lower Cholesky factors of random SPD precision matrices."""
    rng = np.random.default_rng(seed)
    points = rng.normal(scale=2.0, size=(n_samples, n_features))
    weights = rng.dirichlet(np.ones(n_components))
    means = rng.normal(scale=2.0, size=(n_components, n_features))
    a = rng.normal(size=(n_components, n_features, n_features))
    precision = a @ a.transpose(0, 2, 1) / n_features + 0.5 * np.eye(n_features)
    return points, weights, means, np.linalg.cholesky(precision)


def scipy_full_mixture_logp(points, weights, means, prec_chol):
    """logsumexp_k [log w_k + log MVN(x | mu_k, (L_k L_k^T)^-1)], the oracle; (N,)."""
    comps = [
        multivariate_normal(means[k], np.linalg.inv(prec_chol[k] @ prec_chol[k].T)).logpdf(points)
        for k in range(len(weights))
    ]
    return logsumexp(np.log(weights) + np.stack(comps, axis=-1).reshape(len(points), -1), axis=-1)


def assert_close(actual, desired, rtol=1e-10):
    desired = np.asarray(desired)
    scale = max(1.0, float(np.max(np.abs(desired)))) if desired.size else 1.0
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("n_features, n_components", GRID)
def test_numpy_reference_equals_scipy(n_features, n_components):
    case = random_case(10 * n_features + n_components, 30, n_components, n_features)
    assert_close(full_mixture_logp(*case), scipy_full_mixture_logp(*case))


def test_responsibilities_are_normalized_posteriors_of_the_components():
    points, weights, means, chol = random_case(3, 15, 3, 2)
    log_resp = full_log_responsibilities(points, weights, means, chol)
    np.testing.assert_allclose(np.exp(log_resp).sum(-1), 1.0, rtol=1e-13)
    single = [full_mixture_logp(points, [1.0], means[k : k + 1], chol[k : k + 1]) for k in range(3)]
    expected = (
        np.log(weights)
        + np.stack(single, -1)
        - full_mixture_logp(points, weights, means, chol)[:, None]
    )
    assert_close(log_resp, expected, rtol=1e-12)


def test_numpy_reference_batches_draws():
    points, weights, means, chol = random_case(1, 12, 3, 2)
    stacked = full_mixture_logp(
        points,
        np.stack([weights, weights[::-1]]),
        np.stack([means, means[::-1]]),
        np.stack([chol, chol[::-1]]),
    )
    assert stacked.shape == (2, 12)
    assert_close(stacked[1], stacked[0], rtol=1e-12)


@pytest.mark.parametrize(
    "argument, shape, match",
    [("means", (3, 3), "means: expected shape"), ("prec_chol", (3, 2, 3), "prec_chol: expected")],
)
def test_numpy_reference_names_the_bad_argument(argument, shape, match):
    points, weights, means, chol = random_case(2, 5, 3, 2)
    args = {"weights": weights, "means": means, "prec_chol": chol}
    args[argument] = np.ones(shape)
    with pytest.raises(ValueError, match=match):
        full_mixture_logp(points, **args)


# --------------------------------------------------------------------------- PyTensor
@pytest.fixture(scope="module")
def compiled():
    """log p, and the gradient of sum_n g_n log p(x_n) w.r.t. (x, log w, means, L), for the
    fused graph and the plain graph, called the way pm.CustomDist calls them (batch dim 1).
    The inputs have no static shapes, so one compiled function serves every (N, D, K)."""
    import pytensor
    import pytensor.tensor as pt

    from ppl_mixtures.model.density_full import (
        full_mixture_logp_pt,
        full_mixture_logp_pt_elementwise,
    )

    x, g = pt.matrix("x"), pt.vector("g")
    log_w, means, chol = pt.vector("log_w"), pt.matrix("means"), pt.tensor3("chol")
    functions = {}
    for name, density in (
        ("fused", full_mixture_logp_pt),
        ("plain", full_mixture_logp_pt_elementwise),
    ):
        batch = (None,) if name == "fused" else ()  # the plain graph keeps batch dims
        logp = density(x, log_w[batch], means[batch], chol[batch])
        grads = pytensor.grad(pt.sum(g * logp), [x, log_w, means, chol])
        functions[name] = pytensor.function([x, log_w, means, chol, g], [logp, *grads])
    return functions


def _evaluate(function, points, weights, means, chol, cotangent):
    return function(points, np.log(weights), means, chol, cotangent)


@pytest.mark.parametrize("n_features, n_components", GRID)
def test_fused_value_and_gradients_equal_plain_graph_and_scipy(compiled, n_features, n_components):
    case = random_case(100 + 10 * n_features + n_components, 40, n_components, n_features)
    cotangent = np.random.default_rng(n_features).normal(size=40)
    fused = _evaluate(compiled["fused"], *case, cotangent)
    plain = _evaluate(compiled["plain"], *case, cotangent)
    assert_close(fused[0], scipy_full_mixture_logp(*case))
    for ours, reference in zip(fused, plain, strict=True):
        assert_close(ours, reference)


@pytest.mark.parametrize("n_features, n_components", [(1, 1), (2, 2), (3, 4), (5, 3)])
def test_fused_gradients_equal_finite_differences(compiled, n_features, n_components):
    """Central differences with step h: truncation error h^2 |f'''| / 6 ~ 1e-12 * O(10) and
    rounding error ~ 1e-16 |f| / h ~ 1e-16 * 1e3 / 1e-6 = 1e-7 (|f| = |sum g log p| < 1e3
    here), so 1e-5 relative to max(1, |gradient|) bounds the error with a margin of 100;
    a wrong gradient term is off by O(1)."""
    points, weights, means, chol = random_case(
        7 * n_features + n_components, 25, n_components, n_features
    )
    cotangent = np.random.default_rng(3).normal(size=25)
    log_w = np.log(weights)

    def objective(x, lw, mu, lc):
        return float(cotangent @ compiled["fused"](x, lw, mu, lc, cotangent)[0])

    args = [points, log_w, means, chol]
    gradients = compiled["fused"](*args, cotangent)[1:]
    h = 1e-6
    for position, gradient in enumerate(gradients):
        numeric = np.zeros_like(args[position])
        for index in np.ndindex(args[position].shape):
            up, down = ([a.copy() for a in args] for _ in range(2))
            up[position][index] += h
            down[position][index] -= h
            numeric[index] = (objective(*up) - objective(*down)) / (2 * h)
        if position == 3:  # only the lower triangle of L is read: zero gradient above it
            numeric = np.tril(numeric)
        np.testing.assert_allclose(
            gradient, numeric, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(numeric).max())
        )


def test_logp_and_gradient_compile_to_one_kernel_node_and_pickle():
    """What NUTS compiles: log p and the gradient of its sum, data in a shared variable of
    unknown length. The rewrite must leave one fused node, and the function must survive
    pickling (PyMC sends compiled models to its sampling processes)."""
    import pytensor
    import pytensor.tensor as pt

    from ppl_mixtures.kernels.density_full_op import (
        FullMixtureLogp,
        FullMixtureLogpAndGradParams,
        FullMixtureLogpGradParams,
    )
    from ppl_mixtures.model.density_full import full_mixture_logp_pt

    points, weights, means, chol = random_case(5, 300, 3, 3)
    data = pytensor.shared(points)
    log_w, mu, lc = pt.vector("log_w"), pt.matrix("means"), pt.tensor3("chol")
    logp = full_mixture_logp_pt(data, log_w[None], mu[None], lc[None])
    function = pytensor.function(
        [log_w, mu, lc], [logp, *pytensor.grad(logp.sum(), [log_w, mu, lc])]
    )
    ops = [type(node.op) for node in function.maker.fgraph.apply_nodes]
    assert ops.count(FullMixtureLogpAndGradParams) == 1
    assert FullMixtureLogp not in ops and FullMixtureLogpGradParams not in ops
    results = function(np.log(weights), means, chol)
    assert_close(results[0], scipy_full_mixture_logp(points, weights, means, chol))
    restored = pickle.loads(pickle.dumps(function))
    for ours, reference in zip(restored(np.log(weights), means, chol), results, strict=True):
        np.testing.assert_array_equal(ours, reference)


def test_finite_far_from_every_mean(compiled):
    """Points 1e4 standard deviations away: each exp underflows, the max-subtracted
    log-sum-exp does not; value and gradients finite and equal to the numpy reference."""
    points, weights, means, chol = random_case(11, 6, 3, 2)
    far = points + np.array([1e4, -3e4])
    results = _evaluate(compiled["fused"], far, weights, means, chol, np.ones(6))
    assert all(np.isfinite(r).all() for r in results)
    assert results[0].max() < -1e7  # really far: log p ~ -|L^T d|^2 / 2
    assert_close(results[0], full_mixture_logp(far, weights, means, chol))
    plain = _evaluate(compiled["plain"], far, weights, means, chol, np.ones(6))
    for ours, reference in zip(results[1:], plain[1:], strict=True):
        assert_close(ours, reference)


def test_invariant_to_permuting_components(compiled):
    points, weights, means, chol = random_case(12, 30, 4, 3)
    order = np.array([2, 0, 3, 1])
    cotangent = np.ones(30)
    base = _evaluate(compiled["fused"], points, weights, means, chol, cotangent)
    permuted = _evaluate(
        compiled["fused"], points, weights[order], means[order], chol[order], cotangent
    )
    assert_close(permuted[0], base[0], rtol=1e-13)
    assert_close(permuted[1], base[1], rtol=1e-13)
    for ours, reference in zip(permuted[2:], base[2:], strict=True):
        assert_close(ours, reference[order], rtol=1e-13)


def test_upper_triangle_is_ignored(compiled):
    points, weights, means, chol = random_case(13, 20, 2, 3)
    cluttered = chol + np.triu(np.full((3, 3), 5.0), k=1)
    base = _evaluate(compiled["fused"], points, weights, means, chol, np.ones(20))
    other = _evaluate(compiled["fused"], points, weights, means, cluttered, np.ones(20))
    for ours, reference in zip(other, base, strict=True):
        np.testing.assert_array_equal(ours, reference)
    assert not np.triu(other[4], k=1).any()


def test_serial_and_parallel_kernels_agree_bit_for_bit():
    """The reduction order is fixed by chunk, not by thread: both paths give the same bits."""
    from ppl_mixtures.kernels import density_full as kernels

    points, weights, means, chol = random_case(14, 3 * kernels.CHUNK + 17, 3, 2)
    cotangent = np.ones(1)
    serial = kernels.logp_and_grad_parameters_kernel(
        points, np.log(weights), means, chol, cotangent, False
    )
    parallel = kernels.logp_and_grad_parameters_kernel(
        points, np.log(weights), means, chol, cotangent, True
    )
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)
    assert_close(serial[0], full_mixture_logp(points, weights, means, chol))


def test_fused_op_names_a_wrong_input():
    import pytensor.tensor as pt

    from ppl_mixtures.model.density_full import fused_full_mixture_logp

    with pytest.raises(ValueError, match=r"expected a 3-D input.*full_mixture_logp_pt"):
        fused_full_mixture_logp(pt.matrix(), pt.vector(), pt.matrix(), pt.matrix())


def test_equals_pm_mixture_of_mvnormal_value_and_gradient():
    """The peer: pm.Mixture of pm.MvNormal(tau = L L^T) components, gradient w.r.t. the
    means and the Cholesky factors through PyMC's own graph."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    from ppl_mixtures.model.density_full import full_mixture_logp_pt

    points, weights, means, chol = random_case(15, 40, 3, 3)
    w, mu, lc = pt.vector("w"), pt.matrix("means"), pt.tensor3("chol")
    tril = pt.tril(lc)
    components = [pm.MvNormal.dist(mu=mu[k], tau=tril[k] @ tril[k].T) for k in range(3)]
    reference = pm.logp(pm.Mixture.dist(w=w, comp_dists=components), points)
    ours = full_mixture_logp_pt(points, pt.log(w)[None], mu[None], lc[None])
    outputs = []
    for logp in (ours, reference):
        outputs.append(
            pytensor.function([w, mu, lc], [logp, *pytensor.grad(logp.sum(), [w, mu, lc])])
        )
    ours_values, reference_values = (f(weights, means, chol) for f in outputs)
    for a, b in zip(ours_values, reference_values, strict=True):
        assert_close(a, b)


def test_one_shared_factor_broadcasts_to_every_component(compiled):
    """Tied covariance passed as a single (1, D, D) factor: the same as K copies of it."""
    import pytensor
    import pytensor.tensor as pt

    from ppl_mixtures.model.density_full import full_mixture_logp_pt

    points, weights, means, chol = random_case(16, 20, 3, 2)
    log_w, mu, shared_chol = pt.vector(), pt.matrix(), pt.tensor("L", shape=(1, None, None))
    logp = full_mixture_logp_pt(points, log_w[None], mu[None], shared_chol[None])
    tied = pytensor.function(
        [log_w, mu, shared_chol], [logp, pytensor.grad(logp.sum(), shared_chol)]
    )
    value, gradient = tied(np.log(weights), means, chol[:1])
    repeated = _evaluate(
        compiled["fused"], points, weights, means, np.repeat(chol[:1], 3, 0), np.ones(20)
    )
    assert_close(value, repeated[0])
    assert_close(gradient[0], repeated[4].sum(0))  # the shared factor's gradient: the sum


def test_kernels_refuse_inputs_whose_shapes_disagree():
    """The kernels index without bounds checks, so a mismatch must raise, not read past."""
    import pytensor
    import pytensor.tensor as pt

    from ppl_mixtures.model.density_full import fused_full_mixture_logp

    points, weights, means, chol = random_case(17, 10, 3, 2)
    log_w, mu, lc = pt.vector(), pt.matrix(), pt.tensor3()
    function = pytensor.function([log_w, mu, lc], fused_full_mixture_logp(points, log_w, mu, lc))
    with pytest.raises(ValueError, match="prec_chol must be"):
        function(np.log(weights), means, chol[:2])
