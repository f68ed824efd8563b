"""Datasets: seed data reproduced exactly, synthetic mixtures, Old Faithful, and load_points."""

import logging
import re
import struct
import warnings

import numpy as np
import pytest

from ppl_mixtures import datasets

# ----------------------------------------------------------------------------- seed 001


def _seed_001_generator(n_first=100, n_second=None):
    """The notebook's code, verbatim (the oracle for bit-for-bit reproduction)."""
    rng = np.random.RandomState(123)
    ms = np.array([[-1, -1.5], [1, 1]])
    ps = np.array([0.2, 0.8])
    out = []
    for n_samples in (n_first, n_second):
        if n_samples is None:
            break
        zs = np.array([rng.multinomial(1, ps) for _ in range(n_samples)]).T
        xs = [z[:, np.newaxis] * rng.multivariate_normal(m, np.eye(2), size=n_samples)
              for z, m in zip(zs, ms, strict=True)]
        out.append((np.sum(np.dstack(xs), axis=2), zs))
    return out


def test_advi_notebook_points_bit_for_bit():
    [(data, zs)] = _seed_001_generator(100)
    points, labels = datasets.advi_notebook_points(100, return_labels=True)
    assert points.shape == (100, 2) and points.dtype == np.float64
    np.testing.assert_array_equal(points, data)
    np.testing.assert_array_equal(labels, np.argmax(zs, axis=0))
    np.testing.assert_array_equal(datasets.advi_notebook_points(), points)


def test_advi_notebook_proportions_as_printed_in_the_seed():
    _, labels = datasets.advi_notebook_points(100, return_labels=True)
    # seed 001 prints zs[0].mean(), zs[1].mean() == (0.13, 0.87); component 0 = (-1, -1.5)
    assert (np.mean(labels == 0), np.mean(labels == 1)) == (0.13, 0.87)
    np.testing.assert_array_equal(datasets.ADVI_NOTEBOOK_MEANS, [[-1, -1.5], [1, 1]])
    np.testing.assert_array_equal(datasets.ADVI_NOTEBOOK_WEIGHTS, [0.2, 0.8])
    # each point sits nearer its own component's mean on average
    points = datasets.advi_notebook_points(100)
    for k in (0, 1):
        centre = points[labels == k].mean(axis=0)
        assert np.linalg.norm(centre - datasets.ADVI_NOTEBOOK_MEANS[k]) < 0.6


def test_truth_constants_are_read_only():
    with pytest.raises(ValueError, match="read-only"):
        datasets.ADVI_NOTEBOOK_MEANS[0, 0] = 5.0


def test_advi_notebook_large_points_continue_the_same_generator():
    [_, (data, zs)] = _seed_001_generator(100, 2000)
    points, labels = datasets.advi_notebook_large_points(2000, return_labels=True)
    np.testing.assert_array_equal(points, data)
    np.testing.assert_array_equal(labels, np.argmax(zs, axis=0))


def test_advi_notebook_large_points_default_size_and_proportions():
    points, labels = datasets.advi_notebook_large_points(return_labels=True)
    assert points.shape == (100_000, 2)
    np.testing.assert_allclose([np.mean(labels == 0), np.mean(labels == 1)], [0.2, 0.8],
                               atol=0.005)
    np.testing.assert_array_equal(points[:50], datasets.advi_notebook_large_points()[:50])


@pytest.mark.parametrize("bad, err, match", [
    (0, ValueError, r"n_samples: expected an integer >= 1, got 0"),
    (2.5, TypeError, r"n_samples: expected an integer, got 2.5"),
])
def test_advi_notebook_points_bad_n_samples(bad, err, match):
    with pytest.raises(err, match=match):
        datasets.advi_notebook_points(bad)


# ----------------------------------------------------------------------------- seeds 000, 002


def test_three_clusters_1d():
    points, labels = datasets.three_clusters_1d()
    assert points.shape == (1000,) and labels.shape == (1000,)
    np.testing.assert_array_equal(np.bincount(labels), [333, 333, 334])
    for k, mean in enumerate(datasets.THREE_CLUSTERS_1D_MEANS):
        assert abs(points[labels == k].mean() - mean) < 0.2
        assert abs(points[labels == k].std() - 1.0) < 0.1
    np.testing.assert_array_equal(points, datasets.three_clusters_1d()[0])
    assert not np.array_equal(points, datasets.three_clusters_1d(random_seed=1)[0])


