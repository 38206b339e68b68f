"""A reader's session in a real browser: JupyterLab, chapter 01, Run All, move a slider, see the figure change.

Python Playwright drives Debian's chromium (never a downloaded browser: ``playwright install`` cannot
reach its download host here). The server runs on loopback with a token, on a copy of the notebooks
with outputs cleared, so "every cell has run" can be read off the input prompts. The screenshot goes
to ``tests/output/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import chromium
import nbformat
import pytest


ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "tests" / "output"
CHAPTER = "01-from-kubernetes-to-istio.ipynb"
CHAPTERS = sorted(path.name for path in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


@pytest.fixture(scope="module", params=["cleared"])
def jupyterlab(tmp_path_factory, request):
    """JupyterLab on loopback over a copy of the chapters, their outputs cleared (``cleared``) or as stored
    (``stored``: outputs and widget state); yields (base URL, token). One server per kind for the module:
    the stored chapters are only opened, never changed, so every test of them shares it."""
    tmp_path = tmp_path_factory.mktemp(f"jupyterlab-{request.param}")
    root = tmp_path / "book" / "notebooks"
    root.mkdir(parents=True)
    for chapter in CHAPTERS:
        notebook = nbformat.read(ROOT / "notebooks" / chapter, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code" and request.param == "cleared":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(notebook, root / chapter)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTER_DATA_DIR=str(tmp_path / "data"), IPYTHONDIR=str(tmp_path / "ipython"), MPLCONFIGDIR=str(tmp_path / "mpl"))
    if request.param == "stored":  # as make lab does: meshlab.book.trust_book signs the stored notebooks
        done = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from meshlab.book import trust_book; "
                               "sys.exit(not trust_book(Path(sys.argv[1])))", str(root.parent)], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    settings = tmp_path / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    notebook_settings = tmp_path / "config" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True)  # every cell in the page at once, so a locator finds cells below the fold
    (notebook_settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    token = secrets.token_hex(16)
    server = subprocess.Popen(  # port 0: the kernel picks a free port, which the server writes into its runtime file
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.port=0", "--ServerApp.ip=127.0.0.1",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
        env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "server.log").open("w"),
    )
    base = "http://127.0.0.1:<not yet listening>"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                (info,) = (tmp_path / "runtime").glob(f"jpserver-{server.pid}.json")
                base = f"http://127.0.0.1:{json.loads(info.read_text())['port']}"
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).close()
                break
            except (OSError, ValueError, KeyError):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError(f"JupyterLab did not answer on {base} within 60 s: {(tmp_path / 'server.log').read_text()[-2000:]}")
                time.sleep(0.3)
        yield base, token
    finally:
        try:
            shutdown = urllib.request.Request(f"{base}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(shutdown, timeout=10).close()
            server.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            server.terminate()
            server.wait(timeout=20)


@contextlib.contextmanager
def chapter_page(base: str, token: str, chapter: str = CHAPTER):
    """Debian's chromium on a chapter in JupyterLab, once its kernel is idle."""
    from playwright.sync_api import expect, sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = chromium.launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/{chapter}?token={token}&reset")
            expect(page.locator(".jp-StatusBar-TextItem", has_text="Idle").first).to_be_visible(timeout=60_000)
            yield page
        finally:
            browser.close()


@pytest.mark.browser
def test_reader_runs_chapter_01_and_a_slider_redraws_the_figure(jupyterlab):
    from playwright.sync_api import expect

    with chapter_page(*jupyterlab) as page:
        idle = page.locator(".jp-StatusBar-TextItem", has_text="Idle")
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

        prompts = page.locator(".jp-CodeCell .jp-InputPrompt")
        code_cells = sum(cell.cell_type == "code" for cell in nbformat.read(ROOT / "notebooks" / CHAPTER, as_version=4).cells)
        expect(prompts).to_have_count(code_cells, timeout=30_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].every(p => /\\[\\d+\\]/.test(p.textContent))",
            timeout=180_000,
        )
        expect(idle.first).to_be_visible(timeout=60_000)
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']", has_text="Traceback")
        assert errors.count() == 0, errors.first.inner_text()

        figure = page.locator(".widget-output img").first
        expect(figure).to_be_visible(timeout=30_000)
        before = figure.get_attribute("src")
        stats_before = page.locator(".widget-output").first.inner_text()
        readout = page.locator(".widget-readout").first
        value_before = readout.text_content()
        handle = page.locator(".widget-slider .noUi-handle").first
        handle.scroll_into_view_if_needed()
        handle.focus()
        handle.press("ArrowRight")
        expect(readout).not_to_have_text(value_before, timeout=10_000)
        page.wait_for_function("(before) => { const img = document.querySelector('.widget-output img'); return img && img.src !== before; }", arg=before, timeout=30_000)
        assert int(readout.text_content()) == int(value_before) + 1, (value_before, readout.text_content())
        assert page.locator(".widget-output").first.inner_text() != stats_before, "the printed statistics did not change"
        figure.scroll_into_view_if_needed()
        page.screenshot(path=str(OUTPUT / "browser-chapter-01.png"))
    assert (OUTPUT / "browser-chapter-01.png").stat().st_size > 10_000


@pytest.mark.browser
@pytest.mark.parametrize("jupyterlab", ["stored"], indirect=True)
def test_a_reader_who_opens_the_stored_chapter_sees_its_controls_and_figures_before_running(jupyterlab):
    """The stored widget state renders: the slider and the figure it drew, not ``interactive(children=...``."""
    from playwright.sync_api import expect

    with chapter_page(*jupyterlab) as page:
        slider = page.locator(".widget-slider").first
        slider.scroll_into_view_if_needed(timeout=60_000)
        expect(slider).to_be_visible(timeout=60_000)
        figure = page.locator(".widget-output img").first
        figure.scroll_into_view_if_needed()
        expect(figure).to_be_visible(timeout=30_000)
        assert figure.evaluate("img => img.naturalWidth") > 300, "the stored figure is drawn"
        assert page.locator("text=interactive(children=").count() == 0, "a widget shown as text"
        prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_text_contents()
        assert prompts and all("*" not in prompt for prompt in prompts), "nothing was run"
        page.screenshot(path=str(OUTPUT / "browser-chapter-01-stored.png"))


@pytest.mark.browser
@pytest.mark.parametrize("jupyterlab", ["stored"], indirect=True)
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_stored_chapter_opens_with_its_diagram_at_full_size(jupyterlab, chapter):
    """The architecture diagram is the first thing a reader sees, drawn at 100%: JupyterLab did not have to
    shrink it to fit, so its labels keep the size meshlab.viz.diagram gives them (>= 9 pt)."""
    from playwright.sync_api import expect

    with chapter_page(*jupyterlab, chapter=chapter) as page:
        diagram = page.locator(".jp-RenderedSVG img, .jp-RenderedSVG svg").first
        diagram.scroll_into_view_if_needed(timeout=60_000)
        expect(diagram).to_be_visible(timeout=30_000)
        shown, natural = diagram.evaluate("d => [d.getBoundingClientRect().width, d.naturalWidth || d.width.baseVal.value]")
        assert natural > 200 and abs(shown - natural) < 1, f"the diagram is drawn {shown:.0f} px wide, {natural:.0f} px at 100%"
        diagram.screenshot(path=str(OUTPUT / f"diagram-{chapter.removesuffix('.ipynb')}.png"))
