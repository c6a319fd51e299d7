"""Pure rules of the time-stamp: the canonical bytes of an asiento, request ids, reading a token."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING

# Loading asn1crypto.tsp is what teaches cms the TSTInfo content type: a process running
# the registro alone (`consistorio serve registro`) imports nothing else that loads it.
from asn1crypto import cms, tsp

from services.registro import domain

if TYPE_CHECKING:  # the REST model is only a type here: the rules stay free of pydantic
    from services.registro.asientos.schemas import AsientoRead

ALGORITMO = "sha256"


# Fixed, so the consumer and a retry racing for the same attempt send the same id.
_SOLICITUDES = uuid.uuid5(uuid.NAMESPACE_URL, "https://consistorio.es/registro/sellos-tiempo")
# The id of each request for it: one rule for every request about an asiento (domain.py).
solicitud_id = partial(domain.solicitud_id, _SOLICITUDES)


# What an asiento's later life adds, which the register date-time's evidence is not about.
_NO_SELLADO = frozenset({"estado", "anulacion"})


class EstadoSello(StrEnum):
    """Where the time-stamp of an asiento stands."""

    PENDIENTE = "pendiente"  # asked of the sellado, no answer yet
    SELLADO = "sellado"  # the token is kept
    FALLIDO = "fallido"  # the sellado gave no token; it may be asked for again


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
        tst_info: tsp.TSTInfo = encapsulated["content"].parsed
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
