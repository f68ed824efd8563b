"""Truncated Dirichlet-process weights in the spec: fields, checks, the stick helpers, and
the registry's refusal of engines that do not serve them."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
from bad_input import Bad, assert_teaches
from scipy import stats

from ppl_mixtures import MixtureSpec, fit
from ppl_mixtures.inference import registry
from ppl_mixtures.inference.registry import Engine
from ppl_mixtures.model.transforms import (
    expected_log_stick_weights,
    log_stick_weights,
    stick_weights,
)


def _dp(**changes: Any) -> MixtureSpec:
    return MixtureSpec(**({"n_components": 4, "weights": "dp"} | changes))


# fmt: off
CASES = [
    Bad("dp-ordered", lambda: _dp(ordered=True), ValueError, "ordered",
        "expected the default False with weights='dp'", "got True",
        "Drop ordered, or use weights='dirichlet'."),
    Bad("dp-dirichlet-alpha", lambda: _dp(dirichlet_alpha=0.5), ValueError, "dirichlet_alpha",
        "expected the default 1.0 with weights='dp'", "got 0.5", "use dp_alpha for the DP"),
    Bad("dp-transform", lambda: _dp(weights_transform="simplex"), ValueError,
        "weights_transform", "expected the default 'stick_breaking' with weights='dp'",
        "got 'simplex'", "Drop weights_transform"),
    Bad("dp-alpha-without-dp", lambda: MixtureSpec(n_components=2, dp_alpha=2.0), ValueError,
        "dp_alpha", "expected the default 1.0 with weights='dirichlet'", "got 2.0",
        "pass weights='dp' with it, or drop it."),
    Bad("dp-prior-without-dp",
        lambda: MixtureSpec(n_components=2, weights="fixed", dp_alpha_prior=(1.0, 1.0)),
        ValueError, "dp_alpha_prior", "expected None with weights='fixed'", "got (1.0, 1.0)",
        "pass weights='dp' with it, or drop it."),
    Bad("dp-alpha-zero", lambda: _dp(dp_alpha=0.0), ValueError, "dp_alpha",
        "expected a finite number > 0", "got 0.0", "e.g. dp_alpha=1.0"),
    Bad("dp-alpha-huge", lambda: _dp(dp_alpha=1e7), ValueError, "dp_alpha",
        "expected values in [1e-06, 1e+06]", "got 10000000.0", "Standardize the data"),
    Bad("dp-alpha-text", lambda: _dp(dp_alpha="one"), TypeError, "dp_alpha",
        "expected a positive number", "got 'one'", "e.g. dp_alpha=1.0"),
    Bad("dp-prior-one-number", lambda: _dp(dp_alpha_prior=(1.0,)), ValueError, "dp_alpha_prior",
        "expected None or a (shape, rate) pair", "got (1.0,)", "dp_alpha_prior=(1.0, 1.0)"),
    Bad("dp-prior-scalar", lambda: _dp(dp_alpha_prior=2.0), ValueError, "dp_alpha_prior",
        "expected None or a (shape, rate) pair", "got 2.0", "dp_alpha_prior=(1.0, 1.0)"),
    Bad("dp-prior-negative", lambda: _dp(dp_alpha_prior=(1.0, -2.0)), ValueError,
        "dp_alpha_prior", "expected shape and rate in [1e-06, 1e+06]", "got [1.0, -2.0]",
        "dp_alpha_prior=(1.0, 1.0)"),
    Bad("dp-prior-text", lambda: _dp(dp_alpha_prior=(1.0, "b")), TypeError, "dp_alpha_prior",
        "expected two positive numbers (shape, rate)", "got (1.0, 'b')",
        "dp_alpha_prior=(1.0, 1.0)"),
    Bad("dp-alpha-method", lambda: _dp().alpha(), ValueError, "weights",
        "expected 'dirichlet' or 'fixed'", "got 'dp'", "spec.dp_alpha"),
]
# fmt: on


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_dp_input_gets_a_message_that_teaches(case: Bad) -> None:
    assert_teaches(case)


def test_dp_fields_are_normalized_and_reported() -> None:
    spec = _dp(dp_alpha=np.float64(0.5), dp_alpha_prior=[2, 4])
    assert spec.is_dp and spec.learned_dp_alpha and not spec.fixed_weights
    assert spec.dp_alpha == 0.5 and spec.dp_alpha_prior == (2.0, 4.0)
    assert hash(spec) == hash(_dp(dp_alpha=0.5, dp_alpha_prior=(2.0, 4.0)))
    text = spec.describe()
    assert "stick-breaking, truncated at T = 4" in text
    assert "alpha ~ Gamma(shape=2.0, rate=4.0)" in text
    assert "alpha = 0.5 (fixed)" in _dp(dp_alpha=0.5).describe()
    assert not MixtureSpec(n_components=3).is_dp


def test_to_dict_writes_dp_fields_only_for_dp() -> None:
    assert "dp_alpha" not in MixtureSpec(n_components=3).to_dict()
    assert "dp_alpha_prior" not in MixtureSpec(n_components=3, weights="fixed").to_dict()
    data = _dp(dp_alpha_prior=(1.0, 2.0)).to_dict()
    assert data["dp_alpha"] == 1.0 and data["dp_alpha_prior"] == [1.0, 2.0]
    assert MixtureSpec(**data) == _dp(dp_alpha_prior=(1.0, 2.0))


# ----------------------------------------------------------------------- stick helpers
def test_stick_weights_break_the_stick() -> None:
    rng = np.random.default_rng(0)
    sticks = rng.uniform(size=(5, 6))
    weights = stick_weights(sticks)
    assert weights.shape == (5, 7)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-14)
    # the definition, by a loop: w_k = v_k prod_{j<k} (1 - v_j), w_T = prod_{j<T} (1 - v_j)
    for row, v in zip(weights, sticks, strict=True):
        left = 1.0
        for k in range(6):
            assert row[k] == pytest.approx(v[k] * left, rel=1e-13)
            left *= 1.0 - v[k]
        assert row[6] == pytest.approx(left, rel=1e-13)
    assert stick_weights(np.zeros((3, 0))).tolist() == [[1.0]] * 3  # T = 1


def test_log_stick_weights_keep_tiny_weights_precise() -> None:
    # 40 sticks of 0.99: w_T = 0.01^40 = 1e-80, whose log 1 - sum w would lose entirely
    log_w = log_stick_weights(np.full(40, 0.99))
    assert log_w[-1] == pytest.approx(40 * np.log(0.01), rel=1e-14)
    assert log_w[1] == pytest.approx(np.log(0.99) + np.log(0.01), rel=1e-14)


def test_expected_log_stick_weights_match_monte_carlo() -> None:
    """E[log w_k] from Beta sticks' digamma formulas agrees with a Monte Carlo average of
    log w_k: the tolerance is 5 standard errors sd(log w_k) / sqrt(n) of the MC mean."""
    from scipy.special import digamma

    a = np.array([1.5, 3.0, 0.7])
    b = np.array([2.0, 0.8, 4.0])
    exact = expected_log_stick_weights(digamma(a) - digamma(a + b), digamma(b) - digamma(a + b))
    n = 200_000
    rng = np.random.default_rng(1)
    sticks = stats.beta(a, b).rvs(size=(n, 3), random_state=rng)
    log_w = log_stick_weights(sticks)
    se = log_w.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(log_w.mean(axis=0) - exact) < 5 * se), (log_w.mean(axis=0), exact, se)


# ----------------------------------------------------------------------------- registry
def _never(points: np.ndarray, spec: MixtureSpec, **options: Any) -> Any:
    raise AssertionError("the engine must not run for a spec it does not serve")


def test_fit_refuses_dp_with_an_engine_that_does_not_serve_it(monkeypatch) -> None:
    engines = {
        "plain": Engine(
            name="plain", fit=_never, summary="", family="point", weights=("dirichlet", "fixed")
        ),
        "sticky": Engine(name="sticky", fit=_never, summary="", family="vi"),
    }
    monkeypatch.setattr(registry, "available_engines", lambda: MappingProxyType(engines))
    with pytest.raises(NotImplementedError, match=r"weights='dp'.*Engines that do: sticky"):
        fit(np.zeros((5, 1)), _dp(), engine="plain")
    with pytest.raises(AssertionError, match="must not run"):  # served: it reaches the engine
        fit(np.zeros((5, 1)), MixtureSpec(n_components=2), engine="plain")
