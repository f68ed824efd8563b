"""Datasets: seed data reproduced exactly, synthetic mixtures, Old Faithful, and load_points.

Bad arguments and bad files, and their messages: tests/test_input_checks.py (one table).
"""

import logging
import warnings

import numpy as np
import pytest

from ppl_mixtures import datasets

# ----------------------------------------------------------------------------- seed 001


#: Seed 001's notebook: its component means and weights, as its code writes them.
SEED_001_MEANS = [[-1, -1.5], [1, 1]]
SEED_001_WEIGHTS = [0.2, 0.8]
#: Tolerances are Z standard errors: |estimate - truth| > 4 SE has probability < 1e-4 for a
#: correct generator under any seed (a normal tail), so a failure means a wrong generator.
Z = 4.0


def _se_mean(sd, n):
    """Standard error of a sample mean of n draws with standard deviation sd."""
    return np.asarray(sd) / np.sqrt(n)


def _se_proportion(p, n):
    """Standard error of a sample proportion (binomial)."""
    return np.sqrt(np.asarray(p) * (1 - np.asarray(p)) / n)


def _rel_se_sd(n):
    """Relative standard error of a normal sample's sd: sd(s) / sigma ~ 1 / sqrt(2 (n - 1))."""
    return 1 / np.sqrt(2 * (n - 1))


def _assert_within(estimate, truth, tolerance):
    """|estimate - truth| <= tolerance entrywise (tolerance may differ per entry)."""
    error = np.abs(np.asarray(estimate) - np.asarray(truth))
    assert np.all(error <= tolerance), (estimate, truth, tolerance)


def _seed_001_generator(n_first=100, n_second=None):
    """The notebook's code, verbatim (the oracle for bit-for-bit reproduction)."""
    rng = np.random.RandomState(123)
    ms = np.array(SEED_001_MEANS)
    ps = np.array(SEED_001_WEIGHTS)
    out = []
    for n_samples in (n_first, n_second):
        if n_samples is None:
            break
        zs = np.array([rng.multinomial(1, ps) for _ in range(n_samples)]).T
        xs = [
            z[:, np.newaxis] * rng.multivariate_normal(m, np.eye(2), size=n_samples)
            for z, m in zip(zs, ms, strict=True)
        ]
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
    np.testing.assert_array_equal(datasets.ADVI_NOTEBOOK_MEANS, SEED_001_MEANS)
    np.testing.assert_array_equal(datasets.ADVI_NOTEBOOK_WEIGHTS, SEED_001_WEIGHTS)
    # each component's points centre on its mean: identity covariance, so each coordinate
    # of the centre has standard error 1 / sqrt(n_k)
    points = datasets.advi_notebook_points(100)
    for k in (0, 1):
        cluster = points[labels == k]
        _assert_within(
            cluster.mean(axis=0),
            datasets.ADVI_NOTEBOOK_MEANS[k],
            Z * _se_mean(datasets.ADVI_NOTEBOOK_OBS_SD, len(cluster)),
        )


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
    _assert_within(
        [np.mean(labels == 0), np.mean(labels == 1)],
        SEED_001_WEIGHTS,
        Z * _se_proportion(0.2, len(labels)),
    )
    np.testing.assert_array_equal(points[:50], datasets.advi_notebook_large_points()[:50])


# ----------------------------------------------------------------------------- seeds 000, 002


def test_three_clusters_1d():
    points, labels = datasets.three_clusters_1d()
    assert points.shape == (1000,) and labels.shape == (1000,)
    np.testing.assert_array_equal(np.bincount(labels), [333, 333, 334])
    for k, mean in enumerate(datasets.THREE_CLUSTERS_1D_MEANS):
        cluster = points[labels == k]  # sd 1 each
        _assert_within(cluster.mean(), mean, Z * _se_mean(1.0, cluster.size))
        np.testing.assert_allclose(cluster.std(), 1.0, rtol=Z * _rel_se_sd(cluster.size))
    np.testing.assert_array_equal(points, datasets.three_clusters_1d()[0])
    assert not np.array_equal(points, datasets.three_clusters_1d(random_seed=1)[0])


def test_three_clusters_2d():
    points, labels = datasets.three_clusters_2d()
    assert points.shape == (300, 2)
    np.testing.assert_array_equal(np.bincount(labels), datasets.THREE_CLUSTERS_2D_SIZES)
    for k in range(3):
        cluster = points[labels == k]
        sd = datasets.THREE_CLUSTERS_2D_OBS_SD[k]
        _assert_within(
            cluster.mean(0), datasets.THREE_CLUSTERS_2D_MEANS[k], Z * _se_mean(sd, len(cluster))
        )
        np.testing.assert_allclose(cluster.std(0), sd, rtol=Z * _rel_se_sd(len(cluster)))
    np.testing.assert_array_equal(points, datasets.three_clusters_2d()[0])


# ----------------------------------------------------------------------------- make_mixture


def test_make_mixture_recovers_its_parameters():
    means = [[-3.0, 0.0], [3.0, 1.0], [0.0, 5.0]]
    sds = [[0.5, 1.0], [1.0, 2.0], [0.2, 0.3]]
    points, labels = datasets.make_mixture(20_000, means, [0.5, 0.3, 0.2], sds, random_seed=3)
    assert points.shape == (20_000, 2) and labels.dtype.kind == "i"
    weights = [0.5, 0.3, 0.2]
    _assert_within(np.bincount(labels) / 20_000, weights, Z * _se_proportion(weights, 20_000))
    for k in range(3):
        cluster = points[labels == k]
        _assert_within(cluster.mean(0), means[k], Z * _se_mean(sds[k], len(cluster)))
        np.testing.assert_allclose(cluster.std(0), sds[k], rtol=Z * _rel_se_sd(len(cluster)))


