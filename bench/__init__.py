"""Keyturn's benchmark harness (issue #8): run it with ``bench/run`` (see ``bench/run --help``).

Not part of the Keyturn package and not part of ``make test``; tests/test_bench_harness.py
runs its quick mode to keep it working.
"""
