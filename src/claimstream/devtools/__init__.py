"""Development tools: the local broker (Tansu), simulated events, the demo and the benchmark.

Nothing in production imports these; they sit on top of every other layer.
"""
