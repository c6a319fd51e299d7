"""``consistorio procedimientos export|import`` as a real subprocess on the real
PostgreSQL: a council exports its catalogue, edits a definition and imports it back."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from services.common.db import Database, tenant_transaction
from services.common.settings import Settings
from tests.support.process import CONSISTORIO

pytestmark = pytest.mark.e2e


def run(*args: str, database_url: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AMQP_URL")}
    env.update({"DATABASE_URL": database_url, "LOG_JSON": "false"})
    result = subprocess.run(
        [CONSISTORIO, "procedimientos", *args], env=env, capture_output=True, text=True, timeout=120
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


async def test_export_edit_and_import_a_definition(
    database_url: str, settings: Settings, new_tenant, tmp_path: Path
) -> None:
    tenant = await new_tenant()
    exported = run("export", "--tenant", tenant, "--dir", str(tmp_path), database_url=database_url)
    files = sorted(p.name for p in tmp_path.glob("*.yaml"))
    assert len(files) == 20 and "licencia-vado.yaml" in files
    assert "licencia-vado\tv1" in exported.stdout

    vado = tmp_path / "licencia-vado.yaml"
    definicion = yaml.safe_load(vado.read_text("utf-8"))
    definicion["plazo_resolucion"] = {"cantidad": 2, "unidad": "meses"}
    vado.write_text(yaml.safe_dump(definicion, allow_unicode=True), "utf-8")
    imported = run("import", str(vado), "--tenant", tenant, "--publicar", database_url=database_url)
    assert "licencia-vado\tv2\tpublicado" in imported.stdout

    bad = tmp_path / "malo.yaml"
    bad.write_text("codigo: Malo\nnombre: x\n", "utf-8")
    refused = run("import", str(bad), "--tenant", tenant, database_url=database_url, check=False)
    assert refused.returncode == 1
    assert "definicion.codigo" in refused.stderr

    db = Database(settings.app_database_url())
    try:
        async with tenant_transaction(db, tenant) as session:
            rows = (
                await session.execute(
                    text(
                        "SELECT version, estado, definicion->'plazo_resolucion'->>'cantidad' "
                        "FROM tramitador.procedimiento_versiones WHERE codigo = 'licencia-vado' "
                        "ORDER BY version"
                    )
                )
            ).all()
    finally:
        await db.dispose()
    assert [tuple(r) for r in rows] == [(1, "retirado", "3"), (2, "publicado", "2")]
