"""The operator commands, run as real subprocesses against the real servers:
migrate, tenants add|list, token, dlq list|replay, and serve (one service alone)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid

import httpx
import jwt
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.bus.envelope import EventName, build_envelope
from services.common.db import asyncpg_url
from services.registro.models import kernel as registro_tables
from tests.support.broker import delete_run
from tests.support.process import CONSISTORIO, free_port
from tests.support.servers import AMQP_URL, require_server

pytestmark = pytest.mark.e2e


def run(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [CONSISTORIO, *args], env=env, capture_output=True, text=True, timeout=120
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AMQP_URL")}
    env.update({"DATABASE_URL": database_url, "LOG_JSON": "false", **extra})
    return env


async def test_migrate_and_manage_tenants(fresh_database: str, tmp_path) -> None:
    env = cli_env(fresh_database)
    assert "migraciones aplicadas" in run("migrate", env=env).stdout
    run("migrate", env=env)  # a second run is a no-op, not an error
    added = run("tenants", "add", "03065", "Ayuntamiento de Elche", "--dir3", "L01030659", env=env)
    assert "03065" in added.stdout
    run(
        "tenants",
        "add",
        "03066",
        "Ayuntamiento de Elda",
        "--dir3",
        "L01030664",
        "--inactive",
        env=env,
    )
    listed = run("tenants", "list", env=env).stdout.splitlines()
    assert listed == [
        "03065\tL01030659\tactiva\tAyuntamiento de Elche",
        "03066\tL01030664\tde baja\tAyuntamiento de Elda",
    ]
    bad = run("tenants", "add", "3065", "Sin código", "--dir3", "L01030659", env=env, check=False)
    assert bad.returncode != 0
    assert "INE" in bad.stdout + bad.stderr

    token = run(
        "token",
        "--tenant",
        "03065",
        "--sub",
        "ana",
        "--roles",
        "registro,tramitador",
        "--data-dir",
        str(tmp_path),
        env=env,
    ).stdout.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["tenant"], claims["sub"], claims["roles"]) == (
        "03065",
        "ana",
        ["registro", "tramitador"],
    )
    assert jwt.get_unverified_header(token)["alg"] == "ES256"


async def test_dlq_list_and_replay(fresh_database: str) -> None:
    env = cli_env(fresh_database)
    run("migrate", env=env)
    assert "no hay mensajes muertos" in run("dlq", "list", env=env).stdout
    envelope = build_envelope(
        EventName.parse("registro.asiento.registrado.v1"),
        tenant="03014",
        data={"numero": "E/2026/000001"},
        dataschema="https://consistorio.es/bus-contracts/registro/asiento-registrado/v1.json",
    )
    engine = create_async_engine(asyncpg_url(fresh_database))
    async with engine.begin() as conn:
        row = await conn.execute(
            insert(registro_tables.dead_letters)
            .values(
                consumer="registro.prueba",
                queue="registro.prueba",
                routing_key="03014.registro.asiento.registrado.v1",
                message_id=envelope["id"],
                tenant_id="03014",
                event_type="registro.asiento.registrado.v1",
                body=json.dumps(envelope).encode(),
                headers={},
                reason="error tras 5 intentos: RuntimeError('caído')",
                attempts=5,
            )
            .returning(registro_tables.dead_letters.c.id)
        )
        ref = f"registro:{row.scalar_one()}"
    listed = json.loads(run("dlq", "list", "--json", env=env).stdout)
    assert [(d["ref"], d["reason"], d["replayed_at"]) for d in listed] == [
        (ref, "error tras 5 intentos: RuntimeError('caído')", None)
    ]
    assert f"{ref} reenviado" in run("dlq", "replay", ref, env=env).stdout
    async with engine.connect() as conn:
        queued = (
            await conn.execute(
                select(
                    registro_tables.outbox.c.routing_key, registro_tables.outbox.c.sent_at
                ).where(registro_tables.outbox.c.event_id == envelope["id"])
            )
        ).one()
    await engine.dispose()
    assert queued.routing_key == "03014.registro.asiento.registrado.v1"
    assert queued.sent_at is None
    assert "reenviado" in run("dlq", "list", env=env).stdout
    missing = run("dlq", "replay", "registro:999999", env=env, check=False)
    assert missing.returncode == 1
    assert "no existe" in missing.stderr


async def test_serve_runs_one_service_alone(fresh_database: str, tmp_path) -> None:
    require_server("RabbitMQ", "127.0.0.1", 5672)
    run_id = uuid.uuid4().hex[:8]
    env = cli_env(
        fresh_database,
        AMQP_URL=AMQP_URL,
        BUS_EXCHANGE=f"consistorio.cli.{run_id}",
        BUS_QUEUE_PREFIX=f"cli.{run_id}.",
        DATA_DIR=str(tmp_path),
    )
    run("migrate", env=env)
    port = free_port()
    process = subprocess.Popen(
        [CONSISTORIO, "serve", "registro", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and ready is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if response.status_code == 200:
                    ready = response.json()
            except httpx.HTTPError:
                time.sleep(0.3)
        assert ready == {
            "status": "ready",
            "service": "registro",
            "checks": {"database": True, "bus": True},
        }
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/registro/asientos").status_code == 401
        assert (
            httpx.get(f"http://127.0.0.1:{port}/api/v1/tramitador/expedientes").status_code == 404
        )
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
        await delete_run(
            AMQP_URL, queue_prefix=f"cli.{run_id}.", exchange=f"consistorio.cli.{run_id}"
        )
    assert process.returncode == 0, output
