"""Use cases of SICRES 3.0 exchanges: export an asiento, receive a file, accept or reject it.

An exchange received from another register waits (``recibido``) until the office
accepts it, which registers it as a new entrada of this entity through
``service.register_asiento`` (own number and date, audit, asiento.registrado), or
rejects it with a reason. Each step is one transaction and announces itself on the bus.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    LargeBinary,
    String,
    Table,
    Text,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import Conflict, FieldError, NotFound, Unprocessable
from services.common.inputs import DIR3
from services.common.tenants import Tenant
from services.common.uow import UnitOfWork
from services.registro import domain, sello_tiempo, service, sicres, sicres_mensajes
from services.registro.busqueda import EstadoAsiento
from services.registro.models import asientos, metadata

__all__ = [
    "INTERCAMBIO_ACEPTADO",
    "INTERCAMBIO_RECHAZADO",
    "INTERCAMBIO_RECIBIDO",
    "EstadoIntercambio",
    "IntercambioRead",
    "RechazoCreate",
    "AceptacionCreate",
    "accept_intercambio",
    "export_asiento",
    "get_intercambio",
    "intercambios",
    "list_intercambios",
    "mensaje_de",
    "receive_intercambio",
    "rechazo_de",
    "reject_intercambio",
]

INTERCAMBIO_RECIBIDO = "registro.intercambio.recibido.v1"
INTERCAMBIO_ACEPTADO = "registro.intercambio.aceptado.v1"
INTERCAMBIO_RECHAZADO = "registro.intercambio.rechazado.v1"
# The counter of the exchanges this entity sends (Identificador_Intercambio), per year.
SERIE_INTERCAMBIO = "intercambio-sicres"

intercambios = Table(
    "intercambios",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("identificador_intercambio", String(33), nullable=False),
    Column("estado", String(10), nullable=False),
    Column("codigo_entidad_origen", String(21), nullable=False),
    Column("numero_registro_origen", String(20), nullable=False),
    Column("fecha_registro_origen", DateTime(timezone=True), nullable=False),
    Column("xml", LargeBinary, nullable=False),
    Column("datos", JSONB, nullable=False),
    Column("anexos", JSONB, nullable=False),
    Column("motivo_rechazo", Text),
    Column("asiento_id", UUID(as_uuid=False), ForeignKey(asientos.c.id)),
    Column("recibido_por", String(255), nullable=False),
    Column("recibido_en", DateTime(timezone=True), nullable=False),
    Column("decidido_por", String(255)),
    Column("decidido_en", DateTime(timezone=True)),
    CheckConstraint("estado IN ('recibido', 'aceptado', 'rechazado')"),
)


class EstadoIntercambio(StrEnum):
    """Where a received exchange stands: waiting, or decided one way for good."""

    RECIBIDO = "recibido"
    ACEPTADO = "aceptado"
    RECHAZADO = "rechazado"


class RechazoCreate(BaseModel):
    """What staff send to reject an exchange: why (it goes back to the origin)."""

    model_config = ConfigDict(extra="forbid")

    motivo: str = Field(
        min_length=1, max_length=500, examples=["No es competencia de esta entidad"]
    )

    @field_validator("motivo")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped:
            raise ValueError("el motivo no puede estar en blanco")
        return stripped


class Origen(BaseModel):
    """The register that sent the exchange and the number and date it gave it there."""

    codigo_entidad_registral: str
    numero_registro: str
    fecha_registro: datetime


class IntercambioRead(BaseModel):
    """A received exchange as the registro keeps it (the raw XML is not repeated here)."""

    id: str
    identificador_intercambio: str = Field(examples=["O00002741_13_00000012"])
    estado: EstadoIntercambio
    origen: Origen
    datos: dict[str, Any] = Field(description="Lo que dice el fichero, sin el contenido de anexos")
    anexos: list[dict[str, Any]] = Field(
        description="Cada anexo: identificador, nombre, recibido_sin_contenido, hash_comprobado…"
    )
    motivo_rechazo: str | None = None
    asiento_id: str | None = None
    recibido_por: str
    recibido_en: datetime
    decidido_por: str | None = None
    decidido_en: datetime | None = None


def _read(row: Any) -> IntercambioRead:
    data = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    return IntercambioRead.model_validate(
        {
            **data,
            "origen": {
                "codigo_entidad_registral": data["codigo_entidad_origen"],
                "numero_registro": data["numero_registro_origen"],
                "fecha_registro": data["fecha_registro_origen"],
            },
        }
    )


# --- export --------------------------------------------------------------------------------


async def export_asiento(
    uow: UnitOfWork,
    *,
    asiento_id: str,
    entidad: Tenant,
    contenidos: Sequence[bytes | None] = (),
) -> tuple[str, bytes]:
    """The asiento as a SICRES 3.0 file sent by this entity; answers its exchange id and bytes.

    Each export is a new exchange with its own Identificador_Intercambio, taken from
    the entity's gapless counter of the year, and audited. ``contenidos`` are the
    bytes of the asiento's anexos, in order (read from the repositorio beforehand,
    so no HTTP call waits inside the transaction); None for one received without.
    """
    asiento = await service.get_asiento(uow.session, tenant_id=uow.tenant_id, asiento_id=asiento_id)
    if asiento.estado is EstadoAsiento.ANULADO:
        raise Conflict(f"El asiento {asiento.numero} está anulado: no se intercambia.")
    zona = domain.tenant_timezone(uow.tenant_id)
    anio = datetime.now(zona).year
    contador = await uow.next_number(SERIE_INTERCAMBIO, anio)
    identificador = sicres.identificador_intercambio(entidad.dir3, anio, contador)
    # The register date-time's RFC 3161 token travels as Timestamp_Entrada once issued.
    timestamp = await sello_tiempo.token_de(uow.session, asiento_id=asiento.id)
    try:
        data = sicres.build_fichero(
            asiento,
            codigo_entidad=entidad.dir3,
            nombre_entidad=entidad.nombre,
            identificador=identificador,
            timestamp=timestamp,
            anexos=list(zip(asiento.anexos, contenidos, strict=True)),
        )
    except sicres.NoRepresentable as exc:
        raise Conflict(
            f"El asiento {asiento.numero} no cabe en SICRES 3.0.",
            errors=[FieldError(name, msg) for name, msg in exc.errors],
        ) from None
    uow.audit(
        action="exportar-sicres",
        entity="asiento",
        entity_id=asiento.id,
        new={"identificador_intercambio": identificador},
    )
    return identificador, data


# --- reception -----------------------------------------------------------------------------


def _schema_problem(exc: sicres.FicheroInvalido) -> Unprocessable:
    return Unprocessable(
        "El fichero no es un Fichero_Intercambio_SICRES_3 válido.",
        errors=[
            FieldError(f"línea {line}" if line is not None else "fichero", message)
            for line, message in exc.errors
        ],
    )


def _leer(data: bytes) -> tuple[sicres.FicheroIntercambio, list[dict[str, Any]]]:
    """Validates, parses and checks the anexos of a file (CPU work, run off the loop)."""
    fichero = sicres.parse_fichero(data)
    return fichero, sicres.comprobar_anexos(fichero)


async def receive_intercambio(uow: UnitOfWork, *, data: bytes) -> IntercambioRead:
    """Stores a received exchange file, pending the office's decision; 422 if it is not valid."""
    try:
        fichero, anexos = await asyncio.to_thread(_leer, data)
    except sicres.FicheroInvalido as exc:
        raise _schema_problem(exc) from None
    except sicres.HashNoCoincide as exc:
        raise Unprocessable(
            f"El anexo {exc.anexo} no coincide con su Hash.",
            errors=[FieldError(f"De_Anexo[{exc.anexo}]", str(exc))],
        ) from None
    now = datetime.now(UTC)
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "identificador_intercambio": fichero.identificador_intercambio,
        "estado": EstadoIntercambio.RECIBIDO.value,
        "codigo_entidad_origen": fichero.codigo_entidad_origen,
        "numero_registro_origen": fichero.numero_registro_origen,
        # In UTC, as PostgreSQL answers it: the 201 and a later GET then agree.
        "fecha_registro_origen": fichero.fecha_registro_origen.astimezone(UTC),
        "xml": data,
        "datos": fichero.resumen_json(),
        "anexos": anexos,
        "recibido_por": uow.actor.sub,
        "recibido_en": now,
    }
    # Written now, not deferred: a second copy of an open exchange is a clean 409.
    try:
        async with uow.session.begin_nested():
            await uow.session.execute(intercambios.insert().values(**row))
    except IntegrityError:
        raise Conflict(
            f"El intercambio {fichero.identificador_intercambio} ya se recibió y no fue rechazado."
        ) from None
    intercambio = _read(row)
    uow.audit(
        action="recibir-intercambio",
        entity="intercambio",
        entity_id=intercambio.id,
        new=_snapshot(intercambio),
    )
    uow.emit(
        INTERCAMBIO_RECIBIDO,
        {
            **_evento(intercambio),
            "resumen": fichero.resumen,
            "anexos": len(anexos),
            "anexos_sin_contenido": sum(1 for a in anexos if a["recibido_sin_contenido"]),
        },
        subject=intercambio.identificador_intercambio,
    )
    return intercambio


