"""The RFC 3161 time-stamping authority, with RFC 5816's ESSCertIDv2.

:class:`TimeStampAuthority` turns a DER ``TimeStampReq`` into a DER
``TimeStampResp``. It does no I/O of its own except asking its
:class:`SerialSource` for the next serial number, so it runs the same in a unit
test, in the HTTP route and in a benchmark.

Why the encoding is done by hand: a token is mostly constant (certificate,
signer identifier, ESSCertIDv2, algorithm identifiers, TSA name, accuracy, policy).
A responder that rebuilds the whole structure with a generic ASN.1 library
re-encodes those parts on every request and manages about a hundred tokens per
second; this one encodes them once, in ``__init__``, and per request only writes
the few variable fields (imprint, serial, time, nonce, digest, signature) around
them. The request is read by a strict DER reader of the RFC 3161 grammar, which
also rejects BER-only encodings a DER structure must not carry. The constant
parts themselves are built with asn1crypto, so their encoding is the library's.

``respond`` is a coroutine because the serial source may go to the database;
between two blocks of serials it does not suspend at all. Signing (about 20 µs
with P-256) runs on the event loop: a thread hop would cost more than it saves.

Every failure becomes a ``TimeStampResp`` with status ``rejection`` and the
PKIFailureInfo bit RFC 3161 §2.4.2 names; no exception leaves :meth:`respond`.
A rejection carries no token, as RFC 3161 says; asn1crypto 1.5 (hence pyHanko)
wrongly requires one (wbond/asn1crypto#286) and fails to parse it, so its users
read a rejection's status with a TimeStampResp whose token is optional.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import functools
import hashlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import Database
from services.sellado.pki import KeyPair

__all__ = [
    "DEVELOPMENT_POLICY_OID",
    "FailureInfo",
    "InMemorySerialSource",
    "PostgresSerialSource",
    "SerialSource",
    "TimeStampAuthority",
]

_log = logging.getLogger("consistorio.sellado.tsa")

Clock = Callable[[], dt.datetime]

# A UUID-derived OID (ITU-T X.667, arc 2.25), which needs no registration: the
# policy of development tokens. Production names the OID of its TSA practice statement.
DEVELOPMENT_POLICY_OID = "2.25.273352060393110435096656259436879203071"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- serial numbers --------------------------------------------------------------------


class SerialSource(Protocol):
    """Hands out TSTInfo serial numbers: unique per TSA, for ever (RFC 3161 §2.4.2)."""

    async def next(self) -> int:
        """The next unused serial number (positive)."""
        ...


class InMemorySerialSource:
    """Counts in memory: for unit tests only, since a restart would reuse serials."""

    def __init__(self, start: int = 1) -> None:
        self._counter = itertools.count(start)

    async def next(self) -> int:
        """The next number of the counter."""
        return next(self._counter)


class PostgresSerialSource:
    """Serials reserved in blocks from a PostgreSQL sequence (``INCREMENT BY block``).

    One ``nextval`` reserves ``block`` serials ``[v, v + block - 1]`` for this
    process, so replicas and restarts never hand out the same serial while paying
    one round trip per block. A restart leaves the rest of its block unused: serials
    must be unique, not gapless. The sequence's increment is checked against
    ``block`` on first use, since a mismatch would make the blocks of two replicas
    overlap.
    """

    def __init__(
        self,
        engine_or_db: AsyncEngine | Database,
        *,
        block: int = 1000,
        sequence: str = "sellado.tsa_serial",
    ) -> None:
        if block < 1:
            raise ValueError("block must be positive")
        schema, _, name = sequence.rpartition(".")
        if not schema or not name:
            raise ValueError("sequence must be schema-qualified, e.g. sellado.tsa_serial")
        self._engine = engine_or_db.engine if isinstance(engine_or_db, Database) else engine_or_db
        self._block = block
        self._sequence = sequence
        self._schema, self._name = schema, name
        self._next = 1
        self._last = 0
        self._checked = False
        self._lock = asyncio.Lock()
        self.blocks_reserved = 0

    async def next(self) -> int:
        """The next serial of the current block, reserving a new block when it is spent."""
        # No await between the check and the increment: coroutines cannot interleave.
        while self._next > self._last:
            await self._reserve()
        value = self._next
        self._next += 1
        return value

    async def _reserve(self) -> None:
        async with self._lock:
            if self._next <= self._last:
                return
            async with self._engine.begin() as conn:
                if not self._checked:
                    increment = (
                        await conn.execute(
                            text(
                                "SELECT increment_by FROM pg_sequences "
                                "WHERE schemaname = :schema AND sequencename = :name"
                            ),
                            {"schema": self._schema, "name": self._name},
                        )
                    ).scalar_one_or_none()
                    if increment is None:
                        raise LookupError(f"sequence {self._sequence} does not exist")
                    if increment != self._block:
                        raise ValueError(
                            f"sequence {self._sequence} increments by {increment}, "
                            f"but blocks of {self._block} were asked for"
                        )
                    self._checked = True
                start = (
                    await conn.execute(
                        text("SELECT nextval(CAST(:seq AS regclass))"), {"seq": self._sequence}
                    )
                ).scalar_one()
            self._next, self._last = int(start), int(start) + self._block - 1
            self.blocks_reserved += 1


# -- DER -------------------------------------------------------------------------------


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _len(len(content)) + content


def _integer(value: int) -> bytes:
    size = ((value if value >= 0 else ~value).bit_length() + 8) // 8
    return _tlv(0x02, value.to_bytes(size, "big", signed=True))


_SEQUENCE, _SET, _INTEGER, _OCTETS, _OID, _BOOLEAN, _NULL = 0x30, 0x31, 0x02, 0x04, 0x06, 0x01, 0x05
_CONTEXT_0 = 0xA0


class _Malformed(Exception):
    """The request is not DER of the TimeStampReq grammar."""


class _Reader:
    """Reads DER TLVs of ``data[pos:end]`` one after another (single-octet tags only)."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < self.end else None

    def read(self, tag: int) -> tuple[int, int, int]:
        """Reads one TLV with ``tag``; returns (start of TLV, start, end of content)."""
        data, start = self.data, self.pos
        if start + 2 > self.end or data[start] != tag:
            raise _Malformed
        first = data[start + 1]
        pos = start + 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            # 0x80 is BER's indefinite length; DER lengths are minimal and short here.
            if count == 0 or count > 3 or pos + count > self.end or data[pos] == 0:
                raise _Malformed
            length = int.from_bytes(data[pos : pos + count], "big")
            if length < 0x80:
                raise _Malformed
            pos += count
        if pos + length > self.end:
            raise _Malformed
        self.pos = pos + length
        return start, pos, pos + length

    def read_integer(self) -> tuple[int, int]:
        """Reads an INTEGER; returns (value, start of its TLV)."""
        tlv, start, end = self.read(_INTEGER)
        content = self.data[start:end]
        if not content or (
            len(content) > 1
            and (
                (content[0] == 0 and content[1] < 0x80)
                or (content[0] == 0xFF and content[1] >= 0x80)
            )
        ):
            raise _Malformed
        return int.from_bytes(content, "big", signed=True), tlv

    def done(self) -> None:
        if self.pos != self.end:
            raise _Malformed


