"""The tamper-evident audit trail: every alert, command, review and manual action, chained.

Each record carries the SHA-256 of the record before it in the same partition (`prev_hash`)
and its own (`hash`, over the canonical encoding of everything else in it), so changing,
removing or reordering a record breaks the chain at that point and `verify` names it. The
appender (`chain`) is a pure state machine like the rules: JSON-shaped per-partition state,
event time in, records out; the stream keeps one state per audit-topic partition.
"""

from claimstream.audit.chain import AuditChain, new_state
from claimstream.audit.verify import Problem, VerifyReport, verify

__all__ = ["AuditChain", "Problem", "VerifyReport", "new_state", "verify"]
