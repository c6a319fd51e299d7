"""Use cases of an asiento's time-stamp: ask the sellado's TSA, record its reply, retry."""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bus.consumer import PermanentFailure
from services.common.bus.envelope import ReceivedEvent
from services.common.errors import Conflict, NotFound
from services.common.uow import UnitOfWork
from services.registro.asientos import service as asientos_service
from services.registro.asientos.models import asientos
from services.registro.asientos.schemas import AsientoRead
from services.registro.domain import uuid_or_none
from services.registro.sellos_tiempo.domain import (
    ALGORITMO,
    EstadoSello,
    TokenIlegible,
    datos_canonicos,
    leer_token,
    solicitud_id,
)
from services.registro.sellos_tiempo.models import sellos_tiempo
from services.registro.sellos_tiempo.schemas import SelloTiempoRead
from services.registro.service import primera_solicitud

__all__ = [
    "SELLO_EMITIDO",
    "SELLO_RECHAZADO",
    "SOLICITANTE",
    "SOLICITAR_SELLO",
    "consultar_sello",
    "registrar_respuesta_sello",
    "solicitar_sello",
    "reintentar_sello",
    "datos_sellados",
    "token_de",
]

SOLICITAR_SELLO = "sellado.sellotiempo.solicitar.v1"
SELLO_EMITIDO = "sellado.sellotiempo.emitido.v1"
SELLO_RECHAZADO = "sellado.sellotiempo.rechazado.v1"
SOLICITANTE = "registro"

_log = logging.getLogger("consistorio.registro.sello_tiempo")


def _read(row: dict[str, Any]) -> SelloTiempoRead:
    token = row.get("token")
    return SelloTiempoRead.model_validate(
        {
            **{k: v for k, v in row.items() if k not in ("datos", "token")},
            "token": base64.b64encode(token).decode("ascii") if token is not None else None,
        }
    )


