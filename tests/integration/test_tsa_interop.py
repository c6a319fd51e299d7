"""The TSA against other implementations: OpenSSL's ``ts`` verifier, pyHanko's
validator, HTTP through the real router, and serials from the real PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.db import asyncpg_url
from services.common.errors import PROBLEM_JSON, install_problem_handlers
from services.common.settings import load_settings
from services.sellado import tsa_api
from services.sellado.pki import DevPki
from services.sellado.tsa import (
    DEVELOPMENT_POLICY_OID,
    InMemorySerialSource,
    PostgresSerialSource,
    TimeStampAuthority,
)

pytestmark = pytest.mark.integration

POLICY = DEVELOPMENT_POLICY_OID


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return DevPki.ensure(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tsa(pki: DevPki) -> TimeStampAuthority:
    return TimeStampAuthority(pki.tsa, policy_oid=POLICY, serials=InMemorySerialSource())


@pytest.fixture
def files(tmp_path: Path, pki: DevPki) -> Path:
    """A document, the trust root and the TSA certificate as files for ``openssl``."""
    (tmp_path / "acta.txt").write_bytes("Acta de la sesión plenaria ordinaria\n".encode())
    (tmp_path / "root.pem").write_bytes(pki.root_pem())
    (tmp_path / "tsa.pem").write_bytes(pki.tsa.certificate_pem())
    return tmp_path


def openssl(*args: str | Path) -> str:
    """Runs ``openssl``; returns stdout, failing the test with stderr when it fails."""
    binary = shutil.which("openssl")
    assert binary, "openssl is needed on PATH for the interoperability tests"
    # errors="replace": OpenSSL prints a UTF8String statusString as Latin-1.
    done = subprocess.run(
        [binary, *map(str, args)],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"openssl {' '.join(map(str, args))}:\n{done.stderr}"
    return done.stdout


def query(files: Path, *options: str) -> Path:
    path = files / "q.tsq"
    openssl("ts", "-query", "-data", files / "acta.txt", *options, "-out", path)
    return path


def verify(
    reply: Path,
    *against: str | Path,
    files: Path,
    ca: str = "root.pem",
    untrusted: str = "tsa.pem",
) -> str:
    """``openssl ts -verify`` of ``reply`` against a query file or the data."""
    return openssl(
        "ts",
        "-verify",
        "-in",
        reply,
        *against,
        "-CAfile",
        files / ca,
        "-untrusted",
        files / untrusted,
    )


def query_nonce(path: Path) -> str:
    shown = openssl("ts", "-query", "-in", path, "-text")
    match = re.search(r"Nonce: (0x[0-9A-Fa-f]+)", shown)
    assert match, shown
    return match.group(1)


@pytest.fixture
async def client(tsa: TimeStampAuthority, pki: DevPki) -> AsyncIterator[httpx.AsyncClient]:
    """The router in a bare app, wired the way the sellado app is."""
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(tsa_api.router)
    app.state.sellado = tsa_api.SelladoState(tsa=tsa, pki=pki)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sellado"
    ) as client:
        yield client


# -- OpenSSL -----------------------------------------------------------------------


async def test_openssl_verifies_a_token_made_in_process(
    tsa: TimeStampAuthority, files: Path
) -> None:
    request = query(files, "-sha256", "-cert")
    reply = files / "r.tsr"
    reply.write_bytes(await tsa.respond(request.read_bytes()))

    assert "Verification: OK" in verify(reply, "-queryfile", request, files=files)
    assert "Verification: OK" in verify(reply, "-data", files / "acta.txt", files=files)

    shown = openssl("ts", "-reply", "-in", reply, "-text")
    assert "Status: Granted." in shown
    assert f"Policy OID: {POLICY}" in shown
    assert f"Nonce: {query_nonce(request)}" in shown
    assert "Hash Algorithm: sha256" in shown
    assert "Ordering: no" in shown
    assert "CN=Consistorio Development TSA" in shown or "CN = Consistorio" in shown


async def test_openssl_verifies_sha512_without_nonce_or_certificate(
    tsa: TimeStampAuthority, files: Path
) -> None:
    request = query(files, "-sha512", "-no_nonce")
    reply = files / "r.tsr"
    reply.write_bytes(await tsa.respond(request.read_bytes()))
    # The certificate was not asked for, so the verifier is given it.
    assert "Verification: OK" in verify(reply, "-queryfile", request, files=files)
    shown = openssl("ts", "-reply", "-in", reply, "-text")
    assert "Hash Algorithm: sha512" in shown
    assert "Nonce: unspecified" in shown


async def test_openssl_reads_our_rejections(tsa: TimeStampAuthority, files: Path) -> None:
    request = query(files, "-sha1", "-cert")
    reply = files / "r.tsr"
    reply.write_bytes(await tsa.respond(request.read_bytes()))
    shown = openssl("ts", "-reply", "-in", reply, "-text")
    assert "Status: Rejected." in shown
    assert "unrecognized or unsupported algorithm identifier" in shown
    assert "SHA-256" in shown

    other_policy = query(files, "-sha256", "-tspolicy", "1.3.6.1.4.1.4146.2.2")
    reply.write_bytes(await tsa.respond(other_policy.read_bytes()))
    shown = openssl("ts", "-reply", "-in", reply, "-text")
    assert "Status: Rejected." in shown
    assert "the requested TSA policy is not supported by the TSA" in shown


async def test_openssl_refuses_a_token_from_an_untrusted_root(
    tsa: TimeStampAuthority, files: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    request = query(files, "-sha256", "-cert")
    reply = files / "r.tsr"
    reply.write_bytes(await tsa.respond(request.read_bytes()))
    stranger = files / "stranger.pem"
    stranger.write_bytes(DevPki.ensure(tmp_path_factory.mktemp("stranger")).root_pem())
    command = ["openssl", "ts", "-verify", "-in", str(reply), "-queryfile", str(request)]
    done = subprocess.run(
        [*command, "-CAfile", str(stranger)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "Verification: OK" not in done.stdout


# -- HTTP ----------------------------------------------------------------------------


async def test_openssl_verifies_a_token_fetched_over_http(
    client: httpx.AsyncClient, files: Path
) -> None:
    request = query(files, "-sha256", "-cert")
    response = await client.post(
        "/tsa",
        content=request.read_bytes(),
        headers={"Content-Type": "application/timestamp-query"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/timestamp-reply"
    assert response.headers["cache-control"] == "no-store"
    reply = files / "r.tsr"
    reply.write_bytes(response.content)

    # Everything a verifier needs comes from the service itself.
    chain = await client.get("/tsa/chain.pem")
    assert chain.status_code == 200
    assert chain.headers["content-type"] == "application/pem-certificate-chain"
    assert chain.content.count(b"BEGIN CERTIFICATE") == 2
    assert b"PRIVATE" not in chain.content
    root = await client.get("/pki/ca.pem")
    assert root.status_code == 200
    assert root.content == (files / "root.pem").read_bytes()
    (files / "chain.pem").write_bytes(chain.content)
    (files / "ca.pem").write_bytes(root.content)

    verified = verify(reply, "-queryfile", request, files=files, ca="ca.pem", untrusted="chain.pem")
    assert "Verification: OK" in verified
    shown = openssl("ts", "-reply", "-in", reply, "-text")
    assert f"Nonce: {query_nonce(request)}" in shown
    assert f"Policy OID: {POLICY}" in shown


async def test_http_rejections_are_still_200_replies(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/tsa",
        content=b"no soy un TimeStampReq",
        headers={"Content-Type": "application/timestamp-query"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/timestamp-reply"
    status = tsp.PKIStatusInfo.load(response.content[2:])
    assert status["status"].native == "rejection"
    assert status["fail_info"].native == {"bad_data_format"}


@pytest.mark.parametrize(
    "content_type", [None, "application/octet-stream", "application/json", "text/plain"]
)
async def test_http_needs_the_timestamp_query_media_type(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/tsa", content=b"\x30\x00", headers=headers)
    assert response.status_code == 415
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "application/timestamp-query" in response.json()["detail"]


async def test_http_media_type_parameters_are_tolerated(
    client: httpx.AsyncClient, files: Path
) -> None:
    request = query(files, "-sha256")
    response = await client.post(
        "/tsa",
        content=request.read_bytes(),
        headers={"Content-Type": "Application/TimeStamp-Query; charset=binary"},
    )
    assert response.status_code == 200


async def test_http_refuses_bodies_over_64_kib(client: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "application/timestamp-query"}
    response = await client.post("/tsa", content=b"\x00" * (64 * 1024 + 1), headers=headers)
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_JSON

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit must hold while streaming, too.
        for _ in range(70):
            yield b"\x00" * 1024

    streamed = await client.post("/tsa", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    at_limit = await client.post("/tsa", content=b"\x00" * (64 * 1024), headers=headers)
    assert at_limit.status_code == 200


async def test_routes_answer_503_until_trust_is_attached() -> None:
    app = FastAPI()
    app.include_router(tsa_api.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sellado") as client:
        for method, path in (("POST", "/tsa"), ("GET", "/tsa/chain.pem"), ("GET", "/pki/ca.pem")):
            response = await client.request(
                method, path, headers={"Content-Type": "application/timestamp-query"}
            )
            assert response.status_code == 503, path
            assert response.headers["content-type"] == PROBLEM_JSON


async def test_ca_pem_is_404_when_the_root_is_published_elsewhere(
    tsa: TimeStampAuthority,
) -> None:
    app = FastAPI()
    app.include_router(tsa_api.router)
    app.state.sellado = tsa_api.SelladoState(tsa=tsa, pki=None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sellado") as client:
        assert (await client.get("/pki/ca.pem")).status_code == 404
        assert (await client.get("/tsa/chain.pem")).status_code == 200


# -- pyHanko -------------------------------------------------------------------------


class InProcessTimeStamper(TimeStamper):
    """pyHanko's timestamper asking our responder directly instead of over HTTP."""

    def __init__(self, authority: TimeStampAuthority) -> None:
        super().__init__(include_nonce=True)
        self._authority = authority

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        return tsp.TimeStampResp.load(await self._authority.respond(req.dump()))


