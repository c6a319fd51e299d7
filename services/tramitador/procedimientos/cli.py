"""``consistorio procedimientos import|export``: move definitions between a council's
catalogue and YAML files (a Diputación's provincial catalogue, a council's overrides)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from services.common.contracts import ContractRegistry
from services.common.db import Database, tenant_transaction
from services.common.errors import ProblemError
from services.common.settings import load_settings
from services.common.typer_es import SpanishTyper
from services.common.uow import Actor, UnitOfWork
from services.tramitador.metadata import kernel
from services.tramitador.procedimientos import service
from services.tramitador.procedimientos.domain import EstadoVersion

__all__ = ["app"]

app = SpanishTyper(help="Catálogo de procedimientos del tramitador.", no_args_is_help=True)

Tenant = Annotated[str, typer.Option("--tenant", help="Código INE de la entidad.")]


def _database() -> Database:
    settings = load_settings()
    if not settings.database_url and not settings.database_app_url:
        raise typer.BadParameter("DATABASE_URL no está definida.")
    return Database(settings.app_database_url(), pool_size=1)


@app.command("import")
def importar(
    ficheros: Annotated[list[Path], typer.Argument(help="Definiciones YAML.", exists=True)],
    tenant: Tenant,
    publicar: Annotated[bool, typer.Option(help="Publica cada versión importada.")] = False,
) -> None:
    """Importa cada fichero YAML como una versión en borrador (y la publica si se pide)."""

    async def _run() -> None:
        db = _database()
        contracts = ContractRegistry.load()
        try:
            for fichero in ficheros:
                definicion = service.leer_definicion(yaml_text=fichero.read_text("utf-8"))
                actor = Actor(sub="cli:procedimientos")
                async with UnitOfWork(
                    db=db, tables=kernel, contracts=contracts, tenant_id=tenant, actor=actor
                ) as uow:
                    creada = await service.importar_definicion(uow, definicion=definicion)
                    if publicar:
                        creada = await service.publicar_version(
                            uow, codigo=creada.codigo, version=creada.version
                        )
                typer.echo(f"{fichero}\t{creada.codigo}\tv{creada.version}\t{creada.estado.value}")
        finally:
            await db.dispose()

    try:
        asyncio.run(_run())
    except ProblemError as exc:
        for error in exc.errors:
            typer.echo(f"{error['field']}: {error['message']}", err=True)
        typer.echo(exc.detail, err=True)
        raise typer.Exit(1) from exc


@app.command("export")
def exportar(
    tenant: Tenant,
    directorio: Annotated[Path, typer.Option("--dir", help="Carpeta de destino.")] = Path("."),
    codigo: Annotated[str | None, typer.Option(help="Solo este procedimiento.")] = None,
) -> None:
    """Escribe la versión publicada de cada procedimiento como <codigo>.yaml."""

    async def _run() -> None:
        db = _database()
        try:
            async with tenant_transaction(db, tenant) as session:
                vigentes = await service.listar_procedimientos(
                    session, tenant_id=tenant, estado=EstadoVersion.PUBLICADO
                )
                directorio.mkdir(parents=True, exist_ok=True)
                for p in vigentes:
                    if codigo is not None and p.codigo != codigo:
                        continue
                    texto = await service.exportar_yaml(
                        session, tenant_id=tenant, codigo=p.codigo, version=p.version
                    )
                    destino = directorio / f"{p.codigo}.yaml"
                    destino.write_text(texto, encoding="utf-8")
                    typer.echo(f"{destino}\t{p.codigo}\tv{p.version}")
        finally:
            await db.dispose()

    asyncio.run(_run())
