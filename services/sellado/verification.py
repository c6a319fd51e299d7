"""Verification of the signatures and seals embedded in a PDF.

A citizen or another administration hands us a PDF and asks whether its seals
hold: the signed bytes are unchanged, the signature is mathematically sound, the
certificate chains to a root we trust, and the time-stamp proves when it was
made. pyhanko does the checking; this module turns its status objects into a
plain report the API can serialise and a person can read.

Trust is explicit: only the roots passed in count (never the operating system's
store), nothing is fetched from the network, and revocation is soft-fail because
the development hierarchy publishes no CRL or OCSP.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import (
    EmbeddedPdfSignature,
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
)
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import (
    DocumentTimestampStatus,
    PdfSignatureStatus,
    SignatureCoverageLevel,
    TimestampSignatureStatus,
)
from pyhanko_certvalidator import ValidationContext

from services.sellado.pades import PARSE_ERRORS, InvalidPdf, open_pdf

__all__ = ["MAX_SIGNATURES", "SignatureReport", "verify_pdf"]

MAX_SIGNATURES = 50

# A seal certificate may assert either usage: qualified seals carry
# nonRepudiation (contentCommitment), many others only digitalSignature.
_SEAL_KEY_USAGE = KeyUsageConstraints(
    key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False
)
# Our dev seals say "IN:ES-03014" (ETSI EN 319 412-1 national scheme for the INE code).
_INE_IN_ORG_ID = re.compile(r"IN:ES-(\d{5})")
_INE = re.compile(r"\d{5}")

_COVERAGE = {
    SignatureCoverageLevel.ENTIRE_FILE: "documento-completo",
    SignatureCoverageLevel.ENTIRE_REVISION: "revision-completa",
    SignatureCoverageLevel.CONTIGUOUS_BLOCK_FROM_START: "bloque-inicial",
    SignatureCoverageLevel.UNCLEAR: "incierta",
}


@dataclass
class SignatureReport:
    """What one embedded signature proves, in terms a person can act on.

    ``intact``: the signed bytes are unchanged. ``valid``: the signature value
    verifies against the certificate's key. ``trusted``: the certificate chains
    to one of the given roots and fits a seal's key usage. ``coverage`` is
    ``documento-completo`` when nothing was appended after signing,
    ``revision-completa`` when later revisions exist (``modification_level`` then
    says what kind), anything else is suspicious. ``errors`` explains, in
    Spanish, every check that failed; it is empty for a good seal.
    """

    field_name: str
    intact: bool
    valid: bool
    trusted: bool
    signer: str | None
    signer_organization: str | None
    signer_ine: str | None
    signing_time: datetime | None
    timestamp_valid: bool | None
    timestamp_authority: str | None
    coverage: str | None
    modification_level: str | None
    kind: str = "firma"
    errors: list[str] = field(default_factory=list)


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _name_part(name: asn1_x509.Name, key: str) -> str | None:
    value = name.native.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value else None


def _ine_of(cert: asn1_x509.Certificate) -> str | None:
    """The council's INE code named in the certificate, if it names one."""
    match = _INE_IN_ORG_ID.fullmatch(_name_part(cert.subject, "organization_identifier") or "")
    if match:
        return match.group(1)
    serial = _name_part(cert.subject, "serial_number") or ""
    return serial if _INE.fullmatch(serial) else None


def _describe(cert: asn1_x509.Certificate) -> str:
    return _name_part(cert.subject, "common_name") or cert.subject.human_friendly


def _timestamp_ok(ts: TimestampSignatureStatus) -> bool:
    return ts.intact and ts.valid and ts.trusted


def _trust_errors(status: TimestampSignatureStatus | PdfSignatureStatus) -> list[str]:
    errors = []
    if not status.intact:
        errors.append("El contenido firmado ha cambiado: el resumen no coincide.")
    if not status.valid:
        errors.append("El valor de la firma no se verifica con la clave del certificado.")
    if status.intact and status.valid and not status.trusted:
        if status.revoked:
            errors.append("El certificado firmante está revocado.")
        else:
            indication = status.trust_problem_indic
            reason = str(indication.standard_name) if indication else "NO_CERTIFICATE_CHAIN_FOUND"
            if reason == "NO_CERTIFICATE_CHAIN_FOUND":
                errors.append("El certificado firmante no enlaza con una raíz de confianza.")
            else:
                # Expired, not yet valid, wrong key usage...: the ETSI EN 319 102-1
                # sub-indication names it precisely, so it is passed on as is.
                errors.append(f"El certificado firmante no es válido para sellar ({reason}).")
    return errors


def _modification_errors(status: PdfSignatureStatus | DocumentTimestampStatus) -> list[str]:
    errors = []
    if status.coverage not in (
        SignatureCoverageLevel.ENTIRE_FILE,
        SignatureCoverageLevel.ENTIRE_REVISION,
    ):
        errors.append("La firma no cubre una revisión completa del documento.")
    if status.docmdp_ok is False:
        errors.append("El documento tiene cambios posteriores a la firma que no están permitidos.")
    return errors


