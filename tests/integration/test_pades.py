"""PAdES sealing and verification, checked by pyhanko and by independent tools.

Besides our own verifier, a sealed PDF is read by Debian's ``pdfsig`` (poppler,
package poppler-utils) and its seal certificate by NSS's ``vfychain`` (package
libnss3-tools): a seal only we can read back would be worthless.

Why trust is checked with ``vfychain`` and not with ``pdfsig``: poppler 22.12
(Debian 12) ignores the result of NSS's ``CERT_PKIXVerifyCert`` and reads the
thread's last NSS error instead, so with our root trusted in an NSS database it
prints "Unknown issue with Certificate" even for a signature it made itself. So
``pdfsig`` runs with ``-nocert`` and vouches for the signature and the digest;
``vfychain`` (the same NSS, called correctly) vouches for the chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import cms, tsp
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import copy_into_new_writer
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko_certvalidator.registry import SimpleCertificateStore

from services.sellado import pades
from services.sellado.pades import InProcessTimeStamper, InvalidPdf, VisibleAppearance, seal_pdf
from services.sellado.verification import SignatureReport, verify_pdf
from tests.support.pades_material import SealingPair, TestPki, minimal_pdf
from tests.support.servers import require_tool

pytestmark = pytest.mark.integration

ALICANTE = ("03014", "Ayuntamiento de Alicante")
VALENCIA = ("46250", "Ajuntament de València")
TEXT = "Resolucion de prueba"


@pytest.fixture(scope="module")
def pki() -> TestPki:
    """One throwaway hierarchy for the module (RSA keys are slow to make)."""
    return TestPki()


@pytest.fixture(scope="module")
def alicante(pki: TestPki) -> SealingPair:
    """Alicante's seal certificate and key."""
    return pki.seal_for(*ALICANTE)


@pytest.fixture(scope="module")
async def sealed(pki: TestPki, alicante: SealingPair) -> bytes:
    """A two-page PDF sealed by Alicante, visible stamp on the second page."""
    return await seal_pdf(
        minimal_pdf(TEXT, pages=2),
        keypair=alicante,
        timestamper=pki.timestamper(),
        appearance=VisibleAppearance(page=1, box=(40, 40, 300, 110)),
        reason="Resolución de alcaldía",
        location="Alicante",
    )


def _pyhanko_signer(pair: SealingPair) -> signers.SimpleSigner:
    key = pair.private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(
            pair.certificate.public_bytes(serialization.Encoding.DER)
        ),
        signing_key=asn1_keys.PrivateKeyInfo.load(key),
        cert_registry=SimpleCertificateStore(),
    )


def only(reports: list[SignatureReport]) -> SignatureReport:
    """The single report of a PDF expected to hold exactly one signature."""
    assert len(reports) == 1, reports
    return reports[0]


# -- pyhanko's view -------------------------------------------------------------


async def test_sealed_pdf_is_intact_trusted_and_time_stamped(sealed: bytes, pki: TestPki) -> None:
    before = dt.datetime.now(dt.UTC)
    report = only(await verify_pdf(sealed, trust_roots=[pki.root]))

    assert report.field_name == "SelloOrgano"
    assert (report.intact, report.valid, report.trusted) == (True, True, True)
    assert report.errors == []
    assert report.signer == "Sello electrónico de Ayuntamiento de Alicante"
    assert report.signer_organization == "Ayuntamiento de Alicante"
    assert report.signer_ine == "03014"
    assert report.timestamp_valid is True
    assert report.timestamp_authority == "TSA de pruebas"
    assert report.coverage == "documento-completo"
    assert report.kind == "firma"
    assert report.signing_time is not None
    assert before - dt.timedelta(minutes=5) < report.signing_time <= before


def test_signature_is_pades_baseline_t(sealed: bytes, alicante: SealingPair) -> None:
    signature = PdfFileReader(BytesIO(sealed)).embedded_signatures[0]
    signed = {a["type"].native for a in signature.signer_info["signed_attrs"]}
    unsigned = {a["type"].native for a in signature.signer_info["unsigned_attrs"]}

    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    # PAdES: the certificate is bound by signing-certificate-v2, and the CMS
    # signing-time attribute is forbidden (the time lives in /M and the token).
    assert "signing_certificate_v2" in signed
    assert "signing_time" not in signed
    assert "signature_time_stamp_token" in unsigned
    leaf_der = alicante.certificate.public_bytes(serialization.Encoding.DER)
    assert signature.signer_cert.dump() == leaf_der
    embedded = {c.chosen.dump() for c in signature.signed_data["certificates"]}
    assert alicante.chain[0].public_bytes(serialization.Encoding.DER) in embedded


