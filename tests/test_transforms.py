"""Stick-breaking transform: numpy mirrors, the PyMC transform, and a prior-only NUTS check."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ppl_mixtures.model.transforms import (
    stick_breaking_backward,
    stick_breaking_forward,
    stick_breaking_log_jac_det,
)

batch_shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)


@given(batch=batch_shapes, n_components=st.integers(2, 6), seed=st.integers(0, 2**16))
def test_numpy_round_trip_from_simplex(batch, n_components, seed):
    weights = np.random.default_rng(seed).dirichlet(np.full(n_components, 0.7), size=batch)
    y = stick_breaking_forward(weights)
    assert y.shape == (*batch, n_components - 1)
    np.testing.assert_allclose(stick_breaking_backward(y), weights, rtol=1e-9, atol=1e-15)


@given(
    y=st.integers(1, 5).flatmap(
        lambda k: arrays(
            np.float64,
            st.tuples(st.integers(1, 3), st.just(k)),
            elements=st.floats(-20, 20, allow_nan=False),
        )
    )
)
def test_numpy_round_trip_from_reals(y):
    weights = stick_breaking_backward(y)
    assert weights.shape == (*y.shape[:-1], y.shape[-1] + 1)
    assert np.all(weights >= 0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(stick_breaking_forward(weights), y, atol=1e-7)


def test_zero_is_the_centre_of_the_simplex():
    np.testing.assert_allclose(stick_breaking_backward(np.zeros(4)), np.full(5, 0.2))
    np.testing.assert_allclose(stick_breaking_forward(np.full(5, 0.2)), np.zeros(4), atol=1e-15)


def _numerical_log_jac_det(y, eps=1e-6):
    """log|det| of the central-difference Jacobian of backward's first K-1 outputs."""
    n = y.shape[0]
    jac = np.empty((n, n))
    for j in range(n):
        step = np.zeros(n)
        step[j] = eps
        jac[:, j] = (
            stick_breaking_backward(y + step)[:-1] - stick_breaking_backward(y - step)[:-1]
        ) / (2 * eps)
    return np.linalg.slogdet(jac)[1]


@pytest.mark.parametrize(
    "y", [np.array([0.3]), np.array([0.3, -1.2, 2.0]), np.array([4.0, -3.0, 0.5, -0.1, 1.5])]
)
def test_log_jac_det_matches_numerical_jacobian(y):
    np.testing.assert_allclose(stick_breaking_log_jac_det(y), _numerical_log_jac_det(y), rtol=1e-6)


def test_extreme_values_stay_finite():
    y = np.array([[-700.0, 700.0, 0.0], [40.0, -40.0, 40.0]])
    weights = stick_breaking_backward(y)
    assert np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights.sum(-1), 1.0)
    assert np.all(np.isfinite(stick_breaking_log_jac_det(y)))
    assert weights[0, 0] > 0  # exp(-700) is representable; computed in log space


@pytest.mark.parametrize("bad, name", [(np.array([1.0]), "weights"), (np.float64(0.5), "weights")])
def test_bad_shapes_raise(bad, name):
    with pytest.raises(ValueError, match=f"{name}: expected an array whose last axis has >= 2"):
        stick_breaking_forward(bad)
    with pytest.raises(ValueError, match="y: expected an array whose last axis has >= 1"):
        stick_breaking_backward(np.zeros((2, 0)))


# --------------------------------------------------------------------------- PyTensor
@pytest.fixture(scope="module")
def pt_functions():
    import pytensor
    import pytensor.tensor as pt

    from ppl_mixtures.model.transforms import StickBreaking

    sb = StickBreaking()
    y = pt.matrix("y")
    w = pt.matrix("w")
    return pytensor.function([y, w], [sb.backward(y), sb.forward(w), sb.log_jac_det(y)])


def test_pytensor_transform_equals_numpy(pt_functions):
    rng = np.random.default_rng(3)
    y = rng.normal(scale=3.0, size=(5, 3))
    w = rng.dirichlet(np.ones(4), size=5)
    backward, forward, log_jac_det = pt_functions(y, w)
    np.testing.assert_allclose(backward, stick_breaking_backward(y), rtol=1e-12)
    np.testing.assert_allclose(forward, stick_breaking_forward(w), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(log_jac_det, stick_breaking_log_jac_det(y), rtol=1e-12)
    assert log_jac_det.shape == (5,)  # reduces the last axis (ndim_supp = 1)


def test_transform_identity_and_pickle():
    import pickle

    from ppl_mixtures.model.transforms import StickBreaking

    sb = StickBreaking()
    assert sb.name == "stickbreaking" and sb.ndim_supp == 1
    assert pickle.loads(pickle.dumps(sb)) == sb


def test_prior_only_nuts_recovers_dirichlet_moments():
    import arviz as az
    import pymc as pm

    from ppl_mixtures.model.transforms import StickBreaking

    alpha = np.array([0.5, 2.0, 4.0])
    with pm.Model() as model:
        pm.Dirichlet("weights", a=alpha, default_transform=StickBreaking())
        idata = pm.sample(
            draws=1000,
            tune=500,
            chains=2,
            cores=1,
            random_seed=11,
            progressbar=False,
            compute_convergence_checks=False,
        )
    assert [v.name for v in model.value_vars] == ["weights_stickbreaking__"]
    draws = idata["posterior"]["weights"]
    mean = alpha / alpha.sum()
    var = mean * (1 - mean) / (alpha.sum() + 1)
    mcse = az.mcse(draws).values
    np.testing.assert_array_less(np.abs(draws.mean(("chain", "draw")).values - mean), 4 * mcse)
    # the variance: MCSE of the second central moment, from the squared deviations
    sq_dev = (draws - mean) ** 2
    mcse_var = az.mcse(sq_dev).values
    np.testing.assert_array_less(np.abs(sq_dev.mean(("chain", "draw")).values - var), 4 * mcse_var)
    assert int(idata["sample_stats"]["diverging"].sum()) == 0
