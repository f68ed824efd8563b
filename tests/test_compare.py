"""compare() on constructed fits whose answers are known by construction.

Fits are built by hand with the typed fields ``ppl_mixtures.fit`` fills (``family``,
``elbo_estimate``, ``evidence``), so every number the verdicts read is known exactly.
The exact reference (enumeration) is tested in test_compare_exact.py. (Over 400 lines: one
test per verdict rule, each with the draws that make its answer known.)
"""

import json

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from ppl_mixtures import MixtureSpec
from ppl_mixtures.analysis.compare import RHAT_TOL, compare
from ppl_mixtures.results import Estimate, EvidenceEstimate, MixtureFit, Timings, make_idata

TRUE_MEANS = np.array([[-2.0, -2.0], [2.0, 2.0]])
RNG = np.random.default_rng(7)
POINTS = np.concatenate([RNG.normal(-2, 1, (40, 2)), RNG.normal(2, 1, (40, 2))])
SPEC = MixtureSpec(n_components=2)
#: The family ``ppl_mixtures.fit`` records for each engine (engines not listed: none).
FAMILIES = {
    "nuts": "mcmc",
    "metropolis": "mcmc",
    "smc": "mcmc",
    "advi": "vi",
    "fullrank_advi": "vi",
    "cavi": "vi",
    "svi": "vi",
    "em": "point",
}


def reference_draws(n_chains=4, n_draws=400, seed=1):
    """means (C, S, 2, 2) and weights (C, S, 2) around TRUE_MEANS, sd 0.15 and 0.05."""
    rng = np.random.default_rng(seed)
    means = TRUE_MEANS + 0.15 * rng.standard_normal((n_chains, n_draws, 2, 2))
    w0 = 0.5 + 0.05 * rng.standard_normal((n_chains, n_draws))
    return means, np.stack([w0, 1 - w0], -1)


def make_fit(engine, means, weights, *, obs_sd=None, spec=SPEC, **kwargs):
    kwargs.setdefault("family", FAMILIES.get(engine))
    return MixtureFit(
        engine=engine,
        spec=spec,
        idata=make_idata(means, weights, POINTS, obs_sd=obs_sd),
        timings=Timings(build=1.5, run=2.5),
        **kwargs,
    )


def scaled(means, weights, factor, shift=0.0):
    """Draws whose deviations from the pooled mean are multiplied by ``factor``."""
    m0, w0 = means.mean((0, 1)), weights.mean((0, 1))
    return m0 + shift + factor * (means - m0), w0 + factor * (weights - w0)


@pytest.fixture(scope="module")
def ref():
    return reference_draws()


@pytest.fixture(scope="module")
def comparison(ref):
    means, weights = ref
    agree_m, agree_w = reference_draws(n_chains=1, n_draws=1600, seed=2)
    narrow_m, narrow_w = scaled(means, weights, 0.5)
    wide_m, wide_w = scaled(means, weights, 1.8)
    swapped_m, swapped_w = means.copy(), weights.copy()
    swapped_m[1::2] = swapped_m[1::2, :, ::-1]
    swapped_w[1::2] = swapped_w[1::2, :, ::-1]
    sd = means.reshape(-1, 4).std(0).reshape(2, 2)
    fits = {
        "nuts": make_fit("nuts", means, weights),
        "agree": make_fit(
            "cavi",
            agree_m,
            agree_w,
            elbo=np.linspace(-400, -300, 50),
            elbo_estimate=Estimate(-300.0, 0.0),
        ),
        "narrow": make_fit("advi", narrow_m.reshape(1, -1, 2, 2), narrow_w.reshape(1, -1, 2)),
        "wide": make_fit("wide", wide_m, wide_w),
        "swapped": make_fit("metropolis", swapped_m, swapped_w),
        "em": make_fit("em", means.mean((0, 1))[None, None], weights.mean((0, 1))[None, None]),
        "off": make_fit("off", means + 3.0 * sd, weights),
    }
    return compare(
        fits, reference="nuts", not_applicable={"smc": "cannot serve this spec"}, name="constructed"
    )


def test_verdicts_state_the_known_answers(comparison):
    verdicts = comparison.verdicts()
    assert verdicts["nuts"] == "reference"  # 4 x 400 independent draws: a strong reference
    ratio = comparison.engines.loc["agree", "sd_ratio"]
    assert verdicts["agree"] == f"agrees (sd ratio {ratio:.2f}x)"
    # engine "advi" is mean-field VI: the width is a property of its family
    assert verdicts["narrow"] == "q too narrow by 2.00x (gaussian mean-field family)"
    assert verdicts["wide"] == "too wide by 1.80x"  # not a registered engine: no family
    assert verdicts["swapped"] == "label-switched (fixed by relabeling)"
    assert verdicts["em"] == "point estimate (no uncertainty)"
    # every mean moved by exactly +3 reference sd; the first is named
    assert verdicts["off"] == "means[0,0] 3.0 reference sd above"


