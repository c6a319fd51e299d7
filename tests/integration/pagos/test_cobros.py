"""Importing a bank's Cuaderno 60 cobros file on real PostgreSQL: each NRC marks its
liquidación paid once; unknown, duplicated, wrong and unreadable lines are reported."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.bootstrap import Platform
from tests.support.pagos import Entidad, fichero_cobros, linea_cobro, liquidacion
from tests.support.platforms import collect_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

BASE = "/api/v1/pagos"
TEXTO = {"Content-Type": "text/plain; charset=iso-8859-1"}


def _linea(datos: dict[str, Any], nrc: str, importe: int | None = None) -> str:
    return linea_cobro(
        emisora=datos["emisora"],
        referencia=datos["referencia"],
        identificacion=datos["identificacion"],
        importe=importe if importe is not None else int(datos["importe"].replace(".", "")),
        nrc=nrc,
    )


async def _importar(client: httpx.AsyncClient, entidad: Entidad, texto: str) -> httpx.Response:
    return await client.post(
        f"{BASE}/cobros", headers={**entidad.staff, **TEXTO}, content=texto.encode("latin-1")
    )


async def test_a_cobros_file_pays_each_liquidacion_once(
    client: httpx.AsyncClient, platform: Platform, entidad: Entidad
) -> None:
    eventos = await collect_events(platform.transport, f"{entidad.tenant}.pagos.pago.completado.v1")
    pagada = await liquidacion(client, entidad, importe="159.00")
    mal_importe = await liquidacion(client, entidad, importe="20.00")
    anulada = await liquidacion(client, entidad, importe="7.50")
    await client.post(
        f"{BASE}/liquidaciones/{anulada['id']}/anular",
        headers=entidad.staff,
        json={"motivo": "Error de cálculo"},
    )
    ajena = {**pagada, "referencia": "269999999999"}
    detalles = [
        _linea(pagada, "N" * 21 + "1"),
        _linea(pagada, "N" * 21 + "1"),  # the same NRC twice in one file
        _linea(mal_importe, "N" * 21 + "2", importe=1999),
        _linea(anulada, "N" * 21 + "3"),
        _linea(ajena, "N" * 21 + "4"),
    ]
    respuesta = await _importar(client, entidad, fichero_cobros(pagada["emisora"], detalles))
    assert respuesta.status_code == 200, respuesta.text
    informe = respuesta.json()
    assert [a["liquidacion_id"] for a in informe["aplicados"]] == [pagada["id"]]
    assert [d["linea"] for d in informe["duplicados"]] == [3]
    assert sorted(r["liquidacion_id"] for r in informe["rechazados"]) == sorted(
        [mal_importe["id"], anulada["id"]]
    )
    assert [d["referencia"] for d in informe["desconocidos"]] == ["269999999999"]
    leida = (await client.get(f"{BASE}/liquidaciones/{pagada['id']}", headers=entidad.staff)).json()
    assert (leida["estado"], leida["canal"], leida["justificante_pago"]) == (
        "pagada",
        "cuaderno60",
        "N" * 21 + "1",
    )
    assert leida["pagada_at"].startswith("2026-12-02")
    pendiente = (
        await client.get(f"{BASE}/liquidaciones/{mal_importe['id']}", headers=entidad.staff)
    ).json()
    assert pendiente["estado"] == "pendiente"
    recibido = (await eventually(lambda: eventos))[0].data
    assert (recibido["canal"], recibido["justificante"]) == ("cuaderno60", "N" * 21 + "1")
    # The same file again: every line is a duplicate, nothing is applied.
    otra_vez = (
        await _importar(client, entidad, fichero_cobros(pagada["emisora"], detalles))
    ).json()
    assert otra_vez["aplicados"] == []
    assert len(otra_vez["duplicados"]) == len(detalles)


async def test_two_imports_of_one_file_at_once_apply_it_once(
    client: httpx.AsyncClient, entidad: Entidad
) -> None:
    datos = await liquidacion(client, entidad)
    texto = fichero_cobros(datos["emisora"], [_linea(datos, "C" * 22)])
    respuestas = await asyncio.gather(*(_importar(client, entidad, texto) for _ in range(4)))
    informes = [r.json() for r in respuestas]
    assert sum(len(i["aplicados"]) for i in informes) == 1
    assert sum(len(i["duplicados"]) for i in informes) == 3


async def test_a_second_nrc_for_a_paid_liquidacion_is_rejected(
    client: httpx.AsyncClient, entidad: Entidad
) -> None:
    datos = await liquidacion(client, entidad)
    texto = fichero_cobros(datos["emisora"], [_linea(datos, "D" * 22)])
    await _importar(client, entidad, texto)
    segundo = fichero_cobros(datos["emisora"], [_linea(datos, "E" * 22)])
    informe = (await _importar(client, entidad, segundo)).json()
    assert informe["rechazados"][0]["motivo"] == "la liquidación está pagada"


async def test_bad_files_are_refused_whole(client: httpx.AsyncClient, entidad: Entidad) -> None:
    datos = await liquidacion(client, entidad)
    sin_totales = fichero_cobros(datos["emisora"], [_linea(datos, "F" * 22)], total=1)
    respuesta = await _importar(client, entidad, sin_totales)
    assert respuesta.status_code == 422
    assert "importe total" in respuesta.json()["detail"]
    grande = await client.post(
        f"{BASE}/cobros",
        headers={**entidad.staff, **TEXTO},
        content=b"0" * (5 * 1024 * 1024 + 1),
    )
    assert grande.status_code == 413
    ciudadano = await client.post(
        f"{BASE}/cobros", headers={**entidad.ciudadano, **TEXTO}, content=b"x"
    )
    assert ciudadano.status_code == 403
    leida = (await client.get(f"{BASE}/liquidaciones/{datos['id']}", headers=entidad.staff)).json()
    assert leida["estado"] == "pendiente"


async def test_the_reconciliation_report(client: httpx.AsyncClient, entidad: Entidad) -> None:
    por_banco = await liquidacion(client, entidad, importe="159.00")
    pendiente = await liquidacion(client, entidad, importe="20.00")
    anulada = await liquidacion(client, entidad, importe="7.50")
    await client.post(
        f"{BASE}/liquidaciones/{anulada['id']}/anular",
        headers=entidad.staff,
        json={"motivo": "Error"},
    )
    ajena = {**por_banco, "referencia": "269999999999"}
    texto = fichero_cobros(
        por_banco["emisora"], [_linea(por_banco, "R" * 22), _linea(ajena, "S" * 22)]
    )
    await _importar(client, entidad, texto)
    # The report counts the council's local days: near midnight UTC, Madrid is a day on.
    hoy = datetime.now(ZoneInfo("Europe/Madrid")).date()
    # The bank file says it was collected on 2 December 2026.
    respuesta = await client.get(
        f"{BASE}/conciliacion",
        headers=entidad.staff,
        params={
            "desde": min(hoy, date(2026, 12, 2)).isoformat(),
            "hasta": max(hoy, date(2026, 12, 2)).isoformat(),
        },
    )
    assert respuesta.status_code == 200, respuesta.text
    informe = respuesta.json()
    assert informe["emitidas"] == {"numero": 3, "importe": "186.50"}
    assert informe["pendientes"] == {"numero": 1, "importe": "20.00"}
    assert informe["por_estado"]["anulada"] == {"numero": 1, "importe": "7.50"}
    assert informe["pagadas"]["por_canal"] == {"cuaderno60": {"numero": 1, "importe": "159.00"}}
    assert informe["pagadas"]["total"] == "159.00"
    assert [i["nrc"] for i in informe["incidencias_banco"]] == ["S" * 22]
    assert pendiente["id"]  # issued in the period, still pending
    al_reves = await client.get(
        f"{BASE}/conciliacion",
        headers=entidad.staff,
        params={"desde": "2026-12-02", "hasta": "2026-12-01"},
    )
    assert al_reves.status_code == 422
    assert (
        await client.get(
            f"{BASE}/conciliacion",
            headers=entidad.ciudadano,
            params={"desde": "2026-12-01", "hasta": "2026-12-02"},
        )
    ).status_code == 403
