"""The tutorial notebooks: committed clean, and executed end to end with small settings.

Each notebook runs in a fresh kernel started with this interpreter (see
``notebooks/run_notebooks.py``), with ``PPL_MIXTURES_NOTEBOOK_MODE=small``. A cell that
raises fails the test; every notebook ends its story with assertion cells that check its
key claim (the ELBO rose, the two log-densities agree, ...), so a broken engine or a
changed API breaks a notebook here, not in front of a reader.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = (
    "01_cavi_from_scratch",
    "02_marginalizing_assignments",
    "03_advi_and_minibatches",
    "04_mcmc_vs_vi",
    "05_em_and_bayes",
    "06_full_covariance",
    "07_choosing_k",
)


def _runner():
    spec = importlib.util.spec_from_file_location(
        "run_notebooks", NOTEBOOK_DIR / "run_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _present() -> list[str]:
    return [p.stem for p in _runner().notebook_paths()]


def _cells(name: str) -> list[dict]:
    return json.loads((NOTEBOOK_DIR / f"{name}.ipynb").read_text())["cells"]


def test_every_notebook_is_present():
    assert tuple(_present()) == EXPECTED


@pytest.mark.parametrize("name", _present())
def test_notebook_is_committed_without_outputs(name):
    for cell in _cells(name):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{name}: a code cell has outputs; strip them"
            assert cell["execution_count"] is None, f"{name}: a code cell has a count"


@pytest.mark.parametrize("name", _present())
def test_first_code_cell_reads_the_mode_variable(name):
    code = ["".join(c["source"]) for c in _cells(name) if c["cell_type"] == "code"]
    assert 'os.environ.get("PPL_MIXTURES_NOTEBOOK_MODE", "full")' in code[0]
    assert "SMALL = " in code[0]
    # the switch is read once, in that cell: every size derives from it there
    assert not any("PPL_MIXTURES_NOTEBOOK_MODE" in source for source in code[1:])


@pytest.mark.parametrize("name", _present())
def test_notebook_has_assertion_cells(name):
    code = "\n".join("".join(c["source"]) for c in _cells(name) if c["cell_type"] == "code")
    assert "assert " in code, f"{name}: no assertion cell checks the notebook's claim"


def test_runner_rejects_an_unknown_mode():
    runner = _runner()
    with pytest.raises(ValueError, match="mode: expected one of full, small, got 'fast'"):
        runner.execute_notebook(NOTEBOOK_DIR / f"{EXPECTED[0]}.ipynb", mode="fast")


def test_kernel_runs_this_interpreter_with_the_mode(tmp_path):
    import sys

    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    runner = _runner()
    path = tmp_path / "probe.ipynb"
    nbformat.write(
        new_notebook(
            cells=[
                new_code_cell(
                    "import os, sys; print(sys.executable); print(os.environ['PPL_MIXTURES_NOTEBOOK_MODE'])"
                )
            ]
        ),
        path,
    )
    nb = runner.execute_notebook(path, mode="small", timeout=120)
    printed = nb.cells[0].outputs[0]["text"].split()
    assert printed == [sys.executable, "small"]


def test_figure_check_rejects_a_figure_without_legend(tmp_path):
    import nbformat
    from nbclient.exceptions import CellExecutionError
    from nbformat.v4 import new_code_cell, new_notebook

    good = (
        "fig, ax = plt.subplots()\nax.plot([0, 1], label='a line')\n"
        "ax.set(title='t', xlabel='x', ylabel='y')\nax.legend()\nplt.show()"
    )
    bad = "fig, ax = plt.subplots()\nax.plot([0, 1])\nax.set(title='t', xlabel='x', ylabel='y')"
    runner = _runner()
    for source, ok in [(good, True), (bad, False)]:
        path = tmp_path / "figure.ipynb"
        nbformat.write(
            new_notebook(
                cells=[new_code_cell("import matplotlib.pyplot as plt"), new_code_cell(source)]
            ),
            path,
        )
        if ok:
            nb = runner.execute_notebook(path, mode="small", timeout=120, check_figures=True)
            assert "checked 1 figures" in nb.cells[-1].outputs[0]["text"]
        else:
            with pytest.raises(CellExecutionError, match="'legend': False"):
                runner.execute_notebook(path, mode="small", timeout=120, check_figures=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", _present())
def test_notebook_executes_in_small_mode(name):
    from nbclient.exceptions import CellExecutionError

    runner = _runner()
    try:
        nb = runner.execute_notebook(
            NOTEBOOK_DIR / f"{name}.ipynb", mode="small", timeout=600, check_figures=True
        )
    except CellExecutionError as err:  # show the failing cell's traceback, not nbclient's
        pytest.fail(f"{name} failed in small mode:\n{err}")
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code_cells)
    errors = [o for c in code_cells for o in c.outputs if o.output_type == "error"]
    assert errors == []
    # the kernel really ran in small mode (the settings cell, after the injected config
    # cell, prints the mode), and the figure check ran
    assert "mode: small" in "".join(o.get("text", "") for o in code_cells[1].outputs)
    assert "checked" in "".join(o.get("text", "") for o in code_cells[-1].outputs)
