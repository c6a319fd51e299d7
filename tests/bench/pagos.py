"""Benchmark: liquidaciones issued and Redsys notifications verified per second through the
gateway, beside raw HMAC-SHA256 (and the full Redsys signature) in the same run.

Run with ``make bench``. Needs the real PostgreSQL and RabbitMQ. It starts the
platform as ``consistorio up`` does, configures the demo council's emisora and
Redsys merchant, then: concurrent staff clients issue liquidaciones for a while;
card attempts are opened for some of them (not timed); and the notifications of
those attempts, signed as Redsys signs them, are posted to the public
notification path as fast as the clients can. The baselines are computed in this
process on the same machine: HMAC-SHA256 of a notification's parameters alone,
and the whole per-order signature (3DES key derivation and HMAC) it needs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from services.pagos import redsys
from services.pagos.simulador import notificacion_firmada
from tests.bench.common import UNLIMITED, PlatformRun, machine
from tests.support.process import start_platform

CLAVE = "sq7HjrUOBfKmC576ILgskD5srU870gJ7"
TENANT = "03014"


def _liquidacion() -> dict[str, Any]:
    return {
        "concepto": "Tasa por expedición de documentos",
        "importe": "12.35",
        "obligado": {"tipo_identificador": "NIF", "identificador": "12345678Z", "nombre": "Ana"},
    }


async def _durante(
    client: httpx.AsyncClient, clients: int, seconds: float, paso: Any
) -> tuple[int, int]:
    """Runs ``paso`` from ``clients`` workers for ``seconds``; (successes, errors)."""
    ok = errors = 0
    stop_at = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal ok, errors
        while time.monotonic() < stop_at:
            if await paso(client):
                ok += 1
            else:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(clients)))
    return ok, errors


async def emitir(base_url: str, token: str, clients: int, seconds: float) -> tuple[list[str], int]:
    """Staff issue liquidaciones for ``seconds``; the ids issued and the errors."""
    ids: list[str] = []

    async def paso(client: httpx.AsyncClient) -> bool:
        r = await client.post("/api/v1/pagos/liquidaciones", json=_liquidacion())
        if r.status_code == 201:
            ids.append(r.json()["id"])
            return True
        return False

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=30, headers=headers
    ) as client:
        _, errors = await _durante(client, clients, seconds, paso)
    return ids, errors


async def abrir_intentos(
    base_url: str, token: str, ids: list[str], clients: int
) -> list[dict[str, Any]]:
    """One card attempt per liquidación (setup, not timed): the signed Redsys requests."""
    peticiones: list[dict[str, Any]] = []
    cola = list(ids)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=headers) as client:

        async def worker() -> None:
            while cola:
                liquidacion_id = cola.pop()
                r = await client.post(f"/api/v1/pagos/liquidaciones/{liquidacion_id}/pago-tarjeta")
                r.raise_for_status()
                peticiones.append(json.loads(base64.b64decode(r.json()["Ds_MerchantParameters"])))

        await asyncio.gather(*(worker() for _ in range(clients)))
    return peticiones


async def notificar(
    base_url: str, notificaciones: list[dict[str, str]], clients: int
) -> tuple[float, int]:
    """Posts every notification to the public path; (seconds taken, non-200 answers)."""
    cola = list(notificaciones)
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            while cola:
                r = await client.post("/pagos/redsys/notificacion", data=cola.pop())
                if r.status_code != 200 or r.json()["resultado"] != "aplicada":
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return time.perf_counter() - t0, errors


def raw_rates(muestra: dict[str, str], seconds: float) -> tuple[float, float]:
    """HMAC-SHA256 alone, and the whole Redsys signature, per second in this process."""
    parametros = muestra["Ds_MerchantParameters"].encode()
    orden = json.loads(base64.b64decode(parametros))["Ds_Order"]
    clave = base64.b64decode(CLAVE)

    def rate(fn: Any) -> float:
        n = 0
        stop_at = time.perf_counter() + seconds
        t0 = time.perf_counter()
        while time.perf_counter() < stop_at:
            for _ in range(200):
                fn()
            n += 200
        return n / (time.perf_counter() - t0)

    solo_hmac = rate(lambda: hmac.new(clave, parametros, hashlib.sha256).digest())
    firma = rate(lambda: redsys.firmar(CLAVE, orden, muestra["Ds_MerchantParameters"]))
    return solo_hmac, firma


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--notificaciones", type=int, default=1000)
    args = parser.parse_args()

    bench = await PlatformRun.create()
    env = bench.env(
        RATE_LIMIT_ANONYMOUS_PER_MINUTE=UNLIMITED, RATE_LIMIT_REDSYS_PER_MINUTE=UNLIMITED
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            running = start_platform(Path(tmp) / "var", env)
            try:
                staff = running.token(TENANT, "pagos")
                admin_token = running.token(TENANT, "admin")
                r = httpx.put(
                    f"{running.base_url}/api/v1/pagos/configuracion",
                    headers={"Authorization": f"Bearer {admin_token}"},
                    json={
                        "redsys": {
                            "comercio": "999008881",
                            "terminal": "1",
                            "clave": CLAVE,
                            "url": "https://sis-t.redsys.es:25443/sis/realizarPago",
                        },
                        "cuaderno60": {"emisora": "030140"},
                    },
                )
                r.raise_for_status()
                print(f"platform up at {running.base_url}; warming up", file=sys.stderr)
                await emitir(running.base_url, staff, args.clients, 2)
                print(f"issuing liquidaciones for {args.seconds:.0f} s", file=sys.stderr)
                ids, errores_emision = await emitir(
                    running.base_url, staff, args.clients, args.seconds
                )
                emitidas = len(ids) / args.seconds
                n = min(args.notificaciones, len(ids))
                print(f"opening {n} card attempts (not timed)", file=sys.stderr)
                peticiones = await abrir_intentos(running.base_url, staff, ids[:n], args.clients)
                notificaciones = [notificacion_firmada(CLAVE, p, "0000") for p in peticiones]
                print(f"posting {n} notifications", file=sys.stderr)
                tardado, errores_notif = await notificar(
                    running.base_url, notificaciones, args.clients
                )
                verificadas = n / tardado
            finally:
                running.stop()
        solo_hmac, firma = raw_rates(notificaciones[0], min(args.seconds, 5))
    finally:
        await bench.close()

    print(
        f"\nMachine: {machine()}; "
        f"{args.clients} clients; errors: {errores_emision} issuing, {errores_notif} notifying\n"
    )
    print("| what | per second | ÷ raw HMAC-SHA256 |")
    print("|---|---:|---:|")
    for label, rate in (
        (f"liquidaciones issued through the gateway ({args.clients} clients)", emitidas),
        (f"Redsys notifications verified and applied ({n}, public path)", verificadas),
        ("Redsys signature in-process (3DES per-order key + HMAC-SHA256)", firma),
        ("raw HMAC-SHA256 of Ds_MerchantParameters in-process", solo_hmac),
    ):
        print(f"| {label} | {rate:,.0f} | {rate / solo_hmac:.5f} |")


if __name__ == "__main__":
    asyncio.run(main())
