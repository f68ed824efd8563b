"""Chunked (dask) input fed bad values, other engines, zarr stores and the CLI (#17).

The bad-input rows follow tests/test_input_checks.py: (id, call, exception type, and four
fragments the message must hold in this order: the argument's name (the message starts
with ``name: ``), what was expected, what came, what to try). The fit() rows run against a
one-engine registry whose engine is named ``cavi`` (an engine that accepts chunked data)
and fails the test if it is ever called: every error is raised before the first iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import dask.array as da  # the `dask` extra; the `dev` extra that `make test` installs has it
import numpy as np
import pytest
from bad_input import Bad, assert_teaches

from ppl_mixtures import MixtureSpec, fit
from ppl_mixtures.app.cli import main
from ppl_mixtures.datasets.readers import open_zarr
from ppl_mixtures.inference import registry
from ppl_mixtures.inference.registry import Engine
from ppl_mixtures.validation.chunked import CHUNKED_ENGINES, check_chunked_engine

SPEC = MixtureSpec(n_components=2, obs_sd=1.0)


def _never(points: Any, spec: MixtureSpec, **options: Any) -> Any:
    raise AssertionError("the engine ran on bad input")


@pytest.fixture
def toy_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    engines = {"cavi": Engine(name="cavi", fit=_never, summary="never runs", family="vi")}
    monkeypatch.setattr(registry, "available_engines", lambda: MappingProxyType(engines))


def _good(n_samples: int = 400, chunk: int = 100) -> Any:
    values = np.random.default_rng(0).normal(size=(n_samples, 2))
    return da.from_array(values, chunks=(chunk, 2))


def _with_nan(row: int, value: float = np.nan) -> Any:
    values = np.random.default_rng(0).normal(size=(400, 2))
    values[row, 1] = value
    return da.from_array(values, chunks=(100, 2))


def _fit(points: Any, spec: MixtureSpec = SPEC) -> Callable[[Path], Any]:
    return lambda _: fit(points, spec, engine="cavi")


def _unknown_chunks() -> Any:
    points = _good()
    return points[points[:, 0] > 0]  # boolean indexing: row counts unknown until computed


def _not_a_store(tmp: Path) -> Any:
    (tmp / "empty.zarr").mkdir()
    (tmp / "empty.zarr" / "notes.txt").write_text("not zarr")
    return open_zarr(tmp / "empty.zarr")


def _clusters() -> Any:
    """Two well-separated clusters (fits settle in a few iterations), 4 chunks of 100."""
    rng = np.random.default_rng(1)
    values = rng.normal(size=(400, 2)) + np.repeat([[-4.0, 0.0], [4.0, 0.0]], 200, axis=0)
    return da.from_array(values, chunks=(100, 2))


def _store(tmp: Path) -> Path:
    path = tmp / "points.zarr"
    _clusters().to_zarr(str(path))
    return path


BAD = [
    Bad("unknown chunk sizes", _fit(_unknown_chunks()), ValueError, "points",
        "known chunk sizes", "unknown (NaN) chunk sizes", "compute_chunk_sizes()"),
    Bad("text dtype", _fit(da.from_array(np.array([["1", "2"], ["3", "4"]]), chunks=1)),
        TypeError, "points", "expected numbers", "dtype <U1", "astype('float64')"),
    Bad("boolean dtype", _fit(da.from_array(np.ones((10, 2), dtype=bool), chunks=5)),
        TypeError, "points", "expected numbers", "dtype bool", "astype('float64')"),
    Bad("complex dtype", _fit(da.from_array(np.ones((10, 2), dtype=complex), chunks=5)),
        TypeError, "points", "expected real numbers", "complex128", "real part"),
    Bad("NaN in the third chunk", _fit(_with_nan(250)), ValueError, "points",
        "expected finite values", "chunk 2 (rows 200 to 299), at 0-based row 250",
        "Drop or impute"),
    Bad("inf in the first chunk", _fit(_with_nan(3, np.inf)), ValueError, "points",
        "expected finite values", "chunk 0 (rows 0 to 99), at 0-based row 3", "Drop or impute"),
    Bad("3-D", _fit(da.zeros((4, 2, 2), chunks=2)), ValueError, "points",
        "1-D or 2-D", "3-D dask array", "Reshape"),
    Bad("no rows", _fit(da.zeros((0, 2), chunks=1)), ValueError, "points",
        "at least one sample", "shape (0, 2)", "non-empty"),
    Bad("fewer points than components", _fit(_good(4, 2), MixtureSpec(n_components=5)),
        ValueError, "n_components", "at most n_samples=4", "got 5", "fewer components"),
    Bad("zarr path missing", lambda tmp: open_zarr(tmp / "missing.zarr"), FileNotFoundError,
        "path", "existing .zarr store", "missing.zarr", "Check the path"),
    Bad("not a zarr store", _not_a_store, ValueError, "path", "zarr array store",
        "empty.zarr", "dask.array.to_zarr"),
    Bad("zarr column out of range", lambda tmp: open_zarr(_store(tmp), [0, 5]), ValueError,
        "columns", "below 2", "[5]", "use indices"),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD, ids=[case.id for case in BAD])
def test_bad_chunked_input_gets_a_message_that_teaches(
    case: Bad, tmp_path: Path, toy_registry: None
) -> None:
    assert_teaches(case, tmp_path)


@pytest.mark.parametrize("engine", ["latent_gibbs", "nuts", "metropolis", "smc"])
def test_engines_that_need_the_data_in_memory_refuse_a_dask_array(engine: str) -> None:
    """(ADVI streams chunked data with batch_size and refuses them without it, naming
    batch_size: tests/test_dask_advi.py.)"""
    with pytest.raises(TypeError, match=r"^points: .*needs every point in memory.*'svi'"):
        fit(_good(), SPEC, engine=engine, progressbar=False)


def test_the_engine_check_names_the_engines_that_accept_chunked_data() -> None:
    """``check_chunked_engine`` (cheap, no pass over the data) for every registered engine."""
    for name in registry.available_engines():
        if name in CHUNKED_ENGINES:
            check_chunked_engine(name, _good())  # accepted: no error
            continue
        with pytest.raises(TypeError) as info:
            check_chunked_engine(name, _good())
        message = str(info.value)
        assert message.startswith(f"points: engine {name!r} needs every point in memory")
        assert "'cavi', 'em', 'svi'" in message and "do not distribute" in message
    check_chunked_engine("nuts", np.zeros((3, 2)))  # in-memory data: any engine


def test_fit_points_of_a_chunked_fit_says_to_pass_the_points() -> None:
    result = fit(_clusters(), SPEC, engine="em", n_init=1, progressbar=False)
    with pytest.raises(ValueError, match=r"^fit.points: expected a fit that stores its data"):
        _ = result.points
    assert "400 x 2 in 4 chunks" in result.idata["posterior"].attrs["chunked_data"]


def test_cli_fits_a_zarr_store_and_refuses_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(_store(tmp_path))
    argv = ["fit", store, "-k", "2", "--engine", "em", "--quiet", "--option", "n_init=1"]
    assert main(argv) == 0
    assert "MixtureFit(engine='em', K=2, D=2" in capsys.readouterr().out
    assert main([*argv, "--out", str(tmp_path / "report")]) == 2
    assert "--out: a report needs the points in memory" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()
