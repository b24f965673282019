"""The rule catalogue: one module per rule, registered here by name.

To add a rule: write `rules/<name>.py` with a `Rule` subclass and its `Settings` (on the shared
pieces of `rules.kit` when it keeps state), and add it to `RULES`. Nothing else changes: the
engine, config, replay and the worker read this registry. `docs/rules.md` has the catalogue
and a worked example.
"""

from __future__ import annotations

from typing import Any

from claimstream.rules.base import Rule
from claimstream.rules.chronic_polypharmacy import ChronicPolypharmacy
from claimstream.rules.combination_without_indication import CombinationWithoutIndication
from claimstream.rules.contraindication import Contraindication
from claimstream.rules.diagnosis_cluster import DiagnosisCluster
from claimstream.rules.doctor_consultation_rate import DoctorConsultationRate
from claimstream.rules.doctor_not_registered import DoctorNotRegistered
from claimstream.rules.drg_high_multiplier import DrgHighMultiplier
from claimstream.rules.duplicate_exam import DuplicateExam
from claimstream.rules.excess_quantity import ExcessQuantity
from claimstream.rules.gender_age_restriction import GenderAgeRestriction
from claimstream.rules.high_frequency_consultation import HighFrequencyConsultation
from claimstream.rules.institution_cost_jump import InstitutionCostJump
from claimstream.rules.institution_indicators import InstitutionIndicators
from claimstream.rules.institution_not_qualified import InstitutionNotQualified
from claimstream.rules.item_diagnosis_mismatch import ItemDiagnosisMismatch
from claimstream.rules.missed_refill import MissedRefill
from claimstream.rules.out_of_scope_online_care import OutOfScopeOnlineCare
from claimstream.rules.peer_outlier import PeerOutlier
from claimstream.rules.readmission_24h import Readmission24h
from claimstream.rules.repeat_dispensing import RepeatDispensing
from claimstream.rules.special_exam_repeat import SpecialExamRepeat
from claimstream.rules.split_hospitalization import SplitHospitalization
from claimstream.rules.trace_code_reuse import TraceCodeReuse

RULES: dict[str, type[Rule[Any]]] = {
    rule.name: rule
    for rule in (
        RepeatDispensing,
        HighFrequencyConsultation,
        Readmission24h,
        SplitHospitalization,
        SpecialExamRepeat,
        ChronicPolypharmacy,
        ExcessQuantity,
        DuplicateExam,
        DrgHighMultiplier,
        Contraindication,
        GenderAgeRestriction,
        DoctorConsultationRate,
        InstitutionCostJump,
        DiagnosisCluster,
        InstitutionNotQualified,
        DoctorNotRegistered,
        OutOfScopeOnlineCare,
        CombinationWithoutIndication,
        ItemDiagnosisMismatch,
        MissedRefill,
        TraceCodeReuse,
        InstitutionIndicators,
        PeerOutlier,
    )
}
