"""Open the built documentation site in headless Chromium and report broken images and links.

    .venv/bin/python tools/docs_check.py                      # docs/_build/html, as `make docs-check`
    .venv/bin/python tools/docs_check.py --site /tmp/copy --all

The site is served from a local ``http.server`` thread on 127.0.0.1 (a free port). Chromium
(``/usr/bin/chromium``, Debian's package) is driven through selenium with the system's
``/usr/bin/chromedriver``: nothing is downloaded. The pages opened are the index, the gallery,
the demo report and every tutorial page (``tutorials/*.html``), or every page with ``--all``.
On each page:

- every ``<img>`` must have loaded (``img.complete && img.naturalWidth > 0`` in the browser);
- every same-site ``<a href>``, stylesheet and script is fetched from the server and must
  answer 200; a link with a ``#fragment`` into an HTML page must name an ``id`` (or
  ``<a name>``) present in that page. Links to other hosts are counted, not fetched (the
  build machines have no network).

Prints one line per problem (``page: what: target (why)``) and a summary; exit status 0 when
there is none, 1 when there are problems, 2 when the site or the browser is missing.
"""

from __future__ import annotations

import argparse
import functools
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SITE = REPO_ROOT / "docs" / "_build" / "html"
#: Pages opened besides the tutorials (those that exist in the build).
MAIN_PAGES = ("index.html", "gallery.html", "reports/demo/report.html")

#: Runs in the page: the images (with their load state) and every same-site target.
COLLECT_JS = """
const images = Array.from(document.images).map(img => ({
    src: img.currentSrc || img.src, complete: img.complete, naturalWidth: img.naturalWidth}));
const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.href);
const resources = Array.from(document.querySelectorAll('link[rel~="stylesheet"][href], script[src]'))
    .map(e => e.href || e.src);
return {images: images, links: links, resources: resources, ready: document.readyState};
"""


@dataclass(frozen=True)
class Problem:
    """One broken thing on one page."""

    page: str  # path of the page in the site, e.g. "tutorials/01_cavi_from_scratch.html"
    what: str  # "broken image", "broken link" or "broken resource"
    target: str  # the URL as the browser resolved it
    why: str

    def __str__(self) -> str:
        return f"{self.page}: {self.what}: {self.target} ({self.why})"


class _Anchors(HTMLParser):
    """Collect the ids (and ``<a name>``) of an HTML page: the targets of ``#fragment``."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if value and (key == "id" or (tag == "a" and key == "name")):
                self.ids.add(value)


def serve(site: Path) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``site`` on 127.0.0.1 (a free port) from a daemon thread; return (server, base URL).

    The base URL ends with "/". Stop with ``server.shutdown()``.
    """
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass


class TargetChecker:
    """Fetch same-site URLs once each and say what is wrong with them (None when nothing).

    Parameters
    ----------
    base_url : str
        The served site's root, e.g. "http://127.0.0.1:8000/".
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._bodies: dict[str, tuple[int | str, bytes, str]] = {}
        self._anchors: dict[str, set[str]] = {}
        self.external: set[str] = set()

    def same_site(self, url: str) -> bool:
        return urlsplit(url).netloc == urlsplit(self.base_url).netloc

    def _fetch(self, url: str) -> tuple[int | str, bytes, str]:
        """(status or error text, body, content type) for ``url`` without its fragment."""
        if url not in self._bodies:
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    self._bodies[url] = (
                        response.status,
                        response.read(),
                        response.headers.get_content_type(),
                    )
            except urllib.error.HTTPError as err:
                self._bodies[url] = (err.code, b"", "")
            except (urllib.error.URLError, OSError) as err:
                self._bodies[url] = (f"cannot fetch: {err}", b"", "")
        return self._bodies[url]

    def problem(self, url: str) -> str | None:
        """Why ``url`` is broken ("HTTP 404", "no id 'x' in the page"), or None.

        Other schemes (mailto:, javascript:) and other hosts are not checked; other hosts are
        remembered in :attr:`external`.
        """
        if urlsplit(url).scheme not in ("http", "https"):
            return None
        if not self.same_site(url):
            self.external.add(url)
            return None
        address, fragment = urldefrag(url)
        status, body, content_type = self._fetch(address)
        if status != 200:
            return f"HTTP {status}" if isinstance(status, int) else status
        if fragment and content_type == "text/html":
            if address not in self._anchors:
                parser = _Anchors()
                parser.feed(body.decode("utf-8", errors="replace"))
                self._anchors[address] = parser.ids
            if unquote(fragment) not in self._anchors[address]:
                return f"no id {fragment!r} in the page"
        return None


def image_problems(page: str, images: list[dict]) -> list[Problem]:
    """The images that did not load: ``complete && naturalWidth > 0`` is false.

    ``images`` are the browser's records: dicts with "src", "complete", "naturalWidth".
    """
    return [
        Problem(
            page,
            "broken image",
            image["src"] or "<img> without src",
            f"complete={image['complete']}, naturalWidth={image['naturalWidth']}",
        )
        for image in images
        if not (image["complete"] and image["naturalWidth"] > 0)
    ]


def pages_to_open(site: Path, every_page: bool = False) -> list[str]:
    """Site paths of the pages to open: the main pages and every tutorial, or every page.

    Raises FileNotFoundError when the site has no index.html or no tutorial page.
    """
    if not (site / "index.html").is_file():
        raise FileNotFoundError(f"--site: no index.html in {site}; build the site with `make docs`")
    if every_page:
        return sorted(
            p.relative_to(site).as_posix()
            for p in site.rglob("*.html")
            if not p.relative_to(site).parts[0].startswith("_")
        )
    tutorials = sorted(p.relative_to(site).as_posix() for p in (site / "tutorials").glob("*.html"))
    if not tutorials:
        raise FileNotFoundError(
            f"--site: no tutorials/*.html in {site}; the tutorials are "
            "missing from the build (see docs/conf.py)"
        )
    return [p for p in MAIN_PAGES if (site / p).is_file()] + tutorials


def _browser(chromium: Path, chromedriver: Path):
    """Headless Chromium through the given chromedriver (selenium downloads nothing)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1024",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(chromedriver)), options=options)
    driver.set_page_load_timeout(60)
    return driver


