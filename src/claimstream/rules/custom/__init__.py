"""Custom rules: rules a supervisor writes at run time, as configuration (docs/custom-rules.md).

`expressions`: the CEL expressions they are made of, compiled and type-checked once.
"""
