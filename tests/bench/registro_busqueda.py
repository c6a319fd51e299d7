"""Benchmark: searching a register of a million asientos, the service's way vs plain SQL.

Run with ``python -m tests.bench.registro_busqueda`` (``make bench``); needs the real
PostgreSQL and ``psql``. It makes a fresh database, migrates it, loads one entity's
register of a million asientos (three years, ~5,000 interesados, resúmenes from a
vocabulary of 200 words, 20 unidades) and a second entity's 100,000 rows in the same
table, so the tenant condition and row-level security have something to exclude.

Then each common search is timed twice, in the same run, on the same server:

- ours: ``service.listar_asientos`` inside ``tenant_transaction`` on the service role's
  pool, i.e. what ``GET /api/v1/registro/asientos`` does minus HTTP: RLS, the
  SECURITY DEFINER search function, SQLAlchemy, asyncpg, the count on a first page,
  pydantic models of every row;
- the baseline: the same searches written by hand (same indexes, same page, same
  count) and run by ``psql`` as the owner, which bypasses RLS and calls no function.
  psql's ``\\timing`` is used, one session for all runs: it measures from sending a
  statement to receiving its last row (before printing), planning included, which is
  the boundary our figure has too. ``EXPLAIN ANALYZE``'s Execution Time would leave
  out planning and the transfer of the rows and add instrumentation to every row, so
  it is not the same thing as what a client waits for.

Before timing, both answers are compared (same total, same page of ids), so the two
columns measure the same search. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import asyncpg

from services.bootstrap import migrate
from services.common.db import Database, tenant_transaction
from services.common.settings import load_settings
from services.common.timezones import tenant_timezone
from services.registro.asientos import service
from services.registro.asientos.domain import (
    Cursor,
    Filtros,
    clasificar_interesado,
    like_contains,
    parse_instante,
    texto_buscado,
)
from tests.bench.common import ScratchDatabase, cpu_model, memory_gib, seeding_progress
from tests.bench.common import nearest_rank as _pct

TENANT = "03014"
OTRO_TENANT = "46250"
PAGE_SIZE = 50
PERSONAS = 5000

# The words resúmenes are made of; earlier words are drawn more often (see _SEED).
_PALABRAS = (
    "solicitud licencia obra menor mayor instancia general expediente recurso reposición "
    "alzada reclamación patrimonial queja sugerencia certificado empadronamiento padrón "
    "volante convivencia alta baja cambio domicilio titularidad actividad apertura "
    "comunicación previa declaración responsable informe técnico jurídico urbanístico "
    "cédula habitabilidad ocupación vía pública subvención cultural deportiva tasa impuesto "
    "bienes inmuebles vehículos tracción mecánica plusvalía fraccionamiento aplazamiento "
    "deuda devolución ingreso indebido bonificación exención familia numerosa discapacidad "
    "ayuda emergencia social dependencia beca comedor escolar matrícula escuela infantil "
    "música biblioteca carné instalación piscina polideportivo reserva espacio sala teatro "
    "auditorio festejos fiesta feria mercado ambulante puesto terraza veladores mesas sillas "
    "toldo andamio contenedor escombros corte calle tráfico señalización aparcamiento "
    "residentes tarjeta estacionamiento grúa multa sanción alegaciones denuncia policía "
    "ruido molestias vecinos limpieza solar poda árbol parque jardín alumbrado farola avería "
    "bache acera pavimento alcantarillado agua suministro acometida contador basura recogida "
    "enseres animales perro peligroso censo canino cementerio nicho sepultura inhumación "
    "exhumación concesión registro parejas matrimonio civil boda copia acceso información "
    "transparencia protección datos rectificación contratación licitación oferta proveedor "
    "factura pago aval garantía fianza personal oposiciones bolsa empleo participación "
    "proceso selectivo plaza convocatoria asociación vecinal inscripción entidades pleno "
    "moción ruego pregunta alcaldía decreto resolución notificación requerimiento "
    "subsanación documentación segregación parcela derribo demolición rehabilitación "
    "fachada ascensor accesibilidad vivienda vado"
)
_NOMBRES_DE_PILA = (
    "María José Lucía Ramón Begoña Íñigo Sofía Jesús Andrés Mónica Inés Óscar "
    "Raúl Ángela Álvaro Nuria Joaquín Verónica Adrián Elena Martín Noelia Tomás Irene"
)
_APELLIDOS_COMUNES = (
    "García Núñez Peña Martínez López Sánchez Pérez Gómez Fernández Rodríguez Jiménez "
    "Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres Domínguez Vázquez Ramos Gil "
    "Ramírez Serrano Blanco Suárez Molina Morales Ortega Delgado Castro Ortiz Rubio Marín "
    "Sanz Iglesias Medina Garrido Cortés Castillo"
)
_VOCABULARIO = _PALABRAS.split()
_NOMBRES = _NOMBRES_DE_PILA.split()
_APELLIDOS = _APELLIDOS_COMUNES.split()

# One person of the PERSONAS: always the same valid NIF and the same name (the NIF's
# check letter is computed as for a DNI), so a search by either finds all their asientos.
_PERSONA = f"""jsonb_build_object('tipo_identificador', 'NIF',
    'identificador', lpad((10000000 + {{p}} * 17389)::text, 8, '0')
        || substr('TRWAGMYFPDXBNJZSQVHLCKE', (10000000 + {{p}} * 17389) % 23 + 1, 1),
    'nombre', ($6::text[])[{{p}} % {len(_NOMBRES)} + 1],
    'apellido1', ($7::text[])[({{p}} / {len(_NOMBRES)}) % {len(_APELLIDOS)} + 1],
    'apellido2', ($7::text[])[(({{p}} / {len(_NOMBRES) * len(_APELLIDOS)}) * 7
        + {{p}} % {len(_NOMBRES)}) % {len(_APELLIDOS)} + 1])"""

# Rows first .. last of an entity's register of `total` asientos, a third per year
# 2023-2025, evenly spread over each year with random jitter, numbered per year.
# OFFSET 0 keeps the random draws of a row computed once (not once per reference).
_SEED = f"""
INSERT INTO registro.asientos (id, tenant_id, tipo, anio, secuencia, numero, fecha_registro,
    resumen, unidad_destino, procedimiento, interesados, registrado_por)
