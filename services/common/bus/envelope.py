"""CloudEvents 1.0 envelopes, event names and routing keys.

An event name is ``<service>.<aggregate>.<event>.v<major>`` (as in the contracts).
Its CloudEvents ``type`` is ``es.consistorio.<name>`` and its routing key puts
the tenant first, ``<tenant>.<name>``, so broker topic permissions can confine a
backoffice to its own council. Messages travel in structured mode
(``application/cloudevents+json``) through the SDK's RabbitMQ binding.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.bindings.rabbitmq import RabbitMQMessage, from_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

__all__ = [
    "CONTENT_TYPE",
    "EnvelopeError",
    "EventName",
    "ReceivedEvent",
    "build_envelope",
    "parse_envelope",
    "split_routing_key",
]

CONTENT_TYPE = "application/cloudevents+json"
TYPE_PREFIX = "es.consistorio."
_WORD = r"[a-z][a-z0-9-]*"
_NAME = re.compile(
    rf"^(?P<service>{_WORD})\.(?P<aggregate>{_WORD})\.(?P<event>{_WORD})\.v(?P<major>[1-9]\d*)$"
)
_TENANT = re.compile(r"^\d{5}$")


class EnvelopeError(ValueError):
    """A message that is not a valid Consistorio CloudEvent (never retried)."""


@dataclass(frozen=True)
class EventName:
    """The versioned name of an event, e.g. ``registro.asiento.registrado.v1``."""

    service: str
    aggregate: str
    event: str
    major: int

    @classmethod
    def parse(cls, name: str) -> EventName:
        """Parses ``service.aggregate.event.vN``; raises EnvelopeError otherwise."""
        m = _NAME.match(name)
        if not m:
            raise EnvelopeError(f"nombre de evento no válido: {name!r}")
        return cls(m["service"], m["aggregate"], m["event"], int(m["major"]))

    @classmethod
    def from_type(cls, ce_type: str) -> EventName:
        """Parses a CloudEvents ``type`` (``es.consistorio.<name>``)."""
        if not ce_type.startswith(TYPE_PREFIX):
            raise EnvelopeError(f"tipo de evento ajeno a Consistorio: {ce_type!r}")
        return cls.parse(ce_type.removeprefix(TYPE_PREFIX))

    def __str__(self) -> str:
        return f"{self.service}.{self.aggregate}.{self.event}.v{self.major}"

    @property
    def ce_type(self) -> str:
        return TYPE_PREFIX + str(self)

    def routing_key(self, tenant: str) -> str:
        """``<tenant>.<service>.<aggregate>.<event>.v<major>``."""
        if not _TENANT.match(tenant):
            raise EnvelopeError(f"entidad no válida para la clave de enrutado: {tenant!r}")
        return f"{tenant}.{self}"

    def binding(self) -> str:
        """The topic pattern that receives this event for every tenant."""
        return f"*.{self}"


def split_routing_key(routing_key: str) -> tuple[str, EventName]:
    """Splits a routing key into its tenant and event name."""
    tenant, _, rest = routing_key.partition(".")
    if not _TENANT.match(tenant):
        raise EnvelopeError(f"clave de enrutado sin entidad: {routing_key!r}")
    return tenant, EventName.parse(rest)


def build_envelope(
    name: EventName,
    *,
    tenant: str,
    data: dict[str, Any],
    dataschema: str,
    subject: str | None = None,
    traceparent: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> dict[str, Any]:
    """A structured CloudEvent as a JSON-ready dict (what the outbox stores)."""
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": f"/consistorio/{name.service}",
        "type": name.ce_type,
        "time": (time or datetime.now(UTC)),
        "datacontenttype": "application/json",
        "dataschema": dataschema,
        "tenantid": tenant,
    }
    if subject:
        attributes["subject"] = subject
    if traceparent:
        attributes["traceparent"] = traceparent
    event = CloudEvent(attributes=attributes, data=data)
    return json.loads(JSONFormat().write(event))


@dataclass(frozen=True)
class ReceivedEvent:
    """An event taken off the bus, its envelope checked."""

    id: str
    name: EventName
    tenant: str
    data: dict[str, Any]
    subject: str | None
    traceparent: str | None
    envelope: dict[str, Any]


def parse_envelope(body: bytes, *, content_type: str | None = CONTENT_TYPE) -> ReceivedEvent:
    """Reads a structured CloudEvent; raises EnvelopeError naming what is wrong."""
    if content_type and not content_type.startswith(CONTENT_TYPE):
        raise EnvelopeError(f"content-type {content_type!r}: se espera {CONTENT_TYPE}")
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"el cuerpo no es JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EnvelopeError("el cuerpo no es un objeto CloudEvents")
    try:
        event = from_structured(
            RabbitMQMessage(headers={}, content_type=CONTENT_TYPE, body=body),
            JSONFormat(),
            CloudEvent,
        )
    except Exception as exc:
        raise EnvelopeError(f"CloudEvent no válido: {exc}") from exc
    tenant = raw.get("tenantid")
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        raise EnvelopeError("falta la extensión 'tenantid' (código INE de 5 dígitos)")
    data = event.get_data()
    if not isinstance(data, dict):
        raise EnvelopeError("'data' debe ser un objeto JSON")
    return ReceivedEvent(
        id=str(event.get_id()),
        name=EventName.from_type(str(event.get_type())),
        tenant=tenant,
        data=data,
        subject=raw.get("subject"),
        traceparent=raw.get("traceparent"),
        envelope=raw,
    )
