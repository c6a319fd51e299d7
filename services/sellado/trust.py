"""The sellado's trust material, wired once: trust root, TSA and each tenant's seal.

This is the only object in Consistorio that holds private keys. In embedded and
development mode the keys come from the development PKI generated under the data
dir; in production from PKCS#12 files (``SELLADO_PKCS12_DIR``: ``tsa.p12``, one
``<INE>.p12`` per tenant, and ``ca.pem``, the trust root), with the passphrase from
a secret (``SELLADO_PKCS12_PASSPHRASE``). Nothing here logs or returns key material.

Sealing is CPU work (parsing the PDF, hashing it, signing twice: the seal and the
TSA's token), so a service seals in its document workers (:class:`KeySource`,
:func:`seal_in_worker`): each worker process opens the keys once, from the same
files, and keeps them. The service hands the worker the token's serial number, the
one thing that must stay unique across processes, so the worker's TSA makes exactly
one token per seal. An XML signature (the índice electrónico, XAdES) is signed there
too (:func:`sign_xml_in_worker`); its time-stamp is asked of the service's own TSA.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from services.common.cpu import CpuPool
from services.common.db import Database
from services.common.settings import Settings
from services.common.tenants import Tenant
from services.sellado.pades import InProcessTimeStamper, VisibleAppearance, seal_pdf
from services.sellado.pki import DevPki, KeyPair, load_pkcs12
from services.sellado.tsa import DEVELOPMENT_POLICY_OID, PostgresSerialSource, TimeStampAuthority
from services.sellado.xades import FirmaXml, firmar_bes, firmar_xml, sellar_firma

__all__ = [
    "KeySource",
    "Pkcs12Pki",
    "SealedDocument",
    "TrustServices",
    "TrustStore",
    "build_trust",
    "common_name",
    "seal_in_worker",
    "sign_xml_in_worker",
    "trust_anchor_path",
]


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


def common_name(certificate: x509.Certificate) -> str:
    """The certificate's common name (its subject when it has none): the signer people read."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


@dataclass(frozen=True)
class KeySource:
    """Where a document worker finds the keys: the same files the service opened.

    ``pki_dir`` is the development PKI's directory; ``pkcs12_dir`` and ``passphrase``
    the production key files (the passphrase travels to the worker over its pipe,
    never to disk or a log). ``policy_oid`` is the TSA policy written in tokens.
    """

    policy_oid: str
    pki_dir: Path | None = None
    pkcs12_dir: Path | None = None
    passphrase: bytes | None = None

    def open(self) -> TrustStore:
        """The key store these files hold."""
        if self.pkcs12_dir is not None:
            return Pkcs12Pki(self.pkcs12_dir, self.passphrase)
        if self.pki_dir is None:
            raise ValueError("a KeySource names a development PKI or PKCS#12 files")
        return DevPki.ensure(self.pki_dir)


class _HandedSerials:
    """The serial numbers the service handed to a worker for the seal it is making."""

    def __init__(self) -> None:
        self.available: list[int] = []

    async def next(self) -> int:
        """The serial handed for this seal; a second token in one seal finds none."""
        if not self.available:
            raise RuntimeError("no serial was handed for another time-stamp token")
        return self.available.pop()


class _Worker:
    """What one worker process keeps between seals: keys, TSA, and an event loop."""

    def __init__(self, source: KeySource) -> None:
        pki = source.open()
        self.serials = _HandedSerials()
        tsa = TimeStampAuthority(pki.tsa, policy_oid=source.policy_oid, serials=self.serials)
        self.trust = TrustServices(pki=pki, tsa=tsa)
        self.loop = asyncio.new_event_loop()


_workers: dict[KeySource, _Worker] = {}
_workers_lock = threading.Lock()


def _worker(source: KeySource) -> _Worker:
    # Called with _workers_lock held.
    worker = _workers.get(source)
    if worker is None:
        worker = _workers[source] = _Worker(source)
    return worker


def seal_in_worker(
    source: KeySource,
    tenant: Tenant,
    pdf: bytes,
    motivo: str | None,
    appearance: VisibleAppearance | None,
    serial: int,
) -> SealedDocument:
    """Seals ``pdf`` in this (worker) process, its time-stamp token numbered ``serial``.

    The keys are opened on the first seal of the process and kept for the next ones.
    """
    with _workers_lock:
        worker = _worker(source)
        worker.serials.available = [serial]
        try:
            return worker.loop.run_until_complete(
                worker.trust.seal(tenant, pdf, motivo=motivo, appearance=appearance)
            )
        finally:
            worker.serials.available = []


