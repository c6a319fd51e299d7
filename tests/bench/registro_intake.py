"""Benchmark: registration intake through the gateway, and the gateway's CPU a request.

Run with ``make bench`` (or ``python -m tests.bench.registro_intake``). Needs the real
PostgreSQL and RabbitMQ. It starts ``consistorio up`` on a fresh database with the bus
consumers left out (``tests/bench/intake_platform.py``: the document work paused, the
relays still publishing every event to RabbitMQ), then drives it with concurrent
clients:

1. through the gateway (``/api/v1/registro/asientos``), as a council's clients would;
2. straight to the registro's own loopback socket (found among the process's listening
   sockets), the same requests with no gateway in front.

It reads the platform process's CPU time (user + system) around each phase: CPU ms a
request through the gateway minus CPU ms a request straight to the registro is the
gateway's cost a request. Then, on the same PostgreSQL, the baseline: a loop of
gapless-numbered INSERTs (counter upsert + row + commit) with nothing else. Figures are
printed as a Markdown table with ratios to that baseline.

``--src DIR`` runs the platform from another checkout of the code (the harness stays
this one), to measure before and after a change in the same conditions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import psutil

from tests.bench.common import PlatformRun, machine
from tests.bench.registro import plain_inserts
from tests.support import factories
from tests.support.process import free_port

_LAUNCHER = Path(__file__).with_name("intake_platform.py")


@dataclass
class Phase:
    """One load phase: how many requests were answered 201, how fast, at what CPU."""

    label: str
    ok: int
    errors: int
    seconds: float
    cpu_seconds: float
    latencies: list[float]
    # CPU seconds of each process measured, by name (the total is cpu_seconds).
    cpu_by: dict[str, float]

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu_seconds * 1000 / max(1, self.ok + self.errors)

    def cpu_ms_of(self, name: str) -> float:
        return self.cpu_by[name] * 1000 / max(1, self.ok + self.errors)

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies) or [0.0]
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _start(
    src: Path, data_dir: Path, env: dict[str, str], *command: str
) -> tuple[subprocess.Popen[str], int]:
    """Runs the launcher with ``command`` (``up`` or ``serve <name>``) until /readyz is 200."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AMQP_URL")}
    full_env.update({"LOG_JSON": "false", "PYTHONPATH": str(src), **env})
    log = (data_dir.parent / f"{command[-1]}.log").open("w")
    where = ["--data-dir", str(data_dir)] if command == ("up",) else ["--host", "127.0.0.1"]
    process = subprocess.Popen(
        [sys.executable, str(_LAUNCHER), *command, "--port", str(port), *where],
        env={**full_env, "DATA_DIR": str(data_dir)},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=src,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((data_dir.parent / f"{command[-1]}.log").read_text())
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process, port
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"{' '.join(command)} did not become ready")


def _registro_port(pid: int, gateway_port: int) -> int:
    """The registro's loopback socket among the platform process's listening ones."""
    ports = {
        c.laddr.port
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port != gateway_port
    }
    for port in sorted(ports):
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            continue
        if health.get("service") == "registro":
            return port
    raise RuntimeError(f"no registro socket among {sorted(ports)}")


def _token(src: Path, data_dir: Path, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, str(_LAUNCHER), "token", "--tenant", "03014", "--sub", "ana"]
        + ["--roles", "registro", "--data-dir", str(data_dir)],
        env={**os.environ, "PYTHONPATH": str(src), **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=src,
    )
    return out.stdout.strip()


async def _load(
    label: str, url: str, token: str, clients: int, seconds: float, pids: dict[str, int]
) -> Phase:
    """``clients`` concurrent keep-alive connections POSTing asientos for ``seconds``."""
    bodies = [json.dumps(factories.asiento()).encode() for _ in range(256)]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    errors = 0
    processes = {name: psutil.Process(pid) for name, pid in pids.items()}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker(i: int, stop_at: float, record: bool) -> None:
            nonlocal errors
            n = i
            while time.monotonic() < stop_at:
                n += clients
                t0 = time.perf_counter()
                async with session.post(url, data=bodies[n % len(bodies)]) as response:
                    await response.read()
                    if not record:
                        continue
                    if response.status == 201:
                        latencies.append(time.perf_counter() - t0)
                    else:
                        errors += 1

        warm_until = time.monotonic() + 2
        await asyncio.gather(*(worker(i, warm_until, False) for i in range(clients)))
        cpu = {name: p.cpu_times() for name, p in processes.items()}
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(*(worker(i, stop_at, True) for i in range(clients)))
        elapsed = time.monotonic() - started
        after = {name: p.cpu_times() for name, p in processes.items()}
    cpu_by = {
        name: (after[name].user - cpu[name].user) + (after[name].system - cpu[name].system)
        for name in processes
    }
    print(f"  {label}: {len(latencies) / elapsed:.0f}/s, errors {errors}", file=sys.stderr)
    return Phase(label, len(latencies), errors, elapsed, sum(cpu_by.values()), latencies, cpu_by)


