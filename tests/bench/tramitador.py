"""Benchmark: the tramitador's worklist and expediente search at a million expedientes,
the service's way vs the same query in psql.

Run with ``python -m tests.bench.tramitador`` (``make bench``); needs the real PostgreSQL
and ``psql``. It makes a fresh database, migrates it and loads one council's million
expedientes (20 procedures, 20 units, ~5,000 interesados, three years) with two
trámites each, one open (70 % with a due date within ±60 days) and one done, plus a
second council's 100,000 expedientes so the tenant condition and row-level security
have something to exclude. A progress line shows the load.

Each query is then timed both ways in the same run: ours is the use case the route
calls (``bandeja.service.leer_bandeja``, ``expedientes.service.listar_expedientes``)
inside ``tenant_transaction`` on the service role's pool, i.e. the API minus HTTP; the
baseline is the hand-written SQL run by psql as the owner (no RLS), timed with
``\\timing``. Both answers are compared first. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date

import asyncpg

from services.bootstrap import migrate
from services.common.auth import Principal
from services.common.db import Database, tenant_transaction
from services.common.settings import load_settings
from services.tramitador.bandeja import service as bandeja
from services.tramitador.expedientes import service as expedientes
from tests.bench.common import ScratchDatabase, cpu_model, memory_gib, seeding_progress
from tests.bench.common import nearest_rank as _pct
from tests.bench.registro_busqueda import _TIME, nif_de

TENANT = "03014"
OTRO_TENANT = "46250"
PAGE = 50
PERSONAS = 5000
PROCEDIMIENTOS = [f"procedimiento-{i:02d}" for i in range(20)]
UNIDADES = [f"unidad-{i:02d}" for i in range(20)]
HOY = date(2026, 3, 2)

_SEED = f"""
WITH nuevos AS (
    INSERT INTO tramitador.expedientes (id, tenant_id, anio, secuencia, numero, procedimiento,
        procedimiento_version, estado, fase, iniciacion, unidad, asunto, fecha_inicio,
        interesados, interesado_id, interesado_nombre)
    SELECT gen_random_uuid(), $1, r.anio, r.g, 'EXP/' || r.anio || '/' || lpad(r.g::text, 7, '0'),
        ($4::text[])[1 + r.g % 20], 1,
        CASE WHEN r.g % 10 < 7 THEN 'en_tramite' ELSE 'resuelto' END,
        CASE WHEN r.g % 10 < 7 THEN 'instruccion' ELSE 'resuelto' END,
        'solicitud', ($5::text[])[1 + floor(power(r.u, 1.5) * 20)::int],
        'Expediente de carga ' || r.g,
        make_timestamptz(r.anio, 1, 1, 0, 0, 0, 'Europe/Madrid') + r.j * interval '365 days',
        jsonb_build_array(jsonb_build_object('tipo_identificador', 'NIF',
            'identificador', lpad((10000000 + r.p * 17389)::text, 8, '0')
                || substr('TRWAGMYFPDXBNJZSQVHLCKE', (10000000 + r.p * 17389) % 23 + 1, 1),
            'nombre', 'Persona ' || r.p)),
        lpad((10000000 + r.p * 17389)::text, 8, '0')
            || substr('TRWAGMYFPDXBNJZSQVHLCKE', (10000000 + r.p * 17389) % 23 + 1, 1),
        'Persona ' || r.p
    FROM (SELECT g, 2023 + (g % 3) AS anio, random() AS j, random() AS u,
                 floor(random() * {PERSONAS})::int AS p
          FROM generate_series($2::int, $3::int) AS g OFFSET 0) AS r
    RETURNING id, tenant_id, procedimiento, unidad, fase
)
INSERT INTO tramitador.tramites (id, tenant_id, expediente_id, fase, codigo, nombre, informe,
    unidad, estado, vencimiento, procedimiento)
SELECT gen_random_uuid(), n.tenant_id, n.id, n.fase, t.codigo, t.nombre, false, n.unidad,
    t.estado,
    CASE WHEN t.estado = 'abierto' AND random() < 0.7
         THEN $6::date + (floor(random() * 121) - 60)::int END,
    n.procedimiento
FROM nuevos n CROSS JOIN (VALUES
    ('revisar', 'Revisar la solicitud', 'completado'),
    ('informar', 'Emitir el informe', 'abierto')) AS t(codigo, nombre, estado)
