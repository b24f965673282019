"""Detection: the pure core the worker, `replay`, the check API and the tests all drive.

`decode` turns bytes into events, `engine` steps one event against one key's state with the
rules of a `DetectionConfig`, `detector` and `replay` drive it over a file in memory, and
`processor` over a batch of consumed records for the stream. Nothing here imports Kafka,
Redis or faust; the clock and the configuration are parameters.
"""
