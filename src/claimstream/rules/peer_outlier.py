"""peer_outlier (指标偏离同级同区机构): an institution's monthly indicator is far above its peer
group's for `consecutive_months` (3) months in a row (issue #15; CMS's PEPPER works the same way).

Input: the `InstitutionMonth` records `institution_indicators` publishes, not events, so the
engine routes no event here (`event_types` is empty); the peer stage (`detection.peers`), one
per peer group, asks `compare` when a month closes for the group. Settings, registry, `rules
set`, shadow mode and the alert's money and law are those of every rule.

An institution is an outlier on an indicator in a month when, among the group's institutions
whose month has at least `min_volume` of the indicator's volume (`VOLUME_OF`: visits, stays,
claims or DRG stays), at least `min_group_size` have the indicator, the institution is one of
them, and its value is above the group's `percentile` (80th, linear interpolation as a
spreadsheet computes it) and/or more than `above_mean` (45 %) above the group's mean, as
`criterion` says: "both" (the default), "either", "percentile" or "mean". The group's figures
include the institution itself (as the benchmark shows them). "Above" is strict: 45 % exactly
does not count. The issue words the test "percentile or mean share"; with "either" and these
defaults an institution 44 % above the mean of 12 would still be above the 80th percentile
(every other value being lower), which its own Done-when forbids, so "either" is a setting and
"both" the default: far above the mean *and* among the top fifth.

It alerts when the run of consecutive outlier months ending with the month that just closed
reaches exactly `consecutive_months` (a run alerts once, however long it lasts; a month without
a record, or below the minimum volume, ends a run). One alert per institution, indicator and
run: its id derives from institution, indicator and the run's last month.

Amount: the excess over the group mean, summed over the run's months: for an amount per unit
(cost_per_visit, cost_per_stay) `(value - mean) x volume` (visits, stays); for a ratio (shares,
DRG cost index, complication rate) `(value - mean) x the month's total_amount`, i.e. the share
of the month's billing the excess ratio stands for. The department named is the one that
contributes most to the last month's excess by the same formula on its own figures (the
responsibility roll-up's department), none when the claims carried none.

Default legal basis: 《医疗保障基金使用监督管理条例》, cited without an article: like
institution_cost_jump, a deviation from peers is a cost-control indicator of the service
agreement, a reason to review, not a violation an article names. Severity warning, alerts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from claimstream.model.config import REGULATION, ConfigError, OnCheck, RuleSettings, positive
from claimstream.model.events import Event
from claimstream.model.indicators import (
    INDICATORS,
    Distribution,
    Figures,
    InstitutionMonth,
    percentile,
)
from claimstream.model.outputs import Severity, Subject
from claimstream.model.timefmt import iso
from claimstream.rules.base import Finding, Rule, State
from claimstream.rules.institution_cost_jump import _month_end, _previous

Criterion = Literal["both", "either", "percentile", "mean"]
#: the groups no comparison is made in (`institution_indicators.UNKNOWN_GROUP`)
UNCOMPARED = frozenset({"unknown"})


@dataclass(frozen=True, slots=True)
class PeerOutlierSettings(RuleSettings):
    severity: Severity = "warning"
    issue_commands: bool = False
    legal_basis: str = REGULATION
    behaviour: str = "费用指标显著偏离同级同区机构"
    on_check: OnCheck = "warn"
    percentile: float = 80.0
    above_mean: float = 0.45
    criterion: Criterion = "both"
    consecutive_months: int = 3
    min_volume: int = 30
    min_group_size: int = 5
    indicators: tuple[str, ...] = tuple(INDICATORS)
    #: months of each group the peer stage keeps (the benchmark's 12-month trend and the current)
    months_kept: int = 13
    #: a group's month closes when a record this many months later arrives (detection.peers)
    close_lag_months: int = 1

    def validate(self) -> None:
        RuleSettings.validate(self)
        if not 0 < self.percentile < 100:
            raise ConfigError(f"percentile must be between 0 and 100, got {self.percentile}")
        positive("above_mean", self.above_mean)
        positive("consecutive_months", self.consecutive_months)
        positive("min_volume", self.min_volume)
        positive("min_group_size", self.min_group_size)
        positive("months_kept", self.months_kept)
        positive("close_lag_months", self.close_lag_months)
        # the run, the month before it (a run alerts once) and the months still open
        if self.months_kept < self.consecutive_months + self.close_lag_months + 1:
            raise ConfigError(
                "months_kept must be at least consecutive_months + close_lag_months + 1"
            )
        unknown = sorted(set(self.indicators) - set(INDICATORS))
        if unknown or not self.indicators:
            raise ConfigError(
                f"indicators must be some of {', '.join(INDICATORS)}; got {', '.join(unknown)}"
            )


#: one group month: institution -> its record
GroupMonth = dict[str, InstitutionMonth]


class PeerOutlier(Rule[PeerOutlierSettings]):
    name: ClassVar[str] = "peer_outlier"
    key_kind = "institution"
    event_types: ClassVar[frozenset[str]] = frozenset()  # fed records by `detection.peers`
    Settings = PeerOutlierSettings

    def on_event(self, state: State, event: Event) -> list[Finding]:
        raise AssertionError("peer_outlier reads InstitutionMonth records, not events")

    def expire(self, state: State, cutoff: float) -> None:
        return None

    def size(self, state: State) -> int:
        return 0

    # -- the comparison ------------------------------------------------------------------------

    def compare(self, group: str, months: dict[str, GroupMonth], month: str) -> list[Finding]:
        """What the close of `month` completes in `group`, given its closed months (`months`,
        by label, the one closing included)."""
        if group in UNCOMPARED or month not in months:
            return []
        settings = self.settings
        cache: dict[tuple[str, str], tuple[Distribution, float] | None] = {}
        findings = []
        for institution_id in sorted(months[month]):
            for indicator in settings.indicators:
                run: list[tuple[str, tuple[float, Distribution, float]]] = []
                label = month
                while len(run) <= settings.consecutive_months and label in months:
                    found = self._outlier(months, label, institution_id, indicator, cache)
                    if found is None:
                        break
                    run.append((label, found))
                    label = _previous(label)
                if len(run) == settings.consecutive_months:
                    run.reverse()
                    findings.append(self._finding(group, months, institution_id, indicator, run))
        return findings

    def distribution(self, month: GroupMonth, indicator: str) -> tuple[Distribution, float] | None:
        """The group's distribution of `indicator` in one month, over the institutions with the
        minimum volume, and its `percentile`; None when fewer than `min_group_size` count."""
        values = [
            record.figures.indicators[indicator]
            for record in month.values()
            if indicator in record.figures.indicators
            and record.figures.volume(indicator) >= self.settings.min_volume
        ]
        if len(values) < self.settings.min_group_size:
            return None
        values.sort()
        return Distribution.of(values), percentile(values, self.settings.percentile)

    def _outlier(
        self,
        months: dict[str, GroupMonth],
        label: str,
        institution_id: str,
        indicator: str,
        cache: dict[tuple[str, str], tuple[Distribution, float] | None],
    ) -> tuple[float, Distribution, float] | None:
        """(value, distribution, percentile value) when the institution is an outlier."""
        record = months[label].get(institution_id)
        if record is None:
            return None
        figures = record.figures
        value = figures.indicators.get(indicator)
        if value is None or figures.volume(indicator) < self.settings.min_volume:
            return None
        if (label, indicator) not in cache:
            cache[(label, indicator)] = self.distribution(months[label], indicator)
        found = cache[(label, indicator)]
        if found is None:
            return None
        dist, pct = found
        above_pct = round(value - pct, 9) > 0
        above_mean = dist.mean > 0 and round(value / dist.mean - 1, 9) > self.settings.above_mean
        criterion = self.settings.criterion
        if criterion == "both":
            hit = above_pct and above_mean
        elif criterion == "either":
            hit = above_pct or above_mean
        else:
            hit = above_pct if criterion == "percentile" else above_mean
        return (value, dist, pct) if hit else None

    def _finding(
        self,
        group: str,
        months: dict[str, GroupMonth],
        institution_id: str,
        indicator: str,
        run: list[tuple[str, tuple[float, Distribution, float]]],
    ) -> Finding:
        settings = self.settings
        labels = [label for label, _ in run]
        last, (value, dist, pct) = run[-1]
        amount = sum(
            excess_amount(indicator, months[label][institution_id].figures, d.mean)
            for label, (_, d, _) in run
        )
        department, department_value = self._department(
            months[last][institution_id], indicator, dist.mean
        )
        unit = INDICATORS[indicator]
        share = value / dist.mean - 1 if dist.mean > 0 else None
        rendered = f"{value:.2f}" if unit == "yuan" else f"{value:.4f}"
        return Finding(
            subject=Subject("institution", institution_id),
            trigger_id=f"{institution_id}/{indicator}/{last}",
            occurred_at=iso(_month_end(last, self.context), self.context.tz),
            event_ids=(),
            message=(
                f"Institution {institution_id}'s {indicator} was above its peer group {group} "
                f"for {len(run)} consecutive months ({labels[0]}..{last}): {rendered} in {last} "
                f"against a group mean of {dist.mean:.4g} and {settings.percentile:g}th "
                f"percentile of {pct:.4g} ({dist.count} institutions)"
                + (f", {share:+.0%} above the mean." if share is not None else ".")
            ),
            details={
                "indicator": indicator,
                "unit": unit,
                "peer_group": group,
                "months": labels,
                "values": [round(v, 6) for _, (v, _, _) in run],
                "volumes": [
                    months[label][institution_id].figures.volume(indicator) for label in labels
                ],
                "group": [
                    {
                        "month": label,
                        "count": d.count,
                        "mean": round(d.mean, 6),
                        "median": round(d.median, 6),
                        "p80": round(d.p80, 6),
                        "percentile_value": round(p, 6),
                    }
                    for label, (_, d, p) in run
                ],
                "criterion": settings.criterion,
                "percentile": settings.percentile,
                "above_mean": settings.above_mean,
                "consecutive_months": settings.consecutive_months,
                "department": department,
                "department_value": department_value,
                "amount_formula": (
                    "(value - mean) x volume" if unit == "yuan" else "(value - mean) x total_amount"
                ),
            },
            institution_id=institution_id,
            department_id=department,
            amount=round(amount, 2),
        )

    @staticmethod
    def _department(
        record: InstitutionMonth, indicator: str, mean: float
    ) -> tuple[str | None, float | None]:
        best: tuple[float, str] | None = None
        for department, figures in sorted(record.departments.items()):
            if indicator not in figures.indicators:
                continue
            weight = excess_amount(indicator, figures, mean)
            if best is None or weight > best[0]:
                best = (weight, department)
        if best is None:
            return None, None
        return best[1], round(record.departments[best[1]].indicators[indicator], 6)


def excess_amount(indicator: str, figures: Figures, mean: float) -> float:
    """The money a unit's excess over the group mean stands for (module docstring)."""
    value = figures.indicators.get(indicator)
    if value is None:
        return 0.0
    if INDICATORS[indicator] == "yuan":
        return (value - mean) * figures.volume(indicator)
    return (value - mean) * figures.total_amount
