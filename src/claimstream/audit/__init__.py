"""The tamper-evident audit trail: every alert, command, review and manual action, chained.

Each record carries the hash of the record before it in its chain (`prev_hash`), its own
(`hash`, SHA-256 over its RFC 8785 encoding: `canonical`) and a MAC under the writer's HMAC key
(`mac`, `keys`), so changing, removing, reordering, rewriting-and-re-hashing or appending a
record is seen and `verify` names it. Signed checkpoints of the chains' heads (`checkpoint`),
kept outside Kafka (`store`), show records cut from the end and whole chains dropped, to anyone
with the public key. The appender (`chain`) is a pure state machine like the rules:
JSON-shaped per-partition state, event time in, records out; the stream keeps one state per
audit-topic partition (`intake`). Keys and the checkpoint directory come from
`CLAIMSTREAM_AUDIT_*` (`settings`). docs/audit.md has the design and the threat model.
"""

from claimstream.audit.chain import AuditChain, new_state
from claimstream.audit.verify import Problem, VerifyReport, verify

__all__ = ["AuditChain", "Problem", "VerifyReport", "new_state", "verify"]
