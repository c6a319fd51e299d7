"""Exports of the libro de registro as background jobs: create, run, poll, download.

A year of a large council's register is tens of thousands of asientos: rendering it
inside a request would time out. The API inserts the job and starts :func:`start`,
an asyncio task in the service process that reads the book in keyset-paginated
batches (in order of number) and writes its progress in short transactions of its
own, so a client polling the job sees ``hechos`` move towards ``total``.

The export is the book as it stood when the job started: asientos registered
while it runs (their instant is later) are left out, so ``total`` holds.

A job lives in the process that started it. If that process stops (a crash, a
deploy), the job stays ``pendiente`` or ``en_curso`` with no one working on it;
a job not updated for :data:`ABANDONADA_TRAS` is marked ``fallida`` the next time
someone reads it, and the client asks for a new one.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db import Database, tenant_transaction
from services.common.errors import Conflict, NotFound
from services.common.tenants import Tenant
from services.common.uow import UnitOfWork
from services.registro import libro
from services.registro.busqueda import EstadoAsiento
from services.registro.domain import TipoAsiento, tenant_timezone
from services.registro.libro import Formato
from services.registro.models import SCHEMA, anulaciones, asientos
from services.registro.schemas import AsientoRead

__all__ = [
    "ABANDONADA_TRAS",
    "LOTE",
    "MAX_ASIENTOS_PDF",
    "MAX_RESULTADO_BYTES",
    "EstadoExportacion",
    "ExportacionCreate",
    "ExportacionRead",
    "create_exportacion",
    "exportaciones",
    "get_exportacion",
    "get_fichero",
    "run_exportacion",
    "start",
]

# Asientos read per transaction: small enough for short transactions, large enough
# that a year of a big council is a few dozen round trips.
LOTE = 1000
# fpdf2 lays out about 400 table rows a second; past this a PDF takes too long and is
# unreadable anyway, and the CSV is the format for it.
MAX_ASIENTOS_PDF = 10_000
# The file is kept in the row (bytea): capped like the migration's check constraint.
MAX_RESULTADO_BYTES = 64 * 1024 * 1024
# A running job writes its progress at least once per batch, and rendering the
# largest PDF allowed takes well under this.
ABANDONADA_TRAS = timedelta(minutes=10)

_log = logging.getLogger("consistorio.registro.libro")

exportaciones = Table(
    "exportaciones",
    MetaData(schema=SCHEMA),
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("tipo", String(10), nullable=False),
    Column("formato", String(5), nullable=False),
    Column("desde", Date, nullable=False),
    Column("hasta", Date, nullable=False),
    Column("estado", String(10), nullable=False),
    Column("total", Integer),
    Column("hechos", Integer, nullable=False),
    Column("creado_por", String(255), nullable=False),
    Column("creado_en", DateTime(timezone=True), nullable=False),
    Column("iniciado_en", DateTime(timezone=True)),
    Column("actualizado_en", DateTime(timezone=True), nullable=False),
    Column("terminado_en", DateTime(timezone=True)),
    Column("resultado", LargeBinary),
    Column("tamano", Integer),
    Column("error", Text),
)

# The tasks running in this process: asyncio keeps only weak references to tasks.
_en_marcha: set[asyncio.Task[None]] = set()


class EstadoExportacion(StrEnum):
    """Where an export job stands."""

    PENDIENTE = "pendiente"  # created, its task not started yet
    EN_CURSO = "en_curso"  # reading the book
    TERMINADA = "terminada"  # the file is ready
    FALLIDA = "fallida"  # it stopped; ``error`` says why


class ExportacionCreate(BaseModel):
    """What staff send to export a book: which one, as what, and the period."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"tipo": "entrada", "formato": "csv", "desde": "2026-01-01", "hasta": "2026-02-01"}
            ]
        },
    )

    tipo: TipoAsiento
    formato: Formato
    desde: date = Field(description="Primer día (incluido), en fecha local de la entidad")
    hasta: date = Field(description="Día siguiente al último (no se incluye); como mucho un año")


