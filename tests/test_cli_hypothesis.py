"""The CLI in-process over generated command lines (issue 11: a hypothesis suite per entry
point). A valid `fit`/`compare` line (engines cavi/em, tiny data, a few iterations) is
either left as it is or broken in exactly one way. Broken: exit 2 and the last stderr line
is our one-line error naming the broken argument. Valid: exit 0, or 1 only when an engine
genuinely failed (NumericalError). Never a traceback.
"""

import contextlib
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ppl_mixtures import datasets
from ppl_mixtures.app import cli


@pytest.fixture(autouse=True)
def _private_reference_cache(tmp_path_factory, monkeypatch):
    """Each test its own reference cache (never the user's ~/.cache), so a fit cached by
    one test is never a hit in another."""
    monkeypatch.setenv("PPL_MIXTURES_CACHE", str(tmp_path_factory.mktemp("refcache")))


N_ROWS = 30


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_hypothesis")
    data = folder / "points.csv"
    np.savetxt(
        data, datasets.advi_notebook_points(N_ROWS), delimiter=",", header="x,y", comments=""
    )
    return {"data": data, "folder": folder}


def _valid(draw):
    """The parts of a valid command line (cheap: tiny data, at most 5 iterations)."""
    command = draw(st.sampled_from(["fit", "compare"]))
    parts = {
        "command": [command],
        "k": ["-k", str(draw(st.integers(1, 3)))],
        "max_iter": ["--max-iter", str(draw(st.integers(1, 5)))],
    }
    if command == "fit":
        parts["engine"] = ["--engine", draw(st.sampled_from(["cavi", "em"]))]
    else:
        names = draw(st.lists(st.sampled_from(["cavi", "em"]), min_size=1, max_size=2, unique=True))
        parts["engine"] = [
            "--engines",
            ",".join(names),
            "--reference",
            draw(st.sampled_from(names)),
        ]
    flags = draw(
        st.lists(
            st.sampled_from(
                ["--standardize", "--dropna", "--fixed-weights", "--ordered", "--quiet", "--quick"]
            ),
            unique=True,
        )
    )
    parts["flags"] = flags
    if draw(st.booleans()):
        parts["obs_sd"] = ["--obs-sd", draw(st.sampled_from(["learned", "1.5", "0.5"]))]
    if draw(st.booleans()):
        parts["prior"] = [
            "--mean-prior-sd",
            draw(st.sampled_from(["0.5", "3", "10"])),
            "--dirichlet-alpha",
            draw(st.sampled_from(["0.1", "1", "5"])),
        ]
    if draw(st.booleans()):
        parts["option"] = ["--option", draw(st.sampled_from(["tol=1e-3", "n_init=1", "tol=0.01"]))]
    parts["seed"] = ["--random-seed", str(draw(st.integers(0, 2**32 - 1)))]
    if draw(st.booleans()):
        parts["columns"] = ["--columns", draw(st.sampled_from(["x,y", "0,1", "y", "1"]))]
    return parts


#: one way to break a valid line: (part replaced, its new tokens or a maker, names one of
#: which the error must mention)
BREAKS = {
    "missing_file": ("data", lambda f: [str(f["folder"] / "nope.csv")], ["nope.csv"]),
    "k_out_of_range": (
        "k",
        st.sampled_from(["0", "-1", str(N_ROWS + 1), "1000"]),
        ["n_components", "-k"],
    ),
    "k_not_a_number": ("k", st.sampled_from(["two", "1.5", ""]), ["-k/--n-components"]),
    "max_iter_out_of_range": ("max_iter", st.sampled_from(["0", "-3"]), ["max_iter", "--max-iter"]),
    "max_iter_not_a_number": ("max_iter", st.sampled_from(["x", "2.5"]), ["--max-iter"]),
    "unknown_engine": ("engine", None, ["engine"]),
    "unknown_option": (
        "option",
        st.sampled_from(["n_inti=50", "bogus=1", "max_iterr=3"]),
        ["n_inti", "bogus", "max_iterr"],
    ),
    "bad_option_value": (
        "option",
        st.sampled_from(["tol=-1", 'tol="abc"', "n_init=0", "max_iter=0"]),
        ["tol", "n_init", "max_iter"],
    ),
    "bad_mean_prior_sd": (
        "prior",
        st.sampled_from(["0", "-1", "nan", "inf", "-inf", "x"]),
        ["mean_prior_sd", "--mean-prior-sd"],
    ),
    "bad_dirichlet_alpha": (
        "prior",
        st.sampled_from(["0", "-2", "nan", "inf"]),
        ["dirichlet_alpha", "--dirichlet-alpha"],
    ),
    "bad_obs_sd": ("obs_sd", st.sampled_from(["-1", "0", "abc", "nan", "learn"]), ["--obs-sd"]),
    "bad_seed": ("seed", st.sampled_from(["-1", "0.5", "x", "-99"]), ["--random-seed"]),
    "bad_columns": ("columns", st.sampled_from(["z", "7", "x,q"]), ["columns"]),
    "bad_out": ("out", None, ["--out"]),
    "unknown_flag": (
        "extra",
        st.sampled_from(["--bogus", "--draw", "-z"]),
        ["--bogus", "--draw", "-z"],
    ),
    "option_for_no_engine": (
        "extra",
        st.sampled_from(["--batch-size", "--draws", "--tune"]),
        ["batch_size", "--batch-size", "draws", "--draws", "tune", "--tune"],
    ),
}

