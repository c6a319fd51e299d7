"""Use cases of justificantes: ask the repositorio to issue one, record its answer, retry.

Rendering a justificante is CPU work: the use cases that render take the process's
document workers (``documents``, a :class:`~services.common.cpu.CpuPool` of child
processes) and render there, so the event loop keeps serving requests and the cheap
consumers meanwhile. Without a pool (a test calling a use case alone) it renders in
a thread.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bus.consumer import PermanentFailure
from services.common.bus.envelope import ReceivedEvent
from services.common.cpu import CpuPool
from services.common.errors import Conflict, NotFound
from services.common.tenants import Tenant, tenants_table
from services.common.uow import UnitOfWork
from services.registro.asientos.schemas import AsientoRead
from services.registro.asientos.service import consultar_asiento
from services.registro.domain import uuid_or_none
from services.registro.justificantes import domain as justificante
from services.registro.justificantes.domain import EstadoJustificante
from services.registro.justificantes.models import justificantes
from services.registro.justificantes.pdf import render_justificante
from services.registro.justificantes.schemas import JustificanteRead, JustificantesEnCola
from services.registro.service import primera_solicitud

EMITIR_DOCUMENTO = "repositorio.documento.emitir.v1"


DOCUMENTO_EMITIDO = "repositorio.documento.emitido.v1"


EMISION_FALLIDA = "repositorio.emision.fallida.v1"

_log = logging.getLogger("consistorio.registro")


async def _entidad(session: AsyncSession, tenant_id: str) -> Tenant | None:
    """The entity as the tenant registry knows it (its name and DIR3 go on the receipt)."""
    row = (
        await session.execute(select(tenants_table).where(tenants_table.c.ine_code == tenant_id))
    ).first()
    return Tenant(row.ine_code, row.nombre, row.dir3, row.activo) if row else None


async def _justificante_row(
    session: AsyncSession, *, asiento_id: str, for_update: bool = False
) -> dict[str, Any] | None:
    query = select(justificantes).where(justificantes.c.asiento_id == asiento_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return dict(row._mapping) if row else None


async def _render(documents: CpuPool | None, asiento: AsientoRead, entidad: Tenant) -> bytes:
    """The justificante's PDF, rendered by a document worker (tens of ms of CPU)."""
    if documents is None:
        return await asyncio.to_thread(render_justificante, asiento, entidad)
    return await documents.run(entidad.ine_code, render_justificante, asiento, entidad)


async def _solicitar_emision(
    uow: UnitOfWork,
    *,
    asiento: AsientoRead,
    entidad: Tenant,
    intento: int,
    documents: CpuPool | None,
) -> str:
    """Renders the justificante and asks the repositorio to issue it; answers the request id."""
    pdf = await _render(documents, asiento, entidad)
    solicitud = justificante.solicitud_id(asiento.id, intento)
    uow.emit(
        EMITIR_DOCUMENTO,
        {
            "solicitud_id": solicitud,
            "solicitante": justificante.SOLICITANTE,
            "nombre_fichero": justificante.nombre_fichero(asiento.numero),
            "pdf": base64.b64encode(pdf).decode("ascii"),
            "metadatos": {
                "organo": entidad.dir3,
                "origen": justificante.ORIGEN,
                "estado_elaboracion": justificante.ESTADO_ELABORACION,
                "tipo_documental": justificante.TIPO_DOCUMENTAL,
            },
            "referencia": {"tipo": "asiento", "id": asiento.id, "numero": asiento.numero},
        },
        subject=asiento.numero,
    )
    return solicitud


def _audit_justificante(
    uow: UnitOfWork, action: str, row: dict[str, Any], changes: dict[str, Any]
) -> JustificanteRead:
    """Audits a change of a justificante's state; answers the state after it."""
    old = JustificanteRead.model_validate(row)
    new = JustificanteRead.model_validate({**row, **changes})
    uow.audit(
        action=action,
        entity="justificante",
        entity_id=str(row["asiento_id"]),
        old=old.model_dump(mode="json"),
        new=new.model_dump(mode="json"),
    )
    return new


