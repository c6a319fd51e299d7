"""The índice signed as the sellado signs it (XAdES-T with our TSA), and the checks the
tramitador's verification makes of it: each can fail."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from services.sellado.pki import DevPki, KeyPair
from services.sellado.tsa import DEVELOPMENT_POLICY_OID, InMemorySerialSource, TimeStampAuthority
from services.sellado.xades import XADES, XmlNoValido, firmar_xml
from services.tramitador.eni import domain, verificacion
from services.tramitador.eni.esquemas import errores


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return DevPki.ensure(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tsa(pki: DevPki) -> TimeStampAuthority:
    return TimeStampAuthority(
        pki.tsa, policy_oid=DEVELOPMENT_POLICY_OID, serials=InMemorySerialSource(5)
    )


def _indice() -> bytes:
    meta = domain.MetadatosExpediente(
        identificador="ES_L01030149_2026_EXP_000017",
        organos=("L01030149",),
        fecha_apertura=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        clasificacion="998877",
        estado="E01",
        interesados=("12345678Z",),
    )
    docs = [
        domain.DocumentoIndizado(
            orden=n,
            identificador=f"ES_L01030149_2026_{n:030d}",
            huella=domain.huella_eni("SHA512", str(n).encode()),
            funcion="SHA512",
            fecha_incorporacion=datetime(2026, 3, n, 9, 0, tzinfo=UTC),
        )
        for n in (1, 2)
    ]
    return domain.indice_sin_firmar(meta, docs, fecha=datetime(2026, 3, 5, 9, 0, tzinfo=UTC))


async def test_a_signed_indice_validates_and_verifies(pki: DevPki, tsa: TimeStampAuthority) -> None:
    firma = await firmar_xml(_indice(), keypair=pki.seal_for("03014", "Alicante"), tsa=tsa)
    assert errores(firma.xml, "expediente") == []
    checked = verificacion._verificar_firma(firma.xml)
    assert checked["valida"], checked
    assert checked["firmante"] == "Sello electrónico de Alicante"
    sello = verificacion._verificar_sello(firma.xml)
    assert sello["valido"], sello
    assert datetime.fromisoformat(sello["fecha"]) == firma.sello_tiempo.gen_time


async def test_a_changed_indice_or_time_stamp_fails(pki: DevPki, tsa: TimeStampAuthority) -> None:
    firma = await firmar_xml(_indice(), keypair=pki.seal_for("03014", "Alicante"), tsa=tsa)
    otra = firma.xml.replace(b"998877", b"998878")
    assert not verificacion._verificar_firma(otra)["valida"]
    root = etree.fromstring(firma.xml)
    stamp = root.find(f".//{{{XADES}}}EncapsulatedTimeStamp")
    token = bytearray(base64.b64decode(stamp.text))
    token[-5] ^= 0xFF  # inside the TSA's signature value
    stamp.text = base64.b64encode(bytes(token)).decode()
    broken = etree.tostring(root)
    assert not verificacion._verificar_sello(broken)["valido"]
    with pytest.raises(ValueError, match="no cubre"):
        verificacion._verificar_cms(
            bytes(
                base64.b64decode(
                    etree.fromstring(firma.xml).find(f".//{{{XADES}}}EncapsulatedTimeStamp").text
                )
            ),
            b"otra cosa",
        )


async def test_the_sellado_refuses_what_is_not_xml_and_never_resolves_entities(
    pki: DevPki, tsa: TimeStampAuthority, tmp_path: Path
) -> None:
    keypair = pki.seal_for("03014", "Alicante")
    with pytest.raises(XmlNoValido):
        await firmar_xml(b"no es xml", keypair=keypair, tsa=tsa)
    secret = tmp_path / "secreto.txt"
    secret.write_text("clave")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file://{secret}">]><a>&x;</a>'
    ).encode()
    # A DTD is refused: no entity is ever read from disk.
    with pytest.raises(XmlNoValido, match="DTD"):
        await firmar_xml(xxe, keypair=keypair, tsa=tsa)


def _sello_propio() -> KeyPair:
    """A seal certificate anybody can make: self-signed, naming a council."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sello electrónico de Alicante")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert, key, ())


async def test_the_signer_chains_to_the_trust_anchor_at_the_time_stamps_date(
    pki: DevPki, tsa: TimeStampAuthority, tmp_path: Path
) -> None:
    firma = await firmar_xml(_indice(), keypair=pki.seal_for("03014", "Alicante"), tsa=tsa)
    anchor = tmp_path / "ca.pem"
    anchor.write_bytes(pki.root_pem())
    anclas, motivo = verificacion.anclas_de(str(anchor))
    assert motivo is None and anclas == [pki.root]
    sello = verificacion._verificar_sello(firma.xml, anclas)
    assert sello["cadena_confiable"] is True, sello
    assert sello["firmante"] == "Consistorio Development TSA"
    momento = datetime.fromisoformat(sello["fecha"])
    cadena = verificacion._cadena_firma(firma.xml, anclas, momento)
    assert cadena == {"cadena_confiable": True, "ancla": "Consistorio Development Root CA"}
    # Long after the seal expired, the time-stamp's date is what the chain is judged at;
    # at that later date itself it no longer holds (the check can fail).
    despues = datetime.now(UTC) + timedelta(days=365 * 30)
    assert not verificacion._cadena_firma(firma.xml, anclas, despues)["cadena_confiable"]
    # Another anchor (a PKI of somebody else's) trusts neither.
    otra = DevPki.ensure(tmp_path / "otra")
    assert not verificacion._cadena_firma(firma.xml, [otra.root], momento)["cadena_confiable"]
    assert not verificacion._verificar_sello(firma.xml, [otra.root])["cadena_confiable"]


async def test_a_self_made_signer_is_valid_but_not_trusted(
    pki: DevPki, tsa: TimeStampAuthority
) -> None:
    falso = _sello_propio()
    firma = await firmar_xml(_indice(), keypair=falso, tsa=tsa)
    checked = verificacion._verificar_firma(firma.xml)
    # The signature is mathematically sound and names whom it claims to be...
    assert checked["valida"] and checked["firmante"] == "Sello electrónico de Alicante"
    # ...but nothing chains it to the platform's anchor, even with that anchor in KeyInfo.
    cadena = verificacion._cadena_firma(firma.xml, [pki.root], None)
    assert cadena["cadena_confiable"] is False
    assert "ancla de confianza" in cadena["motivo_cadena"]
    trusted = verificacion.cadena(falso.certificate, [pki.root], [pki.root])
    assert trusted["cadena_confiable"] is False


def test_without_an_anchor_nobody_is_trusted(tmp_path: Path) -> None:
    assert verificacion.anclas_de(None)[1].startswith("No hay ancla de confianza")
    assert "No se pudo leer" in verificacion.anclas_de(str(tmp_path / "no.pem"))[1]
    (tmp_path / "basura.pem").write_text("no es un certificado")
    assert "no es un PEM" in verificacion.anclas_de(str(tmp_path / "basura.pem"))[1]