def test_three_clusters_2d():
    points, labels = datasets.three_clusters_2d()
    assert points.shape == (300, 2)
    np.testing.assert_array_equal(np.bincount(labels), datasets.THREE_CLUSTERS_2D_SIZES)
    for k in range(3):
        cluster = points[labels == k]
        np.testing.assert_allclose(cluster.mean(0), datasets.THREE_CLUSTERS_2D_MEANS[k], atol=0.35)
        np.testing.assert_allclose(cluster.std(0), datasets.THREE_CLUSTERS_2D_OBS_SD[k], rtol=0.25)
    np.testing.assert_array_equal(points, datasets.three_clusters_2d()[0])


# ----------------------------------------------------------------------------- make_mixture


def test_make_mixture_recovers_its_parameters():
    means = [[-3.0, 0.0], [3.0, 1.0], [0.0, 5.0]]
    sds = [[0.5, 1.0], [1.0, 2.0], [0.2, 0.3]]
    points, labels = datasets.make_mixture(20_000, means, [0.5, 0.3, 0.2], sds, random_seed=3)
    assert points.shape == (20_000, 2) and labels.dtype.kind == "i"
    np.testing.assert_allclose(np.bincount(labels) / 20_000, [0.5, 0.3, 0.2], atol=0.015)
    for k in range(3):
        np.testing.assert_allclose(points[labels == k].mean(0), means[k], atol=0.06)
        np.testing.assert_allclose(points[labels == k].std(0), sds[k], rtol=0.05)


def test_make_mixture_seeded_and_shapes():
    a = datasets.make_mixture(50, [[0, 0], [1, 1]], [0.5, 0.5], 1.0, random_seed=7)
    b = datasets.make_mixture(50, [[0, 0], [1, 1]], [0.5, 0.5], 1.0, random_seed=7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    one_d, labels = datasets.make_mixture(400, [-5.0, 5.0], [0.5, 0.5], [0.1, 1.0], random_seed=0)
    assert one_d.shape == (400,)
    # 1-D means with a (K,) obs_sd: one sd per component
    np.testing.assert_allclose(one_d[labels == 0].std(), 0.1, rtol=0.15)
    np.testing.assert_allclose(one_d[labels == 1].std(), 1.0, rtol=0.15)
    per_feature, _ = datasets.make_mixture(10, [[0, 0, 0]], [1.0], [1.0, 2.0, 3.0], random_seed=0)
    assert per_feature.shape == (10, 3)


@pytest.mark.parametrize("kwargs, err, match", [
    ({"weights": [0.5, 0.6]}, ValueError, r"weights: expected non-negative values summing to 1, "
                                          r"got \[0.5, 0.6\] \(sum 1.1\)\. Divide by their sum"),
    ({"weights": [1.0]}, ValueError, r"weights: expected shape \(2,\) \(one per row of means\)"),
    ({"weights": [1.2, -0.2]}, ValueError, r"weights: expected non-negative"),
    ({"weights": "uniform"}, TypeError, r"weights: expected 2 numbers summing to 1"),
    ({"obs_sd": -1.0}, ValueError, r"obs_sd: expected finite values > 0, got -1.0"),
    ({"obs_sd": [1.0, 1.0, 1.0]}, ValueError,
     r"obs_sd: expected a scalar, shape \(2,\) or \(2, 2\), got shape \(3,\)"),
    ({"obs_sd": "one"}, TypeError, r"obs_sd: expected a positive number or array"),
    ({"means": [[[0.0]]]}, ValueError, r"means: expected shape \(n_components, n_features\)"),
    ({"means": [[0.0, np.nan], [1, 1]]}, ValueError, r"means: expected finite values"),
    ({"means": "abc"}, TypeError, r"means: expected numbers"),
    ({"n_samples": 0}, ValueError, r"n_samples: expected an integer >= 1"),
])
def test_make_mixture_rejects_bad_input(kwargs, err, match):
    args = {"n_samples": 10, "means": [[0.0, 0.0], [1.0, 1.0]], "weights": [0.5, 0.5],
            "obs_sd": 1.0, "random_seed": 0} | kwargs
    with pytest.raises(err, match=match):
        datasets.make_mixture(**args)


# ----------------------------------------------------------------------------- Old Faithful


def test_old_faithful():
    points = datasets.old_faithful()
    assert points.shape == (272, 2) and points.dtype == np.float64
    assert datasets.OLD_FAITHFUL_COLUMNS == ("eruptions", "waiting")
    assert datasets.OLD_FAITHFUL_FEATURES == ("eruption duration", "waiting time")
    assert datasets.OLD_FAITHFUL_UNITS == "min"
    assert len(datasets.OLD_FAITHFUL_FEATURES) == points.shape[1]
    np.testing.assert_allclose(points[0], [3.6, 79.0])
    # the well-known summary: durations 1.6-5.1 min (mean 3.49), waiting 43-96 min (mean 70.9)
    np.testing.assert_allclose(points.mean(0), [3.4878, 70.8971], atol=1e-3)
    np.testing.assert_allclose(points.min(0), [1.6, 43.0])
    np.testing.assert_allclose(points.max(0), [5.1, 96.0])


def test_standardize_round_trip():
    points = datasets.old_faithful()
    before = points.copy()
    z, center, scale = datasets.standardize(points)
    np.testing.assert_array_equal(points, before)  # input not mutated
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(0), 1.0)
    np.testing.assert_allclose(z * scale + center, points)
    z1, _, s1 = datasets.standardize(np.array([1.0, 1.0, 1.0]))  # constant: scale 1
    assert z1.shape == (3, 1)
    np.testing.assert_array_equal(s1, [1.0])
    np.testing.assert_array_equal(z1, 0.0)
    with pytest.raises(ValueError, match=r"points: expected finite values"):
        datasets.standardize([1.0, np.nan])


