"""The contracts every part of evalkit may import; they import nothing of evalkit outside this package.

types       Problem, SampleView, SamplingParams (defaults + validation), GenerationRequest, Completion,
            the Backend and Task protocols, stable_hash, derive_seed
errors      EvalkitError, BackendError, DataError; describe_os_error (a failed file operation in words)
settings    where the benchmark data is (--data-dir / $EVALKIT_DATA_DIR)
identity    content_hash (what a checkpoint or file is) and data_fingerprint (what was evaluated)
devices     check_device_dtype, resolve_device_dtype (torch imported only when called)
privacy     redact: a private task's prompt text out of what a backend returns
run_config  RunConfig (everything that changes a number -> run_id), Shard
records     the typed lines and files of a run folder: CompletionRecord, ScoreRecord, RunHeader, Results
files       atomic JSON, fsync'd JSONL appends, the torn-tail-tolerant JSONL reader, check_writable_folder
run_folder  RunFolder: the one code that knows a run folder's file names, shard files and schema version

The harness (planning, generation, scoring, results, report, serve) builds on these; `tasks/` and
`model_backends/` import only this package of evalkit; `evalkit/cli/` wires them together.
"""
