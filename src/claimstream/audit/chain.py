"""Appending to the audit chain of one partition.

State per chain (JSON-shaped, kept by the stream in a table so a restart continues the
chain where it stopped):

    {"partition": p, "source": s (optional), "seq": <next sequence number>,
     "head": <hash of the last record>, "wm": <latest `at` seen>, "ids": {record_id: at}}

A chain is identified by its partition and, in the stream, its source: the stream keeps one
chain per partition p of each audited topic ("alerts", "commands", "actions"), because only
the order of one topic partition is fixed (see `claimstream.audit.intake`). A record:

    {"schema": "audit.v2", "partition": p, "source": s (when the state has one), "seq": n,
     "kind": "alert" | "command" | "review" | "manual", "record_id": ..., "at": <event time>,
     "body": {...}, "origin": {"topic", "partition", "offset"} (when given),
     "prev_hash": <hash of record n-1, or 64 zeros for n = 0>,
     "key_id": <id of the HMAC key>, "hash": <SHA-256>, "mac": <HMAC-SHA-256>}

`hash` is the SHA-256 of the record's RFC 8785 encoding without `hash` and `mac`
(`claimstream.audit.canonical`): anyone can recompute it and follow the links. `mac` is the
HMAC-SHA-256 of the same bytes under the writer's key (`key_id` names it, and is covered):
without the key nobody can make a record that verifies, so a record edited and re-hashed, or
one appended, is told from the writer's own. Without a key (`key=None`: the explicit, logged
unkeyed development mode, `claimstream.audit.settings`) a record has neither `key_id` nor
`mac`, and `verify` warns that it rests on the hash alone. (Trails written before the key,
schema `audit.v1`, were hashed over orjson's sorted-keys encoding; `verify` still reads them.)

`record_id` is the deterministic id of what is recorded (alert id, command id, review or
action id). With `dedup_days` set, a redelivered input appends nothing: the ids seen in the
last `dedup_days` of event time are remembered. The stream sets it to None and drops
redeliveries by source offset instead (constant-size state). One writer per chain is the
caller's job (the partition's owner in the stream): two writers would fork the chain, which
`verify` reports.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from claimstream.audit.canonical import GENESIS, SCHEMA, hashed_bytes
from claimstream.audit.keys import HmacKey
from claimstream.cases.actions import CASE_ACTION_CLASSES, CaseAction, case_action_to_dict
from claimstream.cases.report_actions import REPORT_ACTION_CLASSES, ReportAction, audit_body
from claimstream.model.outputs import Alert, Command
from claimstream.model.timefmt import DAY
from claimstream.sanctions.actions import CheckFeedback, ManualUnfreeze, Remediation, Verdict
from claimstream.sanctions.codec import to_ts

Kind = Literal["alert", "command", "review", "manual"]
KINDS: tuple[Kind, ...] = ("alert", "command", "review", "manual")
State = dict[str, Any]
Auditable = (
    Alert
    | Command
    | Verdict
    | ManualUnfreeze
    | Remediation
    | CheckFeedback
    | CaseAction
    | ReportAction
)


def new_state(partition: int, source: str | None = None) -> State:
    state: State = {"partition": partition, "seq": 0, "head": GENESIS, "wm": None, "ids": {}}
    if source is not None:
        state["source"] = source
    return state


@dataclass(frozen=True, slots=True)
class AuditChain:
    #: how long (event time) a record id is remembered to drop redeliveries; None: not at all
    dedup_days: float | None = 7.0
    #: the HMAC key records are authenticated with; None: unkeyed (development only)
    key: HmacKey | None = None

    def append(
        self,
        state: State,
        kind: Kind,
        record_id: str,
        body: dict[str, Any],
        at: str,
        *,
        origin: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """The next record of the chain, or None when `record_id` was recorded already."""
        ts = to_ts(at)
        if self.dedup_days is not None and record_id in state["ids"]:
            return None
        record: dict[str, Any] = {
            "schema": SCHEMA,
            "partition": state["partition"],
            "seq": state["seq"],
            "kind": kind,
            "record_id": record_id,
            "at": at,
            "body": body,
            "prev_hash": state["head"],
        }
        if state.get("source") is not None:
            record["source"] = state["source"]
        if origin is not None:
            record["origin"] = origin
        if self.key is not None:
            record["key_id"] = self.key.key_id
        content = hashed_bytes(record)
        record["hash"] = hashlib.sha256(content).hexdigest()
        if self.key is not None:
            record["mac"] = self.key.mac(content)
        state["seq"] += 1
        state["head"] = record["hash"]
        state["wm"] = ts if state["wm"] is None else max(state["wm"], ts)
        if self.dedup_days is None:
            return record
        state["ids"][record_id] = ts
        cutoff = state["wm"] - self.dedup_days * DAY
        for old in [r for r, seen in state["ids"].items() if seen < cutoff]:
            del state["ids"][old]
        return record

    def record(
        self, state: State, item: Auditable, *, origin: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """Append an alert, command, review or manual action with its natural id and time."""
        kind, record_id, body, at = describe(item)
        return self.append(state, kind, record_id, body, at, origin=origin)


def describe(item: Auditable) -> tuple[Kind, str, dict[str, Any], str]:
    """(kind, record id, body, event time) of what is to be recorded."""
    if isinstance(item, Alert):
        return "alert", item.alert_id, item.to_dict(), item.occurred_at
    if isinstance(item, Command):
        return "command", item.command_id, item.to_dict(), item.effective_from
    if isinstance(item, Verdict):
        body = {
            "alert_id": item.alert_id,
            "verdict": item.verdict,
            "by": item.by,
            "note": item.note,
        }
        return "review", item.action_id, body, item.at
    if isinstance(item, ManualUnfreeze):
        body = {
            "action": "unfreeze",
            "scope": item.scope.key(),
            "ground": item.ground,
            "by": item.by,
            "reason": item.reason,
        }
        return "manual", item.action_id, body, item.at
    if isinstance(item, CASE_ACTION_CLASSES):
        record = case_action_to_dict(item)
        skip = ("schema", "action_id", "type", "at")
        case_body = {"action": record["type"]} | {k: v for k, v in record.items() if k not in skip}
        return "manual", item.action_id, case_body, item.at
    if isinstance(item, REPORT_ACTION_CLASSES):  # the reporter's name and contact as a hash
        return "manual", item.action_id, audit_body(item), item.at
    if isinstance(item, CheckFeedback):
        feedback: dict[str, Any] = {
            "action": "check_feedback",
            "check_id": item.check_id,
            "violations": [
                {"rule": h.rule, "alert_id": h.alert_id, "handling": h.handling, "reason": h.reason}
                for h in item.handlings
            ],
            "by": item.by,
        }
        return "manual", item.action_id, feedback, item.at
    body = {
        "action": "remediation",
        "alert_id": item.alert_id,
        "institution_id": item.institution_id,
        "by": item.by,
        "note": item.note,
    }
    return "manual", item.action_id, body, item.at
