"""The time-stamp command: a service sends a hash, the sellado answers with an RFC 3161 token.

Other services (the registro, for every asiento) never see a private key: they send
``sellado.sellotiempo.solicitar.v1`` with the SHA-256 of the bytes they keep and
get back ``sellado.sellotiempo.emitido.v1`` with a TimeStampToken from the
platform's own TSA, asked in process (no HTTP hop), or
``sellado.sellotiempo.rechazado.v1`` saying why not. The data itself never
travels, only its hash, so the command stays small whatever is being stamped.

:func:`sellar_huella` does the RFC 3161 exchange and reads the reply, without
I/O of its own; :func:`responder_solicitar_sello` is the bus use case around it.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from asn1crypto import cms, core, tsp

from services.common.bus.envelope import ReceivedEvent
from services.common.tenants import Tenant
from services.common.uow import UnitOfWork

__all__ = [
    "SELLO_EMITIDO",
    "SELLO_RECHAZADO",
    "SOLICITAR_SELLO",
    "CodigoRechazoSello",
    "RechazoSello",
    "SelloTiempo",
    "TimeStamper",
    "responder_solicitar_sello",
    "sellar_huella",
    "timestamp_request",
]

SOLICITAR_SELLO = "sellado.sellotiempo.solicitar.v1"
SELLO_EMITIDO = "sellado.sellotiempo.emitido.v1"
SELLO_RECHAZADO = "sellado.sellotiempo.rechazado.v1"

_log = logging.getLogger("consistorio.sellado.sello_tiempo")

# Hash algorithms the command may name, with their digest size in octets.
_ALGORITMOS = {"sha256": 32}


class CodigoRechazoSello(StrEnum):
    """Why no token was issued (the ``codigo`` of ``sellado.sellotiempo.rechazado.v1``)."""

    ALGORITMO_NO_ADMITIDO = "algoritmo-no-admitido"
    HUELLA_NO_VALIDA = "huella-no-valida"
    ENTIDAD_NO_ACTIVA = "entidad-no-activa"
    ERROR_INTERNO = "error-interno"


class RechazoSello(ValueError):
    """A time-stamp the sellado will not (or could not) issue, with the code it answers."""

    def __init__(self, codigo: CodigoRechazoSello, motivo: str) -> None:
        super().__init__(motivo)
        self.codigo = codigo
        self.motivo = motivo


class TimeStamper(Protocol):
    """What answers a DER TimeStampReq: the sellado's :class:`TimeStampAuthority`."""

    async def respond(self, request_der: bytes) -> bytes:
        """A DER TimeStampResp (a token or a rejection) for a DER TimeStampReq."""
        ...


@dataclass(frozen=True, slots=True)
class SelloTiempo:
    """An issued token and what the reply repeats of it."""

    token: bytes  # DER TimeStampToken (ContentInfo), as a .tst file holds it
    gen_time: datetime
    serial: int
    politica: str


class _StatusOnly(core.Sequence):
    """A TimeStampResp whose token is optional, as RFC 3161 says (asn1crypto requires it,
    so a rejection would read as garbage and hide the TSA's reason)."""

    _fields = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


# PKIFailureInfo bits (asn1crypto names) and what the requester is told they mean.
_FAILURE_CODES = {
    "bad_alg": CodigoRechazoSello.ALGORITMO_NO_ADMITIDO,
    "bad_request": CodigoRechazoSello.HUELLA_NO_VALIDA,
    "bad_data_format": CodigoRechazoSello.HUELLA_NO_VALIDA,
}


def _digest(algoritmo: str, huella: str) -> bytes:
    """The hash bytes of ``huella``; a wrong algorithm or length is a refusal, not a crash."""
    size = _ALGORITMOS.get(algoritmo)
    if size is None:
        raise RechazoSello(
            CodigoRechazoSello.ALGORITMO_NO_ADMITIDO,
            f"Algoritmo de resumen no admitido: {algoritmo}; se admite sha256.",
        )
    try:
        digest = bytes.fromhex(huella)
    except ValueError:
        digest = b""
    if len(digest) != size or huella != huella.lower():
        raise RechazoSello(
            CodigoRechazoSello.HUELLA_NO_VALIDA,
            f"La huella no es un resumen {algoritmo} en hexadecimal ({2 * size} cifras).",
        )
    return digest


def timestamp_request(algoritmo: str, huella: str) -> bytes:
    """The DER TimeStampReq for ``huella``, asking for the TSA certificate in the token.

    certReq is set so that the token verifies on its own against the trust root
    (``openssl ts -verify -CAfile root``), years later and far from this platform.
    No nonce: the request never leaves the process, so there is no reply to replay.
    """
    digest = _digest(algoritmo, huella)
    return tsp.TimeStampReq(
        {
            "version": 1,
            "message_imprint": {
                "hash_algorithm": {"algorithm": algoritmo},
                "hashed_message": digest,
            },
            "cert_req": True,
        }
    ).dump()


