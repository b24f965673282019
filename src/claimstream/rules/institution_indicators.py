"""institution_indicators (机构运行指标): an institution's monthly figures (issue #15), the
input of the peer comparison (`peer_outlier`) and of the benchmark an institution is shown.

A producer, not a detector: it never alerts. Each closed local calendar month of an institution
(and of its departments, where claims carry a `department_id`) becomes one `InstitutionMonth`
(`model.indicators`), handed to the engine as a finding carrying a `record`; the engine
publishes it (`StepResult.records`: the worker on `claimstream.indicators.v1`, `replay` to the
peer stage and to `--indicators FILE`). It is a rule because it needs exactly what a rule gets:
claims routed by institution, in event-time order (the aligned release, docs/time.md §5), per-key
state in the changelog-backed table, dedup of redelivered claims, lateness, expiry and
all-or-nothing steps; only what comes out differs.

Formulas (docs/rules.md, "Monthly indicators"), over the month's claims of the institution (or
department): visits = outpatient and online claims, stays = inpatient claims;
cost_per_visit = their `total_amount` / visits; cost_per_stay = inpatient `total_amount` /
stays; drug_share, exam_lab_share, materials_share = the amount (quantity x unit price) of drug,
exam + lab, material items / the amount of all items; drg_cost_index = `total_amount` /
`drg_standard_cost` over the stays with a DRG code and a positive standard cost (drg_stays);
complication_rate = drg_stays whose DRG code ends in 1 or 3 (CHS-DRG: with severe / general
complications) / drg_stays. An indicator whose denominator is zero is absent.

When a month closes: once no claim of it can still be accepted, i.e. when the cutoff the engine
gives the rule's timer (`Rule.due`) has passed the month's end: the institution's latest claim
less the allowed lateness L on its own steps, or the stream's watermark less L and the idle grace
at an idle-key sweep (so the month of an institution that then goes quiet closes too, about a day
later). Claims are released to institution rules in event-time order, so the figures are final
and the same whatever the arrival order. A claim of a month already closed (possible only for
one arriving more than L + grace behind the stream, which the worker treats as lost anyway) is
ignored and counted in the month's nothing: the record is never re-opened.

Peer group: the registry's level and region ("level:region", the level alone without a region),
else the level the claim declares (`ReferenceData.peer_group`); the latest claim of the month
that has one decides; "unknown" when none does (published, never compared).

State per institution: {"months": {"YYYY-MM": {"peer": group, "all": sums,
"dep": {department: sums}}}, "done": the latest closed month, "id": the institution, "next":
when the oldest open month ends}, sums a tuple of `_SUMS` numbers, replaced on each claim (so
the engine's undo copy is a few dict copies, not a serialisation; measured in the commit).
Kept: the open months (one, two around a month's turn) and `done`, cleared a month after it
closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from operator import add
from typing import Any, ClassVar

from claimstream.model.config import REGULATION, OnCheck, RuleSettings
from claimstream.model.events import Claim, Event
from claimstream.model.indicators import Figures, InstitutionMonth
from claimstream.model.outputs import Severity, Subject
from claimstream.model.timefmt import DAY, iso
from claimstream.rules.base import Finding, Rule, RuleContext, State
from claimstream.rules.institution_cost_jump import _month_end, _month_start

#: a month's sums, by position (a tuple, replaced; a list once read back from a changelog)
(
    VISITS,
    STAYS,
    DRG_STAYS,
    COMPLICATED,
    VISIT_AMOUNT,
    STAY_AMOUNT,
    TOTAL,
    FUND,
    ITEMS,
    DRUGS,
    EXAM_LAB,
    MATERIALS,
    DRG_AMOUNT,
    DRG_STANDARD,
) = range(14)
_SUMS = 14
Sums = tuple[Any, ...] | list[Any]
_ZERO: tuple[Any, ...] = (0,) * _SUMS
#: the peer group of an institution neither the registry nor its claims grade
UNKNOWN_GROUP = "unknown"
#: the last digits of a CHS-DRG code that mark complications (1 severe, 3 general)
_COMPLICATION_DIGITS = frozenset("13")


@dataclass(frozen=True, slots=True)
class InstitutionIndicatorsSettings(RuleSettings):
    """No thresholds: what it computes is fixed by the formulas; `enabled=false` stops the
    figures (and so the peer comparison). `department_figures=false` leaves departments out."""

    severity: Severity = "info"
    issue_commands: bool = False
    legal_basis: str = REGULATION
    behaviour: str = "机构运行指标"
    on_check: OnCheck = "warn"
    department_figures: bool = True


class InstitutionIndicators(Rule[InstitutionIndicatorsSettings]):
    name: ClassVar[str] = "institution_indicators"
    key_kind = "institution"
    event_types = frozenset({"claim"})
    Settings = InstitutionIndicatorsSettings
    timers = True

    def __init__(self, settings: InstitutionIndicatorsSettings, context: RuleContext) -> None:
        super().__init__(settings, context)
        self._last: tuple[float, float, str] = (0.0, 0.0, "")  # start, end, label of a month

    def _month(self, ts: float) -> str:
        start, end, label = self._last
        if start <= ts < end:
            return label
        local = datetime.fromtimestamp(ts, self.context.tz)
        label = f"{local.year:04d}-{local.month:02d}"
        self._last = (_month_start(label, self.context), _month_end(label, self.context), label)
        return label

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Claim)
        label = self._month(event.ts)
        done = state.get("done")
        if done is not None and label <= done:
            return []  # its month is closed and published: never re-opened
        state["id"] = event.institution_id  # `due` is asked without the key
        months: dict[str, Any] = state.setdefault("months", {})
        month = months.get(label)
        if month is None:
            month = months[label] = {"peer": None, "all": _ZERO, "dep": {}}
            end = _month_end(label, self.context)
            pending = state.get("next")
            state["next"] = end if pending is None else min(pending, end)
        group = self.context.reference.peer_group(event.institution_id, body.institution_level)
        if group is not None:
            month["peer"] = group
        delta = _delta(body)
        month["all"] = tuple(map(add, month["all"], delta))
        department = event.department_id
        if department is not None and self.settings.department_figures:
            departments: dict[str, Sums] = month["dep"]
            departments[department] = tuple(map(add, departments.get(department, _ZERO), delta))
        return []

    def due(self, state: State, cutoff: float) -> list[Finding]:
        pending = state.get("next")
        if pending is None or pending > cutoff:
            return []  # the common case: the oldest open month has not ended yet
        months: dict[str, Any] = state["months"]
        findings = []
        for label in sorted(months):
            end = _month_end(label, self.context)
            if end > cutoff:
                break
            month = months.pop(label)
            state["done"] = label
            findings.append(self._closed(state["id"], label, end, month))
        if months:
            state["next"] = _month_end(min(months), self.context)
        else:
            del state["months"], state["next"]
        return findings

    def _closed(
        self, institution_id: str, label: str, end: float, month: dict[str, Any]
    ) -> Finding:
        record = InstitutionMonth(
            institution_id=institution_id,
            peer_group=month["peer"] or UNKNOWN_GROUP,
            month=label,
            figures=figures(month["all"]),
            departments={d: figures(s) for d, s in sorted(month["dep"].items())},
        )
        return Finding(
            subject=Subject("institution", institution_id),
            trigger_id=record.record_id,
            occurred_at=iso(end, self.context.tz),
            event_ids=(),
            message=f"Institution {institution_id}'s figures of {label}.",
            details={},
            institution_id=institution_id,
            record=record,
        )

    def expire(self, state: State, cutoff: float) -> None:
        done = state.get("done")
        if (
            done is not None
            and not state.get("months")
            and _month_end(done, self.context) + 31 * DAY < cutoff
        ):
            state.clear()  # nothing open, and no claim of `done` can arrive any more

    def size(self, state: State) -> int:
        return len(state.get("months", ()))


def _delta(claim: Claim) -> tuple[Any, ...]:
    """What one claim adds to a month's sums (in `_SUMS` order)."""
    total = claim.total_amount
    visits = stays = drg_stays = complicated = 0
    visit_amount = stay_amount = drg_amount = drg_standard = 0.0
    if claim.visit_type == "inpatient":
        stays, stay_amount = 1, total
        standard = claim.drg_standard_cost
        code = claim.drg_code
        if code and standard is not None and standard > 0:
            drg_stays, drg_amount, drg_standard = 1, total, standard
            complicated = 1 if code[-1] in _COMPLICATION_DIGITS else 0
    else:
        visits, visit_amount = 1, total
    items = drugs = exam_lab = materials = 0.0
    for item in claim.items:
        amount = item.quantity * item.unit_price
        items += amount
        category = item.category
        if category == "drug":
            drugs += amount
        elif category == "exam" or category == "lab":
            exam_lab += amount
        elif category == "material":
            materials += amount
    return (
        visits,
        stays,
        drg_stays,
        complicated,
        visit_amount,
        stay_amount,
        total,
        claim.fund_amount,
        items,
        drugs,
        exam_lab,
        materials,
        drg_amount,
        drg_standard,
    )


