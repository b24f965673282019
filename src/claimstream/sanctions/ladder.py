"""The escalation engine: alerts, verdicts, manual actions and event time in; decisions out.

One state per subject (see `claimstream.sanctions.state`); every call takes that state, the
input and `now` (event time: the stream's watermark, never the wall clock), mutates the state
and returns the decisions, so the stream can key it by subject like the detection engine.

The ladder, per subject, for each alert at or above `min_severity` (a "violation"):

1. SUSPEND (no expiry; only a person lifts it) when the alert is `critical`, or the suspicious
   amount of the subject's violations in the last 90 days exceeds the threshold, or the
   subject's freezes in the last 90 days reach 3 (counting the one this alert causes).
2. Otherwise, for a rule that acts at once (readmission_24h, split_hospitalization,
   trace_code_reuse) on the institution it froze: the rule's own same-day FREEZE is recorded
   and counted, not doubled.
3. Otherwise, another violation within 30 days (either side, so arrival order of the pair does
   not matter) makes it a repeat: FREEZE the subject's settlement until the end of the local
   day of the violation (unless a freeze already covers that day).
4. Otherwise a warning (first violation in the look-back period, or an isolated one).

A case's decision (`on_case_decision`, docs/sanctions.md "Case decisions") moves the case's
subject too: confirmed (or partly confirmed) as intentional fraud, one step up from where it
stands at the decision (a FREEZE for the day, or a SUSPEND if already frozen), or straight to
SUSPEND (`intentional_fraud = "suspend"`); as an operational error, a warning. The decision's
verdicts on the case's alerts arrive as reviews (`on_verdict`).

Counts for SUSPEND start again after a person lifts a suspension, and a freeze lifted on appeal
or by a reviewer, or an alert found false positive, no longer counts. A freeze ends by expiry
(`tick` emits the UNFREEZE once no other freeze of the subject is in force, and never while it
is suspended), by appeal or by a reviewer (`on_unfreeze`). Decisions are taken in the order
the subject's inputs arrive (one partition), and every id is a hash of what the decision is
about, so a replay of the same inputs gives the same decisions and ids, and a repeated input
changes nothing.
"""

from __future__ import annotations

from typing import Any

from claimstream.model.outputs import Alert, Command, Scope, Subject, stable_id
from claimstream.model.timefmt import DAY, end_of_local_day, iso
from claimstream.sanctions import grades, points
from claimstream.sanctions.actions import CaseDecision, ManualUnfreeze, Remediation, Verdict
from claimstream.sanctions.codec import to_ts
from claimstream.sanctions.decisions import Decision, WarningIssued
from claimstream.sanctions.settings import SanctionSettings
from claimstream.sanctions.state import (
    ALERTS,
    AMOUNT,
    ENDED,
    FROM,
    REMEDIATED,
    STATUS,
    TS,
    UNTIL,
    State,
    active_freezes,
    describe,
    new_state,
    subject_of,
)
from claimstream.sanctions.subjects import amount_of, severity_at_least, subjects_of


