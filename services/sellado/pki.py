"""Keys and certificates the sellado service signs with.

Production loads each council's seal and the TSA's key from PKCS#12 files issued
by a qualified provider (:func:`load_pkcs12`). Development and tests have no such
provider, so :class:`DevPki` makes a small hierarchy under the data dir on first
use and reloads it afterwards, so tokens and seals made before a restart still
validate after it:

* a root CA, the one trust anchor (``GET /pki/ca.pem``);
* a time-stamping certificate, ECDSA P-256 because every token is signed with it
  and P-256 signs several times faster than RSA-2048;
* one electronic-seal certificate (sello de órgano) per council, RSA-2048 (see
  :meth:`DevPki.seal_for` for why).

Private keys are written PKCS#8 with mode 0600 and never logged; errors name files,
never their contents.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "DevPki",
    "KeyFileError",
    "KeyPair",
    "PrivateKey",
    "ROOT_CA_NAME",
    "TSA_NAME",
    "load_pkcs12",
]

_log = logging.getLogger("consistorio.sellado.pki")

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

ROOT_CA_NAME = "Consistorio Development Root CA"
TSA_NAME = "Consistorio Development TSA"
_DEV_ORGANIZATION = "Consistorio (desarrollo)"
_INE = re.compile(r"\d{5}")
# RFC 5280 upper bounds for commonName and organizationName; cryptography counts
# them in UTF-8 octets, so that is what is bounded.
_UB_NAME = 64
_ROOT_DAYS = 3650
_LEAF_DAYS = 825
# A certificate this close to its end is replaced rather than reused.
_RENEW_MARGIN = dt.timedelta(days=7)


class KeyFileError(ValueError):
    """A key or certificate file that cannot be used; the message names the file only."""


def _spki(certificate_or_key: x509.Certificate | PrivateKey) -> bytes:
    public = certificate_or_key.public_key()
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _pem(certificates: Iterable[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


@dataclass(frozen=True)
class KeyPair:
    """A certificate, its private key and its issuers (nearest first, root last).

    ``chain`` holds the issuer chain up to and including the root; it is empty for
    a self-signed certificate. The key is left out of ``repr`` so that a pair
    caught in a log line or a traceback never prints more than its certificate.
    """

    certificate: x509.Certificate
    private_key: PrivateKey = field(repr=False, compare=False)
    chain: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise KeyFileError("only EC and RSA keys are supported")
        if _spki(self.private_key) != _spki(self.certificate):
            raise KeyFileError(
                f"the private key does not match the certificate of "
                f"{self.certificate.subject.rfc4514_string()}"
            )

    @property
    def subject(self) -> str:
        """The certificate's subject, RFC 4514 (for messages and logs)."""
        return self.certificate.subject.rfc4514_string()

    def certificate_pem(self) -> bytes:
        """The certificate alone, PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def chain_pem(self, *, include_root: bool = True) -> bytes:
        """The certificate followed by its issuers, PEM (what verifiers are given).

        ``include_root=False`` leaves out a self-signed last issuer, for callers that
        hand out a chain the relying party anchors in its own trust store.
        """
        issuers = self.chain
        if not include_root and issuers and issuers[-1].issuer == issuers[-1].subject:
            issuers = issuers[:-1]
        return _pem((self.certificate, *issuers))


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    if certificate.issuer != issuer.subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _issuer_chain(
    leaf: x509.Certificate, pool: Iterable[x509.Certificate]
) -> tuple[x509.Certificate, ...]:
    """Orders the certificates that issued ``leaf`` (a PKCS#12 bag has no order)."""
    remaining = list(pool)
    chain: list[x509.Certificate] = []
    current = leaf
    while current.issuer != current.subject:
        parent = next((c for c in remaining if _issued_by(current, c)), None)
        if parent is None:
            break
        chain.append(parent)
        remaining.remove(parent)
        current = parent
    return tuple(chain)


def load_pkcs12(path: Path, passphrase: bytes | None) -> KeyPair:
    """Opens a production key file (a council's seal or the TSA's) as a :class:`KeyPair`.

    The file must hold one private key (EC or RSA) and its certificate; the other
    certificates in it are ordered into the issuer chain and the rest ignored.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path.name}: cannot read the key file ({exc.strerror})") from None
    try:
        key, certificate, extra = pkcs12.load_key_and_certificates(data, passphrase)
    except (ValueError, TypeError):
        # The library's message is generic; dropping the cause keeps the bytes out of logs.
        raise KeyFileError(f"{path.name}: not a PKCS#12 file, or the passphrase is wrong") from None
    if key is None or certificate is None:
        raise KeyFileError(f"{path.name}: the PKCS#12 file lacks a private key or its certificate")
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise KeyFileError(f"{path.name}: only EC and RSA keys are supported")
    return KeyPair(certificate, key, _issuer_chain(certificate, extra))


# -- development hierarchy ---------------------------------------------------------


def _write_private_key(path: Path, key: PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomically(path, pem, 0o600)


def _write_certificate(path: Path, certificate: x509.Certificate) -> None:
    _write_atomically(path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    # Written aside and renamed, so a crash never leaves half a key behind; the
    # explicit fchmod covers a leftover temporary file created with other bits.
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _read_pair(key_path: Path, cert_path: Path) -> tuple[PrivateKey, x509.Certificate] | None:
    if not (key_path.exists() and cert_path.exists()):
        return None
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        raise KeyFileError(
            f"{key_path.name} or {cert_path.name} is not a PEM key/certificate"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise KeyFileError(f"{key_path.name}: only EC and RSA keys are supported")
    if _spki(key) != _spki(certificate):
        # A crash between writing a new key and its certificate: issue both again.
        return None
    return key, certificate


def _current(certificate: x509.Certificate, issuer: x509.Certificate | None) -> bool:
    now = dt.datetime.now(dt.UTC)
    if (
        not certificate.not_valid_before_utc
        <= now
        <= certificate.not_valid_after_utc - _RENEW_MARGIN
    ):
        return False
    return issuer is None or _issued_by(certificate, issuer)


def _bounded(text: str) -> str:
    if len(text.encode()) <= _UB_NAME:
        return text
    while len((text + "…").encode()) > _UB_NAME:
        text = text[:-1]
    return text.rstrip() + "…"


def _ski(key: PrivateKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


class DevPki:
    """The development hierarchy kept under one directory (see the module docstring).

    Build it with :meth:`ensure`. Thread-safe, and safe for two processes sharing
    the directory: issuance happens under an exclusive lock on ``.lock`` there.
    """

    _ROOT = "root-ca"
    _TSA = "tsa"
    _SEALS = "sellos"

    def __init__(self, directory: Path, root: KeyPair, tsa: KeyPair) -> None:
        """Use :meth:`ensure`; this only holds what it made or loaded."""
        self._directory = directory
        self._root = root
        self._tsa = tsa
        self._seals: dict[str, KeyPair] = {}
        self._mutex = threading.Lock()

    @classmethod
    def ensure(cls, directory: Path) -> DevPki:
        """Loads the hierarchy under ``directory``, creating what is missing or expired.

        A new root makes every certificate under it new too; otherwise what exists
        is kept, so a restart keeps validating what was signed before it.
        """
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _file_lock(directory / ".lock"):
            root = cls._ensure_root(directory)
            tsa = cls._ensure_tsa(directory, root)
        return cls(directory, root, tsa)

    @classmethod
    def root_path(cls, directory: Path) -> Path:
        """Where the hierarchy under ``directory`` keeps its trust anchor (PEM): the file
        other services are told to trust."""
        return directory / f"{cls._ROOT}.cert.pem"

    @property
    def directory(self) -> Path:
        """Where the hierarchy lives."""
        return self._directory

    @property
    def root(self) -> x509.Certificate:
        """The trust anchor (its key never leaves this object)."""
        return self._root.certificate

    @property
    def tsa(self) -> KeyPair:
        """The time-stamping key and certificate, chain up to the root."""
        return self._tsa

    def root_pem(self) -> bytes:
        """The trust anchor, PEM (what ``GET /pki/ca.pem`` serves)."""
        return self._root.certificate_pem()

    def seal_for(self, ine: str, nombre: str) -> KeyPair:
        """The electronic seal (sello de órgano) of the council ``ine``, issued on first use.

        RSA-2048, not P-256: the validators a council's documents meet (the AGE's
        @firma/VALIDe, Autofirma, older PDF readers) all take RSA, some still not
        ECDSA, and the qualified seal certificates councils buy are RSA; a seal is
        made a few times per document, so RSA's slower signing does not matter.
        A renamed council gets a new certificate naming it.
        """
        if not _INE.fullmatch(ine):
            raise ValueError("the INE code of an entidad local has five digits")
        nombre = " ".join(nombre.split())
        if not nombre:
            raise ValueError("the council's name is empty")
        with self._mutex:
            cached = self._seals.get(ine)
            if cached is not None and _names_council(cached.certificate, nombre):
                return cached
            seals = self._directory / self._SEALS
            seals.mkdir(exist_ok=True, mode=0o700)
            with _file_lock(self._directory / ".lock"):
                key_path, cert_path = seals / f"{ine}.key.pem", seals / f"{ine}.cert.pem"
                pair = _read_pair(key_path, cert_path)
                if (
                    pair is not None
                    and _current(pair[1], self.root)
                    and _names_council(pair[1], nombre)
                ):
                    seal = KeyPair(pair[1], pair[0], (self.root,))
                else:
                    seal = self._issue_seal(ine, nombre, key_path, cert_path)
            self._seals[ine] = seal
            return seal

    # -- issuance ------------------------------------------------------------------

    @classmethod
    def _ensure_root(cls, directory: Path) -> KeyPair:
        key_path, cert_path = (
            directory / f"{cls._ROOT}.key.pem",
            directory / f"{cls._ROOT}.cert.pem",
        )
        pair = _read_pair(key_path, cert_path)
        if pair is not None and _current(pair[1], None):
            return KeyPair(pair[1], pair[0])
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "ES"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, _DEV_ORGANIZATION),
                x509.NameAttribute(NameOID.COMMON_NAME, ROOT_CA_NAME),
            ]
        )
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_ROOT_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(_ski(key), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private_key(key_path, key)
        _write_certificate(cert_path, certificate)
        _log.info("development root CA created in %s", directory)
        return KeyPair(certificate, key)

    @classmethod
    def _ensure_tsa(cls, directory: Path, root: KeyPair) -> KeyPair:
        key_path, cert_path = directory / f"{cls._TSA}.key.pem", directory / f"{cls._TSA}.cert.pem"
        pair = _read_pair(key_path, cert_path)
        if pair is not None and _current(pair[1], root.certificate):
            return KeyPair(pair[1], pair[0], (root.certificate,))
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "ES"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, _DEV_ORGANIZATION),
                x509.NameAttribute(NameOID.COMMON_NAME, TSA_NAME),
            ]
        )
        certificate = (
            _leaf_builder(root, subject, key)
            # RFC 3161 §2.3: timeStamping must be the only extended key usage, critical.
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            )
            .sign(_key(root), hashes.SHA256())
        )
        _write_private_key(key_path, key)
        _write_certificate(cert_path, certificate)
        _log.info("development TSA certificate issued in %s", directory)
        return KeyPair(certificate, key, (root.certificate,))

    def _issue_seal(self, ine: str, nombre: str, key_path: Path, cert_path: Path) -> KeyPair:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "ES"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, _bounded(nombre)),
                # ETSI EN 319 412-1 §5.1.4 syntax for a national scheme ("IN:" = INE code);
                # a qualified seal names the council's NIF as "VATES-..." instead.
                x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"IN:ES-{ine}"),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, ine),
                x509.NameAttribute(NameOID.COMMON_NAME, _bounded(f"Sello electrónico de {nombre}")),
            ]
        )
        certificate = _leaf_builder(self._root, subject, key).sign(
            _key(self._root), hashes.SHA256()
        )
        _write_private_key(key_path, key)
        _write_certificate(cert_path, certificate)
        _log.info("development seal certificate issued for %s", ine)
        return KeyPair(certificate, key, (self.root,))


def _key(pair: KeyPair) -> ec.EllipticCurvePrivateKey:
    key = pair.private_key
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyFileError("the development root key must be an EC key")
    return key


def _leaf_builder(root: KeyPair, subject: x509.Name, key: PrivateKey) -> x509.CertificateBuilder:
    """An end-entity certificate for signing (digitalSignature + nonRepudiation)."""
    now = dt.datetime.now(dt.UTC)
    not_after = min(now + dt.timedelta(days=_LEAF_DAYS), root.certificate.not_valid_after_utc)
    root_ski = root.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(_ski(key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski.value),
            critical=False,
        )
    )


def _names_council(certificate: x509.Certificate, nombre: str) -> bool:
    names = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return bool(names) and names[0].value == _bounded(nombre)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so two processes never issue the same file at once."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
