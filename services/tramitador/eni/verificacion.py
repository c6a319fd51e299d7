"""Verification of an exported ENI ZIP: the índice's XAdES signature and time-stamp, and
every document's digest against the índice. Runs in a worker process (CpuPool).

- The signature is checked by signxml against the certificate the signature carries
  (``ds:KeyInfo``): every reference, so any change to the índice, its metadata or the
  signed properties breaks it. Who signed is named.
- The XAdES-T time-stamp (``SignatureTimeStamp``) must cover the exclusive canonical
  form of ``ds:SignatureValue`` and be signed by the TSA certificate it carries.
- Both certificates must chain to the platform's trust anchor (``cadena_confiable``):
  without it, anyone could re-sign a changed índice with a certificate of their own
  and the two checks above would pass. The tramitador holds no key and imports no
  sellado: the anchor is a PEM file named by configuration
  (``TRAMITADOR_TRUST_ANCHOR_PEM``; ``consistorio up`` names the sellado's). The path
  is built and checked by cryptography's X.509 verifier (RFC 5280 path building,
  signatures, validity, CA constraints of the Web PKI profile; the end certificate's
  extensions are not held to a TLS profile), at the time-stamp's date when it is valid:
  an expired seal still proves what it signed while it was current.
- Each ``DocumentoIndizado`` must have its ``documentoEni`` in the ZIP, and the digest of
  its content must be the índice's ``ValorHuella``; a document that fails is named.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from lxml import etree
from signxml.exceptions import InvalidInput, SignXMLException
from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier

from services.tramitador.eni import domain

__all__ = ["MAX_INDICE_BYTES", "anclas_de", "cadena", "verificar_zip"]

XADES = "http://uri.etsi.org/01903/v1.3.2#"
MAX_INDICE_BYTES = 32 * 1024 * 1024
# A documentoEni is read whole (its base64 text) to hash it: one larger than this, by its
# declared or its real size, is reported ilegible rather than risk the worker's memory.
MAX_DOCUMENTO_BYTES = 512 * 1024 * 1024
_PARSER_OPTS = {"resolve_entities": False, "no_network": True, "load_dtd": False}
_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _parser() -> etree.XMLParser:
    return etree.XMLParser(huge_tree=True, **_PARSER_OPTS)


def _certificados_keyinfo(root: etree._Element) -> list[str]:
    """Every certificate of the signature's ``ds:KeyInfo``, PEM, in the order they come
    (the first is the signer's: the one signxml checks the signature against)."""
    keyinfo = root.find(f".//{{{domain.DS}}}Signature/{{{domain.DS}}}KeyInfo")
    if keyinfo is None:
        return []
    pems = []
    for cert in keyinfo.iter(f"{{{domain.DS}}}X509Certificate"):
        body = "".join((cert.text or "").split())
        if body:
            lines = [body[i : i + 64] for i in range(0, len(body), 64)]
            pems.append(
                "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"
            )
    return pems


def _pem_del_keyinfo(root: etree._Element) -> str | None:
    pems = _certificados_keyinfo(root)
    return pems[0] if pems else None


def anclas_de(ruta: str | None) -> tuple[list[x509.Certificate], str | None]:
    """The trust anchors in the PEM file at ``ruta``, or none and why."""
    if not ruta:
        return [], (
            "No hay ancla de confianza configurada (TRAMITADOR_TRUST_ANCHOR_PEM): no se "
            "puede saber si el firmante es de confianza."
        )
    try:
        data = Path(ruta).read_bytes()
    except OSError as exc:
        return [], f"No se pudo leer el ancla de confianza: {exc.strerror}."
    try:
        return x509.load_pem_x509_certificates(data), None
    except ValueError:
        return [], "El ancla de confianza configurada no es un PEM de certificados."


def cadena(
    certificado: x509.Certificate,
    intermedios: list[x509.Certificate],
    anclas: list[x509.Certificate],
    momento: datetime | None = None,
) -> dict[str, Any]:
    """Whether ``certificado`` chains to one of ``anclas`` (through ``intermedios``) at
    ``momento`` (now by default): ``cadena_confiable`` and the anchor, or why not."""
    if not anclas:
        return {"cadena_confiable": False}
    verifier = (
        PolicyBuilder()
        .store(Store(anclas))
        .time(momento or datetime.now(UTC))
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        verificada = verifier.verify(certificado, intermedios)
    except VerificationError as exc:
        return {
            "cadena_confiable": False,
            "motivo_cadena": f"El certificado no enlaza con el ancla de confianza: {exc}",
        }
    return {"cadena_confiable": True, "ancla": _cn(verificada.chain[-1])}


def _cadena_firma(
    xml: bytes, anclas: list[x509.Certificate], momento: datetime | None
) -> dict[str, Any]:
    pems = _certificados_keyinfo(etree.fromstring(xml, _parser()))
    certs = [x509.load_pem_x509_certificate(p.encode("ascii")) for p in pems]
    return cadena(certs[0], certs[1:], anclas, momento)


def _cn(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


def _verificar_firma(xml: bytes) -> dict[str, Any]:
    try:
        root = etree.fromstring(xml, _parser())
    except etree.XMLSyntaxError as exc:
        return {"valida": False, "motivo": f"indice.xml no es XML bien formado: {exc}"}
    pem = _pem_del_keyinfo(root)
    if pem is None:
        return {"valida": False, "motivo": "La firma no lleva su certificado (ds:X509Certificate)."}
    try:
        XAdESVerifier().verify(
            xml, x509_cert=pem, expect_config=XAdESSignatureConfiguration(expect_references=3)
        )
    except (InvalidInput, SignXMLException, ValueError) as exc:
        return {"valida": False, "motivo": f"La firma XAdES no es válida: {exc}"}
    certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
    return {
        "valida": True,
        "firmante": _cn(certificate),
        "emisor": certificate.issuer.rfc4514_string(),
    }


def _verificar_cms(token: bytes, datos: bytes) -> datetime:
    """Checks an RFC 3161 token over ``datos``; its genTime, or ValueError saying why."""
    return _verificar_token(token, datos)[0]


def _verificar_token(
    token: bytes, datos: bytes
) -> tuple[datetime, x509.Certificate, list[x509.Certificate]]:
    """Checks an RFC 3161 token over ``datos``: its genTime, the TSA's certificate and the
    other certificates it carries; ValueError saying why not."""
    signed = cms.ContentInfo.load(token)["content"]
    encap = signed["encap_content_info"]
    # Read as TSTInfo explicitly: a worker process may never have loaded asn1crypto.tsp,
    # and without it the content type is not known to asn1crypto.
    tst = tsp.TSTInfo.load(encap["content"].contents)
    imprint = tst["message_imprint"]
    algoritmo = imprint["hash_algorithm"]["algorithm"].native
    if hashlib.new(algoritmo, datos).digest() != imprint["hashed_message"].native:
        raise ValueError("El sello de tiempo no cubre el valor de la firma.")
    signer = signed["signer_infos"][0]
    sid = signer["sid"].chosen
    certificado = None
    otros = []
    for choice in signed["certificates"] or []:
        cert = choice.chosen
        if cert.issuer == sid["issuer"] and cert.serial_number == sid["serial_number"].native:
            certificado = x509.load_der_x509_certificate(cert.dump())
        else:
            otros.append(x509.load_der_x509_certificate(cert.dump()))
    if certificado is None:
        raise ValueError("El sello de tiempo no lleva el certificado de la TSA.")
    digest_alg = signer["digest_algorithm"]["algorithm"].native
    contenido = encap["content"].contents
    attrs = signer["signed_attrs"]
    digest = next(
        (a["values"][0].native for a in attrs if a["type"].native == "message_digest"), None
    )
    if digest != hashlib.new(digest_alg, contenido).digest():
        raise ValueError("El contenido del sello de tiempo no coincide con su firma.")
    firmado = b"\x31" + attrs.dump()[1:]  # the SET OF the signed attributes (RFC 5652, 5.4)
    hash_cls = _HASHES[digest_alg]()
    key = certificado.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signer["signature"].native, firmado, padding.PKCS1v15(), hash_cls)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signer["signature"].native, firmado, ec.ECDSA(hash_cls))
        else:
            raise ValueError("Clave de la TSA no admitida.")
    except InvalidSignature as exc:
        raise ValueError("La firma del sello de tiempo no es válida.") from exc
    gen_time: datetime = tst["gen_time"].native
    return gen_time, certificado, otros


def _verificar_sello(xml: bytes, anclas: list[x509.Certificate] | None = None) -> dict[str, Any]:
    """The XAdES-T time-stamp: valid over the signature value, and (with ``anclas``)
    whether the TSA chains to them at the token's own date."""
    try:
        root = etree.fromstring(xml, _parser())
        signature = root.find(f".//{{{domain.DS}}}Signature")
        stamp = root.find(f".//{{{XADES}}}SignatureTimeStamp/{{{XADES}}}EncapsulatedTimeStamp")
        if signature is None or stamp is None or not stamp.text:
            return {"valido": False, "motivo": "La firma no lleva sello de tiempo (XAdES-T)."}
        value = signature.find(f"{{{domain.DS}}}SignatureValue")
        if value is None:
            return {"valido": False, "motivo": "La firma no tiene SignatureValue."}
        datos = etree.tostring(value, method="c14n", exclusive=True, with_comments=False)
        gen_time, tsa, otros = _verificar_token(base64.b64decode(stamp.text), datos)
    except (ValueError, KeyError, TypeError, etree.XMLSyntaxError) as exc:
        return {"valido": False, "motivo": str(exc)}
    resultado: dict[str, Any] = {
        "valido": True,
        "fecha": gen_time.isoformat(),
        "firmante": _cn(tsa),
    }
    if anclas is not None:
        resultado.update(cadena(tsa, otros, anclas, gen_time))
    return resultado


def _indizados(xml: bytes) -> list[dict[str, str]]:
    root = etree.fromstring(xml, _parser())
    ns = {"c": domain.NS["eniconexpind"]}
    return [
        {
            "identificador": e.findtext("c:IdentificadorDocumento", namespaces=ns) or "",
            "huella": e.findtext("c:ValorHuella", namespaces=ns) or "",
            "funcion": e.findtext("c:FuncionResumen", namespaces=ns) or "",
            "orden": e.findtext("c:OrdenDocumentoExpediente", namespaces=ns) or "",
        }
        for e in root.iter(f"{{{domain.NS['eniconexpind']}}}DocumentoIndizado")
    ]


class _Limitado:
    """A file read no further than ``limite`` bytes (a ZIP entry may lie about its size)."""

    def __init__(self, raw: Any, limite: int) -> None:
        self._raw = raw
        self._resto = limite

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._raw.read(n if n >= 0 else self._resto + 1)
        self._resto -= len(data)
        if self._resto < 0:
            raise ValueError("documento demasiado grande")
        return data


def _documento(archive: zipfile.ZipFile, nombre: str) -> tuple[str | None, bytes | None]:
    """The identificador and decoded content of one ``documentoEni`` in the ZIP."""
    identificador: str | None = None
    contenido: bytes | None = None
    meta = f"{{{domain.NS['enidocmeta']}}}Identificador"
    valor = f"{{{domain.NS['enifile']}}}ValorBinario"
    with archive.open(nombre) as abierto:
        stream = _Limitado(abierto, MAX_DOCUMENTO_BYTES)
        for _event, element in etree.iterparse(
            stream, events=("end",), tag=(meta, valor), huge_tree=True, **_PARSER_OPTS
        ):
            if element.tag == meta:
                identificador = (element.text or "").strip()
            else:
                contenido = base64.b64decode("".join((element.text or "").split()))
            element.clear()
    return identificador, contenido


def verificar_zip(path: str, ancla: str | None = None) -> dict[str, Any]:
    """Verifies the ENI export at ``path`` against the trust anchors in the PEM file
    ``ancla``; what was checked, and each failing document."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        return {"valido": False, "motivo": "No es un fichero ZIP.", "documentos": []}
    with archive:
        try:
            info = archive.getinfo("indice.xml")
        except KeyError:
            return {"valido": False, "motivo": "El ZIP no tiene indice.xml.", "documentos": []}
        if info.file_size > MAX_INDICE_BYTES:
            return {"valido": False, "motivo": "indice.xml es demasiado grande.", "documentos": []}
        xml = archive.read(info)
        anclas, sin_ancla = anclas_de(ancla)
        firma = _verificar_firma(xml)
        if firma["valida"]:
            sello = _verificar_sello(xml, anclas)
            sello.setdefault("cadena_confiable", False)
            momento = datetime.fromisoformat(sello["fecha"]) if sello["valido"] else None
            firma.update(_cadena_firma(xml, anclas, momento))
            if sin_ancla:
                firma["motivo_cadena"] = sello["motivo_cadena"] = sin_ancla
        else:
            sello = {"valido": False, "motivo": "Sin firma válida."}
            firma["cadena_confiable"] = sello["cadena_confiable"] = False
        try:
            indizados = _indizados(xml)
        except etree.XMLSyntaxError:
            indizados = []
        contenidos: dict[str, tuple[str, bytes | None]] = {}
        for nombre in archive.namelist():
            if nombre.startswith("documentos/") and nombre.endswith(".xml"):
                if archive.getinfo(nombre).file_size > MAX_DOCUMENTO_BYTES:
                    continue
                try:
                    identificador, contenido = _documento(archive, nombre)
                except (etree.XMLSyntaxError, ValueError, zipfile.BadZipFile):
                    identificador, contenido = None, None
                if identificador:
                    contenidos[identificador] = (nombre, contenido)
        documentos = []
        for entrada in indizados:
            fichero, contenido = contenidos.get(entrada["identificador"], (None, None))
            if fichero is None:
                estado = "ausente"
            elif contenido is None or entrada["funcion"] not in domain.FUNCIONES_RESUMEN.values():
                estado = "ilegible"
            elif domain.huella_eni(entrada["funcion"], contenido) != entrada["huella"]:
                estado = "alterado"
            else:
                estado = "integro"
            documentos.append(
                {
                    "orden": entrada["orden"],
                    "identificador": entrada["identificador"],
                    "fichero": fichero,
                    "estado": estado,
                }
            )
    fallidos = [d for d in documentos if d["estado"] != "integro"]
    valido = bool(
        firma["valida"]
        and firma["cadena_confiable"]
        and sello["valido"]
        and sello["cadena_confiable"]
        and documentos
        and not fallidos
    )
    return {
        "valido": valido,
        "firma": firma,
        "sello_tiempo": sello,
        "documentos": documentos,
        "alterados": [d["fichero"] or d["identificador"] for d in fallidos],
    }