def _signature_report(name: str, status: PdfSignatureStatus) -> SignatureReport:
    cert = status.signing_cert
    ts = status.timestamp_validity
    errors = _trust_errors(status) + _modification_errors(status)
    if ts is not None and not _timestamp_ok(ts):
        errors.append("El sello de tiempo de la firma no es válido o no es de confianza.")
    if status.seed_value_constraint_error is not None:
        errors.append("La firma no cumple las restricciones del campo de firma.")
    level = status.modification_level
    return SignatureReport(
        field_name=name,
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        signer=_describe(cert),
        signer_organization=_name_part(cert.subject, "organization_name"),
        signer_ine=_ine_of(cert),
        signing_time=ts.timestamp if ts is not None else status.signer_reported_dt,
        timestamp_valid=_timestamp_ok(ts) if ts is not None else None,
        timestamp_authority=_describe(ts.signing_cert) if ts is not None else None,
        coverage=_COVERAGE.get(status.coverage) if status.coverage else None,
        modification_level=level.name.lower() if level is not None else None,
        errors=errors,
    )


def _doc_timestamp_report(name: str, status: DocumentTimestampStatus) -> SignatureReport:
    # A document time-stamp (PAdES-LTA) is signed by the TSA itself: its signer
    # is the authority and its time is the token's own.
    errors = _trust_errors(status) + _modification_errors(status)
    level = status.modification_level
    authority = _describe(status.signing_cert)
    return SignatureReport(
        field_name=name,
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        signer=authority,
        signer_organization=_name_part(status.signing_cert.subject, "organization_name"),
        signer_ine=None,
        signing_time=status.timestamp,
        timestamp_valid=_timestamp_ok(status),
        timestamp_authority=authority,
        coverage=_COVERAGE.get(status.coverage) if status.coverage else None,
        modification_level=level.name.lower() if level is not None else None,
        kind="sello-de-tiempo",
        errors=errors,
    )


def _unreadable(name: str) -> SignatureReport:
    return SignatureReport(
        field_name=name,
        intact=False,
        valid=False,
        trusted=False,
        signer=None,
        signer_organization=None,
        signer_ine=None,
        signing_time=None,
        timestamp_valid=None,
        timestamp_authority=None,
        coverage=None,
        modification_level=None,
        errors=["La firma está dañada o no se puede interpretar."],
    )


def _context(roots: list[asn1_x509.Certificate]) -> ValidationContext:
    # A fresh context per signature: contexts cache validated paths and must not
    # carry conclusions from one signature (or one request) to the next.
    return ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")


def verify_pdf_der_roots(pdf: bytes, roots_der: list[bytes]) -> list[SignatureReport]:
    """:func:`verify_pdf` for a worker process: plain arguments in, reports out.

    Parsing and validating run on this process's own loop, so a large or hostile
    PDF costs a worker, not the loop that serves requests.
    """
    roots = [x509.load_der_x509_certificate(der) for der in roots_der]
    return asyncio.run(verify_pdf(pdf, trust_roots=roots))


async def verify_pdf(
    pdf: bytes, *, trust_roots: list[x509.Certificate], max_signatures: int = MAX_SIGNATURES
) -> list[SignatureReport]:
    """Checks every signature and document time-stamp in ``pdf`` against ``trust_roots``.

    Returns one report per filled signature field, in the order they were
    signed (unreadable ones last), or ``[]`` for an unsigned PDF. Raises
    :class:`~services.sellado.pades.InvalidPdf` when ``pdf`` is not a readable
    PDF at all, or when it holds more than ``max_signatures`` signatures (each
    costs a full validation, so an upload must not be able to ask for thousands);
    a damaged signature inside a readable PDF is a report, not an exception.
    """
    reader = open_pdf(pdf)
    roots = [_asn1(c) for c in trust_roots]
    try:
        found = list(enumerate_sig_fields(reader, filled_status=True))
    except PARSE_ERRORS as exc:
        raise InvalidPdf("El PDF está dañado o no se puede leer.") from exc
    if len(found) > max_signatures:
        raise InvalidPdf(f"El PDF tiene más de {max_signatures} firmas; no se verifica.")

    signatures: list[tuple[str, EmbeddedPdfSignature]] = []
    reports_broken: list[SignatureReport] = []
    for name, _value, field_ref in found:
        try:
            signatures.append((name, EmbeddedPdfSignature(reader, field_ref, name)))
        except PARSE_ERRORS:
            reports_broken.append(_unreadable(name))
    signatures.sort(key=lambda item: item[1].signed_revision)

    reports: list[SignatureReport] = []
    for name, embedded in signatures:
        try:
            if embedded.sig_object_type == "/DocTimeStamp":
                ts_status = await async_validate_pdf_timestamp(
                    embedded, validation_context=_context(roots)
                )
                reports.append(_doc_timestamp_report(name, ts_status))
            else:
                context = _context(roots)
                sig_status = await async_validate_pdf_signature(
                    embedded,
                    signer_validation_context=context,
                    ts_validation_context=context,
                    key_usage_settings=_SEAL_KEY_USAGE,
                )
                reports.append(_signature_report(name, sig_status))
        except PARSE_ERRORS:
            reports.append(_unreadable(name))
    return reports + reports_broken
