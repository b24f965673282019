"""A page in a real browser for the browser tests: Debian's Chromium, headless, driven by
Playwright with `executable_path` (never a browser Playwright downloads).

The `browser` fixture (tests/conftest.py) launches it; `watched_page` opens a fresh context on
it that records every console error and uncaught page error, refuses (and records) every fetch
outside one URL prefix, and keeps a screenshot when the test fails inside it: at `shot`, in
the test's `screenshots` directory (its `tmp_path`), named in the failure's message.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import unavailable

#: what the machine's notes say a headless Chromium needs here: no sandbox as root, and none of
#: the background connections a closed network refuses
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's Chromium; skip without it, except under CI where it is a failure."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    unavailable("chromium not found (Debian package 'chromium'; `make test` installs it)")


@asynccontextmanager
async def launched_chromium() -> AsyncIterator[Any]:
    """Debian's Chromium, headless, through Playwright; closed on the way out."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        unavailable("playwright is not installed (a dev extra: pip install -e '.[dev]')")
    executable = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


class Watched:
    """A page, with the errors it logged and what it tried to fetch outside its prefix."""

    def __init__(self, page: Any, shot: Path) -> None:
        self.page = page
        self.shot = shot
        self.errors: list[str] = []
        self.fetched: list[str] = []
        self.kept = False

    async def check(self, condition: bool, message: str) -> None:
        """Assert, keeping a screenshot of the page when it fails."""
        if not condition:
            await self.page.screenshot(path=str(self.shot), full_page=True)
            self.kept = True
            pytest.fail(f"{message} (screenshot: {self.shot})")


@asynccontextmanager
async def watched_page(
    browser: Any, shot: Path, inside: str, width: int, height: int
) -> AsyncIterator[Watched]:
    """A fresh browser context's page of `width` x `height`; any URL not starting with `inside`
    is refused and recorded. Whatever fails inside (a timeout, an assertion) keeps a screenshot
    at `shot`, unless `check` already kept one."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    watched = Watched(page, shot)
    page.on(
        "console",
        lambda m: watched.errors.append(f"{m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: watched.errors.append(f"page error: {e}"))

    async def outside(route: Any) -> None:
        watched.fetched.append(route.request.url)
        await route.abort()

    await page.route(lambda url: not url.startswith(inside), outside)
    try:
        yield watched
    except Exception as exc:  # a timeout, an assertion: keep the page as it was
        if not watched.kept:
            await page.screenshot(path=str(shot), full_page=True)
        exc.add_note(f"screenshot: {shot} (at {page.url})")
        raise
    finally:
        await context.close()
