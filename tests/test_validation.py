"""validation.py: boundary checks return clean values or raise messages that teach (pinned)."""

import datetime

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
    nullable = pd.DataFrame({"a": pd.array([1, None], dtype="Int64")})
    with pytest.raises(ValueError, match=r"points: expected finite values"):
        v.check_points(nullable)
    with pytest.raises(TypeError, match=r"points: expected numbers, got array of shape \(2, 2\) "
                                        r"and dtype object with non-numeric entries\. Convert "
                                        r"text columns to numbers or drop them\.$"):
        v.check_points(pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}))


def test_masked_entries_are_missing_values():
    masked = np.ma.masked_array([[1.0, 2.0], [3.0, 4.0]], mask=[[0, 0], [0, 1]])
    with pytest.raises(ValueError, match=r"got 1 NaN/inf entries in 1 row \(0-based row index 1\)"):
        v.check_points(masked)


@pytest.mark.parametrize("points, err, match", [
    ([[1.0, 2.0], [3.0, np.nan]], ValueError,
     r"^points: expected finite values, got 1 NaN/inf entries in 1 row \(0-based row index 1\)\. "
     r"Drop or impute them \(the CLI has --dropna\)\.$"),
    ([[np.inf, 0.0], [0.0, 0.0], [np.nan, -np.inf]], ValueError,
     r"got 3 NaN/inf entries in 2 rows \(0-based row indices 0, 2\)"),
    (np.full(8, np.nan), ValueError, r"in 8 rows \(0-based row indices 0, 1, 2, 3, 4, \.\.\.\)"),
    (["a", "b"], TypeError, r"^points: expected numbers, got array of shape \(2,\) and dtype <U1 "
                            r"with non-numeric entries\."),
    (np.array([1.0, "x"], dtype=object), TypeError, r"dtype object with non-numeric entries"),
    (np.array([True, False]), TypeError,
     r"^points: expected numbers, got array of shape \(2,\) and dtype bool\. Convert the data to "
     r"float, e\.g\. np\.asarray\(points, dtype=float\)\.$"),
    (np.array([1 + 1j]), TypeError, r"^points: expected real numbers, got array of shape \(1,\) "
                                    r"and dtype complex128"),
    ("data.csv", TypeError, r"^points: expected a numeric array of shape \(n_samples, n_features\), "
                            r"got the string 'data\.csv'\. To read a file use "
                            r"ppl_mixtures\.datasets\.load_points\(path\)\.$"),
    (None, TypeError, r"^points: expected a numeric array of shape \(n_samples, n_features\), got None"),
    (np.zeros((2, 2, 2)), ValueError,
     r"^points: expected a 1-D or 2-D array \(n_samples, n_features\), got 3-D shape \(2, 2, 2\)\. "
     r"Reshape to \(n_samples, n_features\)\.$"),
    (5.0, ValueError, r"^points: expected a 1-D or 2-D array .* got 0-D shape \(\)"),
    ([], ValueError, r"^points: expected at least one sample and one feature, got shape \(0, 1\)\. "
                     r"Pass non-empty data\.$"),
    (np.zeros((3, 0)), ValueError, r"expected at least one sample and one feature, got shape \(3, 0\)"),
    ([[1.0, 2.0], [3.0]], ValueError, r"^points: expected a rectangular numeric array, got a ragged "
                                      r"sequence .*Make every row the same length\.$"),
])
def test_bad_points(points, err, match):
    with pytest.raises(err, match=match):
        v.check_points(points)


def test_more_components_than_points():
    with pytest.raises(ValueError, match=r"^n_components: expected at most n_samples=2 components, "
                                         r"got 3\. Use fewer components or more data\.$"):
        v.check_points([[0.0], [1.0]], n_components=3)
    assert v.check_points([[0.0], [1.0]], n_components=2).shape == (2, 1)


def test_name_is_used_in_messages():
    with pytest.raises(ValueError, match=r"^reference: expected finite values"):
        v.check_points([np.nan], name="reference")


@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=6),
                  elements=st.floats(-1e6, 1e6)))
def test_check_points_shapes_property(arr):
    before = arr.copy()
    out = v.check_points(arr)
    expected_shape = (arr.shape[0], 1) if arr.ndim == 1 else arr.shape
    assert out.shape == expected_shape and out.dtype == np.float64
    np.testing.assert_array_equal(out.reshape(arr.shape), arr)
    np.testing.assert_array_equal(arr, before)
    assert not np.shares_memory(out, arr)


@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
                  elements=st.floats(-10, 10)),
       st.data())
def test_check_points_reports_the_first_bad_row(arr, data):
    row = data.draw(st.integers(0, arr.shape[0] - 1))
    col = data.draw(st.integers(0, arr.shape[1] - 1))
    arr[row, col] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    with pytest.raises(ValueError, match=rf"in 1 row \(0-based row index {row}\)"):
        v.check_points(arr)


