"""Runs split over several workers: `--data-parallel N` (worker processes on this machine) and `--ray`
(Ray tasks on a cluster). Each worker runs one shard (`Shard(i, N)`, as `--shard i/N` does) into the ONE
run folder; the parent watches the shard files grow for its progress line and scores once at the end.

The harness never builds a backend: the CLI hands this package a `ShardJob` per shard and the function
(or command) that runs one, so the wiring stays in evalkit/cli/.
"""
