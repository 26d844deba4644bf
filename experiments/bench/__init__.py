"""Runtime benchmarks: each prints a table and writes JSON."""
