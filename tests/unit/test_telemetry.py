"""Tracing and logging set-up: trace continuity across HTTP and the bus, log/trace joins.

OpenTelemetry accepts one global tracer provider per process, so the provider is
configured once for this module and shared; ``configure_telemetry`` attaches the
in-memory exporter to whatever provider is in force, and each test starts with
the exporter cleared.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

from services.common import logging as consistorio_logging
from services.common import telemetry
from services.common.logging import REDACTED, configure_logging
from services.common.settings import Settings, load_settings
from services.common.telemetry import (
    _otlp_traces_endpoint,
    configure_telemetry,
    consume_span,
    current_traceparent,
    instrument_app,
    instrument_httpx_client,
    publish_span,
)

REMOTE_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
REMOTE_SPAN_ID = "00f067aa0ba902b7"
REMOTE_TRACEPARENT = f"00-{REMOTE_TRACE_ID}-{REMOTE_SPAN_ID}-01"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(environment="test", otel_exporter_otlp_endpoint=None)


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def provider(settings: Settings, exporter: InMemorySpanExporter) -> TracerProvider:
    return configure_telemetry(settings, service_name="test-telemetry", span_exporter=exporter)


@pytest.fixture
def spans(provider: TracerProvider, exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    exporter.clear()
    return exporter


@pytest.fixture
def tracer(provider: TracerProvider) -> trace.Tracer:
    return provider.get_tracer("tests.telemetry")


def _only(finished: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    matching = [s for s in finished if s.name == name]
    assert len(matching) == 1, [s.name for s in finished]
    return matching[0]


# --- provider -----------------------------------------------------------------


def test_configure_telemetry_is_idempotent_and_global(
    settings: Settings, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    again = configure_telemetry(settings, service_name="another-name", span_exporter=exporter)
    assert again is provider
    assert trace.get_tracer_provider() is provider


def test_exporter_attached_once_even_if_passed_again(
    settings: Settings, spans: InMemorySpanExporter, tracer: trace.Tracer
) -> None:
    configure_telemetry(settings, service_name="test-telemetry", span_exporter=spans)
    with tracer.start_as_current_span("once"):
        pass
    assert [s.name for s in spans.get_finished_spans()] == ["once"]


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://collector:4318", "http://collector:4318/v1/traces"),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
        ("http://collector:4318/v1/traces", "http://collector:4318/v1/traces"),
    ],
)
def test_otlp_endpoint_gets_traces_path_once(endpoint: str, expected: str) -> None:
    assert _otlp_traces_endpoint(endpoint) == expected


# --- bus propagation -------------------------------------------------------------


def test_current_traceparent_matches_current_span(tracer: trace.Tracer) -> None:
    assert current_traceparent() is None
    with tracer.start_as_current_span("outbox-write") as span:
        ctx = span.get_span_context()
        traceparent = current_traceparent()
    assert traceparent is not None
    version, trace_id, span_id, flags = traceparent.split("-")
    assert (version, trace_id, span_id) == (
        "00",
        format_trace_id(ctx.trace_id),
        format_span_id(ctx.span_id),
    )
    assert int(flags, 16) & 0x01, "sampled flag"


def test_consume_span_continues_the_trace_as_consumer(spans: InMemorySpanExporter) -> None:
    with consume_span(
        "tramitador consume", REMOTE_TRACEPARENT, {"messaging.destination.name": "q"}
    ) as span:
        assert current_traceparent() is not None
        assert span.is_recording()

    consumed = _only(spans.get_finished_spans(), "tramitador consume")
    assert consumed.kind is SpanKind.CONSUMER
    assert format_trace_id(consumed.context.trace_id) == REMOTE_TRACE_ID
    assert consumed.parent is not None
    assert format_span_id(consumed.parent.span_id) == REMOTE_SPAN_ID
    assert consumed.parent.is_remote
    assert consumed.attributes is not None
    assert consumed.attributes["messaging.destination.name"] == "q"


def test_consume_span_without_traceparent_starts_a_new_trace(
    spans: InMemorySpanExporter, tracer: trace.Tracer
) -> None:
    with tracer.start_as_current_span("consumer-loop") as loop, consume_span("orphan", None, {}):
        pass
    orphan = _only(spans.get_finished_spans(), "orphan")
    assert orphan.parent is None
    assert orphan.context.trace_id != loop.get_span_context().trace_id


def test_consume_span_records_handler_failure(spans: InMemorySpanExporter) -> None:
    with pytest.raises(RuntimeError), consume_span("failing", REMOTE_TRACEPARENT, {}):
        raise RuntimeError("handler broke")
    failed = _only(spans.get_finished_spans(), "failing")
    assert not failed.status.is_ok
    assert [e.name for e in failed.events] == ["exception"]


def test_request_outbox_relay_consumer_is_one_trace(
    spans: InMemorySpanExporter, tracer: trace.Tracer
) -> None:
    with tracer.start_as_current_span("POST /registros") as request:
        stored = current_traceparent()
    with publish_span("relay publish", stored, {"messaging.system": "rabbitmq"}):
        on_the_wire = current_traceparent()
    with consume_span("tramitador consume", on_the_wire, {}):
        pass

    finished = spans.get_finished_spans()
    published = _only(finished, "relay publish")
    consumed = _only(finished, "tramitador consume")
    trace_id = request.get_span_context().trace_id
    assert published.kind is SpanKind.PRODUCER
    assert published.context.trace_id == trace_id
    assert published.parent is not None
    assert published.parent.span_id == request.get_span_context().span_id
    assert consumed.context.trace_id == trace_id
    assert consumed.parent is not None
    assert consumed.parent.span_id == published.context.span_id


def test_no_producer_span_is_made_when_the_process_exports_none(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay's span per event costs CPU; with nowhere to send it, it is not made."""
    monkeypatch.setattr(telemetry, "_exporting", False)
    with publish_span("relay publish", REMOTE_TRACEPARENT, {}) as span:
        inside = current_traceparent()
    assert not span.is_recording()
    assert inside is None
    assert spans.get_finished_spans() == ()


