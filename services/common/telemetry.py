"""Tracing for every Consistorio process: one provider, instrumented HTTP, traced bus.

A citizen's request should be one trace from the registro HTTP call, through the
outbox and the bus, to the tramitador handler. This module sets up the
OpenTelemetry SDK once per process (OTLP/HTTP export when configured),
instruments FastAPI apps and httpx clients, and carries the W3C ``traceparent``
across the bus in the CloudEvents ``traceparent`` extension.

OpenTelemetry accepts a global tracer provider only once per process, so
:func:`configure_telemetry` is idempotent: later calls return the provider
already in force (see its docstring for what they may still add).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.propagate import set_global_textmap
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.common.settings import Settings

__all__ = [
    "TRACEPARENT",
    "configure_telemetry",
    "consume_span",
    "current_traceparent",
    "instrument_app",
    "instrument_httpx_client",
    "publish_span",
]

TRACEPARENT = "traceparent"
"""Name of the W3C header, and of the CloudEvents extension that carries it on the bus."""

_OTLP_TRACES_PATH = "/v1/traces"
# Probes are called every few seconds and say nothing about a citizen's request.
_EXCLUDED_URLS = "/healthz$,/readyz$"
_BUS_TRACER = "consistorio.bus"

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_provider: TracerProvider | None = None
_attached_exporters: list[SpanExporter] = []
_w3c = TraceContextTextMapPropagator()
# One tracer for every bus span: asking the provider for it each time builds a new one
# (a quarter of the span's cost, profiled). Obtained before configure_telemetry, it is
# a proxy that turns into the configured provider's tracer on first use after it.
_bus_tracer = trace.get_tracer(_BUS_TRACER)
# Whether this process's spans go anywhere: an OTLP endpoint, an exporter attached, or a
# provider set up by someone else (whose exporters we cannot see). Set by
# configure_telemetry; the relay's producer spans are made only when it is true.
_exporting = False


def _otlp_traces_endpoint(endpoint: str) -> str:
    """OTLP/HTTP traces URL for a collector base URL (the exporter does not append the path)."""
    base = endpoint.rstrip("/")
    return base if base.endswith(_OTLP_TRACES_PATH) else base + _OTLP_TRACES_PATH


def _build_provider(settings: Settings, service_name: str) -> TracerProvider:
    """A new SDK provider for this process, exporting over OTLP/HTTP when configured."""
    resource = Resource.create(
        {
            "service.name": service_name,
            "service.namespace": settings.otel_service_name,
            "deployment.environment.name": settings.environment,
        }
    )
    provider = TracerProvider(resource=resource)
    if settings.otel_exporter_otlp_endpoint:
        exporter = OTLPSpanExporter(
            endpoint=_otlp_traces_endpoint(settings.otel_exporter_otlp_endpoint)
        )
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def configure_telemetry(
    settings: Settings,
    *,
    service_name: str,
    span_exporter: SpanExporter | None = None,
) -> TracerProvider:
    """Sets up tracing for this process and returns the tracer provider in force.

    The first call builds a provider whose resource names ``service_name``
    (``service.namespace`` is ``settings.otel_service_name``), exports to
    ``settings.otel_exporter_otlp_endpoint`` over OTLP/HTTP when that is set,
    and installs it as the global provider. It also installs the W3C
    TraceContext propagator.

    OpenTelemetry refuses to replace a global provider, so later calls (another
    app factory in the same process, a test fixture) do not build a new one:
    they return the provider already in force, keeping its resource and OTLP
    exporter. ``span_exporter`` is still honoured on every call: it is attached
    to that provider with a :class:`SimpleSpanProcessor` (once per exporter
    object), which is how tests capture spans whatever ran before them. A
    provider installed by someone else (e.g. ``opentelemetry-instrument``) is
    adopted the same way.
    """
    global _provider, _exporting
    with _lock:
        set_global_textmap(TraceContextTextMapPropagator())
        if _provider is None:
            current = trace.get_tracer_provider()
            if isinstance(current, TracerProvider):
                _provider = current
                _exporting = True
            else:
                provider = _build_provider(settings, service_name)
                _exporting = bool(settings.otel_exporter_otlp_endpoint)
                if isinstance(current, trace.ProxyTracerProvider):
                    trace.set_tracer_provider(provider)
                else:
                    _exporting = True
                    _log.warning(
                        "A non-SDK tracer provider is already installed; "
                        "spans from instrumentation will not use Consistorio's provider"
                    )
                _provider = provider
        if span_exporter is not None and not any(
            span_exporter is attached for attached in _attached_exporters
        ):
            _provider.add_span_processor(SimpleSpanProcessor(span_exporter))
            _attached_exporters.append(span_exporter)
            _exporting = True
        return _provider


def instrument_app(app: FastAPI) -> None:
    """Gives every request to ``app`` a SERVER span (continuing an incoming traceparent).

    Liveness and readiness probes (``/healthz``, ``/readyz``) are not traced. The
    instrumentation's child spans for every ASGI ``send`` and ``receive`` message are
    left out: they say nothing the server span does not, and cost a tenth of a
    millisecond of CPU a request at each hop.
    """
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=_EXCLUDED_URLS, exclude_spans=["receive", "send"]
    )


def instrument_httpx_client(client: httpx.AsyncClient) -> None:
    """Gives every request made with ``client`` a CLIENT span and sends the traceparent.

    Only this client is instrumented (the installed instrumentation supports it),
    so clients that talk to third parties stay untouched unless asked for.
    """
    HTTPXClientInstrumentor.instrument_client(client)


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, or None outside any valid span.

    Written with an event into the outbox (CloudEvents ``traceparent``
    extension) so the relay and consumers continue the request's trace.
    """
    carrier: dict[str, str] = {}
    _w3c.inject(carrier)
    return carrier.get(TRACEPARENT)


