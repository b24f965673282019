"""Who an alert is held against, and how much money it is about.

An alert has one `subject` (usually the patient), but the regulations hold the institution and
the doctor who billed it to account as well: a readmission alert is about a patient and counts
against the readmitting hospital. So every alert escalates for each subject it names, and the
stream re-keys it once per subject (as the engine does per key kind). Which kinds escalate is
configuration (`LadderSettings.kinds`).
"""

from __future__ import annotations

from claimstream.model.outputs import SEVERITIES, Alert, Severity, Subject


def subjects_of(alert: Alert, kinds: tuple[str, ...]) -> list[Subject]:
    """The distinct subjects the alert counts against, in (institution, doctor, patient) order."""
    named: list[Subject] = []
    if alert.institution_id:
        named.append(Subject("institution", alert.institution_id))
    if alert.doctor_id:
        named.append(Subject("doctor", alert.doctor_id))
    if alert.patient_id:
        named.append(Subject("patient", alert.patient_id))
    if alert.subject not in named:
        named.append(alert.subject)
    return [s for s in named if s.kind in kinds]


def amount_of(alert: Alert, fields: tuple[str, ...]) -> float:
    """The suspicious amount: the alert's `amount` (the rule's violation amount in yuan), else,
    for an alert without one (published before alerts had it, or whose events carry no
    price), the first positive numeric `details` field among `fields`, else 0."""
    if alert.amount is not None and alert.amount > 0:
        return float(alert.amount)
    for name in fields:
        value = alert.details.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
    return 0.0


def severity_at_least(severity: str, minimum: Severity) -> bool:
    return severity in SEVERITIES and SEVERITIES.index(severity) >= SEVERITIES.index(minimum)
