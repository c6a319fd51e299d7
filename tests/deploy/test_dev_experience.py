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
import typer.main
from typer import _click as click
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


# Typer's and Click's own English, as they print it (help, usage line, errors).
CLICK_ENGLISH = (
    "Usage",
    "Options",
    "Commands",
    "Arguments",
    "Show this message",
    "[default",
    "[required",
    "env var",
    "Try '",
    "for help",
    "[OPTIONS]",
    "COMMAND",
    "[ARGS]",
    "Missing",
    "No such",
    "Invalid value",
    "Got unexpected",
    "Did you mean",
    "Possible options",
    "does not exist",
    "requires an argument",
    "is not one of",
    "Input should be",
    "Aborted",
)
# Our own help written in English by mistake (a docstring is a command's help).
OUR_ENGLISH = (
    "Runs ",
    "Prints ",
    "Lists ",
    "Adds ",
    "Applies ",
    "Imports ",
    "Writes ",
    "completion",
)


def _english(text: str) -> list[str]:
    return [word for word in (*CLICK_ENGLISH, *OUR_ENGLISH) if word in text]


def _consistorio(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``consistorio`` command (this checkout's code first), in its own process."""
    script = Path(sys.executable).with_name("consistorio")
    fallback = "import sys; from services.cli import main; sys.argv[0] = 'consistorio'; main()"
    command = [str(script)] if script.exists() else [sys.executable, "-c", fallback]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_version() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"consistorio {version('consistorio')}"


def test_help_speaks_spanish_only() -> None:
    main = _consistorio("--help")
    assert main.returncode == 0, main.stderr
    assert "Uso: consistorio [OPCIONES] ORDEN [ARGUMENTOS]..." in main.stdout
    for spanish in ("Opciones", "Órdenes", "Muestra esta ayuda y sale.", "Muestra la versión"):
        assert spanish in main.stdout, main.stdout
    assert not _english(main.stdout), main.stdout
    sub = _consistorio("procedimientos", "import", "--help")
    assert sub.returncode == 0, sub.stderr
    for spanish in ("Uso: consistorio procedimientos import", "Argumentos", "[obligatorio]"):
        assert spanish in sub.stdout, sub.stdout
    assert "[por defecto: no-publicar]" in sub.stdout
    assert not _english(sub.stdout), sub.stdout
    wrong = _consistorio("serve")
    assert wrong.returncode == 2
    assert "Pruebe 'consistorio serve --help' para ver la ayuda." in wrong.stderr
    assert "Falta el argumento 'service'." in wrong.stderr
    assert not _english(wrong.stderr), wrong.stderr


@pytest.mark.parametrize(
    ("args", "spanish"),
    [
        (["nada"], "No existe la orden 'nada'."),
        (["tenants", "lst"], "¿Quería decir 'list'?"),
        (["up", "--port", "abc"], "Valor no válido para '--port': debe ser un número entero"),
        (["up", "--nada"], "No existe la opción --nada."),
        (["up", "sobra"], "Sobran argumentos: sobra"),
        (["token", "--tenant"], "La opción '--tenant' necesita un valor."),
        (["broker", "definitions", "--queue-type", "x"], "'x' no es ninguno de 'classic',"),
        (["procedimientos", "import", "--tenant", "03014", "/no/existe.yaml"], "no existe."),
        (["tenants", "list"], "Valor no válido: DATABASE_URL no está definida."),
    ],
)
def test_usage_errors_speak_spanish(args: list[str], spanish: str) -> None:
    result = CliRunner().invoke(
        cli, args, prog_name="consistorio", env={"COLUMNS": "200", "DATABASE_URL": ""}
    )
    assert result.exit_code == 2, result.output
    assert spanish in result.stderr, result.stderr
    assert not _english(result.stderr), result.stderr


def test_every_command_help_speaks_spanish() -> None:
    group = typer.main.get_command(cli)
    assert isinstance(group, click.Command)

    def paths(command: click.Command, prefix: list[str]) -> Iterator[list[str]]:
        yield prefix
        for name, sub in getattr(command, "commands", {}).items():
            yield from paths(sub, [*prefix, name])

    seen = 0
    for path in paths(group, []):
        text = CliRunner().invoke(cli, [*path, "--help"], terminal_width=200).output
        assert "Uso: " in text, path
        assert not _english(text), (path, text)
        seen += 1
    assert seen > 15


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
