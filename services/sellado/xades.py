"""XAdES-T signatures of XML documents (the ENI índice electrónico), with the tenant's seal.

Why here: the sellado is the only service that holds private keys, so an XML that a
council must sign (the tramitador's índice of an expediente) travels to it as a bus
command and comes back signed. The signature is XAdES enveloped (ENI ``TF03``),
built by signxml (no hand-written canonicalisation), over the whole document
(``URI=""`` with the enveloped-signature transform). It is placed where the
document holds a ``<ds:Signature Id="placeholder"/>`` (the ENI ``firmas`` element
says where), or appended to the root when there is none.

XAdES-T then adds, as an unsigned property, a ``SignatureTimeStamp``: an RFC 3161
token from our own TSA over the exclusive canonical form of ``ds:SignatureValue``
(ETSI EN 319 132-1, 5.3). Anyone can re-check it with ``openssl ts -verify``.

The two steps are apart because they run apart: the signature (:func:`firmar_bes`,
CPU only) runs in the sellado's document workers when it has them (see
:class:`services.sellado.trust.TrustServices`), in a thread otherwise; the time-stamp
(:func:`sellar_firma`) asks the service's TSA, whose serial numbers only the service
hands out.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree
from signxml import DigestAlgorithm, SignatureMethod
from signxml.xades import XAdESSigner

from services.sellado.pki import KeyPair
from services.sellado.sello_tiempo import SelloTiempo, TimeStamper, sellar_huella

__all__ = [
    "DS",
    "EXC_C14N",
    "XADES",
    "FirmaXml",
    "XmlNoValido",
    "find_signature",
    "firmar_bes",
    "firmar_xml",
    "sellar_firma",
    "sigvalue_c14n",
]

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"

# An XML command may not smuggle entities or reach the network while it is parsed.
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True, remove_comments=False
)


class XmlNoValido(ValueError):
    """The bytes to sign are not a well-formed XML document."""


@dataclass(frozen=True, slots=True)
class FirmaXml:
    """A signed XML and what the reply says about it."""

    xml: bytes
    sha256: str
    sello_tiempo: SelloTiempo


def sigvalue_c14n(signature: etree._Element) -> bytes:
    """The exclusive canonical form of ``ds:SignatureValue``: what the time-stamp covers."""
    value = signature.find(f"{{{DS}}}SignatureValue")
    if value is None:
        raise XmlNoValido("la firma no tiene SignatureValue")
    return etree.tostring(value, method="c14n", exclusive=True, with_comments=False)


def _sign(xml: bytes, keypair: KeyPair) -> etree._Element:
    """Signs ``xml`` (XAdES-BES enveloped) with the seal; CPU only, no I/O."""
    try:
        root = etree.fromstring(xml, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise XmlNoValido(f"no es XML bien formado: {exc}") from exc
    if root.getroottree().docinfo.doctype:
        # No DTD, hence no entity, is ever read: what is signed is what was sent.
        raise XmlNoValido("no se admite un documento con DTD (DOCTYPE)")
    method = (
        SignatureMethod.ECDSA_SHA256
        if isinstance(keypair.private_key, ec.EllipticCurvePrivateKey)
        else SignatureMethod.RSA_SHA256
    )
    signer = XAdESSigner(signature_algorithm=method, digest_algorithm=DigestAlgorithm.SHA256)
    key_pem = keypair.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    certs = [
        c.public_bytes(serialization.Encoding.PEM).decode("ascii")
        for c in (keypair.certificate, *keypair.chain)
    ]
    signed: etree._Element = signer.sign(root, key=key_pem, cert=certs)
    return signed


def firmar_bes(xml: bytes, keypair: KeyPair) -> bytes:
    """``xml`` signed XAdES-BES enveloped with ``keypair``, serialised: what a document
    worker sends back (pure CPU, no I/O; raises :class:`XmlNoValido`)."""
    signed: bytes = etree.tostring(_sign(xml, keypair), xml_declaration=True, encoding="UTF-8")
    return signed


def _add_timestamp(signature: etree._Element, token: bytes) -> None:
    """Adds the XAdES-T ``SignatureTimeStamp`` under ``UnsignedSignatureProperties``."""
    qualifying = signature.find(f".//{{{XADES}}}QualifyingProperties")
    if qualifying is None:
        raise XmlNoValido("la firma XAdES no tiene QualifyingProperties")
    unsigned = etree.SubElement(qualifying, f"{{{XADES}}}UnsignedProperties")
    props = etree.SubElement(unsigned, f"{{{XADES}}}UnsignedSignatureProperties")
    stamp = etree.SubElement(props, f"{{{XADES}}}SignatureTimeStamp")
    stamp.set("Id", f"{signature.get('Id') or 'firma'}-sello-tiempo")
    etree.SubElement(stamp, f"{{{DS}}}CanonicalizationMethod").set("Algorithm", EXC_C14N)
    encapsulated = etree.SubElement(stamp, f"{{{XADES}}}EncapsulatedTimeStamp")
    encapsulated.text = base64.b64encode(token).decode("ascii")


def find_signature(root: etree._Element) -> etree._Element:
    """The one ``ds:Signature`` of a signed document."""
    found = root.find(f".//{{{DS}}}Signature")
    if found is None:
        raise XmlNoValido("el documento no tiene ds:Signature")
    return found


async def sellar_firma(signed: bytes, *, tsa: TimeStamper) -> FirmaXml:
    """Makes a XAdES-BES signed document (:func:`firmar_bes`) XAdES-T: our TSA's token over
    the signature value, added as an unsigned property."""
    try:
        root = etree.fromstring(signed, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise XmlNoValido(f"la firma no es XML bien formado: {exc}") from exc
    signature = find_signature(root)
    huella = hashlib.sha256(sigvalue_c14n(signature)).hexdigest()
    sello = await sellar_huella(tsa, algoritmo="sha256", huella=huella)
    _add_timestamp(signature, sello.token)
    out = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return FirmaXml(xml=out, sha256=hashlib.sha256(out).hexdigest(), sello_tiempo=sello)


async def firmar_xml(xml: bytes, *, keypair: KeyPair, tsa: TimeStamper) -> FirmaXml:
    """Signs ``xml`` with ``keypair`` as XAdES-T in this process: XAdES-BES in a thread
    (off the event loop), then our TSA's token over the signature value. Raises
    :class:`XmlNoValido` for bytes that are not XML."""
    signed = await asyncio.to_thread(firmar_bes, xml, keypair)
    return await sellar_firma(signed, tsa=tsa)