def test_sd_ratio_and_shift_numbers(comparison):
    eng = comparison.engines
    np.testing.assert_allclose(eng.loc["narrow", "sd_ratio"], 0.5, rtol=1e-10)
    np.testing.assert_allclose(eng.loc["wide", "sd_ratio"], 1.8, rtol=1e-10)
    np.testing.assert_allclose(eng.loc["off", "max_mean_shift"], 3.0, rtol=1e-10)
    assert eng.loc["nuts", "sd_ratio"] == 1.0 and eng.loc["nuts", "max_mean_shift"] == 0.0
    np.testing.assert_allclose(eng.loc["nuts", "total_s"], 4.0)
    assert eng.loc["agree", "elbo"] == -300.0 and eng.loc["agree", "elbo_se"] == 0.0
    assert np.isnan(eng.loc["nuts", "elbo"])


def test_the_family_is_the_fits_own_not_the_engine_names(ref):
    means, weights = ref
    narrow_m, narrow_w = scaled(means, weights, 0.5)
    nuts = make_fit("nuts", means, weights)
    # the same narrow draws, recorded as VI, as MCMC, and with no family at all
    fits = {
        "nuts": nuts,
        "as_vi": make_fit("advi", narrow_m, narrow_w),
        "as_mcmc": make_fit("advi", narrow_m, narrow_w, family="mcmc"),
        "unknown": make_fit("advi", narrow_m, narrow_w, family=None),
    }
    comp = compare(fits)
    assert comp.engines["family"].to_dict() == {
        "nuts": "mcmc",
        "as_vi": "vi",
        "as_mcmc": "mcmc",
        "unknown": "",
    }
    verdicts = comp.verdicts()
    assert verdicts["as_vi"] == "q too narrow by 2.00x (gaussian mean-field family)"
    assert verdicts["as_mcmc"] == verdicts["unknown"] == "too narrow by 2.00x"


def test_label_switched_fit_is_aligned_to_the_reference(comparison, ref):
    means, _ = ref
    swapped = comparison.fits["swapped"]
    np.testing.assert_array_equal(swapped.draws("means"), means)  # every chain put back
    row = comparison.engines.loc["swapped"]
    assert row["label_switched"] and row["fraction_relabeled"] == pytest.approx(0.5)
    # before: R-hat is rank-normalized, and half the chains hold the lower half of the
    # ranks: their normal scores have means -+phi(0)/0.5 = -+0.80 (between-chain variance
    # 0.64) and within-chain variance 1 - 0.64 = 0.36, so R-hat ~ sqrt(1 + 0.64 / 0.36) =
    # 1.67 whatever the distance between the modes. After: the reference's own draws.
    assert row["rhat_before_relabel"] > 1.5 and row["rhat_max"] <= RHAT_TOL


def test_reversed_labels_alone_are_aligned_not_flagged(ref):
    means, weights = ref
    reversed_fit = make_fit("cavi", means[:1, :, ::-1], weights[:1, :, ::-1])
    comp = compare({"nuts": make_fit("nuts", means, weights), "rev": reversed_fit})
    np.testing.assert_array_equal(comp.fits["rev"].draws("means"), means[:1])
    assert comp.verdicts()["rev"] == "agrees (sd ratio 1.00x)"
    assert not comp.engines.loc["rev", "label_switched"]


def test_parameter_table_matches_numpy_and_scipy(comparison, ref):
    means, _ = ref
    table = comparison.parameters.set_index(["parameter", "engine"])
    assert len(table) == 6 * len(comparison.fits)  # 4 means + 2 weights per engine
    narrow = comparison.fits["narrow"].draws("means")[..., 1, 0].ravel()
    ref_draws = means[..., 1, 0].ravel()
    row = table.loc[("means[1,0]", "narrow")]
    np.testing.assert_allclose(row["mean"], narrow.mean())
    np.testing.assert_allclose(row["sd"], narrow.std())
    np.testing.assert_allclose(row["wasserstein"], wasserstein_distance(narrow, ref_draws))
    np.testing.assert_allclose(row["sd_ratio"], 0.5, rtol=1e-10)
    assert np.isnan(row["r_hat"])  # one chain: no R-hat
    # the reference is 4 x 400 independent draws: R-hat within the strong-reference limit,
    # and bulk ESS near 1600. ESS = 1600 / 2 would need a lag-1 autocorrelation of 1/3
    # (ESS = N (1 - rho) / (1 + rho)); the sample autocorrelation of independent draws has
    # sd 1 / sqrt(1600) = 0.025, so that is 13 of its sds away.
    assert table.loc[("means[1,0]", "nuts"), "r_hat"] <= RHAT_TOL
    assert table.loc[("means[1,0]", "nuts"), "ess_bulk"] > 1600 / 2
    assert table.loc[("weights[0]", "em"), "sd"] == 0.0


