"""The carta de pago and the justificante de pago through the real documentary chain
(pagos → repositorio → csv → sellado) on real PostgreSQL and the in-process bus: issued
with a CSV and the council's seal, downloadable in public, carrying the liquidación's data."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from services.bootstrap import Platform, build_platform
from services.common.bus.inprocess import InProcessTransport
from services.common.settings import Settings
from services.pagos.simulador import notificacion_firmada
from services.repositorio.storage.filesystem import FilesystemBlobStore
from tests.support.pagos import CLAVE_PRUEBAS, Entidad, liquidacion
from tests.support.platforms import record_documents
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

BASE = "/api/v1/pagos"


@pytest.fixture
async def platform(settings: Settings, tmp_path: Path) -> AsyncIterator[Platform]:
    running = await build_platform(
        settings, ["pagos", "csv", "sellado", "repositorio"], transport=InProcessTransport()
    )
    running.apps["repositorio"].state.blob_store = FilesystemBlobStore(tmp_path / "documentos")
    for runtime in running.runtimes.values():
        await runtime.start()
    yield running
    await running.close()


@pytest.fixture
async def repositorio(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=platform.apps["repositorio"])
    async with httpx.AsyncClient(transport=transport, base_url="http://repositorio") as c:
        yield c


async def _emitido(client: httpx.AsyncClient, entidad: Entidad, url: str) -> dict[str, Any]:
    async def listo() -> dict[str, Any] | None:
        r = await client.get(url, headers=entidad.ciudadano)
        assert r.status_code in (200, 202, 404), r.text
        cuerpo: dict[str, Any] = r.json()
        assert cuerpo.get("estado") != "fallido", cuerpo
        return cuerpo if r.status_code == 200 else None

    resultado: dict[str, Any] = await eventually(listo, timeout=60)
    return resultado


def _texto_pdf(pdf: bytes) -> str:
    """Every content stream of the PDF, inflated, as Latin-1 text (to find what it prints)."""
    reader = PdfFileReader(BytesIO(pdf))
    partes = []
    for pagina in reader.root["/Pages"]["/Kids"]:
        contenido = pagina.get_object()["/Contents"]
        for stream in contenido if isinstance(contenido, list) else [contenido]:
            datos = stream.get_object().data
            partes.append(datos.decode("latin-1"))
    return "\n".join(partes)


async def test_carta_de_pago_and_justificante_are_issued_with_csv_and_seal(
    platform: Platform, client: httpx.AsyncClient, repositorio: httpx.AsyncClient, entidad: Entidad
) -> None:
    workers = record_documents(platform)
    datos = await liquidacion(client, entidad, importe="159.00")
    carta = await _emitido(client, entidad, datos["enlaces"]["carta_de_pago"])
    assert carta["tipo"] == "carta_de_pago" and carta["csv"]
    assert carta["url_descarga"].endswith(f"/verificar/{carta['csv']}/documento")
    pdf = await repositorio.get(f"/api/v1/documentos/verificar/{carta['csv']}/documento")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    reader = PdfFileReader(BytesIO(pdf.content))
    assert reader.embedded_signatures, "the issued carta de pago carries the council's seal"
    texto = _texto_pdf(pdf.content)
    assert datos["referencia"] in texto and datos["identificacion"] in texto
    # The human-readable line under the barcode: "(90)" and the rest of its digits.
    assert f"\\(90\\){datos['cuaderno60']['codigo_barras'][2:]}" in texto
    assert "159,00 EUR" in texto
    # Not paid yet: there is no justificante.
    sin = await client.get(datos["enlaces"]["justificante_pago"], headers=entidad.ciudadano)
    assert sin.status_code == 404
    formulario = (
        await client.post(datos["enlaces"]["pago_tarjeta"], headers=entidad.ciudadano)
    ).json()
    peticion = json.loads(base64.b64decode(formulario["Ds_MerchantParameters"]))
    notificada = await client.post(
        f"{BASE}/redsys/notificacion", data=notificacion_firmada(CLAVE_PRUEBAS, peticion, "0000")
    )
    assert notificada.json()["resultado"] == "aplicada"
    recibo = await _emitido(client, entidad, datos["enlaces"]["justificante_pago"])
    assert recibo["csv"] != carta["csv"]
    pdf = await repositorio.get(f"/api/v1/documentos/verificar/{recibo['csv']}/documento")
    texto = _texto_pdf(pdf.content)
    assert "Justificante de pago" in texto and formulario["orden"] in texto
    # Both were rendered by the document workers, not on pagos' loop.
    assert {"render_carta_de_pago", "render_justificante_pago"} <= set(workers)