async def solicitar_justificante(
    uow: UnitOfWork, event: ReceivedEvent, *, documents: CpuPool | None = None
) -> None:
    """A registered asiento gets its justificante: render it, ask the repositorio to issue it.

    The pending row and the command commit together, so an answer from the
    repositorio always finds the row it refers to.
    """
    asiento_id = str(event.data["asiento_id"])
    try:
        asiento = await consultar_asiento(
            uow.session, tenant_id=uow.tenant_id, asiento_id=asiento_id
        )
    except NotFound as exc:
        raise PermanentFailure(f"el asiento {asiento_id} no existe en el registro") from exc
    if await _justificante_row(uow.session, asiento_id=asiento.id) is not None:
        _log.info("justificante of asiento %s already requested; skipped", asiento.numero)
        return
    entidad = await _entidad(uow.session, uow.tenant_id)
    if entidad is None:
        raise PermanentFailure(f"la entidad {uow.tenant_id} no está en el registro de entidades")
    await _primera_solicitud(uow, asiento=asiento, entidad=entidad, documents=documents)


async def _primera_solicitud(
    uow: UnitOfWork, *, asiento: AsientoRead, entidad: Tenant, documents: CpuPool | None
) -> JustificanteRead:
    """The first request for an asiento's justificante, and its pending row."""
    solicitud = await _solicitar_emision(
        uow, asiento=asiento, entidad=entidad, intento=1, documents=documents
    )
    row = primera_solicitud(uow, justificantes, asiento_id=asiento.id, solicitud_id=solicitud)
    return JustificanteRead.model_validate(row)


