"""Benchmark: registering asientos through the gateway vs plain gapless INSERTs, and
the same platform offered twice what it sustains.

Run with ``make bench``. Needs the real PostgreSQL and RabbitMQ. It starts the
platform as ``consistorio up`` does (gateway + services in one process, bus on
RabbitMQ, a fresh database), drives it with several concurrent HTTP clients,
then measures, on the same database server, the baseline a council's register
cannot beat: a loop of gapless-numbered INSERTs with no HTTP, auth, audit,
outbox or bus. Figures are printed as a Markdown table with their ratio.

The overload run follows the normal one on the same platform: requests arrive at
``--overload`` times the rate the normal run sustained (an open loop: arrivals do not
wait for answers, as citizens on a deadline day do not), and it reports the share
answered 503, anything that was neither 201 nor 503, the p50/p99 of the 201s, how long
the last answers took to come after the arrivals stopped, and how long the bus took
to drain its backlog (RabbitMQ queues of the run empty) afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

from tests.bench.common import UNLIMITED, PlatformRun, machine
from tests.support import factories
from tests.support.process import start_platform

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


async def open_loop(
    base_url: str, token: str, rate: float, seconds: float
) -> tuple[list[tuple[int, float]], float]:
    """Arrivals at ``rate`` per second for ``seconds``, each its own request with its own
    Idempotency-Key; answers every (status, latency) and how long after the last arrival
    the last answer came (status 0: no answer, the connection failed)."""
    results: list[tuple[int, float]] = []
    limits = httpx.Limits(max_connections=4000, max_keepalive_connections=256)
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=120, headers={"Authorization": f"Bearer {token}"}
    ) as client:

        async def one() -> None:
            t0 = time.perf_counter()
            try:
                r = await client.post(
                    "/api/v1/registro/asientos",
                    json=factories.asiento(),
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                )
                status = r.status_code
            except httpx.HTTPError:
                status = 0
            results.append((status, time.perf_counter() - t0))

        tasks = []
        progress = asyncio.create_task(_progress("overload", results, seconds))  # type: ignore[arg-type]
        start = time.monotonic()
        n = 0
        while n / rate < seconds:
            wait = start + n / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one()))
            n += 1
        arrivals_end = time.monotonic()
        await asyncio.gather(*tasks)
        answered_after = time.monotonic() - arrivals_end
        await progress
    return results, answered_after


def _backlog(prefix: str) -> int | None:
    """Messages waiting in the run's RabbitMQ queues (None: rabbitmqctl unavailable)."""
    try:
        listed = subprocess.run(
            ["rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name", "messages"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    total = 0
    for line in listed:
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith(prefix) and parts[1].isdigit():
            total += int(parts[1])
    return total


async def drain_time(prefix: str, limit: float = 600) -> float | None:
    """Seconds until the run's queues are empty (twice in a row), or None if unknown."""
    start = time.monotonic()
    empty = 0
    while time.monotonic() - start < limit:
        left = await asyncio.to_thread(_backlog, prefix)
        if left is None:
            return None
        empty = empty + 1 if left == 0 else 0
        if empty == 2:
            return time.monotonic() - start
        await asyncio.sleep(1)
    return None


def _row(
    name: str, count: int, seconds: float, lat: list[float]
) -> tuple[str, float, float, float]:
    rate = count / seconds
    return name, rate, _pct(lat, 0.50), _pct(lat, 0.99)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--overload", type=float, default=2.0, help="arrival rate ÷ sustained rate (0: skip)"
    )
    args = parser.parse_args()

    bench = await PlatformRun.create()
    db_url = bench.db_url
    env = bench.env(RATE_LIMIT_TENANT_PER_MINUTE=UNLIMITED)
    results = []
    overload: list[tuple[int, float]] = []
    answered_after = 0.0
    drained_normal = drained_overload = None
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
                if args.overload > 0:
                    drained_normal = await drain_time(bench.queue_prefix)
                    offered = args.overload * len(lat) / args.seconds
                    print(f"offering {offered:.1f}/s", file=sys.stderr)
                    overload, answered_after = await open_loop(
                        running.base_url, token, offered, args.seconds
                    )
                    drained_overload = await drain_time(bench.queue_prefix)
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
        await bench.close()

    ours = results[0][1]
    print(f"\nMachine: {machine()}; errors during the run: {errors}\n")
    print("| what | per second | p50 ms | p99 ms | ours ÷ this |")
    print("|---|---:|---:|---:|---:|")
    for label, rate, p50, p99 in results:
        print(f"| {label} | {rate:,.0f} | {p50:.1f} | {p99:.1f} | {ours / rate:.2f} |")
    print(f"\nmean latency through the gateway: {statistics.mean(lat) * 1000:.1f} ms")
    if overload:
        _print_overload(
            args, results[0][1], overload, answered_after, drained_normal, drained_overload
        )


def _print_overload(
    args: argparse.Namespace,
    sustained: float,
    overload: list[tuple[int, float]],
    answered_after: float,
    drained_normal: float | None,
    drained_overload: float | None,
) -> None:
    created = [latency for status, latency in overload if status == 201]
    refused = sum(1 for status, _ in overload if status == 503)
    other: dict[int, int] = {}
    for status, _ in overload:
        if status not in (201, 503):
            other[status] = other.get(status, 0) + 1

    def seconds(value: float | None) -> str:
        return "unknown" if value is None else f"{value:.0f} s"

    print(f"\n| {args.overload:g}× the sustained rate | figure |")
    print("|---|---:|")
    print(f"| offered | {args.overload * sustained:.1f}/s for {args.seconds:g} s |")
    print(f"| requests | {len(overload)} |")
    print(f"| 201 | {len(created)} ({len(created) / args.seconds:.1f}/s) |")
    print(f"| 503 with Retry-After | {refused} ({100 * refused / len(overload):.0f} %) |")
    print(f"| anything else | {sum(other.values())} {other or ''} |")
    if created:
        print(
            f"| p50 / p99 of the 201s | {_pct(created, 0.5):,.0f} / {_pct(created, 0.99):,.0f} ms |"
        )
    print(f"| last answer after the arrivals stopped | {answered_after:.1f} s |")
    print(f"| bus backlog drained after the normal run | {seconds(drained_normal)} |")
    print(f"| bus backlog drained after the overload | {seconds(drained_overload)} |")


if __name__ == "__main__":
    asyncio.run(main())
