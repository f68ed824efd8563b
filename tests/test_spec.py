"""MixtureSpec: normalization, derived arrays, round trips.

Bad fields and their messages: tests/test_input_checks.py (one table).
"""

import dataclasses
import json

import numpy as np
import pytest

from ppl_mixtures import MixtureSpec
from ppl_mixtures import validation as v


def test_defaults_and_normalization():
    spec = MixtureSpec(
        n_components=np.int64(3),
        mean_prior_mean=[0, 1],
        mean_prior_sd=np.array([1, 2]),
        dirichlet_alpha=[0.5, 1, 2],
        obs_sd=2,
        ordered=np.bool_(True),
    )
    assert type(spec.n_components) is int and spec.n_components == 3
    assert spec.mean_prior_mean == (0.0, 1.0) and all(
        type(x) is float for x in spec.mean_prior_mean
    )
    assert spec.mean_prior_sd == (1.0, 2.0)
    assert spec.dirichlet_alpha == (0.5, 1.0, 2.0)
    assert spec.obs_sd == 2.0 and type(spec.obs_sd) is float
    assert spec.ordered is True
    default = MixtureSpec(n_components=2)
    assert (default.weights, default.weights_transform, default.obs_sd) == (
        "dirichlet",
        "stick_breaking",
        1.0,
    )
    assert default.learned_obs_sd is False and default.fixed_weights is False