# ----------------------------------------------------------------------------- load_points


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_csv_with_header_and_columns(tmp_path):
    path = _write(tmp_path, "d.csv", "id,a,b\nx1,1.5,2\nx2,3,4e1\n")
    np.testing.assert_array_equal(datasets.load_points(path, columns=["a", "b"]),
                                  [[1.5, 2.0], [3.0, 40.0]])
    np.testing.assert_array_equal(datasets.load_points(path, columns=[2]), [[2.0], [40.0]])
    np.testing.assert_array_equal(datasets.load_points(str(path), columns="b"), [[2.0], [40.0]])


def test_load_table_names_the_chosen_columns(tmp_path):
    path = _write(tmp_path, "d.csv", "id,a, ,b\nx1,1.5,7,2\nx2,3,8,4e1\n")
    points, names = datasets.load_table(path, columns=["b", 2, "a"])
    np.testing.assert_array_equal(points, datasets.load_points(path, columns=["b", 2, "a"]))
    assert names == ("b", "column 2", "a")  # a blank header cell is named by its index
    bare = _write(tmp_path, "bare.csv", "1,2\n3,4\n")
    assert datasets.load_table(bare)[1] == ("column 0", "column 1")
    npy = tmp_path / "x.npy"
    np.save(npy, np.ones((3, 2)))
    assert datasets.load_table(npy, columns=[1])[1] == ("column 1",)


def test_load_csv_without_header(tmp_path):
    path = _write(tmp_path, "d.csv", "1,2\n\n3,4\n")  # blank lines are skipped
    out = datasets.load_points(path)
    assert out.shape == (2, 2) and out.dtype == np.float64 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, [[1, 2], [3, 4]])