def _collect(driver, url: str, wait: float) -> dict:
    """Open ``url`` and return COLLECT_JS's record once every image settled (or ``wait`` s)."""
    driver.get(url)
    deadline = time.monotonic() + wait
    while True:
        record = driver.execute_script(COLLECT_JS)
        settled = record["ready"] == "complete" and all(i["complete"] for i in record["images"])
        if settled or time.monotonic() > deadline:
            return record
        time.sleep(0.1)


def check_site(
    site: Path, chromium: Path, chromedriver: Path, every_page: bool = False, wait: float = 10.0
) -> tuple[list[Problem], dict[str, int]]:
    """Open the pages in headless Chromium; return the problems and counts of what was checked."""
    pages = pages_to_open(site, every_page)
    server, base_url = serve(site)
    checker = TargetChecker(base_url)
    problems: list[Problem] = []
    counts = {"pages": 0, "images": 0, "links": 0, "resources": 0}
    driver = _browser(chromium, chromedriver)
    try:
        for page in pages:
            record = _collect(driver, urljoin(base_url, page), wait)
            counts["pages"] += 1
            counts["images"] += len(record["images"])
            problems += image_problems(page, record["images"])
            for kind, urls in (("link", record["links"]), ("resource", record["resources"])):
                for url in dict.fromkeys(urls):  # unique, in page order
                    counts[f"{kind}s"] += 1
                    why = checker.problem(url)
                    if why:
                        problems.append(Problem(page, f"broken {kind}", url, why))
    finally:
        driver.quit()
        server.shutdown()
    counts["external links (not fetched)"] = len(checker.external)
    return problems, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--site", type=Path, default=DEFAULT_SITE, help="the built HTML site (default: %(default)s)"
    )
    parser.add_argument("--chromium", type=Path, default=Path("/usr/bin/chromium"))
    parser.add_argument("--chromedriver", type=Path, default=Path("/usr/bin/chromedriver"))
    parser.add_argument(
        "--all",
        action="store_true",
        dest="every_page",
        help="open every page, not only the main pages and the tutorials",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=10.0,
        help="seconds to wait for a page's images to settle (default: 10)",
    )
    args = parser.parse_args(argv)
    for option, path in (("--chromium", args.chromium), ("--chromedriver", args.chromedriver)):
        if not path.is_file():
            print(
                f"{option}: {path} does not exist; install Debian's chromium and "
                "chromium-driver (`make docs-check` does it) or pass the path",
                file=sys.stderr,
            )
            return 2
    start = time.perf_counter()
    try:
        problems, counts = check_site(
            args.site, args.chromium, args.chromedriver, args.every_page, args.wait
        )
    except FileNotFoundError as err:
        print(err, file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    checked = ", ".join(f"{n} {what}" for what, n in counts.items())
    print(
        f"docs-check: {checked}; {len(problems)} problem(s) in {time.perf_counter() - start:.1f} s",
        file=sys.stderr,
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