async def _separate_processes(
    src: Path, data_dir: Path, env: dict[str, str], clients: int, seconds: float
) -> tuple[Phase, Phase]:
    """The same load on ``serve registro`` behind ``serve gateway``, as Kubernetes runs
    them: the gateway's own process shows its CPU a request."""
    registro, registro_port = _start(src, data_dir, env, "serve", "registro")
    gateway = None
    try:
        urls = json.dumps({"registro": f"http://127.0.0.1:{registro_port}"})
        gateway, gateway_port = _start(
            src, data_dir, {**env, "SERVICE_URLS": urls}, "serve", "gateway"
        )
        token = _token(src, data_dir, env)
        path = "/api/v1/registro/asientos"
        pids = {"gateway": gateway.pid, "registro": registro.pid}
        through = await _load(
            "serve gateway → serve registro",
            f"http://127.0.0.1:{gateway_port}{path}",
            token,
            clients,
            seconds,
            pids,
        )
        alone = await _load(
            "serve registro alone",
            f"http://127.0.0.1:{registro_port}{path}",
            token,
            clients,
            seconds,
            pids,
        )
        return through, alone
    finally:
        for process in (gateway, registro):
            if process is not None:
                process.terminate()
                process.wait(timeout=60)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--src", type=Path, default=Path.cwd(), help="code to run the platform")
    args = parser.parse_args()
    src = args.src.resolve()

    bench = await PlatformRun.create()
    db_url = bench.db_url
    env = bench.env(OUTBOX_POLL_SECONDS="0.5")
    phases: list[Phase] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp) / "var"
            process, port = _start(src, data_dir, env, "up")
            try:
                token = _token(src, data_dir, env)
                registro = _registro_port(process.pid, port)
                path = "/api/v1/registro/asientos"
                phases.append(
                    await _load(
                        f"gateway → registro ({args.clients} clients)",
                        f"http://127.0.0.1:{port}{path}",
                        token,
                        args.clients,
                        args.seconds,
                        {"up": process.pid},
                    )
                )
                phases.append(
                    await _load(
                        f"registro's own socket, no gateway ({args.clients} clients)",
                        f"http://127.0.0.1:{registro}{path}",
                        token,
                        args.clients,
                        args.seconds,
                        {"up": process.pid},
                    )
                )
            finally:
                process.terminate()
                stop_started = time.monotonic()
                code = process.wait(timeout=60)
                stopped_in = time.monotonic() - stop_started
            separate = await _separate_processes(src, data_dir, env, args.clients, args.seconds)
        plain = await plain_inserts(db_url, 1, args.seconds)
    finally:
        await bench.close()

    baseline = len(plain) / args.seconds
    print(f"\nMachine: {machine()}; platform stopped with exit code {code} in {stopped_in:.1f} s\n")
    print("| what | per second | p50 ms | p99 ms | CPU ms a request | this ÷ plain |")
    print("|---|---:|---:|---:|---:|---:|")
    for phase in phases:
        print(
            f"| {phase.label} | {phase.rate:,.0f} | {phase.pct(0.5):.1f} | "
            f"{phase.pct(0.99):.1f} | {phase.cpu_ms:.2f} | {phase.rate / baseline:.3f} |"
        )
    plain_p50 = sorted(plain)[len(plain) // 2] * 1000 if plain else 0.0
    print(f"| plain gapless INSERT loop (1 connection) | {baseline:,.0f} | {plain_p50:.1f} |||1|")
    gateway_ms = phases[0].cpu_ms - phases[1].cpu_ms
    through, alone = separate
    print(
        "\nSeparate processes (`serve registro`, `serve gateway`: the streaming proxy):"
        f" {through.rate:,.0f}/s through the gateway, {alone.rate:,.0f}/s straight to the"
        f" registro; gateway process {through.cpu_ms_of('gateway'):.2f} ms of CPU a request,"
        f" registro {through.cpu_ms_of('registro'):.2f} ms behind it and"
        f" {alone.cpu_ms_of('registro'):.2f} ms alone."
    )
    print(f"\ngateway CPU a request (through it minus straight to registro): {gateway_ms:.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