SELECT gen_random_uuid(), $1, r.tipo, r.anio, r.k,
    upper(left(r.tipo, 1)) || '/' || r.anio || '/' || lpad(r.k::text, 6, '0'),
    r.inicio + (r.k - 1 + r.jitter) * ((r.fin - r.inicio) / r.n),
    (SELECT string_agg(($5::text[])[1 + floor(power(random(), 2) * {len(_VOCABULARIO)})::int],
            ' ')
        FROM generate_series(1, 5 + r.g % 4)),
    'L01030' || lpad(floor(power(r.u, 1.5) * 20)::int::text, 3, '0'),
    CASE WHEN r.g % 3 = 0 THEN NULL ELSE 'generico' END,
    jsonb_build_array({_PERSONA.format(p="r.p1")})
        || CASE WHEN r.dos < 0.15 THEN jsonb_build_array({_PERSONA.format(p="r.p2")})
           ELSE '[]'::jsonb END,
    'carga'
FROM (
    SELECT s.g, 2023 + s.y AS anio, s.g - s.y * s.por_anio AS k,
        CASE s.y WHEN 2 THEN $4 - 2 * s.por_anio ELSE s.por_anio END AS n,
        make_timestamptz(2023 + s.y, 1, 1, 0, 0, 0, 'Europe/Madrid') AS inicio,
        make_timestamptz(2024 + s.y, 1, 1, 0, 0, 0, 'Europe/Madrid') AS fin,
        CASE WHEN random() < 0.75 THEN 'entrada' ELSE 'salida' END AS tipo,
        random() AS jitter, random() AS u, random() AS dos,
        floor(random() * {PERSONAS})::int AS p1, floor(random() * {PERSONAS})::int AS p2
    FROM (SELECT g, least(2, (g - 1) / ($4 / 3)) AS y, $4 / 3 AS por_anio
          FROM generate_series($2::int, $3::int) AS g) AS s
    OFFSET 0
) AS r
"""

_ANULAR = (
    "INSERT INTO registro.anulaciones "
    "SELECT id, tenant_id, 'Registrado por duplicado', 'carga', fecha_registro + interval '1 hour' "
    "FROM registro.asientos WHERE secuencia % 200 = 0"
)


def nif_de(persona: int) -> str:
    """The NIF _PERSONA gives ``persona`` (so a search can name one that exists)."""
    n = 10000000 + persona * 17389
    return f"{n:08d}" + "TRWAGMYFPDXBNJZSQVHLCKE"[n % 23]


async def seed(dsn: str, rows: int, other_rows: int, batch: int) -> float:
    """Loads both registers as the owner, interleaved in batches; answers the seconds taken."""
    conn = await asyncpg.connect(dsn)
    started = time.monotonic()
    try:
        # Comparable runs: the same seed draws the same rows (all but their uuids).
        await conn.execute("SELECT setseed(0.2026)")
        rounds = math.ceil(rows / batch)
        other_batch = math.ceil(other_rows / rounds)
        done = 0
        for i in range(rounds):
            for tenant, total, size in (
                (TENANT, rows, batch),
                (OTRO_TENANT, other_rows, other_batch),
            ):
                first = i * size + 1
                last = min(total, (i + 1) * size)
                if first > last:
                    continue
                await conn.execute(
                    _SEED, tenant, first, last, total, _VOCABULARIO, _NOMBRES, _APELLIDOS
                )
                done += last - first + 1
                seeding_progress(done, rows + other_rows, started, "asientos")
        print(file=sys.stderr)
        await conn.execute(_ANULAR)
        # A long-lived register has been vacuumed by autovacuum: the visibility map
        # lets counts use index-only scans. Done here so autovacuum cannot start
        # during the timings.
        print("  VACUUM ANALYZE", file=sys.stderr)
        await conn.execute("VACUUM (ANALYZE) registro.asientos, registro.anulaciones")
    finally:
        await conn.close()
    return time.monotonic() - started


def _lit(value: str) -> str:
    """A SQL string literal (the values are ours, but quoted properly all the same)."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Busqueda:
    """One search: its filters for the service and its hand-written SQL for psql."""

    nombre: str
    filtros: Filtros
    where: str
    cursor: Cursor | None = None

    def plain_sql(self) -> list[str]:
        """What a DBA would type: a count (first pages only, as the API) and the page."""
        base = (
            "FROM registro.asientos a LEFT JOIN registro.anulaciones n ON n.asiento_id = a.id "
            f"WHERE a.tenant_id = {_lit(TENANT)}{self.where}"
        )
        keyset = ""
        if self.cursor is not None:
            keyset = (
                f" AND (a.fecha_registro, a.id) < ({_lit(self.cursor.fecha_registro.isoformat())}"
                f"::timestamptz, {_lit(self.cursor.id)}::uuid)"
            )
        page = (
            "SELECT a.*, n.motivo AS anulacion_motivo, n.anulado_por AS anulacion_por, "
            f"n.anulado_en AS anulacion_en {base}{keyset} "
            f"ORDER BY a.fecha_registro DESC, a.id DESC LIMIT {PAGE_SIZE + 1}"
        )
        if self.cursor is not None:
            return [page]
        return [f"SELECT count(*) {base}", page]


