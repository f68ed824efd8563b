"""fit(): the dispatcher validates spec, engine, options and points before any engine runs.

A fake registry (monkeypatched) keeps this file independent of the real engines.
"""

import numpy as np
import pytest

import ppl_mixtures
import ppl_mixtures.inference.registry as engines_module
from ppl_mixtures import MixtureFit, MixtureSpec, fit
from ppl_mixtures.inference.registry import Engine, available_engines, get_engine
from ppl_mixtures.results import make_idata

SPEC = MixtureSpec(n_components=2, obs_sd=1.0)


class _Recorder:
    """A tiny engine: records what it was called with, returns a one-draw fit."""

    def __init__(self):
        self.calls = []

    def fit(self, points, spec, *, draws=5, random_seed=None, progressbar=True):
        self.calls.append((points, spec, {"draws": draws, "random_seed": random_seed,
                                          "progressbar": progressbar}))
        K, D = spec.n_components, points.shape[1]
        means = np.zeros((1, 1, K, D))
        weights = np.full((1, 1, K), 1.0 / K)
        return MixtureFit(engine="toy", spec=spec, idata=make_idata(means, weights, points),
                          options={"draws": draws, "random_seed": random_seed})


@pytest.fixture
def recorder(monkeypatch):
    rec = _Recorder()
    registry = {
        "toy": Engine(name="toy", fit=rec.fit, summary="records its calls", family="point",
                      quick_options={"draws": 1}),
        "other": Engine(name="other", fit=rec.fit, summary="same", family="mcmc"),
    }
    monkeypatch.setattr(engines_module, "_REGISTRY", registry)
    monkeypatch.setattr(engines_module, "_IMPORT_ERRORS", {})
    return rec


def test_dispatches_validated_points_and_options(recorder):
    data = [[1, 2], [3, 4], [5, 6]]  # ints, nested lists
    result = fit(data, SPEC, engine="toy", draws=7, random_seed=3)
    assert isinstance(result, MixtureFit)
    [(points, spec, options)] = recorder.calls
    assert isinstance(points, np.ndarray) and points.dtype == np.float64 and points.shape == (3, 2)
    np.testing.assert_array_equal(points, data)
    assert spec is SPEC
    assert options == {"draws": 7, "random_seed": 3, "progressbar": True}
    assert result.options["random_seed"] == 3


def test_the_engines_family_is_recorded_when_the_fit_has_none(recorder):
    # the toy engine returns family=None; the registry says "point" for toy, "mcmc" for other
    assert fit([[0.0], [1.0]], SPEC, engine="toy").family == "point"
    assert fit([[0.0], [1.0]], SPEC, engine="other").family == "mcmc"


def test_a_family_the_engine_recorded_is_kept(recorder, monkeypatch):
    def vi_fit(points, spec):
        return recorder.fit(points, spec).replace(family="vi")

    monkeypatch.setitem(engines_module._REGISTRY, "toy",
                        Engine(name="toy", fit=vi_fit, summary="s", family="point"))
    assert fit([[0.0], [1.0]], SPEC, engine="toy").family == "vi"


def test_one_d_points_reach_the_engine_as_one_column(recorder):
    fit(np.array([0.0, 1.0, 2.0]), SPEC, engine="toy")
    assert recorder.calls[0][0].shape == (3, 1)


def test_points_are_not_modified(recorder):
    data = np.array([[1.0, 2.0], [3.0, 4.0]])
    before = data.copy()
    fit(data, SPEC, engine="toy")
    passed = recorder.calls[0][0]
    assert not np.shares_memory(passed, data)
    np.testing.assert_array_equal(data, before)


def test_rejects_a_non_spec(recorder):
    with pytest.raises(TypeError, match=r"^spec: expected a MixtureSpec, got dict\. Build one with "
                                        r"MixtureSpec\(n_components=\.\.\.\)\.$"):
        fit([[0.0]], {"n_components": 1}, engine="toy")
    assert recorder.calls == []


