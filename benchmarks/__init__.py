"""Benchmarks of chuizi_async against what a user would otherwise write (see README.md).

Run ``python -m benchmarks`` (or ``python benchmarks/run.py``); ``--quick`` for a smoke check.
"""
