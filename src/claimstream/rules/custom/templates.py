"""The templates: stateful event-time building blocks, each implemented once, parametrised by
a custom rule's settings and expressions.

- `window_count`: at least `min_count` events matching `filter` per key within a trailing
  window (or at least `min_count` distinct values of `distinct_by` among them);
- `window_sum`: the sum of `value` over the matching events of a trailing window at least
  `min_sum`;
- `duplicate`: the same value of `value` (each element, when it is a list) seen again within
  the window.

The two window templates are the rule kit's threshold episodes (`rules.kit.episodes`), which
the built-in threshold-window rules use: the window is trailing and excludes its start, one
alert per episode, out-of-order arrival within the allowed lateness recounted to the same
alerts, a redelivered event already held, expiry that keeps one to two windows. `duplicate`
follows `duplicate_exam`: each (event, value) that repeats is one alert, re-evaluated when an
earlier event arrives late, each row kept one window.

Rows hold only what a finding needs (layout below): the expressions are evaluated once, when
the event arrives, and their results kept, so an out-of-order re-evaluation never evaluates
again. A row is a tuple of scalars (`rules.kit.rows`).

A rule's state sits under `NAME@<fingerprint>`, a hash of what decides what its rows hold
(template, key, event types, filter, distinct_by, value, amount): change one of those and the
rule starts from empty state rather than misread the old; change a threshold, the window, the
mode or the message and the state carries on.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter, itemgetter
from typing import Any, ClassVar, cast

import orjson

from claimstream.model.events import KeyKind
from claimstream.model.outputs import Subject
from claimstream.model.timefmt import HOUR
from claimstream.rules.base import Accepts, Finding, OnEvent, Rule, RuleContext, State
from claimstream.rules.custom.expressions import (
    MISSING,
    Expression,
    compile_event_expression,
    compile_message,
)
from claimstream.rules.custom.settings import PAIRS, CustomRuleSettings
from claimstream.rules.kit.episodes import Episodes, kept_ids, rows_count
from claimstream.rules.kit.money import cents
from claimstream.rules.kit.rows import (
    Row,
    Rows,
    first_after,
    first_at,
    insert,
    keep_from,
    replace,
    ts_of,
)

# a row: one matching event
(
    TS,
    EVENT_ID,
    OCCURRED_AT,
    PATIENT_ID,
    INSTITUTION_ID,
    DOCTOR_ID,
    DEPARTMENT_ID,
    AMOUNT,  # the `amount` expression's value, None when unknown or not set
    VALUE,  # window_count: the distinct_by value; window_sum: the summed number
    ALERTED,  # duplicate: this (event, value) was flagged
) = range(10)

Lists = Mapping[str, tuple[str, ...]]


def fingerprint(settings: CustomRuleSettings) -> str:
    """What decides what a rule's rows hold, hashed (8 hex characters)."""
    decisive = [
        settings.template,
        settings.key,
        sorted(settings.event_types),
        settings.filter,
        settings.distinct_by,
        settings.value,
        settings.amount,
    ]
    if settings.template in PAIRS:  # appended only here: the others' fingerprints stay
        decisive += [settings.filter_a, settings.filter_b, sorted(settings.types_b), settings.join]
    return hashlib.sha256(orjson.dumps(decisive)).hexdigest()[:8]