def _snapshot(intercambio: IntercambioRead) -> dict[str, Any]:
    """What the audit keeps of an exchange: its state, not the whole file again."""
    return intercambio.model_dump(mode="json", exclude={"datos", "anexos"})


def _evento(intercambio: IntercambioRead) -> dict[str, Any]:
    """The fields every intercambio event carries."""
    return {
        "intercambio_id": intercambio.id,
        "identificador_intercambio": intercambio.identificador_intercambio,
        "codigo_entidad_origen": intercambio.origen.codigo_entidad_registral,
        "numero_registro_origen": intercambio.origen.numero_registro,
        "fecha_registro_origen": intercambio.origen.fecha_registro.isoformat(),
    }


# --- queries -------------------------------------------------------------------------------


def _columns() -> list[Any]:
    return [c for c in intercambios.c if c.name != "xml"]


async def get_intercambio(
    session: AsyncSession, *, tenant_id: str, intercambio_id: str, for_update: bool = False
) -> IntercambioRead:
    """One exchange of the tenant; another tenant's (or a malformed id) is a 404."""
    try:
        uuid.UUID(intercambio_id)
    except ValueError:
        raise NotFound(f"No existe el intercambio {intercambio_id}.") from None
    query = select(*_columns()).where(
        intercambios.c.tenant_id == tenant_id, intercambios.c.id == intercambio_id
    )
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(f"No existe el intercambio {intercambio_id}.")
    return _read(row)


