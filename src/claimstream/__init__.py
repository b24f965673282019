"""claimstream: real-time monitor for medical-insurance fund settlements.

Layers, each importing only those below it (an import-linter contract in pyproject.toml):
model -> reference -> rules -> detection -> sanctions -> audit -> kafka, freezes,
observability -> stream -> devtools -> cli. The detection core is pure Python; the stream
worker, `replay` and the tests all drive the same core.
"""

__version__ = "0.1.0"
