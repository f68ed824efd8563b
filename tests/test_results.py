"""results.py: the shared idata schema (make_idata), MixtureFit views and immutability.

Wrong shapes and their messages: tests/test_input_checks.py.
"""

import dataclasses
import warnings

import arviz as az
import numpy as np
import pytest

from ppl_mixtures import MixtureSpec
from ppl_mixtures.results import (
    PARAMETERS,
    Estimate,
    EvidenceEstimate,
    MixtureFit,
    Restart,
    Timings,
    make_idata,
    stopwatch,
)

C, S, K, D, N = 2, 40, 3, 2, 7


@dataclasses.dataclass(frozen=True)
class _Details:
    """An engine's details record, as engine modules define them."""

    starts: tuple[float, ...]


def _draws(seed=0, learned=True):
    rng = np.random.default_rng(seed)
    means = np.array([[-2.0, 0.0], [0.0, 1.0], [3.0, -1.0]]) + 0.1 * rng.standard_normal(
        (C, S, K, D)
    )
    weights = rng.dirichlet([10.0, 20.0, 30.0], size=(C, S))
    obs_sd = np.exp(0.1 * rng.standard_normal((C, S, K, D))) if learned else None
    points = rng.standard_normal((N, D))
    return means, weights, obs_sd, points


def _fit(learned=True, **fields):
    means, weights, obs_sd, points = _draws(learned=learned)
    spec = MixtureSpec(n_components=K, obs_sd="learned" if learned else 1.0)
    idata = make_idata(means, weights, points, obs_sd=obs_sd)
    return MixtureFit(engine="toy", spec=spec, idata=idata, **fields)


# ----------------------------------------------------------------------------- schema


def test_make_idata_schema():
    means, weights, obs_sd, points = _draws()
    log_lik = np.random.default_rng(1).standard_normal((C, S, N))
    tree = make_idata(
        means,
        weights,
        points,
        obs_sd=obs_sd,
        log_likelihood=log_lik,
        sample_stats={"lp": np.zeros((C, S))},
        attrs={"engine": "toy"},
    )
    assert set(tree.children) == {"posterior", "observed_data", "log_likelihood", "sample_stats"}
    post = tree["posterior"]
    assert post["means"].dims == ("chain", "draw", "component", "feature")
    assert post["weights"].dims == ("chain", "draw", "component")
    assert post["obs_sd"].dims == ("chain", "draw", "component", "feature")
    np.testing.assert_array_equal(post["component"].values, np.arange(K))
    np.testing.assert_array_equal(post["feature"].values, np.arange(D))
    assert post["component"].dtype.kind == "i" and post["feature"].dtype.kind == "i"
    np.testing.assert_array_equal(post["means"].values, means)
    np.testing.assert_array_equal(post["weights"].values, weights)
    np.testing.assert_array_equal(post["obs_sd"].values, obs_sd)
    assert tree["observed_data"]["x"].dims == ("obs", "feature")
    np.testing.assert_array_equal(tree["observed_data"]["x"].values, points)
    assert tree["log_likelihood"]["x"].dims == ("chain", "draw", "obs")
    np.testing.assert_array_equal(tree["log_likelihood"]["x"].values, log_lik)
    assert tree["sample_stats"]["lp"].dims == ("chain", "draw")
    assert post.attrs["engine"] == "toy"


def test_make_idata_optional_groups_absent():
    means, weights, _, points = _draws(learned=False)
    tree = make_idata(means, weights, points)
    assert set(tree.children) == {"posterior", "observed_data"}
    assert set(tree["posterior"].data_vars) == {"means", "weights"}


def test_make_idata_one_feature_one_draw():
    tree = make_idata(np.zeros((1, 1, 2, 1)), np.full((1, 1, 2), 0.5), np.zeros((5, 1)))
    assert dict(tree["posterior"]["means"].sizes) == {
        "chain": 1,
        "draw": 1,
        "component": 2,
        "feature": 1,
    }


