"""The services this distribution contains, and the migrations of each.

The one place that names every service; the composition root (bootstrap, CLI)
reads it. Services never import each other, only this module imports them all.
"""

from __future__ import annotations

import importlib
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
    # Modules of the documents it makes, imported by each document worker as it starts.
    document_modules: tuple[str, ...] = ()

    @property
    def gateway_routes(self) -> tuple[str, ...]:
        """The segments of ``/api/v1/<segment>/`` served by this service (its name by default)."""
        return self.routes or (self.name,)


def _define(name: str) -> Callable[[], ServiceDefinition]:
    """Reads a service package of the common shape into its definition.

    Every package has ``app.create_app`` and ``models`` (``SCHEMA``, ``kernel``), and may
    declare ``app.ROUTES`` (gateway segments), ``app.PUBLIC_PATHS``,
    ``app.DOCUMENT_MODULES`` (what its document workers run) and static
    ``handlers.CONSUMERS``. Services whose consumers need process objects (keys, blob
    store, tenant directory) add them in ``create_app`` instead.
    """

    def load() -> ServiceDefinition:
        app = importlib.import_module(f"services.{name}.app")
        models = importlib.import_module(f"services.{name}.models")
        handlers = importlib.import_module(f"services.{name}.handlers")
        return ServiceDefinition(
            name=name,
            tables=models.kernel,
            create_app=app.create_app,
            consumers=getattr(handlers, "CONSUMERS", ()),
            migrations=MigrationSet(name, models.SCHEMA, _HERE / name / "migrations"),
            routes=getattr(app, "ROUTES", ()),
            public_paths=getattr(app, "PUBLIC_PATHS", ()),
            document_modules=getattr(app, "DOCUMENT_MODULES", ()),
        )

    return load


PLATFORM_MIGRATIONS = MigrationSet("plataforma", "plataforma", _HERE / "common" / "migrations")

# Order matters for migrations only through the platform's own history, which runs first.
SERVICES: dict[str, Callable[[], ServiceDefinition]] = {
    name: _define(name)
    for name in (
        "registro",
        "tramitador",
        "sellado",
        "csv",
        "repositorio",
        "pagos",
        "notificaciones",
    )
}


def all_public_paths() -> list[PublicPath]:
    """Every service's public paths, for the gateway."""
    return [path for load in SERVICES.values() for path in load().public_paths]


def all_migrations() -> list[MigrationSet]:
    """Every history in the order they must run (the kernel's first: it creates the role)."""
    return [PLATFORM_MIGRATIONS, *(load().migrations for load in SERVICES.values())]