def test_markdown_and_json_contain_every_engine(comparison):
    text = comparison.to_markdown()
    for name in [*comparison.fits, "smc"]:
        assert f"| {name} |" in text
    assert "not applicable: cannot serve this spec" in text
    data = json.loads(json.dumps(comparison.to_dict(), allow_nan=False))
    assert set(data["engines"]) == set(comparison.fits)
    assert data["engines"]["narrow"]["sd_ratio"] == pytest.approx(0.5)
    assert data["engines"]["nuts"]["elbo"] is None  # NaN becomes null
    assert len(data["parameters"]) == len(comparison.parameters)
    assert data["not_applicable"] == {"smc": "cannot serve this spec"}
    assert data["thresholds"] == comparison.thresholds
    assert data["thresholds"]["rhat_tol"] == 1.01 and data["thresholds"]["ess_min"] == 400
    assert data["reference_strong"] is True and data["reference_weak_reasons"] == []


def test_to_dataframe_and_wide_table(comparison):
    frame = comparison.to_dataframe()
    assert {"parameter", "engine", "mean", "sd", "verdict"} <= set(frame.columns)
    assert (
        frame.loc[frame["engine"] == "narrow", "verdict"]
        == "q too narrow by 2.00x (gaussian mean-field family)"
    ).all()
    wide = comparison.wide_table("mean")
    assert list(wide.columns) == list(comparison.fits)
    assert list(wide.index) == [
        "means[0,0]",
        "means[0,1]",
        "means[1,0]",
        "means[1,1]",
        "weights[0]",
        "weights[1]",
    ]


def test_learned_obs_sd_and_log_evidence_are_tabulated(ref):
    means, weights = ref
    spec = MixtureSpec(n_components=2, obs_sd="learned")
    obs_sd = np.full(means.shape, 1.0) + 0.1 * np.random.default_rng(3).standard_normal(means.shape)
    nuts = make_fit("nuts", means, weights, obs_sd=obs_sd, spec=spec)
    smc = make_fit(
        "smc",
        means,
        weights,
        obs_sd=obs_sd,
        spec=spec,
        evidence=EvidenceEstimate(-321.5, 0.4, "independent runs"),
    )
    comp = compare({"nuts": nuts, "smc": smc})
    assert "obs_sd[1,1]" in set(comp.parameters["parameter"])
    assert comp.log_evidence == -321.5 and comp.log_evidence_source == "smc"
    given = compare({"nuts": nuts, "smc": smc}, log_evidence=-300.0)
    assert given.log_evidence == -300.0 and given.log_evidence_source == "given"
    assert comp.engines.loc["smc", "log_evidence"] == -321.5
    assert "-321.50 ± 0.40" in comp.to_markdown()  # two significant digits of the se


def test_fixed_weights_are_left_out_of_the_judgement(ref):
    means, _ = ref
    spec = MixtureSpec(n_components=2, weights="fixed")
    weights = np.full(means.shape[:3], 0.5)
    nuts = make_fit("nuts", means, weights, spec=spec)
    narrow_m, _ = scaled(means, weights, 0.5)
    comp = compare({"nuts": nuts, "cavi": make_fit("cavi", narrow_m, weights, spec=spec)})
    rows = comp.parameters.set_index(["parameter", "engine"])
    assert np.isnan(rows.loc[("weights[0]", "cavi"), "sd_ratio"])
    assert comp.verdicts()["cavi"] == "q too narrow by 2.00x (conjugate mean-field family)"


BAD_ARGUMENTS = [  # (which fits, keyword arguments, error, message)
    (
        "two",
        {},
        ValueError,
        r"reference: expected one of the fits given \(advi, cavi\) or 'exact', got 'nuts'",
    ),
    ("int", {"reference": "nuts"}, TypeError, r"fits\['x'\]: expected a MixtureFit, got int"),
    ("none", {}, TypeError, "fits: expected a non-empty mapping"),
    (
        "two",
        {"reference": "advi", "log_evidence": "-300"},
        TypeError,
        "log_evidence: expected a number, got",
    ),
    (
        "two",
        {"reference": "advi", "log_evidence": float("nan")},
        ValueError,
        "log_evidence: expected",
    ),
    (
        "two",
        {"reference": "advi", "khat": "yes"},
        TypeError,
        "khat: expected 'auto', True or False, got 'yes'",
    ),
]


