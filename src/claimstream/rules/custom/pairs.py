"""The templates over pairs of events: an A event, then a B event of the same key within a time.

- `sequence`: an A event (`filter_a`, of `event_types`) followed by a B event (`filter_b`, of
  `event_types_b`) within `within_*`, the pair satisfying `join` (a CEL expression over `a.*`
  and `b.*`) when given. One alert per (A, B) pair, made when the second of the two arrives.
- `absence`: an A event *not* followed by a joining B event within `within_*`. The A is a
  timer in the rule's state, holding its deadline (A's time + within); the finding is made
  once no B before the deadline can still be accepted, i.e. when the key's watermark (the
  least of the rule's families), less the allowed lateness, reaches the deadline: on a later
  event of the key, or at the engine's idle-key sweep against the stream-wide watermark
  (`Rule.due`, `Engine.expire`). Being state, the timer survives a restart.

"Followed by": B comes after A in (time, event id) order (ties broken by id, so the outcome
does not depend on arrival) and less than `within` after it: a B exactly `within` later is too
late, as an event exactly one window later is outside a window template's window. An event
that matches both filters is an A and a B (a refill is also a dispensing that needs a refill),
never its own.

Order and redelivery. A rows are kept while a B that may still arrive could follow them
(`within` plus the lateness), B rows while an A that may still arrive could precede them (the
lateness), so a pair is found whichever of its two events comes second, and a pending A is
resolved by a B that arrived before it. A row whose event id is held already is ignored. A
pair's alert id is a hash of the rule, the key and the two event ids; an absence's, of the
rule, the key and the A's id: the same in the stream and in replay, whenever it is found.

Rows are the window templates' layout (`templates`), with the values of the fields the join
names appended from `JOINED` on (the join is evaluated from them, never from the events), and
for an absence's A the deadline in `VALUE`. State per key: `{"a": rows, "b": rows}`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace as replace_finding
from typing import Any

import orjson

from claimstream.model.timefmt import HOUR, iso
from claimstream.rules.base import Finding, RuleContext, State
from claimstream.rules.custom.expressions import (
    MISSING,
    Expression,
    PairExpression,
    compile_event_expression,
    compile_pair_expression,
)
from claimstream.rules.custom.settings import CustomRuleSettings
from claimstream.rules.custom.templates import (
    DOCTOR_ID,
    EVENT_ID,
    INSTITUTION_ID,
    PATIENT_ID,
    TS,
    VALUE,
    CustomRule,
)
from claimstream.rules.kit.money import cents
from claimstream.rules.kit.rows import (
    Row,
    Rows,
    first_after,
    first_at,
    insert,
    keep_after,
    keep_from,
    order,
)

#: where a row's join values start (after the window templates' ten fields)
JOINED = 10

Lists = Mapping[str, tuple[str, ...]]


class PairRule(CustomRule):
    """What `sequence` and `absence` share: the two filters, the join, A and B rows."""

    def __init__(self, settings: CustomRuleSettings, context: RuleContext, lists: Lists) -> None:
        super().__init__(settings, context, lists)
        where = f"custom_rules.{self.name}"
        self.filter_a: Expression = compile_event_expression(
            settings.filter_a or "true",
            event_types=settings.event_types,
            lists=lists,
            result="bool",
            where=f"{where}.filter_a",
        )
        self.filter_b: Expression = compile_event_expression(
            settings.filter_b or "true",
            event_types=settings.types_b,
            lists=lists,
            result="bool",
            where=f"{where}.filter_b",
        )
        self.join: PairExpression | None = (
            None
            if settings.join is None
            else compile_pair_expression(
                settings.join,
                a_types=settings.event_types,
                b_types=settings.types_b,
                lists=lists,
                where=f"{where}.join",
            )
        )
        self.types_a = frozenset(settings.event_types)
        self.types_b = frozenset(settings.types_b)

    def side_row(self, event: Any, side: str, deadline: float | None = None) -> Row | None:
        """The event's row as an A (`side` "a") or a B, or None when it is not one."""
        types, matches = (
            (self.types_a, self.filter_a) if side == "a" else (self.types_b, self.filter_b)
        )
        if event.event_type not in types or matches.evaluate(event) is not True:
            return None
        amount = None
        if self.amount is not None:
            found = self.amount.evaluate(event)
            if found is not MISSING and isinstance(found, int | float) and math.isfinite(found):
                amount = cents(float(found))
        joined = () if self.join is None else self.join.values(side, event)
        return (
            event.ts,
            event.event_id,
            event.occurred_at,
            event.patient_id,
            event.institution_id,
            event.doctor_id,
            event.department_id,
            amount,
            deadline,
            False,
            *joined,
        )

    def follows(self, a: Row, b: Row) -> bool:
        """Whether B follows A: after it in (time, id) order, less than `within` later, and
        the join (when given) holds."""
        if not (order(a) < order(b) and b[TS] - a[TS] < self.window):
            return False
        if self.join is None:
            return True
        return self.join.evaluate(a[JOINED:], b[JOINED:]) is True

    def size(self, state: State) -> int:
        return len(state.get("a", ())) + len(state.get("b", ()))


