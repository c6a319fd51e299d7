"""Event names, routing keys and CloudEvents envelopes (pure)."""

from __future__ import annotations

import json

import pytest

from services.common.bus.envelope import (
    EnvelopeError,
    EventName,
    build_envelope,
    parse_envelope,
    split_routing_key,
)

NAME = EventName.parse("registro.asiento.registrado.v1")


def test_event_name_parts_and_type() -> None:
    assert (NAME.service, NAME.aggregate, NAME.event, NAME.major) == (
        "registro",
        "asiento",
        "registrado",
        1,
    )
    assert NAME.ce_type == "es.consistorio.registro.asiento.registrado.v1"
    assert EventName.from_type(NAME.ce_type) == NAME


def test_routing_key_puts_the_tenant_first() -> None:
    assert NAME.routing_key("03014") == "03014.registro.asiento.registrado.v1"
    assert NAME.binding() == "*.registro.asiento.registrado.v1"
    assert split_routing_key("46250.registro.asiento.registrado.v1") == ("46250", NAME)


@pytest.mark.parametrize(
    "bad", ["registro.asiento.registrado", "registro.asiento.registrado.v0", "Registro.a.b.v1", ""]
)
def test_bad_event_names(bad: str) -> None:
    with pytest.raises(EnvelopeError):
        EventName.parse(bad)


@pytest.mark.parametrize("tenant", ["3014", "ABCDE", "030145", "*"])
def test_routing_key_refuses_a_bad_tenant(tenant: str) -> None:
    with pytest.raises(EnvelopeError):
        NAME.routing_key(tenant)


def test_envelope_round_trip() -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    env = build_envelope(
        NAME,
        tenant="03014",
        data={"numero": "E/2026/000001"},
        dataschema="https://consistorio.es/bus-contracts/registro/asiento-registrado/v1.json",
        subject="E/2026/000001",
        traceparent=traceparent,
    )
    assert env["specversion"] == "1.0"
    assert env["source"] == "/consistorio/registro"
    event = parse_envelope(json.dumps(env).encode())
    assert (event.id, event.tenant, event.name, event.traceparent, event.subject) == (
        env["id"],
        "03014",
        NAME,
        traceparent,
        "E/2026/000001",
    )
    assert event.data == {"numero": "E/2026/000001"}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.pop("tenantid"), "tenantid"),
        (lambda e: e.update(type="com.example.x"), "ajeno"),
        (lambda e: e.update(data=[1, 2]), "objeto"),
        (lambda e: e.pop("source"), "CloudEvent"),
    ],
)
def test_bad_envelopes_are_refused(mutate, message: str) -> None:
    env = build_envelope(NAME, tenant="03014", data={}, dataschema="https://x/y.json")
    mutate(env)
    with pytest.raises(EnvelopeError, match=message):
        parse_envelope(json.dumps(env).encode())


def test_non_json_body_is_refused() -> None:
    with pytest.raises(EnvelopeError, match="JSON"):
        parse_envelope(b"\xff not json")
    with pytest.raises(EnvelopeError, match="content-type"):
        parse_envelope(b"{}", content_type="text/plain")
