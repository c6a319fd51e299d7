"""Evidence of a notification's life: every state change time-stamped by the sellado (RFC 3161).

Each change (puesta a disposición, practicada, rechazada, expirada, fallida, the
postal ones) keeps, in the same transaction, its canonical bytes (sorted-key JSON
of what changed and when, with the legal date) and their SHA-256, and asks the
sellado for a token over that hash with ``sellado.sellotiempo.solicitar.v1``.
The reply settles the row: ``sellado`` with the DER token and its genTime, or
``fallido`` with the reason. Anyone can check it later with the bytes, the token
and the TSA's root (``openssl ts -verify -data hito.json -in token.tst -token_in``).
The bytes are kept, not rebuilt, so the evidence survives changes of the schema.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import uuid
from datetime import date, datetime
from typing import Any

from asn1crypto import cms
from sqlalchemy import select, update

from services.common.bus.envelope import ReceivedEvent
from services.common.uow import UnitOfWork
from services.notificaciones.models import sellos

__all__ = [
    "SELLO_EMITIDO",
    "SELLO_RECHAZADO",
    "SOLICITANTE",
    "TokenIlegible",
    "datos_hito",
    "registrar_sello",
    "solicitar_sellos",
]

SOLICITAR_SELLO = "sellado.sellotiempo.solicitar.v1"
SELLO_EMITIDO = "sellado.sellotiempo.emitido.v1"
SELLO_RECHAZADO = "sellado.sellotiempo.rechazado.v1"
SOLICITANTE = "notificaciones"

_log = logging.getLogger("consistorio.notificaciones.evidencias")


class TokenIlegible(ValueError):
    """A reply's token is not a TimeStampToken over the hash that was asked for."""


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"no serializable: {type(value).__name__}")


def datos_hito(fila: dict[str, Any], *, en: datetime) -> bytes:
    """The canonical bytes of a notification's state at a change: sorted-key JSON, UTF-8.

    Only what the change is about travels: no name or address of the addressee.
    """
    interesado = fila["interesado"]
    hito = {
        "notificacion_id": fila["id"],
        "entidad": fila["tenant_id"],
        "estado": fila["estado"],
        "canal": fila["canal"],
        "registrado_en": en,
        "efectos_en": fila.get("efectos_en"),
        "fecha_legal": fila.get("fecha_legal"),
        "vence_en": fila.get("vence_en"),
        "documento_id": fila["documento_id"],
        "documento_version": fila.get("documento_version"),
        "destinatario": {
            "tipo_identificador": interesado["tipo_identificador"],
            "identificador": interesado["identificador"],
        },
    }
    texto = json.dumps(
        hito, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json
    )
    return texto.encode("utf-8")


def solicitar_sellos(
    uow: UnitOfWork, filas: list[dict[str, Any]], *, en: datetime
) -> list[dict[str, Any]]:
    """Asks the sellado to time-stamp each change (one command each); answers the rows to keep.

    The caller writes the rows in the same transaction (deferred for one change,
    at once for a batch).
    """
    registros = []
    for fila in filas:
        datos = datos_hito(fila, en=en)
        huella = hashlib.sha256(datos).hexdigest()
        solicitud = str(uuid.uuid4())
        registros.append(
            {
                "id": solicitud,
                "tenant_id": uow.tenant_id,
                "notificacion_id": fila["id"],
                "hito": fila["estado"],
                "datos": datos,
                "huella": huella,
                "estado": "pendiente",
                "solicitado_en": en,
                "actualizado_en": en,
            }
        )
        uow.emit(
            SOLICITAR_SELLO,
            {
                "solicitud_id": solicitud,
                "solicitante": SOLICITANTE,
                "algoritmo": "sha256",
                "huella": huella,
            },
            subject=fila["id"],
        )
    return registros


def leer_token(token: bytes, *, huella: str) -> datetime:
    """The genTime of a DER TimeStampToken whose SHA-256 imprint is ``huella``."""
    try:
        content = cms.ContentInfo.load(token)
        tst_info = content["content"]["encap_content_info"]["content"].parsed
        imprint = tst_info["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        hashed = imprint["hashed_message"].native
        gen_time: datetime = tst_info["gen_time"].native
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise TokenIlegible(f"el token no se puede leer: {exc}") from exc
    if algorithm != "sha256" or hashed.hex() != huella:
        raise TokenIlegible("el token no sella la huella pedida")
    return gen_time


def _uuid(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


async def registrar_sello(uow: UnitOfWork, event: ReceivedEvent) -> None:
    """The sellado's answer: keep the token of a pending change, or why there is none.

    Replies for another requester, for a request not made here (or in another
    tenant: RLS hides it) or already settled are skipped.
    """
    data = event.data
    solicitud = _uuid(data.get("solicitud_id"))
    if solicitud is None or data.get("solicitante") != SOLICITANTE:
        return
    fila = (
        await uow.session.execute(select(sellos).where(sellos.c.id == solicitud).with_for_update())
    ).first()
    if fila is None or fila.estado != "pendiente":
        _log.info("time-stamp reply %s answers no pending request; skipped", solicitud)
        return
    cambios: dict[str, Any] = {"actualizado_en": datetime.now(fila.solicitado_en.tzinfo)}
    if str(event.name) == SELLO_EMITIDO:
        try:
            token = base64.b64decode(str(data["token"]), validate=True)
            cambios.update(
                estado="sellado", token=token, gen_time=leer_token(token, huella=fila.huella)
            )
        except (ValueError, TokenIlegible) as exc:
            cambios.update(estado="fallido", motivo=f"Sello de tiempo no válido: {exc}")
    else:
        cambios.update(estado="fallido", motivo=str(data.get("motivo", "rechazado")))
    uow.defer(update(sellos).where(sellos.c.id == solicitud).values(**cambios))