def test_visible_stamp_sits_where_asked_and_names_the_council(sealed: bytes) -> None:
    reader = PdfFileReader(BytesIO(sealed))
    page = reader.root["/Pages"]["/Kids"][1]
    widgets = [a.get_object() for a in page["/Annots"]]
    assert len(widgets) == 1
    assert widgets[0]["/FT"] == "/Sig"
    assert [int(x) for x in widgets[0]["/Rect"]] == [40, 40, 300, 110]
    appearance = widgets[0]["/AP"]["/N"]
    assert b"Ayuntamiento de Alicante" in appearance.data
    assert "/Annots" not in reader.root["/Pages"]["/Kids"][0]


async def test_unsigned_pdf_has_no_reports(pki: TestPki) -> None:
    assert await verify_pdf(minimal_pdf(), trust_roots=[pki.root]) == []


async def test_another_root_does_not_make_it_trusted(sealed: bytes) -> None:
    stranger = TestPki("Otra raiz")
    report = only(await verify_pdf(sealed, trust_roots=[stranger.root]))

    assert (report.intact, report.valid, report.trusted) == (True, True, False)
    assert report.timestamp_valid is False
    assert any("raíz de confianza" in e for e in report.errors)


async def test_no_roots_trusts_nothing(sealed: bytes) -> None:
    # An empty list must not fall back to the operating system's trust store.
    report = only(await verify_pdf(sealed, trust_roots=[]))
    assert report.trusted is False


async def test_tampered_pdf_is_not_intact(sealed: bytes, pki: TestPki) -> None:
    assert sealed.count(TEXT.encode()) == 2
    tampered = sealed.replace(b"Resolucion de prueba", b"Resolucion de pruebo", 1)

    report = only(await verify_pdf(tampered, trust_roots=[pki.root]))

    assert report.intact is False
    assert report.trusted is False
    assert any("ha cambiado" in e for e in report.errors)


async def test_each_council_seals_with_its_own_name(pki: TestPki) -> None:
    valencia = pki.seal_for(*VALENCIA)
    sealed_by_alicante = await seal_pdf(
        minimal_pdf(), keypair=pki.seal_for(*ALICANTE), timestamper=pki.timestamper()
    )
    sealed_by_valencia = await seal_pdf(
        minimal_pdf(), keypair=valencia, timestamper=pki.timestamper()
    )

    a = only(await verify_pdf(sealed_by_alicante, trust_roots=[pki.root]))
    b = only(await verify_pdf(sealed_by_valencia, trust_roots=[pki.root]))

    assert a.trusted and b.trusted
    assert (a.signer_ine, a.signer_organization) == ALICANTE
    assert (b.signer_ine, b.signer_organization) == VALENCIA
    assert a.signer != b.signer


async def test_a_second_seal_keeps_the_first_valid(sealed: bytes, pki: TestPki) -> None:
    twice = await seal_pdf(
        sealed,
        keypair=pki.seal_for(*VALENCIA),
        timestamper=pki.timestamper(),
        field_name="SelloValencia",
    )
    assert twice.startswith(sealed)  # an incremental update: the first revision is untouched

    first, second = await verify_pdf(twice, trust_roots=[pki.root])

    assert (first.field_name, second.field_name) == ("SelloOrgano", "SelloValencia")
    assert first.trusted and second.trusted
    assert first.errors == [] and second.errors == []
    assert first.coverage == "revision-completa"
    assert second.coverage == "documento-completo"
    assert (first.signer_ine, second.signer_ine) == (ALICANTE[0], VALENCIA[0])


