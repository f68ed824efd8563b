"""Sphinx configuration for the ppl-mixtures documentation site.

Build with ``make docs`` (= ``sphinx-build -W --keep-going -b html docs docs/_build/html``).
The executed tutorials are not re-run: the committed executed notebooks in
``reports/notebooks/*.ipynb`` are copied into ``docs/tutorials/`` (git-ignored) when this file
is read, and myst-nb renders their stored outputs (``nb_execution_mode = "off"``).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # this checkout's ppl_mixtures, whatever .venv points at
sys.path.insert(0, str(DOCS / "_ext"))  # repo_links (an extension) and gallery

import gallery  # noqa: E402  (docs/_ext/gallery.py)

import ppl_mixtures  # noqa: E402

# -- the executed tutorials, copied into the source tree ------------------------------------
EXECUTED_NOTEBOOKS = ROOT / "reports" / "notebooks"
TUTORIALS = DOCS / "tutorials"


def _copy_tutorials() -> list[str]:
    """Copy ``reports/notebooks/NN_*.ipynb`` into ``docs/tutorials/``; return their stems.

    The folder is generated (git-ignored) and rewritten on every build, so a notebook removed
    from ``reports/notebooks/`` disappears from the site too.
    """
    sources = sorted(EXECUTED_NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not sources:
        raise FileNotFoundError(
            f"no executed notebooks in {EXECUTED_NOTEBOOKS}: run `make notebooks` first"
        )
    if TUTORIALS.exists():
        shutil.rmtree(TUTORIALS)
    TUTORIALS.mkdir()
    for source in sources:
        shutil.copy2(source, TUTORIALS / source.name)
    words = {5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
    count = words.get(len(sources), str(len(sources)))
    index = [
        "# Tutorials",
        "",
        f"The {count} tutorial notebooks, executed at full settings by `make notebooks` "
        "(their stored outputs are shown here; the site build does not re-run them).",
        "",
        "```{toctree}",
        ":maxdepth: 1",
        "",
    ]
    index += [source.stem for source in sources] + ["```", ""]
    (TUTORIALS / "index.md").write_text("\n".join(index), encoding="utf-8")
    return [source.stem for source in sources]


TUTORIAL_NAMES = _copy_tutorials()

# -- the committed reports, mirrored into the source tree -----------------------------------
# README.md and the guides link to reports/demo/report.md and reports/benchmarks/*.md (right on
# GitHub); the site carries copies of them under docs/reports/ (git-ignored, rewritten on
# every build) so those links resolve to pages of the site.
MIRROR = DOCS / "reports"
POSTERIOR_LINK = re.compile(r"\[([^\]]+)\]\((posteriors/[^)]+)\)")


def _mirror_reports() -> None:
    """Copy the demo report (with its figures), the benchmark reports and CHANGELOG.md into
    docs/reports/.

    The demo report's links to ``posteriors/`` become plain text: those netCDF files are
    written by ``make demo`` into reports/demo/posteriors/ and are not committed or published.
    """
    if MIRROR.exists():
        shutil.rmtree(MIRROR)
    demo = MIRROR / "demo"
    shutil.copytree(ROOT / "reports" / "demo" / "figures", demo / "figures")
    text = (ROOT / "reports" / "demo" / "report.md").read_text(encoding="utf-8")
    note = (
        "*A copy of `reports/demo/report.md`. The posterior files it names are written by "
        "`make demo` into `reports/demo/posteriors/`; they are not part of this site.*"
    )
    title, _, rest = text.partition("\n")
    text = POSTERIOR_LINK.sub(r"`\1`", f"{title}\n\n{note}\n{rest}")
    (demo / "report.md").write_text(text, encoding="utf-8")
    bench = MIRROR / "benchmarks"
    bench.mkdir(parents=True)
    pages = sorted((ROOT / "reports" / "benchmarks").glob("*.md"))
    for page in pages:
        shutil.copy2(page, bench / page.name)
    index = (
        [
            "# Benchmarks",
            "",
            "The reports written by `make bench` into `reports/benchmarks/` (copies).",
            "",
            "```{toctree}",
            ":maxdepth: 1",
            "",
        ]
        + [page.stem for page in pages]
        + ["```", ""]
    )
    (bench / "index.md").write_text("\n".join(index), encoding="utf-8")
    # CHANGELOG.md (README links to it) as a page of the site; repo_links rewrites the link
    shutil.copy2(ROOT / "CHANGELOG.md", MIRROR / "changelog.md")


_mirror_reports()
(MIRROR / "gallery_figures.md").write_text(
    gallery.gallery_markdown(
        (ROOT / "reports" / "demo" / "report.md").read_text(encoding="utf-8"),
        sorted(p.name for p in (ROOT / "reports" / "demo" / "figures").glob("*.png")),
        "reports/demo/figures",
    ),
    encoding="utf-8",
)  # included by gallery.md

# -- project --------------------------------------------------------------------------------
project = "ppl-mixtures"
author = "ppl-mixtures contributors"
copyright = "ppl-mixtures contributors"
release = version = ppl_mixtures.__version__

extensions = [
    "repo_links",
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
exclude_patterns = [
    "_build",
    "_ext",
    "reports/gallery_figures.md",  # included by gallery.md
    "Thumbs.db",
    ".DS_Store",
    "**.ipynb_checkpoints",
]
html_theme = "furo"
html_title = f"ppl-mixtures {release}"
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}

# -- MyST / myst-nb -------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"
nb_merge_streams = True

# -- API reference --------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # dataclass fields: one entry each, not a second attribute

# No network on the build machines: no intersphinx. Suppressed warnings, each with its reason:
# - myst.header: the guides and the generated benchmark reports are written for GitHub, where
#   the first heading may be "##" and levels may skip; Sphinx renders them the same (the first
#   heading is the page title). Cosmetic, and the pages belong to their own generators/authors.
# - ref.python: "more than one target found" for words inside numpydoc type strings, e.g.
#   ``elbo : ndarray of shape (n_iter,)``: Sphinx turns every word of a field's type into a
#   class cross-reference, and ``n_iter`` then matches the n_iter attributes of three engine
#   states. They are shape names, not references. (Real ambiguous references were removed by
#   documenting each object once, see docs/api.md.)
suppress_warnings = ["myst.header", "ref.python"]
