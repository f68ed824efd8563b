"""write_report: every file, no overwrite without force, nothing half-written on failure;
the pure renderers (report sections, markdown cells) on their own."""

import json

import numpy as np
import pytest
import xarray as xr

from ppl_mixtures import MixtureSpec
from ppl_mixtures.analysis.compare import compare
from ppl_mixtures.present import plots
from ppl_mixtures.present.report import MARKER, headline_table, render_section, write_report
from ppl_mixtures.present.tables import fmt_estimate, markdown_table
from ppl_mixtures.results import Estimate, EvidenceEstimate, MixtureFit, Timings, make_idata

RNG = np.random.default_rng(5)
POINTS = np.concatenate([RNG.normal(-2, 1, (25, 2)), RNG.normal(2, 1, (25, 2))])
SPEC = MixtureSpec(n_components=2, dirichlet_alpha=0.5)
FAMILIES = {"nuts": "mcmc", "cavi": "vi", "em": "point"}  # as ppl_mixtures.fit records them


def _fit(engine, n_chains, n_draws, scale, seed, **kwargs):
    rng = np.random.default_rng(seed)
    means = np.array([[-2.0, -2.0], [2.0, 2.0]]) + scale * rng.standard_normal(
        (n_chains, n_draws, 2, 2)
    )
    w0 = 0.5 + scale * 0.3 * rng.standard_normal((n_chains, n_draws))
    stats = {"diverging": np.zeros((n_chains, n_draws), bool)} if engine == "nuts" else None
    kwargs.setdefault("family", FAMILIES.get(engine))
    return MixtureFit(
        engine=engine,
        spec=SPEC,
        timings=Timings(0.5, 1.0),
        idata=make_idata(
            means, np.stack([w0, 1 - w0], -1), POINTS, sample_stats=stats, attrs={"engine": engine}
        ),
        options={"random_seed": seed},
        **kwargs,
    )


@pytest.fixture(scope="module")
def comparisons():
    fits = {
        "nuts": _fit("nuts", 2, 100, 0.2, 1),
        "cavi": _fit(
            "cavi", 1, 100, 0.1, 2, elbo=np.linspace(-200.0, -150.0, 20), converged=True, n_iter=20
        ),
        "em": _fit("em", 1, 1, 0.0, 3),
    }
    first = compare(fits, name="blobs", not_applicable={"smc": "needs ordered=True"})
    second = compare({k: fits[k] for k in ("nuts", "cavi")}, name="again")
    return {"blobs": first, "again": second}


def test_report_holds_every_file_and_number(comparisons, tmp_path):
    out = write_report(comparisons, tmp_path / "rep", command="ppl-mixtures demo --quick")
    assert out == tmp_path / "rep"
    text = (out / "report.md").read_text()
    assert "ppl-mixtures demo --quick" in text
    assert text.index("## Headline") < text.index("## blobs") < text.index("## again")
    for fragment in (
        "K = 2 components",
        "50 points, 2 feature(s)",
        "| pymc |",
        "not applicable: needs ordered=True",
        "random_seed=2",
        "too narrow",
    ):
        assert fragment in text
    figures = sorted(p.name for p in (out / "figures").iterdir())
    for stem in ("blobs", "again"):
        for kind in ("data", "elbo", "marginals", "forest", "trace", "responsibilities"):
            assert f"{stem}_{kind}.png" in figures
            assert f"(figures/{stem}_{kind}.png)" in text
    results = json.loads((out / "results.json").read_text())
    assert results["command"] == "ppl-mixtures demo --quick"
    assert set(results["datasets"]) == {"blobs", "again"}
    blobs = results["datasets"]["blobs"]
    assert set(blobs["engines"]) == {"nuts", "cavi", "em"}
    assert blobs["engines"]["cavi"]["elbo"] == -150.0
    assert blobs["engines"]["cavi"]["options"] == {"random_seed": 2}
    assert len(blobs["parameters"]) == 6 * 3
    for name in ("nuts", "cavi", "em"):
        matches = list((out / "posteriors" / "blobs").glob(f"{name}*"))
        assert matches, f"no posterior file for {name}"
        nc = matches[0]
        post = (
            xr.open_datatree(nc)["posterior"].to_dataset()
            if nc.is_file()
            else xr.open_dataset(nc / "posterior.nc")
        )
        np.testing.assert_allclose(
            post["means"].values, comparisons["blobs"].fits[name].draws("means")
        )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_single_comparison_and_headline(comparisons, tmp_path):
    out = write_report(comparisons["again"], tmp_path / "one", figures=False)
    assert not any((out / "figures").iterdir())
    assert "## again" in (out / "report.md").read_text()
    table = headline_table(comparisons)
    # header, rule, blobs' 3 engines and 1 not applicable, again's 2 engines: 8 lines
    assert table.count("\n") == 8 - 1
    assert "| blobs | smc |" in table


