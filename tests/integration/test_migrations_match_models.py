"""Every schema's migrations build exactly the tables its models declare.

Alembic's autogenerate comparison runs against the session's database, migrated from
scratch, once per history (the kernel's ``plataforma`` and each service's schema). Any
difference fails with the list of differences: a model changed without a migration, a
migration that the models do not describe, a type, a nullability, an index or a
constraint that drifted apart.

Nothing is filtered out but Alembic's own version table: what the models cannot express
(row-level security policies, grants, the SQL functions of the migrations) and what
Alembic does not compare (CHECK constraints, sequences) never shows up as a difference.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from services.catalog import PLATFORM_MIGRATIONS, SERVICES, all_migrations
from services.common.db import asyncpg_url
from services.common.tenants import platform_metadata

pytestmark = pytest.mark.integration


def _modules(package: str) -> Iterator[ModuleType]:
    """The package and every module under it but its migrations (which declare no model)."""
    root = importlib.import_module(package)
    yield root
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if ".migrations" not in info.name:
            yield importlib.import_module(info.name)


def _declared_tables(service: str) -> dict[str, sa.Table]:
    """Every table of a service's schema that any module of its package declares."""
    schema = importlib.import_module(f"services.{service}.models").SCHEMA
    found: dict[str, sa.Table] = {}
    for module in _modules(f"services.{service}"):
        for value in vars(module).values():
            if isinstance(value, sa.Table) and value.schema == schema:
                found[value.key] = value
    return found


def schema_metadata(service: str) -> sa.MetaData:
    """The one metadata of a service's schema, which ``models`` gathers from its features."""
    metadata: sa.MetaData = importlib.import_module(f"services.{service}.models").metadata
    return metadata


@pytest.mark.parametrize("service", list(SERVICES))
def test_models_gather_every_table_of_the_schema_into_one_metadata(service: str) -> None:
    # A table on a MetaData of its own would escape migrations' checks and create_all alike.
    metadata = schema_metadata(service)
    for key, table in _declared_tables(service).items():
        assert metadata.tables.get(key) is table, f"{key} is not in services.{service}.models"


def metadata_for(history: str) -> sa.MetaData:
    return platform_metadata if history == PLATFORM_MIGRATIONS.name else schema_metadata(history)


def test_every_history_is_compared() -> None:
    assert [m.name for m in all_migrations()] == [PLATFORM_MIGRATIONS.name, *SERVICES]


def _differences(connection: sa.Connection, metadata: sa.MetaData) -> list[Any]:
    schema = metadata.schema

    def include_name(name: str | None, type_: str, parent: Any) -> bool:
        if type_ == "schema":
            return name == schema
        return not (type_ == "table" and name == "alembic_version")

    context = MigrationContext.configure(
        connection=connection,
        opts={
            "include_schemas": True,
            "include_name": include_name,
            "compare_type": True,
            "compare_server_default": True,
        },
    )
    return list(compare_metadata(context, metadata))


@pytest.mark.parametrize("history", [m.name for m in all_migrations()])
async def test_migrations_build_what_the_models_declare(database_url: str, history: str) -> None:
    metadata = metadata_for(history)
    assert metadata.tables, f"{history}: no table found"
    engine = create_async_engine(asyncpg_url(database_url))
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_differences, metadata)
    finally:
        await engine.dispose()
    listed = "\n".join(f"  {difference!r}" for difference in differences)
    assert not differences, f"{history}: models and migrations differ:\n{listed}"
