"""The report folder's safety (issue 11, items 1-4): what --force may replace, the atomic
swap and its re-check, stale temporary folders, and refusing an unusable --out early."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from ppl_mixtures import MixtureSpec
from ppl_mixtures.analysis.compare import compare
from ppl_mixtures.present import folder_swap, report_folder
from ppl_mixtures.present.folder_swap import exchange
from ppl_mixtures.present.report import (
    MARKER,
    ReportConflictError,
    ReportStage,
    check_out_dir,
    clean_stale,
    foreign_entries,
    write_report,
)
from ppl_mixtures.results import MixtureFit, Timings, make_idata

RNG = np.random.default_rng(11)
POINTS = np.concatenate([RNG.normal(-2, 1, (15, 2)), RNG.normal(2, 1, (15, 2))])


def _fit(engine, seed):
    rng = np.random.default_rng(seed)
    means = np.array([[-2.0, -2.0], [2.0, 2.0]]) + 0.1 * rng.standard_normal((1, 20, 2, 2))
    weights = np.full((1, 20, 2), 0.5)
    return MixtureFit(
        engine=engine,
        spec=MixtureSpec(n_components=2),
        timings=Timings(0.1, 0.2),
        idata=make_idata(means, weights, POINTS, attrs={"engine": engine}),
        options={"random_seed": seed},
        family={"cavi": "vi", "em": "point"}[engine],
    )


@pytest.fixture(scope="module")
def comparison():
    return compare({"cavi": _fit("cavi", 1), "em": _fit("em", 2)}, reference="cavi", name="tiny")


def _write(comparison, out, **kwargs):
    return write_report(comparison, out, figures=False, **kwargs)


def _dead_pid():
    """The pid of a process that has finished (reaped, so it no longer exists)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------- item 1
def test_every_report_carries_the_marker(comparison, tmp_path):
    out = _write(comparison, tmp_path / "rep", command="ppl-mixtures fit x.csv")
    marker = json.loads((out / MARKER).read_text())
    assert marker["generator"] == "ppl-mixtures" and marker["command"] == "ppl-mixtures fit x.csv"
    assert {"version", "time", "state"} <= set(marker) and marker["state"] == "complete"
    assert foreign_entries(out) == []
    assert _hidden(tmp_path) == []  # no temporary folder left


def test_force_never_replaces_a_folder_holding_other_files(comparison, tmp_path):
    data = tmp_path / "proj"
    data.mkdir()
    (data / "data.csv").write_text("1,2\n3,4\n")
    (data / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"holds other files \(data.csv, notes.txt\)"):
        _write(comparison, data, force=True)
    assert (data / "data.csv").read_text() == "1,2\n3,4\n"
    assert (data / "notes.txt").read_text() == "mine"
    assert _hidden(tmp_path) == []
    # a report of ours that the user added a file to is no longer only ours either
    rep = _write(comparison, tmp_path / "rep")
    (rep / "my_notes.md").write_text("keep")
    with pytest.raises(FileExistsError, match=r"holds other files \(my_notes.md\)"):
        _write(comparison, rep, force=True)
    assert (rep / "my_notes.md").read_text() == "keep"


def test_a_report_without_the_marker_is_recognised_only_by_its_files(comparison, tmp_path):
    rep = _write(comparison, tmp_path / "rep")
    (rep / MARKER).unlink()  # as written before the marker existed (reports/demo)
    assert foreign_entries(rep) == []
    _write(comparison, rep, force=True)
    assert (rep / MARKER).exists()
    lookalike = tmp_path / "lookalike"
    lookalike.mkdir()
    (lookalike / "report.md").write_text("my own report")
    (lookalike / "results.json").write_text('{"mine": 1}')
    assert foreign_entries(lookalike) == ["report.md", "results.json"]
    with pytest.raises(FileExistsError, match="holds other files"):
        _write(comparison, lookalike, force=True)


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """tmp/proj/sub/data.csv (the input), tmp/afile, tmp/link -> tmp/elsewhere; the current
    folder tmp/cwd/here."""
    for folder in ("proj/sub", "cwd/here", "elsewhere"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "proj" / "sub" / "data.csv").write_text("1\n")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path / "cwd" / "here")
    return tmp_path


