"""The expediente electrónico end to end on the real chain: an issued document and a staff
attachment are foliado, the índice is signed by the sellado (XAdES-T), exported as an ENI
ZIP, and the export is verified; everything checked with tools other than our own code
(the official XSDs through lxml, ``xmlsec1``, ``openssl ts -verify``, hashlib)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from services.bootstrap import Platform
from services.common.settings import Settings
from services.sellado.pki import KeyPair
from services.sellado.trust import trust_anchor_path
from services.sellado.xades import firmar_xml
from services.tramitador.eni.esquemas import errores
from services.tramitador.eni.repositorio_client import RepositorioClient
from tests.support import factories
from tests.support.platforms import asgi_client, bearer, collect_events, running_platform
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

T = "/api/v1/tramitador"
DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
C = "http://administracionelectronica.gob.es/ENI/XSD/v1.0/expediente-e/indice-e/contenido"
FILE = "http://administracionelectronica.gob.es/ENI/XSD/v1.0/documento-e/contenido"
META = "http://administracionelectronica.gob.es/ENI/XSD/v1.0/documento-e/metadatos"
PDF = b"%PDF-1.4\n% informe tecnico adjunto\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    services = ["tramitador", "repositorio", "csv", "sellado"]
    # The tramitador trusts what the sellado signs with, told by configuration as
    # `consistorio up` tells it.
    settings = settings.model_copy(
        update={"tramitador_trust_anchor_pem": trust_anchor_path(settings)}
    )
    async with running_platform(settings, services) as built:
        transport = httpx.ASGITransport(app=built.apps["repositorio"])
        built.apps["tramitador"].state.eni_repositorio_client = RepositorioClient(
            "http://repositorio", transport=transport
        )
        yield built


def _multipart(meta: dict[str, Any], data: bytes) -> tuple[bytes, dict[str, str]]:
    b = "frontera-eni"
    body = (
        f'--{b}\r\nContent-Disposition: form-data; name="metadatos"\r\n'
        "Content-Type: application/json\r\n\r\n"
    ).encode() + json.dumps(meta).encode()
    body += (
        f'\r\n--{b}\r\nContent-Disposition: form-data; name="file"; filename="informe.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode() + data
    body += f"\r\n--{b}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={b}"}


def _sello_propio() -> KeyPair:
    """A self-signed seal certificate: what anybody could sign an índice with."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sello electrónico falso")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert, key, ())


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(str(args[0]))
    assert binary, f"{args[0]} is needed on PATH for this test"
    return subprocess.run(
        [binary, *map(str, args[1:])], capture_output=True, text=True, timeout=60, check=False
    )


async def _expediente_con_documentos(
    tramitador: httpx.AsyncClient, repositorio: httpx.AsyncClient, headers: dict[str, str]
) -> tuple[str, bytes]:
    """An expediente with an issued providencia and an attached informe; the informe's bytes."""
    body = {
        "procedimiento": "expediente-sancionador",
        "asunto": "Ruidos nocturnos",
        "interesados": [factories.interesado()],
    }
    created = await tramitador.post(f"{T}/expedientes", json=body, headers=headers)
    assert created.status_code == 201, created.text
    expediente_id = created.json()["id"]
    url = f"{T}/expedientes/{expediente_id}"
    acted = await tramitador.post(f"{url}/acciones/acordar-inicio", headers=headers)
    assert acted.status_code == 200, acted.text

    async def foliado() -> list[dict[str, Any]] | None:
        items = (await tramitador.get(f"{url}/foliado", headers=headers)).json()["items"]
        return items or None

    emitido = (await eventually(foliado, timeout=60))[0]
    assert emitido["origen"] == "emitido" and emitido["orden"] == 1
    meta = {
        "organo": "L01000000",
        "origen": "administracion",
        "estado_elaboracion": "EE01",
        "tipo_documental": "TD11",
    }
    content, content_headers = _multipart(meta, PDF)
    stored = await repositorio.post(
        "/api/v1/documentos", content=content, headers={**headers, **content_headers}
    )
    assert stored.status_code == 201, stored.text
    adjunto = await tramitador.post(
        f"{url}/foliado",
        json={"documento_id": stored.json()["id"], "titulo": "Informe técnico"},
        headers=headers,
    )
    assert adjunto.status_code == 201, adjunto.text
    assert adjunto.json()["orden"] == 2
    assert adjunto.json()["huella"] == hashlib.sha256(PDF).hexdigest()
    return expediente_id, PDF


