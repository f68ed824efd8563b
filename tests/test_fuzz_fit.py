"""Hypothesis suite for fit() with the numpy engines (cavi, em, svi), issue 11.

Tiny generated data (including extreme but finite values, duplicates, constant features)
and generated specs and options. Every call either returns a fit whose means, weights,
obs_sd and ELBO/objective are finite, or raises a documented exception: ValueError or
TypeError naming the argument, NotImplementedError, or NumericalError naming the engine.
"""

import warnings

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ppl_mixtures import MixtureSpec, NumericalError, available_engines, fit
from ppl_mixtures.validation import check_data_scale, check_points

ENGINES = ("cavi", "em", "svi")
available_engines()  # import every engine module now (PyTensor raises the recursion limit)
OPTION_NAMES = {
    "random_seed",
    "progressbar",
    "n_draws",
    "max_iter",
    "n_iter",
    "n_init",
    "batch_size",
    "tau",
    "kappa",
    "backend",
    "tol",
    "prior",
    "reg_covar",
}
SPEC_NAMES = {"n_components", "mean_prior_mean", "mean_prior_sd", "obs_sd", "dirichlet_alpha"}


def _mostly(good, bad, good_share=0.8):
    cut = round(10 * good_share)
    return st.integers(0, 9).flatmap(lambda i: good if i < cut else bad)


# values from several magnitudes: unit scale, large, huge (squares overflow), tiny
ELEMENTS = st.one_of(
    st.floats(-5, 5, allow_nan=False),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([0.0, 1e-300, -1e-300, 1e150, -1e150, 1e200, 1.7e308, -1.7e308, 1e9 + 0.5]),
)
POINTS = st.tuples(st.integers(1, 12), st.integers(1, 3)).flatmap(
    lambda shape: hnp.arrays(np.float64, shape, elements=ELEMENTS)
)
SPECS = st.builds(
    MixtureSpec,
    n_components=st.integers(1, 3),
    mean_prior_mean=st.sampled_from([0.0, 5.0, -1e6, 1e6]),
    mean_prior_sd=st.sampled_from([1.0, 1e-6, 1e6, 3.0]),
    weights=st.sampled_from(["dirichlet", "fixed"]),
    dirichlet_alpha=st.sampled_from([1.0, 0.1, 1e-6, 1e6]),
    obs_sd=st.sampled_from([1.0, 1e-6, 1e6, "learned"]),
    precision_prior_shape=st.sampled_from([2.0, 1e-6, 1e6]),
    precision_prior_rate=st.sampled_from([2.0, 1e-6, 1e6]),
    ordered=st.booleans(),
)
SEEDS = _mostly(
    st.one_of(st.none(), st.integers(0, 2**31), st.integers(0, 9).map(np.int64)),
    st.sampled_from([-1, 0.3, True, "1", np.float64(2.0)]),
)
COMMON = {
    "random_seed": SEEDS,
    "progressbar": _mostly(st.just(False), st.sampled_from([None, "no", 0])),
    "n_init": _mostly(st.integers(1, 2), st.sampled_from([0, -1, 1.5])),
    "backend": _mostly(st.sampled_from(["numpy", "numba"]), st.just("gpu")),
}
OPTIONS = {
    "cavi": st.fixed_dictionaries(
        {
            **COMMON,
            "max_iter": st.integers(1, 5),
            "n_draws": _mostly(st.integers(1, 5), st.sampled_from([0, 10**12])),
        }
    ),
    "em": st.fixed_dictionaries(
        {**COMMON, "max_iter": st.integers(1, 5), "prior": st.sampled_from(["none", "map"])},
        optional={"reg_covar": st.sampled_from([0.0, 1e-6, -1.0, np.float64(1e-3)])},
    ),
    "svi": st.fixed_dictionaries(
        {
            **COMMON,
            "n_iter": st.integers(1, 5),
            "batch_size": st.integers(1, 6),
            "n_draws": _mostly(st.integers(1, 5), st.sampled_from([0, 10**12])),
        },
        optional={
            "tau": st.sampled_from([0.0, 1.0, float("inf"), np.int64(3)]),
            "kappa": st.sampled_from([0.7, 1.0, 0.5, 2.0]),
        },
    ),
}


def _check_finite(result):
    for name in ("means", "weights", "obs_sd"):
        if name in result.idata["posterior"]:
            assert np.all(np.isfinite(result.draws(name))), name
    weights = result.draws("weights")
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-9)
    if result.elbo is not None:
        assert np.all(np.isfinite(result.elbo))
    if result.elbo_estimate is not None:
        assert np.isfinite(result.elbo_estimate.value)
    for name in ("log_lik_final", "objective_final"):  # EM's details
        value = getattr(result.details, name, None)
        assert value is None or np.isfinite(value), name


@settings(
    max_examples=200, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(
    st.sampled_from(ENGINES).flatmap(
        lambda engine: st.tuples(st.just(engine), POINTS, SPECS, OPTIONS[engine])
    )
)
def test_fit_returns_finite_numbers_or_a_documented_error(case):
    engine, points, spec, options = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DataScaleWarning, ConvergenceWarning, overflow
        try:
            result = fit(points, spec, engine=engine, **options)
        except NumericalError as err:
            assert f"engine '{engine}'" in str(err) and "standardize" in str(err)
            # only data the scale check flags (so the user was warned) break the numbers
            assert check_data_scale(check_points(points), spec) is not None
            event(f"{engine}: NumericalError")
            return
        except (ValueError, TypeError, NotImplementedError) as err:
            named = str(err).split(":", 1)[0]
            assert named in OPTION_NAMES | SPEC_NAMES | {"points"}, str(err)
            assert "\n" not in str(err)
            event(f"{engine}: {type(err).__name__} naming {named}")
            return
    event(f"{engine}: fitted")
    assert result.engine == engine
    _check_finite(result)
    assert result.draws("means").shape[2:] == (spec.n_components, points.shape[1])
