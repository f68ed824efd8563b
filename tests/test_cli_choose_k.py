"""``ppl-mixtures choose-k``, run in-process on tiny data with the conjugate criteria."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from ppl_mixtures import MixtureSpec, datasets, select_k
from ppl_mixtures.app import cli
from ppl_mixtures.app.argtypes import ks_list

CONJUGATE = "elbo,elbo_logk,exact,bic,aic,icl"


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    pts, _ = datasets.make_mixture(
        90, [[-4.0, 0.0], [4.0, 0.0], [0.0, 5.0]], [0.3, 0.3, 0.4], 0.7, random_seed=3
    )
    return pts


@pytest.fixture(scope="module")
def csv_path(points: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "three.csv"
    np.savetxt(path, points, delimiter=",", header="x,y", comments="")
    return path


def run(argv: list, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_choose_k_prints_the_table_and_writes_the_report(
    csv_path: Path, points: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out_dir = tmp_path / "ck"
    argv = ["--quiet", "choose-k", csv_path, "--ks", "1-4", "--mean-prior-sd", 5,
            "--obs-sd", 0.7, "--criteria", CONJUGATE, "--seed", 3, "--out", out_dir]  # fmt: skip
    code, out, err = run(argv, capsys)
    assert code == 0, err
    # the same table as the library call with the same model and seed
    spec = MixtureSpec(n_components=1, mean_prior_sd=5.0, obs_sd=0.7)
    expected = select_k(points, spec, range(1, 5), criteria=CONJUGATE.split(","),
                        random_seed=3, progressbar=False)  # fmt: skip
    assert out.strip() == expected.to_markdown().strip()
    assert sorted(p.name for p in out_dir.iterdir()) == [
        ".ppl-mixtures-report", "figures", "report.md", "results.json",
    ]  # fmt: skip
    assert (out_dir / "figures" / "select_k.png").stat().st_size > 10_000
    report = (out_dir / "report.md").read_text()
    assert expected.to_markdown() in report
    assert "![each criterion's difference from its best K](figures/select_k.png)" in report
    assert "--ks 1-4" in report  # the command that reproduces it
    assert "- **EM BIC**: K = 3." in report
    results = json.loads((out_dir / "results.json").read_text())["select_k"]
    assert results["choices"] == expected.choices
    assert results["ks"] == [1, 2, 3, 4]
    assert results["table"]["exact"]["4"] is None  # 4^90 assignments: not computed
    assert "K^N > 2,000,000" in results["missing"]["exact"]["4"]


def test_choose_k_never_replaces_someone_elses_folder(
    csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out_dir = tmp_path / "mine"
    out_dir.mkdir()
    (out_dir / "notes.txt").write_text("keep me")
    argv = ["choose-k", csv_path, "--ks", "1-2", "--criteria", "bic", "--out", out_dir, "--force"]
    code, _, err = run(argv, capsys)
    assert code == 2 and err.count("\n") == 1 and "--out" in err
    assert [p.name for p in out_dir.iterdir()] == ["notes.txt"]
    assert (out_dir / "notes.txt").read_text() == "keep me"
    assert not list(tmp_path.glob(".mine*"))  # no temporary folder left beside it


@pytest.mark.parametrize(
    ("text", "ks"),
    [("1-6", [1, 2, 3, 4, 5, 6]), ("2,3,5", [2, 3, 5]), ("1-3,5", [1, 2, 3, 5]), ("4", [4])],
)
def test_ks_accepts_ranges_and_lists(text: str, ks: list[int]) -> None:
    assert ks_list(text) == ks


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0-3", "expected values between 1 and 50"),
        ("a-b", "expected whole numbers >= 1 as a range A-B or a list A,B,C"),
        ("5-2", "expected a range A-B with A <= B"),
        ("2,3,2", "expected each K once"),
        ("1-", "expected whole numbers"),
    ],
)
def test_bad_ks_exits_2_with_one_line_naming_ks(
    text: str, words: str, csv_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=words):
        ks_list(text)
    code, out, err = run(["choose-k", csv_path, "--ks", text], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "argument --ks: " + words in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--ks", "1-200"], "argument --ks: expected values between 1 and 50"),
        (["--ks", "1-3", "--criteria", "waic"], "--criteria: expected comma-separated names"),
        (["--ks", "1-12"], "--ks: expected every K at most the number of rows N = 9, got 12"),
        (["--covariance", "full", "--obs-sd", "2"], "--obs-sd: expected it only with"),
        (["--ks", "1-3", "--dp-truncation", "2"], "--dp-truncation: expected a number from"),
    ],
)
def test_bad_input_exits_2_before_fitting(
    argv: list, words: str, csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    tiny = tmp_path / "tiny.csv"  # 9 rows
    np.savetxt(tiny, np.loadtxt(csv_path, delimiter=",", skiprows=1)[:9], delimiter=",")
    code, out, err = run(["--quiet", "choose-k", tiny, *argv, "--out", tmp_path / "o"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "o").exists()


def test_a_zarr_store_is_refused_before_reading(tmp_path: Path, capsys: pytest.CaptureFixture):
    code, out, err = run(["choose-k", tmp_path / "big.zarr", "--ks", "1-3"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "DATA: choose-k needs the points in memory" in err and "Pass a .npy or .csv" in err
