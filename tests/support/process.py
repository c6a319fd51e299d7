"""Runs the whole platform the way ``consistorio up`` does, as a real subprocess
(used by the end-to-end tests and the benchmark)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

CONSISTORIO = str(Path(sys.executable).with_name("consistorio"))


def postgres_on(pgdata: Path) -> list[psutil.Process]:
    """The PostgreSQL postmasters serving ``pgdata`` (an embedded one left running)."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(pgdata.resolve()) in cmdline:
            found.append(process)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningPlatform:
    """A ``consistorio up`` process and how to reach its gateway."""

    process: subprocess.Popen[str]
    base_url: str
    data_dir: Path
    env: dict[str, str]
    log_path: Path

    def token(self, tenant: str, roles: str, sub: str = "ana", nif: str | None = None) -> str:
        """A token from the real ``consistorio token`` command (roles comma-separated)."""
        out = subprocess.run(
            [
                CONSISTORIO,
                "token",
                "--tenant",
                tenant,
                "--sub",
                sub,
                "--roles",
                roles,
                "--data-dir",
                str(self.data_dir),
                *(["--nif", nif] if nif is not None else []),
            ],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return out.stdout.strip()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as Kubernetes or Ctrl-C would, and wait for a clean exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def start_platform(
    data_dir: Path, extra_env: dict[str, str], timeout: float = 180
) -> RunningPlatform:
    """Runs ``consistorio up`` and waits until the gateway answers /readyz."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AMQP_URL")}
    env.update({"LOG_JSON": "false", "OUTBOX_POLL_SECONDS": "0.5", **extra_env})
    log_path = data_dir.parent / f"{data_dir.name}-{port}.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [CONSISTORIO, "up", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = RunningPlatform(process, f"http://127.0.0.1:{port}", data_dir, env, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"consistorio up exited with {process.returncode}:\n{running.log()}"
            )
        try:
            if httpx.get(running.base_url + "/readyz", timeout=2).status_code == 200:
                return running
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    running.stop()
    raise AssertionError(f"consistorio up did not become ready:\n{running.log()}")
