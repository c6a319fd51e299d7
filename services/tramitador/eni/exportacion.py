"""The ENI export of an expediente as a ZIP, written while it is sent: memory stays flat.

Layout (NTI de Expediente electrónico, remisión as an ENI expediente):

- ``indice.xml``: the signed ``eniexp:expediente`` (índice + ``metadatosExp``), the exact
  bytes the sellado signed;
- ``documentos/0001_<identificador>.xml``: each document the índice lists, as a
  ``documentoEni`` whose content travels inline (``ValorBinario``, base64).

The standard library's :mod:`zipfile` writes to a sink that is emptied after every
chunk (it writes data descriptors when the output cannot seek), and each document's
bytes are base64-encoded as they arrive from the repositorio, three bytes at a
time. So at any moment the process holds about one chunk per document, whatever the
expediente's size. Each document's digest is checked as it streams: bytes that do
not match the índice stop the export (a truncated ZIP never verifies).
"""

from __future__ import annotations

import asyncio
import base64
import io
import zipfile
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import IO, Any

from services.tramitador.eni import domain

__all__ = ["ContenidoAlterado", "documento_eni", "exportar_zip", "nombre_zip"]

# Deflate at its fastest: base64 text shrinks back to about the size of its bytes.
_NIVEL = 1
_ZIP64_DESDE = 2**31


class ContenidoAlterado(RuntimeError):
    """A document's bytes in the repositorio no longer match the índice's digest."""


class _Sink(io.RawIOBase):
    """A write-only, unseekable file whose bytes are taken out by :meth:`drain`."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._pos += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._pos

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def documento_eni(fila: dict[str, Any]) -> domain.DocumentoEni:
    """What the ``documentoEni`` of a foliado entry says besides its bytes."""
    meta = fila["metadatos"]
    captura = meta.get("fecha_captura") or fila["incorporado_at"]
    if isinstance(captura, str):
        captura = datetime.fromisoformat(captura)
    return domain.DocumentoEni(
        orden=fila["orden"],
        identificador=fila["identificador"],
        organo=meta["organo"],
        fecha_captura=captura,
        origen_administracion=meta.get("origen") != "ciudadano",
        estado_elaboracion=meta["estado_elaboracion"],
        tipo_documental=meta["tipo_documental"],
        formato=meta.get("formato") or "PDF",
        identificador_documento_origen=meta.get("identificador_documento_origen"),
        csv=meta.get("csv"),
        regulacion_csv=meta.get("regulacion_csv"),
        firmas_en_contenido=meta.get("firma"),
    )


def nombre_zip(identificador_expediente: str) -> str:
    """The download's file name."""
    return f"{identificador_expediente}.zip"


def _write(entry: IO[bytes], data: bytes) -> None:
    entry.write(base64.b64encode(data))


async def exportar_zip(
    indice_xml: bytes,
    documentos: Sequence[dict[str, Any]],
    contenido: Callable[[dict[str, Any]], AsyncIterator[bytes]],
) -> AsyncIterator[bytes]:
    """The ZIP's bytes, piece by piece: the signed índice, then each document as read
    from ``contenido(fila)``; raises :class:`ContenidoAlterado` on a digest mismatch."""
    sink = _Sink()
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_NIVEL)
    with archive.open("indice.xml", "w") as entry:
        entry.write(indice_xml)
    yield sink.drain()
    for fila in documentos:
        cabeza, cola = domain.documento_partes(documento_eni(fila))
        resumen = domain.nuevo_resumen(fila["funcion_resumen"])
        nombre = domain.nombre_en_zip(fila["orden"], fila["identificador"])
        grande = (fila.get("tamano") or 0) * 4 // 3 > _ZIP64_DESDE
        with archive.open(nombre, "w", force_zip64=grande) as entry:
            entry.write(cabeza)
            resto = b""
            async for chunk in contenido(fila):
                resumen.update(chunk)
                data = resto + chunk
                corte = len(data) - len(data) % 3
                resto = data[corte:]
                # base64 and deflate are CPU work: off the loop, one chunk at a time.
                await asyncio.to_thread(_write, entry, data[:corte])
                out = sink.drain()
                if out:
                    yield out
            entry.write(base64.b64encode(resto))
            entry.write(cola)
        if resumen.hexdigest() != fila["huella"]:
            raise ContenidoAlterado(
                f"El documento {fila['orden']} ({fila['identificador']}) ya no coincide con "
                "la huella del índice."
            )
        yield sink.drain()
    archive.close()
    yield sink.drain()
