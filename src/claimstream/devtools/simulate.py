"""A realistic synthetic stream of settlement events, with abuse cases injected.

Used by `claimstream simulate`, the demo and the benchmark. Deterministic for a given seed.
Benign patients behave within the rules: chronic drugs refilled at their home institution when
the supply is nearly used up, a few online consultations a month, hospital stays weeks apart.
Injected among them, at a rate of one of each per `inject_every` events:

- `repeat_dispensing`: the seed case, 12 boxes of one insulin from 3 hospitals within 5 days;
- `high_frequency_consultation`: 22 online consultations in five days;
- `readmission_24h`: a readmission at another hospital 2-20 h after a discharge.

With `trace_codes` (a share, off by default so every other stream stays as it was) that share
of dispensings carries a drug traceability code per pack (`trace_codes`), and the injected
cases include `trace_code_reuse`: a pack settled at one hospital and again at another 1-10
days later. The codes come from a generator of their own: until the first injected reuse the
stream is the one the same seed gives without them, codes aside.

With `drifting=N` (issue #15's peer comparison), claims declare their institution's grade
(`institution_level`: H006-H020 tertiary, H021-H030 secondary; H001-H005 are graded with a
region by the packaged registry) and the first N tertiary hospitals of that range bill
`drift_factor` (1.8) times what their patients' care costs, every month: peer outliers on cost
per visit, cost per stay and DRG cost index (`injected["peer_outlier"]`). Without it the stream
is exactly what it was (no field added, no random draw changed).

A small share of events is delivered slightly out of order (swapped with the next one), as
real producers do. Events come out in (roughly) event-time order, generated lazily, so an
endless stream costs constant memory.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from claimstream.model.timefmt import DAY, HOUR, iso

LOCAL = ZoneInfo("Asia/Shanghai")
DEFAULT_START = datetime(2026, 3, 1, 8, 0, tzinfo=LOCAL)

#: (code, name, atc, days_supply, chronic) — codes in the style of the NHSA drug catalogue.
CHRONIC_DRUGS = (
    ("XA10AE04", "甘精胰岛素 insulin glargine", "A10AE04", 30),
    ("XA10BA02", "二甲双胍 metformin", "A10BA02", 30),
    ("XC08CA01", "氨氯地平 amlodipine", "C08CA01", 28),
    ("XC10AA05", "阿托伐他汀 atorvastatin", "C10AA05", 30),
    ("XC09CA01", "氯沙坦 losartan", "C09CA01", 28),
)
ACUTE_DRUGS = (
    ("XJ01CA04", "阿莫西林 amoxicillin", "J01CA04", 7),
    ("XN02BE01", "对乙酰氨基酚 paracetamol", "N02BE01", 5),
    ("XR05CB01", "乙酰半胱氨酸 acetylcysteine", "R05CB01", 7),
)
DIAGNOSES = ("I10", "E11.9", "J18.9", "K35.8", "I63.9", "N18.3", "M17.1", "J44.1")
EXAMS = (("EX-CT-HEAD", "exam"), ("EX-US-ABD", "exam"), ("LAB-HBA1C", "lab"), ("LAB-CBC", "lab"))
INSULIN = CHRONIC_DRUGS[0]
#: yuan per unit dispensed (a pen, a box), in the range of the national procurement prices:
#: dispensings carry `unit_price`, so repeat_dispensing's alerts have an amount in the demo
UNIT_PRICES = {
    "XA10AE04": 68.5,
    "XA10BA02": 9.8,
    "XC08CA01": 12.6,
    "XC10AA05": 15.2,
    "XC09CA01": 18.9,
    "XJ01CA04": 8.4,
    "XN02BE01": 5.1,
    "XR05CB01": 22.3,
}

#: `drifting`: the grade simulated hospitals declare on their claims (H001-H005 are in the
#: packaged registry with a region, so they form groups of their own, too small to compare)
LEVEL_OF = {
    **{f"H{n:03d}": "tertiary" for n in range(6, 21)},
    **{f"H{n:03d}": "secondary" for n in range(21, 31)},
}
#: the hospitals that drift, in order (`drifting=N` takes the first N)
DRIFT_CANDIDATES = tuple(f"H{n:03d}" for n in range(6, 9))


@dataclass(slots=True)
class _Patient:
    pid: str
    home: str
    doctor: str
    age: int
    gender: str
    drugs: tuple[tuple[str, str, str, int], ...]
    last_fill: dict[str, float] = field(default_factory=dict)
    online: list[float] = field(default_factory=list)
    free_from: float = 0.0  # no new hospital stay before this time


class Simulator:
    """Stateful generator; `events()` yields event dicts until `count` have been produced."""

    def __init__(
        self,
        count: int,
        *,
        seed: int = 7,
        start: datetime | None = None,
        patients: int | None = None,
        inject: bool = True,
        inject_every: int = 2_000,
        span_days: float = 30.0,
        out_of_order: float = 0.01,
        trace_codes: float = 0.0,
        drifting: int = 0,
        drift_factor: float = 1.8,
    ) -> None:
        self.count = count
        self.trace_share = trace_codes
        self.codes_rng = random.Random(seed + 0x7C0DE)  # noqa: S311  (simulation)
        self.rng = random.Random(seed)  # noqa: S311  (simulation, not security)
        self.seed = seed
        self.t = (start or DEFAULT_START).timestamp()
        self.mean_gap = span_days * DAY / max(count, 1)
        self.inject = inject
        self.inject_every = inject_every
        self.out_of_order = out_of_order
        self.hospitals = [f"H{n:03d}" for n in range(1, 31)]
        self.internet = [f"IH{n:02d}" for n in range(1, 4)]
        if not 0 <= drifting <= len(DRIFT_CANDIDATES):
            raise ValueError(f"drifting must be 0..{len(DRIFT_CANDIDATES)}, got {drifting}")
        self.graded = drifting > 0
        self.drifting = frozenset(DRIFT_CANDIDATES[:drifting])
        self.drift_factor = drift_factor
        self._ids = itertools.count()
        self._pending: list[tuple[float, int, dict[str, Any]]] = []
        n = patients or max(500, count // 8)
        self.patients = [self._patient(i) for i in range(n)]
        self.injected: dict[str, list[str]] = {
            "repeat_dispensing": [],
            "high_frequency_consultation": [],
            "readmission_24h": [],
        }
        if trace_codes:
            self.injected["trace_code_reuse"] = []
        if drifting:
            self.injected["peer_outlier"] = sorted(self.drifting)

    def _patient(self, index: int) -> _Patient:
        rng = self.rng
        home = rng.choice(self.hospitals)
        return _Patient(
            pid=f"P{index:06d}",
            home=home,
            doctor=f"D{home[1:]}-{rng.randrange(1, 9):02d}",
            age=rng.randrange(18, 90),
            gender=rng.choice("MF"),
            drugs=tuple(rng.sample(CHRONIC_DRUGS, rng.randrange(0, 3))),
        )

    # --- the stream ---------------------------------------------------------------------

    def events(self) -> Iterator[dict[str, Any]]:
        produced = 0
        held: dict[str, Any] | None = None
        while produced < self.count:
            self.t += self.rng.expovariate(1.0 / self.mean_gap)
            self._benign(self.rng.choice(self.patients))
            if self._injecting(produced):
                self._inject(produced // self.inject_every)
            while self._pending and self._pending[0][0] <= self.t and produced < self.count:
                event = heapq.heappop(self._pending)[2]
                if held is None and self.rng.random() < self.out_of_order:
                    held = event  # delivered after the next one: slightly out of order
                    continue
                yield event
                produced += 1
                if held is not None and produced < self.count:
                    yield held
                    produced += 1
                    held = None

    def _injecting(self, produced: int) -> bool:
        """Inject once per `inject_every` events, but not near the end, where a case could
        not complete before the stream stops."""
        return (
            self.inject
            and produced % self.inject_every == self.inject_every // 2
            and produced < 0.8 * self.count
        )

    def _push(self, ts: float, event_type: str, patient: _Patient, inst: str, **body: Any) -> str:
        seq = next(self._ids)
        event_id = f"ev-{self.seed}-{seq:09d}"
        event: dict[str, Any] = {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": iso(round(ts), LOCAL),
            "patient_id": patient.pid,
            "institution_id": inst,
            "doctor_id": patient.doctor if inst == patient.home else f"D{inst[1:]}-01",
            "department_id": "DEP-IM",
            "patient_age": patient.age,
            "patient_gender": patient.gender,
            **body,
        }
        if event_type == "dispense" and body.get("drug_code") in UNIT_PRICES:
            event["unit_price"] = UNIT_PRICES[body["drug_code"]]
        if (
            event_type == "dispense"
            and self.trace_share
            and "trace_codes" not in body
            and self.codes_rng.random() < self.trace_share
        ):  # one code per pack, 20 digits as the national codes, unique per event and pack
            packs = max(1, int(body["quantity"]))
            event["trace_codes"] = [
                f"8{self.seed % 1000:03d}{seq:012d}{k:04d}" for k in range(packs)
            ]
        if event_type == "claim" and self.graded:
            self._grade(event, inst)
        heapq.heappush(self._pending, (ts, seq, event))
        return event_id

    def _grade(self, claim: dict[str, Any], inst: str) -> None:
        """`drifting`: the claim's declared grade, and a drifting institution's markup."""
        level = LEVEL_OF.get(inst)
        if level is not None:
            claim["institution_level"] = level
        if inst in self.drifting:
            factor = self.drift_factor
            claim["total_amount"] = round(claim["total_amount"] * factor, 2)
            claim["fund_amount"] = round(claim["fund_amount"] * factor, 2)
            claim["items"] = [
                {**item, "unit_price": round(item["unit_price"] * factor, 2)}
                for item in claim.get("items", ())
            ]

    # --- benign behaviour ---------------------------------------------------------------

    def _benign(self, p: _Patient) -> None:
        roll = self.rng.random()
        if roll < 0.40:
            self._dispense(p)
        elif roll < 0.70:
            self._consult(p)
        elif roll < 0.80:
            self._stay(p)
        else:
            self._outpatient_claim(p)

    def _dispense(self, p: _Patient) -> None:
        rng, t = self.rng, self.t
        if p.drugs and rng.random() < 0.7:
            code, name, atc, days = rng.choice(p.drugs)
            chronic, inst = True, p.home
        else:
            code, name, atc, days = rng.choice(ACUTE_DRUGS)
            chronic, inst = False, rng.choice(self.hospitals)
        last = p.last_fill.get(code)
        if last is not None and t - last < 0.9 * days * DAY:
            self._consult(p)  # supply not used up yet: a benign patient waits
            return
        p.last_fill[code] = t
        self._push(
            t,
            "dispense",
            p,
            inst,
            drug_code=code,
            drug_name=name,
            atc_code=atc,
            days_supply=days,
            quantity=rng.randrange(1, 4),
            chronic=chronic,
        )

    def _consult(self, p: _Patient) -> None:
        t = self.t
        p.online = [x for x in p.online if x > t - 30 * DAY]
        online = len(p.online) < 6 and self.rng.random() < 0.5
        inst = self.rng.choice(self.internet) if online else p.home
        if online:
            p.online.append(t)
        self._push(t, "consultation", p, inst, mode="online" if online else "offline")

    def _stay(self, p: _Patient) -> None:
        rng, t = self.rng, self.t
        if t < p.free_from:
            self._outpatient_claim(p)
            return
        length = rng.uniform(2, 10) * DAY
        p.free_from = t + length + 40 * DAY
        self._admission_and_discharge(p, p.home, t, length, rng.choice(DIAGNOSES))

    def _admission_and_discharge(
        self, p: _Patient, inst: str, t: float, length: float, diagnosis: str
    ) -> None:
        stay_id = f"ADM-{next(self._ids):09d}"
        self._push(t, "admission", p, inst, admission_id=stay_id, diagnosis_code=diagnosis)
        self._push(t + length, "discharge", p, inst, admission_id=stay_id, diagnosis_code=diagnosis)
        standard = self.rng.choice((8_000.0, 15_000.0, 32_000.0))
        total = round(standard * self.rng.uniform(0.6, 1.4), 2)
        self._push(
            t + length,
            "claim",
            p,
            inst,
            claim_id=f"CLM-{next(self._ids):09d}",
            visit_type="inpatient",
            total_amount=total,
            fund_amount=round(total * 0.7, 2),
            drg_code=f"DRG-{diagnosis[:3]}",
            drg_standard_cost=standard,
            diagnosis_code=diagnosis,
            items=[
                {
                    "code": "SV-BED",
                    "category": "service",
                    "quantity": 1,
                    "unit_price": round(total * 0.2, 2),
                },
                {"code": EXAMS[0][0], "category": "exam", "quantity": 1, "unit_price": 300.0},
            ],
        )

    def _outpatient_claim(self, p: _Patient) -> None:
        rng = self.rng
        code, category = rng.choice(EXAMS)
        price = round(rng.uniform(20, 400), 2)
        total = round(price + rng.uniform(10, 200), 2)
        self._push(
            self.t,
            "claim",
            p,
            p.home,
            claim_id=f"CLM-{next(self._ids):09d}",
            visit_type="outpatient",
            total_amount=total,
            fund_amount=round(total * 0.6, 2),
            diagnosis_code=rng.choice(DIAGNOSES),
            items=[{"code": code, "category": category, "quantity": 1, "unit_price": price}],
        )

    # --- injected abuse -----------------------------------------------------------------

    def _inject(self, n: int) -> None:
        t = self.t
        base = len(self.patients) + 3 * n
        # 12 boxes of insulin from 3 hospitals within 5 days (the regulators' seed case).
        hoarder = self._patient(base)
        code, name, atc, days = INSULIN
        hospitals = self.rng.sample(self.hospitals, 3)
        for day, inst in zip((0, 2, 5), hospitals, strict=True):
            self._push(
                t + day * DAY + self.rng.uniform(0, 4 * HOUR),
                "dispense",
                hoarder,
                inst,
                drug_code=code,
                drug_name=name,
                atc_code=atc,
                days_supply=days,
                quantity=4,
                chronic=True,
            )
        self.injected["repeat_dispensing"].append(hoarder.pid)
        # 22 online consultations in five days.
        frequent = self._patient(base + 1)
        for k in range(22):  # about four a day for five days
            self._push(
                t + k * 5 * DAY / 22 + self.rng.uniform(0, 2 * HOUR),
                "consultation",
                frequent,
                self.rng.choice(self.internet),
                mode="online",
            )
        self.injected["high_frequency_consultation"].append(frequent.pid)
        # Discharged, then admitted elsewhere 2-20 h later.
        bouncer = self._patient(base + 2)
        first, second = self.rng.sample(self.hospitals, 2)
        length = 4 * DAY
        self._admission_and_discharge(bouncer, first, t, length, "J18.9")
        gap = self.rng.uniform(2, 20) * HOUR
        self._admission_and_discharge(bouncer, second, t + length + gap, 3 * DAY, "J18.9")
        self.injected["readmission_24h"].append(bouncer.pid)
        if self.trace_share:
            self._resold(t, base)

    def _resold(self, t: float, base: int) -> None:
        """A pack settled at one hospital, then again at another 1-10 days later (回流药)."""
        rng = self.codes_rng
        code = f"9{self.seed % 1000:03d}{next(self._ids):016d}"
        first, second = rng.sample(self.hospitals, 2)
        buyer, reseller = (
            _Patient(f"P{base + k:06d}", inst, f"D{inst[1:]}-01", rng.randrange(18, 90), "F", ())
            for k, inst in ((1_000_000, first), (1_000_001, second))
        )
        drug, name, atc, days = rng.choice(CHRONIC_DRUGS)
        for when, patient, inst in (
            (t, buyer, first),
            (t + rng.uniform(1, 10) * DAY, reseller, second),
        ):
            self._push(
                when,
                "dispense",
                patient,
                inst,
                drug_code=drug,
                drug_name=name,
                atc_code=atc,
                days_supply=days,
                quantity=1,
                chronic=True,
                trace_codes=[code],
            )
        self.injected["trace_code_reuse"].append(code)


def generate(
    count: int,
    *,
    seed: int = 7,
    start: datetime | None = None,
    patients: int | None = None,
    inject: bool = True,
    span_days: float = 30.0,
    drifting: int = 0,
) -> Iterator[dict[str, Any]]:
    """`count` contract-v1 event dicts in (roughly) event-time order, abuse injected."""
    return Simulator(
        count,
        seed=seed,
        start=start,
        patients=patients,
        inject=inject,
        span_days=span_days,
        drifting=drifting,
    ).events()