# -- request ---------------------------------------------------------------------------


class FailureInfo(enum.Enum):
    """PKIFailureInfo bits a rejection carries (RFC 3161 §2.4.2), by asn1crypto name."""

    BAD_ALG = "bad_alg"
    BAD_REQUEST = "bad_request"
    BAD_DATA_FORMAT = "bad_data_format"
    UNACCEPTED_POLICY = "unaccepted_policy"
    UNACCEPTED_EXTENSION = "unaccepted_extensions"
    SYSTEM_FAILURE = "system_failure"


class _Rejected(Exception):
    def __init__(self, failure: FailureInfo, reason: str) -> None:
        super().__init__(reason)
        self.failure = failure
        self.reason = reason


def _oid_content(dotted: str) -> bytes:
    return core.ObjectIdentifier(dotted).contents


# Hash algorithms a message imprint may use, by the content octets of their OID.
_IMPRINT_ALGORITHMS: dict[bytes, tuple[str, int]] = {
    _oid_content("2.16.840.1.101.3.4.2.1"): ("SHA-256", 32),
    _oid_content("2.16.840.1.101.3.4.2.2"): ("SHA-384", 48),
    _oid_content("2.16.840.1.101.3.4.2.3"): ("SHA-512", 64),
}
_NULL_PARAMETERS = b"\x05\x00"