class CustomRule(Rule[CustomRuleSettings]):
    """What the templates share: the compiled expressions, a row per matching event, the
    finding's ids and money. A rule of the configuration is a subclass made by `build`."""

    Settings = CustomRuleSettings
    template: ClassVar[str]
    #: a custom rule is keyed by a subject kind (`settings.key`), never by a trace code
    key_kind: ClassVar[KeyKind]

    def __init__(self, settings: CustomRuleSettings, context: RuleContext, lists: Lists) -> None:
        super().__init__(settings, context)
        self.state_key = f"{self.name}@{fingerprint(settings)}"
        where = f"custom_rules.{self.name}"
        self.filter = _compile(settings.filter, settings, lists, "bool", f"{where}.filter")
        self.amount = (
            None
            if settings.amount is None
            else compile_event_expression(
                settings.amount,
                event_types=settings.all_event_types,
                lists=lists,
                result="number",
                where=f"{where}.amount",
            )
        )
        self.message = (
            None
            if settings.message is None
            else compile_message(settings.message, where=f"{where}.message")
        )
        self.window = settings.window
        #: whether an event matches the filter
        self.accepts: Accepts = self.filter.tester()
        #: the id of the event's key
        self.key_of: Callable[[Any], str] = attrgetter(f"{self.key_kind}_id")

    def prefilter(self) -> tuple[Accepts, OnEvent] | None:
        if self.filter.always_true:
            return None  # no filter: nothing to decide first
        return self.accepts, self.on_match

    def on_event(self, state: State, event: Any) -> list[Finding]:
        if not self.accepts(event):
            return []
        return self.on_match(state, event)

    def on_match(self, state: State, event: Any) -> list[Finding]:
        """`on_event` for an event that matches the filter."""
        raise NotImplementedError

    def row(self, event: Any, value: Any = None) -> Row:
        """The row of an event that matches the filter."""
        amount = None
        if self.amount is not None:
            found = self.amount.evaluate(event)
            if found is not MISSING and isinstance(found, int | float) and math.isfinite(found):
                amount = cents(float(found))
        return (
            event.ts,
            event.event_id,
            event.occurred_at,
            event.patient_id,
            event.institution_id,
            event.doctor_id,
            event.department_id,
            amount,
            value,
            False,
        )

    def finding(self, key: str, rows: Rows, trigger_id: str, numbers: dict[str, Any]) -> Finding:
        trigger = rows[-1]
        settings = self.settings
        details: dict[str, Any] = {
            "template": self.template,
            **numbers,
            "window_hours": self.window / HOUR,
            "first_at": rows[0][OCCURRED_AT],
            "last_at": trigger[OCCURRED_AT],
            "institutions": sorted({row[INSTITUTION_ID] for row in rows}),
        }
        amounts = [row[AMOUNT] for row in rows]
        amount = (
            None
            if settings.amount is None or any(a is None for a in amounts)
            else cents(math.fsum(amounts))
        )
        return Finding(
            subject=Subject(self.key_kind, key),
            trigger_id=trigger_id,
            occurred_at=trigger[OCCURRED_AT],
            event_ids=tuple(row[EVENT_ID] for row in rows),
            message=self._message(key, details),
            details=details,
            patient_id=trigger[PATIENT_ID] if self.key_kind == "patient" else None,
            institution_id=trigger[INSTITUTION_ID],
            doctor_id=trigger[DOCTOR_ID],
            department_id=trigger[DEPARTMENT_ID],
            amount=amount,
            rule=self.name,
        )

    def _message(self, key: str, details: dict[str, Any]) -> str:
        if self.message is not None:
            data = {
                "finding.rule": self.name,
                "finding.key": key,
                "finding.count": int(details.get("count", 0)),
                "finding.distinct": int(details.get("distinct", 0)),
                "finding.sum": float(details.get("sum", 0.0)),
                "finding.value": str(details.get("value", "")),
                "finding.first_at": details["first_at"],
                "finding.last_at": details["last_at"],
                "finding.window_hours": details["window_hours"],
                "finding.deadline": str(details.get("deadline", "")),
            }
            text = self.message.evaluate_with(data)
            if isinstance(text, str):
                return text
        return self.default_message(key, details)

    def default_message(self, key: str, details: dict[str, Any]) -> str:
        raise NotImplementedError


class WindowEpisodes(CustomRule):
    """window_count and window_sum: threshold episodes over the matching events' rows."""

    def __init__(self, settings: CustomRuleSettings, context: RuleContext, lists: Lists) -> None:
        super().__init__(settings, context, lists)
        self.value = self.compile_value(settings, lists)
        self.episodes = Episodes(self.window, self.threshold(), self.count())

    def compile_value(self, settings: CustomRuleSettings, lists: Lists) -> Expression | None:
        return None

    def threshold(self) -> float:
        raise NotImplementedError

    def count(self) -> Any:
        return rows_count

    def value_of(self, event: Any) -> Any:
        return None

    def on_match(self, state: State, event: Any) -> list[Finding]:
        value = self.value_of(event) if self.value is not None else None
        if value is MISSING:
            return []
        row = self.row(event, value)
        key = self.key_of(event)
        return [
            self.finding(key, rows, rows[-1][EVENT_ID], self.numbers(rows))
            for rows in self.episodes.add(state, row)
        ]

    def numbers(self, rows: Rows) -> dict[str, Any]:
        raise NotImplementedError

    def expire(self, state: State, cutoff: float) -> None:
        self.episodes.expire(state, cutoff)

    def size(self, state: State) -> int:
        return self.episodes.size(state)


