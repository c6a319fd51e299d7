"""The time-stamp of every asiento: the register date-time made evidence (Ley 39/2015, art. 16).

The server takes the register date-time when it records an asiento; this module
has it time-stamped by the sellado's TSA (RFC 3161). For each
``registro.asiento.registrado.v1`` it builds the asiento's canonical bytes (its
canonical JSON as recorded), keeps them verbatim with their SHA-256 in
``sellos_tiempo`` (``pendiente``) and sends ``sellado.sellotiempo.solicitar.v1``
in the same transaction. The sellado's reply settles the row: ``sellado`` with
the token, its genTime, serial and policy and the delay since the register
date-time, or ``fallido`` with why; a failed one may be asked for again.

The stamped bytes are kept rather than rebuilt on demand: the asiento's schema
grows (new SICRES fields), and a rebuilt JSON would no longer be what the token
proves. Anyone can check the evidence with the bytes, the token and the TSA's
root alone (``openssl ts -verify -data datos.json -in token.tst -token_in``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from asn1crypto import cms
from pydantic import BaseModel, Field
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bus.consumer import PermanentFailure
from services.common.bus.envelope import ReceivedEvent
from services.common.errors import Conflict, NotFound
from services.common.uow import UnitOfWork
from services.registro import service
from services.registro.models import asientos, metadata
from services.registro.schemas import AsientoRead

__all__ = [
    "ALGORITMO",
    "SELLO_EMITIDO",
    "SELLO_RECHAZADO",
    "SOLICITANTE",
    "SOLICITAR_SELLO",
    "EstadoSello",
    "SelloTiempoRead",
    "TokenIlegible",
    "datos_canonicos",
    "get_sello",
    "leer_token",
    "record_reply",
    "request_sello",
    "retry_sello",
    "sellos_tiempo",
    "solicitud_id",
    "stamped_bytes",
    "token_de",
]

SOLICITAR_SELLO = "sellado.sellotiempo.solicitar.v1"
SELLO_EMITIDO = "sellado.sellotiempo.emitido.v1"
SELLO_RECHAZADO = "sellado.sellotiempo.rechazado.v1"
SOLICITANTE = "registro"
ALGORITMO = "sha256"

_log = logging.getLogger("consistorio.registro.sello_tiempo")

# Fixed, so the consumer and a retry racing for the same attempt send the same id.
_SOLICITUDES = uuid.uuid5(uuid.NAMESPACE_URL, "https://consistorio.es/registro/sellos-tiempo")
# What an asiento's later life adds, which the register date-time's evidence is not about.
_NO_SELLADO = frozenset({"estado", "anulacion"})


class EstadoSello(StrEnum):
    """Where the time-stamp of an asiento stands."""

    PENDIENTE = "pendiente"  # asked of the sellado, no answer yet
    SELLADO = "sellado"  # the token is kept
    FALLIDO = "fallido"  # the sellado gave no token; it may be asked for again


# One row per asiento (the asiento itself stays insert-only). The app role may not
# UPDATE datos, huella or algoritmo (migration 0008): what was stamped stays.
sellos_tiempo = Table(
    "sellos_tiempo",
    metadata,
    Column("asiento_id", UUID(as_uuid=False), ForeignKey(asientos.c.id), primary_key=True),
    Column("tenant_id", String(5), nullable=False),
    Column("estado", String(10), nullable=False),
    Column("intento", Integer, nullable=False),
    Column("solicitud_id", UUID(as_uuid=False), nullable=False, unique=True),
    Column("solicitado_en", DateTime(timezone=True), nullable=False),
    Column("algoritmo", String(10), nullable=False),
    Column("datos", LargeBinary, nullable=False),
    Column("huella", String(64), nullable=False),
    Column("token", LargeBinary),
    Column("gen_time", DateTime(timezone=True)),
    Column("serial", String(49)),
    Column("politica", String(200)),
    Column("desfase_ms", BigInteger),
    Column("motivo", Text),
    Column("codigo", String(100)),
    Column("actualizado_en", DateTime(timezone=True), nullable=False),
    CheckConstraint(
        "estado IN ('pendiente', 'sellado', 'fallido')", name="ck_sellos_tiempo_estado"
    ),
)


class SelloTiempoRead(BaseModel):
    """The time-stamp of an asiento as the API shows it."""

    asiento_id: str
    estado: EstadoSello
    intento: int | None = None
    algoritmo: str | None = Field(default=None, examples=["sha256"])
    huella: str | None = Field(
        default=None, description="SHA-256 (hexadecimal) de los datos sellados."
    )
    solicitado_en: datetime | None = None
    gen_time: datetime | None = Field(
        default=None, description="Instante del sello (genTime del token, RFC 3161)."
    )
    serial: str | None = Field(default=None, description="Número de serie del token.")
    politica: str | None = Field(default=None, description="OID de la política de la TSA.")
    desfase_ms: int | None = Field(
        default=None,
        description="Milisegundos entre la fecha de registro del asiento y el genTime del sello.",
    )
    token: str | None = Field(
        default=None, description="El TimeStampToken (DER) en base64, como el fichero .tst."
    )
    motivo: str | None = None
    codigo: str | None = None


class TokenIlegible(ValueError):
    """A reply's token is not a TimeStampToken over the hash that was asked for."""


