"""The freeze registry: where settlement commands take effect and settlement systems ask.

`base` holds the key scheme and the one decision rule, `memory` and `redis` the backends
(`redis.registry_from_url` chooses by URL), `rebuild` reconciles a registry with the commands
topic, `guard` notices a Redis that lost the registry and rebuilds it unasked, and `sink`
applies a batch of commands.
"""
