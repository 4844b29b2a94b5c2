"""Table builders for docs/results.md: each returns markdown lines computed from benchmarks/results/*.json."""