async def list_intercambios(
    session: AsyncSession,
    *,
    tenant_id: str,
    estado: EstadoIntercambio | None,
    size: int,
    page: int,
) -> tuple[list[IntercambioRead], int]:
    """A page of the tenant's exchanges, newest first, and how many match."""
    where = [intercambios.c.tenant_id == tenant_id]
    if estado is not None:
        where.append(intercambios.c.estado == estado.value)
    total = int(
        (
            await session.execute(select(func.count()).select_from(intercambios).where(*where))
        ).scalar_one()
    )
    rows = (
        await session.execute(
            select(*_columns())
            .where(*where)
            .order_by(intercambios.c.recibido_en.desc(), intercambios.c.id.desc())
            .offset((page - 1) * size)
            .limit(size)
        )
    ).all()
    return [_read(r) for r in rows], total


# --- decisions -----------------------------------------------------------------------------


async def _pendiente(uow: UnitOfWork, intercambio_id: str) -> tuple[IntercambioRead, bytes]:
    """The exchange, locked, if it still waits for a decision (else 409); and its file."""
    actual = await get_intercambio(
        uow.session, tenant_id=uow.tenant_id, intercambio_id=intercambio_id, for_update=True
    )
    if actual.estado is not EstadoIntercambio.RECIBIDO:
        raise Conflict(
            f"El intercambio {actual.identificador_intercambio} ya está {actual.estado.value}."
        )
    xml = (
        await uow.session.execute(
            select(intercambios.c.xml).where(intercambios.c.id == intercambio_id)
        )
    ).scalar_one()
    return actual, bytes(xml)


