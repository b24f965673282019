"""The peer stage: one peer group's closed institution months, and the peer comparison when a
month closes for the group (issue #15).

The data flow that scales: `institution_indicators` (an institution-keyed rule) emits one
`InstitutionMonth` per institution and closed month; they travel keyed by peer group
(`claimstream.indicators.v1`), and one stage per group keeps the group's last `months_kept`
months and runs `peer_outlier` over them. No process needs every institution in memory: an
institution's processor holds its open months, a group's processor its group. The worker's
agent (`stream/detection/peers.py`) and `replay` (`detection.replay`) drive this same code.

When a group's month closes. An institution's record of month M is published once M is final
for that institution (its own claims past the end of M plus the allowed lateness, or an
idle-key sweep a day later for an institution gone quiet). The group cannot know how many
institutions will still report M, so M closes for the group when the first record of a month
at least `close_lag_months` (1) later arrives: by then every institution active in M has had a
month to report it. The price is latency: a group's comparison of M waits until the first
institution closes M+1 (about the end of M+1 plus the lateness). The alternative considered, an
event-time watermark carried beside the records (close M when the institutions' stage passes the
end of M + lateness + idle grace), alerts about a month sooner but needs a second marker flow
through the new topic; it is the way to go if that month matters. A record of a month already
closed for its group (an institution whose processor lagged a whole month behind another's in a
backlog) is dropped and counted (`late`): the group's comparison of that month is not redone, so
alerts stay the same whatever else arrives.

State per group (JSON-shaped, a table row in the worker): {"months": {"YYYY-MM":
{institution_id: record as `InstitutionMonth.to_dict()`}}, "closed": the latest month closed
for the group or None}. A redelivered record replaces the stored one (same institution, same
month): nothing doubles. Kept: the last `months_kept` months, so memory is bounded by the group's
size times 13.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from claimstream.detection.engine import Engine, StepResult
from claimstream.model.indicators import InstitutionMonth
from claimstream.rules.base import State
from claimstream.rules.peer_outlier import (
    UNCOMPARED,
    GroupMonth,
    PeerOutlier,
    PeerOutlierSettings,
)

Outcome = Literal["stored", "duplicate", "late"]


@dataclass(slots=True)
class PeerStep:
    """What one record did to its group: its outcome, the months it closed, the alerts."""

    outcome: Outcome
    closed: list[str] = field(default_factory=list)
    result: StepResult = field(default_factory=StepResult)
    #: months the comparison ran for (closed with at least `min_group_size` institutions)
    evaluated: int = 0


class PeerStage:
    """The peer comparison of the groups whose states it is handed (pure; no storage)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def settings(self) -> PeerOutlierSettings:
        return self.engine.config.rule("peer_outlier", PeerOutlierSettings)

    @property
    def rule(self) -> PeerOutlier | None:
        """The enabled rule (None: off; records are still kept, for the benchmark)."""
        for rule in self.engine.rules:
            if isinstance(rule, PeerOutlier):
                return rule
        return None

    @staticmethod
    def new_state() -> State:
        return {"months": {}, "closed": None}

    def on_record(self, state: State, record: InstitutionMonth) -> PeerStep:
        """Add one institution's closed month to its group's state (mutated), closing and
        comparing the group's months it completes."""
        months: dict[str, dict[str, Any]] = state.setdefault("months", {})
        closed: str | None = state.get("closed")
        data = record.to_dict()
        if closed is not None and record.month <= closed:
            held = months.get(record.month, {}).get(record.institution_id)
            return PeerStep("duplicate" if held == data else "late")
        step = PeerStep("stored")
        lag = self.settings.close_lag_months
        for label in sorted(months):
            if (closed is not None and label <= closed) or _months_between(
                label, record.month
            ) < lag:
                continue
            state["closed"] = closed = label
            step.closed.append(label)
            self._compare(record.peer_group, months, label, step)
        months.setdefault(record.month, {})[record.institution_id] = data
        kept = sorted(months)
        for label in kept[: max(0, len(kept) - self.settings.months_kept)]:
            del months[label]
        return step

    def _compare(
        self, group: str, months: dict[str, dict[str, Any]], label: str, step: PeerStep
    ) -> None:
        rule = self.rule
        if rule is None or group in UNCOMPARED:
            return
        settings = rule.settings
        window: dict[str, GroupMonth] = {}
        for month in sorted(months):
            if month > label:
                break
            # the run's months, and the one before them (a run alerts when it reaches its length)
            if _months_between(month, label) <= settings.consecutive_months:
                window[month] = {
                    institution: InstitutionMonth.from_dict(data)
                    for institution, data in months[month].items()
                }
        if len(window.get(label, ())) >= settings.min_group_size:
            step.evaluated += 1
        for finding in rule.compare(group, window, label):
            self.engine.emit(rule, finding, step.result, None)


def stored_months(state: State | None) -> list[InstitutionMonth]:
    """A group's stored records, by month then institution: the benchmark's read. The months
    after `closed_through` may still be filling (institutions yet to report them)."""
    if not state:
        return []
    return [
        InstitutionMonth.from_dict(data)
        for label in sorted(state.get("months", {}))
        for _, data in sorted(state["months"][label].items())
    ]


def closed_through(state: State | None) -> str | None:
    """The latest month closed (and compared) for the group, None before the first."""
    return None if not state else state.get("closed")


def _months_between(earlier: str, later: str) -> int:
    """Whole calendar months from `earlier` to `later` (YYYY-MM labels)."""
    return (int(later[:4]) - int(earlier[:4])) * 12 + int(later[5:]) - int(earlier[5:])
