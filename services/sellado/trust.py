"""The sellado's trust material, wired once: trust root, TSA and each tenant's seal.

This is the only object in Consistorio that holds private keys. In embedded and
development mode the keys come from the development PKI generated under the data
dir; in production from PKCS#12 files (``SELLADO_PKCS12_DIR``: ``tsa.p12``, one
``<INE>.p12`` per tenant, and ``ca.pem``, the trust root), with the passphrase from
a secret (``SELLADO_PKCS12_PASSPHRASE``). Nothing here logs or returns key material.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from services.common.db import Database
from services.common.settings import Settings
from services.common.tenants import Tenant
from services.sellado.pades import InProcessTimeStamper, VisibleAppearance, seal_pdf
from services.sellado.pki import DevPki, KeyPair, load_pkcs12
from services.sellado.tsa import DEVELOPMENT_POLICY_OID, PostgresSerialSource, TimeStampAuthority

__all__ = ["Pkcs12Pki", "SealedDocument", "TrustServices", "TrustStore", "build_trust"]


class TrustStore(Protocol):
    """Where the keys come from: the development PKI or the production key files."""

    @property
    def root(self) -> x509.Certificate: ...

    @property
    def tsa(self) -> KeyPair: ...

    def root_pem(self) -> bytes: ...

    def seal_for(self, ine: str, nombre: str) -> KeyPair: ...


class Pkcs12Pki:
    """Production keys: PKCS#12 files in one directory, loaded once and kept in memory."""

    def __init__(self, directory: Path, passphrase: bytes | None) -> None:
        self._directory = directory
        self._passphrase = passphrase
        self._root = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        self._tsa = load_pkcs12(directory / "tsa.p12", passphrase)
        self._seals: dict[str, KeyPair] = {}

    @property
    def root(self) -> x509.Certificate:
        return self._root

    @property
    def tsa(self) -> KeyPair:
        return self._tsa

    def root_pem(self) -> bytes:
        return self._root.public_bytes(serialization.Encoding.PEM)

    def seal_for(self, ine: str, nombre: str) -> KeyPair:
        """The tenant's seal from ``<INE>.p12``; a tenant without one cannot seal."""
        if ine not in self._seals:
            path = self._directory / f"{ine}.p12"
            if not path.exists():
                raise FileNotFoundError(f"no hay certificado de sello para la entidad {ine}")
            self._seals[ine] = load_pkcs12(path, self._passphrase)
        return self._seals[ine]


@dataclass(frozen=True)
class SealedDocument:
    """A sealed PDF and what a receipt or a reply needs to say about it."""

    pdf: bytes
    sha256: str
    firmante: str
    sello_tiempo: datetime


def _gen_time(response_der: bytes) -> datetime:
    response = tsp.TimeStampResp.load(response_der)
    signed = response["time_stamp_token"]["content"]
    tst_info = signed["encap_content_info"]["content"].parsed
    gen_time: datetime = tst_info["gen_time"].native
    return gen_time


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


class TrustServices:
    """Seals PDFs for a tenant with its own key and our TSA (PAdES-B-T)."""

    def __init__(self, *, pki: TrustStore, tsa: TimeStampAuthority) -> None:
        self.pki = pki
        # The time-stamping authority; the TSA routes and the sealer share it.
        self.tsa = tsa

    async def seal(
        self,
        tenant: Tenant,
        pdf: bytes,
        *,
        motivo: str | None = None,
        appearance: VisibleAppearance | None = None,
    ) -> SealedDocument:
        """Seals ``pdf`` with ``tenant``'s sello de órgano and a token from our TSA."""
        keypair = self.pki.seal_for(tenant.ine_code, tenant.nombre)
        gen_times: list[datetime] = []

        async def recording(request_der: bytes) -> bytes:
            raw = await self.tsa.respond(request_der)
            gen_times.append(_gen_time(raw))
            return raw

        sealed = await seal_pdf(
            pdf,
            keypair=keypair,
            timestamper=InProcessTimeStamper(recording),
            appearance=appearance,
            reason=motivo or f"Sello electrónico de {tenant.nombre}",
            location=tenant.nombre,
            token_size_bound=self.tsa.token_size_bound(),
        )
        return SealedDocument(
            pdf=sealed,
            sha256=hashlib.sha256(sealed).hexdigest(),
            firmante=_common_name(keypair.certificate),
            sello_tiempo=gen_times[-1],
        )


def build_trust(settings: Settings, db: Database) -> TrustServices:
    """Loads (production) or creates (development) the keys and builds the TSA."""
    pki: TrustStore
    if settings.sellado_pkcs12_dir is not None:
        secret = settings.sellado_pkcs12_passphrase
        passphrase = secret.get_secret_value().encode() if secret else None
        pki = Pkcs12Pki(settings.sellado_pkcs12_dir, passphrase)
    elif settings.environment == "production":
        raise ValueError("SELLADO_PKCS12_DIR is required in production (no development keys)")
    else:
        pki = DevPki.ensure(settings.data_dir / "pki")
    policy = settings.tsa_policy_oid
    if policy is None:
        if settings.environment == "production":
            raise ValueError("TSA_POLICY_OID is required in production")
        policy = DEVELOPMENT_POLICY_OID
    tsa = TimeStampAuthority(pki.tsa, policy_oid=policy, serials=PostgresSerialSource(db))
    return TrustServices(pki=pki, tsa=tsa)
