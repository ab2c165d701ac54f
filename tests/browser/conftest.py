"""Playwright driving Debian's Chromium (/usr/bin/chromium), headless, with no network.

Every request the page makes is recorded by a route and aborted unless it is the
envelope's own ``file://`` URL (or a ``blob:`` download); the context is also offline.
Playwright's bundled browsers are never used (``executable_path`` is always set).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# A hard import (a missing playwright must fail, not skip): `make test` installs it.
import playwright.sync_api as playwright_sync
import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Browser:
    browser: object
    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def page(self):  # type: ignore[no-untyped-def]
        ctx = self.browser.new_context(accept_downloads=True, offline=True)  # type: ignore[attr-defined]

        def route(r):  # type: ignore[no-untyped-def]
            url = r.request.url
            self.requests.append(url)
            if url.startswith(("file://", "blob:")):
                r.continue_()
            else:
                r.abort()

        ctx.route("**/*", route)
        page = ctx.new_page()
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        return page


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    # Module scope, not session: Playwright's sync API keeps an asyncio loop marked as
    # running in this thread while it is open, which breaks asyncio.run() in later tests.
    if not CHROMIUM.exists():
        raise AssertionError("Debian's chromium is missing: apt-get install chromium")
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser(chromium: object) -> Browser:
    return Browser(chromium)
