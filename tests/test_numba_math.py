"""The vectorizable exp / log of ppl_mixtures.kernels.numba_math against numpy, over their ranges."""

import numba
import numpy as np

from ppl_mixtures.kernels import numba_math as nm


@numba.njit(cache=False)
def _apply(kind, values):
    out = np.empty_like(values)
    for j in range(values.shape[0]):
        if kind == 0:
            out[j] = nm.exp2_nonpositive(values[j])
        elif kind == 1:
            out[j] = nm.exp_nonpositive(values[j])
        else:
            out[j] = nm.log_positive(values[j])
    return out


def _max_relative_error(ours, exact):
    return float(np.max(np.abs(ours - exact) / np.abs(exact)))


def test_exp2_matches_numpy_to_two_ulp_and_is_exact_at_integers():
    rng = np.random.default_rng(0)
    t = np.concatenate(
        [
            -rng.uniform(0, 1, 200_000),
            -rng.uniform(0, 1020, 200_000),
            -np.arange(0.0, 1021.0),
            [-0.5, -1e-300, -0.0],
        ]
    )
    ours = _apply(0, t)
    assert _max_relative_error(ours, np.exp2(t)) <= 5e-16
    np.testing.assert_array_equal(_apply(0, -np.arange(0.0, 1021.0)), np.exp2(-np.arange(1021.0)))
    assert _apply(0, np.array([0.0]))[0] == 1.0  # the max term is exactly 1


def test_exp2_is_zero_at_and_below_its_floor_never_subnormal():
    t = np.array([nm.EXP2_FLOOR, nm.EXP2_FLOOR - 0.5, -1074.0, -1e5, -np.inf])
    np.testing.assert_array_equal(_apply(0, t), 0.0)
    just_above = _apply(0, np.array([nm.EXP2_FLOOR + 1e-9]))[0]
    assert just_above >= np.finfo(np.float64).tiny  # normal, not subnormal


def test_exp_matches_numpy_and_passes_nan_and_minus_inf():
    rng = np.random.default_rng(1)
    x = np.concatenate([-rng.uniform(0, 1, 100_000), -rng.uniform(0, 700, 100_000)])
    ours = _apply(1, x)
    # the scaling x log2(e) rounds: the error grows like |x| ulp
    assert np.all(np.abs(ours - np.exp(x)) <= 4e-16 * (1 + np.abs(x)) * np.exp(x))
    special = _apply(1, np.array([np.nan, -np.inf, -800.0]))
    assert np.isnan(special[0]) and special[1] == 0.0 and special[2] == 0.0


def test_log_matches_numpy_to_two_ulp():
    rng = np.random.default_rng(2)
    t = np.concatenate(
        [
            rng.uniform(1, 3, 100_000),
            10.0 ** rng.uniform(-300, 300, 100_000),
            [1.0, 2.0, np.sqrt(2.0), np.finfo(np.float64).tiny],
        ]
    )
    ours = _apply(2, t)
    exact = np.log(t)
    nonzero = exact != 0
    assert _max_relative_error(ours[nonzero], exact[nonzero]) <= 5e-16
    assert ours[~nonzero].tolist() == [0.0]
    assert np.isnan(_apply(2, np.array([np.nan]))[0])
