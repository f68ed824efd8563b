"""fit(): the dispatcher hands validated input to the engine and never returns NaN numbers.

A fake registry (``registry.available_engines`` monkeypatched) keeps most of this file
independent of the real engines. Bad input and its messages: tests/test_input_checks.py.
"""

import dataclasses
import importlib
import inspect
import pkgutil
from types import MappingProxyType

import numpy as np
import pytest

import ppl_mixtures
from ppl_mixtures import MixtureFit, MixtureSpec, fit
from ppl_mixtures.inference import registry
from ppl_mixtures.inference.registry import Engine
from ppl_mixtures.results import Estimate, make_idata

SPEC = MixtureSpec(n_components=2, obs_sd=1.0)


class _Recorder:
    """A tiny engine: records what it was called with, returns a one-draw fit."""

    def __init__(self):
        self.calls = []

    def fit(self, points, spec, *, draws=5, random_seed=None, progressbar=True):
        self.calls.append(
            (points, spec, {"draws": draws, "random_seed": random_seed, "progressbar": progressbar})
        )
        K, D = spec.n_components, points.shape[1]
        means = np.zeros((1, 1, K, D))
        weights = np.full((1, 1, K), 1.0 / K)
        return MixtureFit(
            engine="toy",
            spec=spec,
            idata=make_idata(means, weights, points),
            options={"draws": draws, "random_seed": random_seed},
        )


def _use_engines(monkeypatch, *engines):
    """fit() sees exactly ``engines`` (the public lookup is replaced for one test)."""
    table = {engine.name: engine for engine in engines}
    monkeypatch.setattr(registry, "available_engines", lambda: MappingProxyType(table))


@pytest.fixture
def recorder(monkeypatch):
    rec = _Recorder()
    _use_engines(
        monkeypatch,
        Engine(name="toy", fit=rec.fit, summary="records its calls", family="point"),
        Engine(name="other", fit=rec.fit, summary="same", family="mcmc"),
    )
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

    _use_engines(monkeypatch, Engine(name="toy", fit=vi_fit, summary="s", family="point"))
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


def test_every_registered_engine_honours_the_contract():
    """The real registry: every engine module imports and registers its ENGINES, names are
    unique, families known, ``fit(points, spec, ...)`` takes options by keyword only, and
    every engine accepts ``random_seed`` and ``progressbar``."""
    registered = registry.available_engines()
    declared = []
    for package in registry.ENGINE_PACKAGES:
        for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
            if not info.name.startswith("_"):  # an import error fails this test with its cause
                module = importlib.import_module(f"{package}.{info.name}")
                declared += [engine.name for engine in getattr(module, "ENGINES", ())]
    assert declared and sorted(declared) == sorted(registered)
    for name, engine in registered.items():
        assert engine.name == name and engine.family in ("mcmc", "vi", "point")
        params = list(inspect.signature(engine.fit).parameters.values())
        assert [p.name for p in params[:2]] == ["points", "spec"], name
        if engine.options is not None:  # an options dataclass: its fields are the options
            options = {f.name for f in dataclasses.fields(engine.options) if f.init}
        else:
            assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[2:]), name
            options = {p.name for p in params[2:]}
        assert {"random_seed", "progressbar"} <= options, name
    with pytest.raises(TypeError):
        registered["new"] = registered[declared[0]]  # a read-only view
    assert ppl_mixtures.available_engines() == registered


# --------------------------------------------------------------- finite fits, data scale
@dataclasses.dataclass(frozen=True)
class _EMDetails:
    """What EM's details carry that check_finite_fit reads."""

    log_lik_final: float
    objective_final: float


def _broken_engine(
    monkeypatch, *, means_value=0.0, weights_value=None, elbo=None, elbo_estimate=None, details=None
):
    """Register 'broken': an engine returning the given (possibly non-finite) numbers."""

    def broken_fit(points, spec, *, random_seed=None, progressbar=True):
        K, D = spec.n_components, points.shape[1]
        weights = np.full((1, 1, K), 1.0 / K if weights_value is None else weights_value)
        return MixtureFit(
            engine="broken",
            spec=spec,
            idata=make_idata(np.full((1, 1, K, D), means_value), weights, points),
            elbo=elbo,
            elbo_estimate=elbo_estimate,
            details=details,
        )

    _use_engines(monkeypatch, Engine(name="broken", fit=broken_fit, summary="s", family="vi"))


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"means_value": np.nan}, r"4 of 4 means values"),
        ({"weights_value": np.inf}, r"2 of 2 weights values"),
        ({"elbo": np.array([-10.0, np.nan, -9.0])}, r"1 of 3 ELBO trace entries"),
        ({"elbo_estimate": Estimate(-np.inf, 0.0)}, r"elbo_estimate\.value=-inf"),
        ({"details": _EMDetails(np.nan, -1.0)}, r"details\.log_lik_final=nan"),
        ({"details": _EMDetails(-1.0, np.inf)}, r"details\.objective_final=inf"),
    ],
)
def test_non_finite_fits_are_never_returned(monkeypatch, kwargs, named):
    _broken_engine(monkeypatch, **kwargs)
    with pytest.raises(
        ppl_mixtures.NumericalError,
        match=rf"^engine 'broken' returned non-finite numbers: {named} are NaN "
        r"or inf\. Likely cause: data far from the priors' scale.*"
        r"standardize",
    ):
        fit(np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]), SPEC, engine="broken")


