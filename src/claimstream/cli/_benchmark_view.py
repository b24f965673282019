"""How `claimstream institutions benchmark` shows a benchmark: a text table, and the HTML report.

Both read the JSON of the benchmark route (`Benchmark.to_dict`, docs/api.md), whether it came
from a worker or was computed from a file, so the two ways agree by construction.

The HTML report is one self-contained file: inline CSS and inline SVG charts computed here (no
script, no font, no image, nothing fetched: it opens offline and from a mail attachment), a
trend chart (the institution's 12 months, the group's median and 80th percentile) and a
distribution chart (every member's value that month as a dot, anonymous, the institution's
marked) per indicator, each chart with a text alternative and its figures as a table for
keyboard and screen-reader users; the layout is one column on a narrow screen. The markup is a
Jinja2 template (`templates/benchmark.html`) with autoescaping on, so an id or a department
name from the data cannot inject markup into the page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: what each indicator is called in the reports (model.indicators.INDICATORS' order)
LABELS: dict[str, str] = {
    "cost_per_visit": "Cost per outpatient visit",
    "cost_per_stay": "Cost per inpatient stay",
    "drug_share": "Drug share of item amounts",
    "exam_lab_share": "Exam and lab share of item amounts",
    "materials_share": "Materials share of item amounts",
    "drg_cost_index": "DRG cost index (total over standard)",
    "complication_rate": "Complication-coding rate",
}
#: what each indicator's volume counts
VOLUMES: dict[str, str] = {
    "cost_per_visit": "visits",
    "cost_per_stay": "stays",
    "drug_share": "claims",
    "exam_lab_share": "claims",
    "materials_share": "claims",
    "drg_cost_index": "stays with a DRG",
    "complication_rate": "stays with a DRG",
}

# chart geometry (SVG user units; the charts scale to their box)
WIDTH = 360
TREND_HEIGHT = 170
DIST_HEIGHT = 96
LEFT, RIGHT, TOP, BOTTOM = 58, 12, 12, 26


def label(indicator: str) -> str:
    return LABELS.get(indicator, indicator.replace("_", " "))


def is_share(indicator: str) -> bool:
    return indicator.endswith(("_share", "_rate"))


def fmt(indicator: str, unit: str, value: float | None) -> str:
    """A value as a reader expects it: yuan with separators, shares as percentages."""
    if value is None:
        return "–"
    if unit == "yuan":
        return f"¥{value:,.2f}"
    if is_share(indicator):
        return f"{100 * value:.1f} %"
    return f"{value:.3f}"


def signed_share(value: float | None) -> str:
    if value is None:
        return "–"
    shown = round(100 * value, 1)
    return f"{shown + 0.0:+.1f} %" if shown else "0.0 %"  # no "-0.0 %"


def ordinal_position(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


# --- text ------------------------------------------------------------------------------------


def text_report(answer: Mapping[str, Any]) -> str:
    """The benchmark as aligned text tables (stdout of the command)."""
    lines = [
        f"institution {answer['institution_id']}, {answer['month']}: compared with the "
        f"{answer['members']} institutions of peer group {answer['peer_group']} "
        "(rank 1 = highest = worst; ▲ above the group's 80th percentile)",
        "",
    ]
    rows = [("INDICATOR", "VALUE", "VOLUME", "MEAN", "MEDIAN", "P80", "RANK", "PCTL", "VS MEAN")]
    for item in answer["indicators"]:
        name, unit, peers = item["indicator"], item["unit"], item["peers"] or {}
        rank = f"{item['rank']} of {item['ranked']}" if item["rank"] is not None else "–"
        flag = " ▲" if item["above_p80"] else ""
        rows.append(
            (
                name,
                fmt(name, unit, item["value"]) + flag,
                f"{item['volume']:,}",
                fmt(name, unit, peers.get("mean")),
                fmt(name, unit, peers.get("median")),
                fmt(name, unit, peers.get("p80")),
                rank,
                ordinal_position(item["position"]),
                signed_share(item["vs_mean"]),
            )
        )
    lines += _table(rows, right=range(1, 9))
    lines += ["", "trend (the institution's value; '–' not held):"]
    months = list(answer["trend_months"])
    trend_rows = [("MONTH", *(i["indicator"] for i in answer["indicators"]))]
    for index, month in enumerate(months):
        trend_rows.append(
            (
                month,
                *(
                    fmt(i["indicator"], i["unit"], i["trend"][index]["value"])
                    for i in answer["indicators"]
                ),
            )
        )
    lines += _table(trend_rows, right=range(1, len(trend_rows[0])))
    departments = answer.get("departments") or []
    if departments:
        names = [i["indicator"] for i in answer["indicators"]]
        units = {i["indicator"]: i["unit"] for i in answer["indicators"]}
        lines += ["", "departments:"]
        dept_rows = [("DEPARTMENT", "VISITS", "STAYS", "TOTAL", *names)]
        dept_rows += [
            (
                str(d["department_id"]),
                f"{d['visits']:,}",
                f"{d['stays']:,}",
                f"¥{d['total_amount']:,.2f}",
                *(fmt(n, units[n], d["indicators"].get(n)) for n in names),
            )
            for d in departments
        ]
        lines += _table(dept_rows, right=range(1, len(dept_rows[0])))
    return "\n".join(lines)


def _table(rows: Sequence[Sequence[str]], right: range) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


# --- charts ----------------------------------------------------------------------------------


def _scale(lo: float, hi: float, a: float, b: float) -> Any:
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0, hi + 1.0
    return lambda v: a + (v - lo) * (b - a) / (hi - lo)


def _bounds(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    return lo - pad, hi + pad


def trend_chart(item: Mapping[str, Any], months: Sequence[str]) -> dict[str, Any] | None:
    """Geometry of the trend chart: the institution's line and points, the group's median and
    80th-percentile lines, axis ticks. None when nothing is held for the 12 months."""
    name, unit = item["indicator"], item["unit"]
    points = item["trend"]
    seen = [p["value"] for p in points if p["value"] is not None]
    seen += [p["peers"][k] for p in points if p["peers"] for k in ("median", "p80")]
    if not seen:
        return None
    lo, hi = _bounds(seen)
    x = _scale(0, max(1, len(points) - 1), LEFT, WIDTH - RIGHT)
    y = _scale(lo, hi, TREND_HEIGHT - BOTTOM, TOP)

    def lines(key: str | None) -> list[str]:
        """Polyline point lists, broken where a month is not held."""
        runs: list[list[str]] = [[]]
        for i, p in enumerate(points):
            v = p["value"] if key is None else (p["peers"] or {}).get(key)
            if v is None:
                runs.append([])
                continue
            runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
        return [" ".join(run) for run in runs if run]

    marks = [
        {
            "cx": f"{x(i):.1f}",
            "cy": f"{y(p['value']):.1f}",
            "title": f"{p['month']}: {fmt(name, unit, p['value'])}",
        }
        for i, p in enumerate(points)
        if p["value"] is not None
    ]
    ticks = [lo + (hi - lo) * k / 3 for k in range(4)]
    shown = sorted({0, len(points) // 2, len(points) - 1})
    return {
        "width": WIDTH,
        "height": TREND_HEIGHT,
        "own": lines(None),
        "median": lines("median"),
        "p80": lines("p80"),
        "marks": marks,
        "yticks": [{"y": f"{y(t):.1f}", "text": fmt(name, unit, t)} for t in ticks],
        "xticks": [
            {
                "x": f"{x(i):.1f}",
                "text": months[i],
                "anchor": "start" if i == 0 else "end" if i == len(points) - 1 else "middle",
            }
            for i in shown
        ],
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "bottom": TREND_HEIGHT - BOTTOM,
    }


def distribution_chart(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """Geometry of the distribution chart: one dot per member's value (equal values stacked),
    the institution's marked, lines at the mean, median and 80th percentile. None without
    values."""
    name, unit, values, peers = item["indicator"], item["unit"], item["values"], item["peers"]
    if not values or peers is None:
        return None
    lo, hi = _bounds(values)
    x = _scale(lo, hi, LEFT - 40, WIDTH - RIGHT)
    base = DIST_HEIGHT - BOTTOM - 8
    stacked: dict[str, int] = {}
    own_value = item["value"]
    own_left = own_value is not None
    dots: list[dict[str, Any]] = []
    for v in values:
        cx = f"{x(v):.1f}"
        level = stacked.get(cx, 0)
        stacked[cx] = level + 1
        own = own_left and math.isclose(v, own_value)
        if own:
            own_left = False
        dots.append(
            {
                "cx": cx,
                "cy": f"{base - level * 9:.1f}",
                "own": own,
                "title": ("this institution: " if own else "a peer: ") + fmt(name, unit, v),
            }
        )
    dots.sort(key=lambda d: d["own"])  # the institution's dot drawn last, on top
    guides = [
        {"x": f"{x(peers[key]):.1f}", "kind": key, "text": text}
        for key, text in (("mean", "mean"), ("median", "median"), ("p80", "80th pct"))
    ]
    return {
        "width": WIDTH,
        "height": DIST_HEIGHT,
        "dots": dots,
        "guides": guides,
        "axis_y": base + 10,
        "ticks": [
            {"x": f"{x(values[0]):.1f}", "text": fmt(name, unit, values[0])},
            {"x": f"{x(values[-1]):.1f}", "text": fmt(name, unit, values[-1])},
        ],
        "left": LEFT - 40,
        "right": WIDTH - RIGHT,
    }


# --- HTML ------------------------------------------------------------------------------------


def html_report(answer: Mapping[str, Any], *, source: str, generated: str, version: str) -> str:
    """The self-contained HTML report of a benchmark."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("claimstream.cli", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    months = list(answer["trend_months"])
    cards = []
    for item in answer["indicators"]:
        name, unit = item["indicator"], item["unit"]
        peers = item["peers"] or {}
        cards.append(
            {
                "id": name,
                "label": label(name),
                "value": fmt(name, unit, item["value"]),
                "volume": f"{item['volume']:,} {VOLUMES.get(name, '')}".strip(),
                "mean": fmt(name, unit, peers.get("mean")),
                "median": fmt(name, unit, peers.get("median")),
                "p80": fmt(name, unit, peers.get("p80")),
                "count": peers.get("count", 0),
                "rank": item["rank"],
                "ranked": item["ranked"],
                "position": ordinal_position(item["position"]),
                "vs_mean": signed_share(item["vs_mean"]),
                "above_p80": bool(item["above_p80"]),
                "trend": trend_chart(item, months),
                "distribution": distribution_chart(item),
                "trend_rows": [
                    {
                        "month": p["month"],
                        "value": fmt(name, unit, p["value"]),
                        "median": fmt(name, unit, (p["peers"] or {}).get("median")),
                        "p80": fmt(name, unit, (p["peers"] or {}).get("p80")),
                    }
                    for p in item["trend"]
                ],
                "values": [fmt(name, unit, v) for v in item["values"]],
            }
        )
    names = [i["indicator"] for i in answer["indicators"]]
    units = {i["indicator"]: i["unit"] for i in answer["indicators"]}
    departments = [
        {
            "id": d["department_id"],
            "visits": f"{d['visits']:,}",
            "stays": f"{d['stays']:,}",
            "total": f"¥{d['total_amount']:,.2f}",
            "cells": [fmt(n, units[n], d["indicators"].get(n)) for n in names],
        }
        for d in answer.get("departments") or []
    ]
    figures = answer["figures"]
    return env.get_template("benchmark.html").render(
        answer=answer,
        cards=cards,
        departments=departments,
        department_columns=[label(n) for n in names],
        totals={
            "visits": f"{figures['visits']:,}",
            "stays": f"{figures['stays']:,}",
            "total": f"¥{figures['total_amount']:,.2f}",
            "fund": f"¥{figures['fund_amount']:,.2f}",
        },
        flagged=sum(1 for c in cards if c["above_p80"]),
        source=source,
        generated=generated,
        version=version,
    )
