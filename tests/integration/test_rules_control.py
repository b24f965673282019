"""`claimstream rules list|set` against the real local broker, and a watcher following it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from claimstream.cli.main import main
from claimstream.devtools.localbroker import LocalBroker
from claimstream.kafka.control import ControlWatcher, Snapshot

pytestmark = pytest.mark.integration


def test_set_publishes_a_validated_change_and_list_shows_it(
    local_broker: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap = ["--bootstrap", local_broker.bootstrap]
    assert main(["rules", "list", *bootstrap]) == 0
    assert "configuration version 1 (from defaults and environment)" in capsys.readouterr().out

    assert (
        main(["rules", "set", "readmission_24h", "max_gap_hours=48", "--by", "ana", *bootstrap])
        == 0
    )
    assert "published configuration version 2" in capsys.readouterr().out

    assert main(["rules", "set", "readmission_24h", "max_gap_hours=-3", *bootstrap]) == 2
    assert "refused, nothing published" in capsys.readouterr().err

    assert main(["rules", "list", "--json", *bootstrap]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert shown["version"] == 2
    assert shown["rules"]["readmission_24h"]["max_gap_hours"] == 48.0


async def test_a_watcher_sees_a_published_change_within_seconds(local_broker: LocalBroker) -> None:
    seen: asyncio.Queue[Snapshot] = asyncio.Queue()
    stop = asyncio.Event()
    watcher = ControlWatcher(local_broker.bootstrap, seen.put_nowait, poll_ms=100)
    task = asyncio.create_task(watcher.run(stop))
    try:
        code = await asyncio.to_thread(
            main,
            [
                "rules",
                "set",
                "high_frequency_consultation",
                "min_consultations=15",
                "--bootstrap",
                local_broker.bootstrap,
            ],
        )
        assert code == 0
        async with asyncio.timeout(10):
            while True:
                snapshot = await seen.get()
                settings = snapshot.config.rules["high_frequency_consultation"]
                if settings.min_consultations == 15:  # type: ignore[attr-defined]
                    break
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


CUSTOM = """
[custom_rules.high_cost_claims]
template = "window_count"
event_types = ["claim"]
filter = "event.total_amount > 1000.0 && event.institution_id in lists.hospitals"
window_days = 7
min_count = 3

[custom_lists]
hospitals = ["H001"]
"""


def test_add_publishes_custom_rules_list_shows_them_and_remove_takes_one_out(
    local_broker: LocalBroker, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bootstrap = ["--bootstrap", local_broker.bootstrap]
    bad = tmp_path / "bad.toml"
    bad.write_text(CUSTOM.replace("> 1000.0", "> 1000"), encoding="utf-8")
    assert main(["rules", "add", str(bad), *bootstrap]) == 2
    assert "custom_rules.high_cost_claims.filter: at 1:20" in capsys.readouterr().err
    assert main(["rules", "list", "--json", *bootstrap]) == 0
    assert "custom_rules" not in orjson.loads(capsys.readouterr().out)  # nothing published

    good = tmp_path / "good.toml"
    good.write_text(CUSTOM, encoding="utf-8")
    assert main(["rules", "add", str(good), "--by", "ana", *bootstrap]) == 0
    assert "custom rule high_cost_claims added (shadow)" in capsys.readouterr().out
    assert main(["rules", "list", *bootstrap]) == 0
    shown = capsys.readouterr().out
    assert "high_cost_claims" in shown
    assert "custom lists: hospitals (1)" in shown

    assert main(["rules", "set", "high_cost_claims", "mode=enforce", *bootstrap]) == 0
    assert main(["rules", "remove", "high_cost_claims", *bootstrap]) == 0
    capsys.readouterr()
    assert main(["rules", "list", "--json", *bootstrap]) == 0
    assert "custom_rules" not in orjson.loads(capsys.readouterr().out)
