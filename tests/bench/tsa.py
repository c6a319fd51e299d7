"""Benchmark: time-stamp tokens over HTTP vs the raw signing rate of the same key.

Run with ``python -m tests.bench.tsa``. It makes a development PKI in a temporary
directory, serves ``POST /tsa`` with uvicorn on 127.0.0.1 in a child process
(one worker process, the route in an app with the service's problem handlers
and OpenTelemetry middleware), and drives it with several concurrent keep-alive
clients for a fixed time. In the same run it measures, on the same TSA key,
a tight ``sign()`` loop for the same duration, and the in-process
``TimeStampAuthority.respond()`` rate. The client runs in this process, on the
same machine: with two cores it takes CPU from the server, so the HTTP figure is
a floor.

``--serials postgres`` takes serials from a fresh migrated database on the test
PostgreSQL (the production path: one round trip per block of 1000) instead of
from memory.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
from asn1crypto import tsp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.db import asyncpg_url
from tests.support.process import free_port
from tests.support.servers import POSTGRES_ADMIN_URL

_GRANTED = b"\x30\x03\x02\x01\x00"


# -- the server (child process) ------------------------------------------------------


def serve(port: int, pki_dir: Path, database_url: str | None) -> None:
    """Runs the TSA route under uvicorn until terminated (the child process)."""
    import uvicorn
    from fastapi import FastAPI

    from services.common.errors import install_problem_handlers
    from services.common.telemetry import instrument_app
    from services.sellado import tsa_api
    from services.sellado.pki import DevPki
    from services.sellado.tsa import (
        DEVELOPMENT_POLICY_OID,
        InMemorySerialSource,
        PostgresSerialSource,
        SerialSource,
        TimeStampAuthority,
    )

    pki = DevPki.ensure(pki_dir)
    serials: SerialSource = (
        PostgresSerialSource(create_async_engine(asyncpg_url(database_url)))
        if database_url
        else InMemorySerialSource()
    )
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(tsa_api.router)
    instrument_app(app)
    app.state.sellado = tsa_api.SelladoState(
        tsa=TimeStampAuthority(pki.tsa, policy_oid=DEVELOPMENT_POLICY_OID, serials=serials),
        pki=pki,
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- the load ----------------------------------------------------------------------------


def _requests(count: int) -> list[bytes]:
    rng = random.Random(7)
    return [
        tsp.TimeStampReq(
            {
                "version": 1,
                "message_imprint": {
                    "hash_algorithm": {"algorithm": "sha256"},
                    "hashed_message": hashlib.sha256(rng.randbytes(64)).digest(),
                },
                "nonce": rng.getrandbits(63),
                "cert_req": True,
            }
        ).dump()
        for _ in range(count)
    ]


def _granted(body: bytes) -> bool:
    if len(body) < 8 or body[0] != 0x30:
        return False
    offset = 2 if body[1] < 0x80 else 2 + (body[1] & 0x7F)
    return body[offset : offset + 5] == _GRANTED


async def _progress(label: str, done: list[float], seconds: float) -> None:
    start = time.monotonic()
    elapsed = 0.0
    while elapsed < seconds:
        await asyncio.sleep(1)
        elapsed = time.monotonic() - start
        print(
            f"\r  {label}: {len(done):7d} done, {len(done) / elapsed:8.1f}/s, "
            f"{elapsed:4.0f}/{seconds:.0f} s",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)


async def http_load(
    port: int, clients: int, seconds: float, requests: Sequence[bytes], *, label: str
) -> tuple[list[float], int]:
    """Keep-alive clients POSTing TimeStampReqs for ``seconds``: latencies and errors.

    A minimal HTTP/1.1 client on asyncio streams: a general-purpose client spends
    more CPU per request than the server does, which would measure the client.
    """
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds
    messages = [
        (
            f"POST /tsa HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/timestamp-query\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in requests
    ]

    async def client(offset: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            i = offset
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                writer.write(messages[i % len(messages)])
                i += 1
                status = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                if status.startswith(b"HTTP/1.1 200") and _granted(body):
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1
        finally:
            writer.close()

    await asyncio.gather(_progress(label, latencies, seconds), *(client(n) for n in range(clients)))
    return latencies, errors


def raw_signing(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, seconds: float) -> int:
    """How many signatures the TSA key makes in ``seconds``, one thread, nothing else."""
    data = os.urandom(200)  # about the size of the signed attributes
    count = 0
    stop_at = time.perf_counter() + seconds
    if isinstance(key, ec.EllipticCurvePrivateKey):
        ecdsa = ec.ECDSA(hashes.SHA256())
        while time.perf_counter() < stop_at:
            for _ in range(100):
                key.sign(data, ecdsa)
            count += 100
    else:
        pkcs1, sha256 = PKCS1v15(), hashes.SHA256()
        while time.perf_counter() < stop_at:
            for _ in range(100):
                key.sign(data, pkcs1, sha256)
            count += 100
    return count


async def in_process(pki_dir: Path, seconds: float, requests: Sequence[bytes]) -> int:
    """How many tokens ``respond()`` makes in ``seconds`` with no HTTP around it."""
    from services.sellado.pki import DevPki
    from services.sellado.tsa import (
        DEVELOPMENT_POLICY_OID,
        InMemorySerialSource,
        TimeStampAuthority,
    )

    authority = TimeStampAuthority(
        DevPki.ensure(pki_dir).tsa,
        policy_oid=DEVELOPMENT_POLICY_OID,
        serials=InMemorySerialSource(),
    )
    count = 0
    stop_at = time.perf_counter() + seconds
    while time.perf_counter() < stop_at:
        for request in requests[:100]:
            reply = await authority.respond(request)
        count += 100
    assert _granted(reply)
    return count


# -- orchestration -------------------------------------------------------------------


async def _fresh_database() -> tuple[str, str]:
    """A new migrated database: (owner URL, name)."""
    from services.bootstrap import migrate
    from services.common.settings import load_settings

    admin = make_url(POSTGRES_ADMIN_URL)
    name = f"consistorio_bench_tsa_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(asyncpg_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    url = admin.set(database=name).render_as_string(hide_password=False)
    await migrate(load_settings(database_url=url, environment="test"))
    return url, name


async def _drop_database(name: str) -> None:
    engine = create_async_engine(asyncpg_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


def _start_server(port: int, pki_dir: Path, database_url: str | None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tests.bench.tsa", "--serve", str(port), "--pki", str(pki_dir)]
    if database_url:
        command += ["--database-url", database_url]
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the TSA server exited while starting")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/tsa/chain.pem", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the TSA server did not start within 30 s")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(args: argparse.Namespace) -> None:
    from services.sellado.pki import DevPki

    seconds: float = args.seconds
    requests = _requests(256)
    database: tuple[str, str] | None = None
    try:
        app_url = None
        if args.serials == "postgres":
            from services.common.settings import load_settings

            print("creating and migrating a database for the serials", file=sys.stderr)
            database = await _fresh_database()
            app_url = load_settings(database_url=database[0]).app_database_url()
        with tempfile.TemporaryDirectory() as tmp:
            pki_dir = Path(tmp) / "pki"
            pki = DevPki.ensure(pki_dir)
            port = free_port()
            server = _start_server(port, pki_dir, app_url)
            try:
                print(f"TSA serving on 127.0.0.1:{port}; warming up", file=sys.stderr)
                await http_load(port, args.clients, 1, requests, label="warm-up")
                latencies, errors = await http_load(
                    port, args.clients, seconds, requests, label=f"HTTP x{args.clients}"
                )
            finally:
                server.terminate()
                server.wait(timeout=30)
            # Measured after the server stopped, so each has the machine to itself.
            print(f"  raw sign(): {seconds:.0f} s", file=sys.stderr)
            signatures = raw_signing(pki.tsa.private_key, seconds)
            respond_seconds = min(seconds, 5.0)
            print(f"  in-process respond(): {respond_seconds:.0f} s", file=sys.stderr)
            responded = await in_process(pki_dir, respond_seconds, requests)
    finally:
        if database is not None:
            await _drop_database(database[1])

    http_rate = len(latencies) / seconds
    sign_rate = signatures / seconds
    respond_rate = responded / respond_seconds
    key = "ECDSA P-256" if isinstance(pki.tsa.private_key, ec.EllipticCurvePrivateKey) else "RSA"
    print(
        f"\nMachine: {_cpu_model()}, {os.cpu_count()} cores, {platform.platform()}, "
        f"Python {platform.python_version()}. Server: uvicorn, 1 worker process; "
        f"client: {args.clients} keep-alive connections in the benchmark process; "
        f"serials: {args.serials}; errors during the run: {errors}.\n"
    )
    print("| what | per second | p50 ms | p99 ms | ÷ raw signing |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| tokens over HTTP (`POST /tsa`, {args.clients} clients) | {http_rate:,.0f} "
        f"| {_pct(latencies, 0.5):.2f} | {_pct(latencies, 0.99):.2f} "
        f"| {http_rate / sign_rate:.3f} |"
    )
    print(
        f"| tokens in process (`respond()`, 1 task) | {respond_rate:,.0f} | | "
        f"| {respond_rate / sign_rate:.3f} |"
    )
    print(f"| raw `sign()` of the same {key} key | {sign_rate:,.0f} | | | 1 |")


def _arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--serials", choices=["memory", "postgres"], default="memory")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--pki", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = _arguments()
    if arguments.serve is not None:
        serve(arguments.serve, arguments.pki, arguments.database_url)
    else:
        asyncio.run(main(arguments))
