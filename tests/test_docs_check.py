"""tools/docs_check.py without the browser: the link checker against a served folder, the image
rule, the page list, the exit status for a missing browser; and the gallery page against the
demo's figures. (The browser run itself is `make docs-check`, which needs Chromium.)"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _docs_check():
    spec = importlib.util.spec_from_file_location("docs_check", ROOT / "tools" / "docs_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def site(tmp_path):
    """A three-file site: index links to a page (with and without a real anchor) and a file."""
    (tmp_path / "tutorials").mkdir()
    (tmp_path / "index.html").write_text(
        '<html><body><h1 id="top">x</h1><a name="legacy">y</a></body></html>'
    )
    (tmp_path / "tutorials" / "01_a.html").write_text('<html><body id="t1"></body></html>')
    (tmp_path / "data.txt").write_text("plain")
    return tmp_path


def test_checker_finds_missing_pages_and_anchors(site):
    dc = _docs_check()
    server, base = dc.serve(site)
    try:
        checker = dc.TargetChecker(base)
        assert checker.problem(base + "index.html") is None
        assert checker.problem(base + "index.html#top") is None
        assert checker.problem(base + "index.html#legacy") is None  # <a name=...>
        assert checker.problem(base + "tutorials/01_a.html#t1") is None
        assert checker.problem(base + "data.txt#anything") is None  # not HTML: no anchor check
        assert checker.problem(base + "missing.html") == "HTTP 404"
        assert checker.problem(base + "index.html#nowhere") == "no id 'nowhere' in the page"
        # other hosts and schemes are not fetched (no network); other hosts are counted
        assert checker.problem("https://example.org/x.html") is None
        assert checker.problem("mailto:someone@example.org") is None
        assert checker.external == {"https://example.org/x.html"}
    finally:
        server.shutdown()


def test_image_rule_is_complete_and_nonzero_width():
    dc = _docs_check()
    images = [
        {"src": "ok.png", "complete": True, "naturalWidth": 640},
        {"src": "corrupt.png", "complete": True, "naturalWidth": 0},
        {"src": "pending.png", "complete": False, "naturalWidth": 0},
    ]
    problems = dc.image_problems("index.html", images)
    assert [p.target for p in problems] == ["corrupt.png", "pending.png"]
    assert str(problems[0]) == (
        "index.html: broken image: corrupt.png (complete=True, naturalWidth=0)"
    )


def test_pages_to_open(site):
    dc = _docs_check()
    assert dc.pages_to_open(site) == ["index.html", "tutorials/01_a.html"]
    (site / "_static").mkdir()
    (site / "_static" / "skip.html").write_text("<html></html>")
    assert dc.pages_to_open(site, every_page=True) == ["index.html", "tutorials/01_a.html"]
    (site / "tutorials" / "01_a.html").unlink()
    with pytest.raises(FileNotFoundError, match="no tutorials/"):
        dc.pages_to_open(site)
    with pytest.raises(FileNotFoundError, match=r"no index\.html"):
        dc.pages_to_open(site / "tutorials")


def test_missing_browser_exits_2(site, tmp_path, capsys):
    dc = _docs_check()
    status = dc.main(["--site", str(site), "--chromium", str(tmp_path / "no-chromium")])
    assert status == 2
    assert "--chromium" in capsys.readouterr().err


def _ext(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "_ext" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gallery_shows_every_demo_figure_with_the_reports_caption():
    gallery = _ext("gallery")
    report = (ROOT / "reports" / "demo" / "report.md").read_text()
    figures = sorted(p.name for p in (ROOT / "reports" / "demo" / "figures").glob("*.png"))
    page = gallery.gallery_markdown(report, figures, "img")
    shown = re.findall(r"\{figure\} img/(\S+\.png)", page)
    assert sorted(shown) == figures  # each once
    # each caption is the report's italic line under that image
    for section, name, caption in gallery.report_figures(report):
        assert re.search(
            rf"!\[[^\]]*\]\(figures/{re.escape(name)}\)\s+\*{re.escape(caption)}\.?\*", report
        )
        assert f"{{figure}} img/{name}\n:alt: {caption}\n" in page
        assert f"## {section}" in page


def test_gallery_refuses_a_figure_the_report_does_not_show():
    gallery = _ext("gallery")
    report = "## d1\n\n![Alt](figures/a.png)\n\n*Caption a.*\n"
    page = gallery.gallery_markdown(report, ["a.png"], "img")
    assert page.startswith("## d1\n") and "\nCaption a.\n" in page
    with pytest.raises(ValueError, match=r"not in the report: \['b.png'\]"):
        gallery.gallery_markdown(report, ["a.png", "b.png"], "img")
    with pytest.raises(ValueError, match=r"not in figures/: \['a.png'\]"):
        gallery.gallery_markdown(report, [], "img")


def test_repository_links_become_site_pages(tmp_path):
    rl = _ext("repo_links")
    (tmp_path / "tutorials").mkdir()
    (tmp_path / "tutorials" / "01_cavi.ipynb").write_text("{}")
    (tmp_path / "reports" / "benchmarks").mkdir(parents=True)
    (tmp_path / "reports" / "benchmarks" / "mcmc.md").write_text("# x")
    readme = (
        "[a](notebooks/) [b](reports/notebooks/) [c](reports/benchmarks/mcmc.md#ess) "
        "[d](docs/smc.md) [e](https://x.org/notebooks/) [f](reports/benchmarks/gone.md)"
    )
    assert rl.rewrite_links(readme, "", tmp_path) == (
        "[a](tutorials/index.md) [b](tutorials/index.md) [c](reports/benchmarks/mcmc.md#ess) "
        "[d](docs/smc.md) [e](https://x.org/notebooks/) [f](reports/benchmarks/gone.md)"
    )
    guide = (
        "[g](../notebooks/01_cavi.ipynb) [h](../reports/benchmarks/) [i](smc.md) "
        "[j](notebooks/01_cavi.ipynb) [k](../notebooks/02_missing.ipynb)"
    )
    # docs/notebooks/01_cavi.ipynb does not exist in the repository: [j] stays broken, as on
    # GitHub, and so does a notebook that has no executed copy ([k])
    assert rl.rewrite_links(guide, "docs", tmp_path) == (
        "[g](tutorials/01_cavi.ipynb) [h](reports/benchmarks/index.md) [i](smc.md) "
        "[j](notebooks/01_cavi.ipynb) [k](../notebooks/02_missing.ipynb)"
    )
