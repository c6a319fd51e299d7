"""SIGTERM while busy: ``consistorio up`` and ``consistorio serve registro`` exit 0 within
their grace period, answer nothing but 201 or 503 meanwhile, leave no embedded PostgreSQL
running, and lose nothing they accepted: after a restart every key sent again is the
same asiento, and (on ``up``) every entrada still gets its expediente and justificante.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.db import asyncpg_url
from tests.e2e.test_cli import cli_env, run
from tests.e2e.test_kill_recovery import RECOVERY_SECONDS, _complete
from tests.support import factories
from tests.support.broker import delete_run
from tests.support.process import (
    CONSISTORIO,
    RunningPlatform,
    free_port,
    postgres_on,
    start_platform,
)
from tests.support.servers import AMQP_URL, require_server

pytestmark = pytest.mark.e2e

GRACE_SECONDS = 10
# Past the grace: the fast stop of the embedded PostgreSQL and the interpreter's exit.
EXIT_MARGIN_SECONDS = 3
REGISTRATIONS = 60
TERM_AFTER = 20
IN_FLIGHT = 16
TENANT = "03014"


@dataclass
class Stream:
    """What the clients saw: every status answered, and the asientos created."""

    statuses: list[int] = field(default_factory=list)
    created: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _post(base_url: str, token: str, key: str, body: dict[str, Any]) -> httpx.Response | None:
    try:
        return httpx.post(
            f"{base_url}/api/v1/registro/asientos",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
            timeout=60,
        )
    except httpx.HTTPError:
        return None  # the listener closed: the request never reached a handler


def _stream_and_term(
    process: subprocess.Popen[str], base_url: str, token: str, bodies: dict[str, dict[str, Any]]
) -> tuple[Stream, float]:
    """Streams every registration, ``IN_FLIGHT`` at a time; SIGTERM once enough answered.
    Answers what the clients saw and how long the process took to exit."""
    stream = Stream()
    termed: list[float] = []
    exited: list[float] = []

    def watch() -> None:
        process.wait()
        exited.append(time.monotonic())

    def one(key: str) -> None:
        if process.poll() is not None:
            return
        answer = _post(base_url, token, key, bodies[key])
        with stream.lock:
            if answer is None:
                return
            stream.statuses.append(answer.status_code)
            if answer.status_code == 201:
                stream.created[key] = answer.json()
            elif answer.status_code == 503:
                assert int(answer.headers["retry-after"]) >= 1
            if len(stream.created) == TERM_AFTER and not termed:
                termed.append(time.monotonic())
                process.send_signal(signal.SIGTERM)
                threading.Thread(target=watch, daemon=True).start()

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        list(pool.map(one, bodies))
    process.wait(timeout=GRACE_SECONDS * 4)
    assert termed, "the stream ended before the signal"
    while not exited:
        time.sleep(0.05)  # the watcher records the exit right after wait() returns
    return stream, exited[0] - termed[0]


def _retry_all(base_url: str, token: str, bodies: dict[str, dict[str, Any]]) -> dict[str, dict]:
    """Sends every key again until each is a 201, honouring Retry-After."""
    done: dict[str, dict] = {}
    deadline = time.monotonic() + 120
    while len(done) < len(bodies) and time.monotonic() < deadline:
        waits = []
        for key, body in bodies.items():
            if key in done:
                continue
            answer = _post(base_url, token, key, body)
            assert answer is not None
            assert answer.status_code in (201, 503), answer.text
            if answer.status_code == 201:
                done[key] = answer.json()
            else:
                waits.append(int(answer.headers["retry-after"]))
        if waits:
            time.sleep(min(waits))
    assert len(done) == len(bodies)
    return done


def _shutdown_lines(log: str) -> str:
    """The lines that tell how a stop went (the rest is the requests' own chatter)."""
    words = ("consistorio.runner", "consistorio.overload", "embedded", "ERROR", "Traceback")
    return "\n".join(line for line in log.splitlines() if any(w in line for w in words))


def _assert_nothing_accepted_lost(stream: Stream, again: dict[str, dict]) -> None:
    assert set(stream.statuses) <= {201, 503}, sorted(set(stream.statuses))
    for key, asiento in stream.created.items():
        assert again[key]["id"] == asiento["id"]
        assert again[key]["numero"] == asiento["numero"]
    assert len({a["id"] for a in again.values()}) == len({a["numero"] for a in again.values()})


@pytest.fixture
def bodies() -> dict[str, dict[str, Any]]:
    return {
        str(uuid.uuid4()): factories.asiento(resumen=f"Solicitud {n} antes del cierre")
        for n in range(REGISTRATIONS)
    }


@pytest.fixture
def platforms() -> Iterator[list[RunningPlatform]]:
    started: list[RunningPlatform] = []
    yield started
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(timeout=30)


def test_sigterm_to_up_while_busy_exits_0_in_its_grace_and_loses_nothing(
    embedded_dir: Path, platforms: list[RunningPlatform], bodies: dict[str, dict[str, Any]]
) -> None:
    env = {"SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS)}
    first = start_platform(embedded_dir, env)
    platforms.append(first)
    token = first.token(TENANT, "registro,tramitador")
    stream, took = _stream_and_term(first.process, first.base_url, token, bodies)
    print(f"up: {len(stream.created)} created, exit {took:.1f} s after SIGTERM")
    assert first.process.returncode == 0, _shutdown_lines(first.log())
    assert took <= GRACE_SECONDS + EXIT_MARGIN_SECONDS, _shutdown_lines(first.log())
    assert postgres_on(embedded_dir / "postgres") == []

    again = start_platform(embedded_dir, env)
    platforms.append(again)
    token = again.token(TENANT, "registro,tramitador")
    answers = _retry_all(again.base_url, token, bodies)
    _assert_nothing_accepted_lost(stream, answers)
    pending = {answer["id"] for answer in answers.values()}
    started = time.monotonic()
    with httpx.Client(
        base_url=again.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        while pending and time.monotonic() - started < RECOVERY_SECONDS:
            pending = {i for i in pending if not _complete(client, i)}
            if pending:
                time.sleep(2)
    assert not pending, f"{len(pending)} entradas incomplete:\n{again.log()[-6000:]}"
    assert again.stop() == 0


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [CONSISTORIO, "serve", "registro", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "serve exited before it was ready"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise AssertionError("serve registro did not become ready")


async def test_sigterm_to_serve_registro_while_busy_exits_0_in_its_grace_and_loses_nothing(
    fresh_database: str,
    tmp_path: Path,
    bodies: dict[str, dict[str, Any]],
) -> None:
    require_server("RabbitMQ", "127.0.0.1", 5672)
    run_id = uuid.uuid4().hex[:8]
    env = cli_env(
        fresh_database,
        AMQP_URL=AMQP_URL,
        BUS_EXCHANGE=f"consistorio.term.{run_id}",
        BUS_QUEUE_PREFIX=f"term.{run_id}.",
        DATA_DIR=str(tmp_path),
        SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS),
    )
    run("migrate", env=env)
    run("tenants", "add", TENANT, "Ayuntamiento de Alicante", "--dir3", "L01030149", env=env)
    token = run(
        "token", "--tenant", TENANT, "--sub", "ana", "--roles", "registro", env=env
    ).stdout.strip()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    first = _serve(env, port, log)
    try:
        stream, took = _stream_and_term(first, base_url, token, bodies)
        print(f"serve: {len(stream.created)} created, exit {took:.1f} s after SIGTERM")
        assert first.returncode == 0, _shutdown_lines(log.read_text())
        assert took <= GRACE_SECONDS + EXIT_MARGIN_SECONDS, _shutdown_lines(log.read_text())

        again = _serve(env, port, log)
        try:
            answers = _retry_all(base_url, token, bodies)
        finally:
            again.send_signal(signal.SIGTERM)
            assert again.wait(timeout=GRACE_SECONDS + EXIT_MARGIN_SECONDS) == 0
        _assert_nothing_accepted_lost(stream, answers)
        # Every asiento's event is in the outbox (sent or still to send): none was lost.
        engine = create_async_engine(asyncpg_url(fresh_database))
        async with engine.connect() as conn:
            asientos = (await conn.execute(text("SELECT count(*) FROM registro.asientos"))).scalar()
            events = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM registro.outbox "
                        "WHERE routing_key LIKE '%.registro.asiento.registrado.v1'"
                    )
                )
            ).scalar()
        await engine.dispose()
        assert asientos == events == REGISTRATIONS
    finally:
        if first.poll() is None:
            first.kill()
        await delete_run(
            AMQP_URL, queue_prefix=f"term.{run_id}.", exchange=f"consistorio.term.{run_id}"
        )