class ExportacionRead(BaseModel):
    """An export job as a client polls it."""

    id: str
    tipo: TipoAsiento
    formato: Formato
    desde: date
    hasta: date
    estado: EstadoExportacion
    total: int | None = Field(description="Asientos del periodo; null hasta que se cuentan")
    hechos: int = Field(description="Asientos ya escritos en el fichero")
    porcentaje: int = Field(ge=0, le=100)
    creado_por: str
    creado_en: datetime
    iniciado_en: datetime | None
    actualizado_en: datetime
    terminado_en: datetime | None
    tamano: int | None = Field(description="Bytes del fichero, cuando está terminada")
    error: str | None
    fichero: str | None = Field(description="Dónde descargar el fichero, cuando está terminada")


def _url(exportacion_id: str) -> str:
    return f"/api/v1/registro/libros/exportaciones/{exportacion_id}"


def _read(row: dict[str, Any]) -> ExportacionRead:
    terminada = row["estado"] == EstadoExportacion.TERMINADA
    return ExportacionRead.model_validate(
        {
            **{k: v for k, v in row.items() if k not in ("resultado", "tenant_id")},
            "porcentaje": libro.porcentaje(row["hechos"], row["total"]),
            "fichero": f"{_url(row['id'])}/fichero" if terminada else None,
        }
    )


_COLUMNAS = [c for c in exportaciones.c if c.name != "resultado"]


async def create_exportacion(
    uow: UnitOfWork, *, data: ExportacionCreate, now: datetime | None = None
) -> ExportacionRead:
    """Records a pending export (the caller starts it after the commit) and audits it."""
    libro.validate_rango(data.desde, data.hasta)
    ahora = now or datetime.now(UTC)
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "tipo": data.tipo.value,
        "formato": data.formato.value,
        "desde": data.desde,
        "hasta": data.hasta,
        "estado": EstadoExportacion.PENDIENTE.value,
        "total": None,
        "hechos": 0,
        "creado_por": uow.actor.sub,
        "creado_en": ahora,
        "iniciado_en": None,
        "actualizado_en": ahora,
        "terminado_en": None,
        "tamano": None,
        "error": None,
    }
    uow.add(exportaciones, row)
    exportacion = _read(row)
    uow.audit(
        action="exportar-libro",
        entity="exportacion",
        entity_id=exportacion.id,
        new=exportacion.model_dump(mode="json"),
    )
    return exportacion


def _valid_id(exportacion_id: str) -> None:
    try:
        uuid.UUID(exportacion_id)
    except ValueError:
        raise NotFound(f"No existe la exportación {exportacion_id}.") from None


async def get_exportacion(
    session: AsyncSession, *, tenant_id: str, exportacion_id: str, now: datetime | None = None
) -> ExportacionRead:
    """One export of the tenant, marked ``fallida`` first if its process abandoned it."""
    _valid_id(exportacion_id)
    ahora = now or datetime.now(UTC)
    mine = (exportaciones.c.tenant_id == tenant_id, exportaciones.c.id == exportacion_id)
    await session.execute(
        update(exportaciones)
        .where(
            *mine,
            exportaciones.c.estado.in_(
                [EstadoExportacion.PENDIENTE.value, EstadoExportacion.EN_CURSO.value]
            ),
            exportaciones.c.actualizado_en < ahora - ABANDONADA_TRAS,
        )
        .values(
            estado=EstadoExportacion.FALLIDA.value,
            error="La exportación se interrumpió (se detuvo el proceso que la hacía); "
            "pídala de nuevo.",
            actualizado_en=ahora,
            terminado_en=ahora,
        )
    )
    row = (await session.execute(select(*_COLUMNAS).where(*mine))).mappings().first()
    if row is None:
        raise NotFound(f"No existe la exportación {exportacion_id}.")
    return _read(dict(row))