def _trusting(pki: DevPki) -> ValidationContext:
    root = asn1_x509.Certificate.load(pki.root.public_bytes(serialization.Encoding.DER))
    return ValidationContext(trust_roots=[root], allow_fetching=False, revocation_mode="soft-fail")


async def test_pyhanko_validates_our_tokens(tsa: TimeStampAuthority, pki: DevPki) -> None:
    digest = hashlib.sha256(b"Decreto de Alcaldia 2026/0042").digest()
    stamper = InProcessTimeStamper(tsa)
    token: cms.ContentInfo = await stamper.async_timestamp(digest, "sha256")

    status = TimestampSignatureStatus(
        **await validate_tst_signed_data(
            token["content"], _trusting(pki), expected_tst_imprint=lambda _algorithm: digest
        )
    )
    assert status.intact and status.valid and status.trusted
    info = token["content"]["encap_content_info"]["content"].parsed
    assert status.timestamp == info["gen_time"].native
    assert (
        status.signing_cert.sha256
        == hashlib.sha256(pki.tsa.certificate.public_bytes(serialization.Encoding.DER)).digest()
    )

    # The certificate's path, validated for time stamping (critical EKU included).
    paths = [path async for path in stamper.validation_paths(_trusting(pki))]
    assert [p.leaf.subject.native["common_name"] for p in paths] == ["Consistorio Development TSA"]