class SharedWindow(Rule[CustomRuleSettings]):
    """The row store of the window rules that hold the same rows: one per fingerprint (same
    template, key, event types, filter, distinct_by, value and amount), as Rete shares an
    alpha memory between the rules that test the same conditions.

    The engine routes events to the store, not to its rules: the filter and the expressions
    are evaluated once per event, the row is built and inserted once, and each rule (the
    store's `members`, in name order) then judges its own episodes on the shared rows with
    its own window and threshold. The trailing window's start and count are computed once
    per distinct window. State per key, under `~custom@<fingerprint>`:

        {"rows": rows, "alerted": {rule name: ids of its rows whose episode was alerted}}

    Expiry keeps the rows any member still needs (the union of what each would keep alone,
    `Episodes.first_kept`). A member never looks at a row outside its own window, and what
    each keeps alone is enough for its alerts, so holding the union gives each member the
    alerts it gives alone. A rule added to a store that already holds rows for a key starts
    with those rows (a rule of a new fingerprint starts with empty state, as before).
    """

    Settings = CustomRuleSettings
    key_kind: ClassVar[KeyKind]
    shallow_state = True  # rows inserted fresh, `alerted` replaced

    def __init__(self, members: Sequence[WindowEpisodes]) -> None:
        self.leader = leader = members[0]
        super().__init__(leader.settings, leader.context)
        self.members = tuple(sorted(members, key=attrgetter("name")))
        self.state_key = shared_key(leader.settings)
        self.names = frozenset(member.name for member in self.members)
        self.accepts = leader.accepts
        self.max_window = max(member.window for member in self.members)
        # the members by window: a window's start and counts serve all its members
        windows: dict[float, Episodes] = {}
        lowest: dict[float, float] = {}
        for member in self.members:
            windows.setdefault(member.window, member.episodes)
            threshold = member.episodes.threshold
            lowest[member.window] = min(lowest.get(member.window, threshold), threshold)
        #: (window, its episodes, the lowest threshold of its members)
        self.windows = tuple((w, episodes, lowest[w]) for w, episodes in windows.items())
        self.plans = tuple(
            (member, member.window, member.episodes.threshold) for member in self.members
        )

    def prefilter(self) -> tuple[Accepts, OnEvent] | None:
        return self.leader.prefilter() and (self.accepts, self.on_match)

    def on_event(self, state: State, event: Any) -> list[Finding]:
        if not self.accepts(event):
            return []
        return self.on_match(state, event)

    def on_match(self, state: State, event: Any) -> list[Finding]:
        leader = self.leader
        value = leader.value_of(event) if leader.value is not None else None
        if value is MISSING:
            return []
        inserted = insert(state.get("rows", ()), leader.row(event, value), fresh=True)
        if inserted is None:
            return []  # a redelivery
        rows, position = inserted
        state["rows"] = rows
        alerted_by: dict[str, Sequence[str]] | None = state.get("alerted")
        found: list[tuple[WindowEpisodes, list[tuple[int, int]]]] = []
        if position == len(rows) - 1:  # the newest row: each window counted once
            newest = self._newest(rows, position)
            trigger_id = rows[position][EVENT_ID]
            for member, window, threshold in self.plans:
                start, count, previous = newest[window]
                if count < threshold or (previous is not None and previous >= threshold):
                    continue
                if alerted_by and trigger_id in alerted_by.get(member.name, ()):
                    continue
                found.append((member, [(position, start)]))
        else:
            for member in self.members:
                alerted = alerted_by.get(member.name, ()) if alerted_by else ()
                starts = member.episodes.starts(rows, position, alerted)
                if starts:
                    found.append((member, starts))
        if not found:
            return []
        alerted_by = dict(alerted_by or {})
        key = leader.key_of(event)
        findings = []
        for member, starts in found:
            held = alerted_by.get(member.name, ())
            alerted_by[member.name] = (*held, *(rows[index][EVENT_ID] for index, _ in starts))
            for index, start in starts:
                episode = rows[start : index + 1]
                findings.append(
                    member.finding(key, episode, episode[-1][EVENT_ID], member.numbers(episode))
                )
        state["alerted"] = alerted_by
        return findings

    def _newest(self, rows: Rows, position: int) -> dict[float, tuple[int, float, float | None]]:
        """Per window: the start of the newest row's window, its count, and the previous
        row's count when that row is in the window and the count reaches a member's threshold
        (else None: no member needs it)."""
        ts = rows[position][TS]
        found = {}
        for window, episodes, lowest in self.windows:
            start = bisect.bisect_right(rows, ts - window, hi=position, key=ts_of)
            count = episodes.count_of(rows, start, position)
            previous = None
            if position > start and count >= lowest:
                previous = episodes.count_at(rows, position - 1)
            found[window] = (start, count, previous)
        return found

    def expire(self, state: State, cutoff: float) -> None:
        rows: Rows = state.get("rows", ())
        if not rows:
            state.clear()
            return
        if rows[0][TS] > cutoff - self.max_window:
            return  # every member keeps every row: the common case
        first = min(member.episodes.first_kept(rows, cutoff) for member in self.members)
        if first == 0:
            return
        kept = tuple(rows[first:])
        if not kept:
            state.clear()
            return
        state["rows"] = kept
        alerted_by: dict[str, Sequence[str]] | None = state.get("alerted")
        if alerted_by:
            still = {
                name: ids
                for name, held in alerted_by.items()
                if name in self.names and (ids := kept_ids(held, kept))
            }
            if still:
                state["alerted"] = still
            else:
                del state["alerted"]

    def size(self, state: State) -> int:
        return len(state.get("rows", ()))


