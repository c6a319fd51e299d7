"""Storing a document another service sends over the bus (``repositorio.documento.almacenar.v1``).

The registro sends one command per anexo of an asiento, with the ``documento_id``
the asiento already records. The repositorio stores it through the same path as
an upload (bytes into the blob store, then :func:`service.store_documento`, which
records the documento and its first version, audits them and publishes
``repositorio.documento.almacenado.v1``), under that id.

A documento_id that already exists is skipped: the command was redelivered, or the
requester sent it again. A command that can never be stored (content that is not
base64 or does not match its SHA-256, over the repositorio's limit, a format the
NTI catalogue does not have, bad ENI metadata) is a :class:`PermanentFailure`: it
goes to the dead letters with the reason, and is never retried.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from services.common.bus.consumer import PermanentFailure
from services.common.bus.envelope import ReceivedEvent
from services.common.nti import resolver_formato
from services.common.uow import UnitOfWork
from services.repositorio import domain, service
from services.repositorio.domain import Contenido
from services.repositorio.models import documentos
from services.repositorio.schemas import MetadatosCreate
from services.repositorio.storage import BlobStore

__all__ = ["ALMACENAR_DOCUMENTO", "on_almacenar_documento"]

ALMACENAR_DOCUMENTO = "repositorio.documento.almacenar.v1"

_log = logging.getLogger("consistorio.repositorio.almacenamiento")


async def on_almacenar_documento(
    uow: UnitOfWork, event: ReceivedEvent, *, store: BlobStore, max_bytes: int
) -> None:
    """Stores the command's file as a new documento with the id it names (once)."""
    data = event.data
    documento_id = _uuid(data["documento_id"])
    if await _existe(uow, documento_id):
        _log.info("command %s: documento %s already stored; skipped", event.id, documento_id)
        return
    contenido = _decode(str(data["contenido"]), max_bytes=max_bytes)
    if hashlib.sha256(contenido).hexdigest() != data["sha256"]:
        raise PermanentFailure(
            f"el contenido del documento {documento_id} no coincide con su sha256"
        )
    try:
        formato, mime = resolver_formato(str(data["mime"]), str(data["nombre"]))
    except ValueError as exc:
        raise PermanentFailure(f"documento {documento_id}: {exc}") from None
    metadatos = _metadatos(data["metadatos"], documento_id)
    # Stored before the record that points at it: if this transaction fails, the blob
    # is an unreferenced copy that the retry finds already there (same hash).
    stored = await store.put(uow.tenant_id, _once(contenido))
    await service.store_documento(
        uow,
        metadatos=metadatos,
        contenido=Contenido(
            sha256=stored.sha256,
            tamano=stored.size,
            mime=mime,
            nombre=domain.nombre_de_fichero(str(data["nombre"]), formato),
            formato=formato.nombre,
        ),
        documento_id=documento_id,
        referencia=data.get("referencia"),
    )


def _uuid(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise PermanentFailure(f"documento_id no es un UUID: {value!r}") from None


async def _existe(uow: UnitOfWork, documento_id: str) -> bool:
    row = await uow.session.execute(
        select(documentos.c.id).where(
            documentos.c.tenant_id == uow.tenant_id, documentos.c.id == documento_id
        )
    )
    return row.first() is not None


def _decode(encoded: str, *, max_bytes: int) -> bytes:
    # Checked on the encoded length first: nothing is decoded that could not be kept.
    if len(encoded) > 4 * (max_bytes // 3 + 1):
        raise PermanentFailure(f"el documento supera {max_bytes} bytes")
    try:
        contenido = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise PermanentFailure("el contenido no es base64 válido") from None
    if not contenido:
        raise PermanentFailure("el contenido está vacío")
    if len(contenido) > max_bytes:
        raise PermanentFailure(f"el documento supera {max_bytes} bytes")
    return contenido


def _metadatos(raw: Any, documento_id: str) -> MetadatosCreate:
    # The contract lets a later minor add properties: those we do not know are ignored.
    known = {k: v for k, v in raw.items() if k in MetadatosCreate.model_fields}
    try:
        return MetadatosCreate.model_validate(known)
    except ValidationError as exc:
        campos = ", ".join(
            "metadatos." + ".".join(str(part) for part in error["loc"]) for error in exc.errors()
        )
        raise PermanentFailure(
            f"documento {documento_id}: metadatos ENI no válidos: {campos}"
        ) from None


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
