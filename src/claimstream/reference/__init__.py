"""Reference data the rules consult (drug classes, restrictions, exams, institution grades).

The loader is in `loader`; the packaged illustrative defaults in `data/`.
"""

from claimstream.reference.loader import (
    ReferenceData,
    ReferenceDataError,
    normalize_level,
)

__all__ = ["ReferenceData", "ReferenceDataError", "normalize_level"]