REFUSED_OUT = [  # (--out, given the layout; error; message)
    (lambda t: t / "proj", ValueError, "does not hold the input data"),
    (lambda t: t / "proj" / "sub", ValueError, "does not hold the input data"),
    (lambda t: t / "proj" / "sub" / "data.csv", ValueError, "does not hold the input data"),
    (lambda t: ".", ValueError, "which is the current folder"),
    (lambda t: "..", ValueError, "which is a folder holding the current folder"),
    (lambda t: os.path.expanduser("~"), ValueError, "expected a folder of its own"),
    (lambda t: "/", ValueError, "expected a folder of its own"),
    (lambda t: t / "afile", FileExistsError, "expected a folder, got the file"),
    (lambda t: t / "afile" / "deeper" / "rep", NotADirectoryError, "is a file"),
    (lambda t: t / "link", FileExistsError, "symbolic link"),
]


@pytest.mark.parametrize(("out", "error", "match"), REFUSED_OUT)
def test_unusable_out_paths_are_refused_before_any_work(layout, out, error, match):
    before = sorted(str(p.relative_to(layout)) for p in layout.rglob("*"))
    with pytest.raises(error, match=match):
        check_out_dir(out(layout), True, name="--out", inputs=[layout / "proj/sub/data.csv"])
    assert sorted(str(p.relative_to(layout)) for p in layout.rglob("*")) == before
    assert (layout / "proj" / "sub" / "data.csv").read_text() == "1\n"


def test_a_new_nested_out_is_accepted_and_nothing_is_made_yet(layout):
    check_out_dir(layout / "new" / "deep" / "rep", False, name="--out")  # created later
    assert not (layout / "new").exists()


def test_a_folder_that_refuses_writes_is_found_early(tmp_path):
    # sysfs refuses new folders to every user, root included (EPERM, or EROFS read-only)
    with pytest.raises(
        PermissionError,
        match=r"^--out: expected a place where the report "
        r"folder can be created, got '/sys/rep', but "
        r"'/sys' refuses \(",
    ):
        check_out_dir("/sys/rep", False, name="--out")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.geteuid() != 0:  # permission bits bind everyone but root
            with pytest.raises(PermissionError, match="refuses"):
                check_out_dir(locked / "rep", False, name="--out")
        else:
            check_out_dir(locked / "rep", False, name="--out")  # root may write: no refusal
        assert list(locked.iterdir()) == []  # the probe folder is gone either way
    finally:
        locked.chmod(0o755)


# --------------------------------------------------------------------------- item 2
def test_exchange_swaps_two_folders_in_one_step(tmp_path):
    new, out = tmp_path / "new", tmp_path / "out"
    new.mkdir()
    out.mkdir()
    (new / "which").write_text("new")
    (out / "which").write_text("old")
    old_place = exchange(new, out)
    assert (out / "which").read_text() == "new"
    assert (old_place / "which").read_text() == "old"
    if folder_swap._renameat2() is not None:  # Linux: RENAME_EXCHANGE leaves the old one at `new`
        assert old_place == new


def test_swap_without_renameat2_restores_the_old_report_on_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(folder_swap, "_renameat2", lambda: None)  # a system without it
    new, out = tmp_path / "new", tmp_path / "out"
    new.mkdir()
    out.mkdir()
    (new / "which").write_text("new")
    (out / "which").write_text("old")
    real_rename, calls = os.rename, []

    def second_rename_fails(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(folder_swap.os, "rename", second_rename_fails)
    with pytest.raises(OSError, match="No space left"):
        exchange(new, out)
    assert (out / "which").read_text() == "old"  # restored by the third rename
    assert (new / "which").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "out"]
    monkeypatch.setattr(folder_swap.os, "rename", real_rename)
    aside = exchange(new, out)
    assert aside.name.startswith(f".out.old-{os.getpid()}-")
    assert (out / "which").read_text() == "new" and (aside / "which").read_text() == "old"


