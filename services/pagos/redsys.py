"""The Redsys redirection protocol, signature version ``HMAC_SHA256_V1``, as pure functions.

The merchant posts three fields to Redsys: ``Ds_SignatureVersion``,
``Ds_MerchantParameters`` (the base64 of a JSON object of ``Ds_Merchant_*``
strings) and ``Ds_Signature``. Redsys answers the merchant's notification URL
with the same three fields, the parameters now ``Ds_*`` (``Ds_Order``,
``Ds_Amount``, ``Ds_Response``...) and the signature in base64url.

Signing, as Redsys' own libraries (apiRedsys) do it:

1. the per-order key is the order number encrypted with 3DES-CBC under the
   merchant's key (base64-decoded, 24 bytes), a zero IV, the order padded with
   zero bytes to a multiple of eight;
2. the signature is HMAC-SHA256, under that key, of the ``Ds_MerchantParameters``
   text exactly as sent (its base64 characters), encoded in base64.

Verification compares digests, never texts, so a base64url signature and a
standard one are the same signature; the comparison is constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any

# cryptography keeps 3DES among its "decrepit" algorithms: Redsys still derives keys with it.
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

__all__ = [
    "FIRMA_VERSION",
    "FirmaNoValida",
    "clave_de_pedido",
    "codificar_parametros",
    "decodificar_parametros",
    "firmar",
    "orden_de",
    "orden_valida",
    "pago_autorizado",
    "validar_clave",
    "verificar",
]

FIRMA_VERSION = "HMAC_SHA256_V1"
# 4 to 12 characters, the first four digits (Redsys refuses other order numbers).
_ORDEN = re.compile(r"^\d{4}[0-9A-Za-z]{0,8}$")


class FirmaNoValida(ValueError):
    """A notification whose signature, version or parameters do not hold."""


def validar_clave(clave: str) -> bytes:
    """The merchant key's bytes: base64 of 24 bytes (a 3DES key), or ValueError."""
    try:
        crudo = base64.b64decode(clave, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("la clave del comercio no está en base64") from exc
    if len(crudo) != 24:
        raise ValueError("la clave del comercio debe tener 24 bytes (32 caracteres base64)")
    return crudo


def orden_valida(orden: str) -> bool:
    """Whether ``orden`` is a Redsys order number (4–12 characters, the first four digits)."""
    return bool(_ORDEN.match(orden))


def clave_de_pedido(clave: str, orden: str) -> bytes:
    """The per-order key: the order encrypted with 3DES-CBC under the merchant key."""
    datos = orden.encode("ascii")
    datos += b"\0" * (-len(datos) % 8)
    cifrador = Cipher(TripleDES(validar_clave(clave)), modes.CBC(b"\0" * 8)).encryptor()
    return cifrador.update(datos) + cifrador.finalize()


def _digest(clave: str, orden: str, parametros: str) -> bytes:
    return hmac.new(
        clave_de_pedido(clave, orden), parametros.encode("ascii"), hashlib.sha256
    ).digest()


def firmar(clave: str, orden: str, parametros: str) -> str:
    """``Ds_Signature`` (standard base64) of ``Ds_MerchantParameters`` for ``orden``."""
    return base64.b64encode(_digest(clave, orden, parametros)).decode("ascii")


def codificar_parametros(parametros: dict[str, str]) -> str:
    """``Ds_MerchantParameters``: the base64 of the compact JSON of the parameters."""
    texto = json.dumps(parametros, separators=(",", ":"), ensure_ascii=True)
    return base64.b64encode(texto.encode("ascii")).decode("ascii")


def _b64_cualquiera(texto: str) -> bytes:
    """Decodes base64 or base64url (Redsys uses both), padding or not."""
    normal = texto.strip().replace("-", "+").replace("_", "/")
    normal += "=" * (-len(normal) % 4)
    return base64.b64decode(normal, validate=True)


def decodificar_parametros(parametros: str) -> dict[str, Any]:
    """The JSON object of ``Ds_MerchantParameters`` (base64 or base64url)."""
    try:
        valor = json.loads(_b64_cualquiera(parametros))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise FirmaNoValida("Ds_MerchantParameters no es base64 de un objeto JSON") from exc
    if not isinstance(valor, dict):
        raise FirmaNoValida("Ds_MerchantParameters no es un objeto JSON")
    return valor


def orden_de(parametros: dict[str, Any]) -> str:
    """The order number a notification names (Redsys spells it Ds_Order or DS_ORDER)."""
    for nombre in ("Ds_Order", "DS_ORDER", "Ds_Merchant_Order", "DS_MERCHANT_ORDER"):
        valor = parametros.get(nombre)
        if isinstance(valor, str) and valor:
            return valor
    raise FirmaNoValida("la notificación no trae Ds_Order")


def verificar(clave: str, version: str, parametros: str, firma: str) -> dict[str, Any]:
    """The decoded parameters of a notification whose signature holds, or FirmaNoValida."""
    if version != FIRMA_VERSION:
        raise FirmaNoValida(f"versión de firma no admitida: {version!r}")
    datos = decodificar_parametros(parametros)
    orden = orden_de(datos)
    try:
        recibida = _b64_cualquiera(firma)
    except (binascii.Error, ValueError) as exc:
        raise FirmaNoValida("Ds_Signature no es base64") from exc
    if not hmac.compare_digest(recibida, _digest(clave, orden, parametros.strip())):
        raise FirmaNoValida("la firma no corresponde a los parámetros")
    return datos


def pago_autorizado(ds_response: str) -> bool:
    """Whether a ``Ds_Response`` is an authorised payment (0000 to 0099)."""
    try:
        codigo = int(ds_response)
    except (TypeError, ValueError):
        return False
    return 0 <= codigo <= 99