class Sequence(PairRule):
    """An A followed by a B within the time: one alert per (A, B) pair."""

    template = "sequence"

    def on_event(self, state: State, event: Any) -> list[Finding]:
        key = event.key(self.key_kind)
        findings: list[Finding] = []
        b = self.side_row(event, "b")
        if b is not None:
            inserted = insert(state.get("b", ()), b)
            if inserted is not None:
                state["b"] = inserted[0]
                held = state.get("a", ())
                for a in held[first_after(held, b[TS] - self.window) :]:
                    if a[TS] > b[TS]:
                        break
                    if self.follows(a, b):
                        findings.append(self.pair(key, a, b))
        a = self.side_row(event, "a")
        if a is not None:
            inserted = insert(state.get("a", ()), a)
            if inserted is not None:
                state["a"] = inserted[0]
                held = state.get("b", ())
                later = held[first_at(held, a[TS]) : first_at(held, a[TS] + self.window)]
                findings.extend(self.pair(key, a, b) for b in later if self.follows(a, b))
        return findings

    def pair(self, key: str, a: Row, b: Row) -> Finding:
        numbers = {"count": 2, "gap_hours": round((b[TS] - a[TS]) / HOUR, 6)}
        trigger_id = orjson.dumps([a[EVENT_ID], b[EVENT_ID]]).decode()
        return self.finding(key, (a, b), trigger_id, numbers)

    def default_message(self, key: str, details: dict[str, Any]) -> str:
        return (
            f"{self.key_kind.capitalize()} {key}: an event matching {self.settings.filter_b} "
            f"at {details['last_at']} followed one matching {self.settings.filter_a} at "
            f"{details['first_at']}, within {details['window_hours']:g} hours ({self.name})."
        )

    def expire(self, state: State, cutoff: float) -> None:
        # an A is needed while a B that may still come (at or after cutoff) can follow it,
        # a B while an A that may still come can precede it
        _keep(state, "a", keep_after(state.get("a", ()), cutoff - self.window))
        _keep(state, "b", keep_from(state.get("b", ()), cutoff))


class Absence(PairRule):
    """An A not followed by a B within the time: one alert per A, made when its deadline has
    passed for good (`due`)."""

    template = "absence"
    timers = True

    def on_event(self, state: State, event: Any) -> list[Finding]:
        b = self.side_row(event, "b")
        if b is not None:
            inserted = insert(state.get("b", ()), b)
            if inserted is not None:
                state["b"] = inserted[0]
                held = state.get("a", ())
                start = first_after(held, b[TS] - self.window)
                resolved = [a for a in held[start:] if a[TS] <= b[TS] and self.follows(a, b)]
                if resolved:
                    gone = {a[EVENT_ID] for a in resolved}
                    _keep(state, "a", tuple(a for a in held if a[EVENT_ID] not in gone))
        a = self.side_row(event, "a", event.ts + self.window)
        if a is not None:
            held = state.get("b", ())
            later = held[first_at(held, a[TS]) : first_at(held, a[TS] + self.window)]
            if not any(self.follows(a, b) for b in later):
                inserted = insert(state.get("a", ()), a)
                if inserted is not None:
                    state["a"] = inserted[0]
        return []  # the findings are made by `due`, once the deadline has passed for good

    def due(self, state: State, cutoff: float) -> list[Finding]:
        held = state.get("a", ())
        if not held or all(a[VALUE] > cutoff for a in held):
            return []
        fired = [a for a in held if a[VALUE] <= cutoff]
        _keep(state, "a", tuple(a for a in held if a[VALUE] > cutoff))
        return [self.missed(a) for a in fired]

    def missed(self, a: Row) -> Finding:
        deadline = a[VALUE]
        key = {"patient": a[PATIENT_ID], "doctor": a[DOCTOR_ID], "institution": a[INSTITUTION_ID]}
        numbers = {"count": 1, "deadline": iso(deadline)}
        finding = self.finding(key[self.key_kind], (a,), a[EVENT_ID], numbers)
        return replace_finding(finding, occurred_at=iso(deadline))

    def default_message(self, key: str, details: dict[str, Any]) -> str:
        return (
            f"{self.key_kind.capitalize()} {key}: an event matching {self.settings.filter_a} "
            f"at {details['first_at']} was not followed by one matching "
            f"{self.settings.filter_b} within {details['window_hours']:g} hours (due "
            f"{details['deadline']}; {self.name})."
        )

    def expire(self, state: State, cutoff: float) -> None:
        # pending As leave only through `due` (or a B): a timer is never dropped unfired
        _keep(state, "b", keep_from(state.get("b", ()), cutoff))


PAIR_CLASSES: dict[str, type[CustomRule]] = {cls.template: cls for cls in (Sequence, Absence)}


def _keep(state: State, side: str, rows: Rows) -> None:
    if rows:
        state[side] = rows
    else:
        state.pop(side, None)
