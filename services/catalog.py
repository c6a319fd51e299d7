"""The services this distribution contains, and the migrations of each.

The one place that names every service; the composition root (bootstrap, CLI)
reads it. Services never import each other, only this module imports them all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from services.common.kernel_tables import KernelTables
from services.common.migrations_support import MigrationSet
from services.common.public_paths import PublicPath
from services.common.runtime import ConsumerSpec, ServiceRuntime

__all__ = [
    "PLATFORM_MIGRATIONS",
    "SERVICES",
    "ServiceDefinition",
    "all_migrations",
    "all_public_paths",
]

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ServiceDefinition:
    """How to build and migrate one service."""

    name: str
    tables: KernelTables
    create_app: Callable[[ServiceRuntime], FastAPI]
    consumers: Sequence[ConsumerSpec]
    migrations: MigrationSet
    # Path segments the gateway routes to this service (/api/v1/<segment>/...).
    routes: tuple[str, ...] = ()
    # Public paths outside /api/v1 that the gateway forwards to this service.
    public_paths: tuple[PublicPath, ...] = ()

    @property
    def gateway_routes(self) -> tuple[str, ...]:
        """The segments of ``/api/v1/<segment>/`` served by this service (its name by default)."""
        return self.routes or (self.name,)


def _registro() -> ServiceDefinition:
    from services.registro import app, handlers, models

    return ServiceDefinition(
        name="registro",
        tables=models.kernel,
        create_app=app.create_app,
        consumers=handlers.CONSUMERS,
        migrations=MigrationSet("registro", models.SCHEMA, _HERE / "registro" / "migrations"),
    )


def _tramitador() -> ServiceDefinition:
    from services.tramitador import app, handlers, models

    return ServiceDefinition(
        name="tramitador",
        tables=models.kernel,
        create_app=app.create_app,
        consumers=handlers.CONSUMERS,
        migrations=MigrationSet("tramitador", models.SCHEMA, _HERE / "tramitador" / "migrations"),
    )


def _sellado() -> ServiceDefinition:
    from services.sellado import app, models

    return ServiceDefinition(
        name="sellado",
        tables=models.kernel,
        create_app=app.create_app,
        # Its consumer needs the process's keys: the app adds it when it is built.
        consumers=(),
        migrations=MigrationSet("sellado", models.SCHEMA, _HERE / "sellado" / "migrations"),
        public_paths=app.PUBLIC_PATHS,
    )


def _csv() -> ServiceDefinition:
    from services.csv import app, models

    return ServiceDefinition(
        name="csv",
        tables=models.kernel,
        create_app=app.create_app,
        # Its consumers need the tenant directory: the app adds them when it is built.
        consumers=(),
        migrations=MigrationSet("csv", models.SCHEMA, _HERE / "csv" / "migrations"),
        public_paths=app.PUBLIC_PATHS,
    )


def _repositorio() -> ServiceDefinition:
    from services.repositorio import app, models

    return ServiceDefinition(
        name="repositorio",
        tables=models.kernel,
        create_app=app.create_app,
        # Its consumers need the app's blob store: the app adds them when it is built.
        consumers=(),
        migrations=MigrationSet("repositorio", models.SCHEMA, _HERE / "repositorio" / "migrations"),
        routes=("documentos",),
        public_paths=app.PUBLIC_PATHS,
    )


PLATFORM_MIGRATIONS = MigrationSet("plataforma", "plataforma", _HERE / "common" / "migrations")

SERVICES: dict[str, Callable[[], ServiceDefinition]] = {
    "registro": _registro,
    "tramitador": _tramitador,
    "sellado": _sellado,
    "csv": _csv,
    "repositorio": _repositorio,
}


def all_public_paths() -> list[PublicPath]:
    """Every service's public paths, for the gateway."""
    return [path for load in SERVICES.values() for path in load().public_paths]


def all_migrations() -> list[MigrationSet]:
    """Every history in the order they must run (the kernel's first: it creates the role)."""
    return [PLATFORM_MIGRATIONS, *(load().migrations for load in SERVICES.values())]
