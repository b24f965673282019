"""Reference data the rules consult (drug classes, restrictions, exams, institution grades,
credentials: who may bill) and the doctors' suspensions in force.

The loader is in `loader`, the agreements and registrations in `credentials`, the
suspensions (fed from the commands topic, not from files) in `suspensions`; the packaged
illustrative defaults in `data/`.
"""

from claimstream.reference.credentials import Credentials, CredentialsError
from claimstream.reference.loader import (
    ReferenceData,
    ReferenceDataError,
    normalize_level,
)
from claimstream.reference.suspensions import Suspensions

__all__ = [
    "Credentials",
    "CredentialsError",
    "ReferenceData",
    "ReferenceDataError",
    "Suspensions",
    "normalize_level",
]