async def sellar_huella(tsa: TimeStamper, *, algoritmo: str, huella: str) -> SelloTiempo:
    """Asks ``tsa`` for a token over ``huella``; raises :class:`RechazoSello` when there is none.

    The token is read back and its imprint compared with what was asked: a token
    over anything else must never be handed to a requester as evidence.
    """
    request = timestamp_request(algoritmo, huella)
    raw = await tsa.respond(request)
    try:
        response = _StatusOnly.load(raw)
        status = response["status"]
        granted = status["status"].native in ("granted", "granted_with_mods")
        token = response["time_stamp_token"]
        # Only the parts read below are parsed: ``token.native`` would decode the whole
        # token (certificates included) into Python objects, for nothing.
        if not granted or isinstance(token, core.Void):
            texts = "; ".join(status["status_string"].native or []) or "sin motivo"
            failures = sorted(status["fail_info"].native or [])
            codigo = next(
                (_FAILURE_CODES[f] for f in failures if f in _FAILURE_CODES),
                CodigoRechazoSello.ERROR_INTERNO,
            )
            raise RechazoSello(codigo, f"La autoridad de sellado de tiempo lo rechazó: {texts}")
        tst_info = token["content"]["encap_content_info"]["content"].parsed
        imprint = tst_info["message_imprint"]
        if (
            imprint["hash_algorithm"]["algorithm"].native != algoritmo
            or imprint["hashed_message"].native.hex() != huella
        ):
            raise RechazoSello(
                CodigoRechazoSello.ERROR_INTERNO,
                "El sello de tiempo emitido no corresponde a la huella pedida.",
            )
        return SelloTiempo(
            token=_received_der(raw, token),
            gen_time=tst_info["gen_time"].native,
            serial=int(tst_info["serial_number"].native),
            politica=str(tst_info["policy"].dotted),
        )
    except RechazoSello:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        _log.exception("unreadable time-stamp response")
        raise RechazoSello(
            CodigoRechazoSello.ERROR_INTERNO,
            "Error interno de la autoridad de sellado de tiempo.",
        ) from exc


def _received_der(raw: bytes, token: cms.ContentInfo) -> bytes:
    """The token's DER exactly as the TSA sent it: it is the last element of the response.

    The bytes are cut from the response rather than re-encoded, so the token kept is
    the one the TSA signed, byte for byte, whatever the ASN.1 library would write.
    """
    der = token.dump()
    if not raw.endswith(der):
        raise ValueError("la respuesta de la TSA no termina con su token")
    return raw[len(raw) - len(der) :]


def _reply_base(data: dict[str, Any]) -> dict[str, Any]:
    """The fields every reply echoes from the command."""
    reply: dict[str, Any] = {"solicitud_id": data["solicitud_id"]}
    if data.get("solicitante"):
        reply["solicitante"] = data["solicitante"]
    return reply


async def responder_solicitar_sello(
    uow: UnitOfWork, event: ReceivedEvent, *, tsa: TimeStamper, tenant: Tenant | None
) -> None:
    """Time-stamps the hash a ``solicitar`` command carries and replies, issued or refused.

    The reply and the audit record commit with the consumer's record of the
    command's id, so a redelivered command is answered once.
    """
    data = event.data
    reply = _reply_base(data)
    try:
        if tenant is None or not tenant.activo:
            raise RechazoSello(
                CodigoRechazoSello.ENTIDAD_NO_ACTIVA, f"La entidad {event.tenant} no está activa."
            )
        sello = await sellar_huella(
            tsa, algoritmo=str(data["algoritmo"]), huella=str(data["huella"])
        )
    except RechazoSello as refusal:
        _log.info("time-stamp command %s refused: %s", data["solicitud_id"], refusal.motivo)
        uow.emit(
            SELLO_RECHAZADO,
            {**reply, "motivo": refusal.motivo[:1000], "codigo": refusal.codigo.value},
            subject=data["solicitud_id"],
        )
        return
    uow.audit(
        action="sellar-tiempo",
        entity="sello_tiempo",
        entity_id=str(sello.serial),
        new={
            "solicitud_id": data["solicitud_id"],
            "algoritmo": data["algoritmo"],
            "huella": data["huella"],
            "gen_time": sello.gen_time.isoformat(),
            "serial": str(sello.serial),
            "politica": sello.politica,
            "referencia": data.get("referencia"),
        },
    )
    uow.emit(
        SELLO_EMITIDO,
        {
            **reply,
            "huella": data["huella"],
            "token": base64.b64encode(sello.token).decode("ascii"),
            "gen_time": sello.gen_time.isoformat(),
            "serial": str(sello.serial),
            "politica": sello.politica,
        },
        subject=data["solicitud_id"],
    )
