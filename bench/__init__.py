"""Benchmarks of dqueue against a raw-SQL floor: see bench/README.md and docs/benchmarks.md."""