@dataclass(frozen=True, slots=True)
class _Request:
    message_imprint: bytes  # the DER of the request's MessageImprint, echoed verbatim
    nonce: bytes  # the DER INTEGER, or b"" when absent
    cert_req: bool


def _algorithm_name(oid_content: bytes) -> str:
    try:
        dotted = core.ObjectIdentifier.load(_tlv(_OID, oid_content)).dotted
    except ValueError:
        return "desconocido"
    name = algos.DigestAlgorithmId._map.get(dotted)
    return f"{name} ({dotted})" if name else dotted


def _parse_request(der: bytes, policy: bytes) -> _Request:
    """Reads a TimeStampReq; raises :class:`_Rejected` naming what is wrong with it."""
    try:
        outer = _Reader(der, 0, len(der))
        _, start, end = outer.read(_SEQUENCE)
        outer.done()
        body = _Reader(der, start, end)
        version, _ = body.read_integer()

        imprint_tlv, start, end = body.read(_SEQUENCE)
        imprint = _Reader(der, start, end)
        _, start, end = imprint.read(_SEQUENCE)
        algorithm = _Reader(der, start, end)
        _, oid_start, oid_end = algorithm.read(_OID)
        parameters = der[algorithm.pos : algorithm.end]
        _, hash_start, hash_end = imprint.read(_OCTETS)
        imprint.done()
        message_imprint = der[imprint_tlv : body.pos]

        req_policy: bytes | None = None
        nonce = b""
        cert_req = False
        extensions = False
        if body.peek() == _OID:
            tlv, _, end = body.read(_OID)
            req_policy = der[tlv:end]
        if body.peek() == _INTEGER:
            _, tlv = body.read_integer()
            nonce = der[tlv : body.pos]
        if body.peek() == _BOOLEAN:
            _, start, end = body.read(_BOOLEAN)
            if end - start != 1:
                raise _Malformed
            cert_req = der[start] != 0
        if body.peek() == _CONTEXT_0:
            body.read(_CONTEXT_0)
            extensions = True
        body.done()
    except _Malformed:
        raise _Rejected(
            FailureInfo.BAD_DATA_FORMAT, "La petición no es un TimeStampReq en DER."
        ) from None

    if version != 1:
        raise _Rejected(FailureInfo.BAD_REQUEST, f"Versión de TimeStampReq no admitida: {version}.")
    oid = der[oid_start:oid_end]
    known = _IMPRINT_ALGORITHMS.get(oid)
    if known is None:
        raise _Rejected(
            FailureInfo.BAD_ALG,
            f"Algoritmo de resumen no admitido: {_algorithm_name(oid)}; "
            "se admiten SHA-256, SHA-384 y SHA-512.",
        )
    name, size = known
    if parameters not in (b"", _NULL_PARAMETERS):
        raise _Rejected(FailureInfo.BAD_ALG, f"Parámetros de {name} no válidos.")
    if hash_end - hash_start != size:
        raise _Rejected(
            FailureInfo.BAD_REQUEST,
            f"El resumen mide {hash_end - hash_start} octetos; {name} mide {size}.",
        )
    if req_policy is not None and req_policy != policy:
        raise _Rejected(
            FailureInfo.UNACCEPTED_POLICY,
            f"Política de sellado no aceptada: {core.ObjectIdentifier.load(req_policy).dotted}.",
        )
    if extensions:
        raise _Rejected(FailureInfo.UNACCEPTED_EXTENSION, "No se admiten extensiones.")
    return _Request(message_imprint, nonce, cert_req)


