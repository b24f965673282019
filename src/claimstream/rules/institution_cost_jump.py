"""institution_cost_jump (次均费用异常增长): an institution's average settled amount per visit in
a calendar month is more than `max_increase` (30 %) above the previous month's.

Months are local calendar months (the config's time zone) of event time; every claim is one
visit and its `amount` field (`total_amount` by default, or `fund_amount`) its settled amount.
"More than" is strict: 30 % exactly does not alert, 30.5 % does.

When a month closes. "An event of the institution in a later month" is not enough on its own:
with an allowed lateness L, claims of month M may still arrive after the first claim of M+1,
as long as they are within L of the institution's latest event. So month M closes when a claim
of the institution at or after end(M) + L arrives: from then on the engine rejects any claim
of M as late, so M's figures are final, and the alert is the same whatever the arrival order.
The price is that the comparison waits up to L into the next month, and a month after which
the institution sends nothing more is never evaluated. The alert's `occurred_at` is the end of
the month, its id derives from institution and month, its evidence is the month's
`evidence_claims` highest claims. A month with fewer than `min_visits` visits, or after one,
is not compared. Subject: the institution. Severity warning; alerts only.

Amount: what the month billed above the allowed growth, `visits × (average − previous average
× (1 + max_increase))` (in the `amount` field's terms: total or fund amount). Default legal
basis: 《医疗保障基金使用监督管理条例》, cited without an article: a rise in cost per visit is a
cost-control indicator of the service agreement (服务协议), not a violation an article names.
A month's aggregate is no pre-settlement decision about one claim: `on_check` warn.

Claims are summed, not stored, so a redelivered claim must be caught before it gets here; the
engine's per-key dedup does that (a repeat older than its retention is late, hence rejected).

State per institution: {"watermark": latest claim ts, "months": {"YYYY-MM": stats},
"closed": ["YYYY-MM"...], "next_close": when the oldest open month closes (None: none open)},
stats = [visits, amount, top] (a list, summed in place), top = [[amount, event_id], ...]
highest first. Kept: the month holding the cutoff and the one before it (its comparison base).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from claimstream.model.config import REGULATION, OnCheck, RuleSettings, positive
from claimstream.model.events import Claim, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.model.timefmt import iso
from claimstream.rules.base import Finding, Rule, RuleContext, State

# a month's stats, and one of its top claims
VISITS, AMOUNT, TOP = range(3)
TOP_AMOUNT, TOP_EVENT_ID = range(2)


@dataclass(frozen=True, slots=True)
class InstitutionCostJumpSettings(RuleSettings):
    severity: Severity = "warning"
    issue_commands: bool = False
    legal_basis: str = REGULATION
    behaviour: str = "次均费用异常增长"
    on_check: OnCheck = "warn"
    max_increase: float = 0.30
    min_visits: int = 1
    amount: Literal["total_amount", "fund_amount"] = "total_amount"
    evidence_claims: int = 5

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("max_increase", self.max_increase)
        positive("min_visits", self.min_visits)
        positive("evidence_claims", self.evidence_claims)


class InstitutionCostJump(Rule[InstitutionCostJumpSettings]):
    name: ClassVar[str] = "institution_cost_jump"
    key_kind = "institution"
    event_types = frozenset({"claim"})
    Settings = InstitutionCostJumpSettings
    state_version = 2  # 2: named state keys ("months", "watermark", ... were "m", "wm", ...)

    def __init__(self, settings: InstitutionCostJumpSettings, context: RuleContext) -> None:
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
        amount = body.total_amount if self.settings.amount == "total_amount" else body.fund_amount
        months: dict[str, list[Any]] = state.setdefault("months", {})
        label = self._month(event.ts)
        stats = months.get(label)
        if stats is None:
            stats = months[label] = [0, 0.0, []]
            closes = _month_end(label, self.context) + self.context.lateness
            pending = state.get("next_close")
            state["next_close"] = closes if pending is None else min(pending, closes)
        stats[VISITS] += 1
        stats[AMOUNT] += amount
        top: list[list[Any]] = stats[TOP]
        if len(top) < self.settings.evidence_claims or amount > top[-1][TOP_AMOUNT]:
            top.append([amount, event.event_id])
            top.sort(key=lambda t: (-t[TOP_AMOUNT], t[TOP_EVENT_ID]))
            del top[self.settings.evidence_claims :]
        wm = state.get("watermark")
        if wm is None or event.ts > wm:
            state["watermark"] = wm = event.ts
        due_at = state.get("next_close")
        if due_at is None or wm < due_at:
            return []  # no month is due to close: the common case, one comparison
        done: list[str] = state.setdefault("closed", [])
        findings = []
        due = None
        for month in sorted(months):
            if month in done:
                continue
            closes = _month_end(month, self.context) + self.context.lateness
            if closes > wm:
                due = closes if due is None else min(due, closes)
                continue
            done.append(month)
            finding = self._compare(event.institution_id, months, month)
            if finding is not None:
                findings.append(finding)
        state["next_close"] = due
        return findings

    def _compare(
        self, institution_id: str, months: dict[str, list[Any]], month: str
    ) -> Finding | None:
        previous = _previous(month)
        if previous not in months:
            return None
        visits, total, top = months[month]
        prev_visits, prev_total, _ = months[previous]
        if min(visits, prev_visits) < self.settings.min_visits or prev_total <= 0:
            return None
        average, prev_average = total / visits, prev_total / prev_visits
        increase = average / prev_average - 1
        if round(increase, 9) <= self.settings.max_increase:
            return None
        end = _month_end(month, self.context)
        return Finding(
            subject=Subject("institution", institution_id),
            trigger_id=f"{institution_id}/{month}",
            occurred_at=iso(end, self.context.tz),
            event_ids=tuple(t[TOP_EVENT_ID] for t in top),
            message=(
                f"Institution {institution_id}'s average settled amount per visit rose "
                f"{increase:.0%} from {prev_average:.2f} in {previous} to {average:.2f} in "
                f"{month} (threshold {self.settings.max_increase:.0%})."
            ),
            details={
                "month": month,
                "previous_month": previous,
                "average": round(average, 2),
                "previous_average": round(prev_average, 2),
                "increase": round(increase, 4),
                "max_increase": self.settings.max_increase,
                "visits": visits,
                "previous_visits": prev_visits,
                "amount_field": self.settings.amount,
                "evidence": "highest claims of the month",
            },
            institution_id=institution_id,
            amount=round(total - prev_average * (1 + self.settings.max_increase) * visits, 2),
        )

    def expire(self, state: State, cutoff: float) -> None:
        # Keep the month holding the cutoff and the one before it (the next comparison's base).
        keep_from = _previous(self._month(cutoff))
        months = {m: s for m, s in state.get("months", {}).items() if m >= keep_from}
        done = [m for m in state.get("closed", []) if m in months]
        wm, due = state.get("watermark"), state.get("next_close")
        state.clear()
        if months:
            state.update(months=months, watermark=wm, next_close=due)
        if done:
            state["closed"] = done

    def size(self, state: State) -> int:
        return len(state.get("months", ()))


def _previous(label: str) -> str:
    year, month = int(label[:4]), int(label[5:])
    return f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"


def _month_start(label: str, context: RuleContext) -> float:
    return _local_first(int(label[:4]), int(label[5:]), context.tz)


def _month_end(label: str, context: RuleContext) -> float:
    year, month = int(label[:4]), int(label[5:])
    return _local_first(year + month // 12, month % 12 + 1, context.tz)


@functools.lru_cache(maxsize=4096)
def _local_first(year: int, month: int, tz: ZoneInfo) -> float:
    """Local midnight starting the 1st of a month (cached: it is needed on every claim)."""
    return datetime(year, month, 1, tzinfo=tz).timestamp()