async def test_pyhanko_notices_a_wrong_imprint_and_an_untrusted_root(
    tsa: TimeStampAuthority, pki: DevPki, tmp_path_factory: pytest.TempPathFactory
) -> None:
    digest = hashlib.sha256(b"documento").digest()
    token = await InProcessTimeStamper(tsa).async_timestamp(digest, "sha256")
    status = TimestampSignatureStatus(
        **await validate_tst_signed_data(
            token["content"], _trusting(pki), expected_tst_imprint=lambda _a: bytes(32)
        )
    )
    assert not status.intact
    stranger = DevPki.ensure(tmp_path_factory.mktemp("stranger"))
    status = TimestampSignatureStatus(
        **await validate_tst_signed_data(
            token["content"], _trusting(stranger), expected_tst_imprint=lambda _a: digest
        )
    )
    assert status.intact and not status.trusted


async def test_pyhanko_gets_no_token_for_a_rejected_request(tsa: TimeStampAuthority) -> None:
    # asn1crypto 1.5 declares the token of TimeStampResp mandatory (wbond/asn1crypto#286),
    # so pyHanko fails on an RFC 3161 rejection while parsing (ValueError) instead of
    # reporting the TSA's reason (TimestampRequestError); either way it must not proceed.
    stamper = InProcessTimeStamper(tsa)
    with pytest.raises((ValueError, TimestampRequestError)):
        await stamper.async_timestamp(b"\x00" * 20, "sha1")


