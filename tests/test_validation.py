"""validation.py: what the boundary checks return for good input, and the data-scale rule.

Bad input and the messages it gets: tests/test_input_checks.py (one table).
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ppl_mixtures import validation as v

# ----------------------------------------------------------------------------- check_points


def test_valid_points_become_float64_2d_copies():
    data = np.array([[1, 2], [3, 4]], dtype=np.int32)
    out = v.check_points(data)
    assert out.dtype == np.float64 and out.shape == (2, 2) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, data)
    floats = np.asfortranarray(np.array([[1.0, 2.0], [3.0, 4.0]]))
    out = v.check_points(floats)
    assert out is not floats and not np.shares_memory(out, floats) and out.flags.c_contiguous
    out[0, 0] = 99.0
    assert floats[0, 0] == 1.0  # the caller's data is never modified


def test_one_d_points_become_one_column():
    out = v.check_points([1.0, 2.0, 3.0])
    assert out.shape == (3, 1)
    np.testing.assert_array_equal(out[:, 0], [1.0, 2.0, 3.0])
    assert v.check_points(["1.5", "2"]).tolist() == [[1.5], [2.0]]  # numeric strings convert


def test_pandas_input_accepted():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4, 5, 6]})
    np.testing.assert_array_equal(v.check_points(frame), frame.to_numpy(dtype=float))
    assert v.check_points(pd.Series([1.0, 2.0])).shape == (2, 1)


@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=6),
        elements=st.floats(-1e6, 1e6),
    )
)
def test_check_points_shapes_property(arr):
    before = arr.copy()
    out = v.check_points(arr)
    expected_shape = (arr.shape[0], 1) if arr.ndim == 1 else arr.shape
    assert out.shape == expected_shape and out.dtype == np.float64
    np.testing.assert_array_equal(out.reshape(arr.shape), arr)
    np.testing.assert_array_equal(arr, before)
    assert not np.shares_memory(out, arr)


@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
        elements=st.floats(-10, 10),
    ),
    st.data(),
)
def test_check_points_reports_the_first_bad_row(arr, data):
    row = data.draw(st.integers(0, arr.shape[0] - 1))
    col = data.draw(st.integers(0, arr.shape[1] - 1))
    arr[row, col] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    with pytest.raises(ValueError, match=rf"in 1 row \(0-based row index {row}\)"):
        v.check_points(arr)


@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(3, 5), st.integers(1, 3), st.integers(1, 3)),
        elements=st.floats(-1, 1),
    )
)
def test_check_points_rejects_every_3d_shape(arr):
    with pytest.raises(ValueError, match=r"expected a 1-D or 2-D array"):
        v.check_points(arr)


# ----------------------------------------------------------------------------- scalar checks
# Bad values and their messages: tests/test_input_checks.py. Here: what good values become.


def test_integer_checks_return_python_ints():
    for check in (
        lambda x: v.check_int("draws", x, minimum=1),
        v.check_seed,
        lambda x: v.check_draws("n_draws", x, values_per_draw=10),
    ):
        out = check(np.int64(5))
        assert out == 5 and type(out) is int
    assert v.check_seed(None) is None and v.check_seed(0) == 0 and v.check_seed(np.uint8(3)) == 3
    assert v.check_int("chains", 4, maximum=4) == 4  # bounds are inclusive
    limit = v.MAX_STORED_VALUES // 10  # the largest draw count that fits the storage bound
    assert v.check_draws("n_draws", limit, values_per_draw=10) == limit
    with pytest.raises(ValueError):
        v.check_draws("n_draws", limit + 1, values_per_draw=10)


def test_real_checks_return_python_floats():
    for out, expected in (
        (v.check_positive("lr", 1), 1.0),
        (v.check_real("tau", np.int64(2), minimum=0), 2.0),
        (v.check_real("tau", 0.0, minimum=0, maximum=1), 0.0),
        (v.check_fraction("target_accept", np.float32(0.5), example="0.9"), 0.5),
    ):
        assert out == expected and type(out) is float
    assert v.check_bool("progressbar", np.bool_(False)) is False


def test_vectors_become_hashable_floats():
    assert v.check_vector("m", 1) == 1.0 and type(v.check_vector("m", 1)) is float
    assert v.check_vector("m", np.array([1, 2])) == (1.0, 2.0)
    assert v.check_positive_vector("s", [0.5, 2], bounds=(0.5, 2.0)) == (0.5, 2.0)
    assert v.check_choice("method", "a", ("a", "b")) == "a"


def test_describe():
    assert v.describe(np.zeros((2, 3))) == "array of shape (2, 3) and dtype float64"
    assert v.describe("x" * 50) == repr("x" * 37 + "...")
    assert v.describe(list(range(10))) == "list of length 10"
    assert v.describe((1, 2)) == "(1, 2)"


# ----------------------------------------------------------------------------- engine options


def _engine_fit(points, spec, *, draws=10, random_seed=None, progressbar=True):
    return None


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Options:
    draws: int = 10
    random_seed: int | None = None
    internal: int = dataclasses.field(default=0, init=False)


def test_check_engine_options_accepts_the_engines_own_options():
    v.check_engine_options("toy", _engine_fit, {"draws": 5, "random_seed": 1})
    v.check_engine_options("toy", _engine_fit, {})
    v.check_engine_options("open", lambda points, spec, **kwargs: None, {"anything": 1})
    v.check_engine_options("toy", _Options, {"draws": 5})
    with pytest.raises(TypeError):  # a field outside __init__ is not an option
        v.check_engine_options("toy", _Options, {"internal": 1})


def test_build_options_returns_the_dataclass_with_defaults_filled():
    opts = v.build_options("toy", _Options, {"draws": 3})
    assert (opts.draws, opts.random_seed) == (3, None)


# ----------------------------------------------------------------------------- text numbers
@pytest.mark.parametrize("text", ["1_000", "１２", "1 000", "0x10", "1,5", "١"])
def test_text_numbers_must_be_plain_ascii(text):
    assert v.parse_float_text(text) is None


def test_plain_ascii_float_text_is_accepted():
    for text, value in (
        ("-1.5e3", -1500.0),
        (".5", 0.5),
        ("3.", 3.0),
        ("+2", 2.0),
        (" 7 ", 7.0),
        ("1E-2", 0.01),
    ):
        assert v.parse_float_text(text) == value
    np.testing.assert_array_equal(v.check_points(np.array(["1.5", "2"])), [[1.5], [2.0]])


def test_a_tuple_of_rows_is_data_not_a_points_labels_pair():
    assert v.check_points((np.array([1.0, 2.0]), np.array([3.0, 4.0]))).shape == (2, 2)
    assert v.check_points([[0.0], [1.0]], n_components=2).shape == (2, 1)


def test_numpy_scalar_entries_are_numbers():
    out = v.check_points([np.int64(1), np.float64(2.5), np.float32(3.0)])
    np.testing.assert_array_equal(out, [[1.0], [2.5], [3.0]])


# --------------------------------------------------------------- data scale (issue 11.6, 18.8)
def _demo_cases():
    from ppl_mixtures import MixtureSpec, datasets

    return [
        (
            datasets.advi_notebook_points(),
            MixtureSpec(2, mean_prior_sd=1, dirichlet_alpha=0.1, obs_sd=1),
        ),
        (
            datasets.advi_notebook_large_points(20_000),
            MixtureSpec(2, mean_prior_sd=np.sqrt(10), dirichlet_alpha=0.1, obs_sd=1),
        ),
        (
            datasets.three_clusters_1d()[0],
            MixtureSpec(3, mean_prior_sd=np.sqrt(10), weights="fixed", obs_sd=1),
        ),
        (datasets.standardize(datasets.old_faithful())[0], MixtureSpec(2, obs_sd="learned")),
    ]


def test_data_scale_is_quiet_on_every_shipped_demo():
    for points, spec in _demo_cases():
        assert v.check_data_scale(v.check_points(points), spec) is None


def test_data_scale_flags_shifted_scaled_and_squashed_data():
    for points, spec in _demo_cases():
        x = v.check_points(points)
        for moved in (x * 1e8, x + 1e9, x * 1e-5):
            message = v.check_data_scale(moved, spec)
            assert message.startswith("points: ") and "standardize" in message
    from ppl_mixtures import MixtureSpec, datasets

    message = v.check_data_scale(datasets.old_faithful(), MixtureSpec(2, obs_sd="learned"))
    assert "feature 1 has mean 70.9" in message
    # a constant feature (sd 0) is not flagged as squashed
    assert v.check_data_scale(np.zeros((5, 1)), MixtureSpec(1)) is None


def test_data_scale_rule_thresholds():
    from ppl_mixtures import MixtureSpec

    spec = MixtureSpec(1, mean_prior_sd=3.0, obs_sd=4.0)  # prior scale sqrt(9 + 16) = 5
    base = np.array([[-1.0], [1.0]])  # mean 0, sd 1
    assert v.check_data_scale(base + 49.9, spec) is None
    assert "more than 10 prior sds" in v.check_data_scale(base + 50.1, spec)
    assert v.check_data_scale(base * 499, spec) is None
    assert "more than 100 times" in v.check_data_scale(base * 501, spec)
    assert v.check_data_scale(base * 0.041, spec) is None  # obs_sd / 100 = 0.04
    assert "less than 1/100" in v.check_data_scale(base * 0.039, spec)