async def _decidir(
    uow: UnitOfWork, actual: IntercambioRead, action: str, changes: dict[str, Any]
) -> IntercambioRead:
    """Records a decision on a pending exchange and audits it; answers the exchange after it."""
    uow.defer(update(intercambios).where(intercambios.c.id == actual.id).values(**changes))
    nuevo = IntercambioRead.model_validate({**actual.model_dump(), **changes})
    uow.audit(
        action=action,
        entity="intercambio",
        entity_id=actual.id,
        old=_snapshot(actual),
        new=_snapshot(nuevo),
    )
    return nuevo


class AceptacionCreate(BaseModel):
    """What staff may say when accepting an exchange: the oficina that registers it."""

    model_config = ConfigDict(extra="forbid")

    oficina: str | None = Field(
        default=None,
        description="Código DIR3 de la oficina que lo registra (necesaria si la entidad "
        "numera por oficina)",
        examples=["O00002741"],
        json_schema_extra=DIR3,
    )

    @field_validator("oficina")
    @classmethod
    def _valid_oficina(cls, value: str | None) -> str | None:
        return None if value is None else domain.validate_dir3(value)


async def accept_intercambio(
    uow: UnitOfWork, *, intercambio_id: str, data: AceptacionCreate | None = None
) -> IntercambioRead:
    """Registers a pending exchange as a new entrada of this entity (own number and date),
    in the oficina given, if any."""
    actual, xml = await _pendiente(uow, intercambio_id)
    fichero = await asyncio.to_thread(sicres.parse_fichero, xml)
    try:
        datos = sicres.asiento_create(fichero)
        if data is not None and data.oficina is not None:
            datos = datos.model_copy(update={"oficina": data.oficina})
    except sicres.NoRepresentable as exc:
        raise Unprocessable(
            "El intercambio no se puede registrar como asiento: recházelo con un motivo.",
            errors=[FieldError(name, msg) for name, msg in exc.errors],
        ) from None
    except ValidationError as exc:
        raise Unprocessable(
            "El intercambio no se puede registrar como asiento: recházelo con un motivo.",
            errors=[
                FieldError(".".join(str(p) for p in e["loc"]) or "asiento", e["msg"])
                for e in exc.errors()
            ],
        ) from None
    asiento = await service.register_asiento(uow, data=datos, anexos_recibidos=fichero.anexos)
    now = datetime.now(UTC)
    nuevo = await _decidir(
        uow,
        actual,
        "aceptar-intercambio",
        {
            "estado": EstadoIntercambio.ACEPTADO.value,
            "asiento_id": asiento.id,
            "decidido_por": uow.actor.sub,
            "decidido_en": now,
        },
    )
    uow.emit(
        INTERCAMBIO_ACEPTADO,
        {
            **_evento(nuevo),
            "asiento_id": asiento.id,
            "numero": asiento.numero,
            "fecha_registro": asiento.fecha_registro.isoformat(),
            "aceptado_por": uow.actor.sub,
            "aceptado_en": now.isoformat(),
        },
        subject=nuevo.identificador_intercambio,
    )
    return nuevo


