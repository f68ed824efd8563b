"""The reference-fit cache: a hit returns the stored fit; anything that changes the numbers misses."""

from __future__ import annotations

import numpy as np
import pytest

from ppl_mixtures import MixtureSpec, fit
from ppl_mixtures.app.refcache import cache_key, cached_fit

SPEC = MixtureSpec(n_components=2, mean_prior_sd=3.0, obs_sd=1.0)
OPTIONS = {"random_seed": 3, "n_init": 1, "max_iter": 50}


@pytest.fixture(scope="module")
def points():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(-2, 1, (30, 1)), rng.normal(2, 1, (30, 1))])


def _runner(points, spec=SPEC, options=OPTIONS):
    calls = []

    def run():
        calls.append(1)
        return fit(points, spec, engine="em", **options)

    return run, calls


def test_second_call_is_a_hit_with_the_same_numbers(points, tmp_path):
    run, calls = _runner(points)
    first, hit1 = cached_fit(points, SPEC, "em", OPTIONS, run, directory=tmp_path)
    second, hit2 = cached_fit(points, SPEC, "em", OPTIONS, run, directory=tmp_path)
    assert (hit1, hit2) == (False, True)
    assert len(calls) == 1
    np.testing.assert_array_equal(first.draws("means"), second.draws("means"))
    assert dict(second.options) == dict(first.options)
    with pytest.raises(TypeError):  # read-only mappings stay read-only after the round trip
        second.options["random_seed"] = 4  # type: ignore[index]
    assert not list(tmp_path.glob(".tmp-*"))  # the write left no temporary file


@pytest.mark.parametrize("change", ["data", "spec", "option", "engine"])
def test_anything_that_changes_the_numbers_changes_the_key(points, change):
    base = cache_key(points, SPEC, "em", OPTIONS)
    if change == "data":
        other = points.copy()
        other[0, 0] += 1e-12
        key = cache_key(other, SPEC, "em", OPTIONS)
    elif change == "spec":
        other_spec = MixtureSpec(n_components=2, mean_prior_sd=3.0 + 1e-9, obs_sd=1.0)
        key = cache_key(points, other_spec, "em", OPTIONS)
    elif change == "option":
        key = cache_key(points, SPEC, "em", {**OPTIONS, "random_seed": 4})
    else:
        key = cache_key(points, SPEC, "cavi", OPTIONS)
    assert key != base


def test_an_unreadable_entry_is_a_miss_and_is_replaced(points, tmp_path):
    key = cache_key(points, SPEC, "em", OPTIONS)
    (tmp_path / f"{key}.fit.pkl").write_bytes(b"not a pickle")
    run, calls = _runner(points)
    _, hit = cached_fit(points, SPEC, "em", OPTIONS, run, directory=tmp_path)
    assert not hit and len(calls) == 1
    _, hit = cached_fit(points, SPEC, "em", OPTIONS, run, directory=tmp_path)
    assert hit and len(calls) == 1


def test_environment_variable_sets_the_folder(points, tmp_path, monkeypatch):
    monkeypatch.setenv("PPL_MIXTURES_CACHE", str(tmp_path / "c"))
    run, _ = _runner(points)
    cached_fit(points, SPEC, "em", OPTIONS, run)
    assert len(list((tmp_path / "c").glob("*.fit.pkl"))) == 1