@functools.lru_cache(maxsize=128)
def _rejection(failure: FailureInfo, reason: str) -> bytes:
    status = tsp.PKIStatusInfo(
        {"status": "rejection", "status_string": [reason], "fail_info": {failure.value}}
    )
    # TimeStampResp without a token: the SEQUENCE holds the status alone.
    return _tlv(_SEQUENCE, status.dump())


# -- the authority ---------------------------------------------------------------------


_GRANTED = tsp.PKIStatusInfo({"status": "granted"}).dump()
_OID_SIGNED_DATA = core.ObjectIdentifier("1.2.840.113549.1.7.2").dump()
_OID_TST_INFO = core.ObjectIdentifier("1.2.840.113549.1.9.16.1.4").dump()
_OID_MESSAGE_DIGEST = core.ObjectIdentifier("1.2.840.113549.1.9.4").dump()
_VERSION_1 = _integer(1)
_VERSION_3 = _integer(3)


@dataclass(frozen=True, slots=True)
class _SignatureScheme:
    digest: str  # asn1crypto / hashlib name
    signature_algorithm: str  # asn1crypto name


def _scheme(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> _SignatureScheme:
    if isinstance(key, rsa.RSAPrivateKey):
        return _SignatureScheme("sha256", "sha256_rsa")
    # The digest follows the curve's strength (RFC 5753 §7.1.3 pairs them so).
    bits = key.curve.key_size
    digest = "sha256" if bits <= 256 else "sha384" if bits <= 384 else "sha512"
    return _SignatureScheme(digest, f"{digest}_ecdsa")


def _require_tsa_certificate(certificate: x509.Certificate) -> None:
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        eku = None
    if eku is None or not eku.critical or list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise ValueError(
            "a TSA certificate needs a critical extendedKeyUsage of timeStamping alone "
            "(RFC 3161 §2.3)"
        )


def _generalized_time(now: dt.datetime) -> bytes:
    stamp = now.strftime("%Y%m%d%H%M%S")
    if now.microsecond:
        # GeneralizedTime in DER: fraction without trailing zeros, no dot when zero.
        stamp += "." + f"{now.microsecond:06d}".rstrip("0")
    return _tlv(0x18, stamp.encode("ascii") + b"Z")


class TimeStampAuthority:
    """Answers RFC 3161 requests with tokens signed by ``keypair`` (see the module docstring).

    ``policy_oid`` is the TSA policy written in every token; a request naming
    another policy is rejected. ``accuracy_ms`` is the accuracy declared in the
    tokens. ``clock`` returns an aware datetime (tests freeze it).
    ``include_tsa_name`` writes the TSA's subject in TSTInfo's ``tsa`` field.
    """

    def __init__(
        self,
        keypair: KeyPair,
        *,
        policy_oid: str,
        serials: SerialSource,
        accuracy_ms: int = 1000,
        clock: Clock = _utc_now,
        include_tsa_name: bool = True,
    ) -> None:
        if accuracy_ms < 1:
            raise ValueError("accuracy_ms must be positive")
        _require_tsa_certificate(keypair.certificate)
        self.keypair = keypair
        self.policy_oid = policy_oid
        self._serials = serials
        self._clock = clock
        self._key = keypair.private_key
        scheme = _scheme(self._key)
        self._hash = getattr(hashlib, scheme.digest)
        self._sign = _signer(self._key, _hash_of(scheme.digest))

        certificate_der = keypair.certificate.public_bytes(serialization.Encoding.DER)
        certificate = asn1_x509.Certificate.load(certificate_der)
        self._policy = core.ObjectIdentifier(policy_oid).dump()

        # TSTInfo parts after the serial and time.
        seconds, millis = divmod(accuracy_ms, 1000)
        accuracy: dict[str, int] = {}
        if seconds:
            accuracy["seconds"] = seconds
        if millis:
            accuracy["millis"] = millis
        self._accuracy = tsp.Accuracy(accuracy).dump()
        self._tsa_name = (
            _tlv(_CONTEXT_0, asn1_x509.GeneralName({"directory_name": certificate.subject}).dump())
            if include_tsa_name
            else b""
        )

        # Signed attributes: content-type and signingCertificateV2 are constant, the
        # message digest changes; DER sorts the SET by encoding, and lengths and OIDs
        # alone fix that order, so it is found once with a placeholder digest.
        # No signing-time: genTime is the token's time, and a second, coarser one
        # could only disagree with it.
        content_type = cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}).dump()
        signing_certificate = cms.CMSAttribute(
            {
                "type": "signing_certificate_v2",
                "values": [
                    {
                        "certs": [
                            {
                                # hashAlgorithm left out: SHA-256 is its DEFAULT.
                                "cert_hash": hashlib.sha256(certificate_der).digest(),
                                "issuer_serial": {
                                    "issuer": [
                                        asn1_x509.GeneralName(
                                            {"directory_name": certificate.issuer}
                                        )
                                    ],
                                    "serial_number": certificate.serial_number,
                                },
                            }
                        ]
                    }
                ],
            }
        ).dump()
        digest_size = self._hash().digest_size
        content = _OID_MESSAGE_DIGEST + _tlv(_SET, _tlv(_OCTETS, bytes(digest_size)))
        self._digest_attribute_prefix = (
            bytes((_SEQUENCE,)) + _len(len(content)) + content[:-digest_size]
        )
        placeholder = self._digest_attribute_prefix + bytes(digest_size)
        ordered = sorted([content_type, signing_certificate, placeholder])
        split = ordered.index(placeholder)
        self._attributes_before = b"".join(ordered[:split])
        self._attributes_after = b"".join(ordered[split + 1 :])
        self._attributes_length = len(b"".join(ordered))
        self._attributes_header = _len(self._attributes_length)

        digest_algorithm = algos.DigestAlgorithm({"algorithm": scheme.digest}).dump()
        signer_identifier = cms.SignerIdentifier(
            {
                "issuer_and_serial_number": {
                    "issuer": certificate.issuer,
                    "serial_number": certificate.serial_number,
                }
            }
        ).dump()
        self._signer_info_head = _VERSION_1 + signer_identifier + digest_algorithm
        self._signature_algorithm = algos.SignedDigestAlgorithm(
            {"algorithm": scheme.signature_algorithm}
        ).dump()
        self._signed_data_head = _VERSION_3 + _tlv(_SET, digest_algorithm)
        # certReq: the TSA certificate and any intermediate issuer, never the root
        # (the relying party anchors that itself); a DER SET OF sorts its members.
        issued = [c for c in keypair.chain if c.issuer != c.subject]
        members = sorted(
            [certificate_der, *(c.public_bytes(serialization.Encoding.DER) for c in issued)]
        )
        self._certificates = _tlv(_CONTEXT_0, b"".join(members))

    async def reserve_serial(self) -> int:
        """A serial number for a token made elsewhere with this TSA's key (a document worker).

        The serial source is the one place that keeps serials unique, so a worker
        process that time-stamps a seal asks the service for its serial first.
        """
        return await self._serials.next()

    def token_size_bound(self) -> int:
        """The most DER bytes a token of this TSA takes, whatever the request.

        A PAdES seal reserves room for its signature before the token exists; with this
        bound it reserves once per key instead of asking for a trial token per seal.
        The constant parts are counted exactly; what depends on the request (imprint up
        to SHA-512, nonce, serial, time, the signature's own size) by its largest value.
        """
        key = self._key
        if isinstance(key, rsa.RSAPrivateKey):
            signature = (key.key_size + 7) // 8
        else:
            signature = 2 * ((key.curve.key_size + 7) // 8 + 3) + 6
        constant = (
            len(self._certificates)
            + len(self._tsa_name)
            + len(self._policy)
            + len(self._accuracy)
            + self._attributes_length
            + len(self._signer_info_head)
            + len(self._signature_algorithm)
            + len(self._signed_data_head)
            + len(_OID_TST_INFO)
            + len(_OID_SIGNED_DATA)
            + len(_GRANTED)
        )
        # imprint (SHA-512 and its OID), nonce and serial (up to 64 octets each), time,
        # and the tag-length headers of a dozen nested structures.
        variable = 96 + 2 * 66 + 24 + 12 * 6
        return constant + signature + variable

    async def respond(self, request_der: bytes) -> bytes:
        """A DER TimeStampResp for a DER TimeStampReq: a token, or a rejection saying why."""
        try:
            request = _parse_request(request_der, self._policy)
        except _Rejected as rejected:
            return _rejection(rejected.failure, rejected.reason)
        try:
            return self._token(request, await self._serials.next(), self._now())
        except Exception:
            # The exception names no key material (cryptography and the database
            # driver never put it in messages), so it can be logged for the operator.
            _log.exception("time stamp failed")
            return _rejection(
                FailureInfo.SYSTEM_FAILURE, "Error interno de la autoridad de sellado de tiempo."
            )

    def _now(self) -> dt.datetime:
        now = self._clock()
        offset = now.utcoffset()
        if offset is None:
            raise ValueError("the TSA clock returned a naive datetime")
        return now.astimezone(dt.UTC) if offset else now

    def _token(self, request: _Request, serial: int, now: dt.datetime) -> bytes:
        tst_info = _tlv(
            _SEQUENCE,
            b"".join(
                (
                    _VERSION_1,
                    self._policy,
                    request.message_imprint,
                    _integer(serial),
                    _generalized_time(now),
                    self._accuracy,
                    # ordering is FALSE by DEFAULT, so DER leaves it out.
                    request.nonce,
                    self._tsa_name,
                )
            ),
        )
        attributes = b"".join(
            (
                self._attributes_before,
                self._digest_attribute_prefix,
                self._hash(tst_info).digest(),
                self._attributes_after,
            )
        )
        # Signed as an explicit SET OF (RFC 5652 §5.4), carried as [0] IMPLICIT.
        signature = self._sign(b"\x31" + self._attributes_header + attributes)
        signer_info = _tlv(
            _SEQUENCE,
            b"".join(
                (
                    self._signer_info_head,
                    b"\xa0",
                    self._attributes_header,
                    attributes,
                    self._signature_algorithm,
                    _tlv(_OCTETS, signature),
                )
            ),
        )
        signed_data = _tlv(
            _SEQUENCE,
            b"".join(
                (
                    self._signed_data_head,
                    _tlv(_SEQUENCE, _OID_TST_INFO + _tlv(_CONTEXT_0, _tlv(_OCTETS, tst_info))),
                    self._certificates if request.cert_req else b"",
                    _tlv(_SET, signer_info),
                )
            ),
        )
        token = _tlv(_SEQUENCE, _OID_SIGNED_DATA + _tlv(_CONTEXT_0, signed_data))
        return _tlv(_SEQUENCE, _GRANTED + token)


def _signer(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, digest: hashes.HashAlgorithm
) -> Callable[[bytes], bytes]:
    """``sign(data)`` with the scheme objects made once (CMS: PKCS#1 v1.5 or DER ECDSA)."""
    if isinstance(key, rsa.RSAPrivateKey):
        rsa_key, pkcs1 = key, padding.PKCS1v15()
        return lambda data: rsa_key.sign(data, pkcs1, digest)
    ec_key, ecdsa = key, ec.ECDSA(digest)
    return lambda data: ec_key.sign(data, ecdsa)


def _hash_of(name: str) -> hashes.HashAlgorithm:
    return {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[name]
