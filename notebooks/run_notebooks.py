"""Execute the tutorial notebooks in fresh kernels and write the executed copies.

    python notebooks/run_notebooks.py --out reports/notebooks            # full settings
    python notebooks/run_notebooks.py --mode small --only 01 --out /tmp/nb

Each notebook runs top to bottom in a new IPython kernel started with *this* interpreter
(``sys.executable``, so the project's virtual environment), with the environment variable
``PPL_MIXTURES_NOTEBOOK_MODE`` set to ``--mode`` ("full" or "small"); the notebooks' first
code cell reads it and sets every size from it. A cell that raises fails the notebook
(the notebooks' assertion cells check each one's key claim). For every notebook the
executed ``.ipynb`` is written to ``--out`` (no HTML copy: ``make docs`` renders the executed
notebooks into the documentation site). ``make notebooks`` runs this script at full settings;
``tests/test_notebooks.py`` imports :func:`execute_notebook` and runs it at small settings.

Exit status: 0 when every notebook ran, 1 when one failed (the others still run; the failed
notebook is written with its outputs up to the error, for inspection), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent
REPO_ROOT = NOTEBOOK_DIR.parent
MODE_VARIABLE = "PPL_MIXTURES_NOTEBOOK_MODE"
MODES = ("full", "small")
KERNEL_NAME = "python3"


def notebook_paths(only: list[str] | None = None) -> list[Path]:
    """The tutorial notebooks in reading order (``NN_name.ipynb``), optionally filtered.

    Parameters
    ----------
    only : list of str, optional
        Keep notebooks whose file name contains any of these strings (e.g. ``["01", "03"]``).
    """
    paths = sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(s in p.name for s in only)]
    return paths


def _kernel_manager(spec_dir: Path):
    """A kernel manager whose ``python3`` kernel is this interpreter, whatever else is installed.

    A user-level kernel spec named ``python3`` (e.g. in ~/.local/share/jupyter) could point
    at another Python; restricting the spec search to a private folder rules that out.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    kernel_dir = spec_dir / "kernels" / KERNEL_NAME
    kernel_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ppl-mixtures)",
        "language": "python",
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(spec_dir / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)


#: Appended by ``execute_notebook(check_figures=True)``: every matplotlib figure the notebook
#: drew must have a title (figure or every panel), axis labels on every panel with data, and
#: a legend (or a colorbar). Figures stay open for it (``close_figures = False``).
FIGURE_CHECK = """\
import matplotlib.pyplot as _plt
_problems = []
for _num in _plt.get_fignums():
    _fig = _plt.figure(_num)
    _panels = [a for a in _fig.axes
               if a.get_visible() and a.has_data() and a.get_label() != "<colorbar>"]
    if not _panels:
        continue
    _suptitle = _fig._suptitle.get_text() if _fig._suptitle is not None else ""
    _titled = bool(_suptitle) or all(a.get_title() for a in _panels)
    _labelled = all(a.get_xlabel() and a.get_ylabel() for a in _panels)
    _legend = (bool(_fig.legends) or any(a.get_legend() is not None for a in _panels)
               or any(a.get_label() == "<colorbar>" for a in _fig.axes))
    if not (_titled and _labelled and _legend):
        _problems.append({"figure": _num, "title": _titled, "labels": _labelled,
                          "legend": _legend, "panels": [a.get_title() for a in _panels]})
print(f"checked {len(_plt.get_fignums())} figures")
assert not _problems, _problems
"""


def execute_notebook(
    path: Path, mode: str = "full", timeout: int = 1800, check_figures: bool = False
):
    """Run one notebook in a fresh kernel and return the executed notebook.

    Parameters
    ----------
    path : Path
        The ``.ipynb`` file (not modified).
    mode : {"full", "small"}
        Passed to the kernel as ``PPL_MIXTURES_NOTEBOOK_MODE``.
    timeout : int
        Seconds allowed per cell.
    check_figures : bool
        Keep every figure open and append a cell asserting that each has a title, axis
        labels and a legend (:data:`FIGURE_CHECK`); the tests use it.

    Returns
    -------
    nbformat.NotebookNode
        With outputs. Raises ``nbclient.exceptions.CellExecutionError`` when a cell fails;
        the partly executed notebook is then attached to the exception as ``.notebook``.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    if mode not in MODES:
        raise ValueError(
            f"mode: expected one of {', '.join(MODES)}, got {mode!r}. "
            f"Use 'full' for the published run or 'small' for a quick check."
        )
    nb = nbformat.read(path, as_version=4)
    if check_figures:
        from nbformat.v4 import new_code_cell

        nb.cells.insert(0, new_code_cell("%config InlineBackend.close_figures = False"))
        nb.cells.append(new_code_cell(FIGURE_CHECK))
    env = dict(os.environ)
    env[MODE_VARIABLE] = mode
    # Import this checkout's ppl_mixtures whatever the environment's install points at (an
    # editable install made before the package had its __init__.py resolves it as an empty
    # namespace package from any folder but the repository root).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="ppl-mixtures-kernel-") as spec_dir:
        client = NotebookClient(
            nb,
            km=_kernel_manager(Path(spec_dir)),
            timeout=timeout,
            kernel_name=KERNEL_NAME,
            resources={"metadata": {"path": str(path.parent)}},
        )
        try:
            client.execute(env=env)
        except CellExecutionError as err:
            err.notebook = nb
            raise
    return nb


def _write_outputs(nb, name: str, out_dir: Path) -> list[Path]:
    """Write the executed notebook as ``name.ipynb`` into ``out_dir``; return the paths written.

    No HTML copy: the documentation site (``make docs``) renders the executed notebooks.
    """
    import nbformat

    written = [out_dir / f"{name}.ipynb"]
    nbformat.write(nb, written[0])
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Execute the ppl-mixtures tutorial notebooks in fresh kernels."
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("reports/notebooks"),
        help="folder for the executed .ipynb (default: %(default)s)",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="full",
        help="'full' (published sizes, default) or 'small' (a quick check)",
    )
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        metavar="NAME",
        help="run only notebooks whose file name contains one of these",
    )
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)

    from nbclient.exceptions import CellExecutionError

    paths = notebook_paths(args.only)
    if not paths:
        parser.error(f"--only: no notebook in {NOTEBOOK_DIR} matches {args.only}")
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for path in paths:
        start = time.perf_counter()
        print(f"{path.name} ({args.mode}) ...", flush=True)
        # run into a temporary folder, move into place only when done
        with tempfile.TemporaryDirectory(prefix="ppl-mixtures-nb-") as tmp:
            try:
                nb = execute_notebook(path, args.mode, args.timeout)
                ok = True
            except CellExecutionError as err:
                nb, ok = err.notebook, False
                failed.append(path.name)
                print(f"  FAILED: {str(err).strip().splitlines()[-1]}", flush=True)
            for written in _write_outputs(nb, path.stem, Path(tmp)):
                shutil.move(str(written), args.out / written.name)
        status = "ok" if ok else "failed"
        print(f"  {status} in {time.perf_counter() - start:.1f} s -> {args.out}", flush=True)
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
