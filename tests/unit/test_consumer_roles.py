"""Which process consumes which queue: every consumer in ``up``; in Kubernetes the
Deployment that serves HTTP takes the cheap consumers and the document workers the rest."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.bus.envelope import ReceivedEvent
from services.common.runtime import ConsumerSpec, consumes
from services.common.settings import Settings
from services.common.uow import UnitOfWork
from services.notificaciones import handlers as notificaciones
from services.notificaciones.clock import SystemClock
from services.pagos import handlers as pagos
from services.registro import handlers as registro
from services.tramitador import handlers as tramitador


async def _nothing(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """A handler that is never called."""


CHEAP = ConsumerSpec(name="expedientes", events=("x.y.z.v1",), handler=_nothing)
DOCUMENTS = ConsumerSpec(
    name="justificantes", events=("x.y.z.v1",), handler=_nothing, documents=True
)


@pytest.mark.parametrize(
    ("role", "cheap", "documents"),
    [("all", True, True), ("cheap", True, False), ("documents", False, True)],
)
def test_each_role_takes_its_consumers(role: str, cheap: bool, documents: bool) -> None:
    assert consumes(role, CHEAP) is cheap
    assert consumes(role, DOCUMENTS) is documents


def test_the_justificante_consumer_is_a_document_consumer_and_its_answers_are_cheap() -> None:
    specs = {spec.name: spec for spec in registro.consumers(None)}
    assert specs["justificantes"].documents
    assert not specs["emisiones"].documents
    assert not specs["sellos-tiempo"].documents


def test_pagos_and_notificaciones_render_in_their_document_consumers_only() -> None:
    # The tenant directory is only read when a consumer runs.
    directory: Any = object()
    marked = {spec.name for spec in pagos.consumers(directory) if spec.documents}
    assert marked == {"documentos"}
    specs = notificaciones.consumers(directory, SystemClock)
    assert {spec.name for spec in specs if spec.documents} == {"acuses"}


def test_the_tramitador_has_no_document_consumer() -> None:
    # Its documents are rendered by the action that issues them; the expediente's
    # consumers must never wait behind a document queue.
    assert not [spec.name for spec in tramitador.consumers(None) if spec.documents]


def test_the_role_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUMERS_ROLE", "documents")
    assert Settings().consumers_role == "documents"
    monkeypatch.setenv("CONSUMERS_ROLE", "everything")
    with pytest.raises(ValueError, match="consumers_role"):
        Settings()


def test_serve_refuses_a_role_it_does_not_know() -> None:
    from typer.testing import CliRunner

    from services.cli import app

    result = CliRunner().invoke(app, ["serve", "registro", "--role", "todo"])
    assert result.exit_code == 2
    assert "papel desconocido" in result.output
