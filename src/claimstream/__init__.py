"""claimstream: real-time monitor for medical-insurance fund settlements.

The detection core (`claimstream.core`, `claimstream.rules`) is pure Python and imports nothing
of Kafka or Redis; the stream worker, `replay` and the tests all drive the same core.
"""

__version__ = "0.1.0"
