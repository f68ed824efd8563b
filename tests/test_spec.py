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
    ],
)
def test_to_dict_round_trip_through_json(spec):
    data = json.loads(json.dumps(spec.to_dict()))
    assert set(data) == {f.name for f in dataclasses.fields(MixtureSpec)}
    again = MixtureSpec(**data)
    assert again == spec and hash(again) == hash(spec)


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