@pytest.mark.parametrize(("which", "kwargs", "error", "match"), BAD_ARGUMENTS)
def test_bad_arguments_are_named_with_what_to_do(ref, which, kwargs, error, match):
    two = {"advi": make_fit("advi", *ref), "cavi": make_fit("cavi", *ref)}
    fits = {"two": two, "int": {"nuts": two["advi"], "x": 3}, "none": {}}[which]
    with pytest.raises(error, match=match):
        compare(fits, **kwargs)


def test_fits_of_different_models_are_refused(ref):
    means, weights = ref
    three = make_fit(
        "cavi",
        np.concatenate([means, means[:, :, :1]], 2),
        np.concatenate([weights, weights[:, :, :1]], 2) / 1.5,
        spec=MixtureSpec(n_components=3),
    )
    with pytest.raises(
        ValueError,
        match=r"fits\['three'\] differs in spec \(n_components=3 "
        r"vs 2\)",
    ):
        compare({"nuts": make_fit("nuts", means, weights), "three": three})


def test_comparison_is_frozen(comparison):
    with pytest.raises(AttributeError):
        comparison.reference = "advi"
    with pytest.raises(TypeError):
        comparison.fits["new"] = comparison.fits["nuts"]


# ------------------------------------------------------------- verdicts that say why
LEARNED = MixtureSpec(n_components=2, obs_sd="learned")


def learned_draws(seed=3, n_chains=4, n_draws=400):
    """means, weights and obs_sd (C, S, ...) of independent draws, obs_sd sd 0.05 around 1."""
    means, weights = reference_draws(n_chains, n_draws, seed)
    obs_sd = 1.0 + 0.05 * np.random.default_rng(seed + 1).standard_normal(means.shape)
    return means, weights, obs_sd


def test_a_shift_in_obs_sd_is_named_as_obs_sd():
    means, weights, obs_sd = learned_draws()
    nuts = make_fit("nuts", means, weights, obs_sd=obs_sd, spec=LEARNED)
    other_m, other_w, other_sd = learned_draws(seed=11)
    ref_sd = obs_sd[..., 0, 0].std()
    other_sd = other_sd.copy()
    # move obs_sd[0,0] down by 3.3 reference sd; nothing else moves beyond noise
    other_sd[..., 0, 0] += obs_sd[..., 0, 0].mean() - other_sd[..., 0, 0].mean() - 3.3 * ref_sd
    em_like = make_fit("metropolis", other_m, other_w, obs_sd=other_sd, spec=LEARNED)
    comp = compare({"nuts": nuts, "mh": em_like})
    verdict = comp.verdicts()["mh"]
    assert "obs_sd[0,0] 3.3 reference sd below" in verdict
    assert "means[" not in verdict and "weights[" not in verdict
    assert comp.engines.loc["mh", "max_shift_parameter"] == "obs_sd[0,0]"
    row = comp.parameters.set_index(["parameter", "engine"]).loc[("obs_sd[0,0]", "mh")]
    assert row["group"] == "obs_sd" and row["significant"]
    np.testing.assert_allclose(row["shift"], -3.3, rtol=1e-10)


def test_an_unconverged_vi_fit_did_not_converge_rather_than_too_wide(ref):
    means, weights = ref
    wide_m, wide_w = scaled(means, weights, 1.8)
    stopped = make_fit(
        "advi", wide_m.reshape(1, -1, 2, 2), wide_w.reshape(1, -1, 2), converged=False
    )
    verdict = compare({"nuts": make_fit("nuts", means, weights), "advi": stopped}).verdicts()[
        "advi"
    ]
    assert verdict == "did not converge (the engine's own test failed); sd ratio 1.80x"
    assert "too wide" not in verdict


def _vi_fit(engine, ref, factor, elbo, elbo_se=0.0, converged=True):
    means, weights = ref
    m, w = scaled(means, weights, factor)
    return make_fit(
        engine,
        m.reshape(1, -1, 2, 2),
        w.reshape(1, -1, 2),
        converged=converged,
        elbo=np.array([elbo - 50.0, elbo]),
        elbo_estimate=Estimate(elbo, elbo_se),
    )


def test_an_elbo_below_its_own_familys_best_is_did_not_converge(ref):
    nuts = make_fit("nuts", *ref)
    # svi and cavi share the conjugate mean-field family: svi, 10 nats lower, is not at
    # the family's optimum even though its own test passed
    comp = compare(
        {
            "nuts": nuts,
            "cavi": _vi_fit("cavi", ref, 0.83, -300.0),
            "svi": _vi_fit("svi", ref, 0.8, -310.0, elbo_se=0.5),
        }
    )
    verdicts = comp.verdicts()
    assert verdicts["svi"].startswith("did not converge (ELBO 10.0 nats below cavi's")
    assert "q too narrow" not in verdicts["svi"] and "sd ratio 0.80x" in verdicts["svi"]
    assert comp.engines.loc["svi", "elbo_below"] == "cavi"
    np.testing.assert_allclose(comp.engines.loc["svi", "elbo_gap"], 10.0)
    assert verdicts["cavi"] == "converged; q too narrow by 1.20x (conjugate mean-field family)"


