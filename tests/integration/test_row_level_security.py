"""Row-level security holds below the application: a query without a tenant filter,
run as the services' role, still sees only the transaction's tenant."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.common.db import Database, tenant_transaction
from services.common.settings import Settings
from tests.support import factories

pytestmark = pytest.mark.integration


async def _insert_asiento(db: Database, tenant: str, numero: int) -> None:
    async with tenant_transaction(db, tenant) as session:
        await session.execute(
            text(
                "INSERT INTO registro.asientos (id, tenant_id, tipo, anio, secuencia, numero, "
                "fecha_registro, resumen, unidad_destino, interesados, registrado_por) VALUES "
                "(gen_random_uuid(), :t, 'entrada', 2026, :n, :num, now(), 'x', 'L01030149', "
                "CAST(:i AS jsonb), 'test')"
            ),
            {"t": tenant, "n": numero, "num": f"E/2026/{numero:06d}", "i": "[]"},
        )


async def test_query_without_tenant_filter_sees_only_own_rows(
    settings: Settings, new_tenant
) -> None:
    db = Database(settings.app_database_url())
    try:
        a, b = await new_tenant(), await new_tenant()
        await _insert_asiento(db, a, 1)
        await _insert_asiento(db, a, 2)
        await _insert_asiento(db, b, 1)
        async with tenant_transaction(db, a) as session:
            # Deliberately no WHERE tenant_id: the policy must do the filtering.
            tenants = (
                (await session.execute(text("SELECT tenant_id FROM registro.asientos")))
                .scalars()
                .all()
            )
        assert sorted(tenants) == [a, a]
        async with db.sessions() as session, session.begin():
            unbound = (
                await session.execute(text("SELECT count(*) FROM registro.asientos"))
            ).scalar_one()
        assert unbound == 0
    finally:
        await db.dispose()


async def test_writing_another_tenants_row_is_refused(settings: Settings, new_tenant) -> None:
    db = Database(settings.app_database_url())
    try:
        a, b = await new_tenant(), await new_tenant()
        with pytest.raises(DBAPIError, match="row-level security"):
            async with tenant_transaction(db, a) as session:
                await session.execute(
                    text(
                        "INSERT INTO registro.asientos (id, tenant_id, tipo, anio, secuencia, "
                        "numero, fecha_registro, resumen, unidad_destino, interesados, "
                        "registrado_por) VALUES "
                        "(gen_random_uuid(), :t, 'entrada', 2026, 1, 'E/2026/000001', now(), 'x', "
                        "'L01030149', '[]'::jsonb, 'test')"
                    ),
                    {"t": b},
                )
    finally:
        await db.dispose()


async def test_the_service_role_is_neither_superuser_nor_owner(settings: Settings) -> None:
    db = Database(settings.app_database_url())
    try:
        async with db.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT r.rolsuper, r.rolbypassrls, "
                        "(SELECT tableowner FROM pg_tables WHERE schemaname = 'registro' "
                        "AND tablename = 'asientos') AS owner, current_user AS me "
                        "FROM pg_roles r WHERE r.rolname = current_user"
                    )
                )
            ).one()
        assert row.rolsuper is False
        assert row.rolbypassrls is False
        assert row.owner != row.me
    finally:
        await db.dispose()


async def test_asientos_cannot_be_updated_or_deleted_by_services(
    settings: Settings, new_tenant
) -> None:
    db = Database(settings.app_database_url())
    try:
        tenant = await new_tenant()
        await _insert_asiento(db, tenant, 1)
        for statement in (
            "UPDATE registro.asientos SET resumen = 'y'",
            "DELETE FROM registro.asientos",
        ):
            with pytest.raises(DBAPIError, match="permission denied"):
                async with tenant_transaction(db, tenant) as session:
                    await session.execute(text(statement))
    finally:
        await db.dispose()


def test_factories_make_valid_identifiers() -> None:
    from services.registro.domain import TipoIdentificador, normalize_identificador

    assert normalize_identificador(TipoIdentificador.NIF, factories.nif(12345678)) == "12345678Z"
    with pytest.raises(ValueError):
        normalize_identificador(TipoIdentificador.NIF, factories.wrong_letter("12345678Z"))


async def test_every_audit_trail_is_append_only_for_services(settings: Settings) -> None:
    db = Database(settings.app_database_url())
    try:
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT s, has_table_privilege(current_user, t, 'INSERT'), "
                        "has_table_privilege(current_user, t, 'UPDATE'), "
                        "has_table_privilege(current_user, t, 'DELETE') "
                        "FROM (SELECT table_schema AS s, table_schema || '.audit_log' AS t "
                        "FROM information_schema.tables WHERE table_name = 'audit_log') AS a"
                    )
                )
            ).all()
    finally:
        await db.dispose()
    schemas = {row[0] for row in rows}
    assert {"registro", "tramitador", "sellado", "repositorio"} <= schemas
    assert [
        (row[0], row[1], row[2], row[3]) for row in rows if not row[1] or row[2] or row[3]
    ] == []