def test_unknown_engine_lists_the_engines(recorder):
    with pytest.raises(ValueError, match=r"^engine: expected one of other, toy, got 'nuts_typo'\. "
                                         r"Pick one of those"):
        fit([[0.0], [1.0]], SPEC, engine="nuts_typo")
    with pytest.raises(ValueError, match=r"^engine: expected one of other, toy, got None"):
        fit([[0.0], [1.0]], SPEC, engine=None)
    assert recorder.calls == []


def test_unknown_option_lists_the_valid_ones(recorder):
    with pytest.raises(TypeError, match=r"^options: engine 'toy' got unknown option\(s\) 'n_draws'\. "
                                        r"Valid options for 'toy': draws, random_seed, "
                                        r"progressbar\.$"):
        fit([[0.0], [1.0]], SPEC, engine="toy", n_draws=10)
    assert recorder.calls == []


@pytest.mark.parametrize("points, err, match", [
    ([[0.0, np.nan], [1.0, 1.0]], ValueError, r"^points: expected finite values"),
    ([["a", "b"]], TypeError, r"^points: expected numbers"),
    (np.zeros((2, 2, 2)), ValueError, r"^points: expected a 1-D or 2-D array"),
    ([[0.0]], ValueError, r"^n_components: expected at most n_samples=1 components, got 2"),
])
def test_points_are_validated_before_the_engine_runs(recorder, points, err, match):
    with pytest.raises(err, match=match):
        fit(points, SPEC, engine="toy")
    assert recorder.calls == []


def test_spec_features_checked_against_the_data(recorder):
    spec = MixtureSpec(n_components=2, mean_prior_mean=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"^mean_prior_mean: expected a scalar or 2 values \(one "
                                         r"per feature of the data\), got 3 values"):
        fit(np.zeros((4, 2)), spec, engine="toy")
    assert recorder.calls == []


def test_registry_views(recorder):
    engines = available_engines()
    assert list(engines) == ["toy", "other"]
    with pytest.raises(TypeError):
        engines["new"] = engines["toy"]  # a read-only view
    assert get_engine("toy").quick_options == {"draws": 1}
    with pytest.raises(TypeError):
        get_engine("toy").quick_options["draws"] = 2
    assert ppl_mixtures.fit is fit


def test_engine_record_is_frozen():
    engine = Engine(name="x", fit=lambda points, spec: None, summary="s", family="vi")
    with pytest.raises(AttributeError):
        engine.name = "y"
    assert engine.scalable is False and dict(engine.large_data_options) == {}


def test_every_registered_engine_honours_the_contract(monkeypatch):
    """The real registry: every module imports, options keyword-only, quick/large options
    valid, unique names."""
    import inspect

    from ppl_mixtures.validation import check_engine_options

    monkeypatch.setattr(engines_module, "_IMPORT_ERRORS", {})
    registry = engines_module._discover()
    assert engines_module._IMPORT_ERRORS == {}
    assert registry, "no engine registered"
    for name, engine in registry.items():
        assert engine.name == name and engine.family in ("mcmc", "vi", "point")
        params = list(inspect.signature(engine.fit).parameters.values())
        assert [p.name for p in params[:2]] == ["points", "spec"], name
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[2:]), name
        assert {"random_seed", "progressbar"} <= {p.name for p in params[2:]}, name
        check_engine_options(name, engine.fit, engine.quick_options)
        check_engine_options(name, engine.fit, engine.large_data_options)
        if engine.large_data_options:
            assert engine.scalable, name


# --------------------------------------------------------------- finite fits, data scale
def _broken_engine(monkeypatch, *, means_value=0.0, weights_value=None, elbo=None, extras=None):
    """Register 'broken': an engine returning the given (possibly non-finite) numbers."""
    def broken_fit(points, spec, *, random_seed=None, progressbar=True):
        K, D = spec.n_components, points.shape[1]
        weights = np.full((1, 1, K), 1.0 / K if weights_value is None else weights_value)
        return MixtureFit(engine="broken", spec=spec,
                          idata=make_idata(np.full((1, 1, K, D), means_value), weights, points),
                          elbo=elbo, extras=extras or {})
    registry = {"broken": Engine(name="broken", fit=broken_fit, summary="s", family="vi")}
    monkeypatch.setattr(engines_module, "_REGISTRY", registry)
    monkeypatch.setattr(engines_module, "_IMPORT_ERRORS", {})


