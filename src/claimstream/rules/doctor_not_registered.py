"""doctor_not_registered (医师无有效注册或被暂停医保支付资格): a doctor billing at an institution
where he holds no practising registration (执业注册) valid on the event's local day, or any event
of a doctor whose billing the sanctions ladder has suspended.

Registrations come from the reference data (`registrations.csv`, `reference.credentials`):
one row per doctor and institution (多点执业 is several), a period in local dates (both ends
inclusive: valid on its last day, not on the day after; 00:00 local time starts a new day) and
a status. Reasons, in `details.reason`:

- `unknown_doctor`: the registry lists no registration of the doctor anywhere;
- `not_registered_here`: none at this institution;
- `not_yet_valid` / `expired` / `lapsed`: none at this institution valid that day;
- `suspended` / `revoked`: the registration valid that day is not `active`;
- `billing_suspended`: a SUSPEND of the doctor (12 points in a year, grade D, the escalation;
  decided by the sanctions ladder) is in force at the event's time. The ladder's commands
  reach the rule as data (`RuleContext.suspensions`, `reference.suspensions`), since detection
  cannot read the ladder's state; an event is judged against the suspensions fed so far.

An event without a `doctor_id` is not judged. The suspension is checked first: a suspended
doctor's alert says so even where his registration is fine.

Amount: what the event bills: a claim's `total_amount`, a dispensing's
`quantity × unit_price`; None for consultations and stays (no price) or a dispensing without
a `unit_price`.

Default legal basis: 《医疗保障基金使用监督管理条例》 without an article (where a doctor may
practise is in the physicians' law and the registration rules, 《中华人民共和国医师法》, cited
without an article; the suspension is the fund's own decision). A pre-settlement check rejects
it. Severity high; alerts only.

Stateless: each event is judged alone, one alert per event, so redelivery and order change
nothing. The registry version is in `details.credentials_version`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import REGULATION, OnCheck, RuleSettings
from claimstream.model.events import Claim, Dispense, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.reference.credentials import local_day
from claimstream.rules.base import Finding, Rule, State
from claimstream.rules.kit.money import dispensing_cost

_WHY = {
    "unknown_doctor": "has no practising registration in the registry",
    "not_registered_here": "is not registered to practise there",
    "not_yet_valid": "has no registration there valid yet",
    "expired": "has no registration there valid any more",
    "lapsed": "has no registration there valid that day (between two)",
    "suspended": "has a registration there that is suspended (暂停)",
    "revoked": "has a registration there that is revoked (注销)",
    "billing_suspended": "has his billing suspended by the fund",
}


@dataclass(frozen=True, slots=True)
class DoctorNotRegisteredSettings(RuleSettings):
    #: off until `reference_data_path` holds the region's registry: against the packaged,
    #: illustrative one every real institution is unknown (and a check would reject it)
    enabled: bool = False
    severity: Severity = "high"
    issue_commands: bool = False
    legal_basis: str = f"{REGULATION}；《中华人民共和国医师法》"
    behaviour: str = "医师无有效执业注册或被暂停医保支付资格"
    on_check: OnCheck = "reject"
    #: judge the registry (a region without one can still use the suspensions)
    check_registration: bool = True
    #: judge the suspensions in force (`RuleContext.suspensions`)
    check_suspension: bool = True


class DoctorNotRegistered(Rule[DoctorNotRegisteredSettings]):
    name: ClassVar[str] = "doctor_not_registered"
    key_kind = "patient"
    event_types = frozenset({"dispense", "consultation", "admission", "discharge", "claim"})
    Settings = DoctorNotRegisteredSettings
    stateless = True

    def on_event(self, state: State, event: Event) -> list[Finding]:
        doctor = event.doctor_id
        if doctor is None:
            return []
        if self.settings.check_suspension:
            suspension = self.context.suspensions.suspension(doctor, event.ts)
            if suspension is not None:
                return [
                    self._finding(
                        event,
                        "billing_suspended",
                        {
                            "suspension_command_id": suspension.command_id,
                            "suspended_since": suspension.effective_from,
                        },
                    )
                ]
        if not self.settings.check_registration:
            return []
        day = local_day(event.ts, self.context.tz)
        found = self.context.reference.credentials.registration(doctor, event.institution_id, day)
        if found.reason is None:
            return []
        registration = found.registration
        return [
            self._finding(
                event,
                found.reason,
                {
                    "registration_period": None if registration is None else registration.period(),
                    "registration_status": None if registration is None else registration.status,
                },
            )
        ]

    def _finding(self, event: Event, reason: str, more: dict[str, object]) -> Finding:
        body = event.body
        amount: float | None = None
        if isinstance(body, Claim):
            amount = round(body.total_amount, 2)
        elif isinstance(body, Dispense):
            amount = dispensing_cost(body)
        doctor = event.doctor_id
        assert doctor is not None
        day = local_day(event.ts, self.context.tz)
        return Finding(
            subject=Subject("doctor", doctor),
            trigger_id=event.event_id,
            occurred_at=event.occurred_at,
            event_ids=(event.event_id,),
            message=(
                f"Doctor {doctor} billed at {event.institution_id} on {day} "
                f"({event.event_type}) but {_WHY[reason]}."
            ),
            details={
                "reason": reason,
                "day": day.isoformat(),
                "event_type": event.event_type,
                **more,
                "credentials_version": self.context.reference.credentials.version,
                "reference_version": self.context.reference.version,
            },
            patient_id=event.patient_id,
            institution_id=event.institution_id,
            doctor_id=doctor,
            department_id=event.department_id,
            amount=amount,
        )

    def expire(self, state: State, cutoff: float) -> None:
        state.clear()

    def size(self, state: State) -> int:
        return 0