@given(hnp.arrays(np.float64, st.tuples(st.integers(3, 5), st.integers(1, 3), st.integers(1, 3)),
                  elements=st.floats(-1, 1)))
def test_check_points_rejects_every_3d_shape(arr):
    with pytest.raises(ValueError, match=r"expected a 1-D or 2-D array"):
        v.check_points(arr)


# ----------------------------------------------------------------------------- scalar checks


def test_check_int():
    assert v.check_int("draws", np.int64(5), minimum=1) == 5
    assert type(v.check_int("draws", np.int64(5))) is int
    with pytest.raises(ValueError, match=r"^draws: expected an integer >= 1, got 0\. Use 1 or more\.$"):
        v.check_int("draws", 0, minimum=1)
    with pytest.raises(ValueError, match=r"^chains: expected an integer <= 4, got 9\. Use 4 or fewer\.$"):
        v.check_int("chains", 9, maximum=4)
    with pytest.raises(TypeError, match=r"^draws: expected an integer, got 1\.5\. Pass a whole "
                                        r"number, e\.g\. 3\.$"):
        v.check_int("draws", 1.5)
    with pytest.raises(TypeError, match=r"^draws: expected an integer, got False\. Try this\.$"):
        v.check_int("draws", False, hint="Try this")


def test_check_positive():
    assert v.check_positive("lr", 1) == 1.0 and type(v.check_positive("lr", 1)) is float
    for bad in (0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match=r"^lr: expected a finite number > 0, got"):
            v.check_positive("lr", bad)
    with pytest.raises(TypeError, match=r"^lr: expected a positive number, got '0\.1'\. Pass a float"):
        v.check_positive("lr", "0.1")


def test_check_vector_and_positive_vector():
    assert v.check_vector("m", 1) == 1.0
    assert v.check_vector("m", np.array([1, 2])) == (1.0, 2.0)
    with pytest.raises(ValueError, match=r"^s: expected values > 0, got \[1\.0, 0\.0\]"):
        v.check_positive_vector("s", [1, 0])
    with pytest.raises(TypeError, match=r"^m: expected a number or a 1-D sequence of numbers, got b'1'"):
        v.check_vector("m", b"1")


def test_check_choice():
    assert v.check_choice("method", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"^method: expected one of 'a', 'b', got 'c'\. Pick one of those\.$"):
        v.check_choice("method", "c", ("a", "b"))
    with pytest.raises(ValueError, match=r"got 3\. Pick one"):
        v.check_choice("method", 3, ["a"])


def test_describe():
    assert v.describe(np.zeros((2, 3))) == "array of shape (2, 3) and dtype float64"
    assert v.describe("x" * 50) == repr("x" * 37 + "...")
    assert v.describe(list(range(10))) == "list of length 10"
    assert v.describe((1, 2)) == "(1, 2)"


# ----------------------------------------------------------------------------- engine options


def _engine_fit(points, spec, *, draws=10, random_seed=None, progressbar=True):
    return None


def test_check_engine_options_accepts_keyword_only_options():
    v.check_engine_options("toy", _engine_fit, {"draws": 5, "random_seed": 1})
    v.check_engine_options("toy", _engine_fit, {})


def test_check_engine_options_lists_the_valid_ones():
    with pytest.raises(TypeError, match=r"^options: engine 'toy' got unknown option\(s\) 'drws', "
                                        r"'seed'\. Valid options for 'toy': draws, random_seed, "
                                        r"progressbar\.$"):
        v.check_engine_options("toy", _engine_fit, {"drws": 5, "seed": 1, "draws": 3})
    # positional parameters (points, spec) are not options
    with pytest.raises(TypeError, match=r"unknown option\(s\) 'spec'"):
        v.check_engine_options("toy", _engine_fit, {"spec": None})


def test_check_engine_options_without_options_and_with_kwargs():
    def bare(points, spec):
        return None

    def open_ended(points, spec, **kwargs):
        return None

    with pytest.raises(TypeError, match=r"Valid options for 'bare': \(none\)\.$"):
        v.check_engine_options("bare", bare, {"x": 1})
    v.check_engine_options("open", open_ended, {"anything": 1})


def test_check_fraction_accepts_open_unit_interval_and_names_the_argument():
    from ppl_mixtures.validation import check_fraction

    assert check_fraction("target_accept", 0.9, example="0.9") == 0.9
    with pytest.raises(ValueError, match=r"^target_accept: expected a number in \(0, 1\), got 1\.0\. "
                                         r"Use e\.g\. target_accept=0\.9 \(higher is safer\)\.$"):
        check_fraction("target_accept", 1.0, example="0.9", hint="higher is safer")
    with pytest.raises(TypeError, match=r"^threshold: expected a number in \(0, 1\), got True\. "
                                        r"Use e\.g\. threshold=0\.5\.$"):
        check_fraction("threshold", True, example="0.5")


