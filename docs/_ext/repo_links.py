"""Sphinx extension: Markdown links to repository paths, made to work on the site.

README.md and the guides in docs/ are written for GitHub, where a link may point at a folder
(``[notebooks/](notebooks/)``), a notebook (``../notebooks/01_cavi_from_scratch.ipynb``) or a
report outside docs/ (``reports/benchmarks/mcmc.md``). Sphinx knows only the pages of its
source tree, so before MyST parses a page (``source-read``) or the README included by
docs/index.md (``include-read``) this rewrites exactly those targets:

- a folder (or top-level file, CHANGELOG.md) in :data:`FOLDER_PAGES` -> its page on the site;
- ``notebooks/NN_name.ipynb`` or ``reports/notebooks/NN_name.ipynb`` -> the executed tutorial
  ``tutorials/NN_name.ipynb`` (copied there by docs/conf.py);
- a file under ``reports/`` that docs/conf.py mirrored into ``docs/reports/`` -> the copy.

Targets are resolved against the repository (``base`` is the linking file's folder), and any
other target is left alone, so a link to a path that does not exist still fails the build.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

#: Repository folders (no trailing slash) and top-level files -> their page on the site
#: (relative to docs/; docs/conf.py writes the copies under docs/reports/).
FOLDER_PAGES = {
    "notebooks": "tutorials/index.md",
    "reports/notebooks": "tutorials/index.md",
    "reports/benchmarks": "reports/benchmarks/index.md",
    "CHANGELOG.md": "reports/changelog.md",
}
NOTEBOOK = re.compile(r"(?:reports/)?notebooks/(\d\d_[\w-]+\.ipynb)")
LINK = re.compile(r"\]\(([^)\s#]+)(#[^)\s]*)?\)")


def rewrite_links(text: str, base: str, docs: Path) -> str:
    """Rewrite the Markdown links of ``text`` whose targets have a page on the site.

    Parameters
    ----------
    text : str
        Markdown source.
    base : str
        The folder, relative to the repository root, that the links are relative to: ``""``
        for README.md, ``"docs"`` for docs/*.md.
    docs : Path
        The Sphinx source folder (docs/); the rewritten targets are relative to it, and a
        notebook or report is rewritten only when its copy exists there.
    """

    def replace(match: re.Match) -> str:
        target, fragment = match.group(1), match.group(2) or ""
        if "://" in target or target.startswith(("mailto:", "/", "#")):
            return match.group(0)
        repo_path = posixpath.normpath(posixpath.join(base, target))
        notebook = NOTEBOOK.fullmatch(repo_path)
        if repo_path in FOLDER_PAGES:
            new = FOLDER_PAGES[repo_path]
        elif notebook and (docs / "tutorials" / notebook.group(1)).is_file():
            new = f"tutorials/{notebook.group(1)}"
        elif repo_path.startswith("reports/") and (docs / repo_path).is_file():
            new = repo_path
        else:
            return match.group(0)
        return f"]({new}{fragment})"

    return LINK.sub(replace, text)


def _on_source_read(app, docname: str, source: list[str]) -> None:
    if "/" not in docname:  # the guides, docs/*.md (not the copied tutorials and reports)
        source[0] = rewrite_links(source[0], "docs", Path(app.srcdir))


def _on_include_read(app, relative_path, parent_docname: str, content: list[str]) -> None:
    if Path(relative_path).name == "README.md":
        content[0] = rewrite_links(content[0], "", Path(app.srcdir))


def setup(app) -> dict:
    app.connect("source-read", _on_source_read)
    app.connect("include-read", _on_include_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
