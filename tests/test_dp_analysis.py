"""The analysis and present layers on truncated Dirichlet-process fits (issue #15).

k-hat's importance ratios (p and q over the sticks and a learned alpha) against the exact
evidence of the truncated model, ADVI's numpy log density against the PyMC model's own,
relabeling of DP draws (weighted by occupancy; a q as one block; the stick variables
dropped once labels move), and compare / summaries / figures showing a learned alpha.
"""

import dataclasses

import matplotlib
import numpy as np
import pytest
import xarray as xr
from scipy.special import logsumexp

from ppl_mixtures import MixtureFit, MixtureSpec, compare, evidence, fit, relabel
from ppl_mixtures.analysis.diagnostics import mcmc_summary, vi_khat, vi_log_ratios
from ppl_mixtures.analysis.log_joint import pymc_unconstrained_log_joint, unconstrained_log_joint
from ppl_mixtures.analysis.relabel import align_permutations
from ppl_mixtures.datasets import make_mixture
from ppl_mixtures.results import make_idata

matplotlib.use("Agg")

TINY = np.array([[-1.0], [0.5], [2.0]])


def _is_estimate(log_ratios):
    """log mean exp of the ratios and its delta-method se: sd(r) / (mean(r) sqrt(S))."""
    r = np.exp(log_ratios - log_ratios.max())
    return logsumexp(log_ratios) - np.log(log_ratios.size), r.std() / (r.mean() * np.sqrt(r.size))


# --------------------------------------------------------------------------- k-hat
@pytest.mark.parametrize("n_components", [2, 3])
@pytest.mark.parametrize("alpha_prior", [None, (2.0, 1.5)])
def test_khat_ratios_with_q_at_the_prior_estimate_the_exact_evidence(n_components, alpha_prior):
    """With q = the prior, log p(theta) - log q(theta) must cancel exactly, so the ratios
    are the log-likelihoods and their log-mean-exp is the prior importance-sampling estimate
    of log p(x): it must equal the exact evidence of the truncated DP (enumeration) within
    4 se. A wrong Beta(1, alpha) or Gamma term in p shifts every ratio by the same amount
    (e.g. (T-1) log 0.7 = 0.36 nats for a lost log alpha), far beyond se ~ 0.01."""
    spec = MixtureSpec(
        n_components=n_components,
        weights="dp",
        dp_alpha=0.7,
        dp_alpha_prior=alpha_prior,
        mean_prior_sd=1.5,
        obs_sd=1.0,
    )
    cavi = fit(TINY, spec, engine="cavi", random_seed=0)
    prior_q = dict(cavi.details.variational_params)
    prior_q.update(
        mean_loc=np.zeros((n_components, 1)),
        mean_var=np.full((n_components, 1), 1.5**2),
        stick_a=np.ones(n_components - 1),
        stick_b=np.full(n_components - 1, 0.7),
    )
    if alpha_prior is not None:
        prior_q.update(alpha_shape=np.array([2.0]), alpha_rate=np.array([1.5]))
    at_prior = cavi.replace(details=dataclasses.replace(cavi.details, variational_params=prior_q))
    estimate, se = _is_estimate(vi_log_ratios(at_prior, n_draws=40_000, random_seed=1))
    assert abs(estimate - evidence.exact_log_evidence(TINY, spec)) < 4 * se


def test_khat_of_a_two_stick_dp_matches_the_equivalent_dirichlet():
    """T = 2: v ~ Beta(1, alpha) is w ~ Dirichlet(1, alpha), and CAVI's q is the same
    (Beta(a, b) sticks = Dirichlet(a, b)), so the ratios have one distribution: their means
    (E_q[log p(x, theta) - log q]) agree within 4 se of the difference, and k-hat is finite."""
    points, _ = make_mixture(40, [-2.0, 2.0], [0.6, 0.4], 0.8, random_seed=2)
    dp = MixtureSpec(n_components=2, weights="dp", dp_alpha=2.0, mean_prior_sd=3.0, obs_sd=0.8)
    dirichlet = MixtureSpec(
        n_components=2, dirichlet_alpha=[1.0, 2.0], mean_prior_sd=3.0, obs_sd=0.8
    )
    ratios = [
        vi_log_ratios(fit(points, s, engine="cavi", random_seed=0), n_draws=4000, random_seed=3)
        for s in (dp, dirichlet)
    ]
    se = np.sqrt(sum(r.var() / r.size for r in ratios))
    assert abs(ratios[0].mean() - ratios[1].mean()) < 4 * se
    assert np.isfinite(vi_khat(fit(points, dp, engine="cavi", random_seed=0)))


