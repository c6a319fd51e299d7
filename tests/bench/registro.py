"""Benchmark: registering asientos through the gateway vs plain gapless INSERTs.

Run with ``make bench``. Needs the real PostgreSQL and RabbitMQ. It starts the
platform as ``consistorio up`` does (gateway + services in one process, bus on
RabbitMQ, a fresh database), drives it with several concurrent HTTP clients,
then measures, on the same database server, the baseline a council's register
cannot beat: a loop of gapless-numbered INSERTs with no HTTP, auth, audit,
outbox or bus. Figures are printed as a Markdown table with their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from tests.support import factories
from tests.support.broker import delete_run
from tests.support.process import start_platform
from tests.support.servers import AMQP_URL, POSTGRES_ADMIN_URL

_PLAIN_DDL = """
CREATE SCHEMA IF NOT EXISTS bench;
CREATE TABLE IF NOT EXISTS bench.counters (serie text PRIMARY KEY, ultimo bigint NOT NULL);
CREATE TABLE IF NOT EXISTS bench.asientos (
  id uuid PRIMARY KEY, secuencia bigint NOT NULL UNIQUE, resumen text NOT NULL,
  interesados jsonb NOT NULL, fecha timestamptz NOT NULL DEFAULT now());
"""
_PLAIN_TX = (
    "INSERT INTO bench.counters VALUES ('e', 1) "
    "ON CONFLICT (serie) DO UPDATE SET ultimo = bench.counters.ultimo + 1 RETURNING ultimo"
)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _progress(label: str, done: list[float], seconds: float) -> None:
    start = time.monotonic()
    elapsed = 0.0
    while elapsed < seconds:
        await asyncio.sleep(1)
        elapsed = time.monotonic() - start
        rate = len(done) / elapsed
        print(
            f"\r  {label}: {len(done):6d} done, {rate:7.1f}/s, {elapsed:4.0f}/{seconds:.0f} s",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)


async def gateway_load(
    base_url: str, token: str, clients: int, seconds: float
) -> tuple[int, list[float]]:
    """Concurrent clients POSTing asientos through the gateway for ``seconds``."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as client:

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                r = await client.post("/api/v1/registro/asientos", json=factories.asiento())
                if r.status_code == 201:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        await asyncio.gather(
            _progress("gateway", latencies, seconds), *(worker() for _ in range(clients))
        )
    return errors, latencies


async def plain_inserts(dsn: str, workers: int, seconds: float) -> list[float]:
    """Gapless-numbered INSERTs straight into PostgreSQL, one transaction each."""
    setup = await asyncpg.connect(dsn)
    await setup.execute(_PLAIN_DDL)
    await setup.close()
    latencies: list[float] = []
    stop_at = time.monotonic() + seconds
    interesados = '[{"tipo_identificador": "NIF", "identificador": "12345678Z", "nombre": "Ana"}]'

    async def worker() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                async with conn.transaction():
                    n = await conn.fetchval(_PLAIN_TX)
                    await conn.execute(
                        "INSERT INTO bench.asientos (id, secuencia, resumen, interesados) "
                        "VALUES ($1, $2, $3, $4::jsonb)",
                        uuid.uuid4(),
                        n,
                        "Solicitud",
                        interesados,
                    )
                latencies.append(time.perf_counter() - t0)
        finally:
            await conn.close()

    label = f"plain INSERT x{workers}"
    await asyncio.gather(_progress(label, latencies, seconds), *(worker() for _ in range(workers)))
    return latencies


def _row(
    name: str, count: int, seconds: float, lat: list[float]
) -> tuple[str, float, float, float]:
    rate = count / seconds
    return name, rate, _pct(lat, 0.50), _pct(lat, 0.99)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()

    admin = make_url(POSTGRES_ADMIN_URL)
    name = f"consistorio_bench_{uuid.uuid4().hex[:8]}"
    admin_dsn = admin.render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    db_url = admin.set(database=name).render_as_string(hide_password=False)
    run = uuid.uuid4().hex[:8]
    env = {
        "DATABASE_URL": db_url,
        "AMQP_URL": AMQP_URL,
        "BUS_EXCHANGE": f"consistorio.bench.{run}",
        "BUS_QUEUE_PREFIX": f"bench.{run}.",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_PER_MINUTE": "100000000",
    }
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            running = start_platform(Path(tmp) / "var", env)
            try:
                token = running.token("03014", "registro")
                print(f"platform up at {running.base_url}; warming up", file=sys.stderr)
                await gateway_load(running.base_url, token, args.clients, 2)
                errors, lat = await gateway_load(
                    running.base_url, token, args.clients, args.seconds
                )
                results.append(
                    _row(
                        f"gateway → registro ({args.clients} clients)", len(lat), args.seconds, lat
                    )
                )
            finally:
                running.stop()
        plain1 = await plain_inserts(db_url, 1, args.seconds)
        results.append(
            _row("plain gapless INSERT loop (1 connection)", len(plain1), args.seconds, plain1)
        )
        plainn = await plain_inserts(db_url, args.clients, args.seconds)
        results.append(
            _row(
                f"plain gapless INSERTs ({args.clients} connections)",
                len(plainn),
                args.seconds,
                plainn,
            )
        )
    finally:
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
        await delete_run(
            AMQP_URL, queue_prefix=f"bench.{run}.", exchange=f"consistorio.bench.{run}"
        )

    ours = results[0][1]
    print(
        f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}; "
        f"errors during the run: {errors}\n"
    )
    print("| what | per second | p50 ms | p99 ms | ours ÷ this |")
    print("|---|---:|---:|---:|---:|")
    for label, rate, p50, p99 in results:
        print(f"| {label} | {rate:,.0f} | {p50:.1f} | {p99:.1f} | {ours / rate:.2f} |")
    print(f"\nmean latency through the gateway: {statistics.mean(lat) * 1000:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
