"""Reaching the real servers the tests talk to (PostgreSQL, RabbitMQ, Redis).

Under CI=true a missing server fails the test; on a developer's machine it skips,
with a message that says which server to start.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

__all__ = ["AMQP_URL", "POSTGRES_ADMIN_URL", "REDIS_URL", "require_server", "require_tool"]

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    """Fails (CI) or skips (laptop) the calling test when ``host:port`` does not answer."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI=true: a test that needs a server must not skip)")
    pytest.skip(message + "; start it to run this test")


def require_tool(name: str, package: str) -> str:
    """The tool's path; fails (CI) or skips (laptop) when the Debian package is missing."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (Debian package {package})"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI=true: a test that needs a tool must not skip)")
    pytest.skip(message + "; apt-get install -y " + package)