# ----------------------------------------------------------------------- log joint
def _labels_and_theta(spec, points, n_draws, rng):
    """ADVI-style labels (value variables, C order) of the spec's PyMC model and random
    unconstrained points around its initial point."""
    from ppl_mixtures.inference.pymc.models import build_marginal_model

    model = build_marginal_model(points, spec, batch_size=None)
    labels, start = [], []
    for name, value in model.initial_point().items():
        value = np.asarray(value)
        for idx in np.ndindex(*value.shape):
            labels.append(f"{name}[{','.join(map(str, idx))}]" if idx else name)
        start.extend(value.ravel())
    return labels, np.asarray(start) + rng.standard_normal((n_draws, len(start)))


@pytest.mark.parametrize("alpha_prior", [None, (1.0, 1.0)])
def test_advi_log_joint_of_a_dp_spec_equals_the_pymc_model(alpha_prior):
    """The numpy density of ADVI's k-hat (sticks as e = -log(1 - v) ~ Exponential(alpha),
    log-transformed; a learned alpha log-transformed with its Gamma prior) equals the PyMC
    model's logp(jacobian=True) at random unconstrained points, to round-off."""
    rng = np.random.default_rng(0)
    points, _ = make_mixture(30, [[-2.0, 0.0], [2.0, 0.0]], [0.5, 0.5], 0.7, random_seed=1)
    spec = MixtureSpec(
        n_components=4, weights="dp", dp_alpha=0.5, dp_alpha_prior=alpha_prior, obs_sd=0.7
    )
    labels, theta = _labels_and_theta(spec, points, 6, rng)
    assert any(label.startswith("dp_neg_log_rest") for label in labels)
    ours = unconstrained_log_joint(theta, labels, spec, points)
    np.testing.assert_allclose(
        ours, pymc_unconstrained_log_joint(theta, labels, spec, points), rtol=0, atol=1e-8
    )