def test_finite_fit_passes_the_check(monkeypatch):
    _broken_engine(
        monkeypatch,
        elbo=np.array([-3.0, -2.0]),
        elbo_estimate=Estimate(-2.0, 0.1),
        details=_EMDetails(-2.0, -2.5),
    )
    result = fit(np.array([[0.0, 1.0], [1.0, 0.0]]), SPEC, engine="broken")
    assert result.engine == "broken" and result.elbo_estimate == Estimate(-2.0, 0.1)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore::ppl_mixtures.ConvergenceWarning")
def test_real_engines_raise_numerical_error_on_overflowing_data():
    """Values near 1e200 are finite, but their squares overflow: no NaN fit comes back."""
    points = np.random.default_rng(0).normal(size=(12, 1)) * 1e200
    for engine, options in (
        ("cavi", {"max_iter": 5}),
        ("em", {"max_iter": 5}),
        ("svi", {"n_iter": 5, "batch_size": 4}),
    ):
        with (
            pytest.warns(ppl_mixtures.DataScaleWarning),
            pytest.raises(
                ppl_mixtures.NumericalError,
                match=rf"engine '{engine}'.*"
                r"standardize",
            ),
        ):
            fit(points, SPEC, engine=engine, n_init=1, random_seed=0, progressbar=False, **options)


def test_data_scale_warning_names_standardize_and_the_fit_still_runs(recorder):
    points = np.random.default_rng(1).normal(size=(20, 2)) + 1e9
    with pytest.warns(
        ppl_mixtures.DataScaleWarning,
        match=r"^points: feature 0 has mean 1e\+09, more than 10 prior sds.*"
        r"datasets\.standardize",
    ):
        fit(points, SPEC, engine="toy")
    assert len(recorder.calls) == 1


def test_no_data_scale_warning_on_the_demo_datasets(recorder):
    import warnings

    from ppl_mixtures import datasets

    cases = [
        (
            datasets.advi_notebook_points(),
            MixtureSpec(2, mean_prior_sd=1, dirichlet_alpha=0.1, obs_sd=1),
        ),
        (
            datasets.three_clusters_1d()[0],
            MixtureSpec(3, mean_prior_sd=np.sqrt(10), weights="fixed", obs_sd=1),
        ),
        (datasets.standardize(datasets.old_faithful())[0], MixtureSpec(2, obs_sd="learned")),
    ]
    for points, spec in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ppl_mixtures.DataScaleWarning)
            fit(points, spec, engine="toy")
    assert len(recorder.calls) == len(cases)


@pytest.mark.parametrize("covariance", ["full", "tied", "spherical"])
def test_an_engine_refuses_a_covariance_type_it_does_not_serve(covariance):
    """fit() checks the engine's declared covariance types before touching the data, and
    names the engines that do serve the type (read from the registry, so the message stays
    right as engines learn new types)."""
    from ppl_mixtures.inference.registry import available_engines

    extra = {"obs_cov": np.eye(2)} if covariance == "full" else {}
    spec = MixtureSpec(n_components=2, covariance=covariance, **extra)
    engines = available_engines()
    refusing = [name for name, e in engines.items() if covariance not in e.covariances]
    serving = sorted(name for name, e in engines.items() if covariance in e.covariances)
    assert refusing, "every engine serves it: pick another type for this test"
    with pytest.raises(NotImplementedError) as info:
        fit(np.zeros((5, 2)), spec, engine=refusing[0])
    message = str(info.value)
    assert f"engine {refusing[0]!r} does not serve covariance={covariance!r}" in message
    assert message.endswith(f"Engines that do: {', '.join(serving) or 'none yet'}.")
