"""Every state change of a notification is time-stamped by the real sellado's TSA, and
OpenSSL verifies each token against the kept bytes, trusting only the platform's root."""

from __future__ import annotations

import json
import subprocess
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
from services.notificaciones.models import sellos
from services.notificaciones.schemas import DocumentoNotificado, NotificacionCreate
from tests.support.factories import nif
from tests.support.platforms import asgi_client, running_platform
from tests.support.servers import require_tool
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

INICIO = datetime(2026, 11, 2, 8, 0, 0, tzinfo=UTC)


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["notificaciones", "sellado"]) as platform:
        yield platform


async def sellos_de(platform: Platform, tenant: str, notificacion_id: str) -> list[Any]:
    async with tenant_transaction(platform.runtimes["notificaciones"].db, tenant) as session:
        rows = await session.execute(
            select(sellos)
            .where(sellos.c.notificacion_id == notificacion_id)
            .order_by(sellos.c.solicitado_en, sellos.c.hito.desc())
        )
        return list(rows)


async def test_each_state_change_is_time_stamped_and_openssl_verifies_it(
    platform: Platform, new_tenant: Callable[..., Any], tmp_path: Path
) -> None:
    openssl = require_tool("openssl", "openssl")
    tenant = await new_tenant()
    runtime = platform.runtimes["notificaciones"]
    lucia = nif()
    documento = DocumentoNotificado(documento_id=str(uuid.uuid4()), version=2, nombre="r.pdf")
    datos = NotificacionCreate.model_validate(
        {
            "documento_id": documento.documento_id,
            "concepto": "Resolución",
            "interesados": [
                {
                    "tipo_identificador": "NIF",
                    "identificador": lucia,
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
    accedida = INICIO + timedelta(days=2, seconds=5)
    async with runtime.unit_of_work(tenant, Actor(sub="lucia")) as uow:
        await service.acceder(uow, notificacion_id=n.id, nif=lucia, ahora=accedida)

    async def sellados() -> list[Any]:
        filas = await sellos_de(platform, tenant, n.id)
        return filas if len(filas) == 2 and all(f.estado == "sellado" for f in filas) else []

    filas = await eventually(sellados)
    assert [f.hito for f in filas] == ["puesta_disposicion", "practicada"]
    practicada = json.loads(filas[1].datos)
    assert practicada["estado"] == "practicada"
    assert practicada["efectos_en"] == accedida.isoformat()
    assert practicada["fecha_legal"] == "2026-11-04"
    assert practicada["destinatario"]["identificador"] == lucia
    assert "Lucía" not in filas[1].datos.decode()

    async with asgi_client(platform.apps["sellado"]) as sellado:
        chain = await sellado.get("/api/v1/sellado/tsa/chain.pem")
        root = await sellado.get("/api/v1/sellado/pki/ca.pem")
    assert chain.status_code == root.status_code == 200
    (tmp_path / "chain.pem").write_bytes(chain.content)
    (tmp_path / "ca.pem").write_bytes(root.content)
    for i, fila in enumerate(filas):
        (tmp_path / f"hito{i}.json").write_bytes(fila.datos)
        (tmp_path / f"hito{i}.tst").write_bytes(fila.token)
        result = subprocess.run(
            [
                openssl,
                "ts",
                "-verify",
                "-data",
                str(tmp_path / f"hito{i}.json"),
                "-in",
                str(tmp_path / f"hito{i}.tst"),
                "-token_in",
                "-CAfile",
                str(tmp_path / "ca.pem"),
                "-untrusted",
                str(tmp_path / "chain.pem"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "Verification: OK" in result.stdout, result.stdout + result.stderr
    # Another byte and the same token no longer verifies.
    (tmp_path / "hito1.json").write_bytes(filas[1].datos + b" ")
    altered = subprocess.run(
        [
            openssl,
            "ts",
            "-verify",
            "-data",
            str(tmp_path / "hito1.json"),
            "-in",
            str(tmp_path / "hito1.tst"),
            "-token_in",
            "-CAfile",
            str(tmp_path / "ca.pem"),
            "-untrusted",
            str(tmp_path / "chain.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Verification: OK" not in altered.stdout
