"""institution_not_qualified (无定点资质或超协议范围): an event of an institution without a
service agreement (定点服务协议) valid on the event's local day, or of a kind of care or a claim
item category its agreement does not cover (a pharmacy billing an inpatient stay).

Agreements come from the reference data (`agreements.csv`, `reference.credentials`): one or
more rows per institution, each with its type (定点医疗机构 / 定点零售药店 / 互联网医院), its period
in local dates (both ends inclusive: valid on its last day, not on the day after; the day is
the event's `occurred_at` in the configured time zone, so 00:00 local time starts a new day
whatever offset the producer wrote) and its scope. Reasons, in `details.reason`:

- `unknown_institution`: the registry lists no agreement of the institution;
- `not_yet_valid` / `expired` / `lapsed`: before its first agreement, after its last, between two;
- `service_out_of_scope`: the event's kind of care (`dispensing`, `outpatient`, `inpatient`,
  `online`; a consultation is `online` or `outpatient` by its mode) is not in the agreement's
  `services`;
- `category_out_of_scope`: a claim carries items of a category its agreement does not list.

Amount: what the event bills that the institution may not bill: a claim's `total_amount` (for
`category_out_of_scope`, the out-of-scope items' `quantity × unit_price`, the alert's
`lines`), a dispensing's `quantity × unit_price`; None for consultations and stays (no price)
or a dispensing without a `unit_price`.

Default legal basis: 《医疗保障基金使用监督管理条例》 without an article (the duty to settle only
under an agreement and within its scope is in the agreement rules, 《医疗机构医疗保障定点管理暂行
办法》 and 《零售药店医疗保障定点管理暂行办法》, cited without articles); a pre-settlement check
rejects it (the fund does not pay an institution outside its agreement). Severity high. With
`issue_commands` on, a FREEZE of the institution until the end of that local day.

Stateless: each event is judged alone, one alert per event (its id from the event's), so a
redelivery or any order gives the same alerts. The registry version is in
`details.credentials_version`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import REGULATION, OnCheck, RuleSettings
from claimstream.model.events import Claim, Dispense, Event
from claimstream.model.outputs import Line, Scope, Severity, Subject
from claimstream.model.timefmt import end_of_local_day, iso
from claimstream.reference.credentials import Agreement, local_day, service_of
from claimstream.rules.base import CommandSpec, Finding, Rule, State
from claimstream.rules.kit.money import claim_lines, dispensing_cost, lines_total

_WHY = {
    "unknown_institution": "has no service agreement (定点协议) in the registry",
    "not_yet_valid": "has no agreement valid yet",
    "expired": "has no agreement valid any more",
    "lapsed": "has no agreement valid that day (between two)",
}


@dataclass(frozen=True, slots=True)
class InstitutionNotQualifiedSettings(RuleSettings):
    #: off until `reference_data_path` holds the region's registry: against the packaged,
    #: illustrative one every real institution is unknown (and a check would reject it)
    enabled: bool = False
    severity: Severity = "high"
    issue_commands: bool = False
    legal_basis: str = (
        f"{REGULATION}；《医疗机构医疗保障定点管理暂行办法》；《零售药店医疗保障定点管理暂行办法》"
    )
    behaviour: str = "无定点资质或超协议范围结算"
    on_check: OnCheck = "reject"
    #: judge the kinds of care (`services`) and the claim item categories of an agreement
    check_scope: bool = True


class InstitutionNotQualified(Rule[InstitutionNotQualifiedSettings]):
    name: ClassVar[str] = "institution_not_qualified"
    key_kind = "patient"
    event_types = frozenset({"dispense", "consultation", "admission", "discharge", "claim"})
    Settings = InstitutionNotQualifiedSettings
    stateless = True

    def on_event(self, state: State, event: Event) -> list[Finding]:
        credentials = self.context.reference.credentials
        day = local_day(event.ts, self.context.tz)
        found = credentials.agreement(event.institution_id, day)
        agreement = found.agreement
        if agreement is None:
            assert found.reason is not None
            return [self._finding(event, found.reason, found.nearest, _WHY[found.reason])]
        if not self.settings.check_scope:
            return []
        service = service_of(event)
        if service not in agreement.services:
            why = f"bills {service} care, which its {agreement.type} agreement does not cover"
            return [self._finding(event, "service_out_of_scope", agreement, why)]
        body = event.body
        if isinstance(body, Claim):
            allowed = agreement.categories
            lines = claim_lines(body.items, lambda item: item.category not in allowed)
            if lines:
                outside = sorted({body.items[index].category for index, _, _ in lines})
                why = (
                    f"bills {', '.join(outside)} items, which its {agreement.type} agreement "
                    "does not cover"
                )
                return [self._finding(event, "category_out_of_scope", agreement, why, lines)]
        return []

    def _finding(
        self,
        event: Event,
        reason: str,
        agreement: Agreement | None,
        why: str,
        lines: tuple[Line, ...] = (),
    ) -> Finding:
        body = event.body
        amount: float | None = None
        if lines:
            amount = lines_total(lines)
        elif isinstance(body, Claim):
            amount = round(body.total_amount, 2)
        elif isinstance(body, Dispense):
            amount = dispensing_cost(body)
        tz = self.context.tz
        day = local_day(event.ts, tz)
        commands = (
            CommandSpec(
                action="FREEZE",
                scope=Scope("institution", event.institution_id),
                effective_from=event.occurred_at,
                expires_at=iso(end_of_local_day(event.ts, tz), tz),
                reason=f"institution_not_qualified: {reason} on {day}",
            ),
        )
        return Finding(
            subject=Subject("institution", event.institution_id),
            trigger_id=event.event_id,
            occurred_at=event.occurred_at,
            event_ids=(event.event_id,),
            message=f"Institution {event.institution_id} {why} on {day} ({event.event_type}).",
            details={
                "reason": reason,
                "day": day.isoformat(),
                "event_type": event.event_type,
                "service": service_of(event),
                "agreement_type": None if agreement is None else agreement.type,
                "agreement_period": None if agreement is None else agreement.period(),
                "credentials_version": self.context.reference.credentials.version,
                "reference_version": self.context.reference.version,
            },
            patient_id=event.patient_id,
            institution_id=event.institution_id,
            doctor_id=event.doctor_id,
            department_id=event.department_id,
            commands=commands,
            amount=amount,
            lines=lines,
        )

    def expire(self, state: State, cutoff: float) -> None:
        state.clear()

    def size(self, state: State) -> int:
        return 0
