"""Benchmark: CPU milliseconds of one justificante, step by step, against raw baselines.

Run with ``python -m tests.bench.documentos``. In one process it makes a development
PKI in a temporary directory and times, on the CPU clock of this process (``time.
process_time``), each step the issuing chain spends on a justificante:

- **render**: the registro's justificante of a typical asiento;
- **stamp**: the repositorio's CSV footer and QR code on every page;
- **seal**: the sellado's PAdES-B-T seal with the tenant's key and our TSA in process
  (the TSA's own signature is part of it);
- **time-stamp**: the register's RFC 3161 token over an asiento's hash (``sellar_huella``).

In the same run it times two baselines, so the figures can be compared across machines:
one raw RSA-2048 PKCS#1 v1.5 signature with the same seal key, and one fpdf2 page set
in a core font (no TrueType parsing or embedding). Each step runs once to warm up (fonts
and keys are loaded once per process), then ``--rounds`` times; the median is printed
with its ratio to each baseline, as a Markdown table.

Then (unless ``--steps-only``) the whole chain: ``consistorio up`` on a fresh database of
the test PostgreSQL with the bus on RabbitMQ, ``--clients`` clients registering asientos
through the gateway for ``--seconds``, then the time until every asiento has its
expediente, its issued justificante and its register time-stamp (at most
``--drain-timeout``). It reads the CPU time the platform's process and its document
workers spent on the run (per asiento), and the expediente lag (asiento written →
expediente written, from the rows' transaction timestamps). Then, for ``--lag-seconds``,
asientos arrive as an open loop at half the sustained whole-chain rate, and their
expediente lag is read again: the lag while documents are being made. Last, the platform
is stopped with SIGTERM, backlog or not. Needs both servers.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from fpdf import FPDF

from services.common.tenants import Tenant
from services.registro.asientos.schemas import AsientoRead
from services.registro.justificantes.pdf import render_justificante
from services.repositorio.emision.stamping import stamp_csv
from services.sellado.pki import DevPki
from services.sellado.sello_tiempo import sellar_huella
from services.sellado.trust import TrustServices
from services.sellado.tsa import DEVELOPMENT_POLICY_OID, InMemorySerialSource, TimeStampAuthority
from tests.bench.common import PlatformRun
from tests.bench.registro import gateway_load, open_loop
from tests.support.process import start_platform

ALICANTE = Tenant("03014", "Ayuntamiento de Alicante/Alacant", "L01030149")
CSV = "ABCDEFGHJKLMNPQRSTUVWXYZ2"
URL = "https://sede.example.org/verificar/" + CSV


def _asiento() -> AsientoRead:
    """An entrada with three interesados, as the desk registers every day."""
    return AsientoRead.model_validate(
        {
            "id": "6f1c2b0e-8a53-4a0f-9d3c-0d9b1c6e2a77",
            "numero": "E/2026/000123",
            "tipo": "entrada",
            "anio": 2026,
            "secuencia": 123,
            "fecha_registro": datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
            "resumen": "Solicitud de licencia de obra menor en la fachada (reparación)",
            "unidad_destino": "L01030149",
            "procedimiento": "licencia-obra-menor",
            "interesados": [
                {
                    "tipo_identificador": "NIF",
                    "identificador": "12345678Z",
                    "nombre": "Lucía",
                    "apellido1": "Núñez",
                    "apellido2": "Peña",
                },
                {
                    "tipo_identificador": "NIE",
                    "identificador": "X1234567L",
                    "nombre": "Françoise",
                    "apellido1": "Çelik",
                },
                {"tipo_identificador": "CIF", "identificador": "B12345674", "nombre": "Obres SL"},
            ],
            "registrado_por": "lucia.martinez",
        }
    )


def _cpu_ms(step: Callable[[], Any], rounds: int) -> float:
    """Median CPU milliseconds of ``step`` over ``rounds`` calls, after one warm-up call."""
    step()
    samples = []
    for _ in range(rounds):
        start = time.process_time()
        step()
        samples.append((time.process_time() - start) * 1000)
    return statistics.median(samples)


def _core_font_page() -> bytes:
    pdf = FPDF(unit="mm", format="A4")
    pdf.add_page()
    pdf.set_font("helvetica", "", 10)
    for line in range(30):
        pdf.cell(
            0, 6, f"Linea {line} de un justificante en Helvetica", new_x="LMARGIN", new_y="NEXT"
        )
    return bytes(pdf.output())


_DONE = """
SELECT (SELECT count(*) FROM registro.asientos),
       (SELECT count(*) FROM tramitador.expedientes WHERE asiento_id IS NOT NULL),
       (SELECT count(*) FROM registro.justificantes WHERE estado = 'emitido'),
       (SELECT count(*) FROM registro.sellos_tiempo WHERE estado = 'sellado')
