"""Benchmarks of tyk-approver: `python -m bench` (or `make bench`); see docs/performance.md."""