async def test_a_document_time_stamp_is_reported_as_such(sealed: bytes, pki: TestPki) -> None:
    # PAdES-LTA appends a document time-stamp; the verifier must report it
    # (signed by the TSA) next to the seal it protects, not choke on it.
    out = BytesIO()
    await signers.PdfTimeStamper(pki.timestamper()).async_timestamp_pdf(
        IncrementalPdfFileWriter(BytesIO(sealed)), "sha256", output=out
    )

    seal, stamp = await verify_pdf(out.getvalue(), trust_roots=[pki.root])

    assert seal.kind == "firma" and seal.trusted and seal.coverage == "revision-completa"
    assert stamp.kind == "sello-de-tiempo"
    assert (stamp.intact, stamp.valid, stamp.trusted) == (True, True, True)
    assert stamp.timestamp_valid is True
    assert stamp.signer == stamp.timestamp_authority == "TSA de pruebas"
    assert stamp.signer_ine is None
    assert stamp.coverage == "documento-completo"
    assert stamp.errors == []


async def test_the_same_field_cannot_be_sealed_twice(sealed: bytes, pki: TestPki) -> None:
    with pytest.raises(InvalidPdf, match="SelloOrgano"):
        await seal_pdf(sealed, keypair=pki.seal_for(*ALICANTE), timestamper=pki.timestamper())


async def test_a_page_the_pdf_lacks_is_refused(pki: TestPki, alicante: SealingPair) -> None:
    with pytest.raises(InvalidPdf, match="página 3"):
        await seal_pdf(
            minimal_pdf(pages=2),
            keypair=alicante,
            timestamper=pki.timestamper(),
            appearance=VisibleAppearance(page=3),
        )


async def test_an_empty_field_prepared_for_the_seal_is_signed_into(
    pki: TestPki, alicante: SealingPair
) -> None:
    writer = IncrementalPdfFileWriter(BytesIO(minimal_pdf()))
    fields.append_signature_field(
        writer, fields.SigFieldSpec("SelloOrgano", on_page=0, box=(400, 700, 560, 780))
    )
    prepared = BytesIO()
    writer.write(prepared)

    sealed = await seal_pdf(
        prepared.getvalue(),
        keypair=alicante,
        timestamper=pki.timestamper(),
        appearance=VisibleAppearance(box=(1, 1, 2, 2)),
    )

    report = only(await verify_pdf(sealed, trust_roots=[pki.root]))
    assert report.trusted and report.errors == []
    page = PdfFileReader(BytesIO(sealed)).root["/Pages"]["/Kids"][0]
    (widget,) = [a.get_object() for a in page["/Annots"]]
    assert [int(x) for x in widget["/Rect"]] == [400, 700, 560, 780]


async def test_a_pdf_certified_against_changes_is_not_sealed(
    pki: TestPki, alicante: SealingPair
) -> None:
    certified = BytesIO()
    await signers.PdfSigner(
        signers.PdfSignatureMetadata(
            field_name="Certificacion", certify=True, docmdp_permissions=MDPPerm.NO_CHANGES
        ),
        _pyhanko_signer(pki.seal_for(*VALENCIA)),
    ).async_sign_pdf(IncrementalPdfFileWriter(BytesIO(minimal_pdf())), output=certified)

    with pytest.raises(InvalidPdf, match="certificación"):
        await seal_pdf(certified.getvalue(), keypair=alicante, timestamper=pki.timestamper())


# -- bad input ------------------------------------------------------------------

