"""The bottom layer: what flows through claimstream, and nothing that moves it.

Events (the input contract), outputs (alerts, commands, dead letters), rejections, consumed
records, rule-settings building blocks and event-time helpers. Imports nothing else of ours,
nothing of Kafka, Redis or faust, and never reads a clock or the environment.
"""
