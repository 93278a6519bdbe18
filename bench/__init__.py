"""Benchmarks, run by hand (`make bench`, `make bench-retrieval`, ...): each prints a table with ratios against a
baseline measured in the same run. Run as modules from the repository root (`python -m bench.<name>`)."""
