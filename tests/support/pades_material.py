"""Material for PAdES tests: tiny PDFs and a throwaway PKI built in memory.

The tests build their own hierarchy instead of using ``services.sellado.pki`` so
that sealing and verification are checked against certificates whose every field
the test controls; one integration test covers the real DevPki separately.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

__all__ = ["SealingPair", "TestPki", "minimal_pdf"]

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def minimal_pdf(text: str = "Resolucion de prueba", *, pages: int = 1) -> bytes:
    """A valid, uncompressed PDF with ``pages`` pages each showing ``text`` (ASCII)."""
    content = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    page_ids = [4 + 2 * i for i in range(pages)]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids ["
        + b" ".join(f"{p} 0 R".encode() for p in page_ids)
        + f"] /Count {pages} >>".encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for page_id in page_ids:
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            f"/Contents {page_id + 1} 0 R /Resources << /Font << /F1 3 0 R >> >> >>"
        ).encode()
        objects[page_id + 1] = (
            f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n".encode() + objects[number] + b"\nendobj\n"
    xref_at = len(out)
    size = max(objects) + 1
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    for number in range(1, size):
        out += f"{offsets[number]:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)


@dataclass(frozen=True)
class SealingPair:
    """Certificate, key and issuers (root last), the shape ``seal_pdf`` expects."""

    certificate: x509.Certificate
    private_key: Key = field(repr=False)
    chain: tuple[x509.Certificate, ...] = ()


def _name(common_name: str, organization: str, *extra: x509.NameAttribute) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ES"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            *extra,
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=signing,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signing,
        crl_sign=not signing,
        encipher_only=False,
        decipher_only=False,
    )


class TestPki:
    """A root CA, an RSA TSA (pyhanko's dummy timestamper is RSA-only) and seals."""

    __test__ = False  # a helper, not a test class, despite its name

    def __init__(self, name: str = "Raiz de pruebas") -> None:
        self._now = dt.datetime.now(dt.UTC)
        root_key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(name, "Consistorio (pruebas)")
        self.root_key = root_key
        self.root = (
            self._builder(subject, subject, root_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(signing=False), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tsa_cert = (
            self._leaf(_name("TSA de pruebas", "Consistorio (pruebas)"), tsa_key)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            )
            .sign(root_key, hashes.SHA256())
        )
        self.tsa = SealingPair(tsa_cert, tsa_key, (self.root,))

    def _builder(
        self, subject: x509.Name, issuer: x509.Name, public_key: object
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - dt.timedelta(minutes=5))
            .not_valid_after(self._now + dt.timedelta(days=30))
        )

    def _leaf(self, subject: x509.Name, key: Key) -> x509.CertificateBuilder:
        return (
            self._builder(subject, self.root.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signing=True), critical=True)
        )

    def seal_for(self, ine: str, nombre: str) -> SealingPair:
        """An electronic-seal certificate for council ``ine`` (INE also in the subject)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = _name(
            f"Sello electrónico de {nombre}",
            nombre,
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"IN:ES-{ine}"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, ine),
        )
        cert = self._leaf(subject, key).sign(self.root_key, hashes.SHA256())
        return SealingPair(cert, key, (self.root,))

    def timestamper(self) -> DummyTimeStamper:
        """pyhanko's in-memory TSA, signing with this hierarchy's TSA certificate."""

        def der(cert: x509.Certificate) -> asn1_x509.Certificate:
            return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

        key_der = self.tsa.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return DummyTimeStamper(
            tsa_cert=der(self.tsa.certificate),
            tsa_key=asn1_keys.PrivateKeyInfo.load(key_der),
            certs_to_embed=SimpleCertificateStore.from_certs([der(self.root)]),
        )

    def root_pem(self) -> bytes:
        """The root certificate, PEM."""
        return self.root.public_bytes(serialization.Encoding.PEM)
