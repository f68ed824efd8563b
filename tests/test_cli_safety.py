"""The command line on issue 11: --force and the user's files, --out checked before any
fitting, --dropna's report, unknown options, exit codes (2 = our input check, 1 = internal)
and one-line argparse errors. In-process, with the cheap engines."""

import os
import sys

import numpy as np
import pytest

from ppl_mixtures import datasets
from ppl_mixtures.app import cli, demo
from ppl_mixtures.app.errors import UsageError, input_checks, internal, is_input_error


@pytest.fixture(autouse=True)
def _private_reference_cache(tmp_path_factory, monkeypatch):
    """Each test its own reference cache (never the user's ~/.cache), so a fit cached by
    one test is never a hit in another."""
    monkeypatch.setenv("PPL_MIXTURES_CACHE", str(tmp_path_factory.mktemp("refcache")))


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "points.csv"
    np.savetxt(path, datasets.advi_notebook_points(40), delimiter=",", header="x,y", comments="")
    return path


def run(argv, capsys):
    """``ppl-mixtures ARGV`` in-process: (exit code, stdout, stderr). A string is split on
    whitespace, as a shell would split it (the paths here have no spaces)."""
    argv = argv.split() if isinstance(argv, str) else argv
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err):
    return err.count("\n") == 1 and "Traceback" not in err


CHEAP = "--engine cavi --max-iter 3"


# --------------------------------------------------------------------------- item 1
def test_force_on_the_folder_holding_the_input_keeps_both_files(tmp_path, capsys):
    proj = tmp_path / "proj"
    proj.mkdir()
    data = proj / "data.csv"
    np.savetxt(data, datasets.advi_notebook_points(30), delimiter=",")
    (proj / "notes.txt").write_text("my notes")
    before = data.read_bytes()
    code, out, err = run(
        f"compare {data} -k 2 --engines cavi --reference cavi --quick --out {proj} --force",
        capsys,
    )
    assert code == 2 and one_line(err) and "--out" in err
    assert "does not hold the input data" in err and out == ""  # refused before fitting
    assert data.read_bytes() == before and (proj / "notes.txt").read_text() == "my notes"
    assert sorted(p.name for p in proj.iterdir()) == ["data.csv", "notes.txt"]


