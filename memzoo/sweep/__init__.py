"""Benchmark sweeps: named suites of run configs, jobs, the resumable runner and its executors
(local processes, Ray)."""