def test_elbo_gaps_respect_family_nesting_and_monte_carlo_error(ref):
    nuts = make_fit("nuts", *ref)
    # full-rank contains mean-field: full-rank below mean-field did not converge ...
    comp = compare(
        {
            "nuts": nuts,
            "advi": _vi_fit("advi", ref, 0.8, -300.0, 0.2),
            "fullrank_advi": _vi_fit("fullrank_advi", ref, 1.0, -307.0, 0.2),
        }
    )
    assert comp.verdicts()["fullrank_advi"].startswith("did not converge (ELBO 7.0 nats below")
    assert not comp.verdicts()["advi"].startswith("did not converge")
    # ... mean-field below full-rank is expected (a smaller family), not a failure
    comp = compare(
        {
            "nuts": nuts,
            "advi": _vi_fit("advi", ref, 0.8, -307.0, 0.2),
            "fullrank_advi": _vi_fit("fullrank_advi", ref, 1.0, -300.0, 0.2),
        }
    )
    assert not comp.verdicts()["advi"].startswith("did not converge")
    # a 2-nat gap inside 3 x the combined se (3 x sqrt(1 + 1) = 4.2 nats) is noise
    comp = compare(
        {
            "nuts": nuts,
            "cavi": _vi_fit("cavi", ref, 0.8, -300.0, 1.0),
            "svi": _vi_fit("svi", ref, 0.8, -302.0, 1.0),
        }
    )
    assert not comp.verdicts()["svi"].startswith("did not converge")


def test_a_narrow_fit_inside_or_outside_the_tolerance_shows_its_ratio(ref):
    nuts = make_fit("nuts", *ref)
    comp = compare(
        {
            "nuts": nuts,
            "cavi": _vi_fit("cavi", ref, 0.83, -300.0),
            "advi": _vi_fit("advi", ref, 0.95, -290.0),
        }
    )
    verdicts = comp.verdicts()
    assert verdicts["cavi"] == "converged; q too narrow by 1.20x (conjugate mean-field family)"
    assert verdicts["advi"] == "agrees (sd ratio 0.95x)"


def test_the_last_weight_is_counted_once(ref):
    means, weights = ref
    # weights twice as narrow, means unchanged: 4 free means and 1 free weight
    _, narrow_w = scaled(means, weights, 0.5)
    comp = compare(
        {"nuts": make_fit("nuts", means, weights), "mh": make_fit("metropolis", means, narrow_w)}
    )
    free = comp.parameters.set_index(["parameter", "engine"])["free"]
    assert free[("weights[0]", "mh")] and not free[("weights[1]", "mh")]
    np.testing.assert_allclose(comp.engines.loc["mh", "sd_ratio"], 0.5 ** (1 / 5), rtol=1e-10)


def ar1_draws(n_chains, n_draws, rho, seed):
    """means (C, S, 2, 2), weights (C, S, 2): stationary AR(1) chains around TRUE_MEANS.

    Marginal sd 0.15 for the means and 0.05 for weights[0]; lag-1 correlation rho.
    """
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n_chains, n_draws, 5))
    z = np.empty_like(noise)
    z[:, 0] = noise[:, 0]
    for t in range(1, n_draws):
        z[:, t] = rho * z[:, t - 1] + np.sqrt(1 - rho**2) * noise[:, t]
    means = TRUE_MEANS + 0.15 * z[..., :4].reshape(n_chains, n_draws, 2, 2)
    w0 = 0.5 + 0.05 * z[..., 4]
    return means, np.stack([w0, 1 - w0], -1)


