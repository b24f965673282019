"""missed_refill (慢病未按时取药): a chronic patient whose supply ended `grace_days` (90) ago
with no refill of the same drug class: a notice for his doctor (the seed case: a patient who
has not collected his antihypertensive for three months; the family doctor is told).

A dispensing is chronic when the event says `chronic: true` or the reference data classes its
drug as `chronic`. Its *group* is what a refill must match: each class of `refill_classes`
(antihypertensive, antidiabetic, lipid_lowering by default: classes of `drug_classes.csv`,
so an ARB refills a calcium-channel blocker) the drug belongs to, else the drug code itself.
Its deadline is the end of its supply (`days_supply`, at most `max_tracked_supply_days`) plus
`grace_days`: a 30-day supply dispensed on day 0 is due on day 120. Any later dispensing of the
group (chronic or not, at any institution) dated before the deadline is a refill; one exactly
at the deadline is too late. A refill is itself chronic, so it starts a timer of its own: the
notice is for the last supply not followed.

The deadline is an event-time timer (`Rule.timers`, `due`): the notice is made once no
dispensing of the patient dated before it can still be accepted, when the patient's dispensing
watermark less the allowed lateness reaches it, or, for a patient with no later dispensing at
all (the usual case here), at the idle-key sweep, against the stream's watermark less the
lateness and `idle_expiry_grace_hours`: about a day after the deadline in a live stream, at the
end of a `replay`. One notice per (dispensing, group), dated at the deadline, its id a hash of
the rule, the patient, the dispensing and the group.

The notice: severity `info`, no command, no amount (nothing was billed). The subject is the
patient; `doctor_id` is the doctor of the dispensing not followed (the contract names no
family doctor: the last prescriber stands for him), also in `details.notify_doctor_id`. Not a
violation of the fund's regulation: the default legal basis cites it without an article, and
the national guidance on family doctor contract services (continuous management of chronic
patients), without a document number.
Off by default: it is a care notice, not fund supervision, and it sends a patient's
dispensing history to a doctor, which a region decides (its 家庭医生签约 contract covers it).

State per patient: {group: {"a": [row...], "b": [row...]}}: `a` the pending timers (kept until
they fire or a refill resolves them, never expired unfired, so a restart keeps them: they are
state), `b` every dispensing of the group for the allowed lateness, so an earlier dispensing
arriving out of order is resolved by a refill that came before it. Both sorted by
(ts, event_id); a redelivered dispensing is already held and changes nothing. The deadline is
kept in the row: a change of `grace_days` applies to the dispensings that follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import REGULATION, OnCheck, RuleSettings, positive
from claimstream.model.events import Dispense, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.model.timefmt import DAY, iso
from claimstream.rules.base import Finding, Rule, RuleContext, State
from claimstream.rules.kit.rows import Row, Rows, insert, keep_from, order

# a row: one dispensing of the group
(
    TS,
    EVENT_ID,
    OCCURRED_AT,
    DRUG_CODE,
    DAYS_SUPPLY,
    DEADLINE,  # the end of its supply plus grace_days, when it was dispensed
    PATIENT_ID,  # `due` is given the state, not the key
    INSTITUTION_ID,
    DOCTOR_ID,
    DEPARTMENT_ID,
) = range(10)

#: not a violation: the regulation without an article, and the guidance the notice serves
LEGAL_BASIS = (
    f"{REGULATION}；"
    "国家卫生健康委等《关于推进家庭医生签约服务高质量发展的指导意见》（慢性病患者连续性管理）"
)


@dataclass(frozen=True, slots=True)
class MissedRefillSettings(RuleSettings):
    enabled: bool = False
    severity: Severity = "info"
    issue_commands: bool = False
    legal_basis: str = LEGAL_BASIS
    behaviour: str = "慢病未按时取药"
    on_check: OnCheck = "warn"
    #: days after the end of a supply without a refill before the doctor is told
    grace_days: float = 90.0
    #: classes of drug_classes.csv within which any drug refills any other (an empty entry
    #: is ignored: `refill_classes=` leaves every drug refilled only by itself)
    refill_classes: tuple[str, ...] = ("antihypertensive", "antidiabetic", "lipid_lowering")
    #: longest supply the rule tracks; bounds a timer against an absurd days_supply
    max_tracked_supply_days: int = 365

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("grace_days", self.grace_days)
        positive("max_tracked_supply_days", self.max_tracked_supply_days)


class MissedRefill(Rule[MissedRefillSettings]):
    name: ClassVar[str] = "missed_refill"
    key_kind = "patient"
    event_types = frozenset({"dispense"})
    Settings = MissedRefillSettings
    timers = True

    def __init__(self, settings: MissedRefillSettings, context: RuleContext) -> None:
        super().__init__(settings, context)
        #: (drug_code, atc_code) -> (groups, chronic): a few thousand drugs at most
        self._cache: dict[tuple[str, str | None], tuple[tuple[str, ...], bool]] = {}

    def _groups(self, body: Dispense) -> tuple[tuple[str, ...], bool]:
        """The dispensing's groups, and whether its drug is chronic by its classes."""
        drug = (body.drug_code, body.atc_code)
        found = self._cache.get(drug)
        if found is None:
            classes = self.context.reference.drug_classes(*drug)
            groups = tuple(f"class:{c}" for c in self.settings.refill_classes if c in classes)
            found = self._cache[drug] = (
                groups or (f"drug:{body.drug_code}",),
                "chronic" in classes,
            )
        return found

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Dispense)
        groups, chronic = self._groups(body)
        chronic = chronic or body.chronic
        supply = min(body.days_supply, self.settings.max_tracked_supply_days)
        row = (
            event.ts,
            event.event_id,
            event.occurred_at,
            body.drug_code,
            body.days_supply,
            event.ts + (supply + self.settings.grace_days) * DAY,
            event.patient_id,
            event.institution_id,
            event.doctor_id,
            event.department_id,
        )
        for group in groups:
            held: State = state.setdefault(group, {})
            inserted = insert(held.get("b", ()), row)
            if inserted is None:
                continue  # a redelivery
            held["b"] = inserted[0]
            # as a refill: it resolves the pending dispensings before it it is in time for
            pending: Rows = tuple(a for a in held.get("a", ()) if not _refills(a, row))
            # as a chronic dispensing: a timer, unless a refill already held resolves it
            if chronic and not any(_refills(row, b) for b in held["b"]):
                added = insert(pending, row)
                if added is not None:
                    pending = added[0]
            _keep(held, "a", pending)
        return []  # the notices are made by `due`, once a deadline has passed for good

    def due(self, state: State, cutoff: float) -> list[Finding]:
        findings = []
        for group, held in state.items():
            pending = held.get("a", ())
            if not pending or all(a[DEADLINE] > cutoff for a in pending):
                continue
            findings += [self._notice(group, a) for a in pending if a[DEADLINE] <= cutoff]
            _keep(held, "a", tuple(a for a in pending if a[DEADLINE] > cutoff))
        return findings

    def _notice(self, group: str, a: Row) -> Finding:
        tz = self.context.tz
        deadline = a[DEADLINE]
        supply_end = deadline - self.settings.grace_days * DAY
        kind, _, what = group.partition(":")
        refill = f"{what} drug" if kind == "class" else f"drug {what}"
        doctor = a[DOCTOR_ID]
        patient_id = a[PATIENT_ID]
        return Finding(
            subject=Subject("patient", patient_id),
            trigger_id=f"{a[EVENT_ID]}/{group}",
            occurred_at=iso(deadline, tz),
            event_ids=(a[EVENT_ID],),
            message=(
                f"Patient {patient_id} has had no {refill} since {a[OCCURRED_AT]}: the "
                f"{a[DAYS_SUPPLY]}-day supply of {a[DRUG_CODE]} ended {iso(supply_end, tz)}, "
                f"{self.settings.grace_days:g} days ago"
                + (f"; for doctor {doctor}." if doctor else ".")
            ),
            details={
                "group": group,
                "drug_code": a[DRUG_CODE],
                "days_supply": a[DAYS_SUPPLY],
                "dispensed_at": a[OCCURRED_AT],
                "supply_ended_at": iso(supply_end, tz),
                "deadline": iso(deadline, tz),
                "grace_days": self.settings.grace_days,
                "notify_doctor_id": doctor,
            },
            patient_id=patient_id,
            institution_id=a[INSTITUTION_ID],
            doctor_id=doctor,
            department_id=a[DEPARTMENT_ID],
        )

    def expire(self, state: State, cutoff: float) -> None:
        # timers leave only through `due` or a refill: never expired unfired
        for group, held in list(state.items()):
            _keep(held, "b", keep_from(held.get("b", ()), cutoff))
            if not held:
                del state[group]

    def size(self, state: State) -> int:
        return sum(len(held.get("a", ())) + len(held.get("b", ())) for held in state.values())


def _refills(a: Row, b: Row) -> bool:
    """Whether `b` refills `a`: after it in (time, id) order and before its deadline."""
    return order(a) < order(b) and b[TS] < a[DEADLINE]


def _keep(held: State, side: str, rows: Rows) -> None:
    if rows:
        held[side] = rows
    else:
        held.pop(side, None)
