"""The static book (``make book``): jupyter-book builds it from the stored notebooks, then Debian's chromium
opens every page, served over http on loopback, with every request to anywhere else refused, so a script
or font that would come from a CDN fails the test rather than quietly going missing offline.

Per page: no request fails or is refused, every image has loaded, every link inside the book lands on a
page and an anchor that exist, and no cell output is a traceback or an error. Chapter 01's interact widget
renders from its stored state (a slider and the figure it drew); the landing page is chapter 00 with the
book's map and lists every chapter. The bad-input tests need no browser.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import threading
import urllib.parse
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

import chromium
from meshlab import npm, staticbook

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "tests" / "output"
CHAPTERS = sorted(path.stem for path in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
LABS = sorted(path.stem for path in (ROOT / "labs").glob("[0-9][0-9]-*.ipynb"))
WIDGET_CHAPTER = "01-from-kubernetes-to-istio"
STRAIGHT = str.maketrans("\u2018\u2019\u201c\u201d", "''\"\"")


def _npm_or_cache() -> None:
    if shutil.which("npm") is None and not (staticbook.cache_root() / f"widgets-{staticbook.HTML_MANAGER[1]}-{staticbook.REQUIREJS[1]}").exists():
        pytest.skip(f"the static book's widget scripts come from npm, which is missing (fix: {npm.NODE_FIX})")


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    """The built book's html folder (one build for the module: about 6 s)."""
    _npm_or_cache()
    index = staticbook.build(ROOT, tmp_path_factory.mktemp("static-book") / "book")
    assert index.name == "index.html"
    return index.parent


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # the test reports what failed, not every GET
        pass


@pytest.fixture(scope="module")
def site(html: Path):
    """The build served over http on a free loopback port; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Browser:
    """One chromium for the module; every request not to the book's server is aborted and recorded,
    and so is every request that failed or got an HTTP error."""

    def __init__(self, base: str, playwright) -> None:
        self.base = base
        self.browser = chromium.launch(playwright)
        self.context = self.browser.new_context(viewport={"width": 1400, "height": 1000})
        self.problems: list[str] = []
        self.context.route("**/*", self._only_the_book)
        self.context.on("requestfailed", lambda request: self.problems.append(f"failed: {request.url} ({request.failure})"))
        self.context.on("response", lambda response: response.status >= 400 and self.problems.append(f"HTTP {response.status}: {response.url}"))

    def _only_the_book(self, route) -> None:
        url = route.request.url
        if url.startswith(self.base + "/") or url.startswith("data:"):
            route.continue_()
        else:
            self.problems.append(f"refused (not the book's server): {url}")
            route.abort()

    def open(self, path: str):
        """A new page on ``path``, loaded and with the network idle (the widget manager has run)."""
        page = self.context.new_page()
        page.goto(f"{self.base}/{path}", wait_until="networkidle")
        return page

    def take_problems(self) -> list[str]:
        taken, self.problems = self.problems, []
        return taken


@pytest.fixture(scope="module")
def browser(site: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        running = Browser(site, playwright)
        try:
            yield running
        finally:
            running.browser.close()


class _Ids(HTMLParser):
    """The ids of a page's elements: where a link's #fragment may land."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(value for name, value in attrs if name in ("id", "name") and value)


@functools.cache
def _ids_of(page: Path) -> frozenset[str]:
    parser = _Ids()
    parser.feed(page.read_text(errors="replace"))
    return frozenset(parser.ids)


def _broken_links(hrefs: list[str], base: str, html: Path) -> list[str]:
    """Links inside the book whose page or anchor does not exist."""
    broken = []
    for href in hrefs:
        if not href.startswith(base + "/"):
            continue  # outside the book (istio.io, ...): not followed offline
        parts = urllib.parse.urlsplit(href)
        target = html / urllib.parse.unquote(parts.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"link to a missing page: {href}")
        elif parts.fragment and target.suffix == ".html" and urllib.parse.unquote(parts.fragment) not in _ids_of(target):
            broken.append(f"link to a missing anchor: {href}")
    return broken


#: Script, style and image requests the pages make, and the notebooks' outputs: a traceback (an ``error``
#: output) or a stderr block that carries one.
ERROR_OUTPUTS = ".cell_output .output.traceback, .cell_output .output.error"


