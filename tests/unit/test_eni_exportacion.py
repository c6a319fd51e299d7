"""The ENI export streams: an expediente of 1,000 documents is written with the memory of
about one chunk, every documentoEni in it validates against the official XSD, and a
document whose bytes no longer match the índice stops the export."""

from __future__ import annotations

import base64
import hashlib
import io
import random
import tracemalloc
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from lxml import etree

from services.tramitador.eni import domain
from services.tramitador.eni.esquemas import errores
from services.tramitador.eni.exportacion import ContenidoAlterado, exportar_zip

CHUNK = 64 * 1024
FILE = domain.NS["enifile"]
INDICE = b"<?xml version='1.0' encoding='UTF-8'?><indice-firmado/>"


def _contenido(orden: int, tamano: int) -> bytes:
    # Deterministic, incompressible bytes: the document can be re-made to check it.
    return random.Random(orden).randbytes(tamano)


def _fila(orden: int, tamano: int) -> dict[str, Any]:
    return {
        "orden": orden,
        "identificador": f"ES_L01000000_2026_{orden:030d}",
        "funcion_resumen": "SHA256",
        "huella": hashlib.sha256(_contenido(orden, tamano)).hexdigest(),
        "tamano": tamano,
        "incorporado_at": datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        "metadatos": {
            "organo": "L01000000",
            "fecha_captura": "2026-03-02T09:00:00+00:00",
            "origen": "administracion",
            "estado_elaboracion": "EE01",
            "tipo_documental": "TD11",
            "formato": "PDF",
            "csv": "ZXANZ-NR454-H4FLR-KGPBW-P4ZXR",
            "firma": "TF06",
        },
    }


async def _fuente(fila: dict[str, Any]) -> AsyncIterator[bytes]:
    """The repositorio's bytes, made chunk by chunk as they would arrive."""
    data = _contenido(fila["orden"], fila["tamano"])
    for i in range(0, len(data), CHUNK):
        yield data[i : i + CHUNK]


async def _peak(documentos: int, tamano: int) -> tuple[int, int]:
    """The tracemalloc peak while exporting, and the bytes written."""
    filas = [_fila(n, tamano) for n in range(1, documentos + 1)]
    tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    written = 0
    async for part in exportar_zip(INDICE, filas, _fuente):
        written += len(part)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak - base, written


async def test_an_expediente_of_1000_documents_exports_with_flat_memory() -> None:
    tamano = 96 * 1024
    total = 1000 * tamano
    peak_1000, written = await _peak(1000, tamano)
    peak_50, _ = await _peak(50, tamano)
    print(
        f"\nexport of 1,000 x {tamano} B ({total / 2**20:.0f} MiB): "
        f"peak {peak_1000 / 2**10:.0f} KiB, zip {written / 2**20:.1f} MiB; "
        f"50 documents: peak {peak_50 / 2**10:.0f} KiB"
    )
    assert written > total  # base64 of incompressible bytes, deflated, is still bigger
    # Flat: a handful of chunks, under 2 % of what went through...
    assert peak_1000 < total // 50
    # ...and twenty times the documents need about the same memory (the ZIP's central
    # directory, some 150 bytes a document, is the only part that grows).
    assert peak_1000 < 2 * peak_50 + 1000 * 400


async def test_every_documento_eni_validates_and_carries_its_bytes() -> None:
    filas = [_fila(n, 200_000 + n) for n in range(1, 4)]
    out = b"".join([p async for p in exportar_zip(INDICE, filas, _fuente)])
    with zipfile.ZipFile(io.BytesIO(out)) as archive:
        assert archive.testzip() is None
        assert archive.read("indice.xml") == INDICE
        nombres = [n for n in archive.namelist() if n.startswith("documentos/")]
        assert nombres == [domain.nombre_en_zip(f["orden"], f["identificador"]) for f in filas]
        for fila, nombre in zip(filas, nombres, strict=True):
            doc = archive.read(nombre)
            assert errores(doc, "documento") == [], nombre
            valor = etree.fromstring(doc).findtext(f".//{{{FILE}}}ValorBinario")
            assert base64.b64decode(valor) == _contenido(fila["orden"], fila["tamano"])


async def test_bytes_that_no_longer_match_the_indice_stop_the_export() -> None:
    filas = [_fila(1, 1000), {**_fila(2, 1000), "huella": "0" * 64}]
    with pytest.raises(ContenidoAlterado, match="documento 2"):
        async for _ in exportar_zip(INDICE, filas, _fuente):
            pass


def test_the_identifier_and_state_follow_the_nti() -> None:
    assert domain.identificador_expediente("L01030149", 2026, 17) == "ES_L01030149_2026_EXP_000017"
    assert domain.estado_eni("en_tramite") == "E01"
    assert domain.estado_eni("archivado") == "E02"
    # The índice an open expediente is remitted with is closed (E03); a closed one's is E02.
    assert domain.estado_eni("en_tramite", remision=True) == "E03"
    assert domain.estado_eni("resuelto", remision=True) == "E02"
    assert domain.funcion_resumen("sha-512") == "SHA512"
    with pytest.raises(ValueError):
        domain.funcion_resumen("md5")
    assert (
        domain.huella_eni("SHA256", b"") == base64.b64encode(hashlib.sha256(b"").digest()).decode()
    )
