"""A dispensing as the `trace_code` kind sees it: one small event per traceability code.

A dispensing line carrying N trace codes (药品追溯码, one per pack) belongs to N keys of the
`trace_code` kind. The worker forwards it N times to `claimstream.repartition.trace_code`, keyed
by each code; `replay` steps it N times. Both use the *view* built here, so the rules keyed by
code see the same event either way (stream = replay by construction):

* `slim(event, code)`: the JSON object forwarded for one code: a contract-valid dispensing
  holding only what the trace-code rules and their alerts read (ids, time, the drug, the line's
  quantity and days of supply) and `trace_codes: [code]`. About 280 bytes whatever the line
  carried (its other codes, drug name, ATC code, price, patient age and gender are dropped), so
  N codes cost N small records, not N copies of a line that itself grows with N;
* `view(event, code)`: the `Event` that `decode_event(slim(event, code))` gives, built without
  the encode and decode (a test checks they are equal).

`Event.key("trace_code")` of a view is its one code.
"""

from __future__ import annotations

from typing import Any

from claimstream.model.events import Dispense, Event


def slim(event: Event, code: str) -> dict[str, Any]:
    """The contract-v1 object forwarded for `code`, one of `event`'s trace codes."""
    body = event.body
    assert isinstance(body, Dispense)
    obj: dict[str, Any] = {
        "event_id": event.event_id,
        "event_type": "dispense",
        "occurred_at": event.occurred_at,
        "patient_id": event.patient_id,
        "institution_id": event.institution_id,
        "drug_code": body.drug_code,
        "days_supply": body.days_supply,
        "quantity": body.quantity,
        "trace_codes": [code],
    }
    if event.doctor_id is not None:
        obj["doctor_id"] = event.doctor_id
    if event.department_id is not None:
        obj["department_id"] = event.department_id
    return obj


def view(event: Event, code: str) -> Event:
    """`event` as the `trace_code` kind's key `code` sees it (equal to the decoded `slim`)."""
    body = event.body
    assert isinstance(body, Dispense)
    return Event(
        event.event_id,
        "dispense",
        event.occurred_at,
        event.ts,
        event.patient_id,
        event.institution_id,
        Dispense(body.drug_code, body.days_supply, body.quantity, trace_codes=(code,)),
        event.doctor_id,
        event.department_id,
        raw=slim(event, code),
    )


def views(event: Event) -> list[tuple[str, Event]]:
    """(code, view) for each of `event`'s trace codes; none for an event without any."""
    body = event.body
    if not isinstance(body, Dispense) or not body.trace_codes:
        return []
    return [(code, view(event, code)) for code in body.trace_codes]
