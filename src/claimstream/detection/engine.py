"""The engine: one step of one event against one key's state.

The state of a key is a plain dict (JSON-shaped) so the stream worker can keep it in a
changelog-backed table unchanged, and `replay` in an ordinary dict:

    {"wm": {<event family>: <max event time seen>}, "seen": {event_id: ts},
     "gc": <last expiry cutoff>, "r": {"<rule>@<state version>": <rule state>}}

(doctor, institution and trace-code keys fed through `align.Aligner` also hold "src" and "rel",
see there). A dispensing belongs to one `trace_code` key per code it carries: callers step each
code's view (`detection.tracecodes`), never the dispensing itself.

Lateness is judged against the key's own watermark for the event's family (the input topic its
type travels on, `events.FAMILY_OF`). Kafka keeps order per partition: the events of one key
and one family are in order in the stream exactly as in a file, while events of different
families interleave however the consumer fetches them (hours apart in event time while it
catches up on a backlog). Judged per family, the late/not-late decision does not depend on that
interleaving, so the stream and `replay` agree. Each rule's state expires against the
watermarks of the families it reads.

A rule with event-time timers (`Rule.timers`, e.g. the `absence` template: "no B within T
after A") is asked what has fallen due (`Rule.due`) after each step of a key, against the cutoff
no event of the rule's families before which can still be accepted (every family the rule reads
must have a watermark for the key), and at each expiry, the idle-key sweep included, where the
stream-wide floor counts too. Findings made at a sweep go into the `into` result `expire` and
`sweep` are given (the detector's and the processor's callers publish them); without one, the
timers are left for later.

A step is all or nothing: when a rule (or anything else in the step) raises, the key's state is
put back as it was before the event (no dedup entry, no watermark, no half-updated rule state)
and the exception goes to the caller, which dead-letters the event as `processing_error`; the
key's next event is processed normally. The price is a copy of the state of each rule the event
reaches, taken before the rule runs (`_snapshot`: a shallow copy for the usual state of tuples,
else orjson; measured in the commit; a plain `dict.copy` for a rule that only replaces the
values of its state, `Rule.shallow_state`: the custom templates' row stores).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import orjson

from claimstream.detection.config import DetectionConfig
from claimstream.model.events import EVENT_TYPES, FAMILY_OF, STATE_KINDS, Event, StateKind
from claimstream.model.indicators import InstitutionMonth
from claimstream.model.outputs import Alert, Command, stable_id
from claimstream.model.rejection import Rejection
from claimstream.model.timefmt import DAY, HOUR, iso
from claimstream.reference.loader import ReferenceData
from claimstream.reference.suspensions import Suspensions
from claimstream.rules import RULES, custom
from claimstream.rules.base import Finding, Rule, RuleContext, State

#: Wall clock or a test's fake: returns POSIX seconds. Used only for `detected_at` (and by the
#: stream's processor for its future check). `Engine(config, None)` stamps `detected_at` with
#: the event time of the event being stepped instead (`replay --clock event`).
Clock = Callable[[], float]
#: one rule call on the hot path: the rule's state key, its bound `on_event`, whether it is
#: stateless (then it gets a throwaway dict and nothing is stored for it), its prefilter, and
#: how its state is copied to be put back on an error (`_snapshot`, or `dict.copy`)
_Call = tuple[
    str,
    Callable[[State, Event], list[Finding]],
    bool,
    Callable[[Event], bool] | None,
    Callable[[State], State | bytes],
]
#: the id an event is keyed by for each kind of key (as `Event.key`, without its branches)
_KEY_OF: dict[StateKind, Callable[[Event], str | None]] = {
    "patient": attrgetter("patient_id"),
    "doctor": attrgetter("doctor_id"),
    "institution": attrgetter("institution_id"),
    # an event has one key per trace code: callers step each code's view (`tracecodes`)
    "trace_code": lambda event: event.key("trace_code"),
}

_dumps = orjson.dumps


def _call(rule: Rule[Any]) -> _Call:
    """A rule's entry in the dispatch table: its state key, what to call, whether it is
    stateless, and the test that decides first whether to call it (`Rule.prefilter`)."""
    snapshot: Callable[[State], State | bytes] = dict.copy if rule.shallow_state else _snapshot
    prefilter = rule.prefilter()
    if prefilter is None:
        return (rule.state_key, rule.on_event, rule.stateless, None, snapshot)
    accepts, on_accepted = prefilter
    return (rule.state_key, on_accepted, rule.stateless, accepts, snapshot)


def _snapshot(rule_state: State) -> State | bytes:
    """What `rule_state` is now, to put back if the step fails.

    Rules write rows as tuples of scalars and replace a row rather than change it
    (tests/detection/test_state_representation.py checks that rule state tuples hold no
    container). So dicts are copied, lists of rows (a tuple first and last) are copied without
    their rows, and the rest is shared: a few dict and list copies, however many rows. A state
    of any other shape (a list of counters, a state read back from a changelog, whose rows are
    lists) is copied whole, by orjson, as soon as its first such list is met (a few checks
    and no exception: every state a worker reads from its table is of that kind).
    """
    copy = _copy_rows(rule_state)
    return _dumps(rule_state) if copy is None else copy


def _copy_rows(value: dict[str, Any]) -> dict[str, Any] | None:
    """`value` with its dicts and its lists of rows copied; None when it holds another list."""
    copy = value.copy()
    for key, item in copy.items():
        kind = type(item)
        if kind is list:
            if item and (type(item[0]) is not tuple or type(item[-1]) is not tuple):
                return None
            copy[key] = item.copy()
        elif kind is dict:
            inner = _copy_rows(item)
            if inner is None:
                return None
            copy[key] = inner
    return copy


#: How often (in event time) a key's state is swept for expired entries on the hot path.
#: A key's state is bounded by its rules' horizons plus this interval.
_GC_INTERVAL = DAY
#: Keys with fewer events than this in their dedup window are expired only by `sweep`:
#: expiring a small state on every event would cost more than the memory it frees.
_GC_MIN_SEEN = 32


@dataclass(slots=True)
class StepResult:
    alerts: list[Alert] = field(default_factory=list)
    shadow_alerts: list[Alert] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    #: closed institution months (`institution_indicators`), for the peer stage (`peers.py`)
    records: list[InstitutionMonth] = field(default_factory=list)
    rejection: Rejection | None = None
    duplicate: bool = False
    changed: bool = False  # the key's state was modified and must be written back


class Engine:
    """Applies the enabled rules of a `DetectionConfig` to events, one key's state at a time."""

    def __init__(
        self, config: DetectionConfig, clock: Clock | None, suspensions: Suspensions | None = None
    ) -> None:
        """`suspensions`: the doctors' suspensions in force (`reference.suspensions`), which
        the builder keeps feeding from the commands topic; None: none (nothing feeds them)."""
        self.config = config
        self.clock = clock
        self.plausible = config.plausible
        self.future_skew = config.max_future_skew_minutes * 60
        self.lateness = config.allowed_lateness_hours * HOUR
        #: how far the aligned watermark must pass an event before it is released (docs/time.md)
        slack = config.alignment_slack_minutes
        self.slack = self.lateness if slack is None else slack * 60
        self.dedup_retention = max(config.dedup_retention_hours * HOUR, self.lateness)
        self.idle_grace = config.idle_expiry_grace_hours * HOUR
        #: what the rules are given: time zone, reference data, lateness, suspensions
        self.context = context = RuleContext(
            tz=config.tz,
            reference=ReferenceData.load(config.reference_data_path),
            lateness=self.lateness,
            suspensions=Suspensions() if suspensions is None else suspensions,
        )
        self.rules: list[Rule[Any]] = [
            cls(config.rules[name], context)
            for name, cls in RULES.items()
            if config.rules[name].enabled
        ]
        # the configuration's custom rules (`rules.custom`), routed like any other
        self.rules.extend(custom.build(config.custom_rules, config.custom_lists, context))
        #: the rules by name: a finding that names its rule (`Finding.rule`) is emitted as its
        self._named: dict[str, Rule[Any]] = {rule.name: rule for rule in self.rules}
        #: what the engine runs, each with a state of its own: the rules, but for the custom
        #: window rules that hold the same rows, which share one row store (`custom.share`)
        units = custom.share(self.rules)
        self._routes: dict[tuple[StateKind, str], list[Rule[Any]]] = {}
        for rule in units:
            for event_type in rule.event_types:
                self._routes.setdefault((rule.key_kind, event_type), []).append(rule)
        self.key_kinds: tuple[StateKind, ...] = tuple(
            k for k in STATE_KINDS if any(r.key_kind == k for r in units)
        )
        self._kinds_by_type: dict[str, tuple[StateKind, ...]] = {
            t: tuple(k for k in self.key_kinds if (k, t) in self._routes) for t in EVENT_TYPES
        }
        # The hot path's dispatch tables, built once: per kind of key, per event type, the
        # (state key, on_event) pairs of the rules to run, so a step does no tuple building,
        # attribute lookup or bound-method creation per rule.
        self._calls: dict[StateKind, dict[str, tuple[_Call, ...]]] = {
            kind: {
                t: tuple(_call(r) for r in rules)
                for (k, t), rules in self._routes.items()
                if k == kind
            }
            for kind in STATE_KINDS
        }
        #: per event type, the (kind, key field) pairs whose rules react to it (`Detector`)
        self.dispatch: dict[str, tuple[tuple[StateKind, Callable[[Event], str | None]], ...]] = {
            t: tuple((k, _KEY_OF[k]) for k in kinds) for t, kinds in self._kinds_by_type.items()
        }
        self._by_state_key = {rule.state_key: rule for rule in units}
        #: the rules with timers, asked at each expiry given somewhere to put findings
        self._timed: tuple[Rule[Any], ...] = tuple(r for r in units if r.timers)
        self._families = {
            rule.state_key: tuple(sorted({FAMILY_OF[t] for t in rule.event_types}))
            for rule in units
        }
        #: per state key: the rule's bound `expire` and the families its cutoff follows
        self._expirers: dict[str, tuple[Callable[[State, float], None], tuple[str, ...]]] = {
            rule.state_key: (rule.expire, self._families[rule.state_key]) for rule in units
        }
        #: per kind and event type, the rules with timers a step reaches: asked after it
        self._timers: dict[StateKind, dict[str, tuple[Rule[Any], ...]]] = {
            kind: {
                t: tuple(r for r in rules if r.timers)
                for (k, t), rules in self._routes.items()
                if k == kind and any(r.timers for r in rules)
            }
            for kind in STATE_KINDS
        }

    @staticmethod
    def new_state() -> State:
        return {"wm": {}, "seen": {}, "gc": None, "r": {}}

    def routes(self, kind: StateKind, event: Event) -> bool:
        """Whether any enabled rule keyed by `kind` reacts to this event."""
        if kind not in self.kinds_for(event):
            return False
        if kind == "trace_code":  # any number of keys (`Event.keys`)
            return bool(event.keys(kind))
        return event.key(kind) is not None

    def kinds_for(self, event: Event) -> tuple[StateKind, ...]:
        """The kinds of key whose rules react to this event's type (often just one)."""
        return self._kinds_by_type.get(event.event_type, ())

    def implausible(self, event: Event) -> Rejection | None:
        """`implausible_timestamp` when occurred_at is outside the configured plausible range."""
        earliest, latest = self.plausible
        if earliest <= event.ts < latest:
            return None
        return Rejection(
            "implausible_timestamp",
            f"occurred_at {event.occurred_at} is outside the plausible range "
            f"{self.config.earliest_event_time} .. {self.config.latest_event_time} "
            "(earliest_event_time, latest_event_time)",
        )

    def in_future(self, event: Event, now: float) -> Rejection | None:
        """`future_timestamp` when occurred_at is more than the allowed skew ahead of `now`."""
        if event.ts <= now + self.future_skew:
            return None
        return Rejection(
            "future_timestamp",
            f"occurred_at {event.occurred_at} is more than "
            f"{self.config.max_future_skew_minutes:g} min ahead of the worker's clock "
            f"({iso(now)}; max_future_skew_minutes)",
        )

    def step(
        self, kind: StateKind, state: State, event: Event, into: StepResult | None = None
    ) -> StepResult:
        """Apply `event` to the state of its `kind` key. Mutates `state`; all or nothing.

        What it produces is added to `into` when given (one result for all kinds of key of an
        event, without a merge), else to a new result. When anything raises, `state` and
        `into` are put back as they were and the exception propagates.
        """
        calls = self._calls[kind].get(event.event_type)
        result = StepResult() if into is None else into
        if not calls:
            return result
        seen: dict[str, float] = state["seen"]
        event_id = event.event_id
        if event_id in seen:
            result.duplicate = True
            return result
        ts = event.ts
        family = FAMILY_OF[event.event_type]
        watermarks: dict[str, float] = state["wm"]
        wm = watermarks.get(family)
        if wm is not None and ts < wm - self.lateness:
            result.rejection = Rejection(
                "late",
                f"occurred_at {event.occurred_at} is more than "
                f"{self.config.allowed_lateness_hours:g} h behind the latest {family} event of "
                f"{kind} {event.key(kind)} ({iso(wm)})",
            )
            return result
        # Everything below changes state: each rule's state is copied before the rule runs, to
        # put it back on an error (None: it had none).
        rule_states: dict[str, State] = state["r"]
        saved: list[tuple[str, State | bytes | None]] = []
        gc = state["gc"]
        changed = result.changed
        alerts, shadows, commands = result.alerts, result.shadow_alerts, result.commands
        records = result.records
        counts = (len(alerts), len(shadows), len(commands), len(records))
        try:
            result.changed = True
            seen[event_id] = ts
            if wm is None or ts > wm:
                watermarks[family] = ts
            for state_key, on_event, stateless, accepts, snapshot in calls:
                if accepts is not None and not accepts(event):
                    continue
                if stateless:
                    findings = on_event({}, event)
                else:
                    rule_state = rule_states.get(state_key)
                    if rule_state is None:
                        saved.append((state_key, None))
                        rule_state = rule_states[state_key] = {}
                    else:
                        saved.append((state_key, snapshot(rule_state)))
                    findings = on_event(rule_state, event)
                if findings:
                    rule = self._by_state_key[state_key]
                    for finding in findings:
                        self.emit(rule, finding, result, ts)
            timers = self._timers[kind].get(event.event_type)
            if timers:
                held = {key for key, _ in saved}
                saved.extend(
                    (key, _snapshot(rule_states[key]))
                    for key in (rule.state_key for rule in timers)
                    if key not in held and key in rule_states
                )
                self._due(timers, state, None, result)
            cutoff = watermarks[family] - self.lateness
            if gc is None:
                state["gc"] = cutoff
            elif cutoff - gc >= _GC_INTERVAL and len(seen) >= _GC_MIN_SEEN:
                self._expire_busy(state, result)  # a busy key; quiet ones are left to `sweep`
        except BaseException:
            seen.pop(event_id, None)
            if wm is None:
                watermarks.pop(family, None)
            else:
                watermarks[family] = wm
            state["gc"] = gc
            for key, copy in saved:
                if copy is None:
                    state["r"].pop(key, None)
                elif type(copy) is bytes:
                    state["r"][key] = orjson.loads(copy)
                else:
                    state["r"][key] = copy
            result.changed = changed
            del alerts[counts[0] :], shadows[counts[1] :], commands[counts[2] :]
            del records[counts[3] :]
            raise
        return result

    def _due(
        self,
        rules: tuple[Rule[Any], ...],
        state: State,
        floor: float | None,
        into: StepResult,
    ) -> None:
        """Ask each of `rules` (with timers) what has fallen due for this key, and emit it.

        The cutoff is the least watermark of the families the rule reads, less the allowed
        lateness: no event of theirs before it can still be accepted. A family without a
        watermark yet could still bring anything, so then only `floor` (a sweep's stream-wide
        bound) decides. Under the event clock a timer's `detected_at` is its finding's
        `occurred_at` (an absence's deadline), the same whichever event or sweep finds it.
        """
        watermarks: dict[str, float] = state["wm"]
        rule_states: dict[str, State] = state["r"]
        for rule in rules:
            rule_state = rule_states.get(rule.state_key)
            if not rule_state:
                continue
            marks = [watermarks.get(f) for f in self._families[rule.state_key]]
            cutoff = -math.inf
            if None not in marks:
                cutoff = min(m for m in marks if m is not None) - self.lateness
            if floor is not None:
                cutoff = max(cutoff, floor)
            if cutoff == -math.inf:
                continue
            for finding in rule.due(rule_state, cutoff):
                self.emit(rule, finding, into, None)

    def _expire_busy(self, state: State, into: StepResult) -> None:
        """`expire` on the hot path, all or nothing (rare: a whole copy to undo it by)."""
        whole = _dumps(state)
        try:
            self.expire(state, into=into)
        except BaseException:
            state.clear()
            state.update(orjson.loads(whole))
            raise

    def expire(
        self, state: State, floor: float | None = None, into: StepResult | None = None
    ) -> bool:
        """Drop what no future event can need. Returns True when nothing is left.

        Each rule's state expires against the key's watermarks of the families it reads, less
        the allowed lateness; `floor` (from `sweep`) raises every cutoff to a stream-wide bound.
        With `into`, the rules with timers are first asked what has fallen due (`_due`), and
        their findings go there.
        """
        if into is not None and self._timed:
            self._due(self._timed, state, floor, into)
        watermarks: dict[str, float] = state["wm"]
        lateness = self.lateness
        lowest = float("-inf") if floor is None else floor
        newest = max(watermarks.values()) - lateness if watermarks else lowest
        state["gc"] = gc_cutoff = max(newest, lowest)
        seen: dict[str, float] = state["seen"]
        keep_after = gc_cutoff + lateness - self.dedup_retention
        if seen and min(seen.values()) < keep_after:  # min() is one C loop; usually no-op
            if max(seen.values()) < keep_after:
                seen.clear()  # an idle key (what sweeps mostly meet): all of it goes
            else:
                for event_id in [e for e, ts in seen.items() if ts < keep_after]:
                    del seen[event_id]
        sources: dict[str, float] | None = state.get("src")  # an aligned kind's lateness marks
        if sources:
            for source in [s for s, ts in sources.items() if ts < keep_after]:
                del sources[source]
        rule_states: dict[str, State] = state["r"]
        expirers = self._expirers
        for key, rule_state in list(rule_states.items()):
            expirer = expirers.get(key)
            if expirer is None:  # a disabled rule or an old state version: nothing reads it
                del rule_states[key]
                continue
            expire, families = expirer
            if len(families) == 1:
                own = watermarks.get(families[0])
                cutoff = lowest if own is None else max(own - lateness, lowest)
            else:
                marks = [watermarks[f] for f in families if f in watermarks]
                cutoff = max(min(marks) - lateness if marks else lowest, lowest)
            if rule_state:
                expire(rule_state, cutoff)
            if not rule_state:
                del rule_states[key]
        return not seen and not rule_states and not sources

    def sweep(self, state: State, watermark: float, into: StepResult | None = None) -> bool:
        """Expire an idle key against a stream-wide watermark; True when the key can go.

        A key's own watermarks do not move while it receives nothing, so idle keys are expired
        against the stream's watermark less a grace for producers that lag behind
        (`idle_expiry_grace_hours`). Returns True when the state is empty. Timers that fall
        due (`Rule.due`) put their findings in `into`; without it they wait.
        """
        floor = watermark - self.lateness - self.idle_grace
        watermarks: dict[str, float] = state["wm"]
        cutoff = max(floor, max(watermarks.values()) - self.lateness) if watermarks else floor
        last: float | None = state["gc"]
        if (
            last is not None
            and cutoff - last < _GC_INTERVAL
            and (state["r"] or state["seen"] or state.get("src"))
        ):
            if into is not None and self._timed:  # timers are due when they are due
                self._due(self._timed, state, floor, into)
            return False  # expired recently enough; bounded by the same interval as on events
        return self.expire(state, floor, into)

    def size(self, state: State) -> int:
        by_key = self._by_state_key
        return sum(by_key[key].size(rs) for key, rs in state["r"].items() if key in by_key)

    def emit(self, rule: Rule[Any], finding: Finding, result: StepResult, ts: float | None) -> None:
        """Turn `rule`'s finding into its alert (and commands) in `result`, or its record.
        `ts`: the event time that completed it (None: found at a timer or by the peer stage;
        under the event clock `detected_at` is then the finding's `occurred_at`)."""
        if finding.record is not None:  # figures, not an alert (`institution_indicators`)
            result.records.append(finding.record)
            return
        if finding.rule is not None:  # found by a row store several rules share
            rule = self._named[finding.rule]
        settings = rule.settings
        subject = finding.subject
        alert_id = stable_id("alr", rule.name, subject.kind, subject.id, finding.trigger_id)
        alert = Alert(
            alert_id=alert_id,
            rule=rule.name,
            rule_version=self.config.version,
            severity=settings.severity,
            subject=subject,
            patient_id=finding.patient_id,
            institution_id=finding.institution_id,
            doctor_id=finding.doctor_id,
            department_id=finding.department_id,
            event_ids=finding.event_ids,
            occurred_at=finding.occurred_at,
            detected_at=(
                iso(self.clock())
                if self.clock is not None
                else finding.occurred_at
                if ts is None
                else iso(ts)
            ),
            message=finding.message,
            details=finding.details,
            amount=finding.amount,
            legal_basis=settings.legal_basis,
            behaviour=settings.behaviour,
            lines=finding.lines,
        )
        if settings.mode == "shadow":
            result.shadow_alerts.append(alert)
            return
        result.alerts.append(alert)
        if not settings.issue_commands:
            return
        for spec in finding.commands:
            result.commands.append(
                Command(
                    command_id=stable_id("cmd", spec.action, spec.scope.key(), alert_id),
                    action=spec.action,
                    scope=spec.scope,
                    effective_from=spec.effective_from,
                    expires_at=spec.expires_at,
                    reason=spec.reason,
                    rule=rule.name,
                    alert_ids=(alert_id,),
                )
            )


def merge(into: StepResult, other: StepResult) -> None:
    """Fold `other` into `into` (an event touches several kinds of key)."""
    into.alerts.extend(other.alerts)
    into.shadow_alerts.extend(other.shadow_alerts)
    into.commands.extend(other.commands)
    into.records.extend(other.records)
    into.duplicate = into.duplicate or other.duplicate
    into.changed = into.changed or other.changed
    if into.rejection is None:
        into.rejection = other.rejection