PREFIX = {
    "k": "-k",
    "max_iter": "--max-iter",
    "option": "--option",
    "obs_sd": "--obs-sd",
    "seed": "--random-seed",
    "columns": "--columns",
    "out": "--out",
}


@st.composite
def command_lines(draw, files, broken_kinds):
    parts = _valid(draw)
    parts["data"] = [str(files["data"])]
    broken = draw(st.permutations(broken_kinds))[0]  # sampled_from favours its first entry
    names = []
    if broken is not None:
        where, make, names = BREAKS[broken]
        if broken == "unknown_engine":
            bad = draw(st.sampled_from(["magic", "cavii", "EM"]))
            parts["engine"] = (
                ["--engine", bad]
                if parts["command"] == ["fit"]
                else ["--engines", f"cavi,{bad}", "--reference", "cavi"]
            )
        elif broken == "bad_out":
            choice = draw(st.sampled_from(["file", "folder", ".", "/", "file/sub"]))
            target = {
                "file": str(files["data"]),
                "folder": str(files["folder"]),
                "file/sub": str(files["data"] / "sub"),
            }.get(choice, choice)
            parts["out"] = ["--out", target, *(["--force"] if draw(st.booleans()) else [])]
        elif broken == "missing_file":
            parts["data"] = make(files)
        elif broken == "bad_mean_prior_sd":
            parts["prior"] = ["--mean-prior-sd", draw(make)]
        elif broken == "bad_dirichlet_alpha":
            parts["prior"] = ["--dirichlet-alpha", draw(make)]
        elif where == "extra":
            value = draw(make)
            parts["extra"] = [value, "10"] if broken == "option_for_no_engine" else [value]
        else:
            parts[where] = [PREFIX[where], draw(make)]
    order = [
        "command",
        "data",
        "k",
        "engine",
        "max_iter",
        "flags",
        "obs_sd",
        "prior",
        "option",
        "seed",
        "columns",
        "out",
        "extra",
    ]
    argv = [token for key in order for token in parts.get(key, [])]
    return argv, broken, names


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}


@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_valid_command_lines(files, data):
    """Valid lines: exit 0 with the fit or the table (1 only for a genuine engine failure)."""
    argv, _, _ = data.draw(command_lines(files, [None]))
    event(f"{argv[0]}: valid")
    code, out, err = _run(argv)
    assert "Traceback" not in err, (argv, err)
    assert code == 0 or (code == 1 and "NumericalError" in err), (argv, code, err)
    if code == 0 and argv[0] == "fit":
        assert out.startswith(f"MixtureFit(engine='{argv[argv.index('--engine') + 1]}'")
    elif code == 0:  # compare: a table row per engine
        for name in argv[argv.index("--engines") + 1].split(","):
            assert f"| {name} |" in out, (argv, out)


@settings(max_examples=200, **SETTINGS)
@given(data=st.data())
def test_broken_command_lines(files, data):
    """Lines broken in one way: exit 2, one error line naming the argument, no traceback."""
    argv, broken, names = data.draw(command_lines(files, sorted(BREAKS)))
    event(f"{argv[0]}: {broken}")  # --hypothesis-show-statistics: the mix
    code, out, err = _run(argv)
    assert "Traceback" not in err, (argv, err)
    lines = err.strip().splitlines()
    assert code == 2, (argv, broken, code, err)
    assert lines and "error:" in lines[-1] and lines[-1].startswith("ppl-mixtures"), (argv, err)
    assert sum("error:" in line for line in lines) == 1, (argv, err)
    assert any(name.lower() in lines[-1].lower() for name in names), (argv, broken, err)
    assert out == "" or argv[0] == "compare", (argv, out)  # fit prints only on success
    assert not (files["folder"] / "sub").exists()


@pytest.mark.parametrize("kind", sorted(BREAKS))
@settings(max_examples=6, **SETTINGS)
@given(data=st.data())
def test_every_kind_of_break(kind, files, data):
    """Each way of breaking a line, a few times (the mixed test may draw some rarely)."""
    argv, broken, names = data.draw(command_lines(files, [kind]))
    code, _, err = _run(argv)
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err, (argv, code, err)
    assert sum("error:" in line for line in lines) == 1 and "error:" in lines[-1], (argv, err)
    assert any(name.lower() in lines[-1].lower() for name in names), (argv, broken, err)
