"""The CLI's action sub-commands on a faked broker: what they would publish, kept in a list."""

from __future__ import annotations

from typing import Any

import pytest


def published_actions(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The actions the CLI publishes from now on (the broker's address taken as given, no
    signing key, the default time zone), in a list instead of on a broker."""
    import claimstream.cli.exits
    import claimstream.kafka.actions
    from claimstream.kafka.actions import Receipt

    sent: list[Any] = []

    async def publish(bootstrap: str, action: Any, **_: Any) -> Receipt:
        sent.append(action)
        key = getattr(action, "case_id", None) or getattr(action, "report_id", "")
        return Receipt(action.action_id, "claimstream.actions.v1", key, 0, 7)

    monkeypatch.delenv("CLAIMSTREAM_ACTION_SIGNING_KEY_FILE", raising=False)
    monkeypatch.delenv("CLAIMSTREAM_TIMEZONE", raising=False)
    monkeypatch.setattr(claimstream.cli.exits, "require_broker", lambda value, **_: "b:9092")
    monkeypatch.setattr(claimstream.kafka.actions, "publish_action", publish)
    return sent