async def busquedas(dsn: str) -> list[Busqueda]:
    """The common searches, on values that exist in the loaded register."""
    zona = tenant_timezone(TENANT)
    identificador = clasificar_interesado(nif_de(1234)).identificador
    assert identificador is not None, "the generated NIF must be a valid NIF"
    nombre = clasificar_interesado("María Núñez").nombre
    assert nombre is not None
    palabra = texto_buscado("vado")
    desde = parse_instante("2025-03-01", zona)
    hasta = parse_instante("2025-04-01", zona)
    conn = await asyncpg.connect(dsn)
    try:
        # Half-way down the register, newest first: the page a cursor walk reaches there.
        row = await conn.fetchrow(
            "SELECT fecha_registro, id::text FROM registro.asientos WHERE tenant_id = $1 "
            "ORDER BY fecha_registro DESC, id DESC OFFSET "
            "(SELECT count(*) / 2 FROM registro.asientos WHERE tenant_id = $1) LIMIT 1",
            TENANT,
        )
    finally:
        await conn.close()
    assert row is not None
    hondo = Cursor(row["fecha_registro"], row["id"])
    identificador_json = '[{"identificador": "' + identificador + '"}]'
    return [
        Busqueda(
            f"interesado = NIF ({identificador})",
            Filtros(interesado=clasificar_interesado(identificador)),
            f" AND a.interesados @> {_lit(identificador_json)}::jsonb",
        ),
        Busqueda(
            "interesado = name (“María Núñez”)",
            Filtros(interesado=clasificar_interesado("María Núñez")),
            " AND registro.nombres_interesados(a.interesados) LIKE "
            f"registro.texto_busqueda({_lit(like_contains(nombre))})",
        ),
        Busqueda(
            "desde/hasta: one month (March 2025)",
            Filtros(desde=desde, hasta=hasta),
            f" AND a.fecha_registro >= {_lit(desde.isoformat())}"
            f" AND a.fecha_registro < {_lit(hasta.isoformat())}",
        ),
        Busqueda(
            f"q = one word (“{palabra}”)",
            Filtros(q=palabra),
            " AND registro.texto_busqueda(a.resumen) LIKE "
            f"registro.texto_busqueda({_lit(like_contains(palabra))})",
        ),
        Busqueda("first page, no filter", Filtros(), ""),
        Busqueda("cursor page half-way down, no filter", Filtros(), "", cursor=hondo),
    ]


async def run_ours(db: Database, busqueda: Busqueda) -> tuple[float, int | None, list[str]]:
    """One search as the API runs it: the service's role, RLS, one transaction."""
    t0 = time.perf_counter()
    async with tenant_transaction(db, TENANT) as session:
        items, total, _ = await service.listar_asientos(
            session,
            tenant_id=TENANT,
            filtros=busqueda.filtros,
            size=PAGE_SIZE,
            cursor=busqueda.cursor,
        )
    return time.perf_counter() - t0, total, [i.id for i in items]


