"""Where detection outputs go: a small base and one implementation per file.

`memory` and `jsonl` live here (replay and tests use them); the Kafka sink is in
`claimstream.kafka.sink` and the freeze-registry sink in `claimstream.freezes.sink`.
"""
