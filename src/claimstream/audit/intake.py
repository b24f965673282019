"""What the stream's audit agent does with a batch: topic records in, chain records out (pure).

The audit agent reads partition p of `claimstream.alerts.v1`, `claimstream.commands.v1` and
`claimstream.actions.v1` (one co-partition group, so faust gives partition p of all three to
one worker) and writes partition p of `claimstream.audit.v1`. Each *source* partition has its
own chain (`partition` p, `source` "alerts" | "commands" | "actions"): the order of records in
one topic partition is fixed by the broker, while how records of three topics interleave in
the worker's batches is not. So, after a crash, the records recomputed for inputs that were
not committed are exactly the ones written before (same chain state, same inputs in the same
order): the audit topic then holds exact copies, which `verify` counts as redelivery, never a
fork.

Partition state (the "audit-chain" table, key `str(p)`, changelog partition p):

    {"partition": p, "chains": {source: chain state + "offset": next source offset}}

A source record whose offset is below the chain's `offset` was chained already (redelivered
after its chain state was stored but before its offset was committed) and is skipped; this is
the redelivery check, in constant space. A record published twice upstream (two offsets, one
alert id) is recorded twice, each with its `origin` offset. A record that cannot be read
becomes a dead letter (reason, detail, origin) and is not chained.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from claimstream.audit.chain import Auditable, AuditChain, State, new_state
from claimstream.cases.actions import case_action_from_dict, is_case_action
from claimstream.cases.report_actions import is_report_action, report_action_from_dict
from claimstream.model.outputs import DeadLetter
from claimstream.sanctions.codec import action_from_dict, alert_from_dict, command_from_dict

#: audited topic -> chain source name
SOURCES: dict[str, str] = {
    "claimstream.alerts.v1": "alerts",
    "claimstream.commands.v1": "commands",
    "claimstream.actions.v1": "actions",
}


def any_action_from_dict(data: Mapping[str, Any]) -> Auditable:
    """A person's action of any kind: the sanctions', a case or a report action
    (claimstream.cases)."""
    if is_report_action(data):
        return report_action_from_dict(data)
    return case_action_from_dict(data) if is_case_action(data) else action_from_dict(data)


_PARSERS: dict[str, Callable[[Mapping[str, Any]], Auditable]] = {
    "alerts": alert_from_dict,
    "commands": command_from_dict,
    "actions": any_action_from_dict,
}


@dataclass(frozen=True, slots=True)
class Input:
    """One consumed record of an audited topic."""

    topic: str
    partition: int
    offset: int
    value: bytes | None

    @property
    def origin(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


@dataclass(slots=True)
class IntakeResult:
    #: (audit partition, record), in chain order per chain
    records: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    #: partition -> its new state (only partitions the batch changed)
    states: dict[int, State] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: inputs already chained (offset below the chain's), skipped
    redelivered: int = 0


def new_partition_state(partition: int) -> State:
    return {"partition": partition, "chains": {}}


class AuditIntake:
    def __init__(
        self,
        load: Callable[[int], State | None],
        sources: Mapping[str, str] = SOURCES,
        chain: AuditChain | None = None,
    ) -> None:
        self.load = load
        self.sources = dict(sources)
        self.chain = chain or AuditChain(dedup_days=None)

    def process(self, inputs: Iterable[Input]) -> IntakeResult:
        out = IntakeResult()
        for item in inputs:
            state = out.states.get(item.partition)
            if state is None:
                loaded = self.load(item.partition)
                # a copy: the stored state changes only once the batch's records are delivered
                state = (
                    orjson.loads(orjson.dumps(loaded))
                    if loaded is not None
                    else new_partition_state(item.partition)
                )
                out.states[item.partition] = state
            try:
                self._one(item, state, out)
            except Exception as exc:  # noqa: BLE001 - one bad record must not stop the trail
                detail = f"{type(exc).__name__}: {exc} | " + traceback.format_exc(limit=3)
                out.dead_letters.append(
                    DeadLetter("processing_error", detail[:2000], item.origin, item.value or b"")
                )
        return out

    def _one(self, item: Input, state: State, out: IntakeResult) -> None:
        source = self.sources.get(item.topic)
        if source is None:
            self._reject(item, out, "unknown_topic", f"{item.topic} is not an audited topic")
            return
        chain = state["chains"].get(source)
        if chain is None:
            chain = state["chains"][source] = {**new_state(item.partition, source), "offset": 0}
        if item.offset < chain["offset"]:
            out.redelivered += 1
            return
        chain["offset"] = item.offset + 1
        if item.value is None:
            self._reject(item, out, "not_json", "the message has no value")
            return
        try:
            data = orjson.loads(item.value)
        except orjson.JSONDecodeError as exc:
            self._reject(item, out, "not_json", f"not JSON: {exc}")
            return
        if not isinstance(data, dict):
            self._reject(item, out, "not_object", "the message is not a JSON object")
            return
        try:
            parsed = _PARSERS[source](data)
        except ValueError as exc:
            self._reject(item, out, "invalid_field", f"not a {source} record: {exc}")
            return
        record = self.chain.record(chain, parsed, origin=item.origin)
        if record is not None:
            out.records.append((item.partition, record))

    @staticmethod
    def _reject(item: Input, out: IntakeResult, reason: str, detail: str) -> None:
        out.dead_letters.append(DeadLetter(reason, detail, item.origin, item.value or b""))