# ----------------------------------------------------------------------------- views


def test_views():
    means, weights, _, points = _draws()
    fit = _fit(timings=Timings(build=1.5, run=2.0), elbo=[-10.0, -5.0], converged=True, n_iter=2)
    assert (fit.n_components, fit.n_features, fit.n_chains, fit.n_draws) == (K, D, C, S)
    np.testing.assert_array_equal(fit.points, points)
    np.testing.assert_array_equal(fit.draws("means"), means)
    np.testing.assert_allclose(fit.posterior_mean("means"), means.mean(axis=(0, 1)))
    np.testing.assert_allclose(fit.posterior_mean("weights"), weights.mean(axis=(0, 1)))
    assert fit.posterior_mean("obs_sd").shape == (K, D)
    assert fit.parameter_names() == PARAMETERS
    assert _fit(learned=False).parameter_names() == ("means", "weights")
    assert set(fit.posterior.data_vars) == {"means", "weights", "obs_sd"}
    assert fit.timings.total == 3.5
    assert fit.timings.to_dict() == {"build": 1.5, "run": 2.0, "total": 3.5}


def test_final_elbo():
    assert _fit().final_elbo is None
    assert _fit(elbo=np.array([-3.0, -1.0])).final_elbo == -1.0
    assert _fit(elbo=np.array([])).final_elbo is None
    # the ELBO estimate wins over the trace (e.g. a smoothed or exact final value)
    assert _fit(elbo=[-3.0, -1.0], elbo_estimate=Estimate(-2.5, 0.1)).final_elbo == -2.5


def test_summary_two_chains():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # arviz must not warn on a well-formed fit
        table = _fit().summary()
    expected = (
        [f"means[{k}, {d}]" for k in range(K) for d in range(D)]
        + [f"weights[{k}]" for k in range(K)]
        + [f"obs_sd[{k}, {d}]" for k in range(K) for d in range(D)]
    )
    assert list(table.index) == expected
    assert {"mean", "sd", "r_hat", "ess_bulk"} <= set(table.columns)
    means, *_ = _draws()
    # the table's mean is the mean over chains and draws, to float64 rounding
    np.testing.assert_allclose(
        table.loc["means[2, 0]", "mean"], means[..., 2, 0].mean(), rtol=1e-12
    )
    only_means = _fit().summary(var_names=["means"])
    assert len(only_means) == K * D
    # az functions work on the tree directly
    assert az.rhat(_fit().idata)["means"].shape == (K, D)


def test_str_and_repr():
    text = str(
        _fit(
            elbo=[-12.3456, -1.23456],
            converged=False,
            n_iter=2,
            timings=Timings(build=0.5, run=0.25),
        )
    )
    assert text.startswith("MixtureFit(engine='toy', K=3, D=2, chains=2, draws=40)")
    assert "time: build 0.50 s, run 0.25 s" in text
    assert "final ELBO: -1.235 nats" in text
    assert "converged: False after 2 iterations" in text
    assert "means (mean): [[" in text and "obs_sd (mean)" in text
    assert repr(_fit()) == str(_fit())
    assert "ELBO" not in str(_fit())


# ----------------------------------------------------------------------------- immutability


def test_fit_is_frozen_and_its_arrays_read_only():
    trace = np.array([-3.0, -2.0, -1.0])
    fit = _fit(elbo=trace, options={"random_seed": 1})
    with pytest.raises(AttributeError):
        fit.engine = "other"
    with pytest.raises(ValueError, match="read-only"):
        fit.elbo[0] = 0.0
    trace[0] = 100.0  # the fit holds a copy: the caller's array stays the caller's
    assert fit.elbo[0] == -3.0 and trace.flags.writeable
    with pytest.raises(TypeError):
        fit.options["random_seed"] = 2
    assert fit.options["random_seed"] == 1
    assert fit.elbo.dtype == np.float64


