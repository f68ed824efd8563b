"""The ppl-mixtures command, run in-process with the cheap engines (CAVI, EM)."""

import dataclasses
import inspect
import json
import re
import sys

import numpy as np
import pytest

from ppl_mixtures import available_engines, datasets
from ppl_mixtures.app import cli, demo, runner
from ppl_mixtures.app.demo import DemoDataset
from ppl_mixtures.model.spec import MixtureSpec

CHEAP = [name for name in ("cavi", "em") if name in available_engines()]


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "points.csv"
    points = datasets.advi_notebook_points(60)
    np.savetxt(path, points, delimiter=",", header="x,y", comments="")
    return path


@pytest.fixture(autouse=True)
def _private_reference_cache(tmp_path_factory, monkeypatch):
    """Each test its own reference cache (never the user's ~/.cache), so a fit cached by
    one test is never a hit in another."""
    monkeypatch.setenv("PPL_MIXTURES_CACHE", str(tmp_path_factory.mktemp("refcache")))


def run(argv, capsys):
    """``ppl-mixtures ARGV`` in-process: (exit code, stdout, stderr). A string is split on
    whitespace, as a shell would split it (the paths here have no spaces)."""
    argv = argv.split() if isinstance(argv, str) else argv
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _option_names(engine):
    if engine.options is not None:
        return [f.name for f in dataclasses.fields(engine.options) if f.init]
    return [
        name
        for name, p in inspect.signature(engine.fit).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]


