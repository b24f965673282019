"""Sanctions: turning alerts into supervisors' decisions, as pure event-time state machines.

An alert is not yet an action. This package decides, per subject (institution, doctor, patient
card), what the regulations' step-by-step escalation does with it: a warning, a same-day FREEZE
on repetition, a SUSPEND that only a person lifts (`ladder`); doctor points per calendar year
(`points`); institution credit grades A-D (`grades`); per-rule precision from reviews and case
decisions (`precision`); what a case's decision does to its alerts and its subject
(`actions.CaseDecision`, `ladder.Escalation.on_case_decision`); which freezes are in force
given the commands (`ledger`); and the institution-department-doctor responsibility list
(`rollup`). `processor` runs these as the stream's batch steps (routing alerts, joining
people's actions with them, one state per subject, event-time ticks; `intake` is the action
intake it shares with the cases) and `view` answers the query API from a subject's state; both
are fed plain records, the faust wiring is `claimstream.stream.sanctions`.

Like `claimstream.detection`, nothing here imports Kafka, Redis or faust, or reads the wall clock:
state is JSON-shaped and passed in, time is event time passed in, settings are a parameter. The
stream keys these states by subject; tests drive them directly.
"""

from claimstream.sanctions.actions import CaseDecision, ManualUnfreeze, Remediation, Verdict
from claimstream.sanctions.decisions import Decision, GradeChange, PointsChange, WarningIssued
from claimstream.sanctions.ladder import Escalation
from claimstream.sanctions.ledger import Agreement, FreezeLedger, compare
from claimstream.sanctions.rollup import Rollup, rollup
from claimstream.sanctions.settings import (
    GradeSettings,
    LadderSettings,
    PointsSettings,
    SanctionSettings,
)

__all__ = [
    "Agreement",
    "CaseDecision",
    "Decision",
    "Escalation",
    "FreezeLedger",
    "GradeChange",
    "GradeSettings",
    "LadderSettings",
    "ManualUnfreeze",
    "PointsChange",
    "PointsSettings",
    "Remediation",
    "Rollup",
    "SanctionSettings",
    "Verdict",
    "WarningIssued",
    "compare",
    "rollup",
]