def test_make_mixture_seeded_and_shapes():
    a = datasets.make_mixture(50, [[0, 0], [1, 1]], [0.5, 0.5], 1.0, random_seed=7)
    b = datasets.make_mixture(50, [[0, 0], [1, 1]], [0.5, 0.5], 1.0, random_seed=7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    one_d, labels = datasets.make_mixture(400, [-5.0, 5.0], [0.5, 0.5], [0.1, 1.0], random_seed=0)
    assert one_d.shape == (400,)
    # 1-D means with a (K,) obs_sd: one sd per component
    for k, sd in enumerate([0.1, 1.0]):
        cluster = one_d[labels == k]
        np.testing.assert_allclose(cluster.std(), sd, rtol=Z * _rel_se_sd(cluster.size))
    per_feature, _ = datasets.make_mixture(10, [[0, 0, 0]], [1.0], [1.0, 2.0, 3.0], random_seed=0)
    assert per_feature.shape == (10, 3)


# ----------------------------------------------------------------------------- Old Faithful


def test_old_faithful():
    points = datasets.old_faithful()
    assert points.shape == (272, 2) and points.dtype == np.float64
    assert len(datasets.OLD_FAITHFUL_FEATURES) == len(datasets.OLD_FAITHFUL_COLUMNS) == 2
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


# ----------------------------------------------------------------------------- load_points


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_csv_with_header_and_columns(tmp_path):
    path = _write(tmp_path, "d.csv", "id,a,b\nx1,1.5,2\nx2,3,4e1\n")
    np.testing.assert_array_equal(
        datasets.load_points(path, columns=["a", "b"]), [[1.5, 2.0], [3.0, 40.0]]
    )
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
    path.write_text(
        "eruptions,waiting\n" + "\n".join(f"{float(a)!r},{float(b)!r}" for a, b in points)
    )
    np.testing.assert_array_equal(datasets.load_points(path), points)


def test_load_npy(tmp_path):
    arr = np.arange(6.0).reshape(3, 2)
    np.save(tmp_path / "a.npy", arr)
    np.testing.assert_array_equal(datasets.load_points(tmp_path / "a.npy"), arr)
    np.testing.assert_array_equal(datasets.load_points(tmp_path / "a.npy", columns=[1]), arr[:, 1:])
    np.save(tmp_path / "b.npy", np.arange(4))
    assert datasets.load_points(tmp_path / "b.npy").shape == (4, 1)


def test_load_npy_dropna(tmp_path):
    np.save(tmp_path / "a.npy", np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 3.0]]))
    np.testing.assert_array_equal(
        datasets.load_points(tmp_path / "a.npy", dropna=True), [[1.0, 2.0], [3.0, 3.0]]
    )


MISSING_CSV = "a,b\n1,2\n,3\n4,NaN\n5,6\n7,NA\n8,\n9,9\n10,\n"


def test_load_csv_dropna_drops_and_logs(tmp_path, caplog):
    path = _write(tmp_path, "m.csv", MISSING_CSV)
    with caplog.at_level(logging.WARNING, logger="ppl_mixtures.datasets"):
        out = datasets.load_points(path, dropna=True)
    np.testing.assert_array_equal(out, [[1, 2], [5, 6], [9, 9]])
    assert "dropped 5 rows with missing values (lines 3, 4, 6, 7, 9)" in caplog.text
    # only the chosen columns count
    np.testing.assert_array_equal(
        datasets.load_points(path, columns=["a"], dropna=True)[:, 0], [1, 4, 5, 7, 8, 9, 10]
    )


# --------------------------------------------------------------- CSV number syntax, header
@pytest.mark.parametrize("first", ["0,1", "1,2,3", "2019,2020"])
def test_numeric_header_row_is_read_as_data_and_said_so(tmp_path, first):
    width = first.count(",") + 1
    body = "\n".join(",".join(f"{0.5 + i + j / 10:.2f}" for j in range(width)) for i in range(3))
    path = _write(tmp_path, "d.csv", f"{first}\n{body}\n")
    with pytest.warns(
        UserWarning,
        match=r"^path: the first line of 'd\.csv' .* is all numbers, "
        r"so it was read as data, but it looks like a header",
    ):
        out = datasets.load_points(path)
    assert out.shape == (4, width)
    np.testing.assert_array_equal(out[0], [float(c) for c in first.split(",")])


@pytest.mark.parametrize(
    "content", ["1,2\n3,4\n", "0.5,1\n1.5,2.5\n", "1,7\n0.1,0.2\n1.3,0.4\n", "3\n1.5\n2.5\n"]
)
def test_ordinary_first_rows_raise_no_header_warning(tmp_path, content):
    path = _write(tmp_path, "d.csv", content)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        datasets.load_points(path)


def test_numpy_scalars_are_numbers_in_the_generators():
    a, _ = datasets.make_mixture(
        np.int64(20), [0.0, 3.0], [0.5, 0.5], np.float64(1.0), random_seed=np.int64(4)
    )
    b, _ = datasets.make_mixture(20, [0.0, 3.0], [0.5, 0.5], 1.0, random_seed=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        datasets.three_clusters_1d(np.int64(1))[0], datasets.three_clusters_1d(1)[0]
    )
