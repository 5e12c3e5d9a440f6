"""`evalkit serve`: an OpenAI-compatible HTTP server on top of any Backend.

- service.py:   GenerationService, the one generation loop all HTTP requests share (read its contract);
- params.py:    which OpenAI parameters are honoured, accepted as harmless, or refused;
- protocol.py:  request validation (-> ServeRequest) and ApiError;
- responses.py: response bodies and SSE stream chunks in the OpenAI wire format;
- app.py:       the Starlette app (routes, body timeout, streaming, disconnect -> abort);
- server.py:    socket binding and uvicorn (foreground or a background thread).

This package imports nothing of model_backends: the CLI hands it a backend and a ServedModel built
from the backend's `render_prompt`, `context_limit` and tokenizer.
"""