@pytest.mark.parametrize("kwargs, named", [
    ({"means_value": np.nan}, r"4 of 4 means values"),
    ({"weights_value": np.inf}, r"2 of 2 weights values"),
    ({"elbo": np.array([-10.0, np.nan, -9.0])}, r"1 of 3 ELBO trace entries"),
    ({"extras": {"elbo_final": -np.inf}}, r"elbo_final=-inf"),
])
def test_non_finite_fits_are_never_returned(monkeypatch, kwargs, named):
    _broken_engine(monkeypatch, **kwargs)
    with pytest.raises(ppl_mixtures.NumericalError,
                       match=rf"^engine 'broken' returned non-finite numbers: {named} are NaN "
                             r"or inf\. Likely cause: data far from the priors' scale.*"
                             r"standardize"):
        fit(np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]), SPEC, engine="broken")
    assert issubclass(ppl_mixtures.NumericalError, RuntimeError)


def test_finite_fit_passes_the_check(monkeypatch):
    _broken_engine(monkeypatch, elbo=np.array([-3.0, -2.0]), extras={"elbo_final": -2.0})
    result = fit(np.array([[0.0, 1.0], [1.0, 0.0]]), SPEC, engine="broken")
    assert result.engine == "broken"


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore::ppl_mixtures.ConvergenceWarning")
def test_real_engines_raise_numerical_error_on_overflowing_data():
    """Values near 1e200 are finite, but their squares overflow: no NaN fit comes back."""
    points = np.random.default_rng(0).normal(size=(12, 1)) * 1e200
    for engine, options in (("cavi", {"max_iter": 5}), ("em", {"max_iter": 5}),
                            ("svi", {"n_iter": 5, "batch_size": 4})):
        with pytest.warns(ppl_mixtures.DataScaleWarning), \
                pytest.raises(ppl_mixtures.NumericalError, match=rf"engine '{engine}'.*"
                                                                  r"standardize"):
            fit(points, SPEC, engine=engine, n_init=1, random_seed=0, progressbar=False,
                **options)


def test_data_scale_warning_names_standardize_and_the_fit_still_runs(recorder):
    points = np.random.default_rng(1).normal(size=(20, 2)) + 1e9
    with pytest.warns(ppl_mixtures.DataScaleWarning,
                      match=r"^points: feature 0 has mean 1e\+09, more than 10 prior sds.*"
                            r"datasets\.standardize"):
        fit(points, SPEC, engine="toy")
    assert len(recorder.calls) == 1
    assert issubclass(ppl_mixtures.DataScaleWarning, UserWarning)


def test_no_data_scale_warning_on_the_demo_datasets(recorder):
    import warnings

    from ppl_mixtures import datasets
    cases = [
        (datasets.advi_notebook_points(),
         MixtureSpec(2, mean_prior_sd=1, dirichlet_alpha=0.1, obs_sd=1)),
        (datasets.three_clusters_1d()[0],
         MixtureSpec(3, mean_prior_sd=np.sqrt(10), weights="fixed", obs_sd=1)),
        (datasets.standardize(datasets.old_faithful())[0], MixtureSpec(2, obs_sd="learned")),
    ]
    for points, spec in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ppl_mixtures.DataScaleWarning)
            fit(points, spec, engine="toy")
    assert len(recorder.calls) == len(cases)


def test_points_labels_tuple_is_named(recorder):
    from ppl_mixtures import datasets
    spec = MixtureSpec(3, mean_prior_sd=np.sqrt(10), weights="fixed", obs_sd=1)
    with pytest.raises(TypeError, match=r"points: .*\(points, labels\) tuple.*"
                                        r"datasets\.three_clusters_1d\(\)\[0\]"):
        fit(datasets.three_clusters_1d(), spec, engine="toy")
    assert recorder.calls == []
