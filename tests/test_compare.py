"""compare() on constructed fits whose answers are known by construction."""

import json

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from ppl_mixtures import MixtureSpec
from ppl_mixtures.compare import Comparison, compare, markdown_table
from ppl_mixtures.results import MixtureFit, Timings, make_idata

TRUE_MEANS = np.array([[-2.0, -2.0], [2.0, 2.0]])
RNG = np.random.default_rng(7)
POINTS = np.concatenate([RNG.normal(-2, 1, (40, 2)), RNG.normal(2, 1, (40, 2))])
SPEC = MixtureSpec(n_components=2)


def reference_draws(n_chains=4, n_draws=400, seed=1):
    """means (C, S, 2, 2) and weights (C, S, 2) around TRUE_MEANS, sd 0.15 and 0.05."""
    rng = np.random.default_rng(seed)
    means = TRUE_MEANS + 0.15 * rng.standard_normal((n_chains, n_draws, 2, 2))
    w0 = 0.5 + 0.05 * rng.standard_normal((n_chains, n_draws))
    return means, np.stack([w0, 1 - w0], -1)


def make_fit(engine, means, weights, *, obs_sd=None, spec=SPEC, **kwargs):
    return MixtureFit(engine=engine, spec=spec,
                      idata=make_idata(means, weights, POINTS, obs_sd=obs_sd),
                      timings=Timings(build=1.5, run=2.5), **kwargs)


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
        "agree": make_fit("cavi", agree_m, agree_w, elbo=np.linspace(-400, -300, 50),
                          extras={"elbo_final_se": 0.0}),
        "narrow": make_fit("advi", narrow_m.reshape(1, -1, 2, 2), narrow_w.reshape(1, -1, 2)),
        "wide": make_fit("wide", wide_m, wide_w),
        "swapped": make_fit("metropolis", swapped_m, swapped_w),
        "em": make_fit("em", means.mean((0, 1))[None, None], weights.mean((0, 1))[None, None]),
        "off": make_fit("off", means + 3.0 * sd, weights),
    }
    return compare(fits, reference="nuts", not_applicable={"smc": "cannot serve this spec"},
                   name="constructed")


def test_verdicts_state_the_known_answers(comparison):
    verdicts = comparison.verdicts()
    assert verdicts["nuts"] == "reference"
    assert verdicts["agree"] == "agrees"
    assert verdicts["narrow"] == "too narrow by 2.0x"
    assert verdicts["wide"] == "too wide by 1.8x"
    assert verdicts["swapped"] == "label-switched (fixed by relabeling)"
    assert verdicts["em"] == "point estimate (no uncertainty)"
    assert verdicts["off"] == "means off by 3.0 reference sd"


def test_sd_ratio_and_shift_numbers(comparison):
    eng = comparison.engines
    np.testing.assert_allclose(eng.loc["narrow", "sd_ratio"], 0.5, rtol=1e-10)
    np.testing.assert_allclose(eng.loc["wide", "sd_ratio"], 1.8, rtol=1e-10)
    np.testing.assert_allclose(eng.loc["off", "max_mean_shift"], 3.0, rtol=1e-10)
    assert eng.loc["nuts", "sd_ratio"] == 1.0 and eng.loc["nuts", "max_mean_shift"] == 0.0
    np.testing.assert_allclose(eng.loc["nuts", "total_s"], 4.0)
    assert eng.loc["agree", "elbo"] == -300.0 and eng.loc["agree", "elbo_se"] == 0.0
    assert np.isnan(eng.loc["nuts", "elbo"])


def test_label_switched_fit_is_aligned_to_the_reference(comparison, ref):
    means, _ = ref
    swapped = comparison.fits["swapped"]
    np.testing.assert_array_equal(swapped.draws("means"), means)  # every chain put back
    row = comparison.engines.loc["swapped"]
    assert row["label_switched"] and row["fraction_relabeled"] == pytest.approx(0.5)
    assert row["rhat_before_relabel"] > 1.5 and row["rhat_max"] < 1.05


