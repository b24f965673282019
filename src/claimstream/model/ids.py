"""What an id may look like, and how ids go into composite keys without colliding.

Ids name subjects (patients, doctors, institutions, departments), events and drugs, and end up
in composite keys: the registry's `freeze:patient:PV:XA10AE04`, the commands topic's record
key, a sanctions subject `doctor:D1`. Joined with a separator an id may contain, two different
scopes can spell the same key (patient `PV` for drug `XA10AE04` and patient `PV:XA10AE04`).
Two defences, both here:

* the event contract refuses ids outside `ID_PATTERN` (letters, digits, `.`, `_`, `-`; 1 to
  `ID_MAX_LENGTH` characters): no separator, no space, nothing a URL path or a log line would
  mangle. A refused id is dead-lettered (`invalid_field`), never truncated or rewritten;
* `key_part` escapes `%` and `:` in a component of a composite key, so keys built from ids
  that did not come through the contract (an operator's manual UNFREEZE, an old record) are
  still unambiguous. It changes nothing in an id the contract accepts, so the keys of valid
  ids are the same as before it existed.
"""

from __future__ import annotations

import re

ID_MAX_LENGTH = 64
#: the characters an id may hold, as a regular-expression class
ID_CHARS = "A-Za-z0-9._-"
ID_PATTERN = f"^[{ID_CHARS}]{{1,{ID_MAX_LENGTH}}}$"
#: the event fields that are ids (subject ids, the event's own, the drug a FREEZE may name)
ID_FIELDS: tuple[str, ...] = (
    "event_id",
    "patient_id",
    "institution_id",
    "doctor_id",
    "department_id",
    "drug_code",
)

_VALID = re.compile(f"[{ID_CHARS}]{{1,{ID_MAX_LENGTH}}}").fullmatch


def is_valid_id(value: str) -> bool:
    """Whether `value` is an id the contract accepts."""
    return _VALID(value) is not None


def id_problem(name: str, value: str) -> str | None:
    """Why `value` is not a valid id for field `name` (one sentence), or None when it is."""
    if _VALID(value) is not None:
        return None
    if len(value) > ID_MAX_LENGTH:
        return f"{name} is {len(value)} characters long; ids are at most {ID_MAX_LENGTH}"
    bad = next((c for c in value if not _VALID(c)), "")
    return (
        f"{name} contains {bad!r}; ids are made of letters, digits, '.', '_' and '-' "
        f"(at most {ID_MAX_LENGTH} characters)"
    )


def key_part(value: str) -> str:
    """`value` as one component of a `:`-joined key: `%` and `:` percent-escaped.

    Injective, and the identity on every id the contract accepts.
    """
    if "%" in value or ":" in value:
        return value.replace("%", "%25").replace(":", "%3A")
    return value
