"""Use cases of the csv service: reserve, activate and annul codes, and look one up in public.

A code's life follows an emisión of the repositorio::

    csv.codigo.reservar.v1            reservado   (reply csv.codigo.reservado.v1)
    repositorio.documento.emitido.v1  activo      (its public facts stored with it)
    repositorio.emision.fallida.v1    anulado     (nothing was issued with it)

Each step runs in the consumer's unit of work, after the kernel's inbox has
made sure the same event is applied once; the reservation is also keyed by the
requester's solicitud, so a command sent twice still gets one code.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.bus.consumer import PermanentFailure
from services.common.db import Database
from services.common.uow import UnitOfWork
from services.csv import domain
from services.csv.models import VERIFICAR_FN, codigos
from services.csv.schemas import Metadatos

__all__ = [
    "CODIGO_RESERVADO",
    "DOCUMENTO_EMITIDO",
    "EMISION_FALLIDA",
    "RESERVAR_CODIGO",
    "CodigoActivo",
    "Estado",
    "activar_codigo",
    "anular_codigo",
    "consultar",
    "reservar_codigo",
]

RESERVAR_CODIGO = "csv.codigo.reservar.v1"
CODIGO_RESERVADO = "csv.codigo.reservado.v1"
DOCUMENTO_EMITIDO = "repositorio.documento.emitido.v1"
EMISION_FALLIDA = "repositorio.emision.fallida.v1"

# A fresh 120-bit code colliding even once is astronomically unlikely; failing
# this many times in a row means the random source is broken, not unlucky.
_INTENTOS = 5

_log = logging.getLogger("consistorio.csv")


class Estado:
    """The states of a code (the column ``estado``)."""

    RESERVADO = "reservado"
    ACTIVO = "activo"
    ANULADO = "anulado"


@dataclass(frozen=True)
class CodigoActivo:
    """What public verification learns of an active code."""

    csv: str
    metadatos: Metadatos
    activado_at: datetime


async def reservar_codigo(
    uow: UnitOfWork,
    *,
    solicitud_id: str,
    solicitante: str,
    documento_id: str,
    base_url: str,
    generar: Callable[[], str] = domain.generar_codigo,
) -> str:
    """Reserves a fresh code for the tenant's solicitud and replies with it, in ``uow``.

    A solicitud that already has a code gets the same one again. A new code is
    inserted at once (not deferred) so that a collision, with any tenant's code,
    is seen here and answered with another draw.
    """
    # Canonical UUID text, so that comparisons with stored ids are exact.
    solicitud_id, documento_id = _uuid(solicitud_id), _uuid(documento_id)
    codigo = await _codigo_de_solicitud(uow, solicitante, solicitud_id, documento_id)
    if codigo is None:
        codigo = await _insertar_nuevo(uow, solicitud_id, solicitante, documento_id, generar)
    uow.emit(
        CODIGO_RESERVADO,
        {
            "solicitud_id": solicitud_id,
            "solicitante": solicitante,
            "documento_id": documento_id,
            "csv": codigo,
            "url_verificacion": domain.url_verificacion(base_url, codigo),
        },
        subject=documento_id,
    )
    return codigo


def _uuid(value: str) -> str:
    return str(uuid.UUID(value))


async def _codigo_de_solicitud(
    uow: UnitOfWork, solicitante: str, solicitud_id: str, documento_id: str
) -> str | None:
    """The code already reserved for this solicitud, if any (for the same documento)."""
    row = (
        await uow.session.execute(
            select(codigos.c.csv, codigos.c.documento_id).where(
                codigos.c.tenant_id == uow.tenant_id,
                codigos.c.solicitante == solicitante,
                codigos.c.solicitud_id == solicitud_id,
            )
        )
    ).first()
    if row is None:
        return None
    if row.documento_id != documento_id:
        raise PermanentFailure(
            f"la solicitud {solicitud_id} de {solicitante} ya tiene el código {row.csv} "
            f"para el documento {row.documento_id}, no para {documento_id}"
        )
    return str(row.csv)


async def _insertar_nuevo(
    uow: UnitOfWork,
    solicitud_id: str,
    solicitante: str,
    documento_id: str,
    generar: Callable[[], str],
) -> str:
    for _ in range(_INTENTOS):
        codigo = generar()
        inserted = await uow.session.execute(
            pg_insert(codigos)
            .values(
                csv=codigo,
                tenant_id=uow.tenant_id,
                estado=Estado.RESERVADO,
                documento_id=documento_id,
                solicitud_id=solicitud_id,
                solicitante=solicitante,
            )
            .on_conflict_do_nothing()
            .returning(codigos.c.csv)
        )
        if inserted.first() is not None:
            uow.audit(
                action="reservar",
                entity="codigo",
                entity_id=codigo,
                new={
                    "estado": Estado.RESERVADO,
                    "documento_id": documento_id,
                    "solicitud_id": solicitud_id,
                    "solicitante": solicitante,
                },
            )
            return codigo
        # Either the same solicitud won a race (its code is the answer) or the draw collided.
        ganador = await _codigo_de_solicitud(uow, solicitante, solicitud_id, documento_id)
        if ganador is not None:
            return ganador
        _log.warning("CSV collision on reservation for solicitud %s; drawing again", solicitud_id)
    raise RuntimeError(f"{_INTENTOS} códigos seguidos ya existían: la fuente aleatoria falla")


async def activar_codigo(uow: UnitOfWork, datos: dict[str, Any], *, entidad: str) -> None:
    """The document reserved with this code was issued: the code verifies from now on.

    ``datos`` is a ``repositorio.documento.emitido.v1`` payload. An emitido for a
    code this tenant never reserved for that documento, or already annulled,
    cannot be made right here: it is dead-lettered for an operator to look at.
    """
    try:
        codigo = domain.normalizar(str(datos["csv"]))
    except domain.CodigoMalFormado as exc:
        raise PermanentFailure(f"código {datos['csv']!r} no válido: {exc.motivo}") from exc
    metadatos = Metadatos(
        entidad=entidad,
        nombre_fichero=datos["nombre_fichero"],
        identificador=datos["identificador"],
        tipo_documental=datos["tipo_documental"],
        organo=datos["organo"],
        emitido_en=datos["emitido_en"],
        firmante=datos["firmante"],
        sello_tiempo=datos["sello_tiempo"],
        sha256=datos["sha256"],
        tamano=datos["tamano"],
    )
    ahora = datetime.now(UTC)
    activated = await uow.session.execute(
        update(codigos)
        .where(
            codigos.c.tenant_id == uow.tenant_id,
            codigos.c.csv == codigo,
            codigos.c.estado == Estado.RESERVADO,
            codigos.c.documento_id == datos["documento_id"],
        )
        .values(
            estado=Estado.ACTIVO,
            version=int(datos["version"]),
            metadatos=metadatos.model_dump(mode="json"),
            activado_at=ahora,
        )
        .returning(codigos.c.csv)
    )
    if activated.first() is None:
        await _explain_activation_refused(uow, codigo, _uuid(str(datos["documento_id"])))
        return
    uow.audit(
        action="activar",
        entity="codigo",
        entity_id=codigo,
        old={"estado": Estado.RESERVADO},
        new={
            "estado": Estado.ACTIVO,
            "documento_id": datos["documento_id"],
            "version": datos["version"],
            "sha256": metadatos.sha256,
        },
    )


async def _explain_activation_refused(uow: UnitOfWork, codigo: str, documento_id: str) -> None:
    row = (
        await uow.session.execute(
            select(codigos.c.estado, codigos.c.documento_id).where(
                codigos.c.tenant_id == uow.tenant_id, codigos.c.csv == codigo
            )
        )
    ).first()
    if row is None:
        raise PermanentFailure(f"el código {codigo} no está reservado en la entidad")
    if row.documento_id != documento_id:
        raise PermanentFailure(
            f"el código {codigo} se reservó para el documento {row.documento_id}, "
            f"no para {documento_id}"
        )
    if row.estado == Estado.ANULADO:
        raise PermanentFailure(f"el código {codigo} está anulado y no puede activarse")
    _log.info("code %s already active; emitido skipped", codigo)


async def anular_codigo(uow: UnitOfWork, datos: dict[str, Any]) -> None:
    """The emisión failed: its reserved code is annulled, never to verify or be reused.

    ``datos`` is a ``repositorio.emision.fallida.v1`` payload; without a code, or
    with one that is not reserved here (already annulled, or active, whose
    document is out there and keeps verifying), nothing changes.
    """
    raw = datos.get("csv")
    if not raw:
        return
    try:
        codigo = domain.normalizar(str(raw))
    except domain.CodigoMalFormado:
        _log.warning("emision.fallida names a malformed code %r; nothing to annul", raw)
        return
    annulled = await uow.session.execute(
        update(codigos)
        .where(
            codigos.c.tenant_id == uow.tenant_id,
            codigos.c.csv == codigo,
            codigos.c.estado == Estado.RESERVADO,
        )
        .values(estado=Estado.ANULADO, anulado_at=datetime.now(UTC))
        .returning(codigos.c.csv)
    )
    if annulled.first() is None:
        _log.warning("emision.fallida for code %s, which is not reserved; unchanged", codigo)
        return
    uow.audit(
        action="anular",
        entity="codigo",
        entity_id=codigo,
        old={"estado": Estado.RESERVADO},
        new={
            "estado": Estado.ANULADO,
            "codigo": datos.get("codigo"),
            "motivo": str(datos.get("motivo", ""))[:1000],
        },
    )


async def consultar(db: Database, codigo: str) -> CodigoActivo | None:
    """The active code ``codigo`` (canonical form) in whichever tenant, or None.

    Runs without a tenant: the SECURITY DEFINER function is the only thing that
    looks across tenants, and it answers only an active code's public fields.
    A hit and a miss run this very same statement.
    """
    async with db.sessions() as session, session.begin():
        row = (
            await session.execute(
                text(f"SELECT csv, metadatos, activado_at FROM {VERIFICAR_FN}(:code)"),
                {"code": codigo},
            )
        ).first()
    if row is None:
        return None
    return CodigoActivo(
        csv=row.csv,
        metadatos=Metadatos.model_validate(row.metadatos),
        activado_at=row.activado_at,
    )