def test_configuring_an_exporter_turns_producer_spans_on(
    settings: Settings, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(telemetry, "_exporting", False)
    configure_telemetry(
        settings, service_name="test-telemetry", span_exporter=InMemorySpanExporter()
    )
    with publish_span("relay publish", REMOTE_TRACEPARENT, {}) as span:
        assert span.is_recording()
    assert _only(spans.get_finished_spans(), "relay publish").kind is SpanKind.PRODUCER


# --- HTTP instrumentation -------------------------------------------------------


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id, "traceparent": current_traceparent() or ""}

    @app.get("/echo")
    async def echo(request: Request) -> dict[str, str]:
        return {"traceparent": request.headers.get("traceparent", "")}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    instrument_app(app)
    return app


async def test_instrumented_app_produces_a_server_span(spans: InMemorySpanExporter) -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://registro") as client:
        response = await client.get("/items/42")
        health = await client.get("/healthz")
    assert response.status_code == 200
    assert health.status_code == 200

    servers = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert [s.name for s in servers] == ["GET /items/{item_id}"]
    server = servers[0]
    assert server.resource.attributes["service.name"] == "test-telemetry"
    handler_tp = response.json()["traceparent"]
    assert format_trace_id(server.context.trace_id) in handler_tp


async def test_instrumented_client_sends_its_span_as_traceparent(
    spans: InMemorySpanExporter,
) -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://registro") as client:
        instrument_httpx_client(client)
        response = await client.get("/echo")
    assert response.status_code == 200

    client_spans = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert len(client_spans) == 1
    ctx = client_spans[0].context
    received = response.json()["traceparent"]
    assert received.startswith(f"00-{format_trace_id(ctx.trace_id)}-{format_span_id(ctx.span_id)}-")


# --- logging --------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Puts the root and uvicorn loggers back as they were, for the rest of the suite."""
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore"]
    saved = {
        n: (
            list(logging.getLogger(n).handlers),
            logging.getLogger(n).level,
            logging.getLogger(n).propagate,
        )
        for n in names
    }
    yield
    for n, (handlers, level, propagate) in saved.items():
        lg = logging.getLogger(n)
        for h in list(lg.handlers):
            if h not in handlers:
                lg.removeHandler(h)
                h.close()
        for h in handlers:
            if h not in lg.handlers:
                lg.addHandler(h)
        lg.setLevel(level)
        lg.propagate = propagate


def _our_handlers() -> list[logging.Handler]:
    return [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, consistorio_logging._ConsistorioHandler)
    ]


def _capture(settings: Settings) -> io.StringIO:
    configure_logging(settings, service_name="test-logging")
    (handler,) = _our_handlers()
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    return buffer


