"""The pure detection core: events, rules' per-key state, outputs.

Nothing in here imports Kafka, Redis or faust, and nothing reads the wall clock or the
environment: the clock and the configuration are parameters. The stream worker, `replay` and
the tests drive this same code, so stream and replay agree by construction.
"""
