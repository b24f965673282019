"""The one small interface every rule implements.

A rule is a state machine over event time for one kind of key (patient, doctor, institution,
trace_code). It owns a JSON-shaped state object per key (plain dicts and lists, so the stream
worker can put it in a changelog-backed table as is), reacts to events, and forgets what its
horizon no longer needs. It never reads a clock: event time comes in the events, `cutoff`
comes from the engine.

Order-insensitivity within the allowed lateness is each rule's job: when an event arrives out
of order, the rule re-evaluates the later events it already holds, so the alerts are the same
as in order. A rule ignores an event id it already holds, so a redelivery changes nothing.

A rule that finds what did *not* happen (an event-time timer: "no B within T after A") sets
`timers` and implements `due`: the engine asks it, after each step of the key and at each
expiry (the idle-key sweep included), what has fallen due now that no event before `cutoff`
can still arrive. The timer itself is in the rule's state, so it survives a restart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar
from zoneinfo import ZoneInfo

from claimstream.model.config import RuleSettings
from claimstream.model.events import Event, StateKind
from claimstream.model.indicators import InstitutionMonth
from claimstream.model.outputs import Action, Line, Scope, Subject
from claimstream.reference.loader import ReferenceData
from claimstream.reference.suspensions import Suspensions

State = dict[str, Any]
SettingsT = TypeVar("SettingsT", bound=RuleSettings)


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """The settlement command a finding asks for; the engine gives it a deterministic id."""

    action: Action
    scope: Scope
    effective_from: str
    expires_at: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected case, in plain values (a rule may find it while re-reading stored state).

    `trigger_id` is the event that completes the pattern; with the rule and subject it
    determines the alert id, so the same case found twice (redelivery, replay, out-of-order
    re-evaluation) gets the same id.

    `amount` is the violation amount in yuan by the rule's documented formula (`docs/rules.md`),
    None when the events carry no price; `lines` the claim lines it is about, each (index in
    the claim's `items`, item code, amount), empty when the finding is not about claim lines.
    Both are read from the same held rows as the rest, so they too are the same however the
    case is found.

    `rule`: the name of the rule whose finding it is, when that is not the rule the engine
    called: the window templates' rules share a row store (`rules.custom.templates.
    SharedWindow`), which the engine calls and which finds for each of them. None: the rule
    called.

    `record`: set by a rule that produces figures rather than alerts (`institution_indicators`:
    an institution's closed month). The engine then publishes the record (`StepResult.records`)
    and makes no alert of the finding; the other fields only document it.
    """

    subject: Subject
    trigger_id: str
    occurred_at: str
    event_ids: tuple[str, ...]
    message: str
    details: dict[str, Any]
    patient_id: str | None = None
    institution_id: str | None = None
    doctor_id: str | None = None
    department_id: str | None = None
    commands: tuple[CommandSpec, ...] = field(default=())
    amount: float | None = None
    lines: tuple[Line, ...] = ()
    record: InstitutionMonth | None = None
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What rules may consult besides their settings, built once per engine.

    `tz` for local calendar days and months; `reference` for drug classes, restrictions and
    institution grades (`claimstream.reference.loader`); `lateness` (seconds, the engine's allowed
    lateness) for rules that close a period only once no event of it can still arrive;
    `suspensions` the doctors' suspensions in force, fed from the commands topic by whoever
    builds the engine (`reference.suspensions`; empty unless fed).
    """

    tz: ZoneInfo
    reference: ReferenceData = field(default_factory=ReferenceData.load)
    lateness: float = 0.0
    suspensions: Suspensions = field(default_factory=Suspensions)


#: a rule's test of an event alone, and a rule's reaction to an event (`Rule.prefilter`)
Accepts = Callable[[Event], bool]
OnEvent = Callable[[State, Event], list[Finding]]


class Rule(ABC, Generic[SettingsT]):
    #: registry name, also the alert's `rule` field and the config key
    name: ClassVar[str]
    #: which key this rule's state is kept per
    key_kind: ClassVar[StateKind]
    #: event types the rule reacts to; the engine sends it no others
    event_types: ClassVar[frozenset[str]]
    #: bump when the state shape changes: old state is then ignored, not misread
    state_version: ClassVar[int] = 1
    #: True for a rule that decides from the event alone: the engine then stores no state
    #: for it (it gets an empty dict it must not keep anything in)
    stateless: ClassVar[bool] = False
    #: the settings dataclass holding this rule's thresholds and defaults
    Settings: ClassVar[type[RuleSettings]]
    #: True for a rule with event-time timers in its state: the engine then calls `due`
    timers: ClassVar[bool] = False
    #: True for a rule that only ever replaces the values of its state dict, never changes a
    #: value in place (a long list of rows included: `rows.insert(..., fresh=True)`): the
    #: engine then takes a plain copy of the dict as the state to put back if a step fails
    shallow_state: ClassVar[bool] = False

    def __init__(self, settings: SettingsT, context: RuleContext) -> None:
        self.settings = settings
        self.context = context
        #: where this rule's state sits in a key's state; a new state version starts fresh
        self.state_key = f"{self.name}@{self.state_version}"

    @abstractmethod
    def on_event(self, state: State, event: Event) -> list[Finding]:
        """Update `state` with `event` and return what it completes (often nothing)."""

    def prefilter(self) -> tuple[Accepts, OnEvent] | None:
        """A cheap test of the event alone that `on_event` begins with, and what `on_event`
        does after it: the engine then runs the test first and skips the rule (and the copy of
        its state it keeps to undo a failed step) for the events the test refuses. None: the
        engine calls `on_event` for every event of `event_types`."""
        return None

    @abstractmethod
    def expire(self, state: State, cutoff: float) -> None:
        """Drop what no event at or after `cutoff` (event time) can need any more."""

    def due(self, state: State, cutoff: float) -> list[Finding]:
        """What has fallen due now that no event of the rule's families before `cutoff`
        (event time) can still be accepted; called only when `timers` is set, before
        `expire`. A finding made here must leave `state` so it is not made again."""
        return []

    @abstractmethod
    def size(self, state: State) -> int:
        """How many items the state holds (for the bounded-state test and the gauges)."""