async def get_fichero(
    session: AsyncSession, *, tenant_id: str, exportacion_id: str
) -> tuple[ExportacionRead, bytes]:
    """The finished export's file; 409 while it is not ``terminada``."""
    exportacion = await get_exportacion(session, tenant_id=tenant_id, exportacion_id=exportacion_id)
    if exportacion.estado is EstadoExportacion.FALLIDA:
        raise Conflict(f"La exportación falló: {exportacion.error}")
    if exportacion.estado is not EstadoExportacion.TERMINADA:
        raise Conflict(
            f"La exportación está {exportacion.estado.value.replace('_', ' ')} "
            f"({exportacion.porcentaje} %): el fichero aún no está listo."
        )
    resultado = (
        await session.execute(
            select(exportaciones.c.resultado).where(
                exportaciones.c.tenant_id == tenant_id, exportaciones.c.id == exportacion_id
            )
        )
    ).scalar_one()
    return exportacion, bytes(resultado)


# --- the job --------------------------------------------------------------------------------------


def start(db: Database, *, tenant_id: str, exportacion_id: str, entidad: Tenant) -> None:
    """Runs the export in the background of this process (call it after the commit)."""
    task = asyncio.create_task(
        run_exportacion(db, tenant_id=tenant_id, exportacion_id=exportacion_id, entidad=entidad),
        name=f"exportacion-libro-{exportacion_id}",
    )
    _en_marcha.add(task)
    task.add_done_callback(_en_marcha.discard)


def _asiento(row: Any) -> AsientoRead:
    data = dict(row._mapping)
    motivo = data.pop("anulacion_motivo")
    por = data.pop("anulacion_por")
    en = data.pop("anulacion_en")
    if motivo is not None:
        data["estado"] = EstadoAsiento.ANULADO
        data["anulacion"] = {"motivo": motivo, "anulado_por": por, "anulado_en": en}
    return AsientoRead.model_validate(data)


async def _leer_lote(
    session: AsyncSession,
    *,
    tenant_id: str,
    tipo: str,
    desde: datetime,
    hasta: datetime,
    despues_de: tuple[int, int] | None,
) -> list[AsientoRead]:
    """The next batch of the book, in order of number (anio, secuencia), after a key.

    The unique index (tenant_id, tipo, anio, secuencia) answers this order and the keyset.
    """
    query = (
        select(
            asientos,
            anulaciones.c.motivo.label("anulacion_motivo"),
            anulaciones.c.anulado_por.label("anulacion_por"),
            anulaciones.c.anulado_en.label("anulacion_en"),
        )
        .select_from(asientos.outerjoin(anulaciones, anulaciones.c.asiento_id == asientos.c.id))
        .where(
            asientos.c.tenant_id == tenant_id,
            asientos.c.tipo == tipo,
            asientos.c.fecha_registro >= desde,
            asientos.c.fecha_registro < hasta,
        )
    )
    if despues_de is not None:
        query = query.where(
            tuple_(asientos.c.anio, asientos.c.secuencia)
            > tuple_(literal(despues_de[0]), literal(despues_de[1]))
        )
    query = query.order_by(asientos.c.anio, asientos.c.secuencia).limit(LOTE)
    return [_asiento(r) for r in (await session.execute(query)).all()]


async def _set(db: Database, tenant_id: str, exportacion_id: str, **values: Any) -> None:
    """Writes the running job's state in a transaction of its own, so pollers see it at once.

    Only while ``en_curso``: a job a reader already declared abandoned stays ``fallida``.
    """
    async with tenant_transaction(db, tenant_id) as session:
        await session.execute(
            update(exportaciones)
            .where(
                exportaciones.c.tenant_id == tenant_id,
                exportaciones.c.id == exportacion_id,
                exportaciones.c.estado == EstadoExportacion.EN_CURSO.value,
            )
            .values(actualizado_en=datetime.now(UTC), **values)
        )


async def run_exportacion(
    db: Database, *, tenant_id: str, exportacion_id: str, entidad: Tenant
) -> None:
    """Reads the book batch by batch, writing progress, and stores the file (or the error)."""
    try:
        await _run(db, tenant_id=tenant_id, exportacion_id=exportacion_id, entidad=entidad)
    except Exception as exc:
        _log.exception("la exportación %s falló", exportacion_id)
        try:
            await _set(
                db,
                tenant_id,
                exportacion_id,
                estado=EstadoExportacion.FALLIDA.value,
                error=f"No se pudo generar el fichero ({type(exc).__name__}).",
                terminado_en=datetime.now(UTC),
            )
        except Exception:
            _log.exception("no se pudo marcar fallida la exportación %s", exportacion_id)


