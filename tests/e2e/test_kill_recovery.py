"""``kill -9`` of ``consistorio up`` in the middle of a stream of registrations loses nothing.

Registrations stream in, each with its own Idempotency-Key; the platform is killed
with SIGKILL while some are in flight and their events are on their way; it is
started again and every key is sent again. Within a minute of the restart every
entrada has exactly one asiento and one expediente, an issued justificante and a
register time-stamp. Once on the embedded defaults (embedded PostgreSQL, in-process
bus), where the killed ``up``'s PostgreSQL must not outlive the next ``up``, and
once on the real PostgreSQL and RabbitMQ.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.support import factories
from tests.support.process import RunningPlatform, postgres_on, start_platform

pytestmark = pytest.mark.e2e

REGISTRATIONS = 60
# The platform is killed once this many registrations were answered.
KILL_AFTER = 25
IN_FLIGHT = 6
# The issue asks for every entrada complete within a minute of the restart. Nothing
# waits on the reconciler's stall time: the killed process's events are published
# again by the relay (in-process bus) or delivered again by the broker, so the minute
# is spent on the backlog's own work (the test prints where it went). A lost event
# would only be picked up after RECONCILER_STALLED_AFTER_SECONDS (300), so missing
# this deadline tells "lost" from "slow".
RECOVERY_SECONDS = 60.0
TENANT = "03014"


def _register(platform: RunningPlatform, token: str, key: str, body: dict[str, Any]) -> dict | None:
    """POSTs one asiento with its key; None when the platform did not answer."""
    try:
        response = httpx.post(
            f"{platform.base_url}/api/v1/registro/asientos",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
            timeout=30,
        )
    except httpx.HTTPError:
        return None
    if response.status_code >= 500:
        return None
    assert response.status_code in (200, 201), response.text
    answer: dict = response.json()
    return answer


def _stream_and_kill(platform: RunningPlatform, bodies: dict[str, dict]) -> dict[str, dict]:
    """Sends every registration, ``IN_FLIGHT`` at a time; SIGKILLs the platform mid-stream."""
    token = platform.token(TENANT, "registro,tramitador")
    answered: dict[str, dict] = {}
    lock = threading.Lock()

    def one(key: str) -> None:
        if platform.process.poll() is not None:
            return
        asiento = _register(platform, token, key, bodies[key])
        with lock:
            if asiento is not None:
                answered[key] = asiento
            if len(answered) == KILL_AFTER and platform.process.poll() is None:
                platform.process.send_signal(signal.SIGKILL)

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        list(pool.map(one, bodies))
    platform.process.wait(timeout=30)
    assert platform.process.returncode == -signal.SIGKILL
    return answered


def _complete(client: httpx.Client, asiento_id: str) -> bool:
    """One expediente, an issued justificante and a time-stamp: everything an entrada gets.

    The justificante, the longest chain, is asked first, so that polling an entrada
    still on its way costs one request.
    """
    justificante = client.get(
        f"/api/v1/registro/asientos/{asiento_id}/justificante", follow_redirects=False
    )
    if justificante.status_code != 303:
        assert justificante.status_code == 202, justificante.text
        return False
    sello = client.get(f"/api/v1/registro/asientos/{asiento_id}/sello-tiempo")
    if sello.status_code != 200:
        assert sello.status_code == 202, sello.text
        return False
    assert sello.json()["estado"] == "sellado", sello.text
    expedientes = client.get("/api/v1/tramitador/expedientes", params={"asiento_id": asiento_id})
    assert expedientes.status_code == 200, expedientes.text
    items = expedientes.json()["items"]
    assert len(items) <= 1, f"asiento {asiento_id} opened {len(items)} expedientes"
    return len(items) == 1


def _cpu_seconds(process: psutil.Process) -> float:
    """CPU time (user + system) of ``process`` and its living children: ``up``, its
    document workers and, on the embedded defaults, its PostgreSQL."""
    total = 0.0
    for one in [process, *process.children(recursive=True)]:
        try:
            times = one.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def kill_and_recover(start: Any) -> tuple[RunningPlatform, float]:
    """Streams, kills, restarts, retries every key; answers the restarted platform and how
    many seconds after the restart the last entrada was complete."""
    bodies = {
        str(uuid.uuid4()): factories.asiento(resumen=f"Solicitud {n} de la ráfaga")
        for n in range(REGISTRATIONS)
    }
    first: RunningPlatform = start()
    before_kill = _stream_and_kill(first, bodies)
    assert len(before_kill) >= KILL_AFTER

    killed = time.monotonic()
    again: RunningPlatform = start()
    restarted = time.monotonic()
    started_in = restarted - killed
    platform_process = psutil.Process(again.process.pid)
    cpu_at_restart = _cpu_seconds(platform_process)
    token = again.token(TENANT, "registro,tramitador")
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        answers = list(pool.map(lambda key: _register(again, token, key, bodies[key]), bodies))
    assert all(answers), again.log()[-4000:]
    after = {key: answer for key, answer in zip(bodies, answers, strict=True) if answer}
    # The same key is the same asiento: nothing registered twice, nothing lost.
    for key, asiento in before_kill.items():
        assert after[key]["id"] == asiento["id"]
    ids = {asiento["id"] for asiento in after.values()}
    numeros = {asiento["numero"] for asiento in after.values()}
    assert len(ids) == len(numeros) == REGISTRATIONS

    retried = time.monotonic() - restarted
    # In the order they were numbered, which is about the order their work is done in:
    # a round stops at the first one still on its way, so polling sixty entradas does
    # not take from the platform the CPU its recovery needs.
    pending = [a["id"] for a in sorted(after.values(), key=lambda asiento: asiento["numero"])]
    recovered = 0.0
    # (seconds after the restart, entradas not yet seen complete): where the minute goes.
    timeline: list[tuple[float, int]] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=again.base_url, headers=headers, timeout=30) as client:
        while pending and time.monotonic() - restarted < RECOVERY_SECONDS:
            while pending and _complete(client, pending[0]):
                pending.pop(0)
                recovered = time.monotonic() - restarted
            timeline.append((time.monotonic() - restarted, len(pending)))
            if pending:
                time.sleep(1)
    assert not pending, (
        f"{len(pending)} of {REGISTRATIONS} entradas incomplete {RECOVERY_SECONDS:.0f} s "
        f"after the restart (still incomplete over time: {timeline}):\n{again.log()[-6000:]}"
    )
    # CPU seconds the platform spent per second of recovery (2 means both cores busy):
    # tells work to do from time spent waiting (back-off, leases, polls).
    busy = (_cpu_seconds(platform_process) - cpu_at_restart) / max(recovered, 0.1)
    print(
        f"{len(before_kill)} answered before the kill; ready again {started_in:.1f} s after "
        f"the kill; every key retried {retried:.1f} s and every entrada complete "
        f"{recovered:.1f} s after the restart, the platform busy {busy:.2f} CPU-s/s "
        f"(load average {psutil.getloadavg()[0]:.1f}); incomplete over time: "
        + ", ".join(f"{at:.0f}s:{left}" for at, left in timeline)
    )
    return again, recovered


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


def test_kill_9_on_the_embedded_defaults_loses_nothing_and_leaves_no_postgres(
    embedded_dir: Path, platform_factory
) -> None:
    pgdata = embedded_dir / "postgres"
    pids: list[int] = []

    def start() -> RunningPlatform:
        running = start_platform(embedded_dir, {})
        platform_factory.append(running)
        pids.append(_postmaster_pid(pgdata))
        return running

    again, _ = kill_and_recover(start)
    first_postgres, second_postgres = pids
    assert again.stop() == 0, again.log()[-4000:]
    # The killed up's server was not left to the next one, and the next one stopped its own.
    for pid in (first_postgres, second_postgres):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert postgres_on(pgdata) == []
    assert not (pgdata / "postmaster.pid").exists()


def test_kill_9_on_postgresql_and_rabbitmq_loses_nothing(
    tmp_path: Path, platform_factory, real_servers_env
) -> None:
    def start() -> RunningPlatform:
        running = start_platform(tmp_path / "var", real_servers_env)
        platform_factory.append(running)
        return running

    again, _ = kill_and_recover(start)
    assert again.stop() == 0, again.log()[-4000:]
