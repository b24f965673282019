"""The detection agents of the worker: one per key kind, each a `Pipeline` (process, publish,
write state, in the at-least-once order) over its changelog-backed state table; plus the
follower of the control topic that swaps the rule configuration in force."""
