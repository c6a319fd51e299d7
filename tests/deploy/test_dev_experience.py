"""What a newcomer sees: readable logs on a terminal, one start-up line, a version.

``make dev`` runs ``consistorio up`` on a terminal: the test gives it a real
pseudo-terminal and reads everything it prints until it is stopped.
"""

from __future__ import annotations

import contextlib
import io
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from services.cli import app as cli
from services.common.logging import wants_json
from services.common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_logs_are_json_unless_a_person_reads_them() -> None:
    development = Settings(environment="development")
    assert wants_json(development, io.StringIO()) is True
    assert wants_json(development, _Terminal()) is False
    assert wants_json(Settings(environment="development", log_json=True), _Terminal()) is True
    production = Settings(
        environment="production",
        database_url="postgresql://x@h/d",
        amqp_url="amqp://h",
        auth_jwks="https://idp/jwks",
        auth_issuer="https://idp",
        public_base_url="https://sede.example.org",
    )
    assert wants_json(production, _Terminal()) is True


def test_version_and_one_language_help() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"consistorio {version('consistorio')}"
    english = ("Runs ", "Prints ", "Lists ", "Adds ", "Applies ", "Sends ", "completion")
    for args in ([], ["tenants"], ["dlq"], ["broker"]):
        text = CliRunner().invoke(cli, [*args, "--help"], terminal_width=200).output
        assert not [w for w in english if w in text], text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Outside pytest's 0700 tmp tree: as root, the embedded PostgreSQL runs as its own user."""
    path = Path(tempfile.mkdtemp(prefix="consistorio-dev-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.e2e
def test_make_dev_on_a_terminal_prints_text_and_one_startup_line(
    tmp_path: Path, data_dir: Path
) -> None:
    port = _free_port()
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("LOG_JSON", "DATABASE_URL")}
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "consistorio"),
            "up",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir / "var"),
        ],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    os.close(secondary)
    output = b""

    def drain(timeout: float) -> None:
        nonlocal output
        ready, _, _ = select.select([primary], [], [], timeout)
        if ready:
            with contextlib.suppress(OSError):  # the terminal closes when the process ends
                output += os.read(primary, 65536)

    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            drain(0.5)
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                continue
        else:
            pytest.fail("consistorio up did not answer /healthz:\n" + output.decode())
        readyz = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert readyz.status_code == 200, readyz.text
    finally:
        os.killpg(process.pid, signal.SIGINT)
        end = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < end:
            drain(0.5)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        while True:
            before = len(output)
            drain(0.1)
            if len(output) == before:
                break
        os.close(primary)
    text = output.decode(errors="replace")
    assert text.count("Consistorio listening on") == 1, text
    assert "Application startup complete" not in text, text
    assert not any(line.lstrip().startswith('{"ts"') for line in text.splitlines()), text
