"""promptgauge's benchmark: `python -m benchmarks` from the repository root.

Every figure is measured beside a baseline taken in the same run and reported
as a ratio, because timings on a small shared machine are noisy.
"""
