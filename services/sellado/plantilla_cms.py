"""A seal key's CMS container, prepared once and filled in per seal.

A PAdES seal's CMS ``SignedData`` differs from one seal to the next of the same key only
in three places: the document digest inside the signed attributes, the signature over
those attributes, and the signature time-stamp token. Everything else (the signer's
identifiers, the algorithms, the certificates, the signing-certificate-v2 attribute) is
the same bytes every time. pyhanko builds the whole structure anew through asn1crypto on
every seal, which costs several times the RSA signature itself.

So the container is taken once per key from pyhanko's own output, cut at those three
places, and each seal joins the constant pieces around the new values with plain DER
length prefixes. The result is the structure pyhanko would have written, byte for byte
(a test holds us to that); pyhanko still writes the PDF, and every check the suite makes
(pyhanko validation, pdfsig, NSS) still reads the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import cms

__all__ = ["PlantillaCms", "der"]

# id-aa-signatureTimeStampToken (RFC 3161, appendix A), already DER-encoded with its tag.
_OID_SIGNATURE_TIME_STAMP_TOKEN = bytes.fromhex("060b2a864886f70d010910020e")

_SET = 0x31
_SEQUENCE = 0x30
_OCTET_STRING = 0x04
_CONTEXT_0 = 0xA0
_CONTEXT_1 = 0xA1


def der(tag: int, content: bytes) -> bytes:
    """One DER TLV: the tag byte, the definite length, the content."""
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


@dataclass(frozen=True)
class PlantillaCms:
    """The constant pieces of one key's PAdES container, around the places that vary.

    ``digest_at`` is where the document digest sits inside the signed attributes'
    content; the digest's length is fixed by the digest algorithm.
    """

    content_info_head: bytes
    signed_data_head: bytes
    signer_info_head: bytes
    signed_attrs: bytes
    digest_at: int
    digest_size: int
    signature_algorithm: bytes

    @classmethod
    def from_container(cls, container: cms.ContentInfo, digest: bytes) -> PlantillaCms:
        """Cuts ``container`` (a seal pyhanko made over ``digest``, no unsigned attributes).

        Raises ``ValueError`` when the container is not shaped as expected, so a caller
        can keep using pyhanko's general path instead.
        """
        loaded = cms.ContentInfo.load(container.dump())
        signed_data = loaded["content"]
        signer_infos = signed_data["signer_infos"]
        if len(signer_infos) != 1:
            raise ValueError("a seal container carries exactly one SignerInfo")
        signer_info = signer_infos[0]
        if signer_info["unsigned_attrs"].dump():
            raise ValueError("the template must not carry unsigned attributes")
        tail = signer_infos.dump()
        if not signed_data.contents.endswith(tail):
            raise ValueError("the SignerInfos are not the SignedData's last field")
        attrs = signer_info["signed_attrs"].contents
        if attrs.count(digest) != 1:
            raise ValueError("the digest must appear exactly once in the signed attributes")
        head = b"".join(signer_info[name].dump() for name in ("version", "sid", "digest_algorithm"))
        return cls(
            content_info_head=loaded["content_type"].dump(),
            signed_data_head=signed_data.contents[: -len(tail)],
            signer_info_head=head,
            signed_attrs=attrs,
            digest_at=attrs.index(digest),
            digest_size=len(digest),
            signature_algorithm=signer_info["signature_algorithm"].dump(),
        )

    def signed_attrs_for(self, digest: bytes) -> bytes:
        """The signed attributes over ``digest``, DER-encoded as the SET that is signed."""
        if len(digest) != self.digest_size:
            raise ValueError(f"a digest of {self.digest_size} bytes was expected")
        start, end = self.digest_at, self.digest_at + self.digest_size
        return der(_SET, self.signed_attrs[:start] + digest + self.signed_attrs[end:])

    def container(self, signed_attrs: bytes, signature: bytes, token: bytes | None) -> bytes:
        """The DER ``ContentInfo``: ``signed_attrs`` as :meth:`signed_attrs_for` made them.

        ``token`` is the DER time-stamp token over the signature, or ``None`` for none.
        """
        # In the SignerInfo the signed attributes are [0] IMPLICIT, not a SET.
        implicit_attrs = bytes((_CONTEXT_0,)) + signed_attrs[1:]
        unsigned = b""
        if token is not None:
            attribute = der(_SEQUENCE, _OID_SIGNATURE_TIME_STAMP_TOKEN + der(_SET, token))
            unsigned = der(_CONTEXT_1, attribute)
        signer_info = der(
            _SEQUENCE,
            self.signer_info_head
            + implicit_attrs
            + self.signature_algorithm
            + der(_OCTET_STRING, signature)
            + unsigned,
        )
        signed_data = der(_SEQUENCE, self.signed_data_head + der(_SET, signer_info))
        return der(_SEQUENCE, self.content_info_head + der(_CONTEXT_0, signed_data))