def _json_lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.mark.usefixtures("restore_logging")
def test_log_inside_a_span_is_json_with_its_trace_id(
    settings: Settings, tracer: trace.Tracer
) -> None:
    buffer = _capture(settings.model_copy(update={"log_json": True, "log_level": "info"}))
    with tracer.start_as_current_span("handler") as span:
        logging.getLogger("consistorio.test").info(
            "registro %s creado", "R-1", extra={"expediente": "E-9", "n": 3}
        )
    ctx = span.get_span_context()

    (entry,) = _json_lines(buffer)
    assert entry["message"] == "registro R-1 creado"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "consistorio.test"
    assert entry["service"] == "test-logging"
    assert entry["trace_id"] == format_trace_id(ctx.trace_id)
    assert entry["span_id"] == format_span_id(ctx.span_id)
    assert entry["expediente"] == "E-9"
    assert entry["n"] == 3
    assert isinstance(entry["ts"], str)
    assert entry["ts"].endswith("Z")


@pytest.mark.usefixtures("restore_logging")
def test_log_outside_a_span_has_no_trace_id_and_renders_exceptions(
    settings: Settings,
) -> None:
    buffer = _capture(settings.model_copy(update={"log_json": True}))
    try:
        raise ValueError("mal")
    except ValueError:
        logging.getLogger("consistorio.test").exception("fallo", extra={"obj": object()})

    (entry,) = _json_lines(buffer)
    assert "trace_id" not in entry
    assert "obj" not in entry
    assert isinstance(entry["exception"], str)
    assert "ValueError: mal" in entry["exception"]


@pytest.mark.usefixtures("restore_logging")
def test_secret_extras_are_redacted(settings: Settings) -> None:
    buffer = _capture(settings.model_copy(update={"log_json": True}))
    logging.getLogger("consistorio.test").warning(
        "llamada",
        extra={
            "token": "eyJhbGciOi.secret.sig",
            "headers": {"Authorization": "Bearer abc", "accept": "application/json"},
            "user": "ana",
        },
    )

    raw = buffer.getvalue()
    assert "eyJhbGciOi" not in raw
    assert "Bearer abc" not in raw
    (entry,) = _json_lines(buffer)
    assert entry["token"] == REDACTED
    assert entry["headers"] == {"Authorization": REDACTED, "accept": "application/json"}
    assert entry["user"] == "ana"


@pytest.mark.usefixtures("restore_logging")
def test_text_format_shows_trace_id_and_redacts(settings: Settings, tracer: trace.Tracer) -> None:
    buffer = _capture(settings.model_copy(update={"log_json": False}))
    with tracer.start_as_current_span("handler") as span:
        logging.getLogger("consistorio.test").info("hola", extra={"password": "hunter2"})

    line = buffer.getvalue()
    assert f"trace_id={format_trace_id(span.get_span_context().trace_id)}" in line
    assert "hola" in line
    assert "hunter2" not in line
    assert REDACTED in line


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_twice_keeps_one_handler(settings: Settings) -> None:
    configure_logging(settings, service_name="a")
    configure_logging(settings.model_copy(update={"log_level": "debug"}), service_name="b")
    assert len(_our_handlers()) == 1
    assert logging.getLogger().level == logging.DEBUG


@pytest.mark.usefixtures("restore_logging")
def test_uvicorn_logs_go_through_the_same_handler(settings: Settings) -> None:
    logging.getLogger("uvicorn.access").addHandler(logging.StreamHandler(io.StringIO()))
    logging.getLogger("uvicorn.access").propagate = False
    buffer = _capture(settings.model_copy(update={"log_json": True, "log_level": "INFO"}))

    logging.getLogger("uvicorn.access").info('%s - "%s %s"', "1.2.3.4", "GET", "/x")
    logging.getLogger("uvicorn.error").info("Started", extra={"color_message": "\x1b[1mStarted"})

    entries = _json_lines(buffer)
    assert [e["logger"] for e in entries] == ["uvicorn.access", "uvicorn.error"]
    assert entries[0]["message"] == '1.2.3.4 - "GET /x"'
    assert "color_message" not in entries[1]
    assert logging.getLogger("uvicorn.access").handlers == []


@pytest.mark.usefixtures("restore_logging")
async def test_a_relayed_request_writes_no_info_line(settings: Settings) -> None:
    """httpx's line per request ("HTTP Request: POST ...") is one log line a hop at INFO;
    it is kept for DEBUG."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    for level, expected in (("info", 0), ("debug", 1)):
        buffer = _capture(settings.model_copy(update={"log_json": True, "log_level": level}))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
            await client.get("http://servicio/api/v1/registro/eco")
        lines = [e for e in _json_lines(buffer) if "HTTP Request" in str(e["message"])]
        assert len(lines) == expected, (level, lines)
