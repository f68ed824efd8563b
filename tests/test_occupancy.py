"""occupied_components: the posterior of the number of occupied components, on hand-built fits
whose answer is known, and its truncation check."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bad_input import Bad, assert_teaches
from scipy.stats import multivariate_normal

from ppl_mixtures import MixtureFit, MixtureSpec
from ppl_mixtures.analysis.occupancy import (
    TRUNCATION_LIMIT,
    TruncationWarning,
    occupied_components,
)
from ppl_mixtures.results import make_idata

RNG = np.random.default_rng(15)
CENTERS = np.array([[-20.0, 0.0], [0.0, 5.0], [20.0, -5.0]])
# 3 tight clusters of 10 points, 40 sds apart: every responsibility is 0 or 1 to rounding
POINTS = np.concatenate([c + 0.5 * RNG.standard_normal((10, 2)) for c in CENTERS])


def _fit(spec: MixtureSpec, weights: np.ndarray, means: np.ndarray, **kw: Any) -> MixtureFit:
    """A fit whose every draw has these weights (chain, draw, T) and means (chain, draw, T, D)."""
    return MixtureFit(engine="test", spec=spec, idata=make_idata(means, weights, POINTS, **kw))


def _far_components(n_chains: int, n_draws: int, n_components: int) -> np.ndarray:
    """Means (chain, draw, T, 2): the 3 cluster centers, then components 100+ units away."""
    far = np.array([[100.0 * (k + 1), 100.0] for k in range(n_components - 3)]).reshape(-1, 2)
    means = np.concatenate([CENTERS, far])
    return np.broadcast_to(means, (n_chains, n_draws, n_components, 2)).copy()


def test_far_apart_components_give_a_deterministic_count():
    # T = 6: the three used components hold the data; the far ones get responsibility 0
    # (exp(-(80 / 0.5)^2 / 2) underflows) whatever their weight, so every draw has exactly
    # 3 occupied components: pmf is the point mass at 3.
    spec = MixtureSpec(6, weights="dp", dp_alpha=1.0, obs_sd=0.5, mean_prior_sd=50.0)
    weights = np.broadcast_to([0.3, 0.3, 0.3, 0.05, 0.045, 0.005], (2, 40, 6))
    occ = occupied_components(_fit(spec, weights, _far_components(2, 40, 6)))
    expected = np.zeros(7)
    expected[3] = 1.0
    np.testing.assert_array_equal(occ.pmf, expected)
    assert (occ.mean, occ.mode, occ.effective_number, occ.mean_mcse) == (3.0, 3, 3.0, 0.0)
    assert occ.n_draws == 80 and occ.n_components == 6 and occ.occupied.shape == (80,)
    assert occ.last_weight == pytest.approx(0.005) and occ.truncated and occ.truncation_ok
    assert "| posterior probability | 0.000 | 0.000 | 1.000 |" in str(occ)


def test_a_component_between_two_clusters_splits_them_at_random():
    # Two components with equal weight and the same mean as cluster 0: each of its 10
    # points picks one of them with probability 1/2, independently. Both are occupied
    # unless all 10 land in the same one: P(3 occupied) = 2 * 0.5^10, P(4) = 1 - that.
    spec = MixtureSpec(4, obs_sd=0.5, mean_prior_sd=50.0)
    n_draws = 4000
    means = np.broadcast_to(np.concatenate([CENTERS[:1], CENTERS]), (1, n_draws, 4, 2))
    weights = np.broadcast_to([1 / 6, 1 / 6, 1 / 3, 1 / 3], (1, n_draws, 4))
    occ = occupied_components(_fit(spec, weights, means), random_seed=3)
    assert occ.pmf.sum() == pytest.approx(1.0, abs=1e-12)
    p3 = 2 * 0.5**10
    # binomial se of a frequency over independent draws; 4 se
    assert abs(occ.pmf[3] - p3) <= 4 * np.sqrt(p3 * (1 - p3) / n_draws)
    assert occ.pmf[4] == pytest.approx(1 - occ.pmf[3])
    # a Dirichlet-weights fit: no truncation check
    assert not occ.truncated and occ.truncation_ok
    assert occ.effective_number == occ.mean  # a sampler-like fit: the posterior mean count


def test_full_covariance_draws_assign_points_with_their_responsibilities():
    # 2 components, 3 points between them, two parameter sets alternating over the draws
    # (correlated covariances that differ per draw). Exactly one component is occupied
    # when all 3 points pick the same one: P(1) = mean over the sets of
    # prod_i r_i1 + prod_i r_i2, with r from scipy's densities (the oracle).
    points = np.array([[0.0, 0.0], [0.4, -0.3], [-0.5, 0.6]])
    means = np.array([[[-1.0, 0.5], [1.0, -0.5]], [[-0.5, -1.0], [0.8, 1.0]]])
    covs = np.array(
        [
            [[[1.0, 0.6], [0.6, 1.5]], [[0.8, -0.3], [-0.3, 0.5]]],
            [[[0.5, 0.2], [0.2, 2.0]], [[1.2, 0.9], [0.9, 1.0]]],
        ]
    )
    weights = np.array([[0.4, 0.6], [0.7, 0.3]])
    p1 = 0.0
    for s in range(2):
        joint = np.array(
            [
                weights[s, k] * multivariate_normal(means[s, k], covs[s, k]).pdf(points)
                for k in range(2)
            ]
        )
        resp = joint / joint.sum(axis=0)
        p1 += 0.5 * (np.prod(resp[0]) + np.prod(resp[1]))
    n_draws = 4000
    pick = np.arange(n_draws) % 2
    spec = MixtureSpec(2, covariance="full", obs_cov="learned", mean_prior_sd=5.0)
    idata = make_idata(means[pick][None], weights[pick][None], points, obs_cov=covs[pick][None])
    occ = occupied_components(MixtureFit(engine="test", spec=spec, idata=idata), random_seed=5)
    # binomial se of a frequency over independent draws; 4 se
    assert 0.05 < p1 < 0.95
    assert abs(occ.pmf[1] - p1) <= 4 * np.sqrt(p1 * (1 - p1) / n_draws), (occ.pmf, p1)
    assert occ.pmf[1] + occ.pmf[2] == pytest.approx(1.0, abs=1e-12)


def test_pmf_sums_to_one_on_overlapping_clusters_and_draw_subsets():
    spec = MixtureSpec(5, weights="dp", obs_sd=1.0, mean_prior_sd=5.0)
    means = RNG.normal(0.0, 10.0, (2, 30, 5, 2))
    weights = RNG.dirichlet(np.ones(5), (2, 30))
    fit = _fit(spec, weights, means)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)  # the last weight is ~0.2
        occ = occupied_components(fit, n_draws=25, random_seed=1)
        again = occupied_components(fit, n_draws=25, random_seed=1)
    assert occ.pmf.shape == (6,) and occ.pmf.sum() == pytest.approx(1.0, abs=1e-12)
    assert occ.n_draws == 25 and occ.pmf[0] == 0.0  # 30 points occupy at least one component
    np.testing.assert_array_equal(occ.occupied, again.occupied)  # same seed, same numbers


def test_a_heavy_last_stick_warns_to_raise_the_truncation():
    spec = MixtureSpec(4, weights="dp", dp_alpha=1.0, obs_sd=0.5, mean_prior_sd=50.0)
    weights = np.broadcast_to([0.3, 0.3, 0.3, 0.1], (1, 20, 4))
    with pytest.warns(TruncationWarning, match=r"increase n_components \(the truncation level\)"):
        occ = occupied_components(_fit(spec, weights, _far_components(1, 20, 4)))
    assert occ.last_weight == pytest.approx(0.1) and occ.last_weight > TRUNCATION_LIMIT
    assert not occ.truncation_ok and "TRUNCATION TOO LOW" in occ.to_markdown()
    # the same weights on a Dirichlet spec: a finite mixture, nothing truncated, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        finite = occupied_components(
            _fit(MixtureSpec(4, obs_sd=0.5, mean_prior_sd=50.0), weights, _far_components(1, 20, 4))
        )
    assert finite.truncation_ok and not finite.truncated


@pytest.mark.parametrize("weights", ["dp", "dirichlet"])
def test_cavi_effective_number_counts_components_with_expected_count_at_least_one(weights):
    from ppl_mixtures import fit

    extra = {"dp_alpha": 0.5} if weights == "dp" else {"dirichlet_alpha": 0.01}
    spec = MixtureSpec(6, weights=weights, obs_sd=0.5, mean_prior_sd=20.0, **extra)
    cavi = fit(POINTS, spec, engine="cavi", random_seed=0, n_draws=200, progressbar=False)
    occ = occupied_components(cavi)
    # 40 sds between clusters: q(z) puts each cluster's 10 points on one component, so 3
    # expected counts are 10 (to rounding) and the other three are ~0
    assert occ.effective_number == 3.0
    assert "E[N_k] >= 1" in occ.effective_number_method
    assert occ.mode == 3


# ----------------------------------------------------------------------------- bad input


def _small_fit() -> MixtureFit:
    spec = MixtureSpec(4, weights="dp", obs_sd=0.5, mean_prior_sd=50.0)
    return _fit(
        spec, np.broadcast_to([0.4, 0.3, 0.295, 0.005], (1, 5, 4)), _far_components(1, 5, 4)
    )


# fmt: off
CASES = [
    Bad("not-a-fit", lambda: occupied_components({"weights": 1}), TypeError, "fit",
        "expected a MixtureFit", "got dict", "Pass the result of ppl_mixtures.fit"),
    Bad("n-draws-0", lambda: occupied_components(_small_fit(), n_draws=0), ValueError,
        "n_draws", "expected an integer >= 1", "got 0", "Pass at most the fit's 5 draws"),
    Bad("n-draws-too-many", lambda: occupied_components(_small_fit(), n_draws=6), ValueError,
        "n_draws", "expected an integer <= 5", "got 6", "or None for all"),
    Bad("points-features", lambda: occupied_components(_small_fit(), np.zeros((3, 3))),
        ValueError, "points", "expected 2 features", "got 3", "Pass data with the columns"),
]
# fmt: on


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gets_a_message_that_teaches(case: Bad, tmp_path: Path) -> None:
    assert_teaches(case)