def test_existing_report_needs_force(comparisons, tmp_path):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"already holds files\. Pass --force"):
        write_report(comparisons["again"], out, figures=False)
    assert (out / "old.txt").read_text() == "keep me"
    # force replaces only a report of ours: this folder holds the user's file (issue 11)
    with pytest.raises(FileExistsError, match=r"holds other files \(old.txt\)"):
        write_report(comparisons["again"], out, figures=False, force=True)
    assert (out / "old.txt").read_text() == "keep me"
    (out / "old.txt").unlink()
    write_report(comparisons["again"], out, figures=False)  # empty: no force needed
    first = json.loads((out / MARKER).read_text())
    assert first["generator"] == "ppl-mixtures" and first["state"] == "complete"
    write_report(comparisons["blobs"], out, figures=False, force=True)  # a report: replaced
    assert "## blobs" in (out / "report.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_failure_leaves_nothing_behind(comparisons, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(plots, "plot_forest", broken)
    target = tmp_path / "new" / "deeper" / "rep"
    with pytest.raises(RuntimeError, match="injected failure"):
        write_report(comparisons, target)
    assert list(tmp_path.iterdir()) == []  # not even the parent folders it created
    old = tmp_path / "old"
    write_report(comparisons["again"], old, figures=False)
    before = (old / "report.md").read_text()
    with pytest.raises(RuntimeError, match="injected failure"):
        write_report(comparisons, old, force=True)
    assert (old / "report.md").read_text() == before  # the old report survives
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


BAD_REPORT_ARGUMENTS = [  # (call given the comparisons and a folder, error, message)
    (
        lambda c, d: write_report({}, d / "x"),
        TypeError,
        r"^comparison: expected a Comparison or a non-empty mapping of dataset name -> "
        r"Comparison, got dict\. Build one with ppl_mixtures\.compare\(fits\)\.$",
    ),
    (
        lambda c, d: write_report({"a": 1}, d / "x"),
        TypeError,
        r"^comparison\['a'\]: expected a Comparison, got int\. Build one with",
    ),
    (
        lambda c, d: headline_table([c["again"]]),
        TypeError,
        "comparison: expected a Comparison or a non-empty mapping .* got list",
    ),
    (
        lambda c, d: write_report(c["again"], d / "file"),
        FileExistsError,
        "expected a folder, got the file",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD_REPORT_ARGUMENTS)
def test_bad_arguments(comparisons, tmp_path, call, error, match):
    (tmp_path / "file").write_text("")
    with pytest.raises(error, match=match):
        call(comparisons, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing written


def test_sections_rendered_by_worker_processes_match(comparisons, tmp_path):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    serial = write_report(comparisons, tmp_path / "serial", figures=False)
    spawn = multiprocessing.get_context("spawn")  # fresh workers: the comparisons pickle
    with ProcessPoolExecutor(2, mp_context=spawn) as pool:
        pooled = write_report(comparisons, tmp_path / "pooled", figures=False, executor=pool)

    def body(folder):
        return [
            line
            for line in (folder / "report.md").read_text().splitlines()
            if not line.startswith("Generated ")
        ]

    assert body(pooled) == body(serial)
    assert text_order(body(pooled)) == ["## blobs", "## again"]  # input order kept
    for stem in ("blobs", "again"):
        names = sorted(p.name for p in (pooled / "posteriors" / stem).iterdir())
        assert names == sorted(p.name for p in (serial / "posteriors" / stem).iterdir())
        assert "points.npy" in names


def text_order(lines):
    return [line for line in lines if line in ("## blobs", "## again")]


def test_headline_shows_evidence_as_an_estimate_and_rules_once(comparisons, tmp_path):
    fits = {
        "nuts": _fit(
            "nuts",
            2,
            100,
            0.2,
            1,
            evidence=EvidenceEstimate(-160.0, 0.21, "independent runs", flags=("runs_disagree",)),
        ),
        "cavi": _fit(
            "cavi",
            1,
            100,
            0.1,
            2,
            elbo=np.linspace(-200.0, -150.0, 20),
            converged=True,
            n_iter=20,
            elbo_estimate=Estimate(-150.0, 0.0),
        ),
    }
    comp = compare(fits, name="ev")
    table = headline_table({"ev": comp})
    # the estimate with its se (2 significant digits) and its flags; compare adds below_elbo
    # because cavi's ELBO (-150) is above it
    assert "| -160.00 ± 0.21 (runs_disagree, below_elbo) |" in table
    assert "log p(x) estimate (nats)" in table and "| k-hat |" in table
    out = write_report({"ev": comp, "again": comparisons["again"]}, tmp_path / "r", figures=False)
    text = (out / "report.md").read_text()
    assert "Known log evidence" not in text
    assert text.count("How to read the verdicts") == 1  # the rules once, not per dataset
    assert comp.evidence_line() in text


def test_headline_names_a_short_max_shift_parameter():
    nuts = _fit("nuts", 4, 200, 0.2, 1)
    means, weights = nuts.draws("means"), nuts.draws("weights")
    off = MixtureFit(
        engine="off",
        spec=SPEC,
        timings=Timings(0.5, 1.0),
        family="mcmc",
        idata=make_idata(means + 1.0, weights, POINTS),
    )  # +1 = 5 reference sd
    table = headline_table(compare({"nuts": nuts, "off": off}, name="s"))
    row = next(line for line in table.splitlines() if line.startswith("| s | off |"))
    assert "(means[0,0]) |" in row  # every mean moved 5 sd; the first is named
    nuts_row = next(line for line in table.splitlines() if line.startswith("| s | nuts |"))
    assert "(means" not in nuts_row  # no shift beyond the tolerance, no name


def test_data_summary_and_tables_in_the_datas_units(tmp_path):
    fits = {"nuts": _fit("nuts", 2, 100, 0.2, 1), "cavi": _fit("cavi", 1, 100, 0.1, 2)}
    center, scale = np.array([3.5, 70.0]), np.array([1.1, 13.6])
    comp = compare(
        fits,
        name="faithful",
        feature_names=("eruption duration", "waiting time"),
        units="min",
        data_transform=(center, scale),
    )
    out = write_report(comp, tmp_path / "u")
    text = (out / "report.md").read_text()
    raw = center + scale * POINTS
    assert (
        f"| waiting time (min) | {raw[:, 1].mean():.3f} | {raw[:, 1].std():.3f} | "
        f"{raw[:, 1].min():.3f} | {raw[:, 1].max():.3f} |"
    ) in text
    assert "the engines fitted them standardized" in text
    assert "| means[1, waiting time] (min) |" in text
    assert "Forest plot: 50 % and 89 % intervals, one panel per parameter group" in text
    assert "2-sd posterior ellipse of that mean and the 2-obs_sd ellipse" in text


# ----------------------------------------------------------------------------- pure rendering
def test_a_section_is_rendered_without_touching_files(comparisons, tmp_path, monkeypatch):
    comp = comparisons["again"]
    monkeypatch.chdir(tmp_path)  # any file written would land here
    section = render_section(
        "again",
        comp,
        [("A caption", "figures/again_data.png")],
        ["posteriors/again/nuts.nc", "posteriors/again/cavi/"],
    )
    assert list(tmp_path.iterdir()) == []
    assert section.startswith("## again\n")
    assert "![A caption](figures/again_data.png)" in section and "*A caption.*" in section
    assert "[nuts.nc](posteriors/again/nuts.nc), [cavi](posteriors/again/cavi/)" in section
    assert comp.to_markdown(rules=False) in section  # the comparison tables, rules once
    assert "Loaded from the reference cache" not in section
    assert "### Figures" not in render_section("again", comp, [], [])


def test_a_section_names_the_fits_loaded_from_the_reference_cache(comparisons):
    comp = comparisons["again"]
    cached = {name: fit.replace(from_cache=(name == "nuts")) for name, fit in comp.fits.items()}
    section = render_section("again", compare(cached, name="again"), [], [])
    assert "Loaded from the reference cache, not re-run: nuts (the reference) (" in section


def test_markdown_table_escapes_pipes_and_newlines():
    text = markdown_table(["a", "b"], [["x|y", "two\nlines"]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | two lines |"]


@pytest.mark.parametrize(
    ("mean", "se", "shown"),
    [
        (-320.7971, 0.0331, "-320.797 ± 0.033"),  # 2 significant digits of the se ...
        (-321.87, 0.51, "-321.87 ± 0.51"),
        (-321.87, 2.4, "-321.9 ± 2.4"),  # ... but at least one decimal
        (-322.09, 0.0, "-322.1 ± 0"),  # exact
        (-322.09, float("nan"), "-322.1"),  # no se
        (float("nan"), 0.1, "–"),  # no estimate
    ],
)
def test_estimates_show_their_se_to_two_significant_digits(mean, se, shown):
    assert fmt_estimate(mean, se) == shown