async def registrar_justificante_emitido(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """The repositorio issued a document: if it is the justificante we asked for, record it."""
    data = event.data
    referencia = data.get("referencia") or {}
    asiento_id = uuid_or_none(referencia.get("id"))
    solicitud = uuid_or_none(data.get("solicitud_id"))
    if referencia.get("tipo") != "asiento" or asiento_id is None or solicitud is None:
        return
    if data.get("solicitante", justificante.SOLICITANTE) != justificante.SOLICITANTE:
        return
    row = (
        await uow.session.execute(
            select(justificantes)
            .where(
                justificantes.c.asiento_id == asiento_id,
                justificantes.c.solicitud_id == solicitud,
            )
            .with_for_update()
        )
    ).first()
    if row is None:
        # A document about an asiento that is not this register's request: not ours.
        _log.info(
            "documento %s refers to asiento %s: no such request",
            data["documento_id"],
            referencia.get("id"),
        )
        return
    if row.estado == EstadoJustificante.EMITIDO.value:
        return
    now = datetime.now(UTC)
    changes: dict[str, Any] = {
        "estado": EstadoJustificante.EMITIDO.value,
        "documento_id": str(data["documento_id"]),
        "version": int(data["version"]),
        "csv": str(data["csv"]),
        "url_verificacion": str(data["url_verificacion"]),
        "emitido_en": datetime.fromisoformat(str(data["emitido_en"])),
        "motivo": None,
        "codigo": None,
        "actualizado_en": now,
    }
    uow.defer(
        update(justificantes).where(justificantes.c.asiento_id == row.asiento_id).values(**changes)
    )
    _audit_justificante(uow, "emitir-justificante", dict(row._mapping), changes)


async def registrar_emision_fallida(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """The repositorio could not issue a document: if it was our justificante, say why."""
    data = event.data
    solicitud = uuid_or_none(data.get("solicitud_id"))
    if solicitud is None:
        return
    if data.get("solicitante", justificante.SOLICITANTE) != justificante.SOLICITANTE:
        return
    row = (
        await uow.session.execute(
            select(justificantes).where(justificantes.c.solicitud_id == solicitud).with_for_update()
        )
    ).first()
    if row is None or row.estado != EstadoJustificante.PENDIENTE.value:
        return
    changes: dict[str, Any] = {
        "estado": EstadoJustificante.FALLIDO.value,
        "motivo": str(data["motivo"]),
        "codigo": str(data["codigo"]),
        "actualizado_en": datetime.now(UTC),
    }
    uow.defer(
        update(justificantes).where(justificantes.c.asiento_id == row.asiento_id).values(**changes)
    )
    _audit_justificante(uow, "fallar-justificante", dict(row._mapping), changes)


async def consultar_justificante(
    session: AsyncSession, *, tenant_id: str, asiento_id: str, registrado_por: str | None = None
) -> JustificanteRead | None:
    """Where an asiento's justificante stands; None while it has not been asked for yet.

    Another tenant's asiento (or a malformed id) is a 404, as for the asiento itself.
    """
    await consultar_asiento(
        session, tenant_id=tenant_id, asiento_id=asiento_id, registrado_por=registrado_por
    )
    row = await _justificante_row(session, asiento_id=asiento_id)
    return JustificanteRead.model_validate(row) if row else None


async def consultar_cola(session: AsyncSession, *, tenant_id: str) -> JustificantesEnCola:
    """How many of the entity's justificantes wait for the issuing chain, and since when."""
    pendientes, mas_antiguo = (
        await session.execute(
            select(func.count(), func.min(justificantes.c.solicitado_en)).where(
                justificantes.c.tenant_id == tenant_id,
                justificantes.c.estado == EstadoJustificante.PENDIENTE.value,
            )
        )
    ).one()
    fallidos = (
        await session.execute(
            select(func.count()).where(
                justificantes.c.tenant_id == tenant_id,
                justificantes.c.estado == EstadoJustificante.FALLIDO.value,
            )
        )
    ).scalar_one()
    edad = (datetime.now(UTC) - mas_antiguo).total_seconds() if mas_antiguo else 0.0
    return JustificantesEnCola(
        pendientes=pendientes,
        fallidos=fallidos,
        mas_antiguo=mas_antiguo,
        antiguedad_segundos=max(edad, 0.0),
    )


async def reintentar_justificante(
    uow: UnitOfWork,
    *,
    asiento_id: str,
    stalled_before: datetime | None = None,
    documents: CpuPool | None = None,
) -> JustificanteRead:
    """Asks again for a justificante whose issuing failed or stalled, as a new request.

    An asiento with no request at all (registered before justificantes existed)
    gets its first one here. A pending request asked for before ``stalled_before``
    has stalled (its answer is not coming) and may be asked for again too.
    """
    asiento = await consultar_asiento(uow.session, tenant_id=uow.tenant_id, asiento_id=asiento_id)
    row = await _justificante_row(uow.session, asiento_id=asiento.id, for_update=True)
    if (
        row is not None
        and row["estado"] == EstadoJustificante.PENDIENTE.value
        and (stalled_before is None or row["solicitado_en"] >= stalled_before)
    ):
        raise Conflict(f"El justificante del asiento {asiento.numero} ya se está emitiendo.")
    if row is not None and row["estado"] == EstadoJustificante.EMITIDO.value:
        raise Conflict(f"El justificante del asiento {asiento.numero} ya está emitido.")
    entidad = await _entidad(uow.session, uow.tenant_id)
    if entidad is None:
        raise Conflict(f"La entidad {uow.tenant_id} no está en el registro de entidades.")
    if row is None:
        nuevo = await _primera_solicitud(uow, asiento=asiento, entidad=entidad, documents=documents)
        uow.audit(
            action="solicitar-justificante",
            entity="justificante",
            entity_id=asiento.id,
            new=nuevo.model_dump(mode="json"),
        )
        return nuevo
    intento = int(row["intento"]) + 1
    solicitud = await _solicitar_emision(
        uow, asiento=asiento, entidad=entidad, intento=intento, documents=documents
    )
    now = datetime.now(UTC)
    changes: dict[str, Any] = {
        "estado": EstadoJustificante.PENDIENTE.value,
        "intento": intento,
        "solicitud_id": solicitud,
        "solicitado_en": now,
        "motivo": None,
        "codigo": None,
        "actualizado_en": now,
    }
    uow.defer(
        update(justificantes).where(justificantes.c.asiento_id == asiento.id).values(**changes)
    )
    return _audit_justificante(uow, "reintentar-justificante", row, changes)
