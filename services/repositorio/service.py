"""Use cases of the repositorio, one transaction each.

The bytes are already in the blob store when a use case runs (an upload can
take long, and no transaction is held open meanwhile); the use case records
the documento or version that points at them, audits it and emits the event.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bus.consumer import PermanentFailure
from services.common.bus.envelope import ReceivedEvent
from services.common.errors import FieldError, NotFound, Unprocessable
from services.common.nti import resolver_formato
from services.common.uow import UnitOfWork
from services.repositorio import domain
from services.repositorio.domain import Contenido
from services.repositorio.emision.domain import EstadoEmision
from services.repositorio.emision.models import emisiones
from services.repositorio.models import documentos, versiones
from services.repositorio.schemas import (
    DocumentoRead,
    MetadatosCreate,
    MetadatosEni,
    VersionList,
    VersionRead,
)
from services.repositorio.storage import BlobStore

__all__ = [
    "DOCUMENTO_ALMACENADO",
    "ALMACENAR_DOCUMENTO",
    "agregar_version",
    "agregar_version_emitida",
    "almacenar_documento",
    "comprobar_mismo_organo",
    "consultar_documento",
    "consultar_version",
    "guardar_documento",
    "listar_versiones",
]

DOCUMENTO_ALMACENADO = "repositorio.documento.almacenado.v1"


async def guardar_documento(
    uow: UnitOfWork,
    *,
    metadatos: MetadatosCreate,
    contenido: Contenido,
    now: datetime | None = None,
    documento_id: str | None = None,
    referencia: dict[str, Any] | None = None,
) -> DocumentoRead:
    """Records a new documento and its first version, audits it and emits the event.

    A requester that must name the documento before it exists (the registro, for an
    asiento's anexos) gives its ``documento_id``; ``referencia`` is carried on the event.
    """
    ahora = now or datetime.now(UTC)
    fecha_captura = _fecha_captura(metadatos, ahora)
    documento_id = documento_id or str(uuid.uuid4())
    anio = domain.anio_captura(fecha_captura, uow.tenant_id)
    identificador = domain.identificador_eni(metadatos.organo, anio, documento_id)
    version = await uow.next_number(domain.serie_versiones(documento_id), 0)
    row: dict[str, Any] = {
        "id": documento_id,
        "tenant_id": uow.tenant_id,
        "identificador": identificador,
        "organo": metadatos.organo,
        "creado_en": ahora,
        "creado_por": uow.actor.sub,
    }
    uow.add(documentos, row)
    primera = _add_version_row(
        uow,
        documento_id=documento_id,
        version=version,
        eni=_eni(identificador, metadatos, fecha_captura, contenido),
        contenido=contenido,
        ahora=ahora,
    )
    documento = DocumentoRead(
        id=documento_id,
        identificador=identificador,
        organo=metadatos.organo,
        creado_en=ahora,
        creado_por=uow.actor.sub,
        versiones=version,
        version_actual=primera,
    )
    uow.audit(
        action="almacenar",
        entity="documento",
        entity_id=documento_id,
        new=documento.model_dump(mode="json"),
    )
    _emit_almacenado(uow, documento_id, primera, referencia=referencia)
    return documento


async def agregar_version(
    uow: UnitOfWork,
    *,
    documento_id: str,
    metadatos: MetadatosCreate | None,
    contenido: Contenido,
    now: datetime | None = None,
) -> DocumentoRead:
    """Adds a version to a documento (the old ones stay), audits it and emits the event.

    Without new ``metadatos`` the version keeps the previous one's ENI metadata,
    captured now. The órgano is part of the documento's identifier, so it
    cannot change from one version to the next.
    """
    ahora = now or datetime.now(UTC)
    await _documento_row(uow.session, tenant_id=uow.tenant_id, documento_id=documento_id)
    # Taken from a gapless counter whose row stays locked until commit: versions added
    # at once to the same documento queue here, and each then reads the one before it.
    version = await uow.next_number(domain.serie_versiones(documento_id), 0)
    current = await consultar_documento(
        uow.session, tenant_id=uow.tenant_id, documento_id=documento_id
    )
    previa = current.version_actual.metadatos
    if metadatos is None:
        eni = previa.model_copy(update={"fecha_captura": ahora, "formato": contenido.formato})
    else:
        comprobar_mismo_organo(current, metadatos)
        eni = _eni(current.identificador, metadatos, _fecha_captura(metadatos, ahora), contenido)
    nueva = _add_version_row(
        uow, documento_id=documento_id, version=version, eni=eni, contenido=contenido, ahora=ahora
    )
    uow.audit(
        action="nueva-version",
        entity="documento",
        entity_id=documento_id,
        old={"version": current.version_actual.version, "sha256": current.version_actual.sha256},
        new=nueva.model_dump(mode="json"),
    )
    _emit_almacenado(uow, documento_id, nueva)
    return current.model_copy(update={"versiones": version, "version_actual": nueva})


async def agregar_version_emitida(
    uow: UnitOfWork,
    *,
    documento_id: str,
    version_origen: int,
    contenido: Contenido,
    csv: str,
    now: datetime | None = None,
) -> VersionRead:
    """Adds the issued (stamped and sealed) copy of ``version_origen`` as a new version.

    It keeps the ENI metadata of the version it issues, whichever version is
    current: issuing adds the CSV and the seal, it does not make another
    document (its estado de elaboración stays that of the version issued).
    """
    ahora = now or datetime.now(UTC)
    await _documento_row(uow.session, tenant_id=uow.tenant_id, documento_id=documento_id)
    version = await uow.next_number(domain.serie_versiones(documento_id), 0)
    origen = await consultar_version(
        uow.session, tenant_id=uow.tenant_id, documento_id=documento_id, version=version_origen
    )
    eni = origen.metadatos.model_copy(update={"fecha_captura": ahora, "formato": contenido.formato})
    nueva = _add_version_row(
        uow, documento_id=documento_id, version=version, eni=eni, contenido=contenido, ahora=ahora
    )
    uow.audit(
        action="nueva-version",
        entity="documento",
        entity_id=documento_id,
        old={"version": origen.version, "sha256": origen.sha256},
        new={**nueva.model_dump(mode="json"), "csv": csv},
    )
    _emit_almacenado(uow, documento_id, nueva)
    return nueva


def comprobar_mismo_organo(documento: DocumentoRead, metadatos: MetadatosCreate) -> None:
    """Refuses (422) a version whose metadata name another órgano: the identifier holds it."""
    if metadatos.organo != documento.organo:
        raise Unprocessable(
            "El órgano de un documento no cambia entre versiones.",
            errors=[FieldError("metadatos.organo", f"debe ser {documento.organo}")],
        )


async def consultar_documento(
    session: AsyncSession, *, tenant_id: str, documento_id: str
) -> DocumentoRead:
    """A documento of the tenant with its latest version; another tenant's is a 404."""
    documento = await _documento_row(session, tenant_id=tenant_id, documento_id=documento_id)
    latest = (
        await session.execute(
            select(versiones, func.count().over().label("total"))
            .where(versiones.c.tenant_id == tenant_id, versiones.c.documento_id == documento_id)
            .order_by(versiones.c.version.desc())
            .limit(1)
        )
    ).one()
    # The current version is an issued one when an emisión made it: its CSV names it.
    emitida = (
        await session.execute(
            select(emisiones.c.csv, emisiones.c.url_verificacion).where(
                emisiones.c.tenant_id == tenant_id,
                emisiones.c.documento_id == documento_id,
                emisiones.c.version_emitida == latest.version,
                emisiones.c.estado == EstadoEmision.EMITIDA.value,
            )
        )
    ).first()
    return DocumentoRead(
        **documento,
        versiones=latest.total,
        version_actual=_version_read(latest._mapping),
        csv=emitida.csv if emitida else None,
        url_verificacion=emitida.url_verificacion if emitida else None,
    )


async def listar_versiones(
    session: AsyncSession, *, tenant_id: str, documento_id: str
) -> VersionList:
    """Every version of a documento, oldest first."""
    await _documento_row(session, tenant_id=tenant_id, documento_id=documento_id)
    rows = await session.execute(
        select(versiones)
        .where(versiones.c.tenant_id == tenant_id, versiones.c.documento_id == documento_id)
        .order_by(versiones.c.version)
    )
    return VersionList(documento_id=documento_id, items=[_version_read(r._mapping) for r in rows])


async def consultar_version(
    session: AsyncSession, *, tenant_id: str, documento_id: str, version: int | None
) -> VersionRead:
    """One version of a documento (the latest when ``version`` is None)."""
    if version is None:
        current = await consultar_documento(session, tenant_id=tenant_id, documento_id=documento_id)
        return current.version_actual
    await _documento_row(session, tenant_id=tenant_id, documento_id=documento_id)
    row = (
        await session.execute(
            select(versiones).where(
                versiones.c.tenant_id == tenant_id,
                versiones.c.documento_id == documento_id,
                versiones.c.version == version,
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"El documento {documento_id} no tiene versión {version}.")
    return _version_read(row._mapping)


async def _documento_row(
    session: AsyncSession, *, tenant_id: str, documento_id: str
) -> dict[str, Any]:
    try:
        uuid.UUID(documento_id)
    except ValueError:
        raise NotFound(f"No existe el documento {documento_id}.") from None
    row = (
        await session.execute(
            select(documentos).where(
                documentos.c.tenant_id == tenant_id, documentos.c.id == documento_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"No existe el documento {documento_id}.")
    return {k: v for k, v in row._mapping.items() if k != "tenant_id"}


def _fecha_captura(metadatos: MetadatosCreate, ahora: datetime) -> datetime:
    try:
        return domain.fecha_captura(metadatos.fecha_captura, ahora)
    except ValueError as exc:
        raise Unprocessable(
            str(exc), errors=[FieldError("metadatos.fecha_captura", str(exc))]
        ) from None


def _eni(
    identificador: str, metadatos: MetadatosCreate, fecha_captura: datetime, contenido: Contenido
) -> MetadatosEni:
    return MetadatosEni(
        version_nti=domain.VERSION_NTI,
        identificador=identificador,
        organo=metadatos.organo,
        fecha_captura=fecha_captura,
        origen=metadatos.origen,
        estado_elaboracion=metadatos.estado_elaboracion,
        identificador_documento_origen=metadatos.identificador_documento_origen,
        tipo_documental=metadatos.tipo_documental,
        formato=contenido.formato,
    )


def _add_version_row(
    uow: UnitOfWork,
    *,
    documento_id: str,
    version: int,
    eni: MetadatosEni,
    contenido: Contenido,
    ahora: datetime,
) -> VersionRead:
    row: dict[str, Any] = {
        "documento_id": documento_id,
        "version": version,
        "tenant_id": uow.tenant_id,
        "sha256": contenido.sha256,
        "tamano": contenido.tamano,
        "mime": contenido.mime,
        "nombre": contenido.nombre,
        "formato": contenido.formato,
        "metadatos": eni.model_dump(mode="json"),
        "almacenado_en": ahora,
        "almacenado_por": uow.actor.sub,
    }
    uow.add(versiones, row)
    return _version_read(row)


def _version_read(row: Any) -> VersionRead:
    return VersionRead.model_validate(
        {key: row[key] for key in VersionRead.model_fields if key in row}
    )


def _emit_almacenado(
    uow: UnitOfWork,
    documento_id: str,
    version: VersionRead,
    *,
    referencia: dict[str, Any] | None = None,
) -> None:
    eni = version.metadatos.model_dump(mode="json")
    extra = {"referencia": referencia} if referencia is not None else {}
    uow.emit(
        DOCUMENTO_ALMACENADO,
        {
            "documento_id": documento_id,
            "version": version.version,
            "identificador": version.metadatos.identificador,
            "sha256": version.sha256,
            "tamano": version.tamano,
            "mime": version.mime,
            "nombre": version.nombre,
            "metadatos": eni,
            **extra,
        },
        subject=documento_id,
    )


# --- documents other services send over the bus ------------------------------------------------
#
# The registro sends ``repositorio.documento.almacenar.v1`` once per anexo of an asiento,
# with the ``documento_id`` the asiento already records. It is stored through the same
# path as an upload (bytes into the blob store, then ``guardar_documento``), under that
# id. A documento_id that already exists is skipped (a redelivery, or the requester sent
# it again). A command that can never be stored (content that is not base64 or does not
# match its SHA-256, over the repositorio's limit, a format the NTI catalogue does not
# have, bad ENI metadata) is a PermanentFailure: dead-lettered with the reason, never
# retried.

ALMACENAR_DOCUMENTO = "repositorio.documento.almacenar.v1"


_log = logging.getLogger("consistorio.repositorio.almacenamiento")


async def almacenar_documento(
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
    await guardar_documento(
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