_VALID = minimal_pdf()
GARBAGE = {
    "vacio": b"",
    "texto": b"hola, esto no es un PDF",
    "zip": b"PK\x03\x04" + bytes(range(256)) * 4,
    "solo-cabecera": b"%PDF-1.7\n",
    "truncado": _VALID[: len(_VALID) // 2],
    "sin-xref": _VALID.replace(b"xref", b"xxxx").replace(b"startxref", b"startxxxx"),
    "cabecera-y-basura": b"%PDF-1.7\n" + os.urandom(4096),
}


@pytest.mark.parametrize("data", GARBAGE.values(), ids=GARBAGE.keys())
async def test_garbage_is_invalid_pdf(data: bytes, pki: TestPki, alicante: SealingPair) -> None:
    with pytest.raises(InvalidPdf):
        await verify_pdf(data, trust_roots=[pki.root])
    with pytest.raises(InvalidPdf):
        await seal_pdf(data, keypair=alicante, timestamper=pki.timestamper())


def _encrypted(*, user_password: str) -> bytes:
    writer = copy_into_new_writer(PdfFileReader(BytesIO(minimal_pdf())))
    writer.encrypt("clave-del-propietario", user_password)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


async def test_encrypted_pdf_is_not_sealed(pki: TestPki, alicante: SealingPair) -> None:
    with pytest.raises(InvalidPdf, match="cifrado"):
        await seal_pdf(
            _encrypted(user_password=""), keypair=alicante, timestamper=pki.timestamper()
        )
    with pytest.raises(InvalidPdf, match="contraseña"):
        await verify_pdf(_encrypted(user_password="secreta"), trust_roots=[pki.root])


async def test_owner_password_only_pdf_can_be_verified(pki: TestPki) -> None:
    assert await verify_pdf(_encrypted(user_password=""), trust_roots=[pki.root]) == []


async def test_damaged_signature_is_reported_not_raised(sealed: bytes, pki: TestPki) -> None:
    # Zero the start of the CMS inside /Contents: the PDF still parses, the
    # signature does not.
    start = sealed.index(b"/Contents <") + len(b"/Contents <")
    damaged = sealed[:start] + b"0" * 64 + sealed[start + 64 :]

    report = only(await verify_pdf(damaged, trust_roots=[pki.root]))

    assert report.field_name == "SelloOrgano"
    assert (report.intact, report.valid, report.trusted) == (False, False, False)
    assert report.signer is None
    assert report.errors == ["La firma está dañada o no se puede interpretar."]


async def test_too_many_signatures_are_refused(sealed: bytes, pki: TestPki) -> None:
    with pytest.raises(InvalidPdf, match="más de 0 firmas"):
        await verify_pdf(sealed, trust_roots=[pki.root], max_signatures=0)


# -- the prepared container -----------------------------------------------------


class _OneToken(TimeStamper):
    """Answers every request with the first token it got: two signers, one token."""

    def __init__(self, inner: TimeStamper) -> None:
        super().__init__()
        self._inner = inner
        self._token: cms.ContentInfo | None = None

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        if self._token is None:
            self._token = await self._inner.async_timestamp(message_digest, md_algorithm)
        return self._token


async def test_the_seal_container_is_pyhankos_own_byte_for_byte(
    pki: TestPki, alicante: SealingPair
) -> None:
    signer = pades._prepared_for(alicante).signer
    timestamper = _OneToken(pki.timestamper())
    for text in (b"un documento", b"otro documento"):
        digest = hashlib.sha256(text).digest()
        ours = await signer.async_sign(digest, "sha256", use_pades=True, timestamper=timestamper)
        general = await signers.SimpleSigner.async_sign(
            signer, digest, "sha256", use_pades=True, timestamper=timestamper
        )

        assert ours.dump() == general.dump()
        signer_info = ours["content"]["signer_infos"][0]
        attrs = {a["type"].native: a["values"][0].native for a in signer_info["signed_attrs"]}
        assert attrs["message_digest"] == digest
        token = signer_info["unsigned_attrs"][0]["values"][0]
        assert token.dump() == (await timestamper.async_timestamp(b"", "sha256")).dump()


# -- the in-process timestamper -------------------------------------------------


async def test_timestamper_accepts_sync_and_async_responders(pki: TestPki) -> None:
    dummy = pki.timestamper()

    def sync_respond(request_der: bytes) -> bytes:
        return dummy.request_tsa_response(tsp.TimeStampReq.load(request_der)).dump()

    async def async_respond(request_der: bytes) -> bytes:
        return sync_respond(request_der)

    for respond in (sync_respond, async_respond):
        token = await InProcessTimeStamper(respond).async_timestamp(bytes(32), "sha256")
        assert token["content_type"].native == "signed_data"


async def test_timestamper_turns_garbage_and_refusals_into_timestamp_errors() -> None:
    # TimeStampResp { PKIStatusInfo { rejection, "no", {badAlg} } }: no token, as RFC 3161 allows.
    refusal = bytes.fromhex("300f" + "300d02010230040c026e6f03020780")

    with pytest.raises(TimestampRequestError, match="garbage"):
        await InProcessTimeStamper(lambda _: b"\x30\x03nope").async_timestamp(bytes(32), "sha256")
    with pytest.raises(TimestampRequestError, match='refused the request: "no" \\(bad_alg\\)'):
        await InProcessTimeStamper(lambda _: refusal).async_timestamp(bytes(32), "sha256")


# -- independent tools: poppler's pdfsig and NSS's vfychain -----------------------


def _pdfsig(pdf: bytes) -> str:
    tool = require_tool("pdfsig", "poppler-utils")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sellado.pdf"
        path.write_bytes(pdf)
        done = subprocess.run(
            [tool, "-nocert", str(path)],
            capture_output=True,
            # pdfsig prints the certificate's names as UTF-8 whatever the locale.
            encoding="utf-8",
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_pdfsig_reports_a_valid_cades_signature(sealed: bytes) -> None:
    out = _pdfsig(sealed)

    assert "Signature #1:" in out and "Signature #2:" not in out
    assert "Signature Field Name: SelloOrgano" in out
    assert "Signer Certificate Common Name: Sello electrónico de Ayuntamiento de Alicante" in out
    assert "serialNumber=03014" in out
    assert "Signature Type: ETSI.CAdES.detached" in out
    assert "Total document signed" in out
    assert "Signature Validation: Signature is Valid." in out


def test_pdfsig_sees_the_tampering(sealed: bytes) -> None:
    tampered = sealed.replace(b"Resolucion de prueba", b"Resolucion de pruebo", 1)
    out = _pdfsig(tampered)

    assert "Signature Validation: Digest Mismatch." in out
    assert "Signature is Valid." not in out


@pytest.fixture
def nss_db() -> Iterator[Path]:
    """An empty NSS certificate database in a temporary directory."""
    certutil = require_tool("certutil", "libnss3-tools")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [certutil, "-N", "--empty-password", "-d", f"sql:{tmp}"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield Path(tmp)


def _trust(nss_db: Path, name: str, pem: bytes) -> None:
    certutil = require_tool("certutil", "libnss3-tools")
    pem_path = nss_db / f"{name}.pem"
    pem_path.write_bytes(pem)
    # C,C,C: a CA trusted for TLS, e-mail and object signing; pdfsig checks the
    # e-mail signer usage.
    subprocess.run(
        [certutil, "-A", "-n", name, "-t", "C,C,C", "-i", str(pem_path), "-d", f"sql:{nss_db}"],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _vfychain(nss_db: Path, pdf: bytes) -> subprocess.CompletedProcess[str]:
    tool = require_tool("vfychain", "libnss3-tools")
    signer = PdfFileReader(BytesIO(pdf)).embedded_signatures[0].signer_cert
    cert_path = nss_db / "sello.der"
    cert_path.write_bytes(signer.dump())
    # -pp: libpkix, the validator pdfsig uses; -u 4: certUsageEmailSigner.
    return subprocess.run(
        [tool, "-d", f"sql:{nss_db}", "-pp", "-u", "4", str(cert_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_nss_accepts_the_seal_chain_for_signing(sealed: bytes, pki: TestPki, nss_db: Path) -> None:
    untrusted = _vfychain(nss_db, sealed)
    assert untrusted.returncode != 0, untrusted.stdout

    _trust(nss_db, "raiz", pki.root_pem())
    trusted = _vfychain(nss_db, sealed)
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert "Chain is good!" in trusted.stdout + trusted.stderr


# -- the real development PKI and TSA -------------------------------------------


async def test_dev_pki_and_our_tsa_make_a_trusted_seal(tmp_path: Path) -> None:
    from services.sellado.pki import TSA_NAME, DevPki
    from services.sellado.tsa import InMemorySerialSource, TimeStampAuthority

    dev = DevPki.ensure(tmp_path / "pki")
    authority = TimeStampAuthority(
        dev.tsa, policy_oid="1.3.6.1.4.1.99999.1.1", serials=InMemorySerialSource()
    )
    sealed = await seal_pdf(
        minimal_pdf(),
        keypair=dev.seal_for(*VALENCIA),
        timestamper=InProcessTimeStamper(authority.respond),
        appearance=VisibleAppearance(),
    )

    report = only(await verify_pdf(sealed, trust_roots=[dev.root]))

    assert (report.intact, report.valid, report.trusted) == (True, True, True)
    assert report.errors == []
    assert report.timestamp_valid is True
    assert report.timestamp_authority == TSA_NAME
    assert (report.signer_ine, report.signer_organization) == VALENCIA
    assert "Signature is Valid." in _pdfsig(sealed)