def sign_xml_in_worker(source: KeySource, tenant: Tenant, xml: bytes) -> bytes:
    """Signs ``xml`` XAdES-BES with ``tenant``'s seal in this (worker) process; the
    serialised signed document (its time-stamp is the service's to add)."""
    with _workers_lock:
        keypair = _worker(source).trust.pki.seal_for(tenant.ine_code, tenant.nombre)
        return firmar_bes(xml, keypair)


class TrustServices:
    """Seals PDFs for a tenant with its own key and our TSA (PAdES-B-T).

    With ``documents`` and ``source`` it seals in the document workers; without them,
    in this process (a worker itself, a test, the benchmark).
    """

    def __init__(
        self,
        *,
        pki: TrustStore,
        tsa: TimeStampAuthority,
        documents: CpuPool | None = None,
        source: KeySource | None = None,
    ) -> None:
        self.pki = pki
        # The time-stamping authority; the TSA routes and the sealer share it.
        self.tsa = tsa
        self._documents = documents if source is not None else None
        self._source = source

    async def seal(
        self,
        tenant: Tenant,
        pdf: bytes,
        *,
        motivo: str | None = None,
        appearance: VisibleAppearance | None = None,
    ) -> SealedDocument:
        """Seals ``pdf`` with ``tenant``'s sello de órgano and a token from our TSA."""
        if self._documents is not None and self._source is not None:
            serial = await self.tsa.reserve_serial()
            return await self._documents.run(
                tenant.ine_code,
                seal_in_worker,
                self._source,
                tenant,
                pdf,
                motivo,
                appearance,
                serial,
            )
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
            firmante=common_name(keypair.certificate),
            sello_tiempo=gen_times[-1],
        )

    async def firmar_xml(self, tenant: Tenant, xml: bytes) -> FirmaXml:
        """Signs ``xml`` XAdES-T with ``tenant``'s seal: the signature in the document
        workers when there are any (in a thread otherwise), the time-stamp from our TSA
        here. Raises :class:`~services.sellado.xades.XmlNoValido` for bytes that are not
        XML, ``FileNotFoundError`` for a tenant without a seal."""
        if self._documents is not None and self._source is not None:
            signed = await self._documents.run(
                tenant.ine_code, sign_xml_in_worker, self._source, tenant, xml
            )
            return await sellar_firma(signed, tsa=self.tsa)
        keypair = self.pki.seal_for(tenant.ine_code, tenant.nombre)
        return await firmar_xml(xml, keypair=keypair, tsa=self.tsa)


def trust_anchor_path(settings: Settings) -> Path:
    """The PEM file of the trust anchor the sellado's keys chain to: ``ca.pem`` of the
    production key files, or the development PKI's root under the data dir. What the
    embedded platform tells the tramitador to trust (it may not import the sellado)."""
    if settings.sellado_pkcs12_dir is not None:
        return settings.sellado_pkcs12_dir / "ca.pem"
    return DevPki.root_path(settings.data_dir / "pki")


def build_trust(
    settings: Settings, db: Database, documents: CpuPool | None = None
) -> TrustServices:
    """Loads (production) or creates (development) the keys and builds the TSA.

    With ``documents``, seals are made in those worker processes.
    """
    if settings.sellado_pkcs12_dir is None and settings.environment == "production":
        raise ValueError("SELLADO_PKCS12_DIR is required in production (no development keys)")
    policy = settings.tsa_policy_oid
    if policy is None:
        if settings.environment == "production":
            raise ValueError("TSA_POLICY_OID is required in production")
        policy = DEVELOPMENT_POLICY_OID
    if settings.sellado_pkcs12_dir is not None:
        secret = settings.sellado_pkcs12_passphrase
        source = KeySource(
            policy,
            pkcs12_dir=settings.sellado_pkcs12_dir,
            passphrase=secret.get_secret_value().encode() if secret else None,
        )
    else:
        source = KeySource(policy, pki_dir=settings.data_dir / "pki")
    pki = source.open()
    tsa = TimeStampAuthority(pki.tsa, policy_oid=policy, serials=PostgresSerialSource(db))
    return TrustServices(pki=pki, tsa=tsa, documents=documents, source=source)