def test_reversed_labels_alone_are_aligned_not_flagged(ref):
    means, weights = ref
    reversed_fit = make_fit("cavi", means[:1, :, ::-1], weights[:1, :, ::-1])
    comp = compare({"nuts": make_fit("nuts", means, weights), "rev": reversed_fit})
    np.testing.assert_array_equal(comp.fits["rev"].draws("means"), means[:1])
    assert comp.verdicts()["rev"] == "agrees"
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
    assert table.loc[("means[1,0]", "nuts"), "r_hat"] < 1.02
    assert table.loc[("means[1,0]", "nuts"), "ess_bulk"] > 500
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
    assert data["thresholds"]["sd_ratio_tol"] == 1.25


def test_to_dataframe_and_wide_table(comparison):
    frame = comparison.to_dataframe()
    assert {"parameter", "engine", "mean", "sd", "verdict"} <= set(frame.columns)
    assert (frame.loc[frame["engine"] == "narrow", "verdict"] == "too narrow by 2.0x").all()
    wide = comparison.wide_table("mean")
    assert list(wide.columns) == list(comparison.fits)
    assert list(wide.index) == ["means[0,0]", "means[0,1]", "means[1,0]", "means[1,1]",
                                "weights[0]", "weights[1]"]


def test_learned_obs_sd_and_log_evidence_are_tabulated(ref):
    means, weights = ref
    spec = MixtureSpec(n_components=2, obs_sd="learned")
    obs_sd = np.full(means.shape, 1.0) + 0.1 * np.random.default_rng(3).standard_normal(means.shape)
    nuts = make_fit("nuts", means, weights, obs_sd=obs_sd, spec=spec)
    smc = make_fit("smc", means, weights, obs_sd=obs_sd, spec=spec,
                   extras={"log_evidence": -321.5, "log_evidence_se": 0.4})
    comp = compare({"nuts": nuts, "smc": smc})
    assert "obs_sd[1,1]" in set(comp.parameters["parameter"])
    assert comp.log_evidence == -321.5 and comp.log_evidence_source == "smc"
    given = compare({"nuts": nuts, "smc": smc}, log_evidence=-300.0)
    assert given.log_evidence == -300.0 and given.log_evidence_source == "given"
    assert comp.engines.loc["smc", "log_evidence"] == -321.5
    assert "-321.5 ± 0.4" in comp.to_markdown()


def test_fixed_weights_are_left_out_of_the_judgement(ref):
    means, _ = ref
    spec = MixtureSpec(n_components=2, weights="fixed")
    weights = np.full(means.shape[:3], 0.5)
    nuts = make_fit("nuts", means, weights, spec=spec)
    narrow_m, _ = scaled(means, weights, 0.5)
    comp = compare({"nuts": nuts, "cavi": make_fit("cavi", narrow_m, weights, spec=spec)})
    rows = comp.parameters.set_index(["parameter", "engine"])
    assert np.isnan(rows.loc[("weights[0]", "cavi"), "sd_ratio"])
    assert comp.verdicts()["cavi"] == "too narrow by 2.0x"


def test_missing_reference_lists_the_fits_given(ref):
    fits = {"advi": make_fit("advi", *ref), "cavi": make_fit("cavi", *ref)}
    with pytest.raises(ValueError, match=r"reference: expected one of the fits given "
                                         r"\(advi, cavi\), got 'nuts'"):
        compare(fits)
    with pytest.raises(TypeError, match=r"fits\['x'\]: expected a MixtureFit, got int"):
        compare({"nuts": fits["advi"], "x": 3}, reference="nuts")
    with pytest.raises(TypeError, match="fits: expected a non-empty mapping"):
        compare({})


def test_fits_of_different_models_are_refused(ref):
    means, weights = ref
    three = make_fit("cavi", np.concatenate([means, means[:, :, :1]], 2),
                     np.concatenate([weights, weights[:, :, :1]], 2) / 1.5,
                     spec=MixtureSpec(n_components=3))
    with pytest.raises(ValueError, match=r"fits\['three'\]: expected K=2"):
        compare({"nuts": make_fit("nuts", means, weights), "three": three})


def test_comparison_is_frozen(comparison):
    assert isinstance(comparison, Comparison)
    with pytest.raises(AttributeError):
        comparison.reference = "advi"
    with pytest.raises(TypeError):
        comparison.fits["new"] = comparison.fits["nuts"]


def test_markdown_table_escapes_pipes():
    text = markdown_table(["a", "b"], [["x|y", 1.5]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 1.5 |"]
