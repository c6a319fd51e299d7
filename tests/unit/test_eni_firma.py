"""The índice signed as the sellado signs it (XAdES-T with our TSA), and the checks the
tramitador's verification makes of it: each can fail."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from services.sellado.pki import DevPki
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
