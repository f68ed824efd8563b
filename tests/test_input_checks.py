"""Every public entry point that takes user input, fed bad input: one table.

Each row is (id, call, exception type, and four fragments the message must hold in this
order): the argument's name (the message starts with ``name: ``), what was expected, what
came, and what to try. The rule of the house, checked for every row: a ValueError (a value
of the right kind that is wrong) or a TypeError (a value of the wrong kind) whose one-line
message names the argument, says what was expected and what came, and suggests a fix.

``call`` receives a temporary folder (for the file readers); the fit() rows run against a
one-engine registry (``toy``), so no real engine is imported here.
"""

from __future__ import annotations

import dataclasses
import datetime
import struct
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from bad_input import Bad, assert_teaches

from ppl_mixtures import MixtureFit, MixtureSpec, compare, datasets, evidence, fit, relabel
from ppl_mixtures import validation as v
from ppl_mixtures.inference import registry
from ppl_mixtures.inference.registry import Engine, get_engine
from ppl_mixtures.results import make_idata

# ----------------------------------------------------------------------------- helpers
SPEC = MixtureSpec(n_components=2, obs_sd=1.0)


def _toy_fit(
    points: np.ndarray,
    spec: MixtureSpec,
    *,
    draws: int = 5,
    random_seed: int | None = None,
    progressbar: bool = True,
) -> MixtureFit:
    """An engine that never runs in this file: every row fails before it."""
    raise AssertionError("fit() called the engine with bad input")


@pytest.fixture(autouse=True)
def toy_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """fit() and get_engine() see one engine, ``toy`` (the public lookup is replaced)."""
    engines = {"toy": Engine(name="toy", fit=_toy_fit, summary="never runs", family="point")}
    monkeypatch.setattr(registry, "available_engines", lambda: MappingProxyType(engines))


def _spec(**changes: Any) -> MixtureSpec:
    return MixtureSpec(**({"n_components": 2} | changes))


def _mixture(**changes: Any) -> Any:
    args = {
        "n_samples": 10,
        "means": [[0.0, 0.0], [1.0, 1.0]],
        "weights": [0.5, 0.5],
        "obs_sd": 1.0,
        "random_seed": 0,
    } | changes
    return datasets.make_mixture(**args)


def _mixture_1d(**changes: Any) -> Any:
    return _mixture(**({"means": [0.0, 3.0]} | changes))


def _csv(text: str, name: str = "bad.csv", **kwargs: Any) -> Callable[[Path], Any]:
    def call(tmp: Path) -> Any:
        path = tmp / name
        path.write_text(text, encoding="utf-8")
        return datasets.load_points(path, **kwargs)

    return call


def _raw(data: bytes, name: str) -> Callable[[Path], Any]:
    def call(tmp: Path) -> Any:
        path = tmp / name
        path.write_bytes(data)
        return datasets.load_points(path)

    return call


def _npy(array: np.ndarray, **kwargs: Any) -> Callable[[Path], Any]:
    def call(tmp: Path) -> Any:
        path = tmp / "a.npy"
        np.save(path, array)
        return datasets.load_points(path, **kwargs)

    return call


def _header(descr: str, shape: str) -> str:
    """The start of an .npy header: this dtype descr and shape (and what follows it)."""
    return f"{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}"


