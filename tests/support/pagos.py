"""Helpers of the pagos tests: a configured tenant with its tokens, and a liquidación."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.platforms import bearer

__all__ = [
    "CLAVE_PRUEBAS",
    "Entidad",
    "configurar",
    "fichero_cobros",
    "linea_cobro",
    "liquidacion",
]

# Redsys' public test key (its test environment's published merchant 999008881).
CLAVE_PRUEBAS = "sq7HjrUOBfKmC576ILgskD5srU870gJ7"


@dataclass
class Entidad:
    """A configured tenant and tokens of its staff, admin and one citizen."""

    tenant: str
    staff: dict[str, str]
    admin: dict[str, str]
    ciudadano: dict[str, str]
    nif: str


async def configurar(
    client: httpx.AsyncClient,
    new_tenant: Callable[..., Any],
    token: Callable[..., str],
    *,
    redsys_url: str = "https://sis-t.redsys.es:25443/sis/realizarPago",
    nif: str = "12345678Z",
) -> Entidad:
    """A fresh tenant with emisora and Redsys configured."""
    tenant = await new_tenant()
    admin = bearer(token(tenant, "admin", sub="admin"))
    respuesta = await client.put(
        "/api/v1/pagos/configuracion",
        headers=admin,
        json={
            "redsys": {
                "comercio": "999008881",
                "terminal": "1",
                "clave": CLAVE_PRUEBAS,
                "url": redsys_url,
            },
            "cuaderno60": {"emisora": "030140"},
        },
    )
    assert respuesta.status_code == 200, respuesta.text
    return Entidad(
        tenant=tenant,
        staff=bearer(token(tenant, "pagos", sub="tesoreria")),
        admin=admin,
        ciudadano=bearer(token(tenant, "ciudadano", sub="maria", nif=nif)),
        nif=nif,
    )


async def liquidacion(
    client: httpx.AsyncClient, entidad: Entidad, *, importe: str = "159.00", **extra: Any
) -> dict[str, Any]:
    """Issues a liquidación in the entity's citizen's name and returns its view."""
    respuesta = await client.post(
        "/api/v1/pagos/liquidaciones",
        headers=entidad.staff,
        json={
            "concepto": "Tasa por licencia de obra menor",
            "importe": importe,
            "obligado": {
                "tipo_identificador": "NIF",
                "identificador": entidad.nif,
                "nombre": "María García",
            },
            **extra,
        },
    )
    assert respuesta.status_code == 201, respuesta.text
    datos: dict[str, Any] = respuesta.json()
    return datos


def linea_cobro(
    *,
    emisora: str,
    referencia: str,
    identificacion: str,
    importe: int,
    nrc: str,
    fecha: str = "20261202",
    entidad: str = "2100",
    oficina: str = "0001",
) -> str:
    """A detail record (02) of a Cuaderno 60 cobros file, 120 characters."""
    return (
        f"02{emisora}{entidad}{oficina}{fecha}{referencia}{identificacion}{importe:010d}{nrc}"
    ).ljust(120)


def fichero_cobros(emisora: str, detalles: list[str], *, total: int | None = None) -> str:
    """A whole cobros file: header, the detail records, and totals (computed unless given)."""
    suma = sum(int(d[46:56]) for d in detalles) if total is None else total
    cabecera = f"01{emisora}20261202".ljust(120)
    totales = f"03{emisora}{len(detalles):08d}{suma:014d}".ljust(120)
    return "\r\n".join([cabecera, *detalles, totales]) + "\r\n"