@pytest.mark.browser
def test_every_page_opens_with_no_broken_link_image_or_request_and_no_traceback(html: Path, site: str, browser: Browser) -> None:
    pages = sorted(path.relative_to(html).as_posix() for path in html.rglob("*.html") if "_static" not in path.parts)
    assert len(pages) >= len(CHAPTERS) + len(LABS)
    problems: dict[str, list[str]] = {}
    for path in pages:
        page = browser.open(path)
        try:
            found = browser.take_problems()
            unloaded = page.eval_on_selector_all("img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
            found += [f"image not loaded: {src[:120]}" for src in unloaded]
            found += _broken_links(page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"), site, html)
            found += [f"error output: {text[:200]}" for text in page.locator(ERROR_OUTPUTS).all_inner_texts()]
            found += [f"traceback in an output: {text[:200]}" for text in page.locator(".cell_output").all_inner_texts()
                      if "Traceback (most recent call last)" in text]
        finally:
            page.close()
        if found:
            problems[path] = found
    assert not problems, json.dumps(problems, indent=1)


def _heading(notebook: Path) -> str:
    """A notebook's title: its first Markdown cell's ``# `` line."""
    first = next(cell for cell in json.loads(notebook.read_text())["cells"] if cell["cell_type"] == "markdown")
    return "".join(first["source"]).splitlines()[0].removeprefix("# ").strip()


def test_every_chapter_and_lab_has_a_page_with_its_title(html: Path) -> None:
    for folder, stems in (("notebooks", CHAPTERS), ("labs", LABS)):
        for stem in stems:
            page = html / folder / f"{stem}.html"
            assert page.is_file(), f"{folder}/{stem}.ipynb has no page"
            title = _heading(ROOT / folder / f"{stem}.ipynb")
            shown = re.search(r"<h1>([^<]*)", page.read_text())
            # Sphinx's smartquotes curl the apostrophes
            assert shown and unescape(shown.group(1)).strip().translate(STRAIGHT) == title, f"{page} does not open with its title {title!r}"


def test_a_lab_page_shows_the_student_copy_not_the_solution(html: Path) -> None:
    """The published book does not give the labs' answers away: solution blocks are stubs there."""
    text = (html / "labs" / f"{LABS[0]}.html").read_text()
    assert "YOUR CODE HERE" in text and "BEGIN SOLUTION" not in text


@pytest.mark.browser
def test_the_landing_page_is_the_book_map_and_lists_every_chapter(site: str, browser: Browser) -> None:
    page = browser.open("")
    try:
        assert page.url.endswith(f"/notebooks/{staticbook.ROOT_CHAPTER}.html"), page.url
        assert "How to use this book" in page.locator("h1").first.inner_text()
        linked = set(page.eval_on_selector_all("nav a[href]", "links => links.map(a => new URL(a.href).pathname)"))
        missing = [stem for stem in CHAPTERS + LABS if not {f"/notebooks/{stem}.html", f"/labs/{stem}.html"} & linked]
        assert not missing, f"the landing page does not link to {missing}"
        book_map = page.locator("#the-map").locator("xpath=..").locator("img").first
        book_map.scroll_into_view_if_needed()
        assert book_map.evaluate("img => img.naturalWidth") > 300, "the book's map is drawn"
        assert page.locator(".widget-dropdown select").count() >= 1, "the reading paths' dropdown renders from its stored state"
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "static-book-landing.png"))
    finally:
        page.close()
    assert not browser.take_problems()


@pytest.mark.browser
def test_a_chapter_widget_renders_from_its_stored_state(browser: Browser) -> None:
    """Chapter 01's interact: the html widget manager (vendored from npm) draws the slider and the figure
    stored in the Output widget's state, with no kernel."""
    from playwright.sync_api import expect

    page = browser.open(f"notebooks/{WIDGET_CHAPTER}.html")
    try:
        slider = page.locator(".widget-slider").first
        slider.scroll_into_view_if_needed()
        expect(slider).to_be_visible(timeout=30_000)
        assert page.locator(".widget-readout").first.inner_text().strip(), "the slider shows its value"
        figure = page.locator(".widget-output img").first
        figure.scroll_into_view_if_needed()
        expect(figure).to_be_visible(timeout=30_000)
        assert figure.evaluate("img => img.naturalWidth") > 300, "the stored figure is drawn"
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "static-book-chapter-01.png"))
    finally:
        page.close()
    assert not browser.take_problems()


# Bad input: no browser needed.

def test_a_checkout_without_chapters_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(staticbook.StaticBookError, match=r"no chapters \(notebooks/NN-\*\.ipynb\).*make notebooks"):
        staticbook.build(tmp_path, tmp_path / "out")


def test_a_checkout_without_chapter_00_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / f"{WIDGET_CHAPTER}.ipynb", tmp_path / "notebooks")
    with pytest.raises(staticbook.StaticBookError, match="chapter 00 is the book's landing page"):
        staticbook.contents(tmp_path)


def test_a_folder_that_is_not_a_book_build_is_not_emptied(tmp_path: Path) -> None:
    _npm_or_cache()
    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / f"{staticbook.ROOT_CHAPTER}.ipynb", tmp_path / "notebooks")
    precious = tmp_path / "mine" / "thesis.tex"
    precious.parent.mkdir()
    precious.write_text("keep me")
    with pytest.raises(staticbook.StaticBookError, match="not a static book build"):
        staticbook.build(tmp_path, precious.parent)
    assert precious.read_text() == "keep me"


def test_without_npm_and_no_cached_scripts_the_error_names_the_fix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MESHLAB_BOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(staticbook.StaticBookError, match=r"npm, which is not on PATH.*apt-get install nodejs npm"):
        staticbook.widget_scripts()


def test_a_build_that_fails_reports_sphinx_words_and_keeps_the_log(tmp_path: Path) -> None:
    """A chapter that is not a notebook: jupyter-book's own failure, passed on with where its log is."""
    _npm_or_cache()
    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / f"{staticbook.ROOT_CHAPTER}.ipynb", tmp_path / "notebooks")
    (tmp_path / "notebooks" / "01-broken.ipynb").write_text("{this is not json")
    with pytest.raises(staticbook.StaticBookError, match="jupyter-book build failed") as failed:
        staticbook.build(tmp_path, tmp_path / "out")
    assert "NotJSONError: Notebook does not appear to be JSON" in str(failed.value)
    assert "the last document Sphinx worked on: notebooks/01-broken" in str(failed.value)
    assert (tmp_path / "out" / "build.log").read_text().strip()
