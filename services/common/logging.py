"""Process-wide logging: one handler, JSON lines in deployment, trace ids everywhere.

Logs are read by machines (one JSON object per line) and joined to traces by
``trace_id``/``span_id``, so a line can be found from a trace and back. Values
of secret-looking ``extra=`` keys are redacted: key material and tokens must
never reach a log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace
from opentelemetry.trace import format_span_id, format_trace_id

from services.common.settings import Settings

__all__ = [
    "REDACTED",
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
    "redact",
    "wants_json",
]

REDACTED = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"passw(or)?d|secret|token|authori[sz]ation|private[_-]?key|api[_-]?key|credential|cookie",
    re.IGNORECASE,
)
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
# Libraries that log a line at INFO for every request they make or serve (httpx writes
# "HTTP Request: POST ..." for each call the gateway relays): at INFO that is one line a
# hop, a cost on every request and noise in every log. They speak from WARNING, or at
# DEBUG when the whole process does. (uvicorn's access log is off in every server:
# services.common.http_server.)
_PER_REQUEST_LOGGERS = ("httpx", "httpcore")
_TEXT_FORMAT = (
    "%(asctime)s %(levelname)-8s %(name)s [trace_id=%(trace_id)s span_id=%(span_id)s] %(message)s"
)


def redact(value: Any) -> Any:
    """Copy of ``value`` with values under secret-looking keys replaced, at any depth."""
    if isinstance(value, Mapping):
        return {k: REDACTED if _SECRET_KEY.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _trace_ids() -> tuple[str | None, str | None]:
    """Hex trace and span ids of the current span (OTel format), or Nones outside one."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return format_trace_id(ctx.trace_id), format_span_id(ctx.span_id)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """The record's ``extra=`` fields that are JSON-serialisable, redacted."""
    out: dict[str, Any] = {}
    for key, value in record.__dict__.items():
        if key in _RECORD_ATTRS or key.startswith("_"):
            continue
        if _SECRET_KEY.search(key):
            out[key] = REDACTED
            continue
        safe = redact(value)
        try:
            json.dumps(safe)
        except (TypeError, ValueError):
            continue
        out[key] = safe
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the service name and the current trace ids."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self._service = service_name

    def format(self, record: logging.LogRecord) -> str:
        """Renders ``record`` as a single-line JSON object."""
        trace_id, span_id = _trace_ids()
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self._service,
        }
        if trace_id is not None:
            entry["trace_id"] = trace_id
            entry["span_id"] = span_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in _extras(record).items():
            entry.setdefault(key, value)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Readable lines for development that still carry trace ids and (redacted) extras."""

    def __init__(self, service_name: str) -> None:
        super().__init__(_TEXT_FORMAT)
        self._service = service_name

    def format(self, record: logging.LogRecord) -> str:
        """Renders ``record`` as text, with ``key=value`` extras after the message."""
        trace_id, span_id = _trace_ids()
        record.__dict__.update(trace_id=trace_id or "-", span_id=span_id or "-")
        try:
            line = super().format(record)
        finally:
            record.__dict__.pop("trace_id", None)
            record.__dict__.pop("span_id", None)
        extras = _extras(record)
        if extras:
            pairs = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in extras.items())
            head, sep, rest = line.partition("\n")
            line = f"{head} {pairs}{sep}{rest}"
        return line


class _ConsistorioHandler(logging.StreamHandler[TextIO]):
    """Marks the handler :func:`configure_logging` owns, so a second call replaces it."""


def wants_json(settings: Settings, stream: TextIO | None = None) -> bool:
    """JSON lines unless a person reads them: a terminal, outside production, LOG_JSON unset.

    An explicit ``LOG_JSON`` always wins; production is JSON whatever the terminal.
    """
    if "log_json" in settings.model_fields_set or settings.environment == "production":
        return settings.log_json
    target = stream if stream is not None else sys.stderr
    return not (hasattr(target, "isatty") and target.isatty())


def configure_logging(settings: Settings, *, service_name: str) -> None:
    """Routes all logging of this process through one handler on the root logger.

    The root level is ``settings.log_level``; lines are JSON unless
    :func:`wants_json` says a person reads them, then readable text. Calling again
    replaces the handler (no duplicates); handlers added by others stay.
    uvicorn's loggers lose their own handlers and propagate to the root, so
    start uvicorn with ``log_config=None`` or it will install its own again.
    """
    root = logging.getLogger()
    root.setLevel(settings.log_level.upper())
    for previous in [h for h in root.handlers if isinstance(h, _ConsistorioHandler)]:
        root.removeHandler(previous)
        previous.close()
    handler = _ConsistorioHandler(sys.stderr)
    formatter: logging.Formatter = (
        JsonFormatter(service_name) if wants_json(settings) else TextFormatter(service_name)
    )
    handler.setFormatter(formatter)
    root.addHandler(handler)
    for name in _UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        for old in list(uvicorn_logger.handlers):
            uvicorn_logger.removeHandler(old)
        uvicorn_logger.setLevel(logging.NOTSET)
        uvicorn_logger.propagate = True
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in _PER_REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