def _audit(uow: UnitOfWork, action: str, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """Audits a change of a time-stamp's state (the token itself is not copied there)."""

    def shown(row: dict[str, Any]) -> dict[str, Any]:
        return _read(row).model_dump(mode="json", exclude={"token"})

    uow.audit(
        action=action,
        entity="sello_tiempo",
        entity_id=str(new["asiento_id"]),
        old=shown(old) if old is not None else None,
        new=shown(new),
    )


def _solicitar(uow: UnitOfWork, *, asiento: AsientoRead, huella: str, intento: int) -> str:
    """Sends the time-stamp command for an asiento's kept bytes; answers the request id."""
    solicitud = solicitud_id(asiento.id, intento)
    uow.emit(
        SOLICITAR_SELLO,
        {
            "solicitud_id": solicitud,
            "solicitante": SOLICITANTE,
            "algoritmo": ALGORITMO,
            "huella": huella,
            "referencia": {"tipo": "asiento", "id": asiento.id, "numero": asiento.numero},
        },
        subject=asiento.numero,
    )
    return solicitud


async def _row(
    session: AsyncSession, *, asiento_id: str, for_update: bool = False
) -> dict[str, Any] | None:
    query = select(sellos_tiempo).where(sellos_tiempo.c.asiento_id == asiento_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return dict(row._mapping) if row else None


async def _primera_solicitud(uow: UnitOfWork, *, asiento: AsientoRead) -> dict[str, Any]:
    """Keeps the asiento's canonical bytes, pending, and asks for their first time-stamp."""
    datos = datos_canonicos(asiento)
    huella = hashlib.sha256(datos).hexdigest()
    return primera_solicitud(
        uow,
        sellos_tiempo,
        asiento_id=asiento.id,
        solicitud_id=_solicitar(uow, asiento=asiento, huella=huella, intento=1),
        algoritmo=ALGORITMO,
        datos=datos,
        huella=huella,
    )


async def solicitar_sello(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """A registered asiento gets its time-stamp: keep its bytes, ask the sellado for a token.

    Idempotent: an asiento that already has its row (a second delivery) is skipped.
    """
    asiento_id = str(event.data["asiento_id"])
    try:
        asiento = await asientos_service.consultar_asiento(
            uow.session, tenant_id=uow.tenant_id, asiento_id=asiento_id
        )
    except NotFound as exc:
        raise PermanentFailure(f"el asiento {asiento_id} no existe en el registro") from exc
    if await _row(uow.session, asiento_id=asiento.id) is not None:
        _log.info("time-stamp of asiento %s already requested; skipped", asiento.numero)
        return
    row = await _primera_solicitud(uow, asiento=asiento)
    _audit(uow, "solicitar-sello-tiempo", None, row)


async def _pending_row(uow: UnitOfWork, solicitud: str) -> tuple[dict[str, Any], datetime] | None:
    """The pending row a reply answers, locked, with its asiento's register date-time."""
    found = (
        await uow.session.execute(
            select(sellos_tiempo, asientos.c.fecha_registro)
            .join(asientos, asientos.c.id == sellos_tiempo.c.asiento_id)
            .where(sellos_tiempo.c.solicitud_id == solicitud)
            .with_for_update(of=sellos_tiempo)
        )
    ).first()
    if found is None:
        return None
    row = dict(found._mapping)
    fecha_registro: datetime = row.pop("fecha_registro")
    if row["estado"] != EstadoSello.PENDIENTE.value:
        return None
    return row, fecha_registro


async def registrar_respuesta_sello(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """The sellado's answer to a time-stamp request: keep the token, or say why there is none.

    Replies to another requester, to a request this register did not make (or not
    in this tenant: RLS hides other tenants' rows), already settled or superseded
    by a retry are skipped.
    """
    data = event.data
    solicitud = uuid_or_none(data.get("solicitud_id"))
    if solicitud is None or data.get("solicitante", SOLICITANTE) != SOLICITANTE:
        return
    pending = await _pending_row(uow, solicitud)
    if pending is None:
        _log.info("time-stamp reply %s answers no pending request; skipped", solicitud)
        return
    row, fecha_registro = pending
    now = datetime.now(UTC)
    changes: dict[str, Any]
    if str(event.name) == SELLO_EMITIDO:
        try:
            token = base64.b64decode(str(data["token"]), validate=True)
            gen_time, serial, politica = leer_token(token, huella=row["huella"])
        except (ValueError, TokenIlegible) as exc:
            # Evidence that does not prove our bytes is no evidence: fail, so staff may retry.
            _log.warning("time-stamp reply %s refused: %s", solicitud, exc)
            changes = {
                "estado": EstadoSello.FALLIDO.value,
                "motivo": f"El sello de tiempo recibido no es válido: {exc}",
                "codigo": "token-no-valido",
                "actualizado_en": now,
            }
        else:
            desfase = gen_time - fecha_registro
            changes = {
                "estado": EstadoSello.SELLADO.value,
                "token": token,
                "gen_time": gen_time,
                "serial": serial,
                "politica": politica,
                "desfase_ms": round(desfase.total_seconds() * 1000),
                "motivo": None,
                "codigo": None,
                "actualizado_en": now,
            }
    else:
        changes = {
            "estado": EstadoSello.FALLIDO.value,
            "motivo": str(data["motivo"]),
            "codigo": str(data["codigo"]),
            "actualizado_en": now,
        }
    uow.defer(
        update(sellos_tiempo)
        .where(sellos_tiempo.c.asiento_id == row["asiento_id"])
        .values(**changes)
    )
    action = "sellar-tiempo" if changes["estado"] == EstadoSello.SELLADO else "fallar-sello-tiempo"
    _audit(uow, action, row, {**row, **changes})


async def consultar_sello(
    session: AsyncSession, *, tenant_id: str, asiento_id: str
) -> SelloTiempoRead | None:
    """Where an asiento's time-stamp stands; None while it has not been asked for yet.

    Another tenant's asiento (or a malformed id) is a 404, as for the asiento itself.
    """
    await asientos_service.consultar_asiento(session, tenant_id=tenant_id, asiento_id=asiento_id)
    row = await _row(session, asiento_id=asiento_id)
    return _read(row) if row is not None else None


async def datos_sellados(
    session: AsyncSession, *, tenant_id: str, asiento_id: str
) -> tuple[AsientoRead, bytes | None, bytes | None]:
    """The asiento, the exact bytes kept for its stamp and its DER token (None when absent)."""
    asiento = await asientos_service.consultar_asiento(
        session, tenant_id=tenant_id, asiento_id=asiento_id
    )
    row = await _row(session, asiento_id=asiento_id)
    if row is None:
        return asiento, None, None
    return asiento, bytes(row["datos"]), bytes(row["token"]) if row["token"] else None


async def token_de(session: AsyncSession, *, asiento_id: str) -> bytes | None:
    """The DER time-stamp token of an asiento once sealed, else None (for the SICRES export).

    ``session`` is bound to the tenant (``tenant_transaction``): row-level security
    hides other tenants' rows, so another tenant's asiento has no token here.
    """
    if uuid_or_none(asiento_id) is None:
        return None
    token = (
        await session.execute(
            select(sellos_tiempo.c.token).where(
                sellos_tiempo.c.asiento_id == asiento_id,
                sellos_tiempo.c.estado == EstadoSello.SELLADO.value,
            )
        )
    ).scalar_one_or_none()
    return bytes(token) if token is not None else None


async def reintentar_sello(
    uow: UnitOfWork, *, asiento_id: str, stalled_before: datetime | None = None
) -> SelloTiempoRead:
    """Asks again for a time-stamp that failed or stalled, over the same kept bytes.

    An asiento with no request at all (registered before time-stamps existed) gets
    its first one here; a sealed one is a 409, and so is a pending one unless it
    was asked for before ``stalled_before`` (its answer is not coming).
    """
    asiento = await asientos_service.consultar_asiento(
        uow.session, tenant_id=uow.tenant_id, asiento_id=asiento_id
    )
    row = await _row(uow.session, asiento_id=asiento.id, for_update=True)
    if row is None:
        nuevo = await _primera_solicitud(uow, asiento=asiento)
        _audit(uow, "solicitar-sello-tiempo", None, nuevo)
        return _read(nuevo)
    if row["estado"] == EstadoSello.PENDIENTE.value and (
        stalled_before is None or row["solicitado_en"] >= stalled_before
    ):
        raise Conflict(f"El sello de tiempo del asiento {asiento.numero} ya se está pidiendo.")
    if row["estado"] == EstadoSello.SELLADO.value:
        raise Conflict(f"El asiento {asiento.numero} ya tiene su sello de tiempo.")
    intento = int(row["intento"]) + 1
    now = datetime.now(UTC)
    changes: dict[str, Any] = {
        "estado": EstadoSello.PENDIENTE.value,
        "intento": intento,
        "solicitud_id": _solicitar(uow, asiento=asiento, huella=row["huella"], intento=intento),
        "solicitado_en": now,
        "motivo": None,
        "codigo": None,
        "actualizado_en": now,
    }
    uow.defer(
        update(sellos_tiempo).where(sellos_tiempo.c.asiento_id == asiento.id).values(**changes)
    )
    new = {**row, **changes}
    _audit(uow, "reintentar-sello-tiempo", row, new)
    return _read(new)