def _npy_bytes(header: str, payload: bytes = b"\0" * 16) -> bytes:
    """A version-1.0 .npy file with the given header text (padded as np.save pads it)."""
    text = header.encode("latin1")
    text += b" " * (64 - (10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


def _truncated_npy(keep: int) -> Callable[[Path], Any]:
    def call(tmp: Path) -> Any:
        path = tmp / "short.npy"
        np.save(path, np.arange(10.0))
        path.write_bytes(path.read_bytes()[:keep])
        return datasets.load_points(path)

    return call


def _idata(**changes: Any) -> Any:
    C, S, K, D, N = 2, 40, 3, 2, 7
    args = {
        "means": np.zeros((C, S, K, D)),
        "weights": np.full((C, S, K), 1 / K),
        "points": np.zeros((N, D)),
        "obs_sd": np.ones((C, S, K, D)),
    } | changes
    return make_idata(args.pop("means"), args.pop("weights"), args.pop("points"), **args)


def _fit_of() -> MixtureFit:
    """A one-feature, two-component fit of 2 chains x 5 draws (enough for compare/relabel)."""
    rng = np.random.default_rng(0)
    means = np.sort(rng.normal(size=(2, 5, 2, 1)), axis=2)
    weights = np.full((2, 5, 2), 0.5)
    points = rng.normal(size=(6, 1))
    return MixtureFit(
        engine="nuts", spec=SPEC, idata=make_idata(means, weights, points), family="mcmc"
    )


def _estimator(**params: Any) -> Any:
    """BayesianMixture(**params).fit on 4 points with the toy engine (which never runs)."""
    from ppl_mixtures.estimator import BayesianMixture

    return BayesianMixture(**({"n_components": 2, "engine": "toy"} | params)).fit(
        np.arange(4.0)[:, None]
    )


def _engine_fit(
    points: Any,
    spec: Any,
    *,
    draws: int = 10,
    random_seed: int | None = None,
    progressbar: bool = True,
) -> None:
    return None


def _bare_fit(points: Any, spec: Any) -> None:
    return None


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Options:
    draws: int = 10
    random_seed: int | None = None

    def __post_init__(self) -> None:
        v.check_int("draws", self.draws, minimum=1)


NOT_FINITE = "Drop or impute them (the CLI has --dropna)"
NOT_NUMBERS = "Convert text columns to numbers or drop them"
ARRAY = "expected a numeric array of shape (n_samples, n_features)"
STANDARDIZE = "Standardize the data (ppl_mixtures.datasets.standardize)"
RANGE = "expected values in [1e-06, 1e+06]"
LOCATION = "expected values with |value| <= 1e+06"
NUMBER_OR_VECTOR = "expected a number or a 1-D sequence of numbers"
AGAIN = "save the array again with np.save(path, array)."

# ============================================================================ the table
# The table is laid out by hand, one row per bad input (ruff format would put each field on
# its own line).
# fmt: off
CASES = [
    # ------------------------------------------------------------ validation.check_points
    Bad("points-nan", lambda _: v.check_points([[1.0, 2.0], [3.0, np.nan]]), ValueError, "points",
        "expected finite values", "got 1 NaN/inf entries in 1 row (0-based row index 1)",
        NOT_FINITE),
    Bad("points-3-bad-in-2-rows",
        lambda _: v.check_points([[np.inf, 0], [0, 0], [np.nan, -np.inf]]), ValueError, "points",
        "expected finite values", "got 3 NaN/inf entries in 2 rows (0-based row indices 0, 2)",
        NOT_FINITE),
    Bad("points-8-bad-rows", lambda _: v.check_points(np.full(8, np.nan)), ValueError, "points",
        "expected finite values", "in 8 rows (0-based row indices 0, 1, 2, 3, 4, ...)", NOT_FINITE),
    Bad("points-masked",
        lambda _: v.check_points(np.ma.masked_array([[1.0, 2.0], [3, 4]], mask=[[0, 0], [0, 1]])),
        ValueError, "points", "expected finite values",
        "got 1 NaN/inf entries in 1 row (0-based row index 1)", NOT_FINITE),
    Bad("points-pandas-nullable",
        lambda _: v.check_points(pd.DataFrame({"a": pd.array([1, None], dtype="Int64")})),
        ValueError, "points", "expected finite values", "got 1 NaN/inf entries in 1 row",
        NOT_FINITE),
    Bad("points-pandas-text",
        lambda _: v.check_points(pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})), TypeError,
        "points", "expected numbers",
        "got array of shape (2, 2) and dtype object with non-numeric entries", NOT_NUMBERS),
    Bad("points-str-array", lambda _: v.check_points(["a", "b"]), TypeError, "points",
        "expected numbers", "got array of shape (2,) and dtype <U1 with non-numeric entries",
        NOT_NUMBERS),
    Bad("points-object-text", lambda _: v.check_points(np.array([1.0, "x"], dtype=object)),
        TypeError, "points", "expected numbers", "dtype object with non-numeric entries",
        NOT_NUMBERS),
    Bad("points-bool", lambda _: v.check_points(np.array([True, False])), TypeError, "points",
        "expected numbers", "got array of shape (2,) and dtype bool",
        "Convert the data to float, e.g. np.asarray(points, dtype=float)"),
    Bad("points-complex", lambda _: v.check_points(np.array([1 + 1j])), TypeError, "points",
        "expected real numbers", "got array of shape (1,) and dtype complex128",
        "Pass the real part"),
    Bad("points-path-string", lambda _: v.check_points("data.csv"), TypeError, "points", ARRAY,
        "got the string 'data.csv'", "To read a file use ppl_mixtures.datasets.load_points(path)"),
    Bad("points-none", lambda _: v.check_points(None), TypeError, "points", ARRAY, "got None",
        "Pass the data"),
    Bad("points-3d", lambda _: v.check_points(np.zeros((2, 2, 2))), ValueError, "points",
        "expected a 1-D or 2-D array (n_samples, n_features)", "got 3-D shape (2, 2, 2)",
        "Reshape to (n_samples, n_features)"),
    Bad("points-scalar", lambda _: v.check_points(5.0), ValueError, "points",
        "expected a 1-D or 2-D array", "got 0-D shape ()", "Reshape"),
    Bad("points-empty", lambda _: v.check_points([]), ValueError, "points",
        "expected at least one sample and one feature", "got shape (0, 1)", "Pass non-empty data"),
    Bad("points-no-features", lambda _: v.check_points(np.zeros((3, 0))), ValueError, "points",
        "expected at least one sample and one feature", "got shape (3, 0)", "Pass non-empty data"),
    Bad("points-ragged", lambda _: v.check_points([[1.0, 2.0], [3.0]]), ValueError, "points",
        "expected a rectangular numeric array", "got a ragged sequence",
        "Make every row the same length"),
    Bad("points-too-few-for-K", lambda _: v.check_points([[0.0], [1.0]], n_components=3),
        ValueError, "n_components", "expected at most n_samples=2 components", "got 3",
        "Use fewer components or more data"),
    Bad("points-named", lambda _: v.check_points([np.nan], name="reference"), ValueError,
        "reference", "expected finite values", "got 1 NaN/inf", NOT_FINITE),
    Bad("points-labels-tuple", lambda _: v.check_points(datasets.three_clusters_1d()), TypeError,
        "points", ARRAY, "looks like a (points, labels) tuple",
        "Pass the points only, e.g. datasets.three_clusters_1d()[0]"),
    *[Bad(f"points-time-{i}", lambda _, p=p: v.check_points(p), TypeError, "points",
          "expected numbers", "holding dates or time spans",
          "Convert them to numbers in a unit you choose")
      for i, p in enumerate([
          np.array([1, 2, 3], dtype="timedelta64[s]"),
          np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"),
          np.array([np.timedelta64(1, "s"), np.timedelta64(2, "s")], dtype=object),
          [datetime.timedelta(seconds=1), datetime.timedelta(seconds=2)],
      ])],
    # text Python's float() accepts but a typo or a foreign locale could produce
    *[Bad(f"points-text-{text!r}", lambda _, t=text: v.check_points(np.array([t, "2.0"])),
          TypeError, "points", "expected numbers", "with non-numeric entries", NOT_NUMBERS)
      for text in ["1_000", "１２", "1 000", "0x10", "1,5", "١"]],
    # ----------------------------------------------------------- validation scalar checks
    Bad("int-below", lambda _: v.check_int("draws", 0, minimum=1), ValueError, "draws",
        "expected an integer >= 1", "got 0", "Use 1 or more"),
    Bad("int-above", lambda _: v.check_int("chains", 9, maximum=4), ValueError, "chains",
        "expected an integer <= 4", "got 9", "Use 4 or fewer"),
    Bad("int-float", lambda _: v.check_int("draws", 1.5), TypeError, "draws", "expected an integer",
        "got 1.5", "Pass a whole number, e.g. 3"),
    Bad("int-bool-hint", lambda _: v.check_int("draws", False, hint="Try this"), TypeError, "draws",
        "expected an integer", "got False", "Try this."),
    *[Bad(f"positive-{bad!r}", lambda _, b=bad: v.check_positive("lr", b), ValueError, "lr",
          "expected a finite number > 0", f"got {float(bad)!r}", "must be positive")
      for bad in (0, -1.0, np.nan, np.inf)],
    Bad("positive-text", lambda _: v.check_positive("lr", "0.1"), TypeError, "lr",
        "expected a positive number", "got '0.1'", "Pass a float such as 1.0"),
    Bad("positive-vector", lambda _: v.check_positive_vector("s", [1, 0]), ValueError, "s",
        "expected values > 0", "got [1.0, 0.0]", "must be positive"),
    Bad("vector-bytes", lambda _: v.check_vector("m", b"1"), TypeError, "m", NUMBER_OR_VECTOR,
        "got b'1'", "Pass e.g. 0.0 or [0.0, 1.0]"),
    Bad("choice", lambda _: v.check_choice("method", "c", ("a", "b")), ValueError, "method",
        "expected one of 'a', 'b'", "got 'c'", "Pick one of those"),
    Bad("choice-not-text", lambda _: v.check_choice("method", 3, ["a"]), ValueError, "method",
        "expected one of 'a'", "got 3", "Pick one of those"),
    Bad("fraction-1",
        lambda _: v.check_fraction("target_accept", 1.0, example="0.9", hint="higher is safer"),
        ValueError, "target_accept", "expected a number in (0, 1)", "got 1.0",
        "Use e.g. target_accept=0.9 (higher is safer)"),
    Bad("fraction-bool", lambda _: v.check_fraction("threshold", True, example="0.5"), TypeError,
        "threshold", "expected a number in (0, 1)", "got True", "Use e.g. threshold=0.5"),
    Bad("seed-negative", lambda _: v.check_seed(-1), ValueError, "random_seed",
        "expected an integer >= 0", "got -1", "Pass a non-negative integer such as 1, or None"),
    *[Bad(f"seed-{bad!r}", lambda _, b=bad: v.check_seed(b), TypeError, "random_seed",
          "expected an integer", f"got {bad!r}", "Pass a non-negative integer such as 1, or None")
      for bad in (0.3, True, "1", np.float64(2.0))],
    *[Bad(f"bool-{bad!r}", lambda _, b=bad: v.check_bool("progressbar", b), TypeError,
          "progressbar", "expected True or False", f"got {bad!r}",
          "Pass progressbar=True or progressbar=False")
      for bad in (0, 1, "yes", None)],
    Bad("real-inf", lambda _: v.check_real("tau", float("inf"), minimum=0), ValueError, "tau",
        "expected a finite number >= 0", "got inf", "Pass a finite value in range"),
    Bad("real-bool", lambda _: v.check_real("tau", True), TypeError, "tau", "expected a number",
        "got True", "Pass a float such as 1.0"),
    Bad("draws-too-many", lambda _: v.check_draws("n_draws", 10**12, values_per_draw=10),
        ValueError, "n_draws", f"expected at most {v.MAX_STORED_VALUES // 10} draws here",
        "got 1000000000000", "Use fewer draws"),
    # --------------------------------------------------------------- engine options
    Bad("options-unknown",
        lambda _: v.check_engine_options("toy", _engine_fit, {"drws": 5, "seed": 1, "draws": 3}),
        TypeError, "options", "engine 'toy'", "got unknown option(s) 'drws', 'seed'",
        "Valid options for 'toy': draws, random_seed, progressbar."),
    Bad("options-positional-name",
        lambda _: v.check_engine_options("toy", _engine_fit, {"spec": None}), TypeError, "options",
        "engine 'toy'", "got unknown option(s) 'spec'", "Valid options for 'toy'"),
    Bad("options-none-valid", lambda _: v.check_engine_options("bare", _bare_fit, {"x": 1}),
        TypeError, "options", "engine 'bare'", "got unknown option(s) 'x'",
        "Valid options for 'bare': (none)."),
    Bad("options-dataclass-unknown", lambda _: v.build_options("toy", _Options, {"n_draws": 3}),
        TypeError, "options", "engine 'toy'", "got unknown option(s) 'n_draws'",
        "Valid options for 'toy': draws, random_seed."),
    Bad("options-dataclass-value", lambda _: v.build_options("toy", _Options, {"draws": 0}),
        ValueError, "draws", "expected an integer >= 1", "got 0", "Use 1 or more"),
    # ------------------------------------------------------------------ MixtureSpec
    Bad("spec-K-0", lambda _: _spec(n_components=0), ValueError, "n_components",
        "expected an integer >= 1", "got 0", "A mixture needs at least one component"),
    Bad("spec-K-negative", lambda _: _spec(n_components=-2), ValueError, "n_components",
        "expected an integer >= 1", "got -2", "e.g. n_components=2"),
    *[Bad(f"spec-K-{bad!r}", lambda _, b=bad: _spec(n_components=b), TypeError, "n_components",
          "expected an integer", f"got {bad!r}", "e.g. n_components=2")
      for bad in (2.0, True, "3")],
    Bad("spec-mean-sd-negative", lambda _: _spec(mean_prior_sd=-1.0), ValueError, "mean_prior_sd",
        "expected values > 0", "got -1.0", "e.g. mean_prior_sd=1.0"),
    Bad("spec-mean-sd-0", lambda _: _spec(mean_prior_sd=0), ValueError, "mean_prior_sd",
        "expected values > 0", "got 0.0", "e.g. mean_prior_sd=1.0"),
    Bad("spec-mean-sd-nan", lambda _: _spec(mean_prior_sd=float("nan")), ValueError,
        "mean_prior_sd", "expected finite values", "got nan", "e.g. mean_prior_sd=1.0"),
    Bad("spec-mean-sd-vector", lambda _: _spec(mean_prior_sd=[1.0, -1.0]), ValueError,
        "mean_prior_sd", "expected values > 0", "got [1.0, -1.0]", "e.g. mean_prior_sd=1.0"),
    Bad("spec-mean-sd-text", lambda _: _spec(mean_prior_sd="1"), TypeError, "mean_prior_sd",
        NUMBER_OR_VECTOR, "got '1'", "e.g. mean_prior_sd=1.0"),
    Bad("spec-mean-inf", lambda _: _spec(mean_prior_mean=[np.inf]), ValueError, "mean_prior_mean",
        "expected finite values", "got [inf]", "Remove NaN/inf"),
    Bad("spec-mean-empty", lambda _: _spec(mean_prior_mean=[]), ValueError, "mean_prior_mean",
        "expected a scalar or a non-empty 1-D sequence", "got shape (0,)",
        "Pass one value per feature"),
    Bad("spec-mean-2d", lambda _: _spec(mean_prior_mean=[[0.0]]), ValueError, "mean_prior_mean",
        "expected a scalar or a non-empty 1-D sequence", "got shape (1, 1)",
        "Pass one value per feature"),
    Bad("spec-mean-none", lambda _: _spec(mean_prior_mean=None), TypeError, "mean_prior_mean",
        NUMBER_OR_VECTOR, "got None", "Pass e.g. 0.0 or [0.0, 1.0]"),
    Bad("spec-alpha-length", lambda _: _spec(dirichlet_alpha=[1.0, 1.0, 1.0]), ValueError,
        "dirichlet_alpha", "expected a scalar or 2 values (one per component)", "got 3 values",
        "Pass one concentration per component or a single number"),
    Bad("spec-alpha-0", lambda _: _spec(dirichlet_alpha=0.0), ValueError, "dirichlet_alpha",
        "expected values > 0", "got 0.0", "e.g. dirichlet_alpha=1.0"),
    Bad("spec-alpha-bools", lambda _: _spec(dirichlet_alpha=[True, True]), TypeError,
        "dirichlet_alpha", NUMBER_OR_VECTOR, "got [True, True]", "e.g. dirichlet_alpha=1.0"),
    Bad("spec-obs-sd-negative", lambda _: _spec(obs_sd=-1.0), ValueError, "obs_sd",
        "expected values > 0", "got -1.0", "e.g. obs_sd=1.0, or obs_sd='learned'"),
    Bad("spec-obs-sd-typo", lambda _: _spec(obs_sd="learnt"), ValueError, "obs_sd",
        "expected a positive number, one per feature, or 'learned'", "got 'learnt'",
        "Use e.g. obs_sd=1.0 or obs_sd='learned'"),
    Bad("spec-weights", lambda _: _spec(weights="uniform"), ValueError, "weights",
        "expected one of 'dirichlet', 'fixed'", "got 'uniform'", "Pick one of those"),
    Bad("spec-weights-none", lambda _: _spec(weights=None), ValueError, "weights",
        "expected one of 'dirichlet', 'fixed'", "got None", "Pick one of those"),
    Bad("spec-ordered-1", lambda _: _spec(ordered=1), TypeError, "ordered",
        "expected True or False", "got 1", "Pass ordered=True to order components by feature 0"),
    Bad("spec-ordered-text", lambda _: _spec(ordered="yes"), TypeError, "ordered",
        "expected True or False", "got 'yes'", "Pass ordered=True"),
    Bad("spec-transform", lambda _: _spec(weights_transform="softmax"), ValueError,
        "weights_transform", "expected one of 'stick_breaking', 'simplex'", "got 'softmax'",
        "Pick one of those"),
    Bad("spec-shape-0", lambda _: _spec(precision_prior_shape=0.0), ValueError,
        "precision_prior_shape", "expected a finite number > 0", "got 0.0", "must be positive"),
    Bad("spec-rate-inf", lambda _: _spec(precision_prior_rate=float("inf")), ValueError,
        "precision_prior_rate", "expected a finite number > 0", "got inf", "must be positive"),
    Bad("spec-rate-bool", lambda _: _spec(precision_prior_rate=True), TypeError,
        "precision_prior_rate", "expected a positive number", "got True",
        "Pass a float such as 1.0"),
    # prior bounds: outside them float64 log-densities overflow (see PRIOR_SCALE_RANGE)
    Bad("spec-range-obs_sd-1e-170", lambda _: _spec(obs_sd=1e-170), ValueError, "obs_sd",
        RANGE, "got 1e-170", STANDARDIZE),
    Bad("spec-range-mean_prior_sd-1e-170",
        lambda _: _spec(mean_prior_sd=1e-170), ValueError, "mean_prior_sd",
        RANGE, "got 1e-170", STANDARDIZE),
    Bad("spec-range-obs_sd-1e200", lambda _: _spec(obs_sd=1e200), ValueError, "obs_sd",
        RANGE, "got 1e+200", STANDARDIZE),
    Bad("spec-range-mean_prior_mean-1e300",
        lambda _: _spec(mean_prior_mean=1e300), ValueError, "mean_prior_mean",
        LOCATION, "got 1e+300", STANDARDIZE),
    Bad("spec-range-mean_prior_mean--2e6",
        lambda _: _spec(mean_prior_mean=[0.0, -2e6]), ValueError, "mean_prior_mean",
        LOCATION, "got [0.0, -2000000.0]", STANDARDIZE),
    Bad("spec-range-mean_prior_sd-1e7",
        lambda _: _spec(mean_prior_sd=[1.0, 1e7]), ValueError, "mean_prior_sd",
        RANGE, "got [1.0, 10000000.0]", STANDARDIZE),
    Bad("spec-range-dirichlet_alpha-1e-300",
        lambda _: _spec(dirichlet_alpha=1e-300), ValueError, "dirichlet_alpha",
        RANGE, "got 1e-300", STANDARDIZE),
    Bad("spec-range-dirichlet_alpha-1e9",
        lambda _: _spec(dirichlet_alpha=1e9), ValueError, "dirichlet_alpha",
        RANGE, "got 1000000000.0", STANDARDIZE),
    Bad("spec-range-precision_prior_rate-1e300",
        lambda _: _spec(obs_sd="learned", precision_prior_rate=1e300), ValueError,
        "precision_prior_rate", RANGE, "got 1e+300", STANDARDIZE),
    Bad("spec-range-precision_prior_shape-1e-9",
        lambda _: _spec(obs_sd="learned", precision_prior_shape=1e-9), ValueError,
        "precision_prior_shape", RANGE, "got 1e-09", STANDARDIZE),
    *[Bad(f"spec-ragged-{name}", lambda _, n=name: _spec(**{n: [[1.0], [1.0, 2.0]]}), ValueError,
          name, NUMBER_OR_VECTOR, "got a ragged nested sequence", advice)
      for name, advice in [("mean_prior_mean", "Pass e.g. 0.0 or [0.0, 1.0]"),
                           ("mean_prior_sd", "e.g. mean_prior_sd=1.0"),
                           ("dirichlet_alpha", "e.g. dirichlet_alpha=1.0"),
                           ("obs_sd", "e.g. obs_sd=1.0")]],
    *[Bad(f"spec-not-a-number-{i}", lambda _, x=value: _spec(mean_prior_sd=x), TypeError,
          "mean_prior_sd", NUMBER_OR_VECTOR, got, "e.g. mean_prior_sd=1.0")
      for i, (value, got) in enumerate([
          (np.timedelta64(1, "s"), "got np.timedelta64(1,'s')"),
          (np.datetime64("2020-01-01"), "got np.datetime64('2020-01-01')"),
          (np.array([1, 2], dtype="timedelta64[ms]"), "dtype timedelta64[ms]"),
          (1 + 2j, "got (1+2j)"),
      ])],
    *[Bad(f"spec-features-{field}", lambda _, f=field: _spec(**{f: [0.5, 1.0]}).check_features(3),
          ValueError, field, "expected a scalar or 3 values (one per feature of the data)",
          "got 2 values", "Match the number of data columns or pass a single number")
      for field in ("mean_prior_mean", "mean_prior_sd", "obs_sd")],
    Bad("spec-known-obs-sd-of-learned", lambda _: _spec(obs_sd="learned").known_obs_sd(2),
        ValueError, "obs_sd", "expected a known value", "got 'learned'",
        "Read the learned sd from the fit's posterior"),
    Bad("spec-replace-revalidates", lambda _: dataclasses.replace(SPEC, n_components=0), ValueError,
        "n_components", "expected an integer >= 1", "got 0", "e.g. n_components=2"),
    # ------------------------------------------------- MixtureSpec: covariance types (#14)
    Bad("spec-covariance-choice", lambda _: _spec(covariance="boxy"), ValueError, "covariance",
        "expected one of 'diag', 'full', 'tied', 'spherical'", "got 'boxy'", "Pick one"),
    Bad("spec-full-needs-obs-cov", lambda _: _spec(covariance="full"), ValueError, "obs_cov",
        "expected a (D, D) or (K, D, D) covariance matrix or 'learned'", "got None",
        "Pass obs_cov='learned'"),
    Bad("spec-obs-cov-word", lambda _: _spec(covariance="full", obs_cov="learn"), ValueError,
        "obs_cov", "expected a covariance matrix or 'learned'", "got 'learn'",
        "Use obs_cov='learned'"),
    Bad("spec-obs-cov-asymmetric",
        lambda _: _spec(covariance="full", obs_cov=[[1.0, 0.5], [0.0, 1.0]]), ValueError,
        "obs_cov", "expected a symmetric matrix", "largest asymmetry is 0.5", "Symmetrize it"),
    Bad("spec-obs-cov-not-pd",
        lambda _: _spec(covariance="full", obs_cov=[[1.0, 2.0], [2.0, 1.0]]), ValueError,
        "obs_cov", "expected a positive-definite matrix", "smallest eigenvalue -1",
        "Add a small multiple of the identity"),
    Bad("spec-obs-cov-shape", lambda _: _spec(covariance="full", obs_cov=[[1.0, 0.0]]),
        ValueError, "obs_cov", "expected a square (D, D) matrix or (K, D, D) matrices",
        "got shape (1, 2)", "Pass one covariance matrix"),
    Bad("spec-obs-cov-count", lambda _: _spec(covariance="full", obs_cov=np.ones((3, 1, 1))),
        ValueError, "obs_cov", "expected 2 matrices (one per component)", "got 3",
        "Pass one (D, D) matrix"),
    Bad("spec-obs-cov-nan", lambda _: _spec(covariance="full", obs_cov=[[np.nan]]),
        ValueError, "obs_cov", "expected finite numbers", "got NaN or inf", "Pass a finite"),
    Bad("spec-obs-cov-on-diag", lambda _: _spec(obs_cov="learned"), ValueError, "obs_cov",
        "expected None with covariance='diag'", "got 'learned'", "pass covariance='full'"),
    Bad("spec-obs-sd-on-tied", lambda _: _spec(covariance="tied", obs_sd=1.0), ValueError,
        "obs_sd", "expected None with covariance='tied'", "got 1.0",
        "obs_sd belongs to covariance='diag'"),
    Bad("spec-dof-unused", lambda _: _spec(covariance="spherical", precision_prior_dof=3.0),
        ValueError, "precision_prior_dof", "expected None with covariance='spherical'",
        "got 3.0", "The Wishart prior is used only by"),
    Bad("spec-dof-below-d",
        lambda _: _spec(covariance="tied", precision_prior_dof=1.5).check_features(3),
        ValueError, "precision_prior_dof", "expected a value > D - 1 = 2", "got 1.5",
        "Use at least D"),
    Bad("spec-dof-zero", lambda _: _spec(covariance="tied", precision_prior_dof=0.0),
        ValueError, "precision_prior_dof", "expected a finite number > 0", "got 0.0",
        "e.g. precision_prior_dof=5.0"),
    Bad("spec-scale-shape",
        lambda _: _spec(covariance="tied", precision_prior_scale=np.ones((2, 1, 1))),
        ValueError, "precision_prior_scale", "expected a float or one (D, D) matrix",
        "shape (2, 1, 1)", "Pass one scale matrix"),
    Bad("spec-scale-features",
        lambda _: _spec(covariance="tied", precision_prior_scale=np.eye(2)).check_features(3),
        ValueError, "precision_prior_scale", "expected a (3, 3) matrix", "got shape (2, 2)",
        "Match the number of data columns"),
    Bad("spec-obs-cov-features",
        lambda _: _spec(covariance="full", obs_cov=np.eye(2)).check_features(3), ValueError,
        "obs_cov", "expected (3, 3) matrices", "got shape (2, 2)", "Match the number"),
    # ------------------------------------------------------------------------- fit()
    Bad("fit-spec-dict", lambda _: fit([[0.0]], {"n_components": 1}, engine="toy"), TypeError,
        "spec", "expected a MixtureSpec", "got dict",
        "Build one with MixtureSpec(n_components=...)"),
    Bad("fit-engine-typo", lambda _: fit([[0.0], [1.0]], SPEC, engine="nuts_typo"), ValueError,
        "engine", "expected one of toy", "got 'nuts_typo'", "Pick one of those"),
    Bad("fit-engine-none", lambda _: fit([[0.0], [1.0]], SPEC, engine=None), ValueError, "engine",
        "expected one of toy", "got None", "Pick one of those"),
    Bad("get-engine", lambda _: get_engine("nope"), ValueError, "engine", "expected one of toy",
        "got 'nope'", "ppl-mixtures fit --help describes each"),
    Bad("fit-unknown-option", lambda _: fit([[0.0], [1.0]], SPEC, engine="toy", n_draws=10),
        TypeError, "options", "engine 'toy'", "got unknown option(s) 'n_draws'",
        "Valid options for 'toy': draws, random_seed, progressbar."),
    Bad("fit-points-nan", lambda _: fit([[0.0, np.nan], [1.0, 1.0]], SPEC, engine="toy"),
        ValueError, "points", "expected finite values", "got 1 NaN/inf", NOT_FINITE),
    Bad("fit-points-text", lambda _: fit([["a", "b"]], SPEC, engine="toy"), TypeError, "points",
        "expected numbers", "non-numeric entries", NOT_NUMBERS),
    Bad("fit-points-3d", lambda _: fit(np.zeros((2, 2, 2)), SPEC, engine="toy"), ValueError,
        "points", "expected a 1-D or 2-D array", "got 3-D shape", "Reshape"),
    Bad("fit-points-fewer-than-K", lambda _: fit([[0.0]], SPEC, engine="toy"), ValueError,
        "n_components", "expected at most n_samples=1 components", "got 2",
        "Use fewer components or more data"),
    Bad("fit-spec-features",
        lambda _: fit(np.zeros((4, 2)), _spec(mean_prior_mean=[0, 0, 0]), engine="toy"), ValueError,
        "mean_prior_mean", "expected a scalar or 2 values (one per feature", "got 3 values",
        "Match the number of data columns"),
    Bad("fit-points-labels-tuple",
        lambda _: fit(datasets.three_clusters_1d(), _spec(n_components=3), engine="toy"), TypeError,
        "points", ARRAY, "looks like a (points, labels) tuple", "datasets.three_clusters_1d()[0]"),
    # --------------------------------------------------------------- dataset generators
    Bad("advi-points-0", lambda _: datasets.advi_notebook_points(0), ValueError, "n_samples",
        "expected an integer >= 1", "got 0", "Use 1 or more"),
    Bad("advi-points-2.5", lambda _: datasets.advi_notebook_points(2.5), TypeError, "n_samples",
        "expected an integer", "got 2.5", "Pass a whole number"),
    Bad("advi-large-seed", lambda _: datasets.advi_notebook_large_points(10, -1), ValueError,
        "random_seed", "expected an integer >= 0", "got -1", "Use 0 or more"),
    Bad("three-clusters-1d-seed", lambda _: datasets.three_clusters_1d(1.5), TypeError,
        "random_seed", "expected an integer", "got 1.5", "Pass a whole number"),
    Bad("three-clusters-2d-seed", lambda _: datasets.three_clusters_2d(-3), ValueError,
        "random_seed", "expected an integer >= 0", "got -3", "Use 0 or more"),
    Bad("standardize-nan", lambda _: datasets.standardize([1.0, np.nan]), ValueError, "points",
        "expected finite values", "got 1 NaN/inf", NOT_FINITE),
    Bad("mixture-weights-sum", lambda _: _mixture(weights=[0.5, 0.6]), ValueError, "weights",
        "expected non-negative values summing to 1", "got [0.5, 0.6] (sum 1.1)",
        "Divide by their sum"),
    Bad("mixture-weights-length", lambda _: _mixture(weights=[1.0]), ValueError, "weights",
        "expected shape (2,) (one per row of means)", "got shape (1,)",
        "Pass one weight per component"),
    Bad("mixture-weights-negative", lambda _: _mixture(weights=[1.2, -0.2]), ValueError, "weights",
        "expected non-negative values summing to 1", "got [1.2, -0.2]", "Divide by their sum"),
    Bad("mixture-weights-text", lambda _: _mixture(weights="uniform"), TypeError, "weights",
        "expected 2 numbers summing to 1", "got 'uniform'", "Pass e.g. [0.5, 0.5]"),
    Bad("mixture-weights-ragged", lambda _: _mixture_1d(weights=[[0.5], [0.25, 0.25]]), ValueError,
        "weights", "expected a rectangular array of numbers", "got a ragged nested sequence",
        "Make every row the same length"),
    Bad("mixture-obs-sd-negative", lambda _: _mixture(obs_sd=-1.0), ValueError, "obs_sd",
        "expected finite values > 0", "got -1.0", "Standard deviations must be positive"),
    Bad("mixture-obs-sd-shape", lambda _: _mixture(obs_sd=[1.0, 1.0, 1.0]), ValueError, "obs_sd",
        "expected a scalar, shape (2,) or (2, 2)", "got shape (3,)",
        "Pass one sd, one per feature, or one per component and feature"),
    Bad("mixture-obs-sd-text", lambda _: _mixture(obs_sd="one"), TypeError, "obs_sd",
        "expected a positive number or array", "got 'one'", "Pass e.g. obs_sd=1.0"),
    Bad("mixture-obs-sd-time", lambda _: _mixture_1d(obs_sd=np.timedelta64(1, "s")), TypeError,
        "obs_sd", "expected a positive number or array", "got np.timedelta64(1,'s')",
        "Pass e.g. obs_sd=1.0"),
    Bad("mixture-means-3d", lambda _: _mixture(means=[[[0.0]]]), ValueError, "means",
        "expected shape (n_components, n_features)", "got shape (1, 1, 1)",
        "Pass one row per component"),
    Bad("mixture-means-nan", lambda _: _mixture(means=[[0.0, np.nan], [1, 1]]), ValueError, "means",
        "expected finite values", "got [[0.0, nan], [1.0, 1.0]]", "Remove NaN/inf"),
    Bad("mixture-means-text", lambda _: _mixture(means="abc"), TypeError, "means",
        "expected numbers", "got 'abc'", "Pass e.g. [[-1.0, 0.0], [1.0, 0.0]]"),
    Bad("mixture-means-ragged", lambda _: _mixture_1d(means=[[0.0], [1.0, 2.0]]), ValueError,
        "means", "expected a rectangular array of numbers", "got a ragged nested sequence",
        "Make every row the same length"),
    Bad("mixture-means-time", lambda _: _mixture_1d(means=np.array([1, 2], dtype="m8[s]")),
        TypeError, "means", "expected numbers", "dtype timedelta64[s]",
        "Pass e.g. [[-1.0, 0.0], [1.0, 0.0]]"),
    Bad("mixture-means-complex", lambda _: _mixture_1d(means=[1 + 1j, 2.0]), TypeError, "means",
        "expected numbers", "got [(1+1j), 2.0]", "Pass e.g. [[-1.0, 0.0], [1.0, 0.0]]"),
    Bad("mixture-n-samples", lambda _: _mixture(n_samples=0), ValueError, "n_samples",
        "expected an integer >= 1", "got 0", "Use 1 or more"),
    Bad("mixture-seed-negative", lambda _: _mixture_1d(random_seed=-1), ValueError, "random_seed",
        "expected an integer >= 0", "got -1", "Pass a non-negative integer"),
    Bad("mixture-seed-float", lambda _: _mixture_1d(random_seed=0.5), TypeError, "random_seed",
        "expected an integer", "got 0.5", "Pass a non-negative integer"),
    # ------------------------------------------------------- load_points: CSV content
    Bad("csv-text-cell", _csv("a,b\n1,2\n3,oops\n"), ValueError, "path",
        "expected numbers in column 'b' of 'bad.csv'", "got 'oops' on line 3",
        "Fix the value, or choose numeric columns with columns=[...] (CLI: --columns)."),
    Bad("csv-text-cell-no-header", _csv("1,2\n3,x\n"), ValueError, "path",
        "expected numbers in column 1 of 'bad.csv'", "got 'x' on line 2", "Fix the value"),
    Bad("csv-chosen-text-column", _csv("id,a\nx,1\n", columns=["id"]), ValueError, "path",
        "expected numbers in column 'id' of 'bad.csv'", "got 'x' on line 2",
        "Fix the value or choose another column."),
    Bad("csv-semicolons", _csv("a;b\n1;2\n"), ValueError, "path", "expected numbers in column",
        "got '1;2' on line 2", "The file looks semicolon-separated: save it comma-separated."),
    Bad("csv-tabs", _csv("a\tb\n1\t2\n"), ValueError, "path", "expected numbers in column",
        "got '1\\t2' on line 2", "The file looks tab-separated: save it comma-separated."),
    Bad("csv-short-row", _csv("a,b\n1,2\n3\n"), ValueError, "path",
        "expected 2 comma-separated values on every row of 'bad.csv'", "got 1 on line 3",
        "Make every row the same length (leave a cell empty for a missing value)."),
    Bad("csv-inf", _csv("a,b\n1,inf\n"), ValueError, "path",
        "expected finite numbers in column 'b' of 'bad.csv'", "got inf on line 2",
        "leave the cell empty and use dropna=True"),
    Bad("csv-empty", _csv(""), ValueError, "path", "expected a CSV file with rows of numbers",
        "got an empty file 'bad.csv'", "Check that the file was written completely."),
    Bad("csv-blank-lines", _csv("\n\n  \n"), ValueError, "path",
        "expected a CSV file with rows of numbers", "got an empty file 'bad.csv'",
        "Check that the file was written completely."),
    Bad("csv-header-only", _csv("a,b\n"), ValueError, "path",
        "expected data rows after the header in 'bad.csv'", "got only the header (a, b)",
        "Add rows of numbers."),
    Bad("csv-unknown-column", _csv("a,b\n1,2\n", columns=["c"]), ValueError, "columns",
        "expected a column of 'bad.csv'", "got 'c'", "Available: 'a', 'b'."),
    Bad("csv-name-without-header", _csv("1,2\n", columns=["a"]), ValueError, "columns",
        "expected a column of 'bad.csv'", "got 'a'",
        "Available: indices 0 to 1 (the file has no header)."),
    Bad("csv-index-out-of-range", _csv("1,2\n", columns=[2]), ValueError, "columns",
        "expected an index from 0 to 1", "got 2",
        "Available: indices 0 to 1 (the file has no header)."),
    *[Bad(f"csv-cell-{cell!r}", _csv(f"a,b\n1.0,{cell}\n2.0,3.0\n", name="d.csv"), ValueError,
          "path", "expected numbers in column 'b' of 'd.csv'", f"got {cell!r} on line 2",
          "Fix the value")
      for cell in ["1_000", "１２", "1 000", "0x1A", "٣"]],
    Bad("csv-missing-values", _csv("a,b\n1,2\n,3\n4,NaN\n5,6\n7,NA\n8,\n9,9\n10,\n", name="m.csv"),
        ValueError, "path", "expected no missing values in 'm.csv'",
        "got 5 rows with missing values (lines 3, 4, 6, 7, 9)",
        "Pass dropna=True (CLI: --dropna) to drop them, or fill them in."),
    Bad("csv-missing-values-abbreviated", _csv("a\n1\n" + "nan\n" * 7, name="m.csv"), ValueError,
        "path", "expected no missing values",
        "got 7 rows with missing values (lines 3, 4, 5, 6, 7, ...)", "Pass dropna=True"),
    Bad("csv-dropna-leaves-nothing", _csv("a,b\n1,\n,2\n", name="m.csv", dropna=True), ValueError,
        "path", "expected at least one complete row in 'm.csv'",
        "got none (2 rows, all with missing values)",
        "Choose other columns or fill in the values."),
    Bad("csv-not-utf8", _raw(b"\xff\xfe\x00\x81,\x9f\n", "bin.csv"), ValueError, "path",
        "expected a UTF-8 text CSV file", "got undecodable bytes in 'bin.csv'",
        "Export the data as CSV (UTF-8)."),
    # ----------------------------------------------- load_points: argument kinds, paths
    Bad("columns-empty", _csv("a,b\n1,2\n", columns=[]), TypeError, "columns",
        "expected a non-empty list of column names or 0-based indices", "got []",
        "Pass e.g. columns=[0, 1]."),
    Bad("columns-bool", _csv("a,b\n1,2\n", columns=[True]), TypeError, "columns",
        "expected column names or 0-based indices", "got True", "Available: 'a', 'b'."),
    Bad("columns-float", _csv("a,b\n1,2\n", columns=1.5), TypeError, "columns",
        "expected a non-empty list", "got 1.5", "Pass e.g. columns=[0, 1]."),
    Bad("dropna-text", _csv("a,b\n1,2\n", dropna="yes"), TypeError, "dropna",
        "expected True or False", "got 'yes'", "Pass dropna=True to drop rows with missing values"),
    Bad("path-missing", lambda tmp: datasets.load_points(tmp / "nope.csv"), FileNotFoundError,
        "path", "expected an existing file", "nope.csv' (no such file)", "Check the path"),
    Bad("path-extension", _csv("1,2\n", name="d.xlsx"), ValueError, "path",
        "expected a .csv or .npy file", "got 'd.xlsx'", "Save the data as CSV"),
    Bad("path-directory", lambda tmp: datasets.load_points(tmp), ValueError, "path",
        "expected a file", "got the directory", "Name a .csv or .npy file inside it."),
    Bad("path-array", lambda _: datasets.load_points(np.zeros(3)), TypeError, "path",
        "expected a file path (str or pathlib.Path)", "got array of shape (3,)",
        "For arrays in memory call fit() directly."),
    Bad("load-table-path", lambda _: datasets.load_table(None), TypeError, "path",
        "expected a file path (str or pathlib.Path)", "got None",
        "For arrays in memory call fit() directly."),
    # ----------------------------------------------------------- load_points: .npy files
    Bad("npy-missing-row", _npy(np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 3.0]])), ValueError,
        "path", "expected no missing values", "got 1 row with missing values (row 2)",
        "Pass dropna=True"),
    Bad("npy-not-an-array", _raw(b"not an array", "bad.npy"), ValueError, "path",
        "expected a NumPy .npy file", "bad.npy' whose header cannot be read",
        "save the array again with np.save(path, array)."),
    Bad("npy-text", _npy(np.array(["a", "b"])), ValueError, "path",
        "expected a real numeric array in 'a.npy'", "dtype <U1", "Save a float array"),
    Bad("npy-time", _npy(np.array([1, 2], dtype="timedelta64[s]")), ValueError, "path",
        "expected a real numeric array in 'a.npy'", "dtype timedelta64[s]",
        "Save a float array (dates and time spans: convert to numbers in a unit you choose)."),
    Bad("npy-empty", _npy(np.zeros((0, 2))), ValueError, "path", "expected a non-empty array",
        "got shape (0, 2)", "Reshape it before saving."),
    Bad("npy-truncated", _truncated_npy(-8), ValueError, "path",
        "expected 80 bytes of data after the header", "got 72",
        "The file is truncated or its header is corrupt"),
    Bad("npy-stub", _truncated_npy(20), ValueError, "path", "expected a NumPy .npy file",
        "short.npy' whose header cannot be read",
        "save the array again with np.save(path, array)."),
    # corrupt headers (_header(descr, shape) writes the start of the header np.save writes)
    Bad("npy-header-open-string", _raw(_npy_bytes(_header("'<f8'", "(3,), '''")), "bad.npy"),
        ValueError, "path", "expected a NumPy .npy file", "header cannot be read (TokenError",
        AGAIN),
    Bad("npy-header-cut", _raw(_npy_bytes(_header("'<f8'", "(3,")), "bad.npy"), ValueError, "path",
        "expected a NumPy .npy file", "header cannot be read", AGAIN),
    Bad("npy-header-bad-dtype", _raw(_npy_bytes(_header("'zz'", "(2,), }")), "bad.npy"), ValueError,
        "path", "expected a NumPy .npy file", "header cannot be read", AGAIN),
    Bad("npy-header-huge", _raw(_npy_bytes(_header("'<f8'", "(100000, 100000), }")), "bad.npy"),
        ValueError, "path", "expected 80000000000 bytes of data after the header", "got 16",
        "The file is truncated or its header is corrupt"),
    Bad("npy-header-negative", _raw(_npy_bytes(_header("'<f8'", "(-1,), }")), "bad.npy"),
        ValueError, "path", "expected a NumPy .npy file", "claims the negative shape (-1,)", AGAIN),
    Bad("npy-header-objects", _raw(_npy_bytes(_header("'|O'", "(2,), }")), "bad.npy"), ValueError,
        "path", "expected a numeric NumPy array", "got an array of Python objects",
        "Save a float array."),
    # ------------------------------------------------ results: the schema engines fill
    Bad("idata-means-axes", lambda _: _idata(means=np.zeros((40, 3, 2))), ValueError,
        "means/weights", "expected shapes (chain, draw, K, D) and (chain, draw, K)",
        "got (40, 3, 2) and (2, 40, 3)", "Add the chain and draw axes"),
    Bad("idata-weights-K", lambda _: _idata(weights=np.zeros((2, 40, 4))), ValueError,
        "means/weights", "expected shapes", "got (2, 40, 3, 2) and (2, 40, 4)",
        "Add the chain and draw axes"),
    Bad("idata-points-D", lambda _: _idata(points=np.zeros((7, 3))), ValueError, "points",
        "expected shape (n_samples, 2) to match means", "got (7, 3)",
        "Pass the validated data (check_points returns it)."),
    Bad("idata-points-1d", lambda _: _idata(points=np.zeros(7)), ValueError, "points",
        "expected shape (n_samples, 2)", "got (7,)", "Pass the validated data"),
    Bad("idata-obs-sd", lambda _: _idata(obs_sd=np.ones((2, 40, 3, 1))), ValueError, "obs_sd",
        "expected shape (2, 40, 3, 2) (like means)", "got (2, 40, 3, 1)",
        "Broadcast it to (chain, draw, K, D) first."),
    Bad("idata-log-lik", lambda _: _idata(log_likelihood=np.zeros((2, 40, 8))), ValueError,
        "log_likelihood", "expected shape (2, 40, 7) (chain, draw, obs)", "got (2, 40, 8)",
        "Pass one value per draw and observation."),
    Bad("fit-family", lambda _: MixtureFit(engine="toy", spec=SPEC, idata=None, family="sampler"),
        ValueError, "family", "expected one of mcmc, vi, point or None", "got 'sampler'",
        "Use 'mcmc' for samplers"),
    # ------------------------------------------------- analysis and the exact oracle
    Bad("compare-fits-list", lambda _: compare([_fit_of()]), TypeError, "fits",
        "expected a non-empty mapping of name -> MixtureFit", "got list",
        "Pass e.g. {'nuts': nuts_fit, 'cavi': cavi_fit}."),
    Bad("compare-fits-empty", lambda _: compare({}), TypeError, "fits",
        "expected a non-empty mapping of name -> MixtureFit", "got dict", "Pass e.g."),
    Bad("compare-fit-not-a-fit", lambda _: compare({"nuts": _fit_of(), "x": 3}), TypeError,
        "fits['x']", "expected a MixtureFit", "got int", "Pass the result of ppl_mixtures.fit"),
    Bad("compare-khat", lambda _: compare({"nuts": _fit_of()}, khat="yes"), TypeError, "khat",
        "expected 'auto', True or False", "got 'yes'", "Pass khat='auto'"),
    Bad("compare-log-evidence", lambda _: compare({"nuts": _fit_of()}, log_evidence="high"),
        TypeError, "log_evidence", "expected a number", "got 'high'", "Pass log p(x) in nats"),
    Bad("compare-reference", lambda _: compare({"nuts": _fit_of()}, reference="cavi"), ValueError,
        "reference", "expected one of the fits given (nuts) or 'exact'", "got 'cavi'",
        "Pass reference=<one of those>"),
    Bad("relabel-not-a-fit", lambda _: relabel({"means": 1}), TypeError, "fit",
        "expected a MixtureFit", "got dict", "Pass the result of ppl_mixtures.fit(...)"),
    Bad("relabel-reference-shape", lambda _: relabel(_fit_of(), reference=np.zeros((3, 2))),
        ValueError, "reference", "expected means of shape (2, 1) (n_components, n_features)",
        "got (3, 2)", "Align fits of the same K and data."),
    Bad("exact-feasible-n", lambda _: evidence.exact_feasible(0, 2), ValueError, "n_samples",
        "expected an integer >= 1", "got 0", "Use 1 or more"),
    Bad("exact-spec", lambda _: evidence.exact_log_evidence([0.0, 1.0], "spec"), TypeError, "spec",
        "expected a MixtureSpec", "got str", "Build one with MixtureSpec"),
    Bad("exact-too-many-points", lambda _: evidence.exact_log_evidence(np.zeros(40), SPEC),
        ValueError, "points", "expected at most 2000000 assignments (n_components ** n_samples)",
        "got 2**40", "Enumerate fewer points (e.g. points[:20])."),
    Bad("exact-predictive-features",
        lambda _: evidence.exact_posterior(np.zeros((3, 1)), SPEC).predictive_logpdf([[0, 0]]),
        ValueError, "new_points", "expected 1 features (the data's)", "got 2",
        "Pass points with the columns of the data."),
    # ------------------------------------------------------ the scikit-learn estimator
    Bad("estimator-covariance", lambda _: _estimator(covariance="round"), ValueError, "covariance",
        "expected one of 'diag'", "got 'round'", "Use covariance='diag' (scikit-learn's covariance_type names"),
    Bad("estimator-options-list", lambda _: _estimator(engine_options=[("n_init", 2)]), TypeError,
        "engine_options", "expected a dict of engine options or None", "got [('n_init', 2)]",
        "Pass e.g. engine_options={'n_init': 2}."),
    Bad("estimator-options-keys", lambda _: _estimator(engine_options={1: 2}), TypeError,
        "engine_options", "expected option names as str keys", "got ['1']",
        "Use e.g. {'max_iter': 100}."),
    Bad("estimator-options-seed", lambda _: _estimator(engine_options={"random_seed": 1}),
        ValueError, "engine_options", "expected no 'random_seed' key", "got one",
        "Pass the seed as BayesianMixture(random_seed=...)"),
    Bad("estimator-K", lambda _: _estimator(n_components=0), ValueError, "n_components",
        "expected an integer >= 1", "got 0", "e.g. n_components=2"),
]
# fmt: on


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gets_a_message_that_teaches(case: Bad, tmp_path: Path) -> None:
    assert_teaches(case, tmp_path)
