"""PAdES sealing: a council's electronic seal (sello de órgano) on a PDF.

The result is a PAdES baseline B-T signature (ETSI EN 319 142-1): a detached
CAdES container (``ETSI.CAdES.detached``) carrying the seal certificate and its
chain, the signing-certificate-v2 attribute and a signature time-stamp from our
own time-stamping authority. The time-stamp is what makes it B-T rather than
B-B: the signing time is vouched for by an authority, not read from the
signer's clock. Revocation data and archive time-stamps (LT/LTA) are a later,
separate step.

The PDF is extended with an incremental update, so the bytes of the original
document stay untouched and earlier signatures remain valid.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import struct
import threading
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from typing import Any, Protocol

from asn1crypto import cms, core, tsp
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from pyhanko.pdf_utils.crypt import AuthStatus
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.general import SigningError, get_pyca_cryptography_hash
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore

from services.sellado.plantilla_cms import PlantillaCms

__all__ = [
    "DEFAULT_FIELD_NAME",
    "DEFAULT_TOKEN_SIZE_BOUND",
    "InProcessTimeStamper",
    "InvalidPdf",
    "KEY_STATS",
    "PARSE_ERRORS",
    "SealingKey",
    "TsaResponder",
    "VisibleAppearance",
    "open_pdf",
    "seal_pdf",
]

DEFAULT_FIELD_NAME = "SelloOrgano"
# Room for the signature time-stamp when the TSA does not say how large its tokens are:
# ample for a token carrying a TSA certificate and an intermediate one.
DEFAULT_TOKEN_SIZE_BOUND = 8192

# Errors a malformed PDF can raise from deep inside the parser: the reader is
# lazy and hand-rolled, so broken input surfaces as any of these, not only as
# PdfError (a fuzzed PDF also yields decimal.InvalidOperation, an ArithmeticError).
# Time-stamping failures are OSErrors and stay out of this list.
PARSE_ERRORS: tuple[type[BaseException], ...] = (
    PdfError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    AssertionError,
    EOFError,
    ArithmeticError,
    RecursionError,
    UnicodeError,
    struct.error,
    zlib.error,
)

TsaResponder = Callable[[bytes], bytes | Awaitable[bytes]]
"""An RFC 3161 responder: DER ``TimeStampReq`` in, DER ``TimeStampResp`` out."""


class InvalidPdf(ValueError):
    """The bytes are not a PDF this service can seal or verify (garbage, broken, encrypted)."""


class SealingKey(Protocol):
    """What sealing needs from a key pair (``services.sellado.pki.KeyPair`` fits)."""

    @property
    def certificate(self) -> x509.Certificate: ...

    @property
    def private_key(self) -> CertificateIssuerPrivateKeyTypes: ...

    @property
    def chain(self) -> tuple[x509.Certificate, ...]: ...


@dataclass(frozen=True)
class VisibleAppearance:
    """A visible stamp for the seal: where it goes and whose name it shows.

    ``page`` is zero-based (``-1`` is the last page); ``box`` is
    ``(x1, y1, x2, y2)`` in PDF points from the bottom-left corner. ``entidad``
    is the council's name as printed; when omitted, the seal certificate's
    organisation (or common name) is used.
    """

    page: int = 0
    box: tuple[int, int, int, int] = (36, 36, 286, 106)
    entidad: str | None = None


class InProcessTimeStamper(TimeStamper):
    """A pyhanko timestamper that asks our own TSA in-process instead of over HTTP.

    Sealing and the TSA live in the same service; going through HTTP would only
    add a network hop and a failure mode. ``respond`` may be sync or async.
    """

    def __init__(self, respond: TsaResponder, *, include_nonce: bool = True) -> None:
        super().__init__(include_nonce=include_nonce)
        self._respond = respond

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        """Hands the DER request to the responder and parses its DER answer."""
        answer = self._respond(req.dump())
        raw = await answer if inspect.isawaitable(answer) else answer
        if not isinstance(raw, bytes | bytearray):
            raise TimestampRequestError("The time-stamping authority did not answer bytes.")
        try:
            # asn1crypto parses lazily; reading the status forces the decode, so a
            # malformed answer fails here and not halfway through signing.
            outcome = _StatusOnly.load(bytes(raw))
            status_info = outcome["status"]
            status = status_info["status"].native
        except ValueError as exc:
            raise TimestampRequestError("The time-stamping authority answered garbage.") from exc
        if status not in ("granted", "granted_with_mods"):
            texts = "; ".join(status_info["status_string"].native or [])
            failures = "; ".join(sorted(status_info["fail_info"].native or []))
            raise TimestampRequestError(
                f'The time-stamping authority refused the request: "{texts}" ({failures})'
            )
        return tsp.TimeStampResp.load(bytes(raw))


class _StatusOnly(core.Sequence):
    """A TimeStampResp whose token is optional, as RFC 3161 says.

    asn1crypto's own ``TimeStampResp`` requires the token, so a rejection (which
    carries none) would otherwise read as garbage and hide the TSA's reason.
    """

    _fields = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def open_pdf(pdf: bytes) -> PdfFileReader:
    """Parses ``pdf`` for reading, turning every parser failure into :class:`InvalidPdf`.

    An encrypted PDF is opened only when it has an empty user password (the
    common "owner password only" case); otherwise it cannot be read at all.
    """
    # Readers accept the header anywhere in the first KiB (ISO 32000-1, annex H).
    if b"%PDF-" not in pdf[:1024]:
        raise InvalidPdf("El fichero no es un PDF (falta la cabecera %PDF-).")
    try:
        reader = PdfFileReader(BytesIO(pdf))
        if reader.encrypted and reader.decrypt(b"").status == AuthStatus.FAILED:
            raise InvalidPdf("El PDF está protegido con contraseña.")
        # Touching the catalogue and the page tree makes the lazy reader prove
        # the file is structurally usable now, not in the middle of a use case.
        root = reader.root
        root["/Pages"].get_object()["/Count"]  # noqa: B018
    except InvalidPdf:
        raise
    except PARSE_ERRORS as exc:
        raise InvalidPdf("El PDF está dañado o no se puede leer.") from exc
    return reader


def _to_asn1_certificate(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


class _LoadedKeySigner(signers.SimpleSigner):
    """pyhanko's in-memory signer, signing with a key object loaded once.

    ``SimpleSigner.sign_raw`` turns its PKCS#8 bytes back into a key object on every
    signature, and OpenSSL checks an RSA key while loading it: about 30 ms for a
    2048-bit key, a hundred times the signature itself. The seal keys live for the
    whole process, so the key object is kept and used directly.
    """

    def __init__(self, *, key: CertificateIssuerPrivateKeyTypes, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._key = key
        self._plantilla: PlantillaCms | None = None
        self._plantilla_lock = asyncio.Lock()

    async def async_sign(
        self,
        data_digest: bytes,
        digest_algorithm: str,
        dry_run: bool = False,
        use_pades: bool = False,
        timestamper: TimeStamper | None = None,
        signed_attr_settings: PdfCMSSignedAttributes | None = None,
        is_pdf_sig: bool = True,
        encap_content_info: Any = None,
    ) -> cms.ContentInfo:
        """A PAdES seal from the key's prepared container; anything else goes to pyhanko.

        The prepared path covers what the sellado asks for: a PDF signature at PAdES with
        SHA-256, no extra signed attributes. It signs once and
        asks the time-stamper once, as pyhanko does, but joins constant DER pieces
        instead of rebuilding the structure (see :mod:`services.sellado.plantilla_cms`).
        """
        if not dry_run and self._fits_plantilla(
            digest_algorithm, use_pades, signed_attr_settings, is_pdf_sig, encap_content_info
        ):
            plantilla = await self._plantilla_for_key()
            attrs = plantilla.signed_attrs_for(data_digest)
            signature = await self.async_sign_raw(attrs, "sha256")
            token: bytes | None = None
            if timestamper is not None:
                over = hashlib.sha256(signature).digest()
                token = (await timestamper.async_timestamp(over, "sha256")).dump()
            return cms.ContentInfo.load(plantilla.container(attrs, signature, token))
        return await super().async_sign(
            data_digest,
            digest_algorithm,
            dry_run=dry_run,
            use_pades=use_pades,
            timestamper=timestamper,
            signed_attr_settings=signed_attr_settings,
            is_pdf_sig=is_pdf_sig,
            encap_content_info=encap_content_info,
        )

    def _fits_plantilla(
        self,
        digest_algorithm: str,
        use_pades: bool,
        settings: PdfCMSSignedAttributes | None,
        is_pdf_sig: bool,
        encap_content_info: Any,
    ) -> bool:
        # With PAdES the signing time is not a signed attribute (the /M entry carries
        # it), so only the CAdES and Adobe revocation extras would change the template.
        plain_attrs = settings is None or (
            settings.cades_signed_attrs is None and settings.adobe_revinfo_attr is None
        )
        return (
            use_pades
            and is_pdf_sig
            and plain_attrs
            and encap_content_info is None
            and digest_algorithm.lower() == "sha256"
            and self.signed_attr_prov_spec is None
            and self.unsigned_attr_prov_spec is None
            and not self.attribute_certs
        )

    async def _plantilla_for_key(self) -> PlantillaCms:
        """The key's container template, made on its first seal from pyhanko's own."""
        if self._plantilla is None:
            async with self._plantilla_lock:
                if self._plantilla is None:
                    marker = hashlib.sha256(b"consistorio: plantilla del sello").digest()
                    container = await super().async_sign(
                        marker, "sha256", use_pades=True, is_pdf_sig=True
                    )
                    self._plantilla = PlantillaCms.from_container(container, marker)
        return self._plantilla

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        """Signs with the loaded key; mechanisms other than RSA and ECDSA go to pyhanko."""
        try:
            name = self.get_signature_mechanism_for_digest(digest_algorithm).signature_algo
        except ValueError:
            name = None
        key = self._key
        if isinstance(key, rsa.RSAPrivateKey) and name == "rsassa_pkcs1v15":
            return key.sign(data, PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))
        if isinstance(key, ec.EllipticCurvePrivateKey) and name == "ecdsa":
            algorithm = ec.ECDSA(get_pyca_cryptography_hash(digest_algorithm))
            return key.sign(data, algorithm)
        return super().sign_raw(data, digest_algorithm)


@dataclass
class _PreparedKey:
    """A seal key ready to sign with: the signer, and the room its signatures need."""

    signer: signers.SimpleSigner
    bytes_reserved: dict[int, int]


class _KeyStats:
    """How many times a seal key was prepared (loaded into a signer) in this process.

    An instrumentation hook: a test seals several documents with one key and checks
    that the key was prepared once, without timing anything.
    """

    preparations = 0


KEY_STATS = _KeyStats()
_prepared: dict[bytes, _PreparedKey] = {}
_prepared_lock = threading.Lock()


def _prepared_for(keypair: SealingKey) -> _PreparedKey:
    """The signer of ``keypair``, made on its first seal in this process and kept."""
    fingerprint = keypair.certificate.fingerprint(hashes.SHA256())
    prepared = _prepared.get(fingerprint)
    if prepared is not None:
        return prepared
    with _prepared_lock:
        prepared = _prepared.get(fingerprint)
        if prepared is None:
            leaf = _to_asn1_certificate(keypair.certificate)
            key_der = keypair.private_key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            others = [_to_asn1_certificate(c) for c in keypair.chain if c != keypair.certificate]
            signer = _LoadedKeySigner(
                key=keypair.private_key,
                signing_cert=leaf,
                signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
                cert_registry=SimpleCertificateStore.from_certs(others),
            )
            prepared = _prepared[fingerprint] = _PreparedKey(signer, {})
            KEY_STATS.preparations += 1
    return prepared


async def _bytes_reserved(prepared: _PreparedKey, token_size_bound: int) -> int:
    """The room for a signature of this key with a time-stamp token of at most that size.

    Measured once per key (and bound) on a placeholder signature without a token, as
    pyhanko's own estimate does, but with no time-stamp: pyhanko's estimate asks the
    TSA for a token and signs twice on every seal. Twice the DER size, since the PDF
    holds it in hexadecimal; a quarter more for the few bytes a real signature may vary.
    """
    reserved = prepared.bytes_reserved.get(token_size_bound)
    if reserved is None:
        placeholder = await prepared.signer.async_sign(
            hashes.Hash(hashes.SHA256()).finalize(),
            "sha256",
            use_pades=True,
            dry_run=True,
            signed_attr_settings=PdfCMSSignedAttributes(signing_time=datetime.now(UTC)),
        )
        size = len(placeholder.dump()) + token_size_bound
        reserved = prepared.bytes_reserved[token_size_bound] = 2 * (size + size // 4)
    return reserved


def _subject_name(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def _stamp_for(
    appearance: VisibleAppearance, keypair: SealingKey
) -> tuple[TextStampStyle, dict[str, Any]]:
    entidad = (
        appearance.entidad
        or _subject_name(keypair.certificate, x509.NameOID.ORGANIZATION_NAME)
        or _subject_name(keypair.certificate, x509.NameOID.COMMON_NAME)
        or ""
    )
    style = TextStampStyle(
        stamp_text="Sello electrónico de\n%(entidad)s\nFecha: %(ts)s",
        timestamp_format="%d/%m/%Y %H:%M:%S %Z",
        border_width=1,
    )
    return style, {"entidad": entidad}


async def seal_pdf(
    pdf: bytes,
    *,
    keypair: SealingKey,
    timestamper: TimeStamper,
    appearance: VisibleAppearance | None = None,
    reason: str | None = None,
    location: str | None = None,
    field_name: str = DEFAULT_FIELD_NAME,
    token_size_bound: int = DEFAULT_TOKEN_SIZE_BOUND,
) -> bytes:
    """Seals ``pdf`` with ``keypair`` at PAdES baseline B-T and returns the sealed bytes.

    Raises :class:`InvalidPdf` for input that is not a usable PDF (including an
    encrypted one: re-encrypting needs the owner's password, which we never
    hold) or that already has a signature in the field ``field_name``. An empty
    signature field of that name, prepared in the document, is signed into and
    keeps its own position (``appearance`` then only sets the stamp's text).
    Time-stamping failures propagate as pyhanko's ``TimestampRequestError``:
    they are an outage, not a problem with the document.

    The key is prepared once per process and the signature's room once per key and
    ``token_size_bound`` (the largest token the TSA may answer, in DER bytes), so a
    seal signs once and asks the TSA once.
    """
    reader = open_pdf(pdf)
    if reader.encrypted:
        raise InvalidPdf("No se puede sellar un PDF cifrado.")
    try:
        writer = IncrementalPdfFileWriter.from_reader(reader)
        # name -> already signed? An empty field prepared for the seal is signed
        # into; a signed one is never overwritten.
        existing = {
            name: value is not None for name, value, _ in fields.enumerate_sig_fields(reader)
        }
        if appearance is not None and field_name not in existing:
            page_count = int(writer.root["/Pages"]["/Count"])
            if not -page_count <= appearance.page < page_count:
                raise InvalidPdf(f"El PDF no tiene la página {appearance.page} (0 es la primera).")
    except InvalidPdf:
        raise
    except PARSE_ERRORS as exc:
        raise InvalidPdf("El PDF está dañado o no se puede leer.") from exc
    if existing.get(field_name):
        raise InvalidPdf(f"El PDF ya tiene una firma en el campo {field_name!r}.")

    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm="sha256",
        subfilter=SigSeedSubFilter.PADES,
        reason=reason,
        location=location,
    )
    field_spec: fields.SigFieldSpec | None = None
    stamp_style: TextStampStyle | None = None
    text_params: dict[str, Any] | None = None
    if appearance is not None:
        if field_name not in existing:
            field_spec = fields.SigFieldSpec(
                sig_field_name=field_name, on_page=appearance.page, box=appearance.box
            )
        stamp_style, text_params = _stamp_for(appearance, keypair)

    prepared = _prepared_for(keypair)
    bytes_reserved = await _bytes_reserved(prepared, token_size_bound)
    pdf_signer = signers.PdfSigner(
        meta,
        prepared.signer,
        timestamper=timestamper,
        stamp_style=stamp_style,
        new_field_spec=field_spec,
    )
    output = BytesIO()
    try:
        await pdf_signer.async_sign_pdf(
            writer,
            output=output,
            appearance_text_params=text_params,
            bytes_reserved=bytes_reserved,
        )
    except SigningError as exc:
        # With our fixed settings, pyhanko refuses only because of the document:
        # a certification that forbids changes, seed values the seal cannot meet.
        raise InvalidPdf(
            "El PDF no admite el sello: una certificación o su campo de firma lo impiden."
        ) from exc
    except PARSE_ERRORS as exc:
        # The reader is lazy: objects first touched while building the update
        # (pages, the form) can still turn out to be broken.
        raise InvalidPdf("El PDF está dañado o su formulario no admite el sello.") from exc
    return output.getvalue()
