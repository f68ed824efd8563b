"""Hypothesis suite for MixtureSpec (issue 11): over generated arguments, a spec either
builds with finite, in-range fields or raises ValueError/TypeError naming the argument."""

import dataclasses
import json

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ppl_mixtures import MixtureSpec
from ppl_mixtures import validation as v

FIELDS = [f.name for f in dataclasses.fields(MixtureSpec)]

# Numbers from every corner float64 has: tiny, huge, subnormal, signed zero, nan, inf.
EXTREME = st.sampled_from(
    [
        0.0,
        -0.0,
        1e-320,
        1e-170,
        1e-7,
        1e-6,
        1e6,
        1e7,
        1e200,
        1e300,
        -1e300,
        float("nan"),
        float("inf"),
        -float("inf"),
    ]
)
REAL = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    EXTREME,
    st.floats(-10, 10),
    st.floats(1e-3, 1e3),
)
NUMPY_SCALAR = st.one_of(
    REAL.map(np.float64), st.integers(-5, 10).map(np.int64), st.floats(0.1, 10).map(np.float32)
)
ODD = st.sampled_from(
    [
        None,
        True,
        False,
        "1.0",
        "learned",
        b"1",
        [],
        [[1.0], [1.0, 2.0]],
        [[1.0, 2.0]],
        np.timedelta64(1, "s"),
        np.datetime64("2020-01-01"),
        1 + 1j,
        {"a": 1},
        np.array([1, 2], dtype="timedelta64[s]"),
        np.bool_(True),
        object(),
    ]
)


def _mostly(good, bad, good_share=0.8):
    """``good`` with probability ~good_share, else ``bad`` (so both branches get examples)."""
    cut = round(10 * good_share)
    return st.integers(0, 9).flatmap(lambda i: good if i < cut else bad)


GOOD = st.one_of(st.floats(0.01, 100), st.lists(st.floats(0.01, 100), min_size=1, max_size=3))
VALUE = _mostly(
    GOOD,
    st.one_of(
        REAL,
        NUMPY_SCALAR,
        st.integers(-3, 5),
        ODD,
        st.lists(st.one_of(REAL, st.integers(-2, 3)), max_size=4),
    ),
)

ARGUMENTS = st.fixed_dictionaries(
    {
        "n_components": _mostly(
            st.one_of(st.integers(1, 4), st.integers(1, 4).map(np.int64)),
            st.one_of(st.integers(-2, 0), ODD, REAL),
        )
    },
    optional={
        "mean_prior_mean": VALUE,
        "mean_prior_sd": VALUE,
        "weights": _mostly(
            st.sampled_from(["dirichlet", "fixed"]),
            st.one_of(st.sampled_from(["Fixed", "dp"]), ODD),
        ),
        "dirichlet_alpha": VALUE,
        "obs_sd": st.one_of(VALUE, st.just("learned")),
        "precision_prior_shape": VALUE,
        "precision_prior_rate": VALUE,
        "ordered": _mostly(
            st.one_of(st.booleans(), st.booleans().map(np.bool_)), st.one_of(ODD, st.integers(0, 1))
        ),
        "weights_transform": _mostly(
            st.sampled_from(["stick_breaking", "simplex"]), st.one_of(st.just("x"), ODD)
        ),
    },
)


def _in_range(values, low, high):
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    return bool(np.all(np.isfinite(arr)) and np.all((arr >= low) & (arr <= high)))


@settings(max_examples=200)
@given(ARGUMENTS)
def test_spec_builds_in_range_or_raises_naming_the_argument(kwargs):
    try:
        spec = MixtureSpec(**kwargs)
    except (ValueError, TypeError) as err:
        message = str(err)
        named = message.split(":", 1)[0]
        # the message starts with the argument's name, and that argument was passed
        assert named in FIELDS and named in kwargs, message
        assert "expected" in message and "\n" not in message, message
        event(f"{type(err).__name__} naming {named}")
        return
    event("built")
    low, high = v.PRIOR_SCALE_RANGE
    assert isinstance(spec.n_components, int) and spec.n_components >= 1
    assert _in_range(spec.mean_prior_mean, -v.PRIOR_LOCATION_MAX, v.PRIOR_LOCATION_MAX)
    assert _in_range(spec.mean_prior_sd, low, high)
    assert _in_range(spec.dirichlet_alpha, low, high)
    assert spec.obs_sd == "learned" or _in_range(spec.obs_sd, low, high)
    assert _in_range([spec.precision_prior_shape, spec.precision_prior_rate], low, high)
    assert spec.weights in ("dirichlet", "fixed") and isinstance(spec.ordered, bool)
    assert spec.alpha().shape == (spec.n_components,) and np.all(np.isfinite(spec.alpha()))
    # a valid spec round-trips through JSON and is hashable
    again = MixtureSpec(**json.loads(json.dumps(spec.to_dict())))
    assert again == spec and hash(again) == hash(spec)
