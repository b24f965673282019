"""`claimstream institutions benchmark`: offline from a file of institution months, from a
worker's API (scripted, and the real route), the table, the HTML report and the exit codes.
(The HTML in a real browser: tests/cli/test_benchmark_browser.py.)"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from claimstream.cli.main import main
from claimstream.detection.benchmark import MemoryMonths, benchmark
from claimstream.model.indicators import INDICATORS
from claimstream.stream.http.access import Access, access_control, parse_tokens, token_line
from claimstream.stream.http.benchmark import benchmark_routes
from claimstream.stream.http.errors import json_errors
from tests.cli.support import closed_port, write_lines
from tests.client.scripted import scripted
from tests.support.institution_months import LAST, year


@pytest.fixture
def months(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "months.jsonl", [r.to_dict() for r in year()])


def expected(institution: str = "H001", month: str = LAST) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(benchmark(institution, month, year()).to_dict()))


def test_from_a_file_it_prints_each_indicator_beside_the_group(
    months: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["institutions", "benchmark", "H001", "--from", str(months)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("institution H001, 2026-03: compared with the 12 institutions")
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()}
    assert set(INDICATORS) <= set(rows)
    assert re.search(r"¥15,344\.00 ▲ +35 +¥10,894\.50 +¥10,565\.00 +¥11,060\.00 +1 of 12", out)


def test_json_prints_the_benchmark_the_route_answers(
    months: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["institutions", "benchmark", "H005", "--from", str(months), "--month", "2026-01"]
    assert main([*argv, "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out) == expected("H005", "2026-01")


def test_html_writes_a_self_contained_report_with_both_charts_of_each_indicator(
    months: Path, tmp_path: Path
) -> None:
    report = tmp_path / "h001.html"
    assert (
        main(["institutions", "benchmark", "H001", "--from", str(months), "--html", str(report)])
        == 0
    )
    page = report.read_text(encoding="utf-8")
    assert page.count('<svg class="chart trend"') == len(INDICATORS)
    assert page.count('<svg class="chart distribution"') == len(INDICATORS)
    assert page.count('class="mark own"') >= len(INDICATORS)  # the institution marked
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched
    assert "<script" not in page


def test_an_id_in_the_data_cannot_inject_markup_into_the_report(tmp_path: Path) -> None:
    record = year()[0].to_dict() | {"institution_id": "<img src=x onerror=alert(1)>"}
    source = write_lines(tmp_path / "m.jsonl", [record])
    report = tmp_path / "r.html"
    argv = ["institutions", "benchmark", record["institution_id"], "--from", str(source)]
    assert main([*argv, "--html", str(report)]) == 0
    page = report.read_text(encoding="utf-8")
    assert "<img" not in page and "&lt;img src=x" in page


def test_from_a_worker_it_asks_the_route_with_the_client_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLAIMSTREAM_CLIENT_TOKEN", "cs_sup")
    with scripted((200, expected(), {})) as worker:
        argv = ["institutions", "benchmark", "H001", "--month", LAST, "--worker", worker.url]
        assert main(argv) == 0
    assert worker.seen[0].path == "/v1/institutions/H001/benchmark?month=2026-03"
    assert worker.seen[0].headers["Authorization"] == "Bearer cs_sup"
    assert "1 of 12" in capsys.readouterr().out


async def test_against_the_real_route_an_institutions_own_token_gets_its_benchmark(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = f"{token_line('portal-a', 'institution:H001', 'cs_a')};"
    lines += token_line("portal-b", "institution:H002", "cs_b")
    app = web.Application(
        middlewares=[
            json_errors,
            access_control(Access(inline=parse_tokens(lines.encode(), "t", ";"))),
        ]
    )
    source = MemoryMonths.of(year())
    app.add_routes(benchmark_routes(lambda: source))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=None)
    try:
        url = str(server.make_url("/")).rstrip("/")
        argv = ["institutions", "benchmark", "H001", "--worker", url, "--json"]
        monkeypatch.setenv("CLAIMSTREAM_CLIENT_TOKEN", "cs_a")
        assert await asyncio.to_thread(main, argv) == 0
        assert orjson.loads(capsys.readouterr().out) == expected()
        monkeypatch.setenv("CLAIMSTREAM_CLIENT_TOKEN", "cs_b")
        assert await asyncio.to_thread(main, argv) == 2
        assert "refused the token: HTTP 403" in capsys.readouterr().err
    finally:
        await server.close()


def test_2_an_institution_not_in_the_file(months: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["institutions", "benchmark", "H999", "--from", str(months)]) == 2
    assert capsys.readouterr().err == (
        f"claimstream institutions benchmark: no month of institution H999 is held in {months}\n"
    )


def test_2_a_month_not_held_names_the_months_that_are(
    months: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["institutions", "benchmark", "H001", "--from", str(months), "--month", "2027-01"]
    assert main(argv) == 2
    assert "2025-04 to 2026-03" in capsys.readouterr().err


def test_2_a_month_that_is_not_yyyy_mm(months: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["institutions", "benchmark", "H001", "--from", str(months), "--month", "2026-3"]
    assert main(argv) == 2
    assert "--month: month must be YYYY-MM" in capsys.readouterr().err


def test_2_a_line_that_is_not_a_record_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "m.jsonl", [year()[0].to_dict(), {"institution_id": "H1"}])
    assert main(["institutions", "benchmark", "H001", "--from", str(source)]) == 2
    assert f"{source}:2: not an institution month record (missing field" in capsys.readouterr().err


def test_2_the_worker_does_not_hold_the_institution(capsys: pytest.CaptureFixture[str]) -> None:
    with scripted((404, {"error": "no month of institution H9 is held"}, {})) as worker:
        assert main(["institutions", "benchmark", "H9", "--worker", worker.url]) == 2
    assert "no month of institution H9 is held" in capsys.readouterr().err


def test_3_an_unreachable_worker(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://{closed_port()}"
    argv = ["institutions", "benchmark", "H001", "--worker", url, "--retries", "0"]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert f"the worker at {url} did not answer" in err and "--from FILE" in err


def test_3_a_worker_that_keeps_answering_503(capsys: pytest.CaptureFixture[str]) -> None:
    busy = (503, {"error": "no institution months yet"}, {"Retry-After": "0"})
    with scripted(busy, busy) as worker:
        argv = ["institutions", "benchmark", "H001", "--worker", worker.url, "--retries", "1"]
        assert main(argv) == 3
    assert "no institution months yet" in capsys.readouterr().err
