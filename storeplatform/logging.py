"""Structured logs: one JSON object a line in production (LOG_FORMAT=json).

Every line logged while a worker runs an operation carries the store id, the
operation and the Celery task id (``log_context`` + ``ContextFilter``), so
the logs of one store can be pulled out of a busy worker's stream. Anything
passed in ``extra=`` (store, status, reason) lands as a top-level key too,
with the same reason strings as the store's events.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# Never mutated: log_context() sets a new dict and restores the old one.
_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("log_context", default=None)


@contextlib.contextmanager
def log_context(**values):
    """Add ``values`` to every log record made inside the block."""
    token = _context.set({**(_context.get() or {}), **values})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)