def test_pickle_round_trip_keeps_every_field_and_read_only_mappings():
    import pickle
    from multiprocessing.reduction import ForkingPickler
    from types import MappingProxyType

    evidence = EvidenceEstimate(-5.0, 0.2, "SMC", runs=(-5.1, -4.9), flags=("below_elbo",))
    fit = _fit(
        elbo=np.array([-3.0, -1.0]),
        options={"random_seed": 1},
        converged=True,
        n_iter=2,
        family="vi",
        timings=Timings(build=1.0, run=2.0),
        elbo_estimate=Estimate(-1.0, 0.05),
        evidence=evidence,
        restarts=(Restart(1, -1.0, "elbo", kept=True), Restart(2, -3.0, "elbo")),
        details=_Details(starts=(0.5, 1.5)),
    )
    for dumps in (pickle.dumps, lambda obj: bytes(ForkingPickler.dumps(obj))):
        back = pickle.loads(dumps(fit))
        assert isinstance(back.options, MappingProxyType)
        assert dict(back.options) == dict(fit.options)
        fields = (
            "engine",
            "spec",
            "converged",
            "n_iter",
            "family",
            "timings",
            "elbo_estimate",
            "evidence",
            "restarts",
            "details",
            "from_cache",
        )
        assert [getattr(back, f) for f in fields] == [getattr(fit, f) for f in fields]
        np.testing.assert_array_equal(back.elbo, fit.elbo)
        np.testing.assert_array_equal(back.draws("means"), fit.draws("means"))
        assert back.fingerprint == fit.fingerprint
        with pytest.raises(TypeError):
            back.options["random_seed"] = 2
        with pytest.raises(ValueError, match="read-only"):
            back.elbo[0] = 0.0
        with pytest.raises(AttributeError):
            back.engine = "other"
    # the live fit keeps its read-only mappings after being pickled
    assert isinstance(fit.options, MappingProxyType)


def test_options_are_a_copy_of_the_callers_dict():
    options = {"a": 1}
    fit = _fit(options=options)
    options["a"] = 2
    assert fit.options["a"] == 1


def test_replace_returns_a_new_fit():
    fit = _fit(n_iter=3)
    other = fit.replace(n_iter=4, engine="renamed")
    assert (fit.n_iter, fit.engine) == (3, "toy") and (other.n_iter, other.engine) == (4, "renamed")
    assert other.idata is fit.idata
    # identity equality (eq=False): DataTrees do not compare cheaply
    assert fit != other and fit != fit.replace()


def test_stopwatch():
    with stopwatch() as timer:
        sum(range(1000))
    assert timer.seconds > 0.0
    with pytest.raises(RuntimeError), stopwatch() as failed:
        raise RuntimeError
    assert failed.seconds > 0.0  # timed even when the block raises


# ----------------------------------------------------------------------------- identity
def test_fingerprint_identifies_spec_and_data():
    means, weights, obs_sd, points = _draws()
    spec = MixtureSpec(n_components=K, obs_sd="learned")

    def fit_of(pts, spec=spec, engine="toy"):
        return MixtureFit(
            engine=engine, spec=spec, idata=make_idata(means, weights, pts, obs_sd=obs_sd)
        )

    base = fit_of(points)
    # equal values in another array, another engine, other draws: the same question
    assert fit_of(points.copy(), engine="other").fingerprint == base.fingerprint
    assert len(base.fingerprint) == 64 and int(base.fingerprint, 16) >= 0  # sha256 hex
    nudged = points.copy()
    nudged[2, 1] = np.nextafter(nudged[2, 1], np.inf)  # one ulp
    assert fit_of(nudged).data_fingerprint != base.data_fingerprint
    assert fit_of(nudged).spec_fingerprint == base.spec_fingerprint
    other_prior = fit_of(
        points, spec=MixtureSpec(n_components=K, obs_sd="learned", mean_prior_sd=2.0)
    )
    assert other_prior.spec_fingerprint != base.spec_fingerprint
    assert other_prior.data_fingerprint == base.data_fingerprint
    assert other_prior.fingerprint != base.fingerprint
    # a different transform of the weights is the same model
    simplex = fit_of(
        points, spec=MixtureSpec(n_components=K, obs_sd="learned", weights_transform="simplex")
    )
    assert simplex.fingerprint == base.fingerprint