def shared_key(settings: CustomRuleSettings) -> str:
    """Where the shared row store of window rules with these settings' fingerprint sits."""
    return f"~custom@{fingerprint(settings)}"


def share(rules: Sequence[Rule[Any]]) -> list[Rule[Any]]:
    """What the engine runs for `rules`: each group of window rules with one fingerprint
    replaced by its `SharedWindow` (where its first rule was), the other rules as they are."""
    groups: dict[str, list[WindowEpisodes]] = {}
    for rule in rules:
        if isinstance(rule, WindowEpisodes):
            groups.setdefault(shared_key(rule.settings), []).append(rule)
    units: list[Rule[Any]] = []
    for rule in rules:
        if not isinstance(rule, WindowEpisodes):
            units.append(rule)
            continue
        key = shared_key(rule.settings)
        members = groups.get(key)
        if members is None:
            continue  # its store is placed already
        del groups[key]
        cls = type(
            f"SharedWindow_{key[8:]}",
            (SharedWindow,),
            {
                "name": key,
                "key_kind": rule.key_kind,
                "event_types": rule.event_types,
                "__module__": SharedWindow.__module__,
            },
        )
        store = cast(type[SharedWindow], cls)(members)
        for member in members:
            member.state_key = store.state_key
        units.append(store)
    return units


def _distinct(rows: Sequence[Row]) -> float:
    return len({row[VALUE] for row in rows})


def _sum(rows: Sequence[Row]) -> float:
    return math.fsum(map(_value_of, rows))


_value_of = itemgetter(VALUE)


class WindowCount(WindowEpisodes):
    template = "window_count"

    def compile_value(self, settings: CustomRuleSettings, lists: Lists) -> Expression | None:
        if settings.distinct_by is None:
            return None
        where = f"custom_rules.{self.name}.distinct_by"
        return _compile(settings.distinct_by, settings, lists, "any", where)

    def threshold(self) -> float:
        return float(self.settings.min_count or 0)

    def count(self) -> Any:
        return rows_count if self.settings.distinct_by is None else _distinct

    def value_of(self, event: Any) -> Any:
        assert self.value is not None
        found = self.value.evaluate(event)
        return MISSING if found is MISSING or found is None else _text(found)

    def numbers(self, rows: Rows) -> dict[str, Any]:
        numbers: dict[str, Any] = {"count": len(rows), "min_count": self.settings.min_count}
        if self.settings.distinct_by is not None:
            numbers["distinct"] = int(_distinct(rows))
        return numbers

    def default_message(self, key: str, details: dict[str, Any]) -> str:
        counted = (
            f"{details['distinct']} distinct values of {self.settings.distinct_by} in "
            f"{details['count']} events"
            if "distinct" in details
            else f"{details['count']} events"
        )
        return (
            f"{self.key_kind.capitalize()} {key}: {counted} matching {self.name} within "
            f"{details['window_hours']:g} hours (threshold {self.settings.min_count})."
        )