async def check_same_answer(dsn: str, db: Database, busqueda: Busqueda) -> int | None:
    """Both ways find the same total and the same page; answers how many match
    (None for a cursor page, which counts nothing)."""
    _, total, ids = await run_ours(db, busqueda)
    conn = await asyncpg.connect(dsn)
    try:
        statements = busqueda.plain_sql()
        expected_total = None
        if len(statements) == 2:
            expected_total = await conn.fetchval(statements[0])
        rows = await conn.fetch(statements[-1])
    finally:
        await conn.close()
    expected_ids = [str(r["id"]) for r in rows[:PAGE_SIZE]]
    if total != expected_total or ids != expected_ids:
        raise SystemExit(
            f"{busqueda.nombre}: the service and the plain SQL disagree "
            f"(total {total} vs {expected_total}, same page: {ids == expected_ids})"
        )
    return total


_TIME = re.compile(r"^Time: ([0-9.]+) ms", re.MULTILINE)


def run_psql(psql: str, dsn: str, busqueda: Busqueda, warmup: int, runs: int) -> list[float]:
    """The plain SQL ``warmup + runs`` times in one psql session; seconds per run."""
    statements = busqueda.plain_sql()
    script = "\\timing on\n" + "".join(s + ";\n" for s in statements) * (warmup + runs)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", encoding="utf-8") as fh:
        fh.write(script)
        fh.flush()
        # -o sends the rows to /dev/null; the "Time:" lines still go to stdout.
        done = subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-o", os.devnull, "-f", fh.name, dsn],
            capture_output=True,
            text=True,
            check=True,
        )
    times = [float(t) / 1000 for t in _TIME.findall(done.stdout)]
    per_run = len(statements)
    if len(times) != per_run * (warmup + runs):
        raise SystemExit(f"psql printed {len(times)} timings: {done.stdout[-500:]}")
    summed = [sum(times[i : i + per_run]) for i in range(0, len(times), per_run)]
    return summed[warmup:]


def _matches(total: int | None) -> str:
    return "no count" if total is None else f"{total:,d}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="asientos of the entity")
    parser.add_argument("--other-rows", type=int, default=100_000, help="another entity's")
    parser.add_argument("--batch", type=int, default=50_000, help="rows per INSERT")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per search and side")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    args = parser.parse_args()
    psql = shutil.which("psql")
    if psql is None:
        raise SystemExit("psql is not installed (Debian package postgresql-client)")

    database = await ScratchDatabase.create()
    name, dsn, server_version = database.name, database.url, database.server_version
    settings = load_settings(database_url=dsn)
    results: list[tuple[str, int | None, list[float], list[float]]] = []
    started = time.monotonic()
    db: Database | None = None
    try:
        print(f"database {name}: migrating", file=sys.stderr)
        await migrate(settings)
        seconds = await seed(dsn, args.rows, args.other_rows, args.batch)
        print(f"  loaded in {seconds:.0f} s", file=sys.stderr)
        db = Database(settings.app_database_url(), pool_size=1)
        for busqueda in await busquedas(dsn):
            matches = await check_same_answer(dsn, db, busqueda)
            print(
                f"  {busqueda.nombre}: {_matches(matches)}, same answer both ways", file=sys.stderr
            )
            for _ in range(args.warmup):
                await run_ours(db, busqueda)
            ours = [(await run_ours(db, busqueda))[0] for _ in range(args.runs)]
            plain = run_psql(psql, dsn, busqueda, args.warmup, args.runs)
            results.append((busqueda.nombre, matches, ours, plain))
    finally:
        if db is not None:
            await db.dispose()
        await database.drop()

    print(
        f"\nMachine: {cpu_model()} ({platform.machine()}), {os.cpu_count()} cores, "
        f"{memory_gib()}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, PostgreSQL {server_version}. "
        f"Register: {args.rows:,d} asientos + {args.other_rows:,d} of another entity; "
        f"{args.runs} runs per search and side after {args.warmup} warm-up runs; "
        f"page size {PAGE_SIZE}; whole run {time.monotonic() - started:.0f} s.\n"
    )
    print(
        "| search | matches | ours p50 ms | ours p99 ms "
        "| psql p50 ms | psql p99 ms | ours ÷ psql (p50) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, matches, ours, plain in results:
        print(
            f"| {label} | {_matches(matches)} | {_pct(ours, 0.5):.1f} | {_pct(ours, 0.99):.1f} "
            f"| {_pct(plain, 0.5):.1f} | {_pct(plain, 0.99):.1f} "
            f"| {_pct(ours, 0.5) / _pct(plain, 0.5):.2f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
