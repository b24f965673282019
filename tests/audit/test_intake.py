"""AuditIntake: topic records of alerts, commands and actions become chain records, the same
ones whatever the batching and interleaving, so a recomputed batch writes exact copies."""

from __future__ import annotations

import random
from typing import Any

import orjson

from claimstream.audit import verify
from claimstream.audit.intake import AuditIntake, Input
from claimstream.sanctions.codec import action_to_dict
from tests.audit.support import items

ALERTS, COMMANDS, ACTIONS = (
    "claimstream.alerts.v1",
    "claimstream.commands.v1",
    "claimstream.actions.v1",
)


def inputs(partition: int = 0) -> list[Input]:
    """Every item of the support trail on its topic, offsets counted per topic."""
    out: list[Input] = []
    offsets = {ALERTS: 0, COMMANDS: 0, ACTIONS: 0}
    for item in items():
        kind = type(item).__name__
        topic = {"Alert": ALERTS, "Command": COMMANDS}.get(kind, ACTIONS)
        body = action_to_dict(item) if topic == ACTIONS else item.to_dict()  # type: ignore[arg-type, union-attr]
        out.append(Input(topic, partition, offsets[topic], orjson.dumps(body)))
        offsets[topic] += 1
    return out


class Store:
    def __init__(self) -> None:
        self.states: dict[int, Any] = {}

    def intake(self) -> AuditIntake:
        return AuditIntake(self.states.get)

    def run(self, batch: list[Input]) -> list[dict[str, Any]]:
        result = self.intake().process(batch)
        self.states.update(result.states)  # stored after the records were delivered
        return [r for _, r in result.records]


def shuffled(batch: list[Input], seed: int) -> list[Input]:
    """Another interleaving of the topics, each topic's own order kept."""
    rng = random.Random(seed)
    queues: dict[str, list[Input]] = {}
    for item in batch:
        queues.setdefault(item.topic, []).append(item)
    out: list[Input] = []
    while any(queues.values()):
        topic = rng.choice([t for t, q in queues.items() if q])
        out.append(queues[topic].pop(0))
    return out


def by_chain(records: list[dict[str, Any]]) -> dict[tuple[int, str], list[dict[str, Any]]]:
    chains: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in records:
        chains.setdefault((r["partition"], r["source"]), []).append(r)
    return chains


def test_each_topic_partition_is_a_chain_and_verifies() -> None:
    records = Store().run(inputs())
    assert {(r["source"], r["kind"]) for r in records} == {
        ("alerts", "alert"),
        ("commands", "command"),
        ("actions", "review"),
        ("actions", "manual"),
    }
    assert all(r["origin"]["offset"] >= 0 for r in records)
    report = verify(records)
    assert report.ok and sorted(report.heads) == ["0/actions", "0/alerts", "0/commands"]


def test_batching_and_interleaving_do_not_change_the_records() -> None:
    reference = by_chain(Store().run(inputs()))
    for seed in range(20):
        store = Store()
        order = shuffled(inputs(), seed)
        rng = random.Random(seed)
        records: list[dict[str, Any]] = []
        while order:
            size = rng.randint(1, 4)
            records += store.run(order[:size])
            order = order[size:]
        assert by_chain(records) == reference


def test_a_batch_recomputed_after_a_crash_gives_exact_copies() -> None:
    batch = inputs()
    first, second = batch[:5], batch[5:]
    store = Store()
    written = store.run(first)
    saved = dict(store.states)
    written += store.run(second)  # delivered, then the worker died before storing the state
    store.states = saved
    again = store.run(shuffled(second, 3))  # the next owner, fetched in another order
    trail = [*written, *again]
    report = verify(trail)
    assert report.ok and len(report.redelivered) == len(again)
    # stored state, offsets not committed: the same inputs again are skipped
    result = store.intake().process(second)
    assert result.records == [] and result.redelivered == len(second)


def test_unreadable_records_are_dead_letters_with_origin() -> None:
    bad = [
        Input(ALERTS, 2, 0, b"not json"),
        Input(COMMANDS, 2, 0, b"[1]"),
        Input(ACTIONS, 2, 0, orjson.dumps({"type": "review", "by": "x"})),
        Input(ALERTS, 2, 1, None),
        Input("some.other.topic", 2, 0, b"{}"),
    ]
    result = AuditIntake(lambda p: None).process(bad)
    assert result.records == []
    assert [(d.reason, d.origin["topic"], d.origin["offset"]) for d in result.dead_letters] == [
        ("not_json", ALERTS, 0),
        ("not_object", COMMANDS, 0),
        ("invalid_field", ACTIONS, 0),
        ("not_json", ALERTS, 1),
        ("unknown_topic", "some.other.topic", 0),
    ]
    assert result.dead_letters[2].detail.startswith("not a actions record: at must be")
    alert = next(i for i in inputs(2) if i.topic == ALERTS)
    later = Input(ALERTS, 2, 2, alert.value)
    good = AuditIntake(lambda p: result.states.get(p)).process([later])
    assert [(r["seq"], r["origin"]["offset"]) for _, r in good.records] == [(0, 2)]


def test_records_match_the_audit_schema() -> None:
    import jsonschema

    from claimstream.kafka.topology import load_topology

    spec = load_topology().topic("claimstream.audit.v1")
    assert spec.value_schema is not None
    schema = orjson.loads(spec.value_schema.read_bytes())
    validator = jsonschema.Draft202012Validator(schema)
    for record in Store().run(inputs()):
        validator.validate(orjson.loads(orjson.dumps(record)))


def test_a_checks_feedback_on_the_actions_topic_is_chained_as_a_manual_action() -> None:
    from claimstream.sanctions.actions import CheckFeedback, Handling

    answer = CheckFeedback(
        "HIS-1",
        (Handling("repeat_dispensing", "continued", "supply lost", "alr-1"),),
        "dr.zhang",
        "2026-12-04T10:00:00+08:00",
    )
    (record,) = Store().run([Input(ACTIONS, 0, 0, orjson.dumps(action_to_dict(answer)))])
    assert (record["kind"], record["record_id"], record["at"]) == (
        "manual",
        answer.action_id,
        answer.at,
    )
    assert record["body"] == {
        "action": "check_feedback",
        "check_id": "HIS-1",
        "violations": [
            {"rule": "repeat_dispensing", "alert_id": "alr-1", "handling": "continued",
             "reason": "supply lost"}
        ],
        "by": "dr.zhang",
    }  # fmt: skip
    assert verify([record]).ok


def test_a_case_action_on_the_actions_topic_is_chained_as_a_manual_action() -> None:
    from claimstream.cases.actions import RecordRecovery, case_action_to_dict

    money = RecordRecovery("case-1", "recovered", 800.0, "fin.wu", "2026-12-04T10:00:00+08:00",
                           "receipt 2026-88")  # fmt: skip
    (record,) = Store().run([Input(ACTIONS, 0, 0, orjson.dumps(case_action_to_dict(money)))])
    assert (record["kind"], record["record_id"], record["at"]) == (
        "manual",
        money.action_id,
        money.at,
    )
    assert record["body"] == {
        "action": "case_recover",
        "case_id": "case-1",
        "money": "recovered",
        "amount": 800.0,
        "reference": "receipt 2026-88",
        "note": "",
        "by": "fin.wu",
    }
    assert verify([record]).ok