async def _indice_firmado(
    tramitador: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    params: dict[str, str] | None = None,
) -> bytes:
    asked = await tramitador.post(f"{url}/indice", params=params, headers=headers)
    assert asked.status_code == 202, asked.text
    version = asked.json()["version"]

    async def firmado() -> bytes | None:
        got = await tramitador.get(f"{url}/indice", params={"version": version}, headers=headers)
        return got.content if got.status_code == 200 else None

    return await eventually(firmado, timeout=60)


async def test_the_indice_is_signed_xades_t_and_every_tool_agrees(
    platform: Platform, new_tenant, token, tmp_path: Path
) -> None:
    tenant = await new_tenant()
    headers = bearer(token(tenant, "tramitador", "documentos"))
    async with (
        asgi_client(platform.apps["tramitador"]) as tramitador,
        asgi_client(platform.apps["repositorio"]) as repositorio,
    ):
        expediente_id, informe = await _expediente_con_documentos(tramitador, repositorio, headers)
        url = f"{T}/expedientes/{expediente_id}"
        xml = await _indice_firmado(tramitador, url, headers)
        foliado = (await tramitador.get(f"{url}/foliado", headers=headers)).json()["items"]
        emitido = await repositorio.get(
            f"/api/v1/documentos/{foliado[0]['documento_id']}/contenido", headers=headers
        )

    # The official ENI v1.0 XSDs accept it, signature included.
    assert errores(xml, "expediente") == []
    root = etree.fromstring(xml)
    ns = {
        "c": C,
        "m": "http://administracionelectronica.gob.es/ENI/XSD/v1.0/expediente-e/metadatos",
    }
    assert root.findtext(".//m:Identificador", namespaces=ns).startswith("ES_L01000000_")
    assert root.findtext(".//m:Estado", namespaces=ns) == "E01"
    # Each reference's digest, by hand: the índice lists each document's SHA-256.
    entradas = root.findall(".//c:DocumentoIndizado", namespaces=ns)
    assert [e.findtext("c:OrdenDocumentoExpediente", namespaces=ns) for e in entradas] == ["1", "2"]
    esperadas = [hashlib.sha256(emitido.content).digest(), hashlib.sha256(informe).digest()]
    for entrada, digest in zip(entradas, esperadas, strict=True):
        assert entrada.findtext("c:FuncionResumen", namespaces=ns) == "SHA256"
        assert base64.b64decode(entrada.findtext("c:ValorHuella", namespaces=ns)) == digest

    # xmlsec1 (Debian's, libxml2 + OpenSSL) verifies the XAdES signature against our root.
    sellado = platform.apps["sellado"].state.sellado
    (tmp_path / "root.pem").write_bytes(sellado.pki.root_pem())
    (tmp_path / "indice.xml").write_bytes(xml)
    checked = _run(
        "xmlsec1",
        "--verify",
        "--trusted-pem",
        tmp_path / "root.pem",
        "--id-attr:Id",
        f"{XADES}:SignedProperties",
        "--id-attr:Id",
        "KeyInfo",
        tmp_path / "indice.xml",
    )
    assert checked.returncode == 0, checked.stderr
    assert "OK" in checked.stdout + checked.stderr

    # openssl ts -verify: the SignatureTimeStamp covers the canonical SignatureValue.
    value = root.find(f".//{{{DS}}}SignatureValue")
    (tmp_path / "sigvalue.bin").write_bytes(
        etree.tostring(value, method="c14n", exclusive=True, with_comments=False)
    )
    token_b64 = root.findtext(f".//{{{XADES}}}SignatureTimeStamp/{{{XADES}}}EncapsulatedTimeStamp")
    (tmp_path / "token.tst").write_bytes(base64.b64decode(token_b64))
    stamped = _run(
        "openssl",
        "ts",
        "-verify",
        "-data",
        tmp_path / "sigvalue.bin",
        "-in",
        tmp_path / "token.tst",
        "-token_in",
        "-CAfile",
        tmp_path / "root.pem",
    )
    assert stamped.returncode == 0, stamped.stderr
    assert "Verification: OK" in stamped.stdout

    # A changed byte of the índice is caught by xmlsec1 too (the test can fail).
    (tmp_path / "cambiado.xml").write_bytes(xml.replace(b">1</", b">3</", 1))
    broken = _run(
        "xmlsec1",
        "--verify",
        "--trusted-pem",
        tmp_path / "root.pem",
        "--id-attr:Id",
        f"{XADES}:SignedProperties",
        "--id-attr:Id",
        "KeyInfo",
        tmp_path / "cambiado.xml",
    )
    assert broken.returncode != 0


