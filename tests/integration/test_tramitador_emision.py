"""A document of an expediente through the real issuing chain: the tramitador asks, the
repositorio stores it, the csv service reserves its code, the sellado seals it, and the
public verification address serves the sealed PDF the expediente names."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.bootstrap import Platform
from services.common.settings import Settings
from tests.support import factories
from tests.support.platforms import asgi_client, bearer, record_documents, running_platform
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

T = "/api/v1/tramitador"


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    services = ["tramitador", "repositorio", "csv", "sellado"]
    async with running_platform(settings, services) as built:
        yield built


async def test_a_providencia_is_issued_with_csv_and_seal(platform: Platform, new_tenant, token):
    tenant = await new_tenant()
    workers = record_documents(platform)
    headers = bearer(token(tenant, "tramitador"))
    async with (
        asgi_client(platform.apps["tramitador"]) as tramitador,
        asgi_client(platform.apps["repositorio"]) as repositorio,
    ):
        body = {
            "procedimiento": "expediente-sancionador",
            "asunto": "Ruidos nocturnos",
            "interesados": [factories.interesado()],
        }
        created = await tramitador.post(f"{T}/expedientes", json=body, headers=headers)
        assert created.status_code == 201, created.text
        url = f"{T}/expedientes/{created.json()['id']}"
        acted = await tramitador.post(f"{url}/acciones/acordar-inicio", headers=headers)
        assert acted.status_code == 200, acted.text

        async def issued() -> dict[str, Any] | None:
            docs = (await tramitador.get(url, headers=headers)).json()["documentos"]
            done = [d for d in docs if d["estado"] != "emitiendo"]
            return done[0] if done else None

        documento = await eventually(issued, timeout=60)
        assert documento["estado"] == "emitido", documento
        assert documento["plantilla"] == "providencia-inicio"
        assert documento["url_verificacion"].endswith(f"/verificar/{documento['csv']}")
        # The gateway serves this at /verificar/{csv}/documento, with no login.
        public = await repositorio.get(f"/api/v1/documentos/verificar/{documento['csv']}/documento")
        assert public.status_code == 200
        assert public.content.startswith(b"%PDF-")
        assert public.headers["etag"].strip('"') == hashlib.sha256(public.content).hexdigest()
    # The providencia was laid out by a document worker, not on the service's loop.
    assert "renderizar_pdf" in workers