def datos_canonicos(asiento: AsientoRead) -> bytes:
    """The asiento's canonical bytes: its JSON as recorded, sorted keys, no spaces, UTF-8.

    ``estado`` and ``anulacion`` are left out: they tell what happened to the
    asiento afterwards, while the stamp is about what was recorded and when.
    """
    recorded = {
        key: value
        for key, value in asiento.model_dump(mode="json").items()
        if key not in _NO_SELLADO
    }
    return json.dumps(recorded, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def solicitud_id(asiento_id: str, intento: int = 1) -> str:
    """The id of the request for an asiento's time-stamp: the same for the same attempt.

    A retry after a failure (``intento`` 2, 3, ...) gets a new id, so a late
    answer to the failed attempt is told apart from the answer to the new one.
    """
    if intento < 1:
        raise ValueError("el intento empieza en 1")
    return str(uuid.uuid5(_SOLICITUDES, f"{asiento_id}/{intento}"))


def leer_token(token: bytes, *, huella: str) -> tuple[datetime, str, str]:
    """The genTime, serial and policy of a DER TimeStampToken whose imprint is ``huella``.

    The registro keeps a token only if it is about the bytes it keeps: a reply is
    read, not believed. (The signature is the TSA's business and any verifier's;
    the integration tests check it with OpenSSL.)
    """
    try:
        content = cms.ContentInfo.load(token)
        if content["content_type"].native != "signed_data":
            raise TokenIlegible("el token no es un SignedData")
        encapsulated = content["content"]["encap_content_info"]
        if encapsulated["content_type"].native != "tst_info":
            raise TokenIlegible("el token no contiene un TSTInfo")
        tst_info = encapsulated["content"].parsed
        imprint = tst_info["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        hashed = imprint["hashed_message"].native
        gen_time: datetime = tst_info["gen_time"].native
        serial = str(tst_info["serial_number"].native)
        politica = str(tst_info["policy"].dotted)
    except TokenIlegible:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise TokenIlegible(f"el token no se puede leer: {exc}") from exc
    if algorithm != ALGORITMO or hashed.hex() != huella:
        raise TokenIlegible("el token no sella la huella pedida")
    return gen_time, serial, politica


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
    now = datetime.now(UTC)
    row: dict[str, Any] = {
        "asiento_id": asiento.id,
        "tenant_id": uow.tenant_id,
        "estado": EstadoSello.PENDIENTE.value,
        "intento": 1,
        "solicitud_id": _solicitar(uow, asiento=asiento, huella=huella, intento=1),
        "solicitado_en": now,
        "algoritmo": ALGORITMO,
        "datos": datos,
        "huella": huella,
        "actualizado_en": now,
    }
    # Two first requests may race (a redelivery, a staff retry): both carry the same
    # solicitud id, the first row wins, and the sellado's second answer is skipped.
    uow.defer(pg_insert(sellos_tiempo).values(**row).on_conflict_do_nothing())
    return row


async def request_sello(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """A registered asiento gets its time-stamp: keep its bytes, ask the sellado for a token.

    Idempotent: an asiento that already has its row (a second delivery) is skipped.
    """
    asiento_id = str(event.data["asiento_id"])
    try:
        asiento = await service.get_asiento(
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


def _uuid_or_none(value: Any) -> str | None:
    """A uuid from another service's event, or None: a bad id must not fail the query."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


async def record_reply(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """The sellado's answer to a time-stamp request: keep the token, or say why there is none.

    Replies to another requester, to a request this register did not make (or not
    in this tenant: RLS hides other tenants' rows), already settled or superseded
    by a retry are skipped.
    """
    data = event.data
    solicitud = _uuid_or_none(data.get("solicitud_id"))
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


async def get_sello(
    session: AsyncSession, *, tenant_id: str, asiento_id: str
) -> SelloTiempoRead | None:
    """Where an asiento's time-stamp stands; None while it has not been asked for yet.

    Another tenant's asiento (or a malformed id) is a 404, as for the asiento itself.
    """
    await service.get_asiento(session, tenant_id=tenant_id, asiento_id=asiento_id)
    row = await _row(session, asiento_id=asiento_id)
    return _read(row) if row is not None else None


async def stamped_bytes(
    session: AsyncSession, *, tenant_id: str, asiento_id: str
) -> tuple[AsientoRead, bytes | None, bytes | None]:
    """The asiento, the exact bytes kept for its stamp and its DER token (None when absent)."""
    asiento = await service.get_asiento(session, tenant_id=tenant_id, asiento_id=asiento_id)
    row = await _row(session, asiento_id=asiento_id)
    if row is None:
        return asiento, None, None
    return asiento, bytes(row["datos"]), bytes(row["token"]) if row["token"] else None


async def token_de(session: AsyncSession, *, asiento_id: str) -> bytes | None:
    """The DER time-stamp token of an asiento once sealed, else None (for the SICRES export).

    ``session`` is bound to the tenant (``tenant_transaction``): row-level security
    hides other tenants' rows, so another tenant's asiento has no token here.
    """
    if _uuid_or_none(asiento_id) is None:
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


async def retry_sello(
    uow: UnitOfWork, *, asiento_id: str, stalled_before: datetime | None = None
) -> SelloTiempoRead:
    """Asks again for a time-stamp that failed or stalled, over the same kept bytes.

    An asiento with no request at all (registered before time-stamps existed) gets
    its first one here; a sealed one is a 409, and so is a pending one unless it
    was asked for before ``stalled_before`` (its answer is not coming).
    """
    asiento = await service.get_asiento(uow.session, tenant_id=uow.tenant_id, asiento_id=asiento_id)
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
