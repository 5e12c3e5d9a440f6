"""Pieces of benchmarks/engine.py: roofline bytes, the transformer baseline, workloads and their
schedules, engine measurements, the report."""
