"""Envelope encryption of each council's Redsys merchant key, at rest.

Whoever reads the database (a backup, a replica, a leaked dump) must not be able
to sign card payments. So the merchant key is stored only encrypted:

* a fresh data key (DEK, 256 bits) per stored key encrypts it with AES-GCM;
* the DEK is wrapped with a key-encryption key (KEK) from the settings or a secret
  (:class:`~services.pagos.settings.PagosSettings`), also AES-GCM;
* both are bound to the tenant (associated data), so a ciphertext copied onto
  another council's row does not decrypt.

The stored text is versioned and names the KEK that wrapped it::

    v1.<kek id>.<base64url(nonce ‖ wrapped DEK)>.<base64url(nonce ‖ encrypted key)>

A KEK rotates without downtime: configure the new KEK first in ``PAGOS_KEKS`` and
keep the old one after it; every new key is wrapped with the new one, old
ciphertexts still decrypt, and ``python -m services.pagos.claves rotar`` re-wraps
the DEKs of every row (the merchant keys themselves are not re-encrypted). Then the
old KEK can go. Production refuses to start without a KEK; elsewhere a fixed,
public development KEK stands in so ``make dev`` and the tests need no secret.

No message of this module contains a key, a DEK or a KEK: only KEK ids.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os
import sys
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.pagos.settings import PagosSettings

__all__ = [
    "ClaveMaestraAusente",
    "ClaveNoDescifrable",
    "Llavero",
    "cifrada",
    "instalar",
    "llavero_de",
    "rotar",
    "vigente",
]

_VERSION = "v1"
_NONCE = 12
# Not a secret: it only lets development and tests run without one. Production refuses it.
ID_DESARROLLO = "desarrollo"
_KEK_DESARROLLO = hashlib.sha256(b"consistorio: KEK de desarrollo de pagos, no secreta").digest()


class ClaveMaestraAusente(RuntimeError):
    """No KEK is configured where one is required (production), or the keyring is malformed."""


class ClaveNoDescifrable(RuntimeError):
    """A stored key that this keyring cannot decrypt (unknown KEK id, wrong KEK, tampering)."""


def _b64(datos: bytes) -> str:
    return base64.urlsafe_b64encode(datos).decode("ascii").rstrip("=")


def _de_b64(texto: str) -> bytes:
    return base64.urlsafe_b64decode(texto + "=" * (-len(texto) % 4))


def cifrada(texto: str | None) -> bool:
    """Whether a stored value is a ciphertext of this module (a Redsys key never has dots)."""
    return bool(texto) and str(texto).startswith(_VERSION + ".")


@dataclass(frozen=True)
class Llavero:
    """The KEKs by id; ``activa`` wraps new keys, every one unwraps."""

    claves: dict[str, bytes] = field(repr=False)
    activa: str

    def __post_init__(self) -> None:
        if self.activa not in self.claves:
            raise ClaveMaestraAusente(
                f"la clave maestra activa {self.activa!r} no está en el llavero"
            )
        for kid, kek in self.claves.items():
            if len(kek) != 32:
                raise ClaveMaestraAusente(f"la clave maestra {kid!r} no tiene 32 bytes")

    @property
    def de_desarrollo(self) -> bool:
        return self.activa == ID_DESARROLLO

    @staticmethod
    def _aad(tenant_id: str, parte: str) -> bytes:
        return f"consistorio/pagos/redsys_clave/{_VERSION}/{parte}/{tenant_id}".encode()

    def cifrar(self, clave: str, *, tenant_id: str) -> str:
        """Encrypts a merchant key for a tenant under a fresh DEK wrapped with the active KEK."""
        dek = AESGCM.generate_key(bit_length=256)
        n1, n2 = os.urandom(_NONCE), os.urandom(_NONCE)
        envuelta = AESGCM(self.claves[self.activa]).encrypt(
            n1, dek, self._aad(tenant_id, self.activa)
        )
        cifrado = AESGCM(dek).encrypt(n2, clave.encode("utf-8"), self._aad(tenant_id, "dato"))
        return f"{_VERSION}.{self.activa}.{_b64(n1 + envuelta)}.{_b64(n2 + cifrado)}"

    def _partes(self, texto: str) -> tuple[str, bytes, bytes]:
        partes = texto.split(".")
        if len(partes) != 4 or partes[0] != _VERSION:
            raise ClaveNoDescifrable("la clave de Redsys guardada no tiene el formato v1")
        kid = partes[1]
        try:
            return kid, _de_b64(partes[2]), _de_b64(partes[3])
        except (binascii.Error, ValueError) as exc:
            raise ClaveNoDescifrable("la clave de Redsys guardada está dañada") from exc

    def _dek(self, kid: str, envuelta: bytes, tenant_id: str) -> bytes:
        kek = self.claves.get(kid)
        if kek is None:
            raise ClaveNoDescifrable(
                f"la clave de Redsys está cifrada con la clave maestra {kid!r}, que no está "
                "configurada (PAGOS_KEKS)"
            )
        try:
            return AESGCM(kek).decrypt(
                envuelta[:_NONCE], envuelta[_NONCE:], self._aad(tenant_id, kid)
            )
        except InvalidTag as exc:
            raise ClaveNoDescifrable(
                f"la clave maestra configurada como {kid!r} no descifra la clave de Redsys de "
                "esta entidad: otra clave con ese id, o un dato alterado"
            ) from exc

    def descifrar(self, texto: str, *, tenant_id: str) -> str:
        """The merchant key, or :class:`ClaveNoDescifrable` saying which KEK id failed."""
        kid, envuelta, cifrado = self._partes(texto)
        dek = self._dek(kid, envuelta, tenant_id)
        try:
            claro = AESGCM(dek).decrypt(
                cifrado[:_NONCE], cifrado[_NONCE:], self._aad(tenant_id, "dato")
            )
        except InvalidTag as exc:
            raise ClaveNoDescifrable("la clave de Redsys guardada está alterada") from exc
        return claro.decode("utf-8")

    def reenvolver(self, texto: str, *, tenant_id: str) -> str:
        """The same encrypted key with its DEK wrapped again under the active KEK."""
        kid, envuelta, cifrado = self._partes(texto)
        if kid == self.activa:
            return texto
        dek = self._dek(kid, envuelta, tenant_id)
        n1 = os.urandom(_NONCE)
        nueva = AESGCM(self.claves[self.activa]).encrypt(n1, dek, self._aad(tenant_id, self.activa))
        return f"{_VERSION}.{self.activa}.{_b64(n1 + nueva)}.{_b64(cifrado)}"

    def kid_de(self, texto: str) -> str:
        """The id of the KEK that wrapped a stored key."""
        return self._partes(texto)[0]


def _leer_llavero(texto: str) -> Llavero:
    claves: dict[str, bytes] = {}
    orden: list[str] = []
    for trozo in texto.split(","):
        trozo = trozo.strip()
        if not trozo:
            continue
        kid, sep, valor = trozo.partition(":")
        kid = kid.strip()
        if not sep or not kid or "." in kid or kid in claves:
            raise ClaveMaestraAusente(
                "PAGOS_KEKS son pares <id>:<base64 de 32 bytes> separados por comas, ids "
                "distintos y sin puntos"
            )
        try:
            kek = base64.b64decode(valor.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ClaveMaestraAusente(f"la clave maestra {kid!r} no es base64") from exc
        claves[kid] = kek
        orden.append(kid)
    if not orden:
        raise ClaveMaestraAusente("PAGOS_KEKS está vacío")
    return Llavero(claves, orden[0])


def llavero_de(ajustes: PagosSettings, entorno: str) -> Llavero:
    """The keyring the settings name; production refuses to run without one."""
    texto = ajustes.keks_texto()
    if texto is None:
        if entorno == "production":
            raise ClaveMaestraAusente(
                "PAGOS_KEKS (o PAGOS_KEKS_FILE) es obligatoria en producción: sin ella la "
                "clave de Redsys de cada entidad no puede guardarse cifrada"
            )
        return Llavero({ID_DESARROLLO: _KEK_DESARROLLO}, ID_DESARROLLO)
    llavero = _leer_llavero(texto)
    if entorno == "production" and ID_DESARROLLO in llavero.claves:
        raise ClaveMaestraAusente("la clave maestra de desarrollo no vale en producción")
    return llavero


_instalado: Llavero | None = None


def instalar(llavero: Llavero) -> None:
    """Makes ``llavero`` the one this process uses (the app does it when it starts)."""
    global _instalado
    _instalado = llavero


def vigente() -> Llavero:
    """The installed keyring, or the one the environment names (migrations, scripts)."""
    if _instalado is not None:
        return _instalado
    from services.common.settings import Settings

    return llavero_de(PagosSettings(), Settings().environment)


async def rotar(conn: AsyncConnection, llavero: Llavero) -> int:
    """Re-wraps, under the active KEK, every stored key wrapped by another; answers how many.

    Runs as the schema owner (no row-level security) in the caller's transaction; each
    row is locked while it is rewritten, so a concurrent configuration is not lost.
    """
    from services.pagos.models import configuracion

    filas = (
        await conn.execute(
            select(configuracion.c.tenant_id, configuracion.c.redsys_clave_cifrada)
            .where(configuracion.c.redsys_clave_cifrada.is_not(None))
            .with_for_update()
        )
    ).all()
    hechas = 0
    for tenant_id, texto in filas:
        if llavero.kid_de(texto) == llavero.activa:
            continue
        await conn.execute(
            update(configuracion)
            .where(configuracion.c.tenant_id == tenant_id)
            .values(redsys_clave_cifrada=llavero.reenvolver(texto, tenant_id=tenant_id))
        )
        hechas += 1
    return hechas


async def _rotar_todo() -> int:
    from sqlalchemy.ext.asyncio import create_async_engine

    from services.common.settings import Settings

    ajustes = Settings()
    if not ajustes.database_url:
        raise SystemExit("DATABASE_URL (the schema owner) is required to rotate")
    llavero = llavero_de(PagosSettings(), ajustes.environment)
    motor = create_async_engine(ajustes.database_url)
    try:
        async with motor.begin() as conn:
            return await rotar(conn, llavero)
    finally:
        await motor.dispose()


if __name__ == "__main__":  # pragma: no cover - operator command
    if sys.argv[1:] != ["rotar"]:
        raise SystemExit("usage: python -m services.pagos.claves rotar")
    print(f"re-wrapped {asyncio.run(_rotar_todo())} Redsys keys")
