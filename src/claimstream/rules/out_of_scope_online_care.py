"""out_of_scope_online_care (互联网首诊或超范围诊疗): online care the fund does not pay: a first
visit online (no earlier offline visit, or no offline diagnosis of the same condition, for the
patient within `look_back_days`), or a condition outside what the institution's agreement
lets it treat online.

Online care is a follow-up (复诊) of a common or chronic condition already diagnosed offline;
a first visit (首诊) may not be made online. An online visit is a consultation with
`mode: online` or a claim with `visit_type: online`, at any institution. Its evidence is an
offline visit of the same patient strictly before it and less than `look_back_days` (180)
before it (trailing, exclusive of its start): an offline consultation, an outpatient or
inpatient claim, an admission or a discharge. For an online claim with a `diagnosis_code`
(with `match_condition`, the default) the evidence must carry a diagnosis of the same
condition: the same first `condition_chars` (3: the ICD-10 category, E11 for E11.9)
characters. An online consultation carries no diagnosis, so any offline visit is evidence.

The absence of evidence is only evidence once the stream has seen the whole look-back: a
stream that starts today knows nothing of last month's offline visits. So first visits are
judged only when `history_from` (the local date from which the stream has seen every offline
visit: the day monitoring started, or the first day replayed into the state) is set, and only
for visits at least `look_back_days` after it. Unset (the default), the rule judges only the
condition scope. Set it when going live:
`claimstream rules set out_of_scope_online_care history_from=2026-01-01`.

Condition scope: the agreement valid on the visit's local day (`agreements.csv`,
`online_conditions`: ICD-10 prefixes) must list a prefix of the claim's diagnosis; an
agreement with none lists every condition, and an institution without a valid agreement is
`institution_not_qualified`'s business.

Amount: an online claim's `total_amount`; None for a consultation (no price). Default legal
basis: 《医疗保障基金使用监督管理条例》 without an article, with the online-care rules cited
without articles (《互联网诊疗管理办法（试行）》: no online diagnosis of a first visit; the NHSA's
2020 guidance on paying "互联网+" medical services). A pre-settlement check rejects it.
Severity high; alerts only; one alert per online visit, `details.reasons` saying why.

State per patient: the offline visits of `look_back_days` (rows of time, event id, condition),
kept only while `history_from` is set (unset, the rule keeps nothing).
Decided when the online visit arrives, as a pre-settlement check decides it: a redelivered
event changes nothing, and online visits give the same alerts in any order. An offline visit
that arrives *after* an online visit it precedes (out of order, within the allowed lateness;
possible across topics) does not take back that visit's alert; it counts for later ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, ClassVar

from claimstream.model.config import REGULATION, ConfigError, OnCheck, RuleSettings, positive
from claimstream.model.events import Claim, Consultation, Event, Stay
from claimstream.model.outputs import Severity, Subject
from claimstream.model.timefmt import DAY
from claimstream.reference.credentials import local_day
from claimstream.rules.base import Finding, Rule, RuleContext, State
from claimstream.rules.kit.rows import insert, keep_from

# a row: one offline visit; CONDITION is "" without a diagnosis
TS, EVENT_ID, CONDITION = range(3)


@dataclass(frozen=True, slots=True)
class OutOfScopeOnlineCareSettings(RuleSettings):
    severity: Severity = "high"
    issue_commands: bool = False
    legal_basis: str = f"{REGULATION}；《互联网诊疗管理办法（试行）》"
    behaviour: str = "互联网首诊或超范围诊疗"
    on_check: OnCheck = "reject"
    look_back_days: float = 180.0
    #: an online claim's evidence must be an offline diagnosis of the same condition
    match_condition: bool = True
    #: how many leading characters of an ICD-10 code make its condition (3: the category)
    condition_chars: int = 3
    #: local date (YYYY-MM-DD) from which the stream has seen every offline visit; first
    #: visits are judged from `look_back_days` after it, and not at all while it is unset
    history_from: str | None = None
    #: judge diagnoses against the agreement's `online_conditions`
    check_conditions: bool = True

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("look_back_days", self.look_back_days)
        positive("condition_chars", self.condition_chars)
        if self.history_from is not None:
            try:
                date.fromisoformat(self.history_from)
            except ValueError:
                raise ConfigError(
                    f"history_from must be a date YYYY-MM-DD, got {self.history_from!r}"
                ) from None


class OutOfScopeOnlineCare(Rule[OutOfScopeOnlineCareSettings]):
    name: ClassVar[str] = "out_of_scope_online_care"
    key_kind = "patient"
    event_types = frozenset({"consultation", "claim", "admission", "discharge"})
    Settings = OutOfScopeOnlineCareSettings

    def __init__(self, settings: OutOfScopeOnlineCareSettings, context: RuleContext) -> None:
        super().__init__(settings, context)
        self.look_back = settings.look_back_days * DAY
        self.judged_from: float | None = None
        if settings.history_from is not None:
            start = datetime.combine(date.fromisoformat(settings.history_from), time(), context.tz)
            self.judged_from = start.timestamp() + self.look_back

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        online = (isinstance(body, Consultation) and body.mode == "online") or (
            isinstance(body, Claim) and body.visit_type == "online"
        )
        diagnosis = body.diagnosis_code if isinstance(body, Claim | Stay) else None
        condition = self._condition(diagnosis)
        if not online:
            if self.judged_from is None:
                return []  # first visits are not judged: nothing to keep
            inserted = insert(state.get("rows", ()), (event.ts, event.event_id, condition))
            if inserted is not None:
                state["rows"] = inserted[0]
            return []
        reasons: list[str] = []
        evidence: str | None = None
        if self.judged_from is not None and event.ts >= self.judged_from:
            evidence = self._evidence(state.get("rows", ()), event.ts, condition)
            if evidence is None:
                reasons.append("first_visit")
        agreement = None
        if self.settings.check_conditions and diagnosis:
            day = local_day(event.ts, self.context.tz)
            agreement = self.context.reference.credentials.agreement(event.institution_id, day)
            held = agreement.agreement
            if held is not None and not held.treats_online(diagnosis):
                reasons.append("condition_out_of_scope")
        if not reasons:
            return []
        return [self._finding(event, reasons, diagnosis, condition)]

    def _condition(self, diagnosis: str | None) -> str:
        if not diagnosis or not self.settings.match_condition:
            return ""
        return diagnosis.strip().upper()[: self.settings.condition_chars]

    def _evidence(self, rows: Any, ts: float, condition: str) -> str | None:
        """The id of the latest offline visit that makes this online visit a follow-up."""
        start = ts - self.look_back
        for row in reversed(rows):
            if row[TS] >= ts:
                continue
            if row[TS] <= start:
                return None
            if not condition or row[CONDITION] == condition:
                return str(row[EVENT_ID])
        return None

    def _finding(
        self, event: Event, reasons: list[str], diagnosis: str | None, condition: str
    ) -> Finding:
        body = event.body
        amount = round(body.total_amount, 2) if isinstance(body, Claim) else None
        why = {
            "first_visit": (
                f"no offline visit{' for ' + condition if condition else ''} in the "
                f"{self.settings.look_back_days:g} days before it (a first visit online)"
            ),
            "condition_out_of_scope": (
                f"{diagnosis} is not a condition its agreement lets it treat online"
            ),
        }
        return Finding(
            subject=Subject("patient", event.patient_id),
            trigger_id=event.event_id,
            occurred_at=event.occurred_at,
            event_ids=(event.event_id,),
            message=(
                f"Online {event.event_type} of patient {event.patient_id} at "
                f"{event.institution_id}: {'; '.join(why[r] for r in reasons)}."
            ),
            details={
                "reason": reasons[0],
                "reasons": reasons,
                "event_type": event.event_type,
                "diagnosis_code": diagnosis,
                "condition": condition or None,
                "look_back_days": self.settings.look_back_days,
                "history_from": self.settings.history_from,
                "credentials_version": self.context.reference.credentials.version,
                "reference_version": self.context.reference.version,
            },
            patient_id=event.patient_id,
            institution_id=event.institution_id,
            doctor_id=event.doctor_id,
            department_id=event.department_id,
            amount=amount,
        )

    def expire(self, state: State, cutoff: float) -> None:
        rows = keep_from(state.get("rows", ()), cutoff - self.look_back)
        if rows:
            state["rows"] = rows
        else:
            state.clear()

    def size(self, state: State) -> int:
        return len(state.get("rows", ()))
