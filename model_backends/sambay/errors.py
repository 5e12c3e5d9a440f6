"""The engine's own errors. Each message is one line naming the problem and the fix; `backend.py` turns
them into the harness's BackendError with the message unchanged, so the engine imports nothing of it."""


class EngineError(Exception):
    """Base of every error the SambaY engine raises on purpose."""


class ConfigError(EngineError):
    """A configuration value the engine cannot use: config.json, an engine option, the ops mode."""


class CheckpointError(EngineError):
    """A checkpoint folder that cannot be used (files, tensors, tokenizer), with the reason and the fix."""


class RequestError(EngineError, ValueError):
    """A request the engine cannot run: empty or over-long prompt, bad sampling parameters."""