def test_shifts_inside_the_monte_carlo_error_are_not_named():
    # a reference of sticky AR(1) chains (rho 0.995, 4 x 400: ArviZ's bulk ESS ~5, so
    # MCSE ~ 0.46 sd and 3 MCSE ~ 1.4 sd) cannot resolve a 1.2-sd shift; against 4 x 400
    # independent draws (3 MCSE ~ 0.1 sd) the same shift is named
    sticky = ar1_draws(4, 400, 0.995, seed=5)
    other_m, other_w = reference_draws(n_chains=4, n_draws=400, seed=9)
    for ref_m, ref_w, named in ((*sticky, False), (*reference_draws(), True)):
        ref_sd = ref_m[..., 0, 0].std()
        moved = other_m.copy()
        moved[..., 0, 0] += ref_m[..., 0, 0].mean() - moved[..., 0, 0].mean() + 1.2 * ref_sd
        comp = compare(
            {"nuts": make_fit("nuts", ref_m, ref_w), "mh": make_fit("metropolis", moved, other_w)}
        )
        rows = comp.parameters.set_index(["parameter", "engine"])
        row, ref_row = rows.loc[("means[0,0]", "mh")], rows.loc[("means[0,0]", "nuts")]
        np.testing.assert_allclose(row["shift"], 1.2, rtol=1e-10)
        noise = 3 * np.hypot(row["mcse"], ref_row["mcse"])
        assert (1.2 * ref_sd > noise) == named == bool(row["significant"])
        assert ("means[0,0] 1.2 reference sd above" in comp.verdicts()["mh"]) == named


def test_reference_strength_is_stated_with_its_reasons(ref):
    means, weights = ref
    strong = compare({"nuts": make_fit("nuts", means, weights)})
    assert strong.reference_strong and "Reference nuts: strong (4 chains" in strong.to_markdown()
    sticky = compare({"nuts": make_fit("nuts", *ar1_draws(4, 400, 0.98, seed=5))})
    assert not sticky.reference_strong
    assert any(
        r.startswith("min bulk ESS") and r.endswith("< 400") for r in sticky.reference_weak_reasons
    )
    reasons = "; ".join(sticky.reference_weak_reasons)
    assert sticky.verdicts()["nuts"].startswith(f"reference (weak: {reasons})")
    assert f"Reference nuts is weak: {reasons}." in sticky.to_markdown()
    # chains centred 0.5 sd apart: R-hat ~ sqrt(1 + 0.25 / 4 ...) > 1.01
    apart = means + 0.5 * 0.15 * np.arange(4)[:, None, None, None]
    disagree = compare({"nuts": make_fit("nuts", apart, weights)})
    assert any(r.startswith("max R-hat") for r in disagree.reference_weak_reasons)
    one_chain = compare({"nuts": make_fit("nuts", means[:1], weights[:1])})
    assert "1 chain (R-hat needs >= 2)" in one_chain.reference_weak_reasons
    two = compare({"nuts": make_fit("nuts", means[:2], weights[:2])})
    assert two.reference_weak_reasons == (
        "2 chains < 4 (R-hat compares chains from different starts)",
    )
    data = json.loads(json.dumps(sticky.to_dict(), allow_nan=False))
    assert data["reference_strong"] is False and data["reference_weak_reasons"]


def test_rules_text_states_every_threshold(comparison):
    text = comparison.rules_text()
    for value in (
        "1.1",
        "1 reference",
        "3 combined",
        "1.01",
        "400",
        ">= 4 chains",
        "1%",
        "0.7",
        "K-1 weights",
    ):
        assert value in text, value
    assert text in comparison.to_markdown()
    assert text not in comparison.to_markdown(rules=False)


def test_evidence_is_an_estimate_with_se_and_flags(ref):
    means, weights = ref
    smc = make_fit(
        "smc",
        means,
        weights,
        evidence=EvidenceEstimate(-321.87, 0.51, "4 independent runs", flags=("below_elbo",)),
    )
    comp = compare({"nuts": make_fit("nuts", means, weights), "smc": smc})
    line = comp.evidence_line()
    assert line.startswith(
        "Log evidence estimate log p(x) = -321.870 ± 0.510 nats (from smc, 4 independent runs)."
    )
    assert "Flags: below_elbo." in line and "known" not in line.lower()
    text = comp.to_markdown()
    assert "-321.87 ± 0.51 (below_elbo)" in text and line in text
    data = comp.to_dict()
    assert data["log_evidence_flags"] == ["below_elbo"] and data["log_evidence_se"] == 0.51
    assert data["engines"]["smc"]["evidence_flags"] == ["below_elbo"]


# ------------------------------------------------------------- same spec and data
def test_fits_of_different_data_are_refused_by_fingerprint(ref):
    means, weights = ref
    nuts = make_fit("nuts", means, weights)
    moved = POINTS.copy()
    moved[3, 1] += 1e-9
    other = MixtureFit(engine="cavi", spec=SPEC, idata=make_idata(means, weights, moved))
    with pytest.raises(
        ValueError,
        match=r"fits\['cavi'\] differs in data \(same shape "
        r"\(80, 2\), different values\)",
    ):
        compare({"nuts": nuts, "cavi": other})
    prior = make_fit("advi", means, weights, spec=MixtureSpec(n_components=2, mean_prior_sd=3.0))
    with pytest.raises(
        ValueError,
        match=r"fits\['advi'\] differs in spec \(mean_prior_sd=3.0 "
        r"vs 1.0\); fits\['cavi'\] differs in data",
    ):
        compare({"nuts": nuts, "advi": prior, "cavi": other})
    # the weights' transform is a parameterization of the same model: accepted
    simplex = make_fit(
        "advi", means, weights, spec=MixtureSpec(n_components=2, weights_transform="simplex")
    )
    assert compare({"nuts": nuts, "advi": simplex}).verdicts()["advi"].startswith("agrees")


