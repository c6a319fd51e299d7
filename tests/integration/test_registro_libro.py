"""Exporting the libro de registro on real PostgreSQL: CSV and PDF of a period (only that
book, only that period, annulled asientos with their estado), the job's progress on a
book of 2,500 asientos, 409 before the file exists, 422 on a bad range, another
tenant's export is a 404, and an abandoned job is declared fallida."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.bootstrap import Platform
from services.common.db import asyncpg_url
from services.common.settings import Settings
from services.common.timezones import tenant_timezone
from services.registro.libro import service as exportaciones
from tests.support import factories
from tests.support.platforms import asgi_client, bearer, running_platform
from tests.unit.test_justificante_render import read

pytestmark = pytest.mark.integration

ASIENTOS = "/api/v1/registro/asientos"
EXPORTACIONES = "/api/v1/registro/libros/exportaciones"
BOM = "\ufeff".encode()


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["registro"]) as built:
        yield built


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["registro"]) as c:
        yield c


auth = bearer


async def owner_sql(database_url: str, sql: str, params: dict[str, Any]) -> None:
    """Runs a statement as the database owner (outside the service role and RLS)."""
    engine = create_async_engine(asyncpg_url(database_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql), params)
    finally:
        await engine.dispose()


_OUT_OF_RANGE = """
INSERT INTO registro.asientos (id, tenant_id, tipo, anio, secuencia, numero, fecha_registro,
    resumen, unidad_destino, procedimiento, interesados, registrado_por)
VALUES (gen_random_uuid(), :tenant, 'entrada', :anio, 900001, :numero, :fecha,
    'Anterior al periodo', 'L01000001', NULL, '[]'::jsonb, 'carga')
"""


@pytest.fixture
async def libro(client, new_tenant, token, database_url) -> dict[str, Any]:
    """Today's book: three entradas (one annulled) and a salida, plus an older entrada."""
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro"))
    bodies = [
        factories.asiento(
            resumen='Licencia "urgente"; obra en la façana',
            interesados=[
                factories.interesado(
                    identificador="12345678Z", nombre="María", apellido1="Núñez Peña"
                )
            ],
        ),
        factories.asiento(tipo="salida", resumen="Notificación de resolución"),
        factories.asiento(resumen="Vado permanente", procedimiento=None),
        factories.asiento(resumen="Subvención cultural"),
    ]
    created = []
    for body in bodies:
        response = await client.post(ASIENTOS, json=body, headers=headers)
        assert response.status_code == 201, response.text
        created.append(response.json())
    annulled = await client.post(
        f"{ASIENTOS}/{created[2]['id']}/anular", json={"motivo": "Duplicado"}, headers=headers
    )
    assert annulled.status_code == 200, annulled.text
    zona = tenant_timezone(tenant)
    hoy = datetime.now(zona).date()
    antes = datetime.combine(hoy - timedelta(days=3), datetime.min.time(), tzinfo=zona)
    await owner_sql(
        database_url,
        _OUT_OF_RANGE,
        {
            "tenant": tenant,
            "anio": antes.year,
            "numero": f"E/{antes.year}/900001",
            "fecha": antes + timedelta(hours=10),
        },
    )
    return {"tenant": tenant, "headers": headers, "asientos": created, "hoy": hoy}