def _engine_block(text, name):
    """The lines of ``name``'s entry in the generated engine list (up to the next engine)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {name} ["))
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"  \S", lines[i])), len(lines))
    return "\n".join(lines[start:end])


@pytest.mark.parametrize("argv", [["fit", "--help"], ["compare", "--help"], ["engines"]])
def test_help_lists_every_registered_engine_with_its_options(argv, capsys):
    code, out, _ = run(argv, capsys)
    assert code == 0
    for name, engine in available_engines().items():
        block = _engine_block(out, name)
        assert f"[{engine.family}" in block.splitlines()[0]
        flat = " ".join(block.split())  # the list is wrapped to the terminal's width
        assert " ".join(engine.summary.split()) in flat
        for option in _option_names(engine):
            assert re.search(rf"^      {option}: ", block, re.MULTILINE), (name, option)
        for field in dataclasses.fields(engine.options) if engine.options else ():
            assert " ".join(field.metadata.get("help", "").split()) in flat, (name, field.name)


def test_top_level_and_demo_help_load_no_engine():
    """``ppl-mixtures --help`` and ``demo --help`` stay instant: no PyMC, PyTensor or
    matplotlib (a fresh process, so nothing an earlier test imported counts)."""
    import subprocess

    code = (
        "import contextlib, io, sys\n"
        "from ppl_mixtures.app import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    codes = [cli.main(['--help']), cli.main(['demo', '--help'])]\n"
        "heavy = [m for m in ('pymc', 'pytensor', 'matplotlib') if m in sys.modules]\n"
        "print(codes, heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[0, 0] []", done.stderr


def test_help_teaches(capsys):
    code, out, _ = run("compare --help", capsys)
    assert code == 0
    for fragment in ("--standardize", "--obs-sd SD|learned", "examples:", "point estimate"):
        assert fragment in out
    assert run("", capsys)[0] == 2  # a command is required


def test_fit_prints_summary_and_writes_report(csv_path, tmp_path, capsys):
    out_dir = tmp_path / "fit"
    code, out, err = run(
        f"fit {csv_path} -k 2 --engine cavi --quick --random-seed 3 --out {out_dir}",
        capsys,
    )
    assert code == 0, err
    assert "MixtureFit(engine='cavi', K=2, D=2" in out
    assert "cavi: done in" in err  # progress on stderr
    report = (out_dir / "report.md").read_text()
    assert f"ppl-mixtures fit {csv_path} -k 2 --engine cavi" in report
    results = json.loads((out_dir / "results.json").read_text())
    (dataset,) = results["datasets"].values()
    assert dataset["engines"]["cavi"]["options"]["random_seed"] == 3


def test_compare_tables_every_engine(csv_path, tmp_path, capsys):
    out_dir = tmp_path / "cmp"
    code, out, err = run(
        f"--quiet compare {csv_path} -k 2 --engines {','.join(CHEAP)} --reference cavi --quick --columns x,y --dirichlet-alpha 0.5 --out {out_dir}",
        capsys,
    )
    assert code == 0, err
    assert err == ""  # --quiet
    for name in CHEAP:
        assert f"| {name} |" in out
    results = json.loads((out_dir / "results.json").read_text())
    (dataset,) = results["datasets"].values()
    assert set(dataset["engines"]) == set(CHEAP)
    assert dataset["spec"]["dirichlet_alpha"] == 0.5
    # the same folder again: refused before any fitting, and left as it was
    code, _, err = run(
        f"compare {csv_path} -k 2 --engines cavi --reference cavi --quiet --out {out_dir}",
        capsys,
    )
    assert code == 2 and "--force" in err and err.count("\n") == 1


def test_standardize_learned_sd_and_engine_warnings(csv_path, capsys):
    code, out, err = run(
        f"fit {csv_path} -k 2 --engine cavi --standardize --obs-sd learned --option max_iter=5",
        capsys,
    )
    assert code == 0, err
    assert "obs_sd (mean)" in out and "converged: False after 5 iterations" in out
    assert "cavi: warning:" in err  # the engine's ConvergenceWarning reaches the user


def test_standardize_reports_in_the_datas_units_and_column_names(csv_path, tmp_path, capsys):
    out_dir = tmp_path / "std"
    code, out, err = run(
        f"--quiet compare {csv_path} -k 2 --engines cavi,em --reference cavi --quick --standardize --obs-sd learned --out {out_dir}",
        capsys,
    )
    assert code == 0, err
    assert "The fit ran on standardized data" in out
    raw = np.loadtxt(csv_path, delimiter=",", skiprows=1)
    center, scale = raw.mean(0), raw.std(0)  # what datasets.standardize divides by (ddof=0)
    results = json.loads((out_dir / "results.json").read_text())
    (dataset,) = results["datasets"].values()
    assert dataset["feature_names"] == ["x", "y"]
    np.testing.assert_allclose(dataset["data_transform"]["center"], center)
    fitted = {(r["parameter"], r["engine"]): r for r in dataset["parameters"]}
    for k, d, name in ((0, 1, "y"), (1, 0, "x")):
        mean = fitted[(f"means[{k},{d}]", "cavi")]
        sd = fitted[(f"obs_sd[{k},{d}]", "cavi")]
        # the printed row: center + scale * (standardized mean), sds times the scale
        assert (
            f"| means[{k}, {name}] | {center[d] + scale[d] * mean['mean']:.3f} ± "
            f"{scale[d] * mean['sd']:.3f} |"
        ) in out
        assert f"| obs_sd[{k}, {name}] | {scale[d] * sd['mean']:.3f} ± " in out
    weight = fitted[("weights[0]", "cavi")]
    assert f"| weights[0] | {weight['mean']:.3f} ± {weight['sd']:.3f} |" in out  # unit-free


def test_fit_with_standardize_adds_a_table_in_data_units(csv_path, capsys):
    code, out, err = run(f"--quiet fit {csv_path} -k 2 --engine em --quick --standardize", capsys)
    assert code == 0, err
    assert "means (mean)" in out and "in the data's own units" in out
    assert "| means[0, x] |" in out and "| means[1, y] |" in out


BAD_FILES = {
    "text": ("x,y\n1.0,2.0\n3.0,abc\n", "abc"),
    "nan": ("x,y\n1.0,2.0\nnan,3.0\n4.0,1.0\n", "missing"),
    "empty": ("", "empty"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_files_exit_2_with_one_line(kind, tmp_path, capsys):
    content, word = BAD_FILES[kind]
    path = tmp_path / f"{kind}.csv"
    path.write_text(content)
    out_dir = tmp_path / "out"
    code, _, err = run(f"--quiet fit {path} -k 2 --engine cavi --out {out_dir}", capsys)
    assert code == 2
    assert err.startswith("ppl-mixtures: error: ") and err.count("\n") == 1
    assert word in err.lower() and "Traceback" not in err
    assert not out_dir.exists()


def test_one_column_with_more_components_than_rows(tmp_path, capsys):
    path = tmp_path / "one.csv"
    path.write_text("1.0\n2.0\n")
    code, _, err = run(
        f"--quiet compare {path} -k 3 --engines cavi --reference cavi --out {tmp_path / 'out'}",
        capsys,
    )
    assert code == 2 and "n_components" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["fit", "{missing}", "-k", 2, "--engine", "cavi"], "nope.csv"),
        (["fit", "{csv}", "-k", 2, "--engine", "magic"], "engine: expected one of"),
        (
            ["fit", "{csv}", "-k", 2, "--engine", "cavi", "--option", "bogus=1"],
            "unknown option(s) 'bogus'",
        ),
        (
            ["compare", "{csv}", "-k", 2, "--engines", "cavi"],
            "--reference: expected one of the engines to run (cavi)",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, words, csv_path, tmp_path, capsys):
    paths = {"{csv}": str(csv_path), "{missing}": str(tmp_path / "nope.csv")}
    code, out, err = run(["--quiet", *(paths.get(a, a) for a in argv)], capsys)
    assert code == 2 and words in err and err.count("\n") == 1 and out == ""


def test_not_applicable_and_internal_failure(csv_path, capsys, monkeypatch):
    from ppl_mixtures.model.evidence import exact_log_evidence

    fit_module = sys.modules["ppl_mixtures.inference.fit"]  # the attribute is the function
    real_fit = fit_module.fit

    def picky_fit(points, spec, engine="nuts", **options):
        if engine == "nuts":  # never runs: stands in for an engine that declines the spec,
            # with a NotImplementedError raised by our own code (exit 2, not internal)
            exact_log_evidence(points, MixtureSpec(n_components=2, obs_sd="learned"))
        return real_fit(points, spec, engine=engine, **options)

    monkeypatch.setattr(fit_module, "fit", picky_fit)
    code, out, err = run(
        f"compare {csv_path} -k 2 --engines cavi,nuts --reference cavi --quick",
        capsys,
    )
    assert code == 0 and "not applicable: spec.obs_sd: exact_log_evidence needs" in out
    assert "nuts: not applicable" in err  # the progress line says so too
    code, _, err = run(f"--quiet fit {csv_path} -k 2 --engine nuts", capsys)
    assert code == 2 and "needs a known obs_sd" in err

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(fit_module, "fit", broken)
    code, _, err = run(f"--quiet fit {csv_path} -k 2 --engine cavi", capsys)
    assert code == 1 and "internal error: RuntimeError: boom" in err and "--debug" in err
    assert "Traceback" not in err
    code, _, err = run(f"--debug --quiet fit {csv_path} -k 2 --engine cavi", capsys)
    assert code == 1 and "Traceback" in err


def test_demo_writes_every_dataset_section(tmp_path, capsys, monkeypatch):
    _small_demo(monkeypatch, line_is_large=True)
    out_dir = tmp_path / "demo"
    code, out, err = run(f"demo --quick --out {out_dir}", capsys)
    assert code == 0, err
    assert out.startswith("| dataset | engine |")
    for name in CHEAP:
        assert f"| blobs | {name} |" in out and f"| line | {name} |" in out
    report = (out_dir / "report.md").read_text()
    assert "## blobs" in report and "## line" in report
    assert f"ppl-mixtures demo --quick --out {out_dir}" in report
    code, _, err = run(f"demo --quick --out {out_dir}", capsys)
    assert code == 2 and "--force" in err


def _break_engine(monkeypatch, broken, error):
    """Make ppl_mixtures.inference.fit.fit raise ``error`` for the engine ``broken`` only."""
    fit_module = sys.modules["ppl_mixtures.inference.fit"]
    real_fit = fit_module.fit

    def fit_or_raise(points, spec, engine="nuts", **options):
        if engine == broken:
            raise error
        return real_fit(points, spec, engine=engine, **options)

    monkeypatch.setattr(fit_module, "fit", fit_or_raise)


def test_demo_keeps_going_when_an_engine_crashes(tmp_path, capsys, monkeypatch):
    _break_engine(monkeypatch, "em", RuntimeError("em broke"))
    _small_demo(monkeypatch, names=("blobs",))
    out_dir = tmp_path / "demo"
    code, out, err = run(f"--quiet demo --quick --out {out_dir}", capsys)
    assert code == 1
    assert "1 engine run(s) failed (blobs/em: RuntimeError: em broke)" in err
    assert "| blobs | cavi |" in out
    assert "FAILED (RuntimeError: em broke)" in (out_dir / "report.md").read_text()


def test_demo_plan_applies_the_demo_settings_to_the_registry():
    registry = available_engines()
    plan = dict(demo.demo_plan(large=False, quick=True, seed=4))
    assert list(plan) == list(registry)
    for name, options in plan.items():
        assert options["random_seed"] == 4
        assert options.get("progressbar", False) is False  # the CLI shows its own progress
        for key, value in demo.QUICK_OPTIONS.get(name, {}).items():
            assert options[key] == value
    large = dict(demo.demo_plan(large=True, quick=False, seed=None))
    assert set(large) == {n for n, e in registry.items() if e.scalable} | {"nuts"}
    for name, options in large.items():
        expected = {**demo.DEMO_OPTIONS.get(name, {}), **demo.LARGE_DATA_OPTIONS.get(name, {})}
        if name == "nuts":
            expected.update(demo.LARGE_DATA_NUTS)
        assert {key: options[key] for key in expected} == expected, name


@pytest.mark.parametrize(
    "table", ["QUICK_OPTIONS", "DEMO_OPTIONS", "LARGE_DATA_OPTIONS", "MAX_SAMPLES"]
)
def test_demo_settings_name_registered_engines_and_their_options(table):
    from ppl_mixtures.validation import check_engine_options

    registry = available_engines()
    settings = getattr(demo, table)
    assert set(settings) <= set(registry)  # a renamed engine would silently lose its settings
    if table == "MAX_SAMPLES":
        return
    for name, options in settings.items():
        engine = registry[name]
        check_engine_options(name, engine.options or engine.fit, options)  # TypeError if not
    if table == "LARGE_DATA_OPTIONS":
        assert all(registry[name].scalable for name in settings)


def test_bench_runs_a_benchmarks_folder(tmp_path, capsys):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "bench_toy.py").write_text(
        'NAME = "toy"\n\ndef run(quick=False):\n    return f"# toy\\nquick={quick}"\n'
    )
    (folder / "helper.py").write_text("raise RuntimeError('not a benchmark')\n")
    code, _, err = run(f"--quiet bench --quick --dir {folder}", capsys)
    assert code == 0, err
    assert (tmp_path / "reports" / "benchmarks" / "toy.md").read_text() == "# toy\nquick=True\n"
    code, _, err = run(f"--quiet bench --dir {tmp_path / 'absent'}", capsys)
    assert code == 2 and "expected a benchmarks folder" in err
    code, _, err = run(f"--quiet bench --dir {folder} --only nope", capsys)
    assert code == 2 and "--only" in err


def test_module_entry_point(capsys, monkeypatch):
    import runpy

    monkeypatch.setattr(sys, "argv", ["ppl_mixtures", "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("ppl_mixtures", run_name="__main__")
    assert exit_.value.code == 0
    assert "usage: ppl-mixtures" in capsys.readouterr().out


def test_demo_skips_engines_above_their_max_samples():
    plan = demo.demo_plan(large=False, quick=True, seed=1)
    limited = set(demo.MAX_SAMPLES)
    assert "latent_gibbs" in limited
    kept, skipped = demo.drop_too_slow(plan, n_samples=1000)
    assert set(skipped) == limited
    assert "impractically slow above 150 points (this dataset has 1000)" in skipped["latent_gibbs"]
    assert {name for name, _ in kept} == {name for name, _ in plan} - limited
    assert demo.drop_too_slow(plan, n_samples=100) == (plan, {})


SMALL_DEMO = {
    "blobs": lambda large: DemoDataset(
        "blobs",
        datasets.advi_notebook_points(40),
        MixtureSpec(n_components=2, dirichlet_alpha=0.1),
        large=False,
        about="",
    ),
    "line": lambda large: DemoDataset(
        "line",
        datasets.three_clusters_1d()[0][::20],
        MixtureSpec(n_components=3, mean_prior_sd=10.0, weights="fixed"),
        large=large,
        about="",
    ),
}


def _small_demo(monkeypatch, engines=CHEAP, line_is_large=False, names=("blobs", "line")):
    """The demo on small data with the cheap engines (the real plans, filtered)."""
    real_plan = demo.demo_plan
    monkeypatch.setattr(
        demo, "demo_datasets", lambda: [SMALL_DEMO[name](line_is_large) for name in names]
    )
    monkeypatch.setattr(
        demo,
        "demo_plan",
        lambda large, quick, seed: [
            (name, opts) for name, opts in real_plan(large, quick, seed) if name in engines
        ],
    )


def test_demo_in_worker_processes_matches_one_process(tmp_path, capsys, monkeypatch):
    _small_demo(monkeypatch)
    tables = {}
    for jobs in (1, 2):
        out_dir = tmp_path / f"demo{jobs}"
        code, _, err = run(f"--quiet demo --quick --jobs {jobs} --out {out_dir}", capsys)
        assert code == 0, err
        results = json.loads((out_dir / "results.json").read_text())
        tables[jobs] = {
            (dataset, engine): (row["max_mean_shift"], row["sd_ratio"], row["elbo"])
            for dataset, comp in results["datasets"].items()
            for engine, row in comp["engines"].items()
        }
    assert set(tables[1]) == {(d, e) for d in ("blobs", "line") for e in CHEAP}
    assert tables[1] == tables[2]  # same seeds, same numbers, wherever the fit ran


def test_demo_jobs_must_be_positive(tmp_path, capsys, monkeypatch):
    _small_demo(monkeypatch)
    code, _, err = run(f"--quiet demo --quick --jobs 0 --out {tmp_path / 'd'}", capsys)
    assert code == 2 and "--jobs: expected a positive number" in err
    assert not (tmp_path / "d").exists()


def test_a_fit_crosses_the_process_boundary():
    import pickle
    from multiprocessing.reduction import ForkingPickler
    from types import MappingProxyType

    from ppl_mixtures import fit

    fitted = fit(
        datasets.advi_notebook_points(30), MixtureSpec(n_components=2), engine="em", random_seed=2
    )
    # the pool's pickler, with no registration of ours: MixtureFit pickles itself
    back = pickle.loads(bytes(ForkingPickler.dumps(fitted)))
    assert isinstance(back.options, MappingProxyType)
    assert dict(back.options) == dict(fitted.options)
    np.testing.assert_array_equal(
        back.idata["posterior"]["means"].values, fitted.idata["posterior"]["means"].values
    )


def test_demo_reference_failing_in_a_worker_leaves_nothing(tmp_path, capsys, monkeypatch):
    # workers are forked: they see the patched fit
    _break_engine(monkeypatch, "cavi", ValueError("cavi: expected good data, got bad. Try again."))
    _small_demo(monkeypatch)
    out_dir = tmp_path / "reports" / "demo"
    code, _, err = run(f"--quiet demo --quick --jobs 2 --out {out_dir}", capsys)
    # the demo's data and settings are built in: an engine refusing them is our failure
    assert code == 1 and "internal error: ValueError: cavi: expected good data" in err
    assert not (tmp_path / "reports").exists()  # no report, no temporary folder, no parent


def test_a_pymc_fit_in_a_worker_draws_what_it_draws_here():
    from ppl_mixtures import fit

    points = datasets.advi_notebook_points(30)
    spec = MixtureSpec(n_components=2, dirichlet_alpha=0.5)
    options = {
        "draws": 50,
        "tune": 50,
        "chains": 2,
        "random_seed": 7,
        "progressbar": False,
        "log_likelihood": False,
    }
    here = fit(points, spec, engine="metropolis", **options)
    with runner.worker_pool(2) as pool:
        there, _, seconds = pool.submit(
            runner.timed_fit, points, spec, "metropolis", options
        ).result()
    assert seconds > 0
    np.testing.assert_array_equal(
        there.idata["posterior"]["means"].values, here.idata["posterior"]["means"].values
    )
    assert dict(there.options) == dict(here.options)


def _cache_entries():
    import os
    from pathlib import Path

    return sorted(p.name for p in Path(os.environ["PPL_MIXTURES_CACHE"]).glob("*.fit.pkl"))


@pytest.mark.parametrize("jobs", [1, 2])
def test_demo_reference_comes_from_the_cache_the_second_time(tmp_path, capsys, monkeypatch, jobs):
    _small_demo(monkeypatch)
    monkeypatch.setattr(demo, "DEMO_CACHED_ENGINES", ("em",))  # as the demo caches smc
    results, errs = [], []
    for run_no in range(2):
        out_dir = tmp_path / f"demo{run_no}"
        code, _, err = run(f"demo --quick --jobs {jobs} --out {out_dir}", capsys)
        assert code == 0, err
        errs.append(err)
        results.append(json.loads((out_dir / "results.json").read_text()))
    assert len(_cache_entries()) == 4  # the reference and em, per dataset (blobs, line)
    assert "loaded from the reference cache" not in errs[0]
    assert errs[1].count("loaded from the reference cache") == 4
    assert errs[1].count("em: loaded from the reference cache") == 2
    report = (tmp_path / "demo1" / "report.md").read_text()
    assert (
        report.count("Loaded from the reference cache, not re-run: cavi (the reference), em (") == 2
    )
    assert "loaded from the reference cache" not in (tmp_path / "demo0" / "report.md").read_text()
    for dataset in ("blobs", "line"):  # a hit gives the numbers the run gave
        first, second = (r["datasets"][dataset]["parameters"] for r in results)
        assert first == second


def test_no_cache_neither_reads_nor_writes_the_cache(csv_path, tmp_path, capsys):
    argv = ["compare", csv_path, "-k", 2, "--engines", "cavi,em", "--reference", "cavi", "--quick"]
    code, _, err = run([*argv, "--no-cache"], capsys)
    assert code == 0, err
    assert _cache_entries() == []
    assert run(argv, capsys)[0] == 0
    entries = _cache_entries()
    assert len(entries) == 1  # the reference only
    code, _, err = run(argv, capsys)
    assert code == 0 and "cavi: loaded from the reference cache" in err
    code, _, err = run([*argv, "--no-cache"], capsys)
    assert code == 0 and "loaded from the reference cache" not in err
    assert _cache_entries() == entries


def test_compare_against_the_exact_posterior(tmp_path, capsys):
    from ppl_mixtures import MixtureSpec
    from ppl_mixtures.model import evidence

    points = datasets.advi_notebook_points(12)
    path = tmp_path / "tiny.csv"
    np.savetxt(path, points, delimiter=",", header="x,y", comments="")
    code, out, err = run(
        f"--quiet compare {path} -k 2 --engines cavi,em --reference exact --quick",
        capsys,
    )
    assert code == 0, err
    assert "Every engine against the exact posterior" in out
    exact = evidence.exact_posterior(
        np.loadtxt(path, delimiter=",", skiprows=1), MixtureSpec(n_components=2)
    )
    assert f"Exact log evidence log p(x) = {exact.log_evidence:.3f} nats" in out


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--obs-sd", "learned"], "needs a known obs_sd"),
        ([], "got K=2, N=60"),
    ],
)
def test_exact_reference_beyond_its_limit_is_refused_before_fitting(csv_path, capsys, extra, words):
    code, _, err = run(
        ["compare", csv_path, "-k", 2, "--engines", "cavi", "--reference", "exact", *extra], capsys
    )
    assert code == 2 and err.startswith("ppl-mixtures: error: --reference: 'exact'")
    assert words in err and err.count("\n") == 1
    assert "done in" not in err  # refused before anything was fitted


# --------------------------------------------------------------------------- option docs
@dataclasses.dataclass(frozen=True, kw_only=True)
class _ToyOptions:
    draws: int = dataclasses.field(default=10, metadata={"help": "kept draws per chain"})
    tags: tuple = dataclasses.field(default_factory=tuple, metadata={"help": "labels"})


def _toy_with_options(points, spec, **options):
    raise AssertionError("never fitted")


def _toy_with_keywords(points, spec, *, draws: int = 10, tags: tuple = ()):
    """Toy.

    Parameters
    ----------
    draws : int
        Kept draws per chain. More text.
    tags : {"a", "b"}
        Labels.
    """
    raise AssertionError("never fitted")


@pytest.mark.parametrize(
    ("fit_function", "options", "types", "helps"),
    [
        (_toy_with_options, _ToyOptions, ["int", "tuple"], ["kept draws per chain", "labels"]),
        (_toy_with_keywords, None, ["int", '{"a", "b"}'], ["Kept draws per chain.", "Labels."]),
    ],
)
def test_options_come_from_the_dataclass_or_else_the_keywords(fit_function, options, types, helps):
    from ppl_mixtures.app.options import accepted_options, engine_options, option_docs
    from ppl_mixtures.inference.registry import Engine

    engine = Engine(name="toy", fit=fit_function, summary="toy", family="mcmc", options=options)
    docs = option_docs(engine)
    assert [(d.name, d.type, d.default, d.help) for d in docs] == [
        ("draws", types[0], "10", helps[0]),
        ("tags", types[1], "()", helps[1]),
    ]
    assert accepted_options(engine) == {"draws", "tags"}
    # non-strict: what the engine does not take is dropped (compare passes options on)
    assert engine_options(engine, {"draws": 5}, {"chains": 2}, strict=False) == {"draws": 5}


def test_an_engine_taking_any_keyword_accepts_every_option():
    from ppl_mixtures.app.options import accepted_options, engine_options, option_docs
    from ppl_mixtures.inference.registry import Engine

    engine = Engine(name="toy", fit=_toy_with_options, summary="toy", family="mcmc")
    assert option_docs(engine) is None and accepted_options(engine) is None
    assert engine_options(engine, {}, {"chains": 2}, strict=False) == {"chains": 2}


def test_choose_k_help_teaches_and_loads_no_engine():
    """``choose-k --help`` lists the criteria with their costs and examples, and stays
    instant (a fresh process: no PyMC, PyTensor or matplotlib)."""
    import subprocess

    code = (
        "import contextlib, io, sys\n"
        "from ppl_mixtures.app import cli\n"
        "text = io.StringIO()\n"
        "with contextlib.redirect_stdout(text):\n"
        "    status = cli.main(['choose-k', '--help'])\n"
        "heavy = [m for m in ('pymc', 'pytensor', 'matplotlib') if m in sys.modules]\n"
        "print(status, heavy)\n"
        "print(text.getvalue())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, _, text = done.stdout.partition("\n")
    assert first == "0 []", done.stderr
    for fragment in ("--ks KS", "--covariance", "--criteria", "elbo_logk", "one NUTS fit per K",
                     "examples:", "ppl-mixtures choose-k points.csv --ks 1-6 --out choose_k"):  # fmt: skip
        assert fragment in text, fragment