def test_force_on_a_folder_of_other_files_is_refused(csv_path, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("years of work")
    code, _, err = run(f"--quiet fit {csv_path} -k 2 {CHEAP} --out {other} --force", capsys)
    assert code == 2 and one_line(err) and "--out: expected a ppl-mixtures report" in err
    assert "thesis.tex" in err and (other / "thesis.tex").read_text() == "years of work"


def test_force_replaces_our_own_report(csv_path, tmp_path, capsys):
    out_dir = tmp_path / "rep"
    for seed in (1, 2):
        code, _, err = run(
            f"--quiet fit {csv_path} -k 2 {CHEAP} --random-seed {seed} --out {out_dir} --force",
            capsys,
        )
        assert code == 0, err
        assert f"--random-seed {seed}" in (out_dir / "report.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


@pytest.mark.parametrize("when", ["fitting", "writing"])
def test_out_taken_by_someone_else_meanwhile(when, csv_path, tmp_path, capsys, monkeypatch):
    """The early check passes (no --out yet); then another program creates --out, while we
    fit (refused when the report starts) or while the report is written (refused at the
    swap: the finished report is kept beside it)."""
    from ppl_mixtures.present import report

    out_dir = tmp_path / "rep"

    def someone_writes():
        out_dir.mkdir()
        (out_dir / "theirs.txt").write_text("theirs")

    if when == "fitting":
        fit_module = sys.modules["ppl_mixtures.inference.fit"]
        real_fit = fit_module.fit

        def fit_while_someone_writes(*args, **kwargs):
            someone_writes()
            return real_fit(*args, **kwargs)

        monkeypatch.setattr(fit_module, "fit", fit_while_someone_writes)
    else:
        real_render = report.render_report  # report.md's text, rendered before the swap

        def render_while_someone_writes(*args, **kwargs):
            text = real_render(*args, **kwargs)
            someone_writes()
            return text

        monkeypatch.setattr(report, "render_report", render_while_someone_writes)
    code, _, err = run(f"--quiet fit {csv_path} -k 2 {CHEAP} --out {out_dir} --force", capsys)
    assert code == 2 and one_line(err) and "--out" in err, err
    assert [p.name for p in out_dir.iterdir()] == ["theirs.txt"]
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("rep.new-")]
    if when == "fitting":
        assert kept == [] and "holds other files (theirs.txt)" in err
    else:
        assert len(kept) == 1 and (kept[0] / "report.md").exists()
        assert f"kept in '{kept[0]}'" in err and "is not a ppl-mixtures report" in err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------- item 4
def _fit_must_not_run(monkeypatch):
    fit_module = sys.modules["ppl_mixtures.inference.fit"]

    def no_fitting(*args, **kwargs):
        raise AssertionError("fitting started although --out is unusable")

    monkeypatch.setattr(fit_module, "fit", no_fitting)


@pytest.mark.parametrize(
    "case", ["dot", "cwd", "parent_is_file", "is_file", "read_only", "holds_input", "home", "root"]
)
def test_unusable_out_is_refused_before_fitting(case, csv_path, tmp_path, capsys, monkeypatch):
    _fit_must_not_run(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    out, word = {
        "dot": (".", "the current folder"),
        "cwd": (str(tmp_path), "the current folder"),
        "parent_is_file": ("afile/rep", "is a file"),
        "is_file": ("afile", "got the file"),
        "read_only": ("/sys/rep", "refuses"),  # sysfs: no new folders, even for root
        "holds_input": (str(csv_path.parent), "does not hold the input data"),
        "home": (os.path.expanduser("~"), "your home folder"),
        "root": ("/", "the file system's root"),
    }[case]
    code, stdout, err = run(
        f"compare {csv_path} -k 2 --engines cavi --reference cavi --out {out} --force",
        capsys,
    )
    assert code == 2 and one_line(err) and "--out" in err and word in err
    assert stdout == "" and (tmp_path / "afile").read_text() == "x"


# --------------------------------------------------------------------------- item 7
def test_dropna_says_how_many_rows_of_how_many(tmp_path, capsys):
    path = tmp_path / "holes.csv"
    rows = datasets.advi_notebook_points(12)
    text = ["x,y"] + [f"{a},{b}" for a, b in rows]
    text[3], text[8] = "nan,1.0", "2.0,"
    path.write_text("\n".join(text) + "\n")
    code, _, err = run(f"--quiet fit {path} -k 2 {CHEAP} --dropna", capsys)
    assert code == 0, err
    lines = [line for line in err.splitlines() if "--dropna" in line]
    assert lines == [
        "ppl-mixtures: warning: --dropna: dropped 2 of 12 rows with missing "
        "values (lines 4, 9); 10 kept."
    ]


def test_loader_warnings_reach_the_user_on_one_line(tmp_path, capsys):
    path = tmp_path / "d.csv"
    body = "\n".join(f"{0.5 + i:.2f},{1.5 + i / 10:.2f}" for i in range(6))
    path.write_text(f"0,1\n{body}\n")  # a numeric header row: read as data, and said so
    code, _, err = run(f"--quiet fit {path} -k 2 {CHEAP}", capsys)
    assert code == 0, err
    (line,) = [line for line in err.splitlines() if "first line" in line]
    assert line.startswith("ppl-mixtures: warning: path: the first line of 'd.csv'")
    assert "read as data" in line


def test_demo_seed_000_prior_is_variance_10():
    (item,) = [d for d in demo.demo_datasets() if d.name == "three_clusters_1d"]
    # Blei et al.'s model (seed 000): mu_k ~ N(0, sigma^2) with sigma^2 = 10, a variance
    assert item.spec.mean_prior_sd**2 == pytest.approx(10.0, rel=1e-12)
    assert "variance 10" in item.about


# --------------------------------------------------------------------------- item 9
def test_an_option_no_selected_engine_accepts_is_an_error(csv_path, capsys):
    code, out, err = run(
        f"--quiet compare {csv_path} -k 2 --engines cavi,em --reference cavi --quick --option n_inti=50",
        capsys,
    )
    assert code == 2 and one_line(err) and out == ""
    assert (
        "--option n_inti: expected an option that at least one of the selected engines "
        "(cavi, em) accepts" in err
    )
    assert "Valid options: backend, chunk_size, init, max_iter" in err and "n_init" in err
    code, _, err = run(
        f"--quiet compare {csv_path} -k 2 --engines cavi,em --reference cavi --draws 10",
        capsys,
    )
    assert code == 2 and "--draws: expected an option" in err
    # accepted by one engine only: passed to that one, and fine
    code, out, err = run(
        f"--quiet compare {csv_path} -k 2 --engines cavi,em --reference cavi --quick --option reg_covar=1e-5",
        capsys,
    )
    assert code == 0, err
    assert "| em |" in out


# --------------------------------------------------------------------------- item 12
def _engine_raises_inside_pymc(monkeypatch):
    """cavi's fit calls into PyMC with shapes PyMC refuses (a ValueError from pytensor)."""
    fit_module = sys.modules["ppl_mixtures.inference.fit"]
    real_fit = fit_module.fit

    def fit_that_breaks(points, spec, engine="nuts", **options):
        if engine == "cavi":
            import pymc as pm

            pm.Normal.dist(mu=np.zeros(2), sigma=np.ones(3))  # ValueError inside PyTensor
        return real_fit(points, spec, engine=engine, **options)

    monkeypatch.setattr(fit_module, "fit", fit_that_breaks)


def test_a_value_error_from_inside_pymc_is_internal(csv_path, capsys, monkeypatch):
    _engine_raises_inside_pymc(monkeypatch)
    code, _, err = run(f"--quiet fit {csv_path} -k 2 {CHEAP}", capsys)
    assert code == 1 and one_line(err)
    assert err.startswith("ppl-mixtures: internal error: ValueError: Could not broadcast")
    assert "(run with --debug for the traceback)" in err
    code, _, err = run(f"--debug --quiet fit {csv_path} -k 2 {CHEAP}", capsys)
    assert code == 1 and "Traceback" in err and "pytensor" in err


def test_our_own_checks_inside_an_engine_are_exit_2(csv_path, capsys):
    # svi's own check (a multi-line raise in ppl_mixtures.inference.conjugate.svi) and the spec's
    code, _, err = run(f"--quiet fit {csv_path} -k 2 --engine svi --option kappa=0.1", capsys)
    assert code == 2 and one_line(err) and err.startswith("ppl-mixtures: error: kappa:")
    code, _, err = run(f"--quiet fit {csv_path} -k 0 {CHEAP}", capsys)
    assert code == 2 and one_line(err) and "n_components" in err


def test_error_kinds():
    from ppl_mixtures.model.spec import MixtureSpec

    def caught(call):
        try:
            call()
        except Exception as err:  # the point is to classify it
            return err
        raise AssertionError("no error")

    ours = caught(lambda: MixtureSpec(n_components=-1))
    numpy_s = caught(lambda: np.random.default_rng(-1))
    plain = caught(lambda: int("x"))
    assert is_input_error(ours)
    assert not is_input_error(numpy_s) and not is_input_error(plain)
    assert is_input_error(UsageError("--x: expected y, got z."))
    with pytest.raises(ValueError) as info, input_checks():
        int("x")  # raised while reading the user's input: that input was refused
    assert is_input_error(info.value)
    with pytest.raises(ValueError) as info, internal():
        MixtureSpec(n_components=-1)  # our own settings (the demo): our failure
    assert not is_input_error(info.value)


# --------------------------------------------------------------------------- item 13
@pytest.mark.parametrize(
    "argv, where, word",
    [
        (
            ["fit", "x.csv", "-k", "two", "--engine", "cavi"],
            "ppl-mixtures fit",
            "-k/--n-components",
        ),
        (["fit", "x.csv", "--engine", "cavi"], "ppl-mixtures fit", "-k/--n-components"),
        (
            ["compare", "x.csv", "-k", "2", "--engines", "cavi", "--bogus"],
            "ppl-mixtures",
            "--bogus",
        ),
        (["fitt"], "ppl-mixtures", "invalid choice"),
        ([], "ppl-mixtures", "COMMAND"),
        (
            ["fit", "x.csv", "-k", "2", "--engine", "cavi", "--random-seed", "-1"],
            "ppl-mixtures fit",
            "--random-seed",
        ),
        (
            ["fit", "x.csv", "-k", "2", "--engine", "cavi", "--option", "novalue"],
            "ppl-mixtures fit",
            "--option",
        ),
    ],
)
def test_argparse_errors_are_one_line_with_a_pointer_to_help(argv, where, word, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2 and out == "" and one_line(err)
    assert err.startswith(f"{where}: error: ") and word in err
    assert err.rstrip().endswith("--help)") and "usage:" not in err
