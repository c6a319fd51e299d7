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


def schema_metadata(service: str) -> sa.MetaData:
    """Every table of a service's schema, wherever in the package it is declared.

    Starts from ``models.metadata`` and adds any table of the same schema a module
    declares on a MetaData of its own, so the comparison is complete whether or not
    ``models`` gathers them all.
    """
    models = importlib.import_module(f"services.{service}.models")
    schema = models.SCHEMA
    gathered = sa.MetaData(schema=schema)
    sources: dict[int, sa.MetaData] = {id(models.metadata): models.metadata}
    for module in _modules(f"services.{service}"):
        for value in vars(module).values():
            found = value.metadata if isinstance(value, sa.Table) else value
            if isinstance(found, sa.MetaData) and found.schema == schema:
                sources.setdefault(id(found), found)
    for metadata in sources.values():
        for table in metadata.tables.values():
            if table.key not in gathered.tables:
                table.to_metadata(gathered)
    return gathered


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
