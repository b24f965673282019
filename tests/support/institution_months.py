"""A peer group's year of `InstitutionMonth` records, made up but plausible, for the benchmark's
route, command and HTML report tests: 12 tertiary hospitals of one region over 12 months
(2025-04 .. 2026-03), H001 well above the others from 2026-01 (its figures times 1.6), two
departments each, and 3 secondary hospitals of the same region (another group)."""

from __future__ import annotations

from claimstream.model.indicators import Figures, InstitutionMonth

GROUP = "tertiary:330100"
OTHER_GROUP = "secondary:330100"
MONTHS = [f"2025-{m:02d}" for m in range(4, 13)] + [f"2026-{m:02d}" for m in range(1, 4)]
LAST = MONTHS[-1]


def figures(base: float, stays: int, visits: int) -> Figures:
    indicators = {
        "cost_per_visit": round(base / 40, 2),
        "cost_per_stay": round(base, 2),
        "drug_share": round(0.25 + base / 200_000, 4),
        "exam_lab_share": 0.22,
        "materials_share": round(0.30 + base / 150_000, 4),
        "drg_cost_index": round(base / 10_000, 4),
        "complication_rate": round(0.10 + base / 300_000, 4),
    }
    total = base * stays + base / 40 * visits
    return Figures(
        visits=visits,
        stays=stays,
        claims=visits + stays,
        drg_stays=stays - 2,
        total_amount=round(total, 2),
        fund_amount=round(total * 0.7, 2),
        indicators=indicators,
    )


def year() -> list[InstitutionMonth]:
    records = []
    for index, month in enumerate(MONTHS):
        for number in range(1, 13):
            institution = f"H{number:03d}"
            base = 9_000.0 + 150.0 * number + 40.0 * index
            if institution == "H001" and month >= "2026-01":
                base *= 1.6  # well above the group
            departments = {
                "K01": figures(base * 1.3, 20, 300),
                "K02": figures(base * 0.8, 15, 500),
            }
            records.append(
                InstitutionMonth(institution, GROUP, month, figures(base, 35, 800), departments)
            )
        for number in range(1, 4):
            base = 5_000.0 + 100.0 * number
            records.append(
                InstitutionMonth(f"S{number:03d}", OTHER_GROUP, month, figures(base, 10, 400))
            )
    return records