async def _fallida(db: Database, tenant_id: str, exportacion_id: str, error: str) -> None:
    await _set(
        db,
        tenant_id,
        exportacion_id,
        estado=EstadoExportacion.FALLIDA.value,
        error=error,
        terminado_en=datetime.now(UTC),
    )


async def _run(db: Database, *, tenant_id: str, exportacion_id: str, entidad: Tenant) -> None:
    zona = tenant_timezone(tenant_id)
    inicio = datetime.now(UTC)
    async with tenant_transaction(db, tenant_id) as session:
        job = (
            (
                await session.execute(
                    select(*_COLUMNAS).where(
                        exportaciones.c.tenant_id == tenant_id,
                        exportaciones.c.id == exportacion_id,
                        exportaciones.c.estado == EstadoExportacion.PENDIENTE.value,
                    )
                )
            )
            .mappings()
            .first()
        )
        if job is None:  # already started, or abandoned and marked fallida
            return
        desde, hasta = libro.instantes(job["desde"], job["hasta"], zona)
        # The book as it stands now: what is registered while the job runs is left out.
        hasta = min(hasta, inicio)
        total = (
            await session.execute(
                select(func.count())
                .select_from(asientos)
                .where(
                    asientos.c.tenant_id == tenant_id,
                    asientos.c.tipo == job["tipo"],
                    asientos.c.fecha_registro >= desde,
                    asientos.c.fecha_registro < hasta,
                )
            )
        ).scalar_one()
        await session.execute(
            update(exportaciones)
            .where(exportaciones.c.id == exportacion_id)
            .values(
                estado=EstadoExportacion.EN_CURSO.value,
                total=total,
                iniciado_en=inicio,
                actualizado_en=inicio,
            )
        )
    formato = Formato(job["formato"])
    if formato is Formato.PDF and total > MAX_ASIENTOS_PDF:
        await _fallida(
            db,
            tenant_id,
            exportacion_id,
            f"El periodo tiene {total} asientos; el PDF admite hasta {MAX_ASIENTOS_PDF}. "
            "Pida un periodo más corto o el formato CSV.",
        )
        return

    partes: list[str] = [libro.csv_cabecera(zona)]
    leidos: list[AsientoRead] = []
    hechos = 0
    clave: tuple[int, int] | None = None
    while True:
        async with tenant_transaction(db, tenant_id) as session:
            lote = await _leer_lote(
                session,
                tenant_id=tenant_id,
                tipo=job["tipo"],
                desde=desde,
                hasta=hasta,
                despues_de=clave,
            )
        if not lote:
            break
        if formato is Formato.CSV:
            partes.append(libro.csv_filas(lote, zona))
        else:
            leidos.extend(lote)
        hechos += len(lote)
        clave = (lote[-1].anio, lote[-1].secuencia)
        await _set(db, tenant_id, exportacion_id, hechos=hechos, total=max(total, hechos))
        if len(lote) < LOTE:
            break

    if formato is Formato.CSV:
        resultado = "".join(partes).encode("utf-8")
    else:
        # CPU-bound: rendered in a thread so the service keeps answering meanwhile.
        resultado = await asyncio.to_thread(
            libro.render_libro,
            leidos,
            entidad=entidad,
            tipo=TipoAsiento(job["tipo"]),
            desde=job["desde"],
            hasta=job["hasta"],
            generado_en=inicio,
        )
    if len(resultado) > MAX_RESULTADO_BYTES:
        await _fallida(
            db,
            tenant_id,
            exportacion_id,
            f"El fichero pasaría de {MAX_RESULTADO_BYTES} bytes; pida un periodo más corto.",
        )
        return
    await _set(
        db,
        tenant_id,
        exportacion_id,
        estado=EstadoExportacion.TERMINADA.value,
        hechos=hechos,
        total=hechos,
        resultado=resultado,
        tamano=len(resultado),
        terminado_en=datetime.now(UTC),
    )