def test_load_csv_header_with_empty_corner_and_bom(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("\ufeff,x\n0,1.0\n1,2.0\n".encode())  # pandas index column, UTF-8 BOM
    np.testing.assert_array_equal(datasets.load_points(path, columns=["x"]), [[1.0], [2.0]])


def test_load_old_faithful_copy_equals_package_data(tmp_path):
    points = datasets.old_faithful()
    path = tmp_path / "faithful.csv"
    path.write_text("eruptions,waiting\n" + "\n".join(f"{float(a)!r},{float(b)!r}" for a, b in points))
    np.testing.assert_array_equal(datasets.load_points(path), points)


def test_load_npy(tmp_path):
    arr = np.arange(6.0).reshape(3, 2)
    np.save(tmp_path / "a.npy", arr)
    np.testing.assert_array_equal(datasets.load_points(tmp_path / "a.npy"), arr)
    np.testing.assert_array_equal(datasets.load_points(tmp_path / "a.npy", columns=[1]), arr[:, 1:])
    np.save(tmp_path / "b.npy", np.arange(4))
    assert datasets.load_points(tmp_path / "b.npy").shape == (4, 1)


def test_load_npy_missing_values_name_rows(tmp_path):
    np.save(tmp_path / "a.npy", np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 3.0]]))
    with pytest.raises(ValueError, match=r"got 1 row with missing values \(row 2\)"):
        datasets.load_points(tmp_path / "a.npy")
    np.testing.assert_array_equal(datasets.load_points(tmp_path / "a.npy", dropna=True),
                                  [[1.0, 2.0], [3.0, 3.0]])


MISSING_CSV = "a,b\n1,2\n,3\n4,NaN\n5,6\n7,NA\n8,\n9,9\n10,\n"


def test_load_csv_missing_values_error_says_how_many_and_where(tmp_path):
    path = _write(tmp_path, "m.csv", MISSING_CSV)
    msg = ("path: expected no missing values in 'm.csv', got 5 rows with missing values "
           "(lines 3, 4, 6, 7, 9). Pass dropna=True (CLI: --dropna) to drop them, or fill them in.")
    with pytest.raises(ValueError, match=re.escape(msg) + "$"):
        datasets.load_points(path)


def test_load_csv_missing_more_than_five_rows_is_abbreviated(tmp_path):
    path = _write(tmp_path, "m.csv", "a\n1\n" + "nan\n" * 7)
    with pytest.raises(ValueError, match=r"got 7 rows with missing values \(lines 3, 4, 5, 6, "
                                         r"7, \.\.\.\)"):
        datasets.load_points(path)


def test_load_csv_dropna_drops_and_logs(tmp_path, caplog):
    path = _write(tmp_path, "m.csv", MISSING_CSV)
    with caplog.at_level(logging.WARNING, logger="ppl_mixtures.datasets"):
        out = datasets.load_points(path, dropna=True)
    np.testing.assert_array_equal(out, [[1, 2], [5, 6], [9, 9]])
    assert "dropped 5 rows with missing values (lines 3, 4, 6, 7, 9)" in caplog.text
    # only the chosen columns count
    np.testing.assert_array_equal(datasets.load_points(path, columns=["a"], dropna=True)[:, 0],
                                  [1, 4, 5, 7, 8, 9, 10])


def test_load_csv_dropna_leaving_nothing(tmp_path):
    path = _write(tmp_path, "m.csv", "a,b\n1,\n,2\n")
    with pytest.raises(ValueError, match=r"path: expected at least one complete row in 'm.csv', "
                                         r"got none \(2 rows, all with missing values\)"):
        datasets.load_points(path, dropna=True)