def test_fingerprint_sees_the_shape_not_only_the_bytes():
    means = np.zeros((1, 1, 2, 2))
    weights = np.full((1, 1, 2), 0.5)
    six = np.arange(12.0)
    a = MixtureFit(
        engine="t", spec=MixtureSpec(2), idata=make_idata(means, weights, six.reshape(6, 2))
    )
    means3 = np.zeros((1, 1, 2, 3))
    b = MixtureFit(
        engine="t", spec=MixtureSpec(2), idata=make_idata(means3, weights, six.reshape(4, 3))
    )
    assert a.points.tobytes() == b.points.tobytes()
    assert a.data_fingerprint != b.data_fingerprint


def test_family_is_recorded():
    assert _fit().family is None
    assert _fit(family="vi").family == "vi"


# ----------------------------------------------------------------------------- plots
def test_importing_results_does_not_import_matplotlib():
    import subprocess
    import sys

    code = "import sys, ppl_mixtures.results; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_plot_methods_draw_this_fit_and_pass_options_through():
    from matplotlib.figure import Figure

    fit = _fit()
    data = fit.plot_data(feature_names=["x", "y"], units="cm")
    assert isinstance(data, Figure)
    (ax,) = [a for a in data.axes if a.get_visible()]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x (cm)", "y (cm)")
    assert np.allclose(ax.collections[0].get_offsets(), fit.points)  # default: fit.points
    other = np.arange(8.0).reshape(4, 2)
    assert np.allclose(fit.plot_data(other).axes[0].collections[0].get_offsets(), other)
    marginals = fit.plot_marginals(parameters=["means[2,1]"], units="cm")
    assert [a.get_xlabel() for a in marginals.axes if a.get_visible()] == ["mean of feature 1 (cm)"]
    trace = fit.plot_trace(max_parameters=2, title="toy trace")
    assert trace.get_suptitle() == "toy trace" and len(trace.axes) == 2 * 2
    assert [a.get_ylabel() for a in trace.axes[::2]] == ["means[0,0]", "means[0,1]"]


def test_make_idata_stores_a_covariance_with_its_sds_and_correlations():
    """obs_cov (chain, draw, K, D, D) is stored with obs_sd = sqrt(diag) and obs_corr, the
    forms tables and figures read; the correlation's diagonal is exactly 1."""
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(2, 3, 2, 3, 3))
    cov = factors @ np.swapaxes(factors, -1, -2) + np.eye(3)
    tree = make_idata(
        rng.normal(size=(2, 3, 2, 3)), np.full((2, 3, 2), 0.5), rng.normal(size=(5, 3)), obs_cov=cov
    )
    post = tree["posterior"]
    assert post["obs_cov"].dims == ("chain", "draw", "component", "feature", "feature_b")
    np.testing.assert_array_equal(post["obs_cov"].values, cov)
    sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
    np.testing.assert_array_equal(post["obs_sd"].values, sd)
    corr = post["obs_corr"].values
    np.testing.assert_allclose(corr * sd[..., :, None] * sd[..., None, :], cov, rtol=1e-14)
    np.testing.assert_array_equal(np.diagonal(corr, axis1=-2, axis2=-1), 1.0)
    with pytest.raises(ValueError, match="obs_cov: expected shape"):
        make_idata(
            rng.normal(size=(2, 3, 2, 3)),
            np.full((2, 3, 2), 0.5),
            rng.normal(size=(5, 3)),
            obs_cov=cov[..., :2, :2],
        )