"""


async def seed(dsn: str, rows: int, other_rows: int, batch: int) -> float:
    """Loads both councils as the owner, in batches, with a progress line."""
    conn = await asyncpg.connect(dsn)
    started = time.monotonic()
    try:
        await conn.execute("SELECT setseed(0.2026)")
        done = 0
        for tenant, total in ((TENANT, rows), (OTRO_TENANT, other_rows)):
            for first in range(1, total + 1, batch):
                last = min(total, first + batch - 1)
                await conn.execute(_SEED, tenant, first, last, PROCEDIMIENTOS, UNIDADES, HOY)
                done += last - first + 1
                seeding_progress(done, rows + other_rows, started, "expedientes")
        print(file=sys.stderr)
        await conn.execute(
            "INSERT INTO tramitador.miembros_unidad VALUES ($1, 'unidad-03', 'ana')", TENANT
        )
        print("  VACUUM ANALYZE", file=sys.stderr)
        await conn.execute("VACUUM (ANALYZE) tramitador.expedientes, tramitador.tramites")
    finally:
        await conn.close()
    return time.monotonic() - started


ANA = Principal(sub="ana", tenant=TENANT, roles=frozenset({"tramitador"}), name="Ana")
_BANDEJA = (
    "SELECT t.id AS tramite_id, t.expediente_id, e.numero, t.procedimiento, t.fase, t.codigo, "
    "t.nombre, t.unidad, t.rol, t.persona, t.vencimiento, e.asunto "
    "FROM tramitador.tramites t JOIN tramitador.expedientes e ON e.id = t.expediente_id "
    f"WHERE t.tenant_id = '{TENANT}' AND t.estado = 'abierto' AND (t.persona = 'ana' "
    "OR t.rol IN ('tramitador') OR t.unidad IN ('unidad-03')) "
    "ORDER BY coalesce(t.vencimiento, DATE '9999-12-31'), t.id LIMIT {limit}"
)
_RECUENTO = (
    "SELECT t.procedimiento, count(*), count(*) FILTER (WHERE t.vencimiento < DATE "
    f"'{HOY.isoformat()}') FROM tramitador.tramites t WHERE t.tenant_id = '{TENANT}' "
    "AND t.estado = 'abierto' AND (t.persona = 'ana' OR t.rol IN ('tramitador') "
    "OR t.unidad IN ('unidad-03')) GROUP BY t.procedimiento ORDER BY t.procedimiento"
)
_EXPEDIENTES = (
    f"SELECT * FROM tramitador.expedientes e WHERE e.tenant_id = '{TENANT}'{{where}} "
    "ORDER BY e.fecha_inicio DESC, e.id DESC LIMIT {limit}"
)


@dataclass(frozen=True)
class Consulta:
    """One query: how the service runs it, and the same by hand for psql."""

    nombre: str
    ours: Callable[[Database], Awaitable[list[str]]]
    sql: list[str]


def _bandeja(contar: bool) -> Callable[[Database], Awaitable[list[str]]]:
    async def run(db: Database) -> list[str]:
        async with tenant_transaction(db, TENANT) as session:
            page = await bandeja.leer_bandeja(
                session, principal=ANA, filtros={}, cursor=None, limit=PAGE, contar=contar, hoy=HOY
            )
        return [i.tramite_id for i in page.items]

    return run


def _busqueda(**filtros: object) -> Callable[[Database], Awaitable[list[str]]]:
    async def run(db: Database) -> list[str]:
        async with tenant_transaction(db, TENANT) as session:
            items, _ = await expedientes.listar_expedientes(
                session, tenant_id=TENANT, filtros=filtros, cursor=None, limit=PAGE
            )
        return [i.id for i in items]

    return run


def consultas() -> list[Consulta]:
    nif = nif_de(1234)
    pagina = _BANDEJA.format(limit=PAGE + 1)
    return [
        Consulta("bandeja: first page, no counts", _bandeja(False), [pagina]),
        Consulta("bandeja: first page with counts", _bandeja(True), [pagina, _RECUENTO]),
        Consulta(
            f"expedientes: interesado = NIF ({nif})",
            _busqueda(interesado=nif),
            [
                _EXPEDIENTES.format(
                    where=f""" AND e.interesados @> '[{{"identificador": "{nif}"}}]'""",
                    limit=PAGE + 1,
                )
            ],
        ),
        Consulta(
            "expedientes: interesado = part of a name (“Persona 123”)",
            _busqueda(interesado="Persona 123"),
            [
                _EXPEDIENTES.format(
                    where=" AND e.interesado_nombre ILIKE '%Persona 123%'", limit=PAGE + 1
                )
            ],
        ),
        Consulta(
            "expedientes: procedimiento + estado",
            _busqueda(procedimiento="procedimiento-06", estado="en_tramite"),
            [
                _EXPEDIENTES.format(
                    where=" AND e.procedimiento = 'procedimiento-06' AND e.estado = 'en_tramite'",
                    limit=PAGE + 1,
                )
            ],
        ),
        Consulta(
            "expedientes: first page, no filter",
            _busqueda(),
            [_EXPEDIENTES.format(where="", limit=PAGE + 1)],
        ),
    ]


async def check_same_answer(dsn: str, db: Database, consulta: Consulta) -> int:
    """Both ways give the same page; answers its size."""
    ours = await consulta.ours(db)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(consulta.sql[0])
    finally:
        await conn.close()
    expected = [str(r[0]) for r in rows[:PAGE]]
    if ours != expected:
        raise SystemExit(f"{consulta.nombre}: the service and psql disagree")
    return len(ours)


def run_psql(psql: str, dsn: str, consulta: Consulta, warmup: int, runs: int) -> list[float]:
    """The hand-written SQL ``warmup + runs`` times in one psql session; seconds per run."""
    script = "\\timing on\n" + "".join(s + ";\n" for s in consulta.sql) * (warmup + runs)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", encoding="utf-8") as fh:
        fh.write(script)
        fh.flush()
        done = subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-o", os.devnull, "-f", fh.name, dsn],
            capture_output=True,
            text=True,
            check=True,
        )
    times = [float(t) / 1000 for t in _TIME.findall(done.stdout)]
    per_run = len(consulta.sql)
    summed = [sum(times[i : i + per_run]) for i in range(0, len(times), per_run)]
    return summed[warmup:]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="expedientes of the council")
    parser.add_argument("--other-rows", type=int, default=100_000, help="another council's")
    parser.add_argument("--batch", type=int, default=50_000, help="expedientes per INSERT")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per query and side")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    args = parser.parse_args()
    psql = subprocess.run(["which", "psql"], capture_output=True, text=True).stdout.strip()
    if not psql:
        raise SystemExit("psql is not installed (Debian package postgresql-client)")
    database = await ScratchDatabase.create()
    name, dsn, server_version = database.name, database.url, database.server_version
    settings = load_settings(database_url=dsn)
    results: list[tuple[str, int, list[float], list[float]]] = []
    started = time.monotonic()
    db: Database | None = None
    try:
        print(f"database {name}: migrating", file=sys.stderr)
        await migrate(settings)
        seconds = await seed(dsn, args.rows, args.other_rows, args.batch)
        print(f"  loaded in {seconds:.0f} s", file=sys.stderr)
        db = Database(settings.app_database_url(), pool_size=1)
        for consulta in consultas():
            size = await check_same_answer(dsn, db, consulta)
            print(f"  {consulta.nombre}: {size} rows, same answer both ways", file=sys.stderr)
            for _ in range(args.warmup):
                await consulta.ours(db)
            ours = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                await consulta.ours(db)
                ours.append(time.perf_counter() - t0)
            plain = run_psql(psql, dsn, consulta, args.warmup, args.runs)
            results.append((consulta.nombre, size, ours, plain))
    finally:
        if db is not None:
            await db.dispose()
        await database.drop()

    print(
        f"\nMachine: {cpu_model()} ({platform.machine()}), {os.cpu_count()} cores, "
        f"{memory_gib()}, Python {platform.python_version()}, PostgreSQL {server_version}. "
        f"{args.rows:,d} expedientes (+{args.other_rows:,d} of another council), two trámites "
        f"each; {args.runs} runs per query and side after {args.warmup} warm-up runs; page "
        f"{PAGE}; whole run {time.monotonic() - started:.0f} s.\n"
    )
    print("| query | rows | ours p50 ms | ours p99 ms | psql p50 ms | psql p99 ms | ours ÷ psql |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, size, ours, plain in results:
        print(
            f"| {label} | {size} | {_pct(ours, 0.5):.1f} | {_pct(ours, 0.99):.1f} "
            f"| {_pct(plain, 0.5):.1f} | {_pct(plain, 0.99):.1f} "
            f"| {_pct(ours, 0.5) / _pct(plain, 0.5):.2f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