def test_a_vi_or_point_reference_is_weak_for_what_it_is(ref):
    means, weights = ref
    vi = compare({"cavi": make_fit("cavi", means[:1], weights[:1])}, reference="cavi")
    assert vi.reference_weak_reasons == ("draws from a variational q, not from the posterior",)
    assert "use a long MCMC run (nuts) as the reference" in vi.reference_line()
    point = compare({"em": make_fit("em", means[:1, :1], weights[:1, :1])}, reference="em")
    assert point.reference_weak_reasons == (
        "a point estimate has no posterior spread to judge against",
    )


# ------------------------------------------------------------- k-hat of VI fits
def test_khat_auto_skips_large_data_and_says_so(ref):
    means, weights = ref
    many = np.random.default_rng(1).normal(size=(5_001, 2))
    fits = {
        name: MixtureFit(
            engine=engine, spec=SPEC, idata=make_idata(m, w, many), family=FAMILIES[engine]
        )
        for name, engine, m, w in (
            ("nuts", "nuts", means, weights),
            ("cavi", "cavi", means[:1], weights[:1]),
        )
    }
    comp = compare(fits)
    assert np.isnan(comp.engines.loc["cavi", "khat"])
    assert comp.engines.loc["cavi", "khat_note"] == (
        "skipped: 5,001 observations > 5,000 (pass khat=True to compute it)"
    )
    assert "| not computed |" in comp.to_markdown()


def test_a_fit_without_spread_is_said_to_have_none(ref):
    means, weights = ref
    # 1000 identical draws: sd 0 where the reference has spread (not a point estimate)
    frozen = make_fit(
        "metropolis",
        np.repeat(means[:1, :1], 1000, axis=1),
        np.repeat(weights[:1, :1], 1000, axis=1),
    )
    comp = compare({"nuts": make_fit("nuts", means, weights), "stuck": frozen})
    assert comp.engines.loc["stuck", "sd_ratio"] == 0.0
    assert "no spread where the reference has some" in comp.verdicts()["stuck"]


def test_an_evidence_estimate_below_an_elbo_is_flagged(ref):
    means, weights = ref

    def smc(value):
        return make_fit(
            "smc", means, weights, evidence=EvidenceEstimate(value, 0.51, "independent runs")
        )

    cavi = make_fit(
        "cavi",
        means[:1],
        weights[:1],
        elbo=np.array([-330.0, -320.0]),
        elbo_estimate=Estimate(-320.0, 0.0),
    )
    nuts = make_fit("nuts", means, weights)
    # 1.87 nats below the bound, more than 3 x 0.51 = 1.53: impossible
    low = compare({"nuts": nuts, "smc": smc(-321.87), "cavi": cavi}, khat=False)
    assert (
        "log p(x) estimate 1.9 nats below cavi's ELBO (a lower bound on log p(x)): the "
        "estimate is too low"
    ) in low.verdicts()["smc"]
    assert low.engines.loc["smc", "evidence_flags"] == ["below_elbo"]
    assert low.log_evidence_flags == ("below_elbo",)
    assert "(below_elbo)" in low.to_markdown()
    # 0.5 nats below, inside 3 se: no flag
    close = compare({"nuts": nuts, "smc": smc(-320.5), "cavi": cavi}, khat=False)
    assert "ELBO" not in close.verdicts()["smc"]
    assert close.engines.loc["smc", "evidence_flags"] == [] and close.log_evidence_flags == ()


# ----------------------------------------------------------------------------- data units
def _learned_comparison(ref, **kwargs):
    means, weights = ref
    rng = np.random.default_rng(11)
    obs_sd = np.exp(0.05 * rng.standard_normal(means.shape))
    spec = MixtureSpec(n_components=2, obs_sd="learned")
    other = scaled(means, weights, 1.0, shift=0.01)
    fits = {
        "nuts": make_fit("nuts", means, weights, obs_sd=obs_sd, spec=spec),
        "cavi": make_fit("cavi", *other, obs_sd=obs_sd * 1.1, spec=spec),
    }
    return compare(fits, reference="nuts", khat=False, **kwargs)


