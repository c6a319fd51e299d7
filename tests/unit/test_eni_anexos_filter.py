"""The eni-anexos consumer refuses, before any transaction, the events that cannot bring
an anexo into a foliado: the contracts' own examples, as the bus carries them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.common.bus.consumer import replies_to
from services.common.bus.envelope import EventName, ReceivedEvent, build_envelope, parse_envelope
from services.tramitador.eni.handlers import (
    DOCUMENTO_ALMACENADO,
    EXPEDIENTE_INICIADO,
    puede_traer_anexos,
)

_EXAMPLES = Path(__file__).parents[2] / "bus-contracts" / "examples"


def _example(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((_EXAMPLES / path).read_text(encoding="utf-8"))
    return data


def _event(name: str, data: dict[str, Any]) -> ReceivedEvent:
    envelope = build_envelope(
        EventName.parse(name), tenant="03014", data=data, dataschema="https://example.org/s"
    )
    return parse_envelope(json.dumps(envelope).encode())


def test_a_document_stored_as_an_asientos_anexo_is_wanted_and_an_issued_one_is_not() -> None:
    almacenado = _example("repositorio/documento-almacenado/v1/minimal.json")
    assert "referencia" not in almacenado

    assert not puede_traer_anexos(_event(DOCUMENTO_ALMACENADO, almacenado))
    anexo = {**almacenado, "referencia": {"tipo": "asiento", "id": "0195a3c4-1f0a-7d2e"}}
    assert puede_traer_anexos(_event(DOCUMENTO_ALMACENADO, anexo))
    otro = {**almacenado, "referencia": {"tipo": "expediente", "id": "0195a3c4-1f0a-7d2e"}}
    assert not puede_traer_anexos(_event(DOCUMENTO_ALMACENADO, otro))


@pytest.mark.parametrize(("example", "wanted"), [("full.json", True), ("oficio.json", False)])
def test_an_expediente_is_wanted_when_an_asiento_opened_it(example: str, wanted: bool) -> None:
    iniciado = _example(f"tramitador/expediente-iniciado/v1/{example}")

    assert puede_traer_anexos(_event(EXPEDIENTE_INICIADO, iniciado)) is wanted


def test_a_reply_is_wanted_by_its_solicitante_or_when_it_names_none() -> None:
    emitido = _example("repositorio/documento-emitido/v1/minimal.json")
    name = "repositorio.documento.emitido.v1"
    wants = replies_to("registro")

    assert wants(_event(name, {**emitido, "solicitante": "registro"}))
    assert wants(_event(name, emitido))
    assert not wants(_event(name, {**emitido, "solicitante": "pagos"}))
