"""Baseline endpoints for `make bench` only: a constant and a bare validate-and-insert.

Installed only when ``BENCH_ENDPOINTS=true``, so they never exist in a real deployment.
"""