@pytest.mark.parametrize("text, kwargs, match", [
    ("a,b\n1,2\n3,oops\n", {}, r"path: expected numbers in column 'b' of 'bad.csv', got 'oops' "
                               r"on line 3\. Fix the value, or choose numeric columns with "
                               r"columns=\[\.\.\.\] \(CLI: --columns\)\.$"),
    ("1,2\n3,x\n", {}, r"expected numbers in column 1 of 'bad.csv', got 'x' on line 2"),
    ("id,a\nx,1\n", {"columns": ["id"]}, r"column 'id' of 'bad.csv', got 'x' on line 2\. Fix the "
                                         r"value or choose another column\.$"),
    ("a;b\n1;2\n", {}, r"got '1;2' on line 2\. The file looks semicolon-separated: save it "
                        r"comma-separated\.$"),
    ("a\tb\n1\t2\n", {}, r"The file looks tab-separated"),
    ("a,b\n1,2\n3\n", {}, r"path: expected 2 comma-separated values on every row of 'bad.csv', "
                          r"got 1 on line 3"),
    ("a,b\n1,inf\n", {}, r"path: expected finite numbers in column 'b' of 'bad.csv', got inf on "
                         r"line 2"),
    ("", {}, r"path: expected a CSV file with rows of numbers, got an empty file 'bad.csv'\. "
             r"Check that the file was written completely\."),
    ("\n\n  \n", {}, r"got an empty file 'bad.csv'"),
    ("a,b\n", {}, r"path: expected data rows after the header in 'bad.csv', got only the header "
                  r"\(a, b\)\. Add rows of numbers\."),
    ("a,b\n1,2\n", {"columns": ["c"]}, r"columns: expected a column of 'bad.csv', got 'c'\. "
                                       r"Available: 'a', 'b'\.$"),
    ("1,2\n", {"columns": ["a"]}, r"columns: expected a column of 'bad.csv', got 'a'\. Available: "
                                  r"indices 0 to 1 \(the file has no header\)\."),
    ("1,2\n", {"columns": [2]}, r"columns: expected an index from 0 to 1, got 2"),
])
def test_load_csv_bad_content(tmp_path, text, kwargs, match):
    path = _write(tmp_path, "bad.csv", text)
    with pytest.raises(ValueError, match=match):
        datasets.load_points(path, **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"columns": []}, r"columns: expected a non-empty list of column names or 0-based indices"),
    ({"columns": [True]}, r"columns: expected column names or 0-based indices, got True"),
    ({"columns": 1.5}, r"columns: expected a non-empty list"),
    ({"dropna": "yes"}, r"dropna: expected True or False, got 'yes'"),
])
def test_load_points_bad_argument_kinds(tmp_path, kwargs, match):
    path = _write(tmp_path, "d.csv", "a,b\n1,2\n")
    with pytest.raises(TypeError, match=match):
        datasets.load_points(path, **kwargs)


def test_load_points_missing_path(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match=r"path: expected an existing file, got '.*nope\.csv' "
                                                r"\(no such file\)\. Check the path"):
        datasets.load_points(missing)


def test_load_points_bad_paths(tmp_path):
    with pytest.raises(ValueError, match=r"path: expected a \.csv or \.npy file, got 'd\.xlsx'\. "
                                         r"Save the data as CSV"):
        datasets.load_points(_write(tmp_path, "d.xlsx", "1,2\n"))
    with pytest.raises(ValueError, match=r"path: expected a file, got the directory"):
        datasets.load_points(tmp_path)
    with pytest.raises(TypeError, match=r"path: expected a file path \(str or pathlib.Path\), "
                                        r"got array"):
        datasets.load_points(np.zeros(3))
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81,\x9f\n")
    with pytest.raises(ValueError, match=r"path: expected a UTF-8 text CSV file"):
        datasets.load_points(tmp_path / "bin.csv")
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    with pytest.raises(ValueError, match=r"path: expected a NumPy \.npy file, got '.*bad\.npy' "
                                         r"whose header cannot be read"):
        datasets.load_points(tmp_path / "bad.npy")
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"path: expected a real numeric array in 's\.npy'"):
        datasets.load_points(tmp_path / "s.npy")
    np.save(tmp_path / "e.npy", np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"path: expected a non-empty array .* got shape \(0, 2\)"):
        datasets.load_points(tmp_path / "e.npy")