def test_derived_arrays():
    spec = MixtureSpec(
        n_components=3,
        mean_prior_mean=[1.0, -1.0],
        mean_prior_sd=2.0,
        dirichlet_alpha=[0.1, 0.2, 0.3],
        obs_sd=[0.5, 1.5],
    )
    np.testing.assert_array_equal(spec.alpha(), [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(spec.prior_mean(2), [1.0, -1.0])
    np.testing.assert_array_equal(spec.prior_sd(2), [2.0, 2.0])
    np.testing.assert_array_equal(spec.known_obs_sd(2), [[0.5, 1.5]] * 3)
    np.testing.assert_allclose(spec.fixed_weight_values(), [1 / 3] * 3)
    np.testing.assert_array_equal(
        MixtureSpec(n_components=4, dirichlet_alpha=0.7).alpha(), [0.7] * 4
    )
    # returned arrays are fresh copies: editing one does not change the spec
    spec.alpha()[0] = 99.0
    spec.known_obs_sd(2)[0, 0] = 99.0
    assert spec.alpha()[0] == 0.1 and spec.known_obs_sd(2)[0, 0] == 0.5


def test_fixed_weights_and_learned_obs_sd():
    assert MixtureSpec(n_components=3, weights="fixed").fixed_weights
    assert MixtureSpec(n_components=1).fixed_weights  # one component: the weight is 1
    learned = MixtureSpec(n_components=2, obs_sd="learned")
    assert learned.learned_obs_sd
    learned.check_features(5)  # no per-feature obs_sd to check


@pytest.mark.parametrize(
    "spec",
    [
        MixtureSpec(n_components=2),
        MixtureSpec(
            n_components=3,
            mean_prior_mean=[0.0, 1.0],
            mean_prior_sd=[1.0, 3.0],
            dirichlet_alpha=[0.1, 0.2, 0.3],
            obs_sd=[0.5, 2.0],
            ordered=True,
            weights_transform="simplex",
        ),
        MixtureSpec(
            n_components=2,
            weights="fixed",
            obs_sd="learned",
            precision_prior_shape=3.0,
            precision_prior_rate=0.5,
        ),
        MixtureSpec(n_components=2, covariance="full", obs_cov=[[1.0, 0.3], [0.3, 2.0]]),
        MixtureSpec(
            n_components=2, covariance="full", obs_cov=np.stack([np.eye(2), 2 * np.eye(2)])
        ),
        MixtureSpec(
            n_components=3,
            covariance="full",
            obs_cov="learned",
            precision_prior_dof=4.0,
            precision_prior_scale=[[0.5, 0.1], [0.1, 0.5]],
        ),
        MixtureSpec(n_components=2, covariance="tied", precision_prior_scale=0.3),
        MixtureSpec(n_components=2, covariance="spherical"),
        MixtureSpec(n_components=4, weights="dp", dp_alpha=0.5),
        MixtureSpec(n_components=4, weights="dp", dp_alpha_prior=(2.0, 0.5), covariance="tied"),
    ],
)
def test_to_dict_round_trip_through_json(spec):
    data = json.loads(json.dumps(spec.to_dict()))
    # the covariance fields are written only when they differ from the diagonal default,
    # the DP fields only for weights="dp"
    covariance_fields = {"covariance", "obs_cov", "precision_prior_dof", "precision_prior_scale"}
    written = {f.name for f in dataclasses.fields(MixtureSpec)}
    if spec.covariance == "diag":
        written -= covariance_fields
    if spec.weights != "dp":
        written -= {"dp_alpha", "dp_alpha_prior"}
    assert set(data) == written - {k for k in covariance_fields if getattr(spec, k) is None}
    again = MixtureSpec(**data)
    assert again == spec and hash(again) == hash(spec)


def test_a_diagonal_spec_reads_as_before_the_covariance_types():
    """to_dict (and so the spec fingerprint and the reference-cache key) of a diagonal spec
    is what it was before covariance types existed; obs_sd=None means 1.0 there."""
    spec = MixtureSpec(n_components=2)
    assert spec.to_dict() == {
        "n_components": 2,
        "mean_prior_mean": 0.0,
        "mean_prior_sd": 1.0,
        "weights": "dirichlet",
        "dirichlet_alpha": 1.0,
        "obs_sd": 1.0,
        "precision_prior_shape": 2.0,
        "precision_prior_rate": 2.0,
        "ordered": False,
        "weights_transform": "stick_breaking",
    }
    assert MixtureSpec(n_components=2, obs_sd=None) == spec


@pytest.mark.parametrize(("shape", "rate"), [(2.0, 2.0), (0.7, 3.0), (5.0, 0.4)])
def test_default_wishart_reduces_to_the_gamma_prior_when_d_is_1(shape, rate):
    """With D = 1, Wishart(dof, scale) is Gamma(dof / 2, rate = 1 / (2 scale)): the default
    dof = 2 shape + D - 1 and scale = I / (2 rate) give back Gamma(shape, rate) exactly
    (scipy's densities as the oracle, on a grid of precisions)."""
    from scipy import stats

    spec = MixtureSpec(
        n_components=2,
        covariance="full",
        obs_cov="learned",
        precision_prior_shape=shape,
        precision_prior_rate=rate,
    )
    dof, scale = spec.wishart_dof(1), spec.wishart_scale(1)
    taus = np.linspace(0.05, 6.0, 25)
    wishart = stats.wishart(df=dof, scale=scale[0, 0]).logpdf(taus)
    gamma = stats.gamma(a=shape, scale=1.0 / rate).logpdf(taus)
    np.testing.assert_allclose(wishart, gamma, rtol=1e-12)


def test_default_wishart_keeps_the_gamma_prior_mean_in_any_dimension():
    spec = MixtureSpec(
        n_components=2, covariance="tied", precision_prior_shape=3.0, precision_prior_rate=1.5
    )
    for d in (1, 2, 5):
        mean = spec.wishart_dof(d) * spec.wishart_scale(d)  # E[Lambda] of a Wishart
        np.testing.assert_allclose(mean, (2 * 3.0 + d - 1) / (2 * 1.5) * np.eye(d))


def test_known_full_covariance_broadcasts_over_components_and_is_read_only():
    cov = [[1.0, 0.3], [0.3, 2.0]]
    spec = MixtureSpec(n_components=3, covariance="full", obs_cov=cov)
    np.testing.assert_array_equal(spec.known_obs_cov(2), np.broadcast_to(cov, (3, 2, 2)))
    assert spec.learned_covariance is False and spec.learned_obs_sd is False
    np.testing.assert_allclose(spec.typical_obs_sd(2), np.sqrt([1.0, 2.0]))
    assert MixtureSpec(n_components=2, covariance="spherical").learned_covariance


def test_frozen_and_hashable():
    spec = MixtureSpec(n_components=2, mean_prior_sd=[1.0, 2.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.n_components = 3
    assert {spec: 1}[MixtureSpec(n_components=2, mean_prior_sd=(1, 2))] == 1
    assert dataclasses.replace(spec, n_components=3).n_components == 3
    # replace re-validates (the message: tests/test_input_checks.py)
    with pytest.raises(ValueError):
        dataclasses.replace(spec, n_components=0)


def test_describe_mentions_every_choice():
    text = MixtureSpec(
        n_components=2, obs_sd="learned", ordered=True, dirichlet_alpha=0.1
    ).describe()
    assert "K = 2" in text and "Dirichlet(0.1)" in text and "Gamma(shape=2.0, rate=2.0)" in text
    assert "ordered by means[:, 0]" in text
    assert "weights fixed at 1/3" in MixtureSpec(n_components=3, weights="fixed").describe()
    assert "obs_sd = 0.5 (known)" in MixtureSpec(n_components=3, obs_sd=0.5).describe()


# --------------------------------------------------------------- prior bounds (issue 11.5)
def test_bounds_are_inclusive_and_documented():
    low, high = v.PRIOR_SCALE_RANGE
    spec = MixtureSpec(
        n_components=2,
        mean_prior_sd=[low, high],
        obs_sd=high,
        dirichlet_alpha=low,
        mean_prior_mean=-v.PRIOR_LOCATION_MAX,
    )
    assert spec.mean_prior_sd == (low, high) and spec.mean_prior_mean == -1e6
    MixtureSpec(
        n_components=2, obs_sd="learned", precision_prior_shape=low, precision_prior_rate=high
    )
    assert "[1e-6, 1e6]" in MixtureSpec.__doc__


def test_numpy_scalars_are_numbers():
    spec = MixtureSpec(
        n_components=np.int64(2),
        mean_prior_mean=np.float32(0.5),
        mean_prior_sd=np.float64(2.0),
        dirichlet_alpha=np.int32(1),
        obs_sd=np.float64(1.5),
        precision_prior_shape=np.int64(3),
        precision_prior_rate=np.float64(2.0),
        ordered=np.bool_(True),
    )
    assert spec == MixtureSpec(
        n_components=2,
        mean_prior_mean=0.5,
        mean_prior_sd=2.0,
        dirichlet_alpha=1.0,
        obs_sd=1.5,
        precision_prior_shape=3.0,
        precision_prior_rate=2.0,
        ordered=True,
    )
    assert type(spec.n_components) is int and type(spec.mean_prior_sd) is float
