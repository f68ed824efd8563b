"""validation.py: boundary checks return clean values or raise messages that teach (pinned)."""

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
