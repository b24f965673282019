"""Event contract v1: the typed view of one settlement event.

Settlement systems publish one JSON object per message (see README, "Event contract", and
`topics/schemas/event.v1.json`). `claimstream.detection.decode` turns raw bytes into these objects;
everything downstream works on them and never on raw dicts. Treat them as immutable; they
are not declared frozen only because a frozen dataclass costs about three times as much to
build, and one is built for every event on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventType = Literal["dispense", "consultation", "admission", "discharge", "claim"]
EVENT_TYPES: frozenset[str] = frozenset(
    ("dispense", "consultation", "admission", "discharge", "claim")
)
#: The family of each event type: the input topic it travels on (settlement.<family>.v1).
#: Kafka keeps order per partition, so a patient's events are ordered within a family but not
#: across families; the engine therefore judges lateness per key and family.
FAMILY_OF: dict[str, str] = {
    "dispense": "dispensing",
    "consultation": "consultations",
    "admission": "stays",
    "discharge": "stays",
    "claim": "claims",
}
#: The years `occurred_at` may be written with (as written, in its own offset): the decoder
#: refuses any other as `implausible_timestamp`. Wide enough for any history and any sane
#: future, narrow enough that every calendar and formatting helper downstream (and a rule's
#: horizon of years beyond it) stays inside what `datetime` can represent (years 1..9999), so no
#: accepted event can crash anything. The configured plausible range (`DetectionConfig`) lies
#: within it.
EARLIEST_YEAR = 1900
LATEST_YEAR = 2199
#: Who an alert or a command can be about (subjects, scopes), and the ids every event names.
KeyKind = Literal["patient", "doctor", "institution"]
KEY_KINDS: tuple[KeyKind, ...] = ("patient", "doctor", "institution")
#: The kinds of key detection keeps state per: the three above, and the drug traceability code
#: (药品追溯码) a dispensing settles (`trace_code_reuse`). A trace code is never a subject: an alert
#: about a reused code is about the institution that settled it again. An event names one
#: patient, doctor and institution but any number of codes (`Event.keys`).
StateKind = Literal["patient", "doctor", "institution", "trace_code"]
STATE_KINDS: tuple[StateKind, ...] = (*KEY_KINDS, "trace_code")
#: At most this many trace codes on one dispensing line, each at most `TRACE_CODE_MAX_LENGTH`
#: characters of `ids.ID_CHARS` (the national codes are 20 digits; a code is a record key of
#: `claimstream.repartition.trace_code` and part of a pending-table key). A line with more, or
#: with the same code twice, is refused as `invalid_field`.
MAX_TRACE_CODES = 100
TRACE_CODE_MAX_LENGTH = 64


@dataclass(slots=True)
class Dispense:
    drug_code: str
    days_supply: int
    quantity: float
    drug_name: str | None = None
    atc_code: str | None = None
    long_term_rx: bool = False
    chronic: bool = False
    #: yuan per unit of `quantity` (optional): rules' amounts for dispensings need it
    unit_price: float | None = None
    #: the drug traceability codes (药品追溯码) of the packs settled on this line (optional,
    #: contract v1 additive): each pack's code may be settled once (`trace_code_reuse`)
    trace_codes: tuple[str, ...] = ()


@dataclass(slots=True)
class Consultation:
    mode: Literal["online", "offline"]
    consultation_id: str | None = None


@dataclass(slots=True)
class Stay:
    """The body of an `admission` or a `discharge`: both name the same hospital stay."""

    admission_id: str
    diagnosis_code: str
    emergency: bool = False
    #: a planned stay (a chemotherapy or radiotherapy cycle, a staged operation), as the
    #: admitting institution declares it (optional, contract v1 additive): the readmission
    #: rules may exempt it
    planned: bool = False


@dataclass(slots=True)
class ClaimItem:
    code: str
    category: Literal["drug", "exam", "lab", "service", "material"]
    quantity: float
    unit_price: float
    special_exam: bool = False


@dataclass(slots=True)
class Claim:
    claim_id: str
    visit_type: Literal["outpatient", "inpatient", "online"]
    total_amount: float
    fund_amount: float
    drg_code: str | None = None
    drg_standard_cost: float | None = None
    diagnosis_code: str | None = None
    institution_level: str | None = None
    items: tuple[ClaimItem, ...] = ()


Body = Dispense | Consultation | Stay | Claim


@dataclass(slots=True)
class Event:
    """One validated settlement event.

    `ts` is `occurred_at` as POSIX seconds: all windows compare these numbers. `occurred_at`
    keeps the producer's own spelling (with its UTC offset) for outputs. `raw` is the decoded
    JSON object as received, unknown extra fields included, so nothing a producer sent is lost.
    """

    event_id: str
    event_type: EventType
    occurred_at: str
    ts: float
    patient_id: str
    institution_id: str
    body: Body
    doctor_id: str | None = None
    department_id: str | None = None
    patient_age: int | None = None
    patient_gender: Literal["M", "F"] | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def key(self, kind: StateKind) -> str | None:
        """The id this event is keyed by for state of the given kind (None: not applicable).

        For `trace_code`: the code of an event that carries exactly one (a record re-keyed by
        code, `tracecodes.view`); an event with several has one key per code (`keys`)."""
        if kind == "patient":
            return self.patient_id
        if kind == "institution":
            return self.institution_id
        if kind == "doctor":
            return self.doctor_id
        codes = self.body.trace_codes if isinstance(self.body, Dispense) else ()
        return codes[0] if len(codes) == 1 else None

    def keys(self, kind: StateKind) -> tuple[str, ...]:
        """Every id this event is keyed by for state of the given kind (often one, or none)."""
        if kind == "trace_code":
            return self.body.trace_codes if isinstance(self.body, Dispense) else ()
        key = self.key(kind)
        return () if key is None else (key,)
