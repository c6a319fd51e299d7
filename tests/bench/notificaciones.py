"""Benchmark: notifications expiring in the same second, and avisos to a real SMTP server.

Run with ``make bench``. Needs the real PostgreSQL. On a fresh database it puts N
electronic notifications at disposal in the same second (default 100,000), moves
a controlled clock to their expiry and times the expiry scheduler (state change,
audit entry, expirada event and time-stamp request per notification, in batches),
beside a plain UPDATE of a copy of the same rows in the same run. Then it times
avisos sent to aiosmtpd by the sender (claim, send, record), beside a bare smtplib
loop sending the same messages. Figures are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import smtplib
import tempfile
import time
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from services.bootstrap import build_platform, migrate, seed_demo_tenants
from services.common.bus.inprocess import InProcessTransport
from services.common.db import asyncpg_url
from services.common.settings import load_settings
from services.notificaciones.avisos import Avisador
from services.notificaciones.canales import SmtpEmail
from services.notificaciones.clock import ControlledClock
from services.notificaciones.settings import AvisosSettings
from services.notificaciones.vencimientos import Vencedor
from tests.support.servers import POSTGRES_ADMIN_URL
from tests.support.smtp import Buzon, smtp_server

TENANT = "03014"
PUESTA = datetime(2026, 3, 20, 9, 0, 0, tzinfo=UTC)
VENCE = datetime(2026, 3, 30, 8, 0, 0, tzinfo=UTC)  # ten days later, across the change of hour

_SEED = """
INSERT INTO notificaciones.notificaciones
  (id, tenant_id, estado, canal, documento_id, documento_version, documento_nombre,
   expediente_id, concepto, emisor, interesado, interesado_identificador, origen,
   creada_en, puesta_en, vence_en, actualizada_en)
SELECT gen_random_uuid(), $1, 'puesta_disposicion', 'electronico', gen_random_uuid(), 1,
       'r.pdf', 'EXP/2026/' || g, 'Resolución', 'Ayuntamiento de Alicante',
       jsonb_build_object('tipo_identificador', 'NIF', 'identificador', lpad(g::text, 8, '0')
         || 'T', 'nombre', 'P', 'email', 'p' || g || '@example.org', 'idioma', 'es'),
       lpad(g::text, 8, '0') || 'T', 'api', $2, $2, $3, $2
FROM generate_series(1, $4) AS g
"""
_PLAIN = """
UPDATE bench_notif.copia SET estado = 'expirada', efectos_en = vence_en,
  fecha_legal = (vence_en AT TIME ZONE 'Europe/Madrid')::date, actualizada_en = $1
WHERE estado = 'puesta_disposicion' AND vence_en <= $1
"""
_AVISOS = """
INSERT INTO notificaciones.avisos
  (id, tenant_id, notificacion_id, canal, destino, idioma, estado, intentos, proximo_en,
   creado_en)
SELECT gen_random_uuid(), tenant_id, id, 'email', interesado->>'email', 'es', 'pendiente', 0,
       $1, $1
FROM notificaciones.notificaciones WHERE tenant_id = $2 LIMIT $3
"""


async def _fresh_database() -> str:
    admin = make_url(POSTGRES_ADMIN_URL)
    name = f"consistorio_bench_notif_{uuid.uuid4().hex[:6]}"
    engine = create_async_engine(asyncpg_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return admin.set(database=name).render_as_string(hide_password=False)


async def _drop(url: str) -> None:
    name = make_url(url).database
    engine = create_async_engine(asyncpg_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


def _bare_smtplib(port: int, n: int, *, reuse: bool) -> float:
    """Seconds a plain smtplib loop takes for ``n`` messages (one connection each, or one)."""
    start = time.perf_counter()
    smtp = smtplib.SMTP("127.0.0.1", port) if reuse else None
    for i in range(n):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "a@example.org", f"b{i}@example.org", "Aviso"
        msg.set_content("Tiene una notificación a su disposición.")
        if smtp is not None:
            smtp.send_message(msg)
        else:
            with smtplib.SMTP("127.0.0.1", port) as one:
                one.send_message(msg)
    if smtp is not None:
        smtp.quit()
    return time.perf_counter() - start


async def main(n: int, avisos: int) -> None:
    url = await _fresh_database()
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            settings = load_settings(
                database_url=url, environment="test", data_dir=Path(data_dir), log_json=False
            )
            await migrate(settings)
            await seed_demo_tenants(settings)
            owner = await asyncpg.connect(asyncpg_url(url).replace("+asyncpg", ""))
            await owner.execute(_SEED, TENANT, PUESTA, VENCE, n)
            await owner.execute(
                "CREATE SCHEMA bench_notif; CREATE TABLE bench_notif.copia AS "
                "SELECT * FROM notificaciones.notificaciones"
            )
            await owner.execute("ANALYZE")
            start = time.perf_counter()
            await owner.execute(_PLAIN, VENCE)
            plain = time.perf_counter() - start

            platform = await build_platform(
                settings, ["notificaciones"], transport=InProcessTransport()
            )
            runtime = platform.runtimes["notificaciones"]
            clock = ControlledClock(VENCE)
            start = time.perf_counter()
            hechas = await Vencedor(runtime, clock, lote=1000).una_pasada()
            vencer = time.perf_counter() - start
            assert hechas == n, (hechas, n)
            eventos = await owner.fetchval(
                "SELECT count(*) FROM notificaciones.outbox WHERE routing_key LIKE '%expirada%'"
            )
            assert eventos == n, eventos

            await owner.execute(_AVISOS, PUESTA, TENANT, avisos)
            buzon = Buzon()
            with smtp_server(buzon) as port:
                ajustes = AvisosSettings(smtp_port=port, por_minuto=10**9, lote=avisos)
                avisador = Avisador(runtime, clock, ajustes, email=SmtpEmail(ajustes), sms=None)
                start = time.perf_counter()
                enviados = await avisador.una_pasada()
                ours = time.perf_counter() - start
                assert enviados == avisos and len(buzon.mensajes) == avisos
                bare_each = await asyncio.to_thread(_bare_smtplib, port, avisos, reuse=False)
                bare_reuse = await asyncio.to_thread(_bare_smtplib, port, avisos, reuse=True)
            await owner.close()
            await platform.close()
    finally:
        await _drop(url)

    print(f"\n### notificaciones: {n:,} expiring in the same second\n")
    print("| what | seconds | per second | ratio |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| plain UPDATE of a copy | {plain:.2f} | {n / plain:,.0f} | 1.0 |")
    print(
        f"| expiry scheduler (state, audit, event, time-stamp request) | {vencer:.2f} | "
        f"{n / vencer:,.0f} | {vencer / plain:.1f} |"
    )
    print(f"\n### avisos: {avisos:,} emails to aiosmtpd\n")
    print("| what | seconds | avisos/s | ratio |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| bare smtplib, one connection | {bare_reuse:.2f} | {avisos / bare_reuse:,.0f} | 1.0 |")
    print(
        f"| bare smtplib, a connection each | {bare_each:.2f} | {avisos / bare_each:,.0f} | "
        f"{bare_each / bare_reuse:.1f} |"
    )
    print(
        f"| sender (claim, send, record) | {ours:.2f} | {avisos / ours:,.0f} | "
        f"{ours / bare_reuse:.1f} |"
    )
    print("\nThe acuses are issued afterwards by a consumer (not started here): not timed.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="notifications expiring")
    parser.add_argument("--avisos", type=int, default=1_000, help="email avisos to send")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.avisos))
