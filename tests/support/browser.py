"""A page in a real browser for the browser tests: Debian's Chromium, headless, driven by
Playwright with `executable_path` (never a browser Playwright downloads).

The `browser` fixture (tests/conftest.py) launches it; `watched_page` opens a fresh context on
it that records every console error and uncaught page error, refuses (and records) every fetch
outside one URL prefix, and keeps a screenshot when the test fails inside it: at `shot`, in
the test's `screenshots` directory (its `tmp_path`), named in the failure's message.
`console_session` is such a page on a worker's console, as one person (`Session`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Mapping
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


class Session:
    """One person's browser context on the console, keeping a screenshot on failure. Signing
    in starts at `home` and sends the token with the keyboard (Enter) or the button."""

    def __init__(
        self, watched: Watched, base: str, tokens: Mapping[str, str], home: str, keyboard: bool
    ) -> None:
        self.watched = watched
        self.page = watched.page
        self.base = base
        self.tokens = tokens
        self.home = home
        self.keyboard = keyboard
        self.errors = watched.errors
        self.fetched = watched.fetched

    async def check(self, condition: bool, message: str) -> None:
        await self.watched.check(condition, message)

    async def text(self, selector: str) -> str:
        return str(await self.page.locator(selector).inner_text())

    async def fits(self, width: int) -> None:
        scrolled = await self.page.evaluate("document.documentElement.scrollWidth")
        await self.check(scrolled <= width, f"{self.page.url} is {scrolled} px wide at {width}")

    async def keep(self, name: str, *, full_page: bool = False) -> None:
        """The page into `CONSOLE_SCREENSHOTS` (the docs' images), when set."""
        folder = os.environ.get("CONSOLE_SCREENSHOTS")
        if folder:
            await self.page.screenshot(path=str(Path(folder) / name), full_page=full_page)

    async def sign_in(self, who: str, then: str | None = None) -> None:
        """Signed in as `who` from `then` (default `home`), which the console goes back to."""
        page = self.page
        await page.goto(f"{self.base}{then or self.home}")
        await self.check("/console/login" in page.url, f"not sent to sign in: {page.url}")
        await page.get_by_label("Your API token").fill(self.tokens[who])
        if self.keyboard:
            await page.get_by_label("Your API token").press("Enter")
        else:
            await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_load_state("load")
        await self.check(who in await self.text("header"), f"not signed in as {who}: {page.url}")

    async def tab_to(self, test: str, what: str, stops: int = 40) -> None:
        """Press Tab until the focused element passes the JavaScript `test` (on `el`)."""
        for _ in range(stops):
            await self.page.keyboard.press("Tab")
            if await self.page.evaluate(f"(el => Boolean({test}))(document.activeElement)"):
                return
        focused = await self.page.evaluate("document.activeElement.outerHTML")
        await self.check(False, f"{stops} Tabs did not reach {what}; focused: {focused[:200]}")

    async def done(self) -> None:
        """Nothing went wrong in the page, and it fetched nothing but the worker."""
        errors, fetched = self.watched.errors, self.watched.fetched
        await self.check(errors == [] and fetched == [], f"{errors} {fetched}")


@asynccontextmanager
async def console_session(
    browser: Any,
    port: int,
    shots: Path,
    tokens: Mapping[str, str],
    width: int = 1000,
    height: int = 800,
    *,
    home: str = "/console/",
    keyboard: bool = False,
) -> AsyncIterator[Session]:
    """A fresh browser context on the console of the worker on loopback `port` that fetches
    nothing but the worker itself; whatever fails inside keeps a screenshot."""
    base = f"http://127.0.0.1:{port}"
    async with watched_page(browser, shots / "failure.png", base, width, height) as watched:
        yield Session(watched, base, tokens, home, keyboard)