def _parent_context(traceparent: str | None) -> Context:
    """Context whose parent is ``traceparent``; an empty context (new trace) if absent or invalid.

    The ambient context is ignored on purpose: a bus message belongs to the trace
    that produced it, not to whatever the consumer or relay loop was doing.
    """
    if not traceparent:
        return Context()
    return _w3c.extract({TRACEPARENT: traceparent}, context=Context())


@contextmanager
def consume_span(
    name: str, traceparent: str | None, attributes: Mapping[str, str]
) -> Iterator[Span]:
    """A CONSUMER span for handling one bus message, child of the event's traceparent.

    Exceptions raised inside are recorded on the span, which ends with an error status.
    """
    with _bus_tracer.start_as_current_span(
        name,
        context=_parent_context(traceparent),
        kind=SpanKind.CONSUMER,
        attributes={"messaging.operation.type": "process", **attributes},
    ) as span:
        yield span


@contextmanager
def publish_span(
    name: str, traceparent: str | None, attributes: Mapping[str, str]
) -> Iterator[Span]:
    """A PRODUCER span for the relay sending one outbox event, child of its stored traceparent.

    Inside it, :func:`current_traceparent` returns the producer span's
    traceparent; putting that on the wire makes consumers children of the
    publish, and the whole chain one trace.

    When this process exports no spans the span is not made (an invalid span is
    yielded and the current context left alone): the relay makes one for every event
    of the platform, and a span nobody exports cost a quarter of a relayed event's CPU.
    Log lines are not affected: the relay logs nothing inside it, and the spans of
    requests and consumers, whose ids the logs carry, are always made.
    """
    if not _exporting:
        yield INVALID_SPAN
        return
    with _bus_tracer.start_as_current_span(
        name,
        context=_parent_context(traceparent),
        kind=SpanKind.PRODUCER,
        attributes={"messaging.operation.type": "send", **attributes},
    ) as span:
        yield span