# --------------------------------------------------------------- corrupt .npy (issue 11.10)
def _npy_bytes(header: str, payload: bytes = b"") -> bytes:
    """A version-1.0 .npy file with the given header text (padded as np.save pads it)."""
    text = header.encode("latin1")
    text += b" " * (64 - (10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


@pytest.mark.parametrize("header, match", [
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), '''",
     r"header cannot be read \(TokenError"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (3,", r"header cannot be read"),
    ("{'descr': 'zz', 'fortran_order': False, 'shape': (2,), }", r"header cannot be read"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }",
     r"expected 80000000000 bytes of data after the header .* got 16\. The file is truncated "
     r"or its header is corrupt"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }", r"negative shape"),
    ("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", r"Python objects"),
])
def test_corrupt_npy_headers_are_value_errors_naming_the_path(tmp_path, header, match):
    path = tmp_path / "bad.npy"
    path.write_bytes(_npy_bytes(header, b"\0" * 16))
    with pytest.raises(ValueError, match=match) as info:
        datasets.load_points(path)
    message = str(info.value)
    assert message.startswith("path: expected ") and f"'{path}'" in message
    assert "\n" not in message      # one line


def test_truncated_npy_files(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, np.arange(10.0))
    raw = good.read_bytes()
    (tmp_path / "short.npy").write_bytes(raw[:-8])
    with pytest.raises(ValueError, match=r"expected 80 bytes of data .* got 72\. The file is "
                                         r"truncated"):
        datasets.load_points(tmp_path / "short.npy")
    (tmp_path / "stub.npy").write_bytes(raw[:20])
    with pytest.raises(ValueError, match=r"stub\.npy.*header cannot be read"):
        datasets.load_points(tmp_path / "stub.npy")
    np.testing.assert_array_equal(datasets.load_points(good)[:, 0], np.arange(10.0))


def test_time_typed_npy_is_refused(tmp_path):
    np.save(tmp_path / "t.npy", np.array([1, 2], dtype="timedelta64[s]"))
    with pytest.raises(ValueError, match=r"^path: expected a real numeric array in 't\.npy'"):
        datasets.load_points(tmp_path / "t.npy")


# --------------------------------------------------------------- CSV number syntax, header
@pytest.mark.parametrize("cell", ["1_000", "１２", "1 000", "0x1A", "٣"])
def test_csv_cells_that_python_float_accepts_are_not_numbers(tmp_path, cell):
    path = _write(tmp_path, "d.csv", f"a,b\n1.0,{cell}\n2.0,3.0\n")
    with pytest.raises(ValueError, match=rf"^path: expected numbers in column 'b' of 'd\.csv', "
                                         rf"got {re.escape(repr(cell))} on line 2"):
        datasets.load_points(path)


@pytest.mark.parametrize("first", ["0,1", "1,2,3", "2019,2020"])
def test_numeric_header_row_is_read_as_data_and_said_so(tmp_path, first):
    width = first.count(",") + 1
    body = "\n".join(",".join(f"{0.5 + i + j / 10:.2f}" for j in range(width)) for i in range(3))
    path = _write(tmp_path, "d.csv", f"{first}\n{body}\n")
    with pytest.warns(UserWarning, match=r"^path: the first line of 'd\.csv' .* is all numbers, "
                                         r"so it was read as data, but it looks like a header"):
        out = datasets.load_points(path)
    assert out.shape == (4, width)
    np.testing.assert_array_equal(out[0], [float(c) for c in first.split(",")])


@pytest.mark.parametrize("content", ["1,2\n3,4\n", "0.5,1\n1.5,2.5\n", "1,7\n0.1,0.2\n1.3,0.4\n",
                                     "3\n1.5\n2.5\n"])
def test_ordinary_first_rows_raise_no_header_warning(tmp_path, content):
    path = _write(tmp_path, "d.csv", content)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        datasets.load_points(path)


@pytest.mark.parametrize("kwargs, err, match", [
    ({"means": [[0.0], [1.0, 2.0]]}, ValueError, r"^means: expected a rectangular array"),
    ({"means": np.array([1, 2], dtype="timedelta64[s]")}, TypeError, r"^means: expected numbers"),
    ({"means": [1 + 1j, 2.0]}, TypeError, r"^means: expected numbers"),
    ({"weights": [[0.5], [0.25, 0.25]]}, ValueError, r"^weights: expected a rectangular array"),
    ({"obs_sd": np.timedelta64(1, "s")}, TypeError, r"^obs_sd: expected a positive number"),
    ({"random_seed": -1}, ValueError, r"^random_seed: expected an integer >= 0"),
    ({"random_seed": 0.5}, TypeError, r"^random_seed: expected an integer"),
])
def test_make_mixture_refuses_ragged_time_complex_and_bad_seeds(kwargs, err, match):
    args = {"n_samples": 10, "means": [0.0, 3.0], "weights": [0.5, 0.5], "obs_sd": 1.0,
            "random_seed": 0, **kwargs}
    with pytest.raises(err, match=match):
        datasets.make_mixture(**args)


def test_numpy_scalars_are_numbers_in_the_generators():
    a, _ = datasets.make_mixture(np.int64(20), [0.0, 3.0], [0.5, 0.5], np.float64(1.0),
                                 random_seed=np.int64(4))
    b, _ = datasets.make_mixture(20, [0.0, 3.0], [0.5, 0.5], 1.0, random_seed=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(datasets.three_clusters_1d(np.int64(1))[0],
                                  datasets.three_clusters_1d(1)[0])
