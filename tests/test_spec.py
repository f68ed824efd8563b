"""MixtureSpec: normalization, derived arrays, and a pinned message for every bad field."""

import dataclasses
import json

import numpy as np
import pytest

from ppl_mixtures import MixtureSpec
from ppl_mixtures import validation as v


def test_defaults_and_normalization():
    spec = MixtureSpec(n_components=np.int64(3), mean_prior_mean=[0, 1], mean_prior_sd=np.array([1, 2]),
                       dirichlet_alpha=[0.5, 1, 2], obs_sd=2, ordered=np.bool_(True))
    assert type(spec.n_components) is int and spec.n_components == 3
    assert spec.mean_prior_mean == (0.0, 1.0) and all(type(x) is float for x in spec.mean_prior_mean)
    assert spec.mean_prior_sd == (1.0, 2.0)
    assert spec.dirichlet_alpha == (0.5, 1.0, 2.0)
    assert spec.obs_sd == 2.0 and type(spec.obs_sd) is float
    assert spec.ordered is True
    default = MixtureSpec(n_components=2)
    assert (default.weights, default.weights_transform, default.obs_sd) == ("dirichlet",
                                                                           "stick_breaking", 1.0)
    assert default.learned_obs_sd is False and default.fixed_weights is False


def test_derived_arrays():
    spec = MixtureSpec(n_components=3, mean_prior_mean=[1.0, -1.0], mean_prior_sd=2.0,
                       dirichlet_alpha=[0.1, 0.2, 0.3], obs_sd=[0.5, 1.5])
    np.testing.assert_array_equal(spec.alpha(), [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(spec.prior_mean(2), [1.0, -1.0])
    np.testing.assert_array_equal(spec.prior_sd(2), [2.0, 2.0])
    np.testing.assert_array_equal(spec.known_obs_sd(2), [[0.5, 1.5]] * 3)
    np.testing.assert_allclose(spec.fixed_weight_values(), [1 / 3] * 3)
    np.testing.assert_array_equal(MixtureSpec(n_components=4, dirichlet_alpha=0.7).alpha(), [0.7] * 4)
    # returned arrays are fresh copies: editing one does not change the spec
    spec.alpha()[0] = 99.0
    spec.known_obs_sd(2)[0, 0] = 99.0
    assert spec.alpha()[0] == 0.1 and spec.known_obs_sd(2)[0, 0] == 0.5


def test_fixed_weights_and_learned_obs_sd():
    assert MixtureSpec(n_components=3, weights="fixed").fixed_weights
    assert MixtureSpec(n_components=1).fixed_weights  # one component: the weight is 1
    learned = MixtureSpec(n_components=2, obs_sd="learned")
    assert learned.learned_obs_sd
    with pytest.raises(ValueError, match=r"obs_sd: expected a known value, got 'learned'\. Read "
                                         r"the learned sd from the fit's posterior"):
        learned.known_obs_sd(2)
    learned.check_features(5)  # no per-feature obs_sd to check


BAD_SPECS = [
    ({"n_components": 0}, ValueError,
     r"^n_components: expected an integer >= 1, got 0\. A mixture needs at least one component, "
     r"e\.g\. n_components=2\.$"),
    ({"n_components": -2}, ValueError, r"n_components: expected an integer >= 1, got -2"),
    ({"n_components": 2.0}, TypeError, r"^n_components: expected an integer, got 2\.0\."),
    ({"n_components": True}, TypeError, r"^n_components: expected an integer, got True\."),
    ({"n_components": "3"}, TypeError, r"^n_components: expected an integer, got '3'\."),
    ({"mean_prior_sd": -1.0}, ValueError,
     r"^mean_prior_sd: expected values > 0, got -1\.0\. The prior sd of the means must be > 0, "
     r"e\.g\. mean_prior_sd=1\.0\.$"),
    ({"mean_prior_sd": 0}, ValueError, r"^mean_prior_sd: expected values > 0, got 0\.0\."),
    ({"mean_prior_sd": float("nan")}, ValueError, r"^mean_prior_sd: expected finite values, got nan"),
    ({"mean_prior_sd": [1.0, -1.0]}, ValueError, r"mean_prior_sd: expected values > 0, got \[1\.0, -1\.0\]"),
    ({"mean_prior_sd": "1"}, TypeError, r"^mean_prior_sd: expected a number or a 1-D sequence"),
    ({"mean_prior_mean": [np.inf]}, ValueError, r"^mean_prior_mean: expected finite values, got \[inf\]"),
    ({"mean_prior_mean": []}, ValueError, r"^mean_prior_mean: expected a scalar or a non-empty 1-D "
                                          r"sequence, got shape \(0,\)"),
    ({"mean_prior_mean": [[0.0]]}, ValueError, r"^mean_prior_mean: expected a scalar or a non-empty"),
    ({"mean_prior_mean": None}, TypeError, r"^mean_prior_mean: expected a number or a 1-D sequence "
                                           r"of numbers, got None\."),
    ({"dirichlet_alpha": [1.0, 1.0, 1.0]}, ValueError,
     r"^dirichlet_alpha: expected a scalar or 2 values \(one per component\), got 3 values\. Pass "
     r"one concentration per component or a single number\.$"),
    ({"dirichlet_alpha": 0.0}, ValueError, r"^dirichlet_alpha: expected values > 0, got 0\.0\. "
                                           r"Dirichlet concentrations must be > 0"),
    ({"dirichlet_alpha": [True, True]}, TypeError, r"^dirichlet_alpha: expected a number or a 1-D"),
    ({"obs_sd": -1.0}, ValueError, r"^obs_sd: expected values > 0, got -1\.0\. Observation sds "
                                   r"must be > 0, e\.g\. obs_sd=1\.0, or obs_sd='learned'\.$"),
    ({"obs_sd": "learnt"}, ValueError,
     r"^obs_sd: expected a positive number, one per feature, or 'learned', got 'learnt'\. Use "
     r"e\.g\. obs_sd=1\.0 or obs_sd='learned'\.$"),
    ({"obs_sd": None}, TypeError, r"^obs_sd: expected a number or a 1-D sequence of numbers, got None"),
    ({"weights": "uniform"}, ValueError,
     r"^weights: expected one of 'dirichlet', 'fixed', got 'uniform'\. Pick one of those\.$"),
    ({"weights": None}, ValueError, r"^weights: expected one of 'dirichlet', 'fixed', got None"),
    ({"ordered": 1}, TypeError, r"^ordered: expected True or False, got 1\. Pass ordered=True to "
                                r"order components by feature 0\.$"),
    ({"ordered": "yes"}, TypeError, r"^ordered: expected True or False, got 'yes'"),
    ({"weights_transform": "softmax"}, ValueError,
     r"^weights_transform: expected one of 'stick_breaking', 'simplex', got 'softmax'\. Pick one "
     r"of those\.$"),
    ({"precision_prior_shape": 0.0}, ValueError,
     r"^precision_prior_shape: expected a finite number > 0, got 0\.0\."),
    ({"precision_prior_rate": float("inf")}, ValueError,
     r"^precision_prior_rate: expected a finite number > 0, got inf"),
    ({"precision_prior_rate": True}, TypeError,
     r"^precision_prior_rate: expected a positive number, got True"),
]


@pytest.mark.parametrize("changes, err, match", BAD_SPECS,
                         ids=[f"{next(iter(c))}={next(iter(c.values()))!r}" for c, *_ in BAD_SPECS])
def test_bad_fields_raise_with_pinned_message(changes, err, match):
    with pytest.raises(err, match=match):
        MixtureSpec(**({"n_components": 2} | changes))


@pytest.mark.parametrize("field, value", [("mean_prior_mean", [0.0, 1.0]),
                                          ("mean_prior_sd", [1.0, 2.0]), ("obs_sd", [1.0, 2.0])])
def test_per_feature_length_mismatch(field, value):
    spec = MixtureSpec(n_components=2, **{field: value})
    spec.check_features(2)
    with pytest.raises(ValueError, match=rf"^{field}: expected a scalar or 3 values \(one per feature "
                                         rf"of the data\), got 2 values\. Match the number of data "
                                         rf"columns or pass a single number\.$"):
        spec.check_features(3)


@pytest.mark.parametrize("spec", [
    MixtureSpec(n_components=2),
    MixtureSpec(n_components=3, mean_prior_mean=[0.0, 1.0], mean_prior_sd=[1.0, 3.0],
                dirichlet_alpha=[0.1, 0.2, 0.3], obs_sd=[0.5, 2.0], ordered=True,
                weights_transform="simplex"),
    MixtureSpec(n_components=2, weights="fixed", obs_sd="learned", precision_prior_shape=3.0,
                precision_prior_rate=0.5),
])
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
    with pytest.raises(ValueError, match=r"^n_components: expected an integer >= 1"):
        dataclasses.replace(spec, n_components=0)  # replace re-validates


def test_describe_mentions_every_choice():
    text = MixtureSpec(n_components=2, obs_sd="learned", ordered=True, dirichlet_alpha=0.1).describe()
    assert "K = 2" in text and "Dirichlet(0.1)" in text and "Gamma(shape=2.0, rate=2.0)" in text
    assert "ordered by means[:, 0]" in text
    assert "weights fixed at 1/3" in MixtureSpec(n_components=3, weights="fixed").describe()
    assert "obs_sd = 0.5 (known)" in MixtureSpec(n_components=3, obs_sd=0.5).describe()


# --------------------------------------------------------------- prior bounds (issue 11.5)
@pytest.mark.parametrize("changes", [
    {"obs_sd": 1e-170}, {"mean_prior_sd": 1e-170}, {"obs_sd": 1e200},
    {"mean_prior_mean": 1e300}, {"mean_prior_mean": [0.0, -2e6]}, {"mean_prior_sd": [1.0, 1e7]},
    {"dirichlet_alpha": 1e-300}, {"dirichlet_alpha": 1e9},
    {"obs_sd": "learned", "precision_prior_rate": 1e300},
    {"obs_sd": "learned", "precision_prior_shape": 1e-9},
], ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_out_of_range_priors_are_refused_naming_the_argument(changes):
    name = [k for k in changes if k != "obs_sd" or changes[k] != "learned"][-1]
    with pytest.raises(ValueError, match=rf"^{name}: expected (values|values with \|value\|) "
                                         r".*(1e-06, 1e\+06|<= 1e\+06).*standardize"):
        MixtureSpec(n_components=2, **changes)


def test_bounds_are_inclusive_and_documented():
    low, high = v.PRIOR_SCALE_RANGE
    spec = MixtureSpec(n_components=2, mean_prior_sd=[low, high], obs_sd=high,
                       dirichlet_alpha=low, mean_prior_mean=-v.PRIOR_LOCATION_MAX)
    assert spec.mean_prior_sd == (low, high) and spec.mean_prior_mean == -1e6
    MixtureSpec(n_components=2, obs_sd="learned", precision_prior_shape=low,
                precision_prior_rate=high)
    assert "[1e-6, 1e6]" in MixtureSpec.__doc__


def test_numpy_scalars_are_numbers():
    spec = MixtureSpec(n_components=np.int64(2), mean_prior_mean=np.float32(0.5),
                       mean_prior_sd=np.float64(2.0), dirichlet_alpha=np.int32(1),
                       obs_sd=np.float64(1.5), precision_prior_shape=np.int64(3),
                       precision_prior_rate=np.float64(2.0), ordered=np.bool_(True))
    assert spec == MixtureSpec(n_components=2, mean_prior_mean=0.5, mean_prior_sd=2.0,
                               dirichlet_alpha=1.0, obs_sd=1.5, precision_prior_shape=3.0,
                               precision_prior_rate=2.0, ordered=True)
    assert type(spec.n_components) is int and type(spec.mean_prior_sd) is float


@pytest.mark.parametrize("name", ["mean_prior_mean", "mean_prior_sd", "dirichlet_alpha",
                                  "obs_sd"])
def test_ragged_nested_lists_get_our_message(name):
    with pytest.raises(ValueError, match=rf"^{name}: expected a number or a 1-D sequence of "
                                         r"numbers, got a ragged nested sequence"):
        MixtureSpec(n_components=2, **{name: [[1.0], [1.0, 2.0]]})


@pytest.mark.parametrize("value", [np.timedelta64(1, "s"), np.datetime64("2020-01-01"),
                                   np.array([1, 2], dtype="timedelta64[ms]"), 1 + 2j])
def test_time_and_complex_values_are_not_numbers(value):
    with pytest.raises(TypeError, match=r"^mean_prior_sd: expected a number or a 1-D sequence"):
        MixtureSpec(n_components=2, mean_prior_sd=value)
