"""Use cases of an emisión: open it, and each step of its saga on the bus (see __init__)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import Row, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bus.envelope import ReceivedEvent
from services.common.cpu import CpuPool
from services.common.db import Database, tenant_transaction
from services.common.errors import FieldError, NotFound, Unprocessable
from services.common.nti import resolver_formato
from services.common.uow import UnitOfWork
from services.repositorio import domain, service
from services.repositorio.domain import Contenido
from services.repositorio.emision import stamping
from services.repositorio.emision.domain import EstadoEmision, nombre_pdf
from services.repositorio.emision.models import DOCUMENTO_EMITIDO_FN, emisiones
from services.repositorio.emision.schemas import EmisionRead
from services.repositorio.schemas import MetadatosCreate, VersionRead
from services.repositorio.storage import BlobCorrupted, BlobNotFound, BlobStore

__all__ = [
    "CONSULTAR_DOCUMENTO",
    "DOCUMENTO_CONSULTADO",
    "responder_consulta",
    "CODIGO_RESERVADO",
    "DOCUMENTO_EMITIDO",
    "DOCUMENTO_RECHAZADO",
    "DOCUMENTO_SELLADO",
    "EMISION_FALLIDA",
    "EMITIR_DOCUMENTO",
    "RESERVAR_CODIGO",
    "SELLAR_DOCUMENTO",
    "SOLICITANTE",
    "DocumentoLocalizado",
    "Solicitud",
    "emitir_version",
    "esperar_emision",
    "buscar_emitido",
    "consultar_emision",
    "on_codigo_reservado",
    "on_documento_rechazado",
    "on_documento_sellado",
    "on_emitir_documento",
    "abrir_emision",
]

SOLICITANTE = "repositorio"
RESERVAR_CODIGO = "csv.codigo.reservar.v1"
CODIGO_RESERVADO = "csv.codigo.reservado.v1"
SELLAR_DOCUMENTO = "sellado.documento.sellar.v1"
DOCUMENTO_SELLADO = "sellado.documento.sellado.v1"
DOCUMENTO_RECHAZADO = "sellado.documento.rechazado.v1"
EMITIR_DOCUMENTO = "repositorio.documento.emitir.v1"
DOCUMENTO_EMITIDO = "repositorio.documento.emitido.v1"
EMISION_FALLIDA = "repositorio.emision.fallida.v1"

_PDF_MIME = "application/pdf"
# A row of ``emisiones`` as SQLAlchemy gives it (any number of columns).
_Row = Row[*tuple[Any, ...]]
_log = logging.getLogger("consistorio.repositorio.emision")


@dataclass(frozen=True)
class Solicitud:
    """The bus command an emisión answers: who asked, their correlation id and what for."""

    solicitud_id: str
    solicitante: str
    referencia: dict[str, Any] | None = None


@dataclass(frozen=True)
class DocumentoLocalizado:
    """Where the document an issued CSV names is: its tenant, version and content hash."""

    tenant_id: str
    documento_id: str
    version: int
    sha256: str


class _Fallo(Exception):
    """A step that can never succeed for this emisión: it fails with ``codigo``."""

    def __init__(self, codigo: str, motivo: str) -> None:
        super().__init__(motivo)
        self.codigo = codigo
        self.motivo = motivo


# --- opening -------------------------------------------------------------------------------


async def emitir_version(
    uow: UnitOfWork,
    *,
    documento_id: str,
    version: int | None,
    max_bytes: int,
    now: datetime | None = None,
) -> EmisionRead:
    """Opens the emisión of a version (the current one when ``version`` is None).

    Only a PDF can carry the CSV footer and the seal (422 naming ``version``),
    it must fit what the sellado accepts, and a version that is itself the
    result of an emisión is not issued again (it already carries a CSV).
    """
    origen = await service.consultar_version(
        uow.session, tenant_id=uow.tenant_id, documento_id=documento_id, version=version
    )
    if origen.formato != "PDF":
        raise Unprocessable(
            f"Solo se emiten versiones en PDF; la versión {origen.version} es {origen.formato}.",
            errors=[FieldError("version", f"formato {origen.formato}: debe ser PDF")],
        )
    if origen.tamano > max_bytes:
        raise Unprocessable(
            f"La versión {origen.version} supera los {max_bytes} bytes que admite el sellado.",
            errors=[FieldError("version", f"tamaño máximo {max_bytes} bytes")],
        )
    previa = await _emision_que_produjo(uow.session, uow.tenant_id, documento_id, origen.version)
    if previa is not None:
        raise Unprocessable(
            f"La versión {origen.version} ya es un documento emitido con el CSV {previa.csv}.",
            errors=[FieldError("version", "ya emitida: emita la versión de la que procede")],
        )
    return abrir_emision(uow, documento_id=documento_id, origen=origen, now=now)


def abrir_emision(
    uow: UnitOfWork,
    *,
    documento_id: str,
    origen: VersionRead,
    solicitud: Solicitud | None = None,
    now: datetime | None = None,
) -> EmisionRead:
    """Records the emisión (pendiente) and asks the csv service for a code, in ``uow``."""
    ahora = now or datetime.now(UTC)
    emision_id = str(uuid.uuid4())
    row: dict[str, Any] = {
        "id": emision_id,
        "tenant_id": uow.tenant_id,
        "documento_id": documento_id,
        "version_origen": origen.version,
        "estado": EstadoEmision.PENDIENTE.value,
        "solicitud_id": solicitud.solicitud_id if solicitud else None,
        "solicitante": solicitud.solicitante if solicitud else None,
        "referencia": solicitud.referencia if solicitud else None,
        "creado_en": ahora,
        "creado_por": uow.actor.sub,
        "actualizado_en": ahora,
    }
    uow.add(emisiones, row)
    emision = _emision_read(row)
    uow.audit(
        action="emitir",
        entity="emision",
        entity_id=emision_id,
        new=emision.model_dump(mode="json", exclude_none=True),
    )
    uow.emit(
        RESERVAR_CODIGO,
        {"solicitud_id": emision_id, "solicitante": SOLICITANTE, "documento_id": documento_id},
        subject=documento_id,
    )
    return emision


# --- reading -------------------------------------------------------------------------------


async def consultar_emision(
    session: AsyncSession, *, tenant_id: str, documento_id: str, emision_id: str
) -> EmisionRead:
    """One emisión of a documento of the tenant; another tenant's is a 404."""
    if not (_is_uuid(documento_id) and _is_uuid(emision_id)):
        raise NotFound(f"No existe la emisión {emision_id}.")
    row = (
        await session.execute(
            select(emisiones).where(
                emisiones.c.tenant_id == tenant_id,
                emisiones.c.documento_id == documento_id,
                emisiones.c.id == emision_id,
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"No existe la emisión {emision_id} del documento {documento_id}.")
    return _emision_read(row._mapping)


async def esperar_emision(
    db: Database, *, tenant_id: str, documento_id: str, emision_id: str, seconds: float
) -> EmisionRead:
    """The emisión once it is final, or as it stands after ``seconds``.

    Polls the row with short, growing pauses: the saga's steps commit in other
    transactions (other processes, with RabbitMQ), so the row is the one place
    to learn how it went.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    pause = 0.05
    while True:
        async with tenant_transaction(db, tenant_id) as session:
            emision = await consultar_emision(
                session, tenant_id=tenant_id, documento_id=documento_id, emision_id=emision_id
            )
        left = deadline - loop.time()
        if emision.estado.final or left <= 0:
            return emision
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 1.5, 0.5)


async def buscar_emitido(db: Database, csv: str) -> DocumentoLocalizado | None:
    """The issued document a CSV names, in whichever tenant (None when none is).

    Runs without a tenant: the SECURITY DEFINER function is the only thing that
    looks across tenants, and it tells only where the document is.
    """
    async with db.sessions() as session, session.begin():
        row = (
            await session.execute(
                text(
                    "SELECT tenant_id, documento_id, version, sha256 "
                    f"FROM {DOCUMENTO_EMITIDO_FN}(:csv)"
                ),
                {"csv": csv},
            )
        ).first()
    if row is None:
        return None
    return DocumentoLocalizado(
        tenant_id=row.tenant_id,
        documento_id=str(row.documento_id),
        version=int(row.version),
        sha256=row.sha256,
    )


# --- the saga's steps ----------------------------------------------------------------------


_T = TypeVar("_T")


async def _in_worker(
    documents: CpuPool | None, tenant: str, fn: Callable[..., _T], *args: Any
) -> _T:
    """``fn(*args)`` in the document workers (parsing and stamping a PDF is CPU work)."""
    if documents is None:
        return await asyncio.to_thread(fn, *args)
    return await documents.run(tenant, fn, *args)


def _stamp(pdf: bytes, csv: str, url: str) -> bytes:
    """:func:`stamping.stamp_csv` with positional arguments, as a worker job takes them."""
    return stamping.stamp_csv(pdf, csv=csv, url=url)


async def on_codigo_reservado(
    uow: UnitOfWork,
    event: ReceivedEvent,
    *,
    store: BlobStore,
    max_bytes: int,
    documents: CpuPool | None = None,
) -> None:
    """The CSV is reserved: stamp it on the version's every page and send it to be sealed.

    The stamp is drawn by a document worker (``documents``), off the event loop.
    """
    data = event.data
    if data["solicitante"] != SOLICITANTE:
        return
    row = await _lock(uow, data["solicitud_id"], event)
    if row is None or row.estado != EstadoEmision.PENDIENTE:
        _skip(event, row)
        return
    # Both were checked against the contract (the code's pattern, a URI) on arrival.
    csv = str(data["csv"])
    url = str(data["url_verificacion"])
    try:
        if data["documento_id"] != row.documento_id:
            raise _Fallo(
                "respuesta-incoherente",
                f"El CSV se reservó para el documento {data['documento_id']}, "
                f"no para {row.documento_id}.",
            )
        origen = await service.consultar_version(
            uow.session,
            tenant_id=uow.tenant_id,
            documento_id=row.documento_id,
            version=row.version_origen,
        )
        if origen.tamano > max_bytes:
            raise _Fallo("demasiado-grande", f"El documento supera {max_bytes} bytes.")
        pdf = await _read_blob(store, uow.tenant_id, origen.sha256)
        try:
            stamped = await _in_worker(documents, uow.tenant_id, _stamp, pdf, csv, url)
        except stamping.StampingError as exc:
            raise _Fallo("pdf-no-valido", str(exc)) from exc
        if len(stamped) > max_bytes:
            raise _Fallo(
                "demasiado-grande", f"El documento con el CSV estampado supera {max_bytes} bytes."
            )
    except _Fallo as fallo:
        await _fail(uow, row, fallo.codigo, fallo.motivo, csv=csv, url=url)
        return
    ahora = datetime.now(UTC)
    uow.defer(
        update(emisiones)
        .where(emisiones.c.id == row.id)
        .values(
            estado=EstadoEmision.SELLANDO.value,
            csv=csv,
            url_verificacion=url,
            actualizado_en=ahora,
        )
    )
    uow.audit(
        action="estampar",
        entity="emision",
        entity_id=row.id,
        old={"estado": row.estado},
        new={
            "estado": EstadoEmision.SELLANDO.value,
            "csv": csv,
            "url_verificacion": url,
            "sha256_estampado": hashlib.sha256(stamped).hexdigest(),
        },
    )
    uow.emit(
        SELLAR_DOCUMENTO,
        {
            "solicitud_id": row.id,
            "solicitante": SOLICITANTE,
            "nombre_fichero": nombre_pdf(origen.nombre),
            "pdf": base64.b64encode(stamped).decode("ascii"),
            "motivo": f"Documento emitido con CSV {csv}",
        },
        subject=row.documento_id,
    )


async def on_documento_sellado(uow: UnitOfWork, event: ReceivedEvent, *, store: BlobStore) -> None:
    """The stamped PDF is sealed: store it as the documento's new version, issued."""
    data = event.data
    if data["solicitante"] != SOLICITANTE:
        return
    row = await _lock(uow, data["solicitud_id"], event)
    if row is None or row.estado != EstadoEmision.SELLANDO:
        _skip(event, row)
        return
    try:
        pdf = _decode_sealed(data)
    except _Fallo as fallo:
        await _fail(uow, row, fallo.codigo, fallo.motivo)
        return
    origen = await service.consultar_version(
        uow.session,
        tenant_id=uow.tenant_id,
        documento_id=row.documento_id,
        version=row.version_origen,
    )
    # Stored before the version that points at it: if this transaction fails, the blob
    # is an unreferenced copy that the retry finds already there (same hash).
    stored = await store.put(uow.tenant_id, _once(pdf))
    ahora = datetime.now(UTC)
    nueva = await service.agregar_version_emitida(
        uow,
        documento_id=row.documento_id,
        version_origen=row.version_origen,
        contenido=Contenido(
            sha256=stored.sha256,
            tamano=stored.size,
            mime=_PDF_MIME,
            nombre=nombre_pdf(origen.nombre),
            formato="PDF",
        ),
        csv=row.csv,
        now=ahora,
    )
    sello_tiempo = datetime.fromisoformat(data["sello_tiempo"])
    firmante = str(data["firmante"])[:500]
    uow.defer(
        update(emisiones)
        .where(emisiones.c.id == row.id)
        .values(
            estado=EstadoEmision.EMITIDA.value,
            version_emitida=nueva.version,
            sha256=nueva.sha256,
            firmante=firmante,
            sello_tiempo=sello_tiempo,
            emitida_en=ahora,
            actualizado_en=ahora,
        )
    )
    uow.audit(
        action="emitida",
        entity="emision",
        entity_id=row.id,
        old={"estado": row.estado},
        new={
            "estado": EstadoEmision.EMITIDA.value,
            "csv": row.csv,
            "version_emitida": nueva.version,
            "sha256": nueva.sha256,
            "firmante": firmante,
            "sello_tiempo": sello_tiempo.isoformat(),
        },
    )
    eni = nueva.metadatos
    uow.emit(
        DOCUMENTO_EMITIDO,
        {
            "documento_id": row.documento_id,
            "version": nueva.version,
            "csv": row.csv,
            "url_verificacion": row.url_verificacion,
            "sha256": nueva.sha256,
            "tamano": nueva.tamano,
            "nombre_fichero": nueva.nombre,
            "identificador": eni.identificador,
            "tipo_documental": eni.tipo_documental.value,
            "organo": eni.organo,
            "emitido_en": ahora.isoformat(),
            "firmante": firmante,
            "sello_tiempo": sello_tiempo.isoformat(),
            **_solicitud_fields(row),
        },
        subject=row.documento_id,
    )


async def on_documento_rechazado(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """The sellado refused the stamped PDF: the emisión fails and nothing is issued."""
    data = event.data
    if data["solicitante"] != SOLICITANTE:
        return
    row = await _lock(uow, data["solicitud_id"], event)
    if row is None or row.estado != EstadoEmision.SELLANDO:
        _skip(event, row)
        return
    await _fail(uow, row, str(data["codigo"]), f"El sellado rechazó el documento: {data['motivo']}")


async def on_emitir_documento(
    uow: UnitOfWork,
    event: ReceivedEvent,
    *,
    store: BlobStore,
    max_bytes: int,
    documents: CpuPool | None = None,
) -> None:
    """A service asks to issue a PDF: store it as a new documento and open its emisión.

    Done once per (solicitante, solicitud_id); a command that cannot be carried
    out is answered with ``repositorio.emision.fallida.v1``, never retried.
    """
    data = event.data
    solicitud = Solicitud(
        solicitud_id=str(data["solicitud_id"]),
        solicitante=str(data["solicitante"]),
        referencia=data.get("referencia"),
    )
    if await _emision_de_solicitud(uow, solicitud) is not None:
        _log.info(
            "command %s: solicitud %s of %s already taken; skipped",
            event.id,
            solicitud.solicitud_id,
            solicitud.solicitante,
        )
        return
    try:
        pdf = _decode_pdf(str(data["pdf"]), max_bytes=max_bytes)
        metadatos = _metadatos(data["metadatos"])
        try:
            await _in_worker(documents, uow.tenant_id, stamping.check_pdf, pdf)
        except stamping.StampingError as exc:
            raise _Fallo("pdf-no-valido", str(exc)) from exc
    except _Fallo as fallo:
        uow.audit(
            action="emitir-rechazado",
            entity="solicitud",
            entity_id=solicitud.solicitud_id,
            new={"solicitante": solicitud.solicitante, "codigo": fallo.codigo},
        )
        _emit_fallida(uow, None, None, solicitud, fallo.codigo, fallo.motivo)
        return
    formato, mime = resolver_formato(_PDF_MIME, None)
    nombre = nombre_pdf(domain.nombre_de_fichero(str(data["nombre_fichero"]), formato))
    stored = await store.put(uow.tenant_id, _once(pdf))
    documento = await service.guardar_documento(
        uow,
        metadatos=metadatos,
        contenido=Contenido(
            sha256=stored.sha256,
            tamano=stored.size,
            mime=mime,
            nombre=nombre,
            formato=formato.nombre,
        ),
    )
    abrir_emision(
        uow, documento_id=documento.id, origen=documento.version_actual, solicitud=solicitud
    )


# --- helpers -------------------------------------------------------------------------------


async def _fail(
    uow: UnitOfWork,
    row: _Row,
    codigo: str,
    motivo: str,
    *,
    csv: str | None = None,
    url: str | None = None,
) -> None:
    """The emisión fails: recorded, audited and announced (with its CSV, to be annulled)."""
    ahora = datetime.now(UTC)
    codigo = codigo[:50]
    motivo = motivo[:1000]
    values: dict[str, Any] = {
        "estado": EstadoEmision.FALLIDA.value,
        "codigo": codigo,
        "motivo": motivo,
        "actualizado_en": ahora,
    }
    if csv is not None:
        values.update(csv=csv, url_verificacion=url)
    uow.defer(update(emisiones).where(emisiones.c.id == row.id).values(**values))
    _log.warning("emision %s failed (%s): %s", row.id, codigo, motivo)
    uow.audit(
        action="fallida",
        entity="emision",
        entity_id=row.id,
        old={"estado": row.estado},
        new={key: value for key, value in values.items() if key != "actualizado_en"},
    )
    _emit_fallida(uow, row.documento_id, csv or row.csv, _solicitud_of(row), codigo, motivo)


def _emit_fallida(
    uow: UnitOfWork,
    documento_id: str | None,
    csv: str | None,
    solicitud: Solicitud | None,
    codigo: str,
    motivo: str,
) -> None:
    data: dict[str, Any] = {"motivo": motivo[:1000], "codigo": codigo[:50]}
    if documento_id is not None:
        data["documento_id"] = documento_id
    if csv is not None:
        data["csv"] = csv
    if solicitud is not None:
        data["solicitud_id"] = solicitud.solicitud_id
        data["solicitante"] = solicitud.solicitante
    subject = documento_id or (solicitud.solicitud_id if solicitud is not None else None)
    uow.emit(EMISION_FALLIDA, data, subject=subject)


def _solicitud_of(row: _Row) -> Solicitud | None:
    if row.solicitud_id is None:
        return None
    return Solicitud(str(row.solicitud_id), row.solicitante, row.referencia)


def _solicitud_fields(row: _Row) -> dict[str, Any]:
    """What an event carries back to the command's requester (nothing for an API emisión)."""
    solicitud = _solicitud_of(row)
    if solicitud is None:
        return {}
    fields: dict[str, Any] = {
        "solicitud_id": solicitud.solicitud_id,
        "solicitante": solicitud.solicitante,
    }
    if solicitud.referencia is not None:
        fields["referencia"] = solicitud.referencia
    return fields


async def _lock(uow: UnitOfWork, emision_id: str, event: ReceivedEvent) -> _Row | None:
    """The emisión a reply names, locked until commit so replies to it take turns."""
    if not _is_uuid(emision_id):
        return None
    return (
        await uow.session.execute(
            select(emisiones)
            .where(emisiones.c.tenant_id == uow.tenant_id, emisiones.c.id == emision_id)
            .with_for_update()
        )
    ).first()


def _skip(event: ReceivedEvent, row: _Row | None) -> None:
    if row is None:
        _log.warning("%s %s names no emision of tenant %s", event.name, event.id, event.tenant)
    else:
        _log.info(
            "%s %s for emision %s in state %s: skipped", event.name, event.id, row.id, row.estado
        )


async def _emision_que_produjo(
    session: AsyncSession, tenant_id: str, documento_id: str, version: int
) -> _Row | None:
    return (
        await session.execute(
            select(emisiones.c.id, emisiones.c.csv).where(
                emisiones.c.tenant_id == tenant_id,
                emisiones.c.documento_id == documento_id,
                emisiones.c.version_emitida == version,
            )
        )
    ).first()


async def _emision_de_solicitud(uow: UnitOfWork, solicitud: Solicitud) -> _Row | None:
    return (
        await uow.session.execute(
            select(emisiones.c.id).where(
                emisiones.c.tenant_id == uow.tenant_id,
                emisiones.c.solicitante == solicitud.solicitante,
                emisiones.c.solicitud_id == solicitud.solicitud_id,
            )
        )
    ).first()


async def _read_blob(store: BlobStore, tenant: str, sha256: str) -> bytes:
    """The bytes of a version, checked against their hash (a damaged blob fails the emisión)."""
    try:
        chunks = await store.get(tenant, sha256)
        data = b"".join([chunk async for chunk in chunks])
    except (BlobNotFound, BlobCorrupted) as exc:
        raise _Fallo(
            "contenido-danado", f"El contenido del documento no está íntegro: {exc}"
        ) from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise _Fallo("contenido-danado", "El contenido del documento no coincide con su SHA-256.")
    return data


def _decode_pdf(encoded: str, *, max_bytes: int) -> bytes:
    if len(encoded) > (max_bytes * 4) // 3 + 4:
        raise _Fallo("demasiado-grande", f"El PDF supera {max_bytes} bytes.")
    try:
        pdf = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _Fallo("pdf-no-valido", "El campo pdf no es base64 válido.") from exc
    if len(pdf) > max_bytes:
        raise _Fallo("demasiado-grande", f"El PDF supera {max_bytes} bytes.")
    if b"%PDF-" not in pdf[:1024]:
        raise _Fallo("pdf-no-valido", "El contenido no es un PDF.")
    return pdf


def _decode_sealed(data: dict[str, Any]) -> bytes:
    try:
        pdf = base64.b64decode(str(data["pdf"]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _Fallo("sello-no-valido", "El PDF sellado no es base64 válido.") from exc
    if hashlib.sha256(pdf).hexdigest() != data["sha256"]:
        raise _Fallo(
            "sello-no-valido", "El PDF sellado no coincide con el SHA-256 de la respuesta."
        )
    if b"%PDF-" not in pdf[:1024]:
        raise _Fallo("sello-no-valido", "El sellado no devolvió un PDF.")
    return pdf


def _metadatos(raw: Any) -> MetadatosCreate:
    # The contract lets a later minor add properties: those we do not know are ignored.
    known = {k: v for k, v in raw.items() if k in MetadatosCreate.model_fields}
    try:
        return MetadatosCreate.model_validate(known)
    except ValidationError as exc:
        campos = ", ".join(
            "metadatos." + ".".join(str(part) for part in error["loc"]) for error in exc.errors()
        )
        raise _Fallo("metadatos-no-validos", f"Metadatos ENI no válidos: {campos}.") from exc


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def _emision_read(row: Any) -> EmisionRead:
    values = {key: row[key] for key in EmisionRead.model_fields if key in row}
    for key in ("id", "documento_id", "solicitud_id"):
        if values.get(key) is not None:
            values[key] = str(values[key])
    return EmisionRead.model_validate(values)


# --- consultar: does a documento exist, and with which CSV ---------------------------------

CONSULTAR_DOCUMENTO = "repositorio.documento.consultar.v1"
DOCUMENTO_CONSULTADO = "repositorio.documento.consultado.v1"


async def responder_consulta(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """Answers whether a documento of the council exists, with its current version, name
    and, when that version was issued, its CSV and public verification URL.

    Services hold no credential of each other, so another service (notificaciones, before
    it notifies a document the tramitador named) asks over the bus. A malformed id is
    simply not found: the requester learns why from the answer, not from a dead letter.
    """
    data = event.data
    documento_id = str(data.get("documento_id") or "")
    respuesta: dict[str, Any] = {
        "solicitud_id": data["solicitud_id"],
        "solicitante": data["solicitante"],
        "documento_id": documento_id,
        "encontrado": False,
        "version": None,
        "nombre": None,
        "csv": None,
        "url_verificacion": None,
    }
    try:
        actual = await service.consultar_documento(
            uow.session, tenant_id=uow.tenant_id, documento_id=documento_id
        )
    except NotFound:
        actual = None
    if actual is not None:
        respuesta.update(
            encontrado=True,
            version=actual.version_actual.version,
            nombre=actual.version_actual.nombre,
            csv=actual.csv,
            url_verificacion=actual.url_verificacion,
        )
    uow.emit(DOCUMENTO_CONSULTADO, respuesta, subject=documento_id or None)
