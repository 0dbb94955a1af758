"""What `make bench` measures, each figure beside a floor measured in the same run.

Benchmarks, not tests: they fill throw-away databases, start real processes (gunicorn, qcluster) and
print a table `| measure | studio | floor | ratio |`. The commands are in generations/management/commands
(bench_pipeline, bench_pump, bench_gallery); this package holds what they share. Nothing in the studio
imports it.
"""
