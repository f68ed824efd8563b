"""Signals (issue 11, item 3): a real `ppl-mixtures demo` process is stopped while it fits.

SIGTERM/SIGINT: it exits 143/130, removes its temporary folder and ends its worker
processes. SIGKILL: the workers die with it (prctl PDEATHSIG) and the next run removes the
temporary folder it left. The waits below have generous limits; nothing asserts a speed.
"""

import glob
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ppl_mixtures import datasets
from ppl_mixtures.app import cli


@pytest.fixture(autouse=True)
def _private_reference_cache(tmp_path_factory, monkeypatch):
    """Each test its own reference cache (never the user's ~/.cache), so a fit cached by
    one test is never a hit in another."""
    monkeypatch.setenv("PPL_MIXTURES_CACHE", str(tmp_path_factory.mktemp("refcache")))


WAIT_S = 300  # the longest we wait for the demo to start fitting, or to exit


def _dead(pid):
    """True when process ``pid`` has ended (gone, or a zombie nobody has reaped yet)."""
    try:
        import psutil
    except ImportError:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except FileNotFoundError:
            return True
    try:
        return psutil.Process(pid).status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return True


def _children(pid):
    """The pids of ``pid``'s child processes (from /proc)."""
    kids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            kids.append(int(stat.split("/")[2]))
    return kids


def _wait_for(condition, what):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"waited {WAIT_S} s for {what}")


def _start_demo(folder, jobs):
    """``python -m ppl_mixtures demo --quick --out X`` in ``folder``, once it is fitting:
    its temporary folder exists and, with workers, the workers are up (returns them)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ppl_mixtures",
            "demo",
            "--quick",
            "--jobs",
            str(jobs),
            "--out",
            "X",
        ],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(
        lambda: glob.glob(str(folder / ".X.tmp-*")) or proc.poll() is not None,
        "the report's temporary folder",
    )
    assert proc.poll() is None, proc.communicate()[1]
    workers = _wait_for(
        lambda: (
            (lambda kids: kids if len(kids) >= jobs else None)(_children(proc.pid))
            if jobs > 1
            else [0]
        ),
        "the workers",
    )
    time.sleep(2.0)  # the fits run now (demo datasets are handed out right after start-up)
    return proc, [w for w in workers if w]


@pytest.mark.parametrize("signum, jobs", [(signal.SIGTERM, 2), (signal.SIGINT, 1)])
def test_a_signal_while_fitting_cleans_up(signum, jobs, tmp_path):
    proc, workers = _start_demo(tmp_path, jobs)
    assert len(workers) == (jobs if jobs > 1 else 0)
    try:
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=WAIT_S)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    assert f"stopped by {signal.Signals(signum).name}" in err and "Traceback" not in err
    assert os.listdir(tmp_path) == []  # no report, no temporary folder
    for pid in workers:
        _wait_for(lambda pid=pid: _dead(pid), f"worker {pid} to end")


def test_sigkill_workers_die_and_the_next_run_cleans_up(tmp_path, monkeypatch, capsys):
    proc, workers = _start_demo(tmp_path, jobs=2)
    assert len(workers) == 2
    proc.kill()
    proc.communicate(timeout=WAIT_S)
    for pid in workers:  # PR_SET_PDEATHSIG: the kernel ends them with their parent
        _wait_for(lambda pid=pid: _dead(pid), f"worker {pid} to end")
    (stale,) = glob.glob(str(tmp_path / ".X.tmp-*"))
    assert f".X.tmp-{proc.pid}-" in stale
    # the next run on the same --out removes what the killed run left
    data = tmp_path.parent / f"{tmp_path.name}_points.csv"
    np.savetxt(data, datasets.advi_notebook_points(30), delimiter=",")
    monkeypatch.chdir(tmp_path)
    code = cli.main(
        [
            "--quiet",
            "fit",
            str(data),
            "-k",
            "2",
            "--engine",
            "cavi",
            "--max-iter",
            "3",
            "--out",
            "X",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert os.listdir(tmp_path) == ["X"] and (tmp_path / "X" / "report.md").exists()
