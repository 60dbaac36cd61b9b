"""Measurements run by the benchmarks in fresh child processes (so each peak RSS is its own):
``python -m bench.measure.NAME ARGS`` prints one JSON line. Only public runtime API is used."""
