"""Label switching: relabel() recovers the truth, never mixes a draw, and leaves aligned draws alone."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from ppl_mixtures import MixtureFit, MixtureSpec, relabel
from ppl_mixtures.analysis.relabel import align_permutations, apply_permutations
from ppl_mixtures.results import make_idata

TRUE_MEANS = np.array([[-2.0, 0.0], [0.0, 3.0], [2.5, -1.0]])
TRUE_WEIGHTS = np.array([0.2, 0.5, 0.3])
TRUE_SD = np.array([[0.5, 0.6], [1.0, 1.1], [0.7, 0.8]])
N_CHAINS, N_DRAWS, N_OBS = 4, 200, 30
SPEC = MixtureSpec(n_components=3, obs_sd="learned")


def _aligned_draws(seed=0):
    """Posterior-like draws around the truth, all in the true labeling."""
    rng = np.random.default_rng(seed)
    shape = (N_CHAINS, N_DRAWS)
    means = TRUE_MEANS + 0.15 * rng.standard_normal(shape + TRUE_MEANS.shape)
    weights = rng.dirichlet(200 * TRUE_WEIGHTS, size=shape)
    obs_sd = TRUE_SD * np.exp(0.05 * rng.standard_normal(shape + TRUE_SD.shape))
    z = np.broadcast_to(rng.integers(0, 3, N_OBS), (*shape, N_OBS)).copy()
    return means, weights, obs_sd, z


def _fit(means, weights, obs_sd, z=None):
    points = np.random.default_rng(1).standard_normal((N_OBS, 2))
    idata = make_idata(means, weights, points, obs_sd=obs_sd)
    if z is not None:
        post = idata["posterior"].to_dataset()
        post["z"] = (("chain", "draw", "obs"), z)
        idata["posterior"] = post
    return MixtureFit(engine="test", spec=SPEC, idata=idata)


def _scramble(perms, means, weights, obs_sd, z):
    """Apply perms to the draws as a sampler that switched labels would produce them."""

    def take(a):
        return np.take_along_axis(a, perms.reshape(perms.shape + (1,) * (a.ndim - 3)), 2)

    inverse = np.argsort(perms, axis=-1)
    return take(means), take(weights), take(obs_sd), np.take_along_axis(inverse, z, axis=2)


def _constant_perms(perm):
    """The same permutation for every draw, shape (N_CHAINS, N_DRAWS, 3)."""
    return np.broadcast_to(np.array(perm), (N_CHAINS, N_DRAWS, 3)).copy()


@pytest.fixture(scope="module")
def aligned():
    return _aligned_draws()


def _check_truth(fit, aligned_draws):
    means, weights, obs_sd, z = aligned_draws
    np.testing.assert_array_equal(fit.draws("means"), means)
    np.testing.assert_array_equal(fit.draws("weights"), weights)
    np.testing.assert_array_equal(fit.draws("obs_sd"), obs_sd)
    np.testing.assert_array_equal(fit.draws("z"), z)


def test_half_the_chains_swapped_recovers_truth(aligned):
    perms = _constant_perms([0, 1, 2])
    perms[1] = [2, 0, 1]
    perms[3] = [1, 0, 2]
    fit = _fit(*_scramble(perms, *aligned))
    out = relabel(fit, reference=TRUE_MEANS)
    _check_truth(out, aligned)
    info = out.relabeling
    assert info.draws_relabeled == 2 * N_DRAWS
    # chains in different labelings: their means differ by ~2-4 against a within-chain sd of
    # 0.15, so the between-chain variance dwarfs the within: R-hat far above 1
    assert info.rhat_before > 1.5
    # relabeled, the draws are iid: split R-hat over 8 half-chains of 100 draws is
    # ~1 + (X - 1) / (2 * 100) with X ~ chi2_7 / 7 (sd 0.53), i.e. sd 0.003; the max over
    # 18 parameters (bulk and tail) stays below 1 + 3 sd = 1.01
    assert info.rhat_after < 1.01
    # aligned to itself the answer is the truth up to one global permutation
    self_aligned = relabel(fit)
    order = align_permutations(self_aligned.posterior_mean("means")[None, None], TRUE_MEANS)[0, 0]
    np.testing.assert_array_equal(self_aligned.draws("means")[:, :, order], aligned[0])
    assert self_aligned.relabeling.rhat_after < 1.01


def test_switches_inside_chains_recover_truth(aligned):
    rng = np.random.default_rng(3)
    perms = np.stack([rng.permutation(3) for _ in range(N_CHAINS * N_DRAWS)])
    perms = perms.reshape(N_CHAINS, N_DRAWS, 3)
    perms[0] = [0, 1, 2]  # one chain stays put, the others switch per draw
    fit = _fit(*_scramble(perms, *aligned))
    _check_truth(relabel(fit, reference=TRUE_MEANS), aligned)
    self_aligned = relabel(fit)  # no reference: starts from a draw of chain 0
    _check_truth(self_aligned, aligned)


def test_aligned_posterior_is_unchanged_bit_for_bit(aligned):
    fit = _fit(*aligned)
    out = relabel(fit)
    info = out.relabeling
    assert info.draws_relabeled == 0
    np.testing.assert_array_equal(info.permutations, np.broadcast_to([0, 1, 2], (4, 200, 3)))
    for name in ("means", "weights", "obs_sd", "z"):
        assert out.draws(name).tobytes() == fit.draws(name).tobytes()
    assert info.rhat_before == info.rhat_after


def test_relabel_never_mixes_a_draws_components(aligned):
    rng = np.random.default_rng(5)
    perms = np.stack([rng.permutation(3) for _ in range(N_CHAINS * N_DRAWS)]).reshape(4, 200, 3)
    fit = _fit(*_scramble(perms, *aligned))
    # a badly chosen reference: the answer may be poor, but every draw stays a permutation
    out = relabel(fit, reference=np.zeros((3, 2)) + np.arange(3)[:, None] * 0.01)
    applied = out.relabeling.permutations
    assert (np.sort(applied, axis=-1) == np.arange(3)).all()
    for name in ("means", "weights", "obs_sd"):
        before, after = fit.draws(name), out.draws(name)
        index = applied.reshape(applied.shape + (1,) * (before.ndim - 3))
        np.testing.assert_array_equal(after, np.take_along_axis(before, index, axis=2))

    # the (mean, weight, sd) tuples of each draw are the same set as before
    def tuples(f):
        return np.concatenate(
            [
                f.draws("means"),
                f.draws("weights")[..., None],
                f.draws("obs_sd"),
            ],
            axis=-1,
        )

    np.testing.assert_array_equal(np.sort(tuples(out), axis=2), np.sort(tuples(fit), axis=2))
    # z follows its component: the mean of x's component is unchanged by relabeling
    z_before, z_after = fit.draws("z"), out.draws("z")
    mu_before = np.take_along_axis(fit.draws("means")[..., 0], z_before, axis=2)
    mu_after = np.take_along_axis(out.draws("means")[..., 0], z_after, axis=2)
    np.testing.assert_array_equal(mu_before, mu_after)


def test_relabel_does_not_modify_its_input(aligned):
    perms = _constant_perms([1, 2, 0])
    fit = _fit(*_scramble(perms, *aligned))
    before = fit.draws("means").copy()
    relabel(fit, reference=TRUE_MEANS)
    np.testing.assert_array_equal(fit.draws("means"), before)


def test_relabel_to_another_fit(aligned):
    reference_fit = _fit(*aligned)
    perms = _constant_perms([2, 1, 0])
    out = relabel(_fit(*_scramble(perms, *aligned)), reference=reference_fit)
    _check_truth(out, aligned)


def test_single_component_is_identity():
    means = np.random.default_rng(0).standard_normal((2, 10, 1, 2))
    np.testing.assert_array_equal(align_permutations(means), np.zeros((2, 10, 1)))


@given(st.integers(2, 9), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_assignment_has_the_minimum_cost(n_components, n_features, seed):
    # K <= 6 is solved by enumerating the K! permutations, larger K by the Hungarian method;
    # both must reach the minimum total squared distance that scipy's solver finds
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(1, 20, n_components, n_features))
    reference = rng.normal(size=(n_components, n_features))
    perms = align_permutations(means, reference)[0]  # (20, K)
    rows = np.arange(n_components)
    assert (np.sort(perms, -1) == rows).all()
    cost = ((reference[None, :, None] - means[0][:, None]) ** 2).sum(-1)  # (20, K_ref, K)
    ours = cost[np.arange(20)[:, None], rows, perms].sum(-1)
    best = [cost[s][linear_sum_assignment(cost[s])].sum() for s in range(20)]
    np.testing.assert_allclose(ours, best, rtol=1e-12)


def test_large_k_uses_hungarian_and_recovers_labels():
    rng = np.random.default_rng(2)
    truth = np.arange(8.0)[:, None] * [3.0, 0.0]
    means = truth + 0.1 * rng.standard_normal((2, 20, 8, 2))
    perms = np.stack([rng.permutation(8) for _ in range(40)]).reshape(2, 20, 8)
    scrambled = np.take_along_axis(means, perms[..., None], axis=2)
    found = align_permutations(scrambled, truth)
    np.testing.assert_array_equal(np.take_along_axis(scrambled, found[..., None], axis=2), means)


def test_apply_permutations_keeps_dims_and_coords(aligned):
    fit = _fit(*aligned)
    post = fit.idata["posterior"].to_dataset()
    perms = _constant_perms([2, 0, 1])
    out = apply_permutations(post, perms)
    assert out["means"].dims == post["means"].dims
    np.testing.assert_array_equal(out["component"].values, [0, 1, 2])
    np.testing.assert_array_equal(out["means"].values[:, :, 0], post["means"].values[:, :, 2])


BAD_INPUT = [  # (call, error, pinned message)
    (
        lambda: relabel(_fit(*_aligned_draws()), reference=np.zeros((2, 2))),
        ValueError,
        r"^reference: expected means of shape \(3, 2\) \(n_components, n_features\), got \(2, 2\)",
    ),
    (lambda: relabel({}), TypeError, r"^fit: expected a MixtureFit, got dict"),
    (
        lambda: align_permutations(np.zeros((3, 2))),
        ValueError,
        r"^means: expected an array of shape \(n_chains, n_draws, n_components, n_features\), "
        r"got shape \(3, 2\)",
    ),
]


@pytest.mark.parametrize("call, error, message", BAD_INPUT)
def test_bad_input_is_refused_with_a_message_that_teaches(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_every_component_variable_is_permuted(aligned):
    # an ordered fit's posterior also holds means_first (component) and means_rest
    # (component, feature_rest); PyMC fits hold obs_precision: all must follow the means
    means, weights, obs_sd, z = aligned
    fit = _fit(means, weights, obs_sd, z)
    post = fit.idata["posterior"].to_dataset()
    post["means_rest"] = (("chain", "draw", "component", "feature_rest"), means[..., 1:])
    post["obs_precision"] = (("chain", "draw", "component", "feature"), obs_sd**-2)
    post["step_count"] = (("chain", "draw"), np.arange(N_CHAINS * N_DRAWS).reshape(4, 200))
    fit.idata["posterior"] = post
    perms = _constant_perms([2, 0, 1])
    scrambled = fit.replace(idata=fit.idata.copy())
    scrambled.idata["posterior"] = apply_permutations(post, perms)
    out = relabel(scrambled, reference=TRUE_MEANS)
    for name in ("means", "weights", "obs_sd", "means_rest", "obs_precision", "step_count", "z"):
        np.testing.assert_array_equal(out.draws(name), fit.draws(name))