def test_force_replaces_a_report_and_leaves_nothing_aside(comparison, tmp_path):
    out = _write(comparison, tmp_path / "rep", command="first")
    _write(comparison, out, force=True, command="second")
    assert json.loads((out / MARKER).read_text())["command"] == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_target_created_by_someone_else_during_the_fits(comparison, tmp_path):
    out = tmp_path / "rep"
    stage = ReportStage(out, force=True, figures=False, name="--out")
    out.mkdir()  # another program writes there while our fits run
    (out / "theirs.txt").write_text("theirs")
    with (
        stage,
        pytest.raises(ReportConflictError, match="--out: expected to put the report") as caught,
    ):
        stage.finish({"tiny": comparison}, title="t")
    assert (out / "theirs.txt").read_text() == "theirs" and len(list(out.iterdir())) == 1
    kept = caught.value.kept
    assert kept.name.startswith("rep.new-") and str(kept) in str(caught.value)
    assert (kept / "report.md").exists() and foreign_entries(kept) == []
    assert _hidden(tmp_path) == []


def test_two_runs_on_one_out_without_force_do_not_replace_each_other(comparison, tmp_path):
    out = tmp_path / "rep"
    first = ReportStage(out, figures=False)  # both pass the early check: out is absent
    second = ReportStage(out, figures=False)
    with second:
        second.finish({"tiny": comparison}, title="second")
    with (
        first,
        pytest.raises(
            ReportConflictError, match="is a ppl-mixtures report, and force was not given"
        ),
    ):
        first.finish({"tiny": comparison}, title="first")
    assert "# second" in (out / "report.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir())[0] == "rep"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("rep.new-")]


def test_target_appearing_at_the_very_moment_of_the_swap(comparison, tmp_path, monkeypatch):
    """Between the last look and the rename: RENAME_NOREPLACE refuses, then the re-check."""
    out = tmp_path / "rep"
    stage = ReportStage(out, figures=False)
    real_target = report_folder.target_state
    looks = []

    def look_then_race(path):
        looks.append(real_target(path))
        if len(looks) == 1:
            out.mkdir()
            (out / "theirs.txt").write_text("theirs")
        return looks[-1]

    monkeypatch.setattr(report_folder, "target_state", look_then_race)
    with stage, pytest.raises(ReportConflictError, match="is not a ppl-mixtures report"):
        stage.finish({"tiny": comparison}, title="t")
    assert looks == ["absent", "foreign"]
    assert (out / "theirs.txt").read_text() == "theirs"


# --------------------------------------------------------------------------- item 3
def test_stale_temporary_folders_of_dead_processes_are_cleaned(comparison, tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    ours_dead = tmp_path / f".rep.tmp-{dead}-abc"
    ours_alive = tmp_path / f".rep.tmp-{alive}-def"
    not_ours = tmp_path / f".rep.tmp-{dead}-ghi"
    other_host = tmp_path / f".rep.tmp-{dead}-jkl"  # its pid means nothing here
    for folder in (ours_dead, ours_alive, not_ours, other_host):
        folder.mkdir()
    for folder in (ours_dead, ours_alive):
        (folder / MARKER).write_text(
            json.dumps({"generator": "ppl-mixtures", "host": socket.gethostname()})
        )
    (other_host / MARKER).write_text(
        json.dumps({"generator": "ppl-mixtures", "host": socket.gethostname() + "-other"})
    )
    (not_ours / "data.csv").write_text("someone's")
    out = _write(comparison, tmp_path / "rep")  # each run cleans first
    assert not ours_dead.exists()
    assert ours_alive.exists() and other_host.exists()
    assert (not_ours / "data.csv").read_text() == "someone's"
    assert foreign_entries(out) == []


def test_an_old_report_left_aside_by_a_crash_is_restored(comparison, tmp_path):
    dead = _dead_pid()
    out = _write(comparison, tmp_path / "rep", command="the old one")
    aside = tmp_path / f".rep.old-{dead}-xyz"
    os.rename(out, aside)  # a crash between the two renames of the fallback swap
    assert clean_stale(out) == [aside]
    assert json.loads((out / MARKER).read_text())["command"] == "the old one"
    assert _hidden(tmp_path) == []