async def test_the_indice_for_a_remision_is_e03_and_exported_by_version(
    platform: Platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    headers = bearer(token(tenant, "tramitador", "documentos"))
    ns = {"m": "http://administracionelectronica.gob.es/ENI/XSD/v1.0/expediente-e/metadatos"}
    async with (
        asgi_client(platform.apps["tramitador"]) as tramitador,
        asgi_client(platform.apps["repositorio"]) as repositorio,
    ):
        expediente_id, _ = await _expediente_con_documentos(tramitador, repositorio, headers)
        url = f"{T}/expedientes/{expediente_id}"
        remitido = await _indice_firmado(tramitador, url, headers, {"remision": "true"})
        assert errores(remitido, "expediente") == []
        assert etree.fromstring(remitido).findtext(".//m:Estado", namespaces=ns) == "E03"
        versiones = (await tramitador.get(f"{url}/indices", headers=headers)).json()["items"]
        remision = next(v for v in versiones if v["causa"] == "remision")
        # The expediente goes on: a later índice is open again (E01)...
        ultimo = await _indice_firmado(tramitador, url, headers)
        assert etree.fromstring(ultimo).findtext(".//m:Estado", namespaces=ns) == "E01"
        # ...and the remitted one is still what its version exports.
        exported = await tramitador.get(
            f"{url}/eni", params={"version": remision["version"]}, headers=headers
        )
        assert exported.status_code == 200, exported.text
        with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
            assert archive.read("indice.xml") == remitido
        latest = await tramitador.get(f"{url}/eni", headers=headers)
        with zipfile.ZipFile(io.BytesIO(latest.content)) as archive:
            assert archive.read("indice.xml") == ultimo
        missing = await tramitador.get(f"{url}/eni", params={"version": 99}, headers=headers)
        assert missing.status_code == 404


async def test_a_withdrawal_is_a_new_entry_that_names_no_document(
    platform: Platform, new_tenant, token
) -> None:
    # Regression: the withdrawal's answer lacked the document columns (null for it): 500.
    tenant = await new_tenant()
    headers = bearer(token(tenant, "tramitador", "documentos"))
    async with (
        asgi_client(platform.apps["tramitador"]) as tramitador,
        asgi_client(platform.apps["repositorio"]) as repositorio,
    ):
        expediente_id, _ = await _expediente_con_documentos(tramitador, repositorio, headers)
        url = f"{T}/expedientes/{expediente_id}"
        retirada = await tramitador.post(
            f"{url}/foliado/2/retirada", json={"motivo": "Incorporado por error"}, headers=headers
        )
        assert retirada.status_code == 201, retirada.text
        entrada = retirada.json()
        assert (entrada["orden"], entrada["origen"], entrada["retira"]) == (3, "retirada", 2)
        assert entrada["documento_id"] is None and entrada["huella"] is None
        assert entrada["motivo"] == "Incorporado por error"
        foliado = (await tramitador.get(f"{url}/foliado", headers=headers)).json()["items"]
        assert [f["origen"] for f in foliado] == ["emitido", "adjunto", "retirada"]
        otra = await tramitador.post(
            f"{url}/foliado/2/retirada", json={"motivo": "Otra vez"}, headers=headers
        )
        assert otra.status_code == 409, otra.text


async def test_the_export_validates_verifies_and_names_a_tampered_document(
    platform: Platform, new_tenant, token
) -> None:
    tenant = await new_tenant()
    headers = bearer(token(tenant, "tramitador", "documentos"))
    async with (
        asgi_client(platform.apps["tramitador"]) as tramitador,
        asgi_client(platform.apps["repositorio"]) as repositorio,
    ):
        expediente_id, informe = await _expediente_con_documentos(tramitador, repositorio, headers)
        url = f"{T}/expedientes/{expediente_id}"
        xml = await _indice_firmado(tramitador, url, headers)
        exported = await tramitador.get(f"{url}/eni", headers=headers)
        assert exported.status_code == 200, exported.text
        assert exported.headers["content-type"] == "application/zip"
        data = exported.content

        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            assert names[0] == "indice.xml" and archive.read("indice.xml") == xml
            documentos = [n for n in names if n.startswith("documentos/")]
            assert len(documentos) == 2
            contenidos = []
            for name in documentos:
                doc = archive.read(name)
                assert errores(doc, "documento") == [], name
                parsed = etree.fromstring(doc)
                contenidos.append(base64.b64decode(parsed.findtext(f".//{{{FILE}}}ValorBinario")))
                assert parsed.findtext(f".//{{{META}}}Identificador").startswith("ES_")
        assert contenidos[1] == informe

        verified = await tramitador.post(
            f"{T}/verificaciones",
            content=data,
            headers={**headers, "Content-Type": "application/zip"},
        )
        assert verified.status_code == 200, verified.text
        answer = verified.json()
        assert answer["valido"] is True, answer
        assert answer["firma"]["valida"] and answer["sello_tiempo"]["valido"]
        assert [d["estado"] for d in answer["documentos"]] == ["integro", "integro"]
        # Both signers chain to the platform's anchor, and are named.
        assert answer["firma"]["cadena_confiable"] is True
        assert answer["firma"]["firmante"].startswith("Sello electrónico de")
        assert answer["firma"]["ancla"] == "Consistorio Development Root CA"
        assert answer["sello_tiempo"]["cadena_confiable"] is True
        assert answer["sello_tiempo"]["firmante"] == "Consistorio Development TSA"

        # The índice re-signed, soundly, by a certificate anybody can make (and even our
        # real TSA's time-stamp): valid as a signature, not trusted, so not valid.
        root = etree.fromstring(xml)
        old = root.find(f".//{{{DS}}}Signature")
        hueco = etree.Element(f"{{{DS}}}Signature", nsmap={"ds": DS})
        hueco.set("Id", "placeholder")
        old.getparent().replace(old, hueco)
        falsa = await firmar_xml(
            etree.tostring(root, xml_declaration=True, encoding="UTF-8"),
            keypair=_sello_propio(),
            tsa=platform.apps["sellado"].state.sellado.tsa,
        )
        resigned = io.BytesIO()
        with (
            zipfile.ZipFile(io.BytesIO(data)) as source,
            zipfile.ZipFile(resigned, "w", zipfile.ZIP_DEFLATED) as out,
        ):
            for name in source.namelist():
                out.writestr(name, falsa.xml if name == "indice.xml" else source.read(name))
        untrusted = await tramitador.post(
            f"{T}/verificaciones",
            content=resigned.getvalue(),
            headers={**headers, "Content-Type": "application/zip"},
        )
        assert untrusted.status_code == 200, untrusted.text
        answer = untrusted.json()
        assert answer["firma"]["valida"] is True
        assert answer["firma"]["firmante"] == "Sello electrónico falso"
        assert answer["firma"]["cadena_confiable"] is False
        assert "ancla de confianza" in answer["firma"]["motivo_cadena"]
        assert answer["sello_tiempo"]["cadena_confiable"] is True
        assert [d["estado"] for d in answer["documentos"]] == ["integro", "integro"]
        assert answer["valido"] is False

        # One byte of the second document's content changed: that document is named.
        tampered = io.BytesIO()
        with (
            zipfile.ZipFile(io.BytesIO(data)) as source,
            zipfile.ZipFile(tampered, "w", zipfile.ZIP_DEFLATED) as out,
        ):
            for name in source.namelist():
                body = source.read(name)
                if name == documentos[1]:
                    parsed = etree.fromstring(body)
                    valor = parsed.find(f".//{{{FILE}}}ValorBinario")
                    raw = bytearray(base64.b64decode(valor.text))
                    raw[40] ^= 0x01
                    valor.text = base64.b64encode(bytes(raw)).decode()
                    body = etree.tostring(parsed, xml_declaration=True, encoding="UTF-8")
                out.writestr(name, body)
        refused = await tramitador.post(
            f"{T}/verificaciones",
            content=tampered.getvalue(),
            headers={**headers, "Content-Type": "application/zip"},
        )
        assert refused.status_code == 200, refused.text
        answer = refused.json()
        assert answer["valido"] is False
        assert answer["firma"]["valida"] is True
        assert answer["alterados"] == [documentos[1]]
        assert [d["estado"] for d in answer["documentos"]] == ["integro", "alterado"]

        # Not a ZIP at all: a 422 naming the body.
        junk = await tramitador.post(
            f"{T}/verificaciones",
            content=b"no soy un zip",
            headers={**headers, "Content-Type": "application/zip"},
        )
        assert junk.status_code == 422
        assert junk.headers["content-type"].startswith("application/problem+json")


async def test_another_councils_expediente_is_a_404(platform: Platform, new_tenant, token) -> None:
    tenant, other = await new_tenant(), await new_tenant()
    headers = bearer(token(tenant, "tramitador", "documentos"))
    intruder = bearer(token(other, "tramitador", "documentos"))
    async with asgi_client(platform.apps["tramitador"]) as tramitador:
        body = {
            "procedimiento": "expediente-sancionador",
            "asunto": "Ruidos",
            "interesados": [factories.interesado()],
        }
        created = await tramitador.post(f"{T}/expedientes", json=body, headers=headers)
        url = f"{T}/expedientes/{created.json()['id']}"
        # Nothing foliado yet: the owner hears 409 (no índice), another council 404.
        assert (await tramitador.get(f"{url}/indice", headers=headers)).status_code == 409
        for path in ("indice", "eni", "foliado", "indices"):
            got = await tramitador.get(f"{url}/{path}", headers=intruder)
            assert got.status_code == 404, (path, got.text)
        frozen = await tramitador.post(f"{url}/indice", headers=intruder)
        assert frozen.status_code == 404
        empty = await tramitador.post(f"{url}/indice", headers=headers)
        assert empty.status_code == 409


async def test_the_older_documentos_route_foliates_too(
    platform: Platform, new_tenant, token
) -> None:
    tenant, other = await new_tenant(), await new_tenant()
    headers = bearer(token(tenant, "tramitador", "documentos"))
    async with (
        asgi_client(platform.apps["tramitador"]) as tramitador,
        asgi_client(platform.apps["repositorio"]) as repositorio,
    ):
        body = {
            "procedimiento": "expediente-sancionador",
            "asunto": "Vallado sin licencia",
            "interesados": [factories.interesado()],
        }
        created = await tramitador.post(f"{T}/expedientes", json=body, headers=headers)
        assert created.status_code == 201, created.text
        url = f"{T}/expedientes/{created.json()['id']}"
        meta = {
            "organo": "L01000000",
            "origen": "administracion",
            "estado_elaboracion": "EE01",
            "tipo_documental": "TD11",
        }
        content, content_headers = _multipart(meta, PDF)
        stored = await repositorio.post(
            "/api/v1/documentos", content=content, headers={**headers, **content_headers}
        )
        assert stored.status_code == 201, stored.text
        documento_id = stored.json()["id"]

        attached = await tramitador.post(
            f"{url}/documentos",
            json={"documento_id": documento_id, "titulo": "Plano del acceso"},
            headers=headers,
        )
        assert attached.status_code == 201, attached.text
        assert attached.json()["origen"] == "adjunto"
        assert attached.json()["documento_id"] == documento_id

        # Listed among the documents, in the history, and foliado with the recorded digest.
        detalle = (await tramitador.get(url, headers=headers)).json()
        assert [d["documento_id"] for d in detalle["documentos"]] == [documento_id]
        assert detalle["historial"][-1]["accion"] == "adjuntar-documento"
        foliado = (await tramitador.get(f"{url}/foliado", headers=headers)).json()["items"]
        assert [(f["orden"], f["origen"], f["documento_id"]) for f in foliado] == [
            (1, "adjunto", documento_id)
        ]
        assert foliado[0]["huella"] == hashlib.sha256(PDF).hexdigest()
        assert foliado[0]["titulo"] == "Plano del acceso"

        # A document the repositorio does not hold enters neither list.
        missing = await tramitador.post(
            f"{url}/documentos",
            json={"documento_id": "00000000-0000-4000-8000-000000000000", "titulo": "x"},
            headers=headers,
        )
        assert missing.status_code == 409, missing.text
        detalle = (await tramitador.get(url, headers=headers)).json()
        assert len(detalle["documentos"]) == 1
        assert len((await tramitador.get(f"{url}/foliado", headers=headers)).json()["items"]) == 1

        # Another council's expediente is a 404, before anything is read.
        foreign = await tramitador.post(
            f"{url}/documentos",
            json={"documento_id": documento_id, "titulo": "x"},
            headers=bearer(token(other, "tramitador", "documentos")),
        )
        assert foreign.status_code == 404


async def test_an_archived_expediente_is_listed_read_only_and_its_interesado_gets_copies(
    platform: Platform, new_tenant, token
) -> None:
    # Walked to the archive as the engine's own test walks it; the documents are issued by
    # the real chain, and only the notification's answer is published by hand.
    from tests.integration.test_tramitador_motor import walk

    tenant = await new_tenant()
    headers = bearer(token(tenant, "tramitador", "firma", "documentos"))
    events = await collect_events(platform.transport, f"{tenant}.tramitador.#")
    interesado = factories.interesado()
    async with (
        asgi_client(platform.apps["tramitador"]) as tramitador,
        asgi_client(platform.apps["repositorio"]) as repositorio,
    ):
        body = {
            "procedimiento": "expediente-sancionador",
            "asunto": "Ruidos nocturnos",
            "interesados": [interesado],
        }
        created = await tramitador.post(f"{T}/expedientes", json=body, headers=headers)
        expediente_id = created.json()["id"]
        url = f"{T}/expedientes/{expediente_id}"
        await walk(tramitador, platform, tenant, headers, events, expediente_id)

        async def archivado() -> dict[str, Any] | None:
            got = await tramitador.get(f"{T}/archivo/{expediente_id}", headers=headers)
            return got.json() if got.status_code == 200 else None

        entrada = await eventually(archivado, timeout=60)
        assert entrada["clase"] == "permanente" and entrada["numero"].startswith("EXP/")
        listed = (await tramitador.get(f"{T}/archivo", headers=headers)).json()["items"]
        assert [i["expediente_id"] for i in listed] == [expediente_id]

        # The archive froze a last índice, signed, which says E02 (cerrado).
        async def ultimo() -> dict[str, Any] | None:
            items = (await tramitador.get(f"{url}/indices", headers=headers)).json()["items"]
            return items[0] if items and items[0]["estado"] == "firmado" else None

        version = await eventually(ultimo, timeout=60)
        assert version["causa"] == "archivo"
        xml = (await tramitador.get(f"{url}/indice", headers=headers)).content
        assert errores(xml, "expediente") == []
        assert b"<eniexpmeta:Estado>E02</eniexpmeta:Estado>" in xml

        # Read-only: nothing enters or leaves its foliado, and no índice is frozen by hand.
        blocked = await tramitador.post(
            f"{url}/foliado/1/retirada", json={"motivo": "Error"}, headers=headers
        )
        assert blocked.status_code == 409, blocked.text
        assert (await tramitador.post(f"{url}/indice", headers=headers)).status_code == 409

        # The interesado's copy: the signed índice and the notified resolution.
        citizen = bearer(token(tenant, "ciudadano", nif=interesado["identificador"]))
        stranger = bearer(token(tenant, "ciudadano", nif="00000000T"))
        copia = await tramitador.get(f"{T}/mis-expedientes/{expediente_id}/indice", headers=citizen)
        assert copia.status_code == 200 and copia.content == xml
        mine = await tramitador.get(
            f"{T}/mis-expedientes/{expediente_id}/documentos", headers=citizen
        )
        notificados = mine.json()["items"]
        assert [d["titulo"] for d in notificados] and all(
            d["origen"] == "emitido" for d in notificados
        )
        resolucion = notificados[-1]
        pdf = await tramitador.get(
            f"{T}/mis-expedientes/{expediente_id}/documentos/{resolucion['orden']}",
            headers=citizen,
        )
        assert pdf.status_code == 200, pdf.text
        assert hashlib.sha256(pdf.content).hexdigest() == resolucion["huella"]
        stored = await repositorio.get(
            f"/api/v1/documentos/{resolucion['documento_id']}/contenido", headers=headers
        )
        assert stored.content == pdf.content
        # A document that was not notified, and anybody else's expediente, are 404s.
        foliado = (await tramitador.get(f"{url}/foliado", headers=headers)).json()["items"]
        otro = next(f for f in foliado if f["orden"] not in {d["orden"] for d in notificados})
        hidden = await tramitador.get(
            f"{T}/mis-expedientes/{expediente_id}/documentos/{otro['orden']}", headers=citizen
        )
        assert hidden.status_code == 404
        for path in ("indice", "documentos", f"documentos/{resolucion['orden']}"):
            got = await tramitador.get(
                f"{T}/mis-expedientes/{expediente_id}/{path}", headers=stranger
            )
            assert got.status_code == 404, path


async def test_the_anexos_of_the_starting_asiento_enter_the_foliado(
    settings: Settings, new_tenant, token
) -> None:
    pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\n%solicitud firmada\n%%EOF\n"
    plano = b"<?xml version='1.0' encoding='UTF-8'?>\n<plano>Calle Mayor, 12</plano>\n"
    async with running_platform(settings, ["registro", "tramitador", "repositorio"]) as platform:
        tenant = await new_tenant()
        headers = bearer(token(tenant, "registro", "tramitador", "documentos"))
        async with (
            asgi_client(platform.apps["registro"]) as registro,
            asgi_client(platform.apps["tramitador"]) as tramitador,
        ):
            anexos = [
                {"nombre": "solicitud.pdf", "contenido": base64.b64encode(pdf).decode()},
                {"nombre": "plano.xml", "contenido": base64.b64encode(plano).decode()},
            ]
            body = factories.asiento(anexos=anexos)
            created = await registro.post("/api/v1/registro/asientos", json=body, headers=headers)
            assert created.status_code == 201, created.text
            asiento_id = created.json()["id"]

            async def foliado() -> list[dict[str, Any]] | None:
                found = await tramitador.get(
                    f"{T}/expedientes", params={"asiento_id": asiento_id}, headers=headers
                )
                items = found.json()["items"]
                if not items:
                    return None
                got = await tramitador.get(
                    f"{T}/expedientes/{items[0]['id']}/foliado", headers=headers
                )
                entradas = got.json()["items"]
                return entradas if len(entradas) == 2 else None

            entradas = await eventually(foliado, timeout=60)
    assert [e["origen"] for e in entradas] == ["anexo", "anexo"]
    assert [e["orden"] for e in entradas] == [1, 2]
    assert {e["huella"] for e in entradas} == {
        hashlib.sha256(pdf).hexdigest(),
        hashlib.sha256(plano).hexdigest(),
    }
    assert all(e["identificador"].startswith("ES_") for e in entradas)