def test_data_transform_reports_means_and_sds_in_data_units(ref):
    center, scale = np.array([3.5, 70.9]), np.array([1.14, 13.6])
    plain = _learned_comparison(ref)
    shown = _learned_comparison(
        ref,
        feature_names=["eruption duration", "waiting time"],
        units="min",
        data_transform=(center, scale),
    )
    table, base = shown.parameters_in_data_units(), plain.parameters
    for group, d in (("means", 0), ("means", 1), ("obs_sd", 1), ("weights", None)):
        rows = base["group"] == group
        if d is not None:
            rows &= base["parameter"].str.endswith(f",{d}]")
        offset = center[d] if group == "means" else 0.0
        factor = 1.0 if d is None else scale[d]
        np.testing.assert_allclose(
            table.loc[rows, "mean"], offset + factor * base.loc[rows, "mean"]
        )
        np.testing.assert_allclose(table.loc[rows, "sd"], factor * base.loc[rows, "sd"])
        np.testing.assert_allclose(
            table.loc[rows, "wasserstein"], factor * base.loc[rows, "wasserstein"]
        )
    # unit-free columns and the verdicts do not move
    np.testing.assert_allclose(table["sd_ratio"], base["sd_ratio"])
    assert shown.verdicts() == plain.verdicts()
    assert shown.parameters.equals(plain.parameters)  # the fitted-unit table is kept
    md = shown.to_markdown()
    assert "ran on standardized data" in md and "in the data's own units" in md
    m11 = table.set_index(["parameter", "engine"]).loc[("means[1,1]", "nuts")]
    assert f"means[1, waiting time] (min) | {m11['mean']:.3f} ± {m11['sd']:.3f}" in md
    assert "ran on standardized data" not in plain.to_markdown()
    assert "| means[1, waiting time] | 1." in md  # the sd ratio row: unit-free, no "(min)"
    data = json.loads(json.dumps(shown.to_dict()))
    assert data["feature_names"] == ["eruption duration", "waiting time"]
    assert data["data_transform"] == {"center": center.tolist(), "scale": scale.tolist()}
    assert len(data["parameters_data_units"]) == len(table)


def test_feature_arguments_are_checked(ref):
    with pytest.raises(ValueError, match="feature_names: expected a sequence of 2 names"):
        _learned_comparison(ref, feature_names=["only one"])
    with pytest.raises(ValueError, match="data_transform: expected finite centers and positive"):
        _learned_comparison(ref, data_transform=([0.0, 0.0], [1.0, -1.0]))
    with pytest.raises(ValueError, match="units: expected one string or 2 strings"):
        _learned_comparison(ref, units=["min", "s", "h"])


def test_a_comparison_pickles_with_its_feature_fields(ref):
    import pickle
    from types import MappingProxyType

    comp = _learned_comparison(
        ref, feature_names=["a", "b"], units=("min", "s"), data_transform=([1.0, 2.0], [3.0, 4.0])
    )
    back = pickle.loads(pickle.dumps(comp))
    assert isinstance(back.fits, MappingProxyType) and list(back.fits) == list(comp.fits)
    assert (back.feature_names, back.units) == (("a", "b"), ("min", "s"))
    np.testing.assert_array_equal(back.data_transform[1], [3.0, 4.0])
    assert back.to_markdown() == comp.to_markdown()


def test_single_fit_figures_get_the_comparisons_feature_fields(ref, monkeypatch):
    from ppl_mixtures.present import plots

    seen = {}
    monkeypatch.setattr(plots, "plot_trace", lambda fit, **kw: seen.setdefault("trace", kw))
    monkeypatch.setattr(
        plots, "plot_responsibilities", lambda fit, **kw: seen.setdefault("resp", kw)
    )
    comp = _learned_comparison(
        ref, feature_names=["a", "b"], units="min", data_transform=([1.0, 2.0], [3.0, 4.0])
    )
    comp.plot_trace()
    comp.plot_responsibilities("cavi", units="s")  # an explicit argument wins
    assert seen["trace"]["feature_names"] == ("a", "b") and seen["trace"]["units"] == "min"
    np.testing.assert_array_equal(seen["trace"]["data_transform"][0], [1.0, 2.0])
    assert seen["resp"]["units"] == "s" and seen["resp"]["feature_names"] == ("a", "b")


def test_a_converged_but_too_wide_vi_fit_does_not_blame_its_family(ref):
    # a KL(q || p) optimum is narrow, not wide: the width is stated, no family is named
    nuts = make_fit("nuts", *ref)
    comp = compare({"nuts": nuts, "fullrank_advi": _vi_fit("fullrank_advi", ref, 1.3, -300.0)})
    assert comp.verdicts()["fullrank_advi"] == "converged; q too wide by 1.30x"