# -------------------------------------------------------------------------- relabel
OCCUPIED = np.array([[-4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
DP_SPEC = MixtureSpec(n_components=5, weights="dp", mean_prior_sd=5.0, obs_sd=0.7)


def _dp_draws(n_chains, n_draws, seed):
    """DP-like draws: 3 occupied components (sd 0.1 around OCCUPIED, weights ~ 0.45, 0.35,
    0.2) and 2 unoccupied ones (weights ~ 0.002, means from the N(0, 5^2) prior)."""
    rng = np.random.default_rng(seed)
    shape = (n_chains, n_draws)
    means = np.concatenate(
        [
            OCCUPIED + 0.1 * rng.standard_normal((*shape, 3, 2)),
            5.0 * rng.standard_normal((*shape, 2, 2)),
        ],
        axis=2,
    )
    weights = rng.dirichlet([450.0, 350.0, 200.0, 2.0, 2.0], size=shape)
    return means, weights


def _dp_fit(means, weights, engine="nuts", family="mcmc", spec=DP_SPEC):
    rng = np.random.default_rng(1)
    points = rng.standard_normal((20, 2))
    sticks = weights[..., :-1] / np.cumsum(weights[..., ::-1], axis=-1)[..., ::-1][..., :-1]
    extra = xr.Dataset(
        {
            "dp_sticks": (("chain", "draw", "component_stick"), sticks),
            "dp_alpha": (("chain", "draw"), rng.gamma(2.0, 1.0, size=weights.shape[:2])),
        }
    )
    if not spec.is_dp:
        extra = extra.drop_vars("dp_sticks")
    idata = make_idata(means, weights, points, extra_posterior=extra)
    return MixtureFit(engine=engine, spec=spec, idata=idata, family=family)


def _scrambled(seed=0):
    """Chains in different stick orders, and switches within chains, occupied with empty."""
    means, weights = _dp_draws(4, 300, seed)
    rng = np.random.default_rng(seed + 1)
    perms = np.stack([[rng.permutation(5) for _ in range(300)] for _ in range(4)])
    index = perms[..., None]
    return np.take_along_axis(means, index, 2), np.take_along_axis(weights, perms, 2)


def test_relabel_of_dp_draws_keeps_each_occupied_component_in_one_label():
    """After relabel, every label holding an occupied component holds it in every draw
    (means within 1 of one OCCUPIED row, where the prior draws of the empty ones would be
    ~5 away), and the relabeled stick variables (which describe the original stick order)
    are gone while dp_alpha stays. Without the weights the same draws are mislabeled
    (the contrast shows the test can fail)."""
    means, weights = _scrambled()
    aligned = relabel(_dp_fit(means, weights))
    post = aligned.idata["posterior"]
    assert "dp_sticks" not in post and "dp_alpha" in post
    got_means, got_weights = aligned.draws("means"), aligned.draws("weights")
    heavy = np.argsort(got_weights.mean(axis=(0, 1)))[-3:]
    for k in heavy:
        distance = np.linalg.norm(got_means[:, :, k, None, :] - OCCUPIED, axis=-1)
        nearest = np.argmin(distance.mean(axis=(0, 1)))
        assert distance[..., nearest].max() < 1.0
    unweighted = align_permutations(means)
    flat = np.take_along_axis(means, unweighted[..., None], 2)
    spread = flat[..., :2].std(axis=(0, 1)).max()
    assert spread > 1.0


def test_relabel_of_a_sparse_overfitted_mixture_weights_its_empty_components_out():
    """A sparse finite mixture (Dirichlet 0.01, K = 5 on 3 clusters) has the same empty
    components with prior-drawn means: the same draws relabel as for the DP, each occupied
    component in one label; a fit whose every component holds points is untouched by the
    rule (its expected counts are all >= 1, so the unweighted cost is kept)."""
    sparse = MixtureSpec(n_components=5, dirichlet_alpha=0.01, mean_prior_sd=5.0, obs_sd=0.7)
    means, weights = _scrambled()
    aligned = relabel(_dp_fit(means, weights, spec=sparse))
    got_means, got_weights = aligned.draws("means"), aligned.draws("weights")
    for k in np.argsort(got_weights.mean(axis=(0, 1)))[-3:]:
        distance = np.linalg.norm(got_means[:, :, k, None, :] - OCCUPIED, axis=-1)
        assert distance[..., np.argmin(distance.mean(axis=(0, 1)))].max() < 1.0
    # every component occupied (weights ~ 0.45, 0.35, 0.2 of 20 points): plain relabeling
    full_means, full_weights = _dp_draws(4, 300, 0)
    occupied = (
        full_means[:, :, :3],
        full_weights[:, :, :3] / full_weights[:, :, :3].sum(-1, keepdims=True),
    )
    three = MixtureSpec(n_components=3, dirichlet_alpha=0.01, mean_prior_sd=5.0, obs_sd=0.7)
    plain = relabel(_dp_fit(*occupied, spec=three))
    np.testing.assert_array_equal(plain.relabeling.permutations, align_permutations(occupied[0]))


def test_relabel_moves_a_dp_q_as_one_block():
    """A VI fit (independent draws from q) is not relabeled against itself (nothing moves,
    the sticks stay), and onto a reference in another order every draw gets the same
    permutation, so the unoccupied components keep their prior marginals."""
    means, weights = _dp_draws(1, 500, seed=3)
    q_fit = _dp_fit(means, weights, engine="cavi", family="vi")
    own = relabel(q_fit)
    assert own.relabeling.draws_relabeled == 0 and "dp_sticks" in own.idata["posterior"]
    order = np.array([2, 0, 1, 4, 3])
    reference = np.vstack([OCCUPIED, np.zeros((2, 2))])[order]
    onto = relabel(q_fit, reference=reference)
    perms = onto.relabeling.permutations
    assert (perms == perms[0, 0]).all()
    np.testing.assert_array_equal(perms[0, 0, :3], order[:3])


# ---------------------------------------------------------- compare, tables, figures
@pytest.fixture(scope="module")
def learned_alpha_fits():
    """One short NUTS fit (the reference) and CAVI of a DP with a learned alpha on 3
    well-separated clusters."""
    points, _ = make_mixture(
        90, [[-4.0, 0.0], [0.0, 4.0], [4.0, 0.0]], [0.4, 0.35, 0.25], 0.7, random_seed=3
    )
    spec = MixtureSpec(
        n_components=4, weights="dp", dp_alpha_prior=(1.0, 1.0), mean_prior_sd=5.0, obs_sd=0.7
    )
    nuts = fit(
        points, spec, engine="nuts", draws=200, tune=200, chains=2, random_seed=1, progressbar=False
    )
    return {"nuts": nuts, "cavi": fit(points, spec, engine="cavi", random_seed=1)}


def test_compare_tables_show_a_learned_dp_alpha(learned_alpha_fits):
    """compare's parameter table, its markdown and mcmc_summary have a dp_alpha row (the
    posterior mean of alpha), and the marginals figure has a dp_alpha panel in alpha's
    units."""
    import matplotlib.pyplot as plt

    comparison = compare(learned_alpha_fits, reference="nuts")
    table = comparison.to_markdown()
    nuts_alpha = float(learned_alpha_fits["nuts"].draws("dp_alpha").mean())
    row = next(line for line in table.splitlines() if line.startswith("| dp_alpha |"))
    assert f"{nuts_alpha:.3f}" in row
    assert "dp_alpha" in mcmc_summary(learned_alpha_fits["nuts"]).table.index
    rules = comparison.rules_text()
    assert "obs_sd, dp_alpha) is named" in rules and "**DP fits**" in rules
    figure = comparison.plot_marginals()
    titles = {ax.get_title(): ax.get_xlabel() for ax in figure.axes}
    assert "alpha" in titles["dp_alpha"] and "weight" not in titles["dp_alpha"]
    plt.close(figure)


def test_compare_of_dp_fits_aligns_the_occupied_components(learned_alpha_fits):
    """After compare's relabeling, the three heaviest components of NUTS and CAVI sit at
    the same cluster: their posterior means differ by less than 4 combined posterior sds
    (~0.1 each here; the clusters are 4 apart), and k-hat of CAVI's q is computed."""
    comparison = compare(learned_alpha_fits, reference="nuts")
    params = comparison.parameters
    means = params[params["parameter"].str.startswith("means")].pivot(
        index="parameter", columns="engine", values=["mean", "sd"]
    )
    weights = params[params["parameter"].str.startswith("weights")]
    nuts_w = weights[weights["engine"] == "nuts"].set_index("parameter")["mean"]
    for k in nuts_w.sort_values().index[-3:]:
        for d in (0, 1):
            label = f"means[{k[len('weights[') : -1]},{d}]"
            gap = abs(means.loc[label, ("mean", "nuts")] - means.loc[label, ("mean", "cavi")])
            sd = np.hypot(means.loc[label, ("sd", "nuts")], means.loc[label, ("sd", "cavi")])
            assert gap < 4 * sd
    assert np.isfinite(comparison.engines.loc["cavi", "khat"])


def test_data_figure_draws_only_the_occupied_dp_components(learned_alpha_fits):
    """CAVI's q on 3 clusters with T = 4: the fourth component expects < 1 point, so the
    2-D data panel draws 3 components (3 mean markers) and its title says so; an
    unoccupied component's prior-wide ellipse would otherwise cover the panel."""
    import matplotlib.pyplot as plt

    figure = learned_alpha_fits["cavi"].plot_data()
    panel = figure.axes[0]
    assert "3 of 4 DP components drawn" in panel.get_title()
    markers = [c for c in panel.collections if c.get_offsets().shape[0] == 3]
    assert markers, "expected one scatter of the 3 drawn components' means"
    plt.close(figure)


def test_responsibilities_figure_leaves_out_unoccupied_dp_components(learned_alpha_fits):
    """The responsibilities figure of CAVI's DP fit marks 3 component means (the occupied
    ones) and its legend says the fourth, unoccupied, component is not shown."""
    import matplotlib.pyplot as plt

    comparison = compare(learned_alpha_fits, reference="nuts", khat=False)
    figure = comparison.plot_responsibilities("cavi")
    ax = figure.axes[0]
    assert any(c.get_offsets().shape[0] == 3 for c in ax.collections)
    labels = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
    assert "1 unoccupied DP component not shown" in labels
    plt.close(figure)
