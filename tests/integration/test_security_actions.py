"""Write access to the actions topic alone lifts no freeze (issue #12), on the real broker.

One worker (with Redis) trusts a keyring holding one person's public key (wang.supervisor's,
`CLAIMSTREAM_ACTION_KEYS_FILE`) besides its own API key. Each test freezes an institution with
two violations, then publishes an unfreeze of it: unsigned or badly signed straight to
`claimstream.actions.v1` (dead-lettered, refused-action counter, the freeze still in Redis and
in the API's standing, no UNFREEZE); signed by the person with `claimstream unfreeze
--signing-key`, or through the API by a reviewer's token (the freeze is lifted).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from claimstream.cli.main import main
from claimstream.sanctions.signatures import ActionSigner
from claimstream.stream.http.access import token_line
from tests.integration.stream_support import TEST_TOKEN, produce
from tests.integration.test_sanctions_stream import (
    ACTIONS,
    COMMANDS,
    DEAD,
    SanctionsWorld,
    unfreeze_action,
    violation,
)

pytestmark = pytest.mark.integration

PERSON = ActionSigner.generate()  # wang.supervisor's own key
REVIEWER_TOKEN = "cs_li-na-reviewer-token"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    (folder / "keyring.pem").write_text(PERSON.keyring_entry("wang.supervisor"))
    (folder / "wang.supervisor.pem").write_bytes(PERSON.private_pem())
    return folder


@pytest.fixture(scope="module")
def world(
    redis_url: str, keys: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SanctionsWorld]:
    log = tmp_path_factory.mktemp("security-actions") / "worker.log"
    tokens = ";".join(
        [token_line("tests", "admin", TEST_TOKEN), token_line("li.na", "reviewer", REVIEWER_TOKEN)]
    )
    env = {
        "CLAIMSTREAM_ACTION_KEYS_FILE": str(keys / "keyring.pem"),
        "CLAIMSTREAM_API_TOKENS": tokens,
    }
    w = SanctionsWorld(redis_url, log_path=log, env=env).start()
    try:
        yield w
    finally:
        w.stop()


def frozen(world: SanctionsWorld, institution: str) -> dict[str, Any]:
    """Freeze `institution` with two violations; its FREEZE command."""
    t0 = datetime.now(UTC) - timedelta(minutes=3)
    patient = f"P-{institution}"
    world.events(violation(t0, patient=patient, institution=institution))
    world.alerts_for(patient, 1)
    world.events(violation(t0 + timedelta(minutes=1), patient=patient, institution=institution))
    [freeze] = world.wait_commands(f"institution:{institution}", "FREEZE")
    return freeze


def publish_raw(world: SanctionsWorld, key: str, record: dict[str, Any]) -> None:
    produce(world.bootstrap, [(ACTIONS, key.encode(), orjson.dumps(record))])


def dead_letter(world: SanctionsWorld, reason: str, institution: str) -> dict[str, Any]:
    """The dead letter of `reason` whose record names `institution`."""

    def mine(records: list[Any]) -> list[dict[str, Any]]:
        return [v for _, v in records if v["reason"] == reason and institution in (v["raw"] or "")]

    return mine(world.wait(DEAD, lambda got: mine(got), timeout=60))[0]


def assert_still_frozen(world: SanctionsWorld, institution: str, freeze: dict[str, Any]) -> None:
    scope = f"institution:{institution}"
    assert not [
        v for k, v in world.read(COMMANDS) if k == scope.encode() and v["action"] == "UNFREEZE"
    ]
    stored = world.registry_entry(scope)
    assert stored is not None and stored["command_id"] == freeze["command_id"]
    status, standing = world.api(f"/subjects/institution/{institution}")
    assert status == 200 and standing["level"] == "frozen", standing


def test_an_unsigned_unfreeze_on_the_topic_is_dead_lettered_and_lifts_nothing(
    world: SanctionsWorld,
) -> None:
    freeze = frozen(world, "HSEC1")
    key, record = unfreeze_action("institution", "HSEC1", datetime.now(UTC))
    publish_raw(world, key, record)
    letter = dead_letter(world, "unsigned_action", "HSEC1")
    assert letter["origin"]["topic"] == ACTIONS
    world.wait_metric("claimstream_refused_actions_total", 1, reason="unsigned_action")
    assert_still_frozen(world, "HSEC1", freeze)


def test_a_badly_signed_unfreeze_on_the_topic_is_dead_lettered_and_lifts_nothing(
    world: SanctionsWorld,
) -> None:
    freeze = frozen(world, "HSEC2")
    key, record = unfreeze_action("institution", "HSEC2", datetime.now(UTC))
    forged = {**PERSON.sign(record), "reason": "changed after it was signed"}
    publish_raw(world, key, forged)
    dead_letter(world, "bad_signature", "HSEC2")
    world.wait_metric("claimstream_refused_actions_total", 1, reason="bad_signature")
    assert_still_frozen(world, "HSEC2", freeze)


def test_an_unfreeze_signed_with_the_persons_key_by_the_cli_lifts_the_freeze(
    world: SanctionsWorld, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frozen(world, "HSEC3")
    code = main(
        ["unfreeze", "institution:HSEC3", "--reason", "appeal upheld", "--by", "wang.supervisor",
         "--signing-key", str(keys / "wang.supervisor.pem"), "--bootstrap", world.bootstrap]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    [lifted] = world.wait_commands("institution:HSEC3", "UNFREEZE")
    assert lifted["rule"] == "manual" and "wang.supervisor" in lifted["reason"]


def test_an_unfreeze_through_the_api_is_made_in_the_reviewers_name_and_lifts_the_freeze(
    world: SanctionsWorld,
) -> None:
    frozen(world, "HSEC4")
    assert world.worker is not None
    request = urllib.request.Request(
        f"http://127.0.0.1:{world.worker.port}/unfreeze",
        data=orjson.dumps({"scope": "institution:HSEC4", "reason": "appeal upheld"}),
        headers={"Authorization": f"Bearer {REVIEWER_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, answer = response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, orjson.loads(exc.read())
    assert status == 202, answer
    assert answer["record"]["by"] == "li.na" and answer["record"]["key_id"].startswith("ed25519-")
    [lifted] = world.wait_commands("institution:HSEC4", "UNFREEZE")
    assert "li.na" in lifted["reason"]