async def reject_intercambio(
    uow: UnitOfWork, *, intercambio_id: str, data: RechazoCreate
) -> IntercambioRead:
    """Rejects a pending exchange, saying why; nothing is registered."""
    actual, _ = await _pendiente(uow, intercambio_id)
    now = datetime.now(UTC)
    nuevo = await _decidir(
        uow,
        actual,
        "rechazar-intercambio",
        {
            "estado": EstadoIntercambio.RECHAZADO.value,
            "motivo_rechazo": data.motivo,
            "decidido_por": uow.actor.sub,
            "decidido_en": now,
        },
    )
    uow.emit(
        INTERCAMBIO_RECHAZADO,
        {
            **_evento(nuevo),
            "motivo": data.motivo,
            "rechazado_por": uow.actor.sub,
            "rechazado_en": now.isoformat(),
        },
        subject=nuevo.identificador_intercambio,
    )
    return nuevo


# --- answers to the origin -----------------------------------------------------------------


async def mensaje_de(session: AsyncSession, *, tenant_id: str, intercambio_id: str) -> bytes:
    """The SICRES message this register owes the origin for an exchange, as it stands.

    Received: an ACK naming the files that came. Accepted: a confirmación with the
    number and date it was registered with here. Rejected: no message, the file goes
    back instead (``rechazo_de``), so that is a 409.
    """
    intercambio = await get_intercambio(session, tenant_id=tenant_id, intercambio_id=intercambio_id)
    # The register the file was addressed to is the one that answers.
    emisor = intercambio.datos["destino"]["codigo_entidad_registral"]
    comun = {
        "codigo_entidad_origen": emisor,
        "codigo_entidad_destino": intercambio.origen.codigo_entidad_registral,
        "identificador_intercambio": intercambio.identificador_intercambio,
        "indicador_prueba": bool(intercambio.datos.get("indicador_prueba")),
    }
    if intercambio.estado is EstadoIntercambio.RECHAZADO:
        raise Conflict(
            f"El intercambio {intercambio.identificador_intercambio} fue rechazado: se "
            "devuelve el fichero con Tipo_Anotacion 04 (…/rechazo), no un mensaje."
        )
    if intercambio.estado is EstadoIntercambio.RECIBIDO:
        mensaje = sicres_mensajes.Mensaje(
            **comun,
            tipo=sicres_mensajes.TipoMensaje.ACK,
            identificadores_fichero=tuple(
                str(a["identificador_fichero"]) for a in intercambio.anexos
            ),
        )
    else:
        assert intercambio.asiento_id is not None
        asiento = await service.get_asiento(
            session, tenant_id=tenant_id, asiento_id=intercambio.asiento_id
        )
        mensaje = sicres_mensajes.Mensaje(
            **comun,
            tipo=sicres_mensajes.TipoMensaje.CONFIRMACION,
            numero_registro_destino=asiento.numero,
            fecha_registro_destino=asiento.fecha_registro,
        )
    return sicres_mensajes.build_mensaje(mensaje)


async def rechazo_de(session: AsyncSession, *, tenant_id: str, intercambio_id: str) -> bytes:
    """The file of a rejected exchange as it goes back to its origin (Tipo_Anotacion 04)."""
    intercambio = await get_intercambio(session, tenant_id=tenant_id, intercambio_id=intercambio_id)
    if intercambio.estado is not EstadoIntercambio.RECHAZADO:
        raise Conflict(
            f"El intercambio {intercambio.identificador_intercambio} no está rechazado "
            f"(está {intercambio.estado.value})."
        )
    assert intercambio.motivo_rechazo is not None
    xml = (
        await session.execute(select(intercambios.c.xml).where(intercambios.c.id == intercambio.id))
    ).scalar_one()
    return await asyncio.to_thread(
        sicres_mensajes.fichero_de_rechazo, bytes(xml), intercambio.motivo_rechazo
    )