"""


# Expediente lag: asiento written → expediente written, both stamped with the start of
# their (short) transactions, for the asientos registered since $1.
_LAG = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY lag),
       max(lag), count(*)
FROM (SELECT extract(epoch FROM e.created_at - a.created_at) AS lag
      FROM registro.asientos a JOIN tramitador.expedientes e ON e.asiento_id = a.id
      WHERE a.created_at >= $1) AS lags
"""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (the document workers of ``up``)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(c) for c in (task / "children").read_text().split())
    return found


_TICKS = os.sysconf("SC_CLK_TCK")
_IDLE_SECONDS = 10.0


async def _lag(db_url: str, since: datetime) -> tuple[float, float, float, int]:
    """p50, p99 and max expediente lag in seconds of the asientos registered since ``since``."""
    conn = await asyncpg.connect(db_url)
    try:
        p50, p99, worst, count = await conn.fetchrow(_LAG, since)
    finally:
        await conn.close()
    return float(p50 or 0), float(p99 or 0), float(worst or 0), int(count)


async def _wait_until_done(db_url: str, started: float, limit: float) -> list[float | None]:
    """Seconds from ``started`` until every asiento had each kind of follow-up (None: not
    within ``limit``)."""
    watch = await asyncpg.connect(db_url)
    # When each kind of follow-up was complete for every asiento.
    done_at: list[float | None] = [None, None, None]
    try:
        while time.monotonic() - started < limit:
            counts = tuple(await watch.fetchrow(_DONE))
            for kind, count in enumerate(counts[1:]):
                if done_at[kind] is None and count >= counts[0]:
                    done_at[kind] = time.monotonic() - started
            if all(at is not None for at in done_at):
                break
            await asyncio.sleep(0.25)
    finally:
        await watch.close()
    return done_at


async def chain(clients: int, seconds: float, drain_timeout: float, lag_seconds: float) -> None:
    """Registers for ``seconds``, then waits for every asiento's documents; prints rates."""
    bench = await PlatformRun.create()
    db_url = bench.db_url
    env = bench.env()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            running = start_platform(Path(tmp) / "var", env)
            try:
                token = running.token("03014", "registro")
                pid = running.process.pid
                # What the platform spends doing nothing (relays polling, reconcilers,
                # metrics): the baseline the per-asiento figures carry for each second.
                idle_from = _cpu_seconds(pid)
                await asyncio.sleep(_IDLE_SECONDS)
                idle_per_second = (_cpu_seconds(pid) - idle_from) / _IDLE_SECONDS
                cpu_before = _cpu_seconds(pid)
                started = time.monotonic()
                errors, latencies = await gateway_load(running.base_url, token, clients, seconds)
                registered_in = time.monotonic() - started
                done_at = await _wait_until_done(db_url, started, seconds + drain_timeout)
                drained_in = time.monotonic() - started
                workers = _children(pid)
                main_cpu = _cpu_seconds(pid) - cpu_before
                workers_cpu = sum(_cpu_seconds(child) for child in workers)
                watch = await asyncpg.connect(db_url)
                try:
                    counts = tuple(await watch.fetchrow(_DONE))
                    first = await watch.fetchval("SELECT min(created_at) FROM registro.asientos")
                finally:
                    await watch.close()
                lag_full = await _lag(db_url, first)
                sustained = counts[0] / drained_in
                half_rate = sustained / 2
                lag_half: tuple[float, float, float, int] | None = None
                if lag_seconds > 0 and all(at is not None for at in done_at):
                    # Open-loop arrivals at half the sustained whole-chain rate, documents
                    # being made meanwhile: how long each asiento waits for its expediente.
                    since = datetime.now(UTC)
                    await open_loop(running.base_url, token, half_rate, lag_seconds)
                    await _wait_until_done(db_url, time.monotonic(), drain_timeout)
                    lag_half = await _lag(db_url, since)
            finally:
                stopped = time.monotonic()
                code = running.stop()
                stop_seconds = time.monotonic() - stopped
    finally:
        await bench.close()
    asientos, expedientes, justificantes, sellos = counts
    print(f"\n# The whole chain ({clients} clients for {seconds:.0f} s, RabbitMQ)\n")
    print("| what | count | all done after (s) | per second of the run |")
    print("|---|---:|---:|---:|")
    rate = asientos / registered_in
    print(
        f"| asientos registered (errors {errors}) | {asientos} | {registered_in:.1f} | {rate:.1f} |"
    )
    for label, count, at in (
        ("expedientes opened", expedientes, done_at[0]),
        ("justificantes issued", justificantes, done_at[1]),
        ("register time-stamps kept", sellos, done_at[2]),
    ):
        shown = f"{at:.1f}" if at is not None else "not all"
        print(f"| {label} | {count} | {shown} | {count / (at or drained_in):.1f} |")
    print(
        f"\nSustained whole chain: {sustained:.1f} asientos/s (all done after "
        f"{drained_in:.1f} s). CPU a justificante'd asiento: {1000 * main_cpu / asientos:.1f} ms "
        f"in the process that serves HTTP and the cheap consumers, "
        f"{1000 * workers_cpu / asientos:.1f} ms in its {len(workers)} document workers "
        "(the workers' figure includes their start-up). Idle, the same process spends "
        f"{1000 * idle_per_second:.0f} ms of CPU a second, "
        f"{1000 * idle_per_second * drained_in / asientos:.1f} ms an asiento over this run."
    )
    print("\n| expediente lag (asiento → expediente) | asientos | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for label, lag in (
        (f"under the closed-loop load ({clients} clients)", lag_full),
        (f"open loop at half the sustained rate ({half_rate:.1f}/s)", lag_half),
    ):
        if lag is not None:
            p50, p99, worst, count = lag
            print(
                f"| {label} | {count} | {p50 * 1000:.0f} | {p99 * 1000:.0f} | {worst * 1000:.0f} |"
            )
    print(
        f"\nThe load ran {registered_in:.1f} s; the platform stopped with SIGTERM in "
        f"{stop_seconds:.1f} s (exit {code})."
    )
    if latencies:
        ordered = sorted(latencies)
        print(f"Registration p50 {ordered[len(ordered) // 2] * 1000:.0f} ms.", file=sys.stderr)


