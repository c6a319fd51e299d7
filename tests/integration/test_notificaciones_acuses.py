"""The acuse of a notification's outcome goes through the real issuing chain (repositorio,
csv, sellado): stored, given a CSV, sealed, and verifiable on the public page."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.bootstrap import Platform
from services.common.db import tenant_transaction
from services.common.settings import Settings
from services.common.uow import Actor
from services.notificaciones import service
from services.notificaciones.clock import ControlledClock
from services.notificaciones.models import acuses
from services.notificaciones.schemas import DocumentoNotificado, NotificacionCreate
from services.notificaciones.vencimientos import Vencedor
from services.repositorio.storage.filesystem import FilesystemBlobStore
from tests.support.factories import nif
from tests.support.platforms import asgi_client, record_documents, running_platform
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

INICIO = datetime(2026, 11, 2, 8, 0, 0, tzinfo=UTC)


@pytest.fixture
async def platform(settings: Settings, tmp_path: Path) -> AsyncIterator[Platform]:
    services = ["notificaciones", "repositorio", "csv", "sellado"]
    async with running_platform(settings, services) as platform:
        platform.apps["repositorio"].state.blob_store = FilesystemBlobStore(tmp_path / "docs")
        yield platform


async def notificar(platform: Platform, tenant: str, identificador: str) -> str:
    runtime = platform.runtimes["notificaciones"]
    documento = DocumentoNotificado(documento_id=str(uuid.uuid4()), version=1, nombre="r.pdf")
    datos = NotificacionCreate.model_validate(
        {
            "documento_id": documento.documento_id,
            "concepto": "Resolución de licencia",
            "interesados": [
                {
                    "tipo_identificador": "NIF",
                    "identificador": identificador,
                    "nombre": "Lucía",
                    "eligio_electronico": True,
                }
            ],
        }
    )
    async with runtime.unit_of_work(tenant, Actor(sub="funcionaria")) as uow:
        [n] = await service.crear_notificaciones(
            uow, datos=datos, documento=documento, emisor="Ayuntamiento", ahora=INICIO
        )
    return n.id


async def acuse_emitido(platform: Platform, tenant: str, notificacion_id: str) -> Any:
    async def emitido() -> Any:
        async with tenant_transaction(platform.runtimes["notificaciones"].db, tenant) as s:
            fila = (
                await s.execute(select(acuses).where(acuses.c.notificacion_id == notificacion_id))
            ).first()
        return fila if fila is not None and fila.estado == "emitido" else None

    return await eventually(emitido, timeout=60)


async def test_practicada_and_expirada_get_an_acuse_verifiable_by_its_csv(
    platform: Platform, new_tenant: Callable[..., Any]
) -> None:
    tenant = await new_tenant()
    workers = record_documents(platform)
    lucia, pablo = nif(), nif()
    abierta = await notificar(platform, tenant, lucia)
    olvidada = await notificar(platform, tenant, pablo)
    runtime = platform.runtimes["notificaciones"]
    async with runtime.unit_of_work(tenant, Actor(sub="lucia")) as uow:
        await service.acceder(
            uow, notificacion_id=abierta, nif=lucia, ahora=INICIO + timedelta(hours=1)
        )
    await Vencedor(runtime, ControlledClock(INICIO + timedelta(days=10))).una_pasada()

    for notificacion_id, hito in ((abierta, "practicada"), (olvidada, "expirada")):
        fila = await acuse_emitido(platform, tenant, notificacion_id)
        assert fila.hito == hito
        # The csv service records the issued code from its own event, which may cross
        # the bus after the one that told notificaciones: it is verifiable soon, not
        # necessarily at once.
        async with asgi_client(platform.apps["csv"]) as csv:

            async def verificable(code: str = fila.csv) -> Any:
                answer = await csv.get(
                    f"/api/v1/csv/verificar/{code}", headers={"Accept": "application/json"}
                )
                assert answer.status_code in (200, 404), answer.text
                return answer if answer.status_code == 200 else None

            response = await eventually(verificable, timeout=30)
        body = response.json()
        assert body["nombre_fichero"] == f"acuse-notificacion-{notificacion_id}.pdf"
        assert body["tipo_documental"] == "TD11"
        assert body["firmante"]
    # Both acuses were rendered by the document workers, not on the consumer's loop.
    assert workers.count("render_acuse") == 2
