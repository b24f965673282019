"""The HTML benchmark report (`claimstream institutions benchmark --html`) in a real browser:
Debian's Chromium, headless, driven by Playwright (never a browser Playwright downloads). It
renders without a console error, fetches nothing, draws every chart with every member's dot and
the institution's marked, and fits a phone's width. On a failure a screenshot is kept beside
the report and named in the message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from claimstream.cli.main import main
from claimstream.model.indicators import INDICATORS
from tests.cli.support import write_lines
from tests.support.browser import Watched, watched_page
from tests.support.institution_months import year


@pytest.fixture
def report(tmp_path: Path) -> Path:
    months = write_lines(tmp_path / "months.jsonl", [r.to_dict() for r in year()])
    page = tmp_path / "H001.html"
    argv = ["institutions", "benchmark", "H001", "--from", str(months), "--html", str(page)]
    assert main(argv) == 0
    return page


@asynccontextmanager
async def open_report(
    browser: Any, report: Path, screenshots: Path, width: int, height: int = 900
) -> AsyncIterator[Watched]:
    """The report in a page `width` px wide that fetches nothing but the file itself; a failure
    keeps a screenshot named after the report and the width."""
    shot = screenshots / f"{report.stem}.{width}px.png"
    async with watched_page(browser, shot, "file://", width, height) as opened:
        await opened.page.goto(report.as_uri())
        await opened.page.wait_for_load_state("load")
        yield opened


async def test_the_report_renders_without_a_console_error_and_fetches_nothing(
    browser: Any, report: Path, screenshots: Path
) -> None:
    async with open_report(browser, report, screenshots, 1280) as opened:
        await opened.check(opened.errors == [], f"console errors: {opened.errors}")
        await opened.check(opened.fetched == [], f"fetched: {opened.fetched}")
        title = await opened.page.title()
        await opened.check(title == "Benchmark of H001, 2026-03", title)


async def test_every_indicator_has_a_drawn_trend_and_distribution_chart(
    browser: Any, report: Path, screenshots: Path
) -> None:
    async with open_report(browser, report, screenshots, 1280) as opened:
        page = opened.page
        for kind in ("trend", "distribution"):
            charts = page.locator(f"svg.chart.{kind}")
            count = await charts.count()
            await opened.check(count == len(INDICATORS), f"{count} {kind} charts")
            for index in range(count):
                box = await charts.nth(index).bounding_box()
                await opened.check(
                    box is not None and box["width"] > 100 and box["height"] > 40,
                    f"{kind} chart {index} is not drawn: {box}",
                )
        trend_lines = await page.locator("svg.chart.trend polyline.own-line").count()
        await opened.check(trend_lines >= len(INDICATORS), f"{trend_lines} trend lines")


async def test_each_distribution_shows_every_member_and_marks_the_institution_once(
    browser: Any, report: Path, screenshots: Path
) -> None:
    async with open_report(browser, report, screenshots, 1280) as opened:
        charts = opened.page.locator("svg.chart.distribution")
        for index in range(await charts.count()):
            chart = charts.nth(index)
            dots = await chart.locator("circle.mark").count()
            own = await chart.locator("circle.mark.own").count()
            await opened.check((dots, own) == (12, 1), f"chart {index}: {dots} dots, {own} marked")
            fill = await chart.locator("circle.mark.own").evaluate("c => getComputedStyle(c).fill")
            peer = await chart.locator("circle.mark:not(.own)").first.evaluate(
                "c => getComputedStyle(c).fill"
            )
            await opened.check(fill != peer, f"the institution's dot looks like a peer's: {fill}")


async def test_on_a_phones_width_the_page_does_not_scroll_sideways(
    browser: Any, report: Path, screenshots: Path
) -> None:
    async with open_report(browser, report, screenshots, 360, 740) as opened:
        width = await opened.page.evaluate("document.documentElement.scrollWidth")
        await opened.check(width <= 360, f"the page is {width} px wide on a 360 px screen")
        box = await opened.page.locator("svg.chart.trend").first.bounding_box()
        await opened.check(box is not None and box["width"] <= 360, f"a chart overflows: {box}")


async def test_the_keyboard_reaches_the_indicators_and_each_charts_table(
    browser: Any, report: Path, screenshots: Path
) -> None:
    async with open_report(browser, report, screenshots, 1280) as opened:
        page = opened.page
        await page.keyboard.press("Tab")
        first = await page.evaluate("document.activeElement.textContent")
        await opened.check(first == "Skip to the indicators", f"first Tab stop: {first!r}")
        await page.keyboard.press("Enter")
        await opened.check(page.url.endswith("#indicators"), page.url)
        summary = page.locator("#cost_per_stay summary")
        await summary.focus()
        await page.keyboard.press("Enter")
        opened_table = await page.locator("#cost_per_stay details").evaluate("d => d.open")
        await opened.check(opened_table is True, "Enter did not open the chart's table")
        rows = await page.locator("#cost_per_stay details tbody tr").count()
        await opened.check(rows == 12, f"{rows} months in the table")