def main() -> None:
    """Times each step and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--steps-only", action="store_true")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument("--lag-seconds", type=float, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        pki = DevPki.ensure(Path(tmp) / "pki")
        tsa = TimeStampAuthority(
            pki.tsa, policy_oid=DEVELOPMENT_POLICY_OID, serials=InMemorySerialSource()
        )
        trust = TrustServices(pki=pki, tsa=tsa)
        keypair = pki.seal_for(ALICANTE.ine_code, ALICANTE.nombre)
        key = keypair.private_key
        assert isinstance(key, RSAPrivateKey)
        asiento = _asiento()
        pdf = render_justificante(asiento, ALICANTE)
        stamped = stamp_csv(pdf, csv=CSV, url=URL)
        huella = hashlib.sha256(b'{"numero":"E/2026/000123"}').hexdigest()
        loop = asyncio.new_event_loop()
        try:
            rows = {
                "render (justificante)": _cpu_ms(
                    lambda: render_justificante(asiento, ALICANTE), args.rounds
                ),
                "CSV + QR stamp": _cpu_ms(lambda: stamp_csv(pdf, csv=CSV, url=URL), args.rounds),
                "seal (PAdES-B-T, TSA in process)": _cpu_ms(
                    lambda: loop.run_until_complete(trust.seal(ALICANTE, stamped)), args.rounds
                ),
                "register time-stamp (sellar_huella)": _cpu_ms(
                    lambda: loop.run_until_complete(
                        sellar_huella(tsa, algoritmo="sha256", huella=huella)
                    ),
                    args.rounds,
                ),
            }
        finally:
            loop.close()
        rsa_ms = _cpu_ms(lambda: key.sign(b"x" * 32, PKCS1v15(), hashes.SHA256()), args.rounds * 10)
        page_ms = _cpu_ms(_core_font_page, args.rounds)

    total = sum(rows.values())
    print(
        f"# Justificante CPU by step ({platform.python_implementation()} "
        f"{platform.python_version()}, {args.rounds} rounds, medians)\n"
    )
    print("| step | CPU ms | × raw RSA-2048 sign | × core-font fpdf2 page |")
    print("|---|---:|---:|---:|")
    for name, ms in [*rows.items(), ("**whole justificante**", total)]:
        print(f"| {name} | {ms:.2f} | {ms / rsa_ms:.0f} | {ms / page_ms:.1f} |")
    print(f"| baseline: raw RSA-2048 sign | {rsa_ms:.3f} | 1 | |")
    print(f"| baseline: core-font fpdf2 page | {page_ms:.2f} | | 1 |")
    if not args.steps_only:
        asyncio.run(chain(args.clients, args.seconds, args.drain_timeout, args.lag_seconds))


if __name__ == "__main__":
    main()