class Escalation:
    """Applies `SanctionSettings` to one subject's state at a time."""

    def __init__(self, settings: SanctionSettings | None = None) -> None:
        self.settings = settings or SanctionSettings()
        self.tz = self.settings.tz
        ladder = self.settings.ladder
        self._window = ladder.suspend_window_days * DAY
        self._keep = {
            "patient": ladder.horizon_days * DAY,
            "doctor": ladder.horizon_days * DAY,
            "institution": max(ladder.horizon_days, self.settings.grade.horizon_days) * DAY,
        }

    new_state = staticmethod(new_state)

    def keep_seconds(self, kind: str) -> float:
        """How long (event time) a subject of `kind` keeps a violation: the ladder's horizon,
        or the credit grade's for an institution."""
        return self._keep[kind]

    def status(self, state: State, now: float) -> dict[str, Any]:
        """The subject's standing at `now` (level, freeze, suspension, grade, points)."""
        return describe(state, now, self.tz, self.settings.ladder.lookback_days * DAY)

    def subjects(self, alert: Alert) -> list[Subject]:
        """The subjects (stream keys) an alert must be sent to."""
        return subjects_of(alert, self.settings.ladder.kinds)

    # -- inputs -------------------------------------------------------------------------------

    def on_alert(self, state: State, alert: Alert, now: float) -> list[Decision]:
        ts = to_ts(alert.occurred_at)
        out = self.tick(state, max(now, ts))
        ladder = self.settings.ladder
        if alert.alert_id in state["a"] or not severity_at_least(
            alert.severity, ladder.min_severity
        ):
            return out
        if ts <= state["wm"] - self._keep[state["kind"]]:
            return out  # older than anything the ladder or the grade looks at
        amount = amount_of(alert, ladder.amount_fields)
        state["a"][alert.alert_id] = [ts, alert.severity, amount, alert.rule, "open", False]
        if state["s"] is None:
            out += self._climb(state, alert, ts)
        if state["kind"] == "institution":
            out += self._regrade(state, alert.alert_id, ts)
        return out

    def on_verdict(
        self, state: State, alert: Alert, verdict: Verdict, now: float
    ) -> list[Decision]:
        """A review of `alert`: updates counts, the doctor's points and the institution's grade."""
        at = to_ts(verdict.at)
        out = self.tick(state, max(now, at))
        row = state["a"].get(alert.alert_id)
        changed = row is not None and row[STATUS] != verdict.verdict
        if row is not None:
            row[STATUS] = verdict.verdict
        if state["kind"] == "doctor" and alert.doctor_id == state["id"]:
            out += self._points(state, alert, verdict, at)
        if changed and state["kind"] == "institution":
            out += self._regrade(state, f"{alert.alert_id}:{verdict.verdict}", at)
        return out

    def on_remediation(self, state: State, remediation: Remediation, now: float) -> list[Decision]:
        at = to_ts(remediation.at)
        out = self.tick(state, max(now, at))
        row = state["a"].get(remediation.alert_id)
        if remediation.action_id in state["m"] or row is None or row[REMEDIATED]:
            return out
        state["m"][remediation.action_id] = at
        row[REMEDIATED] = True
        if state["kind"] == "institution":
            out += self._regrade(state, remediation.action_id, at)
        return out

    def on_unfreeze(self, state: State, action: ManualUnfreeze, now: float) -> list[Decision]:
        """A person lifts the scope: ends its freezes and any suspension; always one UNFREEZE."""
        at = to_ts(action.at)
        out = self.tick(state, max(now, at))
        if action.action_id in state["m"]:
            return out
        state["m"][action.action_id] = at
        scope = action.scope
        lifted: list[str] = []
        if scope.drug_code is None and (scope.kind, scope.id) == (state["kind"], state["id"]):
            for freeze in active_freezes(state).values():
                freeze[ENDED] = action.ground
                lifted += freeze[ALERTS]
            if state["s"] is not None:
                state["s"] = None
                state["lift"] = at
        command_id = stable_id("cmd", "UNFREEZE", scope.key(), "manual", action.action_id)
        reason = f"lifted ({action.ground}) by {action.by}: {action.reason}"
        out.append(
            Command(command_id, "UNFREEZE", scope, action.at, None, reason, "manual", tuple(lifted))
        )
        return out

    def on_case_decision(
        self, state: State, decision: CaseDecision, alert_ids: tuple[str, ...], now: float
    ) -> list[Decision]:
        """A case about this subject was decided; `alert_ids` are the case's alerts.

        Not confirmed: nothing here (its alerts' false-positive verdicts take their weight
        off). Confirmed or partly confirmed as an operational error: a warning naming the
        alerts it confirmed. As intentional fraud: one step up at the decision's time (the
        subject's event time if later): a FREEZE until the end of that local day, or a
        SUSPEND if a freeze is in force then; or a SUSPEND at once when `intentional_fraud`
        is "suspend"; nothing more if it is suspended already. A case is decided once: a
        repeated decision (its `decision_id` is remembered like a manual action's) changes
        nothing.
        """
        at = to_ts(decision.at)
        out = self.tick(state, max(now, at))
        if decision.outcome == "not_confirmed" or decision.decision_id in state["m"]:
            return out
        state["m"][decision.decision_id] = at
        ts = state["wm"]
        confirmed = tuple(a for a in alert_ids if decision.verdict_for(a) != "false_positive")
        subject = subject_of(state)
        what = f"case {decision.outcome.replace('_', ' ')}"
        if decision.nature != "intentional_fraud":
            return [
                *out,
                WarningIssued(
                    warning_id=stable_id("wrn", f"{subject.kind}:{subject.id}", decision.case_id),
                    subject=subject,
                    alert_ids=confirmed,
                    occurred_at=iso(ts, self.tz),
                    reason=f"{what} as an operational error: a warning, no step up the ladder",
                ),
            ]
        if state["s"] is not None:
            return out
        trigger = decision.decision_id
        in_force = [f for f in active_freezes(state).values() if f[FROM] <= ts < f[UNTIL]]
        if self.settings.ladder.intentional_fraud == "suspend" or in_force:
            why = f"{what} as intentional fraud" + (" while frozen" if in_force else "")
            return [*out, self._suspend(state, "fraud", trigger, ts, confirmed, why)]
        day_end = end_of_local_day(ts, self.tz)
        scope = Scope(subject.kind, subject.id)
        command = Command(
            command_id=stable_id("cmd", "FREEZE", scope.key(), "case", decision.case_id),
            action="FREEZE",
            scope=scope,
            effective_from=iso(ts, self.tz),
            expires_at=iso(day_end, self.tz),
            reason=(
                f"{what} as intentional fraud: settlement of {scope.key()} frozen for the day "
                "(one step up the ladder)"
            ),
            rule="case_decision",
            alert_ids=confirmed,
        )
        state["f"][command.command_id] = [ts, day_end, "ladder", None, list(confirmed)]
        return [*out, command, *self._suspend_if_frozen_too_often(state, trigger, ts)]

    def tick(self, state: State, now: float) -> list[Decision]:
        """Advance the subject to event time `now`: expire freezes, forget what aged out."""
        if state["wm"] is not None and now < state["wm"]:
            now = state["wm"]
        state["wm"] = now
        out = self._expire_freezes(state, now)
        out += self._forget(state, now)
        return out

    # -- the ladder ---------------------------------------------------------------------------

    def _climb(self, state: State, alert: Alert, ts: float) -> list[Decision]:
        ladder = self.settings.ladder
        subject = subject_of(state)
        counted = self._counted(state)
        if alert.severity == "critical" and ladder.suspend_on_critical:
            return [self._suspend(state, "critical", alert.alert_id, ts, (alert.alert_id,))]
        amount = sum(row[AMOUNT] for row in counted.values())
        if amount > ladder.suspend_amount_threshold:
            why = f"suspicious amount {amount:.2f} in {ladder.suspend_window_days:g} days"
            return [self._suspend(state, "amount", alert.alert_id, ts, tuple(counted), why)]
        day_end = end_of_local_day(ts, self.tz)
        if (
            alert.rule in ladder.immediate_rules
            and subject.kind == "institution"
            and alert.institution_id == subject.id
        ):
            rule_freeze = stable_id(
                "cmd", "FREEZE", Scope("institution", subject.id).key(), alert.alert_id
            )
            state["f"][rule_freeze] = [ts, day_end, "rule", None, [alert.alert_id]]
            return self._suspend_if_frozen_too_often(state, alert.alert_id, ts)
        others = {
            aid: row
            for aid, row in state["a"].items()
            if aid != alert.alert_id
            and row[STATUS] != "false_positive"
            and abs(row[TS] - ts) <= ladder.lookback_days * DAY
        }
        repeats = [
            aid
            for aid, row in others.items()
            if abs(row[TS] - ts) <= ladder.repeat_window_days * DAY
        ]
        if not repeats:
            return [self._warn(state, alert, len(others), ladder.lookback_days)]
        if day_end <= state["wm"]:
            return [self._warn(state, alert, len(others), ladder.lookback_days, late=True)]
        if any(f[UNTIL] >= day_end for f in active_freezes(state).values()):
            return []  # already frozen through that day
        alert_ids = (*sorted(repeats), alert.alert_id)
        scope = Scope(subject.kind, subject.id)
        command = Command(
            command_id=stable_id("cmd", "FREEZE", scope.key(), "ladder", alert.alert_id),
            action="FREEZE",
            scope=scope,
            effective_from=alert.occurred_at,
            expires_at=iso(day_end, self.tz),
            reason=(
                f"repeat violation within {ladder.repeat_window_days:g} days ({alert.rule}): "
                f"settlement of {scope.key()} frozen for the day"
            ),
            rule="escalation",
            alert_ids=alert_ids,
        )
        state["f"][command.command_id] = [ts, day_end, "ladder", None, list(alert_ids)]
        return [command, *self._suspend_if_frozen_too_often(state, alert.alert_id, ts)]

    def _suspend_if_frozen_too_often(self, state: State, trigger: str, ts: float) -> list[Decision]:
        ladder = self.settings.ladder
        since = max(state["wm"] - self._window, state["lift"] or float("-inf"))
        freezes = [
            f
            for f in state["f"].values()
            if f[FROM] > since and f[ENDED] not in ("appeal", "reviewer")
        ]
        if len(freezes) < ladder.suspend_after_freezes:
            return []
        why = f"{len(freezes)} freezes in {ladder.suspend_window_days:g} days"
        alert_ids = tuple(sorted({a for f in freezes for a in f[ALERTS]}))
        return [self._suspend(state, "freezes", trigger, ts, alert_ids, why)]

    def _counted(self, state: State) -> dict[str, list[Any]]:
        """Violations in the suspension window since the last lift, not found false positive."""
        since = max(state["wm"] - self._window, state["lift"] or float("-inf"))
        return {
            aid: row
            for aid, row in state["a"].items()
            if row[TS] > since and row[STATUS] != "false_positive"
        }

    def _warn(
        self, state: State, alert: Alert, others: int, lookback: float, *, late: bool = False
    ) -> WarningIssued:
        subject = subject_of(state)
        if late:
            reason = f"repeat violation ({alert.rule}) reported after its day ended: no freeze"
        elif others:
            reason = (
                f"violation ({alert.rule}); {others} other(s) in {lookback:g} days, "
                "none within the repeat window"
            )
        else:
            reason = f"first violation in {lookback:g} days ({alert.rule})"
        return WarningIssued(
            warning_id=stable_id("wrn", f"{subject.kind}:{subject.id}", alert.alert_id),
            subject=subject,
            alert_ids=(alert.alert_id,),
            occurred_at=alert.occurred_at,
            reason=reason,
        )

    def _suspend(
        self,
        state: State,
        cause: str,
        trigger: str,
        ts: float,
        alert_ids: tuple[str, ...],
        why: str = "",
    ) -> Command:
        scope = Scope(state["kind"], state["id"])
        command = Command(
            command_id=stable_id("cmd", "SUSPEND", scope.key(), cause, trigger),
            action="SUSPEND",
            scope=scope,
            effective_from=iso(ts, self.tz),
            expires_at=None,
            reason=f"{why or cause}: settlement of {scope.key()} suspended until a person lifts it",
            rule={"points": "doctor_points", "grade": "credit_grade", "fraud": "case_decision"}.get(
                cause, "escalation"
            ),
            alert_ids=alert_ids,
        )
        state["s"] = {"id": command.command_id, "ts": ts, "cause": cause}
        return command

    # -- points and grade ---------------------------------------------------------------------

    def _points(self, state: State, alert: Alert, verdict: Verdict, at: float) -> list[Decision]:
        change = points.apply_verdict(
            state["p"], state["id"], alert, verdict, self.settings.points, self.tz
        )
        if change is None:
            return []
        out: list[Decision] = [change]
        year = str(change.year)
        if change.total >= self.settings.points.suspend_at and year not in state["ps"]:
            state["ps"].append(year)
            if state["s"] is None:
                ids = tuple(sorted(state["p"][year]))
                why = f"{change.total} doctor points in {year}"
                out.append(
                    self._suspend(
                        state, "points", year, max(at, to_ts(alert.occurred_at)), ids, why
                    )
                )
        return out

    def _regrade(self, state: State, trigger: str, ts: float) -> list[Decision]:
        settings = self.settings.grade
        change = grades.regrade(state, settings, self.tz, trigger, ts)
        if change is None:
            return []
        out: list[Decision] = [change]
        if change.new == "D" and settings.suspend_on_d and state["s"] is None:
            why = f"credit grade D (score {change.score:g})"
            out.append(self._suspend(state, "grade", trigger, ts, tuple(sorted(state["a"])), why))
        return out

    # -- time ---------------------------------------------------------------------------------

    def _expire_freezes(self, state: State, now: float) -> list[Decision]:
        ended = {fid: f for fid, f in active_freezes(state).items() if f[UNTIL] <= now}
        if not ended:
            return []
        for freeze in ended.values():
            freeze[ENDED] = "expired"
        if active_freezes(state) or state["s"] is not None:
            return []  # another freeze, or a suspension, still holds the scope
        last_id, last = max(ended.items(), key=lambda item: (item[1][UNTIL], item[0]))
        scope = Scope(state["kind"], state["id"])
        alert_ids = tuple(sorted({a for f in ended.values() for a in f[ALERTS]}))
        return [
            Command(
                command_id=stable_id("cmd", "UNFREEZE", scope.key(), "expiry", last_id),
                action="UNFREEZE",
                scope=scope,
                effective_from=iso(last[UNTIL], self.tz),
                expires_at=None,
                reason=f"freeze of {scope.key()} expired",
                rule="escalation",
                alert_ids=alert_ids,
            )
        ]

    def _forget(self, state: State, now: float) -> list[Decision]:
        out: list[Decision] = []
        if state["kind"] == "institution":  # the grade rises as violations leave the 12 months
            out += grades.age(state, self.settings.grade, self.tz, now)
        keep_from = now - self._keep[state["kind"]]
        for alert_id in [aid for aid, row in state["a"].items() if row[TS] <= keep_from]:
            del state["a"][alert_id]
        since = now - self._window
        for fid in [
            fid for fid, f in state["f"].items() if f[ENDED] is not None and f[FROM] <= since
        ]:
            del state["f"][fid]
        forget_before = now - self.settings.manual_retention_days * DAY
        for action_id in [a for a, at in state["m"].items() if at < forget_before]:
            del state["m"][action_id]
        if state["kind"] == "doctor":
            points.prune(state, now, self.tz)
        return out