async def pedir(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post(EXPORTACIONES, json=body, headers=headers)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"{EXPORTACIONES}/{job['id']}"
    assert job["estado"] == "pendiente" and job["hechos"] == 0 and job["fichero"] is None
    return job


async def hasta_terminar(
    client: httpx.AsyncClient, headers: dict[str, str], job_id: str, seen: list[dict[str, Any]]
) -> dict[str, Any]:
    """Polls the job until it ends, keeping every state it was seen in."""
    for _ in range(2000):
        response = await client.get(f"{EXPORTACIONES}/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        seen.append(body)
        if body["estado"] in ("terminada", "fallida"):
            return body
        await asyncio.sleep(0.01)
    raise AssertionError("la exportación no terminó")


def csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(BOM)
    return list(
        csv.reader(io.StringIO(data[len(BOM) :].decode("utf-8"), newline=""), delimiter=";")
    )


async def test_csv_export_of_todays_entradas(client, libro) -> None:
    headers, hoy = libro["headers"], libro["hoy"]
    job = await pedir(
        client,
        headers,
        tipo="entrada",
        formato="csv",
        desde=hoy.isoformat(),
        hasta=(hoy + timedelta(days=1)).isoformat(),
    )
    done = await hasta_terminar(client, headers, job["id"], [])
    assert done["estado"] == "terminada", done
    assert done["total"] == done["hechos"] == 3 and done["porcentaje"] == 100
    assert done["fichero"] == f"{EXPORTACIONES}/{job['id']}/fichero"
    response = await client.get(done["fichero"], headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="libro-entrada-{hoy.isoformat()}-'
        f'{(hoy + timedelta(days=1)).isoformat()}.csv"'
    )
    assert done["tamano"] == len(response.content)
    rows = csv_rows(response.content)
    assert rows[0][0] == "Número" and rows[0][7] == "Estado"
    entradas = [a for a in libro["asientos"] if a["tipo"] == "entrada"]
    # Only the period's entradas, in order of number; not the salida, not the older entrada.
    assert [r[0] for r in rows[1:]] == [a["numero"] for a in entradas]
    assert rows[1][3] == 'Licencia "urgente"; obra en la façana'
    assert rows[1][6].startswith("María Núñez Peña (12345678Z)")
    assert rows[1][7] == "Registrado"
    anulada = rows[2]
    assert anulada[3] == "Vado permanente" and anulada[5] == ""
    assert anulada[7] == "Anulado" and anulada[9] == "Duplicado" and anulada[8]


async def test_pdf_export_of_todays_salidas(client, libro) -> None:
    headers, hoy = libro["headers"], libro["hoy"]
    job = await pedir(
        client,
        headers,
        tipo="salida",
        formato="pdf",
        desde=(hoy - timedelta(days=30)).isoformat(),
        hasta=(hoy + timedelta(days=1)).isoformat(),
    )
    done = await hasta_terminar(client, headers, job["id"], [])
    assert done["estado"] == "terminada", done
    assert done["total"] == 1
    response = await client.get(done["fichero"], headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    lines = set(read(response.content).text.splitlines())
    assert "Libro de registro de salida" in lines
    assert libro["asientos"][1]["numero"] in lines
    assert "Notificación de resolución" in lines
    assert not any(a["numero"] in lines for a in libro["asientos"] if a["tipo"] == "entrada")


@pytest.mark.parametrize(
    ("desde", "hasta"),
    [
        ("2026-03-01", "2026-03-01"),
        ("2026-03-02", "2026-03-01"),
        ("2025-01-01", "2026-01-02"),
    ],
)
async def test_a_bad_range_is_422(client, new_tenant, token, desde, hasta) -> None:
    headers = auth(token(await new_tenant(), "registro"))
    body = {"tipo": "entrada", "formato": "csv", "desde": desde, "hasta": hasta}
    response = await client.post(EXPORTACIONES, json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == ["hasta"]
    for wrong in ({**body, "formato": "xlsx"}, {**body, "desde": "ayer"}, {"tipo": "entrada"}):
        bad = await client.post(EXPORTACIONES, json=wrong, headers=headers)
        assert bad.status_code == 422, bad.text


async def test_409_until_done_and_abandoned_jobs_fail(
    client, libro, monkeypatch, database_url
) -> None:
    headers, hoy = libro["headers"], libro["hoy"]
    # No background task: the job stays pending, as if its process had died at once.
    monkeypatch.setattr(exportaciones, "start", lambda *args, **kwargs: None)
    job = await pedir(
        client,
        headers,
        tipo="entrada",
        formato="csv",
        desde=hoy.isoformat(),
        hasta=(hoy + timedelta(days=1)).isoformat(),
    )
    fichero = f"{EXPORTACIONES}/{job['id']}/fichero"
    pending = await client.get(fichero, headers=headers)
    assert pending.status_code == 409
    assert pending.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(f"{EXPORTACIONES}/{job['id']}", headers=headers)).json()[
        "estado"
    ] == "pendiente"
    # Ten minutes without progress: the next read declares it abandoned.
    await owner_sql(
        database_url,
        "UPDATE registro.exportaciones SET actualizado_en = now() - interval '11 minutes' "
        "WHERE id = :id",
        {"id": job["id"]},
    )
    body = (await client.get(f"{EXPORTACIONES}/{job['id']}", headers=headers)).json()
    assert body["estado"] == "fallida" and "interrumpió" in body["error"]
    failed = await client.get(fichero, headers=headers)
    assert failed.status_code == 409 and "falló" in failed.json()["detail"]


async def test_another_tenants_export_is_not_found(client, libro, new_tenant, token) -> None:
    headers, hoy = libro["headers"], libro["hoy"]
    job = await pedir(
        client,
        headers,
        tipo="entrada",
        formato="csv",
        desde=hoy.isoformat(),
        hasta=(hoy + timedelta(days=1)).isoformat(),
    )
    done = await hasta_terminar(client, headers, job["id"], [])
    assert done["estado"] == "terminada"
    other = auth(token(await new_tenant(), "registro"))
    for path in (f"{EXPORTACIONES}/{job['id']}", f"{EXPORTACIONES}/{job['id']}/fichero"):
        response = await client.get(path, headers=other)
        assert response.status_code == 404, response.text
    assert (await client.get(f"{EXPORTACIONES}/no-es-un-id", headers=headers)).status_code == 404
    # Without the registro role there is no export at all.
    viewer = auth(token(libro["tenant"], "consulta"))
    assert (await client.get(f"{EXPORTACIONES}/{job['id']}", headers=viewer)).status_code == 403


_SEED = """
INSERT INTO registro.asientos (id, tenant_id, tipo, anio, secuencia, numero, fecha_registro,
    resumen, unidad_destino, procedimiento, interesados, registrado_por)
SELECT gen_random_uuid(), :tenant, 'entrada', 2025, g, 'E/2025/' || lpad(g::text, 6, '0'),
    timestamptz '2025-01-01 08:00+01' + g * interval '3 hours',
    'Solicitud ' || g, 'L01000001', NULL,
    jsonb_build_array(jsonb_build_object('tipo_identificador', 'PASAPORTE',
        'identificador', 'P' || lpad(g::text, 8, '0'), 'nombre', 'Persona')),
    'carga'
FROM generate_series(1, 2500) AS g
"""


async def test_progress_moves_on_a_large_book(
    client, new_tenant, token, database_url, monkeypatch
) -> None:
    tenant = await new_tenant()
    headers = auth(token(tenant, "registro"))
    await owner_sql(database_url, _SEED, {"tenant": tenant})
    # Smaller batches, each a little slower, so polling sees the job half done.
    monkeypatch.setattr(exportaciones, "LOTE", 250)
    leer = exportaciones._leer_lote

    async def lento(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.05)
        return await leer(*args, **kwargs)

    monkeypatch.setattr(exportaciones, "_leer_lote", lento)
    job = await pedir(
        client, headers, tipo="entrada", formato="csv", desde="2025-01-01", hasta="2026-01-01"
    )
    seen: list[dict[str, Any]] = []
    done = await hasta_terminar(client, headers, job["id"], seen)
    assert done["estado"] == "terminada", done
    assert done["hechos"] == done["total"] == 2500
    running = [s for s in seen if s["estado"] == "en_curso"]
    assert running, "the job was never seen running"
    assert any(0 < s["hechos"] < 2500 and s["total"] == 2500 for s in running)
    hechos = [s["hechos"] for s in seen]
    assert hechos == sorted(hechos)
    assert done["iniciado_en"] is not None and done["terminado_en"] >= done["iniciado_en"]
    rows = csv_rows((await client.get(done["fichero"], headers=headers)).content)
    assert len(rows) == 2501
    assert [r[0] for r in rows[1:]] == [f"E/2025/{g:06d}" for g in range(1, 2501)]
    assert rows[1][1].startswith("01/01/2025 ")
    assert (done["desde"], done["hasta"]) == ("2025-01-01", "2026-01-01")
