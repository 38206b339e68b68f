"""Debian's chromium for the browser tests, never a downloaded browser (``playwright install`` cannot
reach its download host here): headless, no sandbox (the tests run as root), nothing fetched of its own.

    ARGS     chromium's command-line flags
    launch   a Playwright Browser on Debian's chromium
"""

from __future__ import annotations

from meshlab.doctor import chromium_path

ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def launch(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), args=ARGS)