class WindowSum(WindowEpisodes):
    template = "window_sum"

    def compile_value(self, settings: CustomRuleSettings, lists: Lists) -> Expression | None:
        where = f"custom_rules.{self.name}.value"
        return _compile(settings.value or "", settings, lists, "number", where)

    def threshold(self) -> float:
        return float(self.settings.min_sum or 0.0)

    def count(self) -> Any:
        return _sum

    def value_of(self, event: Any) -> Any:
        assert self.value is not None
        found = self.value.evaluate(event)
        # a sum that can fall would break the episodes' "count never decreases when a row is
        # added": a negative, unknown or non-finite value takes no part
        if isinstance(found, bool) or not isinstance(found, int | float):
            return MISSING
        if not math.isfinite(found) or found < 0:
            return MISSING
        return float(found)

    def numbers(self, rows: Rows) -> dict[str, Any]:
        return {
            "count": len(rows),
            "sum": round(_sum(rows), 6),
            "min_sum": self.settings.min_sum,
        }

    def default_message(self, key: str, details: dict[str, Any]) -> str:
        return (
            f"{self.key_kind.capitalize()} {key}: {self.settings.value} summed to "
            f"{details['sum']:g} over {details['count']} events matching {self.name} within "
            f"{details['window_hours']:g} hours (threshold {self.settings.min_sum:g})."
        )


class Duplicate(CustomRule):
    """The same value again within the window: each repeating (event, value) is one alert.

    State per key: {value: [row...]}, each sorted by (ts, event_id), kept one window.
    """

    template = "duplicate"
    shallow_state = True  # rows inserted fresh (then flagged in the new list), never in place

    def __init__(self, settings: CustomRuleSettings, context: RuleContext, lists: Lists) -> None:
        super().__init__(settings, context, lists)
        where = f"custom_rules.{self.name}.value"
        self.value = _compile(settings.value or "", settings, lists, "any", where)

    def on_match(self, state: State, event: Any) -> list[Finding]:
        found = self.value.evaluate(event)
        if found is MISSING or found is None:
            return []
        if type(found) is str:
            values: list[str] | tuple[str] = (found,)  # the common case: one code
        elif isinstance(found, list):
            values = sorted({_text(v) for v in found if v is not None})
            if not values:
                return []
        else:
            values = (_text(found),)
        row = self.row(event)
        key = self.key_of(event)
        window = self.window
        findings = []
        for value in values:
            inserted = insert(state.get(value, ()), row, fresh=True)
            if inserted is None:
                continue
            rows, position = inserted
            # the new row, and the later rows it may now make repeats of (out of order)
            end = position + 1 if position == len(rows) - 1 else first_at(rows, row[TS] + window)
            for index in range(position, end):
                if rows[index][ALERTED]:
                    continue
                start = first_after(rows, rows[index][TS] - window, hi=index)
                if start == index:
                    continue  # nothing earlier within the window
                held = rows[index]
                window_rows = rows[start : index + 1]
                rows = replace(rows, index, (*held[:ALERTED], True))
                numbers = {"value": value, "count": len(window_rows)}
                trigger_id = f"{held[EVENT_ID]}/{value}"
                findings.append(self.finding(key, window_rows, trigger_id, numbers))
            state[value] = rows
        return findings

    def default_message(self, key: str, details: dict[str, Any]) -> str:
        return (
            f"{self.key_kind.capitalize()} {key}: {self.settings.value} = {details['value']} "
            f"seen {details['count']} times within {details['window_hours']:g} hours "
            f"({self.name})."
        )

    def expire(self, state: State, cutoff: float) -> None:
        limit = cutoff - self.window
        for value, held in list(state.items()):
            if held[0][TS] >= limit:
                continue  # all of it stays: the common case
            rows = keep_from(held, limit)
            if not rows:
                del state[value]
            elif rows is not held:
                state[value] = rows

    def size(self, state: State) -> int:
        return sum(len(rows) for rows in state.values())


TEMPLATE_CLASSES: dict[str, type[CustomRule]] = {
    cls.template: cls for cls in (WindowCount, WindowSum, Duplicate)
}


def _compile(
    text: str, settings: CustomRuleSettings, lists: Lists, result: Any, where: str
) -> Expression:
    return compile_event_expression(
        text, event_types=settings.event_types, lists=lists, result=result, where=where
    )


def _text(value: Any) -> str:
    """A value as a state key and a distinct value: a string as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