def figures(sums: Sums) -> Figures:
    """A month's sums as `Figures`, the indicators by the formulas above (rounded: yuan to the
    fen, ratios to 6 places, so a record reads the same wherever it was computed)."""
    indicators: dict[str, float] = {}
    if sums[VISITS]:
        indicators["cost_per_visit"] = round(sums[VISIT_AMOUNT] / sums[VISITS], 2)
    if sums[STAYS]:
        indicators["cost_per_stay"] = round(sums[STAY_AMOUNT] / sums[STAYS], 2)
    if sums[ITEMS] > 0:
        indicators["drug_share"] = round(sums[DRUGS] / sums[ITEMS], 6)
        indicators["exam_lab_share"] = round(sums[EXAM_LAB] / sums[ITEMS], 6)
        indicators["materials_share"] = round(sums[MATERIALS] / sums[ITEMS], 6)
    if sums[DRG_STAYS] and sums[DRG_STANDARD] > 0:
        indicators["drg_cost_index"] = round(sums[DRG_AMOUNT] / sums[DRG_STANDARD], 6)
        indicators["complication_rate"] = round(sums[COMPLICATED] / sums[DRG_STAYS], 6)
    return Figures(
        visits=sums[VISITS],
        stays=sums[STAYS],
        claims=sums[VISITS] + sums[STAYS],
        drg_stays=sums[DRG_STAYS],
        total_amount=round(sums[TOTAL], 2),
        fund_amount=round(sums[FUND], 2),
        indicators=indicators,
    )
