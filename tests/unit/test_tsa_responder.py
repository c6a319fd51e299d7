"""The time-stamping responder and the development PKI it signs with, without servers.

Tokens are read back with asn1crypto and their signatures checked with
cryptography, so a mistake in the hand-written DER shows up here first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, core, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.sellado.pki import ROOT_CA_NAME, DevPki, KeyFileError, KeyPair, load_pkcs12
from services.sellado.tsa import (
    DEVELOPMENT_POLICY_OID,
    InMemorySerialSource,
    TimeStampAuthority,
)

POLICY = DEVELOPMENT_POLICY_OID
OTHER_POLICY = "1.3.6.1.4.1.4146.2.2"
FROZEN = dt.datetime(2026, 11, 23, 10, 15, 30, 250000, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return DevPki.ensure(tmp_path_factory.mktemp("pki"))


def make_tsa(pki: DevPki, **options: Any) -> TimeStampAuthority:
    options.setdefault("serials", InMemorySerialSource())
    options.setdefault("clock", lambda: FROZEN)
    return TimeStampAuthority(pki.tsa, policy_oid=POLICY, **options)


@pytest.fixture
def tsa(pki: DevPki) -> TimeStampAuthority:
    return make_tsa(pki)


def ts_request(
    data: bytes = b"acta del pleno",
    *,
    algorithm: str = "sha256",
    digest: bytes | None = None,
    nonce: int | None = 0x1234_5678_9ABC_DEF0,
    cert_req: bool = True,
    policy: str | None = None,
    version: int = 1,
    null_parameters: bool = False,
    extensions: list[dict[str, Any]] | None = None,
) -> bytes:
    """A DER TimeStampReq built with asn1crypto (an independent encoder)."""
    if digest is None:
        digest = hashlib.new(algorithm, data).digest()
    hash_algorithm: dict[str, Any] = {"algorithm": algorithm}
    if null_parameters:
        hash_algorithm["parameters"] = core.Null()
    fields: dict[str, Any] = {
        "version": version,
        "message_imprint": {"hash_algorithm": hash_algorithm, "hashed_message": digest},
        "cert_req": cert_req,
    }
    if nonce is not None:
        fields["nonce"] = nonce
    if policy is not None:
        fields["req_policy"] = policy
    if extensions is not None:
        fields["extensions"] = extensions
    return tsp.TimeStampReq(fields).dump()


def granted(reply: bytes) -> tuple[cms.SignedData, tsp.TSTInfo]:
    response = tsp.TimeStampResp.load(reply)
    assert response["status"]["status"].native == "granted", response["status"].native
    signed_data = response["time_stamp_token"]["content"]
    return signed_data, signed_data["encap_content_info"]["content"].parsed


def tsa_subject(pki: DevPki) -> bytes:
    return pki.tsa.certificate.subject.public_bytes()


class TimeStampResp(tsp.TimeStampResp):
    """RFC 3161's TimeStampResp: asn1crypto 1.5 forgets that the token is OPTIONAL
    (wbond/asn1crypto#286), so it cannot read a rejection, which carries none."""

    _fields = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def rejection(reply: bytes) -> tuple[set[str], list[str]]:
    response = TimeStampResp.load(reply)
    status = response["status"]
    assert status["status"].native == "rejection"
    assert response["time_stamp_token"].native is None
    return set(status["fail_info"].native), list(status["status_string"].native)


def attribute(signer_info: cms.SignerInfo, name: str) -> Any:
    values = [a["values"] for a in signer_info["signed_attrs"] if a["type"].native == name]
    assert len(values) == 1, f"{name} must appear once"
    assert len(values[0]) == 1
    return values[0][0]


def verify_signature(reply: bytes, certificate: x509.Certificate) -> None:
    """Checks the SignerInfo signature over the signed attributes (RFC 5652 §5.4)."""
    signed_data, _ = granted(reply)
    signer_info = signed_data["signer_infos"][0]
    signed = b"\x31" + signer_info["signed_attrs"].dump()[1:]
    signature = signer_info["signature"].native
    algorithm = signer_info["signature_algorithm"]["algorithm"].native
    digest = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[
        algorithm.split("_")[0]
    ]
    public = certificate.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        assert algorithm.endswith("_rsa")
        public.verify(signature, signed, padding.PKCS1v15(), digest)
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert algorithm.endswith("_ecdsa")
        public.verify(signature, signed, ec.ECDSA(digest))


# -- granted tokens ------------------------------------------------------------------


async def test_token_carries_the_request_and_the_policy(
    tsa: TimeStampAuthority, pki: DevPki
) -> None:
    digest = hashlib.sha256(b"acta del pleno").digest()
    _, info = granted(await tsa.respond(ts_request(digest=digest, nonce=987654321)))
    assert info["version"].native == "v1"
    assert info["policy"].dotted == POLICY
    assert info["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha256"
    assert info["message_imprint"]["hashed_message"].native == digest
    assert info["nonce"].native == 987654321
    assert info["ordering"].native is False
    assert info["accuracy"].native == {"seconds": 1, "millis": None, "micros": None}
    assert info["tsa"].name == "directory_name"
    assert info["tsa"].chosen.untag().dump() == tsa_subject(pki)


@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512"])
async def test_every_sha2_imprint_is_echoed_verbatim(
    tsa: TimeStampAuthority, algorithm: str
) -> None:
    for null_parameters in (False, True):
        request = ts_request(algorithm=algorithm, null_parameters=null_parameters)
        _, info = granted(await tsa.respond(request))
        sent = tsp.TimeStampReq.load(request)["message_imprint"].dump()
        assert info["message_imprint"].dump() == sent


async def test_nonce_is_left_out_when_not_asked(tsa: TimeStampAuthority) -> None:
    _, info = granted(await tsa.respond(ts_request(nonce=None)))
    assert info["nonce"].native is None


@pytest.mark.parametrize("nonce", [0, 1, 127, 128, 255, 256, 2**63 - 1, 2**64 + 5, 2**159])
async def test_any_nonce_comes_back_unchanged(tsa: TimeStampAuthority, nonce: int) -> None:
    _, info = granted(await tsa.respond(ts_request(nonce=nonce)))
    assert info["nonce"].native == nonce


async def test_cert_req_decides_whether_the_certificate_travels(
    tsa: TimeStampAuthority, pki: DevPki
) -> None:
    certificate_der = pki.tsa.certificate.public_bytes(serialization.Encoding.DER)
    with_certificate, _ = granted(await tsa.respond(ts_request(cert_req=True)))
    sent = [c.chosen.dump() for c in with_certificate["certificates"]]
    # Only the TSA's own certificate: the root is the relying party's trust anchor.
    assert sent == [certificate_der]
    without, _ = granted(await tsa.respond(ts_request(cert_req=False)))
    assert without["certificates"].native is None


async def test_signed_attributes_name_the_tsa_certificate_rfc5816(
    tsa: TimeStampAuthority, pki: DevPki
) -> None:
    signed_data, _ = granted(await tsa.respond(ts_request()))
    assert signed_data["version"].native == "v3"
    assert signed_data["encap_content_info"]["content_type"].native == "tst_info"
    signer_info = signed_data["signer_infos"][0]
    assert signer_info["version"].native == "v1"
    certificate_der = pki.tsa.certificate.public_bytes(serialization.Encoding.DER)

    signing_certificate = attribute(signer_info, "signing_certificate_v2")
    (cert_id,) = signing_certificate["certs"]
    assert cert_id["hash_algorithm"]["algorithm"].native == "sha256"
    assert cert_id["cert_hash"].native == hashlib.sha256(certificate_der).digest()
    issuer_serial = cert_id["issuer_serial"]
    assert issuer_serial["serial_number"].native == pki.tsa.certificate.serial_number
    assert issuer_serial["issuer"][0].chosen.native["common_name"] == ROOT_CA_NAME
    # DER leaves out a DEFAULT value: SHA-256 must not be written (RFC 5816 §2.2.1).
    assert b"\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01" not in cert_id.dump()

    assert attribute(signer_info, "content_type").native == "tst_info"
    e_content = signed_data["encap_content_info"]["content"].contents
    assert attribute(signer_info, "message_digest").native == hashlib.sha256(e_content).digest()
    sid = signer_info["sid"].chosen
    assert sid["serial_number"].native == pki.tsa.certificate.serial_number


async def test_signed_attributes_are_a_der_sorted_set(tsa: TimeStampAuthority) -> None:
    signed_data, _ = granted(await tsa.respond(ts_request()))
    encoded = [a.dump() for a in signed_data["signer_infos"][0]["signed_attrs"]]
    assert len(encoded) == 3
    assert encoded == sorted(encoded)


async def test_signature_verifies_and_fails_when_tampered(
    tsa: TimeStampAuthority, pki: DevPki
) -> None:
    reply = await tsa.respond(ts_request())
    verify_signature(reply, pki.tsa.certificate)
    signed_data, _ = granted(reply)
    digest = attribute(signed_data["signer_infos"][0], "message_digest").native
    tampered = reply.replace(digest, bytes(b ^ 0xFF for b in digest))
    with pytest.raises(InvalidSignature):
        verify_signature(tampered, pki.tsa.certificate)


async def test_gen_time_is_utc_with_its_fraction(pki: DevPki) -> None:
    madrid = dt.timezone(dt.timedelta(hours=1))
    local = dt.datetime(2026, 11, 23, 11, 15, 30, 120000, tzinfo=madrid)
    reply = await make_tsa(pki, clock=lambda: local).respond(ts_request())
    _, info = granted(reply)
    assert info["gen_time"].native == local.astimezone(dt.UTC)
    assert info["gen_time"].contents == b"20261123101530.12Z"

    whole = dt.datetime(2026, 11, 23, 10, 15, 30, tzinfo=dt.UTC)
    _, info = granted(await make_tsa(pki, clock=lambda: whole).respond(ts_request()))
    assert info["gen_time"].contents == b"20261123101530Z"


async def test_default_clock_is_now_in_utc(pki: DevPki) -> None:
    tsa = TimeStampAuthority(pki.tsa, policy_oid=POLICY, serials=InMemorySerialSource())
    before = dt.datetime.now(dt.UTC)
    _, info = granted(await tsa.respond(ts_request()))
    after = dt.datetime.now(dt.UTC)
    assert before - dt.timedelta(seconds=1) <= info["gen_time"].native <= after
    assert info["gen_time"].native.utcoffset() == dt.timedelta(0)


async def test_accuracy_is_declared_as_configured(pki: DevPki) -> None:
    _, info = granted(await make_tsa(pki, accuracy_ms=1500).respond(ts_request()))
    assert info["accuracy"].native == {"seconds": 1, "millis": 500, "micros": None}
    _, info = granted(await make_tsa(pki, accuracy_ms=250).respond(ts_request()))
    assert info["accuracy"].native == {"seconds": None, "millis": 250, "micros": None}


async def test_serial_numbers_increase_and_rejections_spend_none(pki: DevPki) -> None:
    tsa = make_tsa(pki, serials=InMemorySerialSource(start=41))
    serials = []
    for _ in range(3):
        _, info = granted(await tsa.respond(ts_request()))
        serials.append(info["serial_number"].native)
        rejection(await tsa.respond(b"not a request"))
    assert serials == [41, 42, 43]


async def test_request_naming_our_policy_is_granted(tsa: TimeStampAuthority) -> None:
    _, info = granted(await tsa.respond(ts_request(policy=POLICY)))
    assert info["policy"].dotted == POLICY


async def test_tsa_name_can_be_left_out(pki: DevPki) -> None:
    _, info = granted(await make_tsa(pki, include_tsa_name=False).respond(ts_request()))
    assert info["tsa"].native is None


# -- rejections ----------------------------------------------------------------------

_VALID = ts_request()


@pytest.mark.parametrize(
    ("request_der", "failure"),
    [
        pytest.param(ts_request(algorithm="sha1"), "bad_alg", id="sha1"),
        pytest.param(ts_request(algorithm="md5"), "bad_alg", id="md5"),
        pytest.param(ts_request(algorithm="sha224"), "bad_alg", id="sha224"),
        pytest.param(ts_request(algorithm="sha3_256"), "bad_alg", id="sha3-256"),
        pytest.param(ts_request(version=2), "bad_request", id="version-2"),
        pytest.param(ts_request(digest=bytes(20)), "bad_request", id="short-imprint"),
        pytest.param(
            ts_request(algorithm="sha512", digest=bytes(32)), "bad_request", id="sha512-of-32"
        ),
        pytest.param(b"", "bad_data_format", id="empty"),
        pytest.param(b"hola, ayuntamiento", "bad_data_format", id="garbage"),
        pytest.param(os.urandom(300), "bad_data_format", id="random"),
        pytest.param(_VALID[:-3], "bad_data_format", id="truncated"),
        pytest.param(_VALID + b"\x00", "bad_data_format", id="trailing-octet"),
        pytest.param(
            b"\x30\x80" + _VALID[2:] + b"\x00\x00", "bad_data_format", id="ber-indefinite"
        ),
        pytest.param(
            b"\x30\x81" + _VALID[1:2] + _VALID[2:], "bad_data_format", id="non-minimal-length"
        ),
        pytest.param(
            b"\x30\x05" + tsp.PKIStatusInfo({"status": "granted"}).dump(),
            "bad_data_format",
            id="a-response",
        ),
        pytest.param(ts_request(policy=OTHER_POLICY), "unaccepted_policy", id="other-policy"),
        pytest.param(
            ts_request(
                extensions=[{"extn_id": "1.2.3.4", "critical": False, "extn_value": b"\x05\x00"}]
            ),
            "unaccepted_extensions",
            id="extension",
        ),
    ],
)
async def test_every_failure_is_a_rejection_with_its_bit(
    tsa: TimeStampAuthority, request_der: bytes, failure: str
) -> None:
    reply = await tsa.respond(request_der)
    failures, texts = rejection(reply)
    assert failures == {failure}
    assert texts and all(texts)
    # The DER must be what a strict encoder writes, bit string padding included.
    status = TimeStampResp.load(reply)["status"]
    assert reply[2:] == status.dump() == tsp.PKIStatusInfo.load(status.dump()).dump(force=True)


async def test_rejection_names_the_refused_algorithm(tsa: TimeStampAuthority) -> None:
    _, texts = rejection(await tsa.respond(ts_request(algorithm="sha1")))
    assert "sha1" in texts[0] and "SHA-256" in texts[0]
    _, texts = rejection(await tsa.respond(ts_request(policy=OTHER_POLICY)))
    assert OTHER_POLICY in texts[0]


class _BrokenSerials:
    async def next(self) -> int:
        raise ConnectionError("database unreachable")


async def test_internal_failures_become_system_failure_without_leaking_keys(
    pki: DevPki, caplog: pytest.LogCaptureFixture
) -> None:
    tsa = make_tsa(pki, serials=_BrokenSerials())
    failures, texts = rejection(await tsa.respond(ts_request()))
    assert failures == {"system_failure"}
    assert "database" not in texts[0]
    assert "time stamp failed" in caplog.text
    key = pki.tsa.private_key
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    secret = key.private_numbers().private_value  # type: ignore[union-attr]
    assert pem.splitlines()[1] not in caplog.text
    assert str(secret) not in caplog.text and f"{secret:x}" not in caplog.text


async def test_a_naive_clock_is_a_system_failure(pki: DevPki) -> None:
    tsa = make_tsa(pki, clock=lambda: dt.datetime(2026, 1, 1))
    failures, _ = rejection(await tsa.respond(ts_request()))
    assert failures == {"system_failure"}


# -- precomputation --------------------------------------------------------------------


class _CountingCertificate:
    """Stands in for the TSA certificate and counts how often it is encoded."""

    def __init__(self, certificate: x509.Certificate) -> None:
        self._certificate = certificate
        self.encodings = 0

    def public_bytes(self, encoding: serialization.Encoding) -> bytes:
        self.encodings += 1
        return self._certificate.public_bytes(encoding)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._certificate, name)


async def test_constant_parts_are_encoded_once_not_per_token(
    pki: DevPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = _CountingCertificate(pki.tsa.certificate)
    pair = KeyPair(counting, pki.tsa.private_key, pki.tsa.chain)  # type: ignore[arg-type]
    tsa = TimeStampAuthority(pair, policy_oid=POLICY, serials=InMemorySerialSource())
    after_init = counting.encodings
    assert after_init >= 1

    built: list[str] = []
    original_init: Callable[..., None] = core.Asn1Value.__init__

    def counting_init(self: core.Asn1Value, *args: Any, **kwargs: Any) -> None:
        built.append(type(self).__name__)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(core.Asn1Value, "__init__", counting_init)
    requests = [ts_request(nonce=n) for n in range(50)]
    built.clear()
    replies = [await tsa.respond(r) for r in requests]
    monkeypatch.undo()

    assert counting.encodings == after_init, "the certificate was encoded again per token"
    assert built == [], f"asn1crypto objects built per token: {sorted(set(built))}"
    certificate_der = pki.tsa.certificate.public_bytes(serialization.Encoding.DER)
    assert all(certificate_der in reply for reply in replies)
    verify_signature(replies[-1], pki.tsa.certificate)


async def test_respond_is_far_faster_than_a_naive_responder(tsa: TimeStampAuthority) -> None:
    # A naive asn1crypto responder makes ~115 tokens/s; this one several thousand.
    # The bound leaves a wide margin for slow CI machines.
    request = ts_request()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.5:
        await tsa.respond(request)
        count += 1
    assert count / (time.perf_counter() - start) > 1000


# -- other keys ------------------------------------------------------------------------


def _self_made_tsa(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> KeyPair:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TSA")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return KeyPair(certificate, key, (ca,))


@pytest.mark.parametrize(
    ("key", "digest"),
    [
        pytest.param(rsa.generate_private_key(65537, 2048), "sha256", id="rsa-2048"),
        pytest.param(ec.generate_private_key(ec.SECP384R1()), "sha384", id="p-384"),
    ],
)
async def test_rsa_and_larger_curves_sign_with_their_digest(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, digest: str
) -> None:
    pair = _self_made_tsa(key)
    tsa = TimeStampAuthority(pair, policy_oid=POLICY, serials=InMemorySerialSource())
    reply = await tsa.respond(ts_request())
    verify_signature(reply, pair.certificate)
    signed_data, _ = granted(reply)
    assert [a["algorithm"].native for a in signed_data["digest_algorithms"]] == [digest]
    signer_info = signed_data["signer_infos"][0]
    e_content = signed_data["encap_content_info"]["content"].contents
    expected = hashlib.new(digest, e_content).digest()
    assert attribute(signer_info, "message_digest").native == expected


def test_a_certificate_without_critical_time_stamping_is_refused(pki: DevPki) -> None:
    seal = pki.seal_for("03014", "Ayuntamiento de Alicante")
    with pytest.raises(ValueError, match="timeStamping"):
        TimeStampAuthority(seal, policy_oid=POLICY, serials=InMemorySerialSource())


# -- development PKI -------------------------------------------------------------------


def _extension(certificate: x509.Certificate, kind: type[Any]) -> x509.Extension[Any]:
    return certificate.extensions.get_extension_for_class(kind)


def test_root_is_a_p256_ca(pki: DevPki) -> None:
    root = pki.root
    assert root.subject == root.issuer
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ROOT_CA_NAME
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert root.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    constraints = _extension(root, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = _extension(root, x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    root.verify_directly_issued_by(root)
    assert pki.root_pem() == root.public_bytes(serialization.Encoding.PEM)


def test_tsa_certificate_is_fit_for_time_stamping_only(pki: DevPki) -> None:
    certificate = pki.tsa.certificate
    certificate.verify_directly_issued_by(pki.root)
    assert pki.tsa.chain == (pki.root,)
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
    eku = _extension(certificate, x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    usage = _extension(certificate, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert not usage.value.key_cert_sign
    assert not _extension(certificate, x509.BasicConstraints).value.ca
    assert "Consistorio Development TSA" in pki.tsa.subject


def test_keys_are_private_and_kept_across_restarts(tmp_path: Path) -> None:
    first = DevPki.ensure(tmp_path / "pki")
    seal = first.seal_for("46250", "Ayuntamiento de València")
    again = DevPki.ensure(tmp_path / "pki")
    assert again.root == first.root
    assert again.tsa.certificate == first.tsa.certificate
    assert again.seal_for("46250", "Ayuntamiento de València").certificate == seal.certificate
    keys = sorted((tmp_path / "pki").rglob("*.key.pem"))
    assert len(keys) == 3
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "pki").stat().st_mode) == 0o700


def test_a_half_written_pair_is_issued_again(tmp_path: Path) -> None:
    first = DevPki.ensure(tmp_path)
    (tmp_path / "tsa.cert.pem").unlink()
    again = DevPki.ensure(tmp_path)
    assert again.root == first.root
    assert again.tsa.certificate != first.tsa.certificate
    again.tsa.certificate.verify_directly_issued_by(again.root)


def test_a_new_root_reissues_what_it_signs(tmp_path: Path) -> None:
    first = DevPki.ensure(tmp_path)
    for name in ("root-ca.key.pem", "root-ca.cert.pem"):
        (tmp_path / name).unlink()
    again = DevPki.ensure(tmp_path)
    assert again.root != first.root
    again.tsa.certificate.verify_directly_issued_by(again.root)


def test_seal_names_the_council(pki: DevPki) -> None:
    seal = pki.seal_for("28079", "Ayuntamiento de Madrid")
    subject = seal.certificate.subject

    def value(oid: x509.ObjectIdentifier) -> str:
        return str(subject.get_attributes_for_oid(oid)[0].value)

    assert value(NameOID.ORGANIZATION_NAME) == "Ayuntamiento de Madrid"
    assert value(NameOID.COMMON_NAME) == "Sello electrónico de Ayuntamiento de Madrid"
    assert value(NameOID.SERIAL_NUMBER) == "28079"
    assert value(NameOID.ORGANIZATION_IDENTIFIER).endswith("28079")
    assert value(NameOID.COUNTRY_NAME) == "ES"
    key = seal.private_key
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    usage = _extension(seal.certificate, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    seal.certificate.verify_directly_issued_by(pki.root)
    assert seal.chain == (pki.root,)
    assert pki.seal_for("28079", "Ayuntamiento de Madrid") is seal


def test_a_renamed_council_gets_a_new_seal(pki: DevPki) -> None:
    old = pki.seal_for("15030", "Concello da Coruña")
    new = pki.seal_for("15030", "Concello da  Coruña (A)")
    assert new.certificate != old.certificate
    names = new.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert names[0].value == "Concello da Coruña (A)"


def test_long_council_names_fit_x509_bounds(pki: DevPki) -> None:
    nombre = "Ayuntamiento de " + "Villanueva de la Cañada y Alrededores " * 3
    seal = pki.seal_for("28176", nombre)
    for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
        assert len(str(seal.certificate.subject.get_attributes_for_oid(oid)[0].value)) <= 64


@pytest.mark.parametrize("ine", ["3014", "030140", "../00", "abcde", ""])
def test_seal_needs_an_ine_code(pki: DevPki, ine: str) -> None:
    with pytest.raises(ValueError, match="INE"):
        pki.seal_for(ine, "Ayuntamiento")


def test_keypair_never_shows_its_key(pki: DevPki) -> None:
    seal = pki.seal_for("03014", "Ayuntamiento de Alicante")
    numbers = seal.private_key.private_numbers()
    assert isinstance(numbers, rsa.RSAPrivateNumbers)
    shown = repr(seal) + str(seal)
    assert "private_key" not in shown
    assert str(numbers.d) not in shown and f"{numbers.p:x}" not in shown
    chain = seal.chain_pem()
    assert chain.count(b"BEGIN CERTIFICATE") == 2 and b"PRIVATE" not in chain
    assert seal.chain_pem(include_root=False) == seal.certificate_pem()


def test_a_key_that_is_not_the_certificate_s_is_refused(pki: DevPki) -> None:
    with pytest.raises(KeyFileError, match="does not match"):
        KeyPair(pki.tsa.certificate, ec.generate_private_key(ec.SECP256R1()))


def test_pkcs12_files_load_with_their_chain_in_order(pki: DevPki, tmp_path: Path) -> None:
    seal = pki.seal_for("03014", "Ayuntamiento de Alicante")
    stranger = DevPki.ensure(tmp_path / "otra").root
    passphrase = b"contrase\xc3\xb1a-de-prueba"
    data = pkcs12.serialize_key_and_certificates(
        b"sello",
        seal.private_key,
        seal.certificate,
        [stranger, pki.root],
        serialization.BestAvailableEncryption(passphrase),
    )
    path = tmp_path / "03014.p12"
    path.write_bytes(data)

    loaded = load_pkcs12(path, passphrase)
    assert loaded.certificate == seal.certificate
    assert loaded.chain == (pki.root,)
    assert loaded.private_key.private_numbers() == seal.private_key.private_numbers()

    with pytest.raises(KeyFileError) as wrong:
        load_pkcs12(path, b"otra")
    assert "03014.p12" in str(wrong.value) and "otra" not in str(wrong.value)
    assert wrong.value.__cause__ is None and wrong.value.__suppress_context__
    with pytest.raises(KeyFileError):
        load_pkcs12(tmp_path / "missing.p12", None)