# -- serial numbers on PostgreSQL ------------------------------------------------------


@pytest.fixture
def app_url(database_url: str) -> str:
    """The migrated test database as the app role, as replicas connect to it."""
    return load_settings(database_url=database_url, environment="test").app_database_url()


async def test_replicas_never_share_a_serial_and_restarts_never_reuse_one(app_url: str) -> None:
    engines = [create_async_engine(asyncpg_url(app_url)) for _ in range(2)]
    try:
        replicas = [PostgresSerialSource(engine, block=1000) for engine in engines]

        async def draw(source: PostgresSerialSource, count: int) -> list[int]:
            out = []
            for _ in range(count):
                out.append(await source.next())
                if len(out) % 97 == 0:
                    await asyncio.sleep(0)  # let the other replica interleave
            return out

        drawn = await asyncio.gather(*(draw(source, 900) for source in replicas for _ in range(4)))
        serials = [s for chunk in drawn for s in chunk]
        assert len(serials) == 2 * 4 * 900
        assert len(set(serials)) == len(serials), "two draws got the same serial"
        assert min(serials) >= 1
        # One round trip per thousand serials per replica, not per serial.
        for source in replicas:
            assert source.blocks_reserved == 4

        restarted = PostgresSerialSource(engines[0], block=1000)
        after_restart = [await restarted.next() for _ in range(5)]
        assert min(after_restart) > max(serials)
        assert after_restart == list(range(after_restart[0], after_restart[0] + 5))
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_block_size_other_than_the_sequence_s_is_refused(app_url: str) -> None:
    engine = create_async_engine(asyncpg_url(app_url))
    try:
        with pytest.raises(ValueError, match="increments by 1000"):
            await PostgresSerialSource(engine, block=500).next()
        with pytest.raises(LookupError):
            await PostgresSerialSource(engine, sequence="sellado.no_such_sequence").next()
    finally:
        await engine.dispose()


async def test_tokens_take_their_serials_from_the_database(app_url: str, pki: DevPki) -> None:
    engine = create_async_engine(asyncpg_url(app_url))
    try:
        async with engine.connect() as conn:
            before = (
                await conn.execute(
                    text(
                        "SELECT last_value FROM pg_sequences "
                        "WHERE schemaname = 'sellado' AND sequencename = 'tsa_serial'"
                    )
                )
            ).scalar_one()
        tsa = TimeStampAuthority(pki.tsa, policy_oid=POLICY, serials=PostgresSerialSource(engine))
        digest = hashlib.sha256(b"x").digest()
        request = tsp.TimeStampReq(
            {
                "version": 1,
                "message_imprint": {
                    "hash_algorithm": {"algorithm": "sha256"},
                    "hashed_message": digest,
                },
            }
        ).dump()
        serials = []
        for _ in range(3):
            reply = tsp.TimeStampResp.load(await tsa.respond(request))
            info = reply["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
            serials.append(info["serial_number"].native)
        assert serials == [serials[0], serials[0] + 1, serials[0] + 2]
        assert before is None or serials[0] > before
    finally:
        await engine.dispose()