# --------------------------------------------------------------- issue 11 / 13 / 18 checks
def test_check_seed_accepts_none_and_non_negative_integers_only():
    assert v.check_seed(None) is None
    assert v.check_seed(0) == 0 and v.check_seed(np.int64(7)) == 7 and v.check_seed(np.uint8(3)) == 3
    assert type(v.check_seed(np.int64(7))) is int
    for bad, err in ((-1, ValueError), (0.3, TypeError), (True, TypeError), ("1", TypeError),
                     (np.float64(2.0), TypeError)):
        with pytest.raises(err, match=r"^random_seed: expected an integer"):
            v.check_seed(bad)


def test_check_bool():
    assert v.check_bool("progressbar", np.bool_(False)) is False
    for bad in (0, 1, "yes", None):
        with pytest.raises(TypeError, match=r"^progressbar: expected True or False"):
            v.check_bool("progressbar", bad)


def test_check_real_and_check_draws():
    assert v.check_real("tau", np.int64(2), minimum=0) == 2.0
    with pytest.raises(ValueError, match=r"^tau: expected a finite number >= 0, got inf"):
        v.check_real("tau", float("inf"), minimum=0)
    with pytest.raises(TypeError, match=r"^tau: expected a number, got True"):
        v.check_real("tau", True)
    assert v.check_draws("n_draws", np.int64(1000), values_per_draw=10) == 1000
    limit = v.MAX_STORED_VALUES // 10
    assert v.check_draws("n_draws", limit, values_per_draw=10) == limit
    with pytest.raises(ValueError, match=rf"^n_draws: expected at most {limit} draws here"):
        v.check_draws("n_draws", 10**12, values_per_draw=10)


@pytest.mark.parametrize("points", [
    np.array([1, 2, 3], dtype="timedelta64[s]"),
    np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"),
    np.array([np.timedelta64(1, "s"), np.timedelta64(2, "s")], dtype=object),
    [datetime.timedelta(seconds=1), datetime.timedelta(seconds=2)],
])
def test_time_data_are_refused(points):
    with pytest.raises(TypeError, match=r"^points: expected numbers, got .* dates or time spans"):
        v.check_points(points)


@pytest.mark.parametrize("text", ["1_000", "１２", "1 000", "0x10", "1,5", "١"])
def test_text_numbers_must_be_plain_ascii(text):
    assert v.parse_float_text(text) is None
    with pytest.raises(TypeError, match=r"^points: expected numbers, got .* non-numeric entries"):
        v.check_points(np.array([text, "2.0"]))


def test_plain_ascii_float_text_is_accepted():
    for text, value in (("-1.5e3", -1500.0), (".5", 0.5), ("3.", 3.0), ("+2", 2.0),
                        (" 7 ", 7.0), ("1E-2", 0.01)):
        assert v.parse_float_text(text) == value
    np.testing.assert_array_equal(v.check_points(np.array(["1.5", "2"])), [[1.5], [2.0]])


def test_points_labels_tuple_gets_a_message_saying_what_happened():
    from ppl_mixtures import datasets
    with pytest.raises(TypeError, match=r"^points: .*looks like a \(points, labels\) tuple.*"
                                        r"datasets\.three_clusters_1d\(\)\[0\]"):
        v.check_points(datasets.three_clusters_1d(), n_components=3)
    # a tuple of rows is still data
    assert v.check_points((np.array([1.0, 2.0]), np.array([3.0, 4.0]))).shape == (2, 2)


def test_numpy_scalar_entries_are_numbers():
    out = v.check_points([np.int64(1), np.float64(2.5), np.float32(3.0)])
    np.testing.assert_array_equal(out, [[1.0], [2.5], [3.0]])


# --------------------------------------------------------------- data scale (issue 11.6, 18.8)
def _demo_cases():
    from ppl_mixtures import MixtureSpec, datasets
    return [
        (datasets.advi_notebook_points(),
         MixtureSpec(2, mean_prior_sd=1, dirichlet_alpha=0.1, obs_sd=1)),
        (datasets.advi_notebook_large_points(20_000),
         MixtureSpec(2, mean_prior_sd=np.sqrt(10), dirichlet_alpha=0.1, obs_sd=1)),
        (datasets.three_clusters_1d()[0],
         MixtureSpec(3, mean_prior_sd=np.sqrt(10), weights="fixed", obs_sd=1)),
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
    spec = MixtureSpec(1, mean_prior_sd=3.0, obs_sd=4.0)     # prior scale sqrt(9 + 16) = 5
    base = np.array([[-1.0], [1.0]])                          # mean 0, sd 1
    assert v.check_data_scale(base + 49.9, spec) is None
    assert "more than 10 prior sds" in v.check_data_scale(base + 50.1, spec)
    assert v.check_data_scale(base * 499, spec) is None
    assert "more than 100 times" in v.check_data_scale(base * 501, spec)
    assert v.check_data_scale(base * 0.041, spec) is None    # obs_sd / 100 = 0.04
    assert "less than 1/100" in v.check_data_scale(base * 0.039, spec)
