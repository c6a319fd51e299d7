"""The ``consistorio`` command: run, migrate, issue dev tokens, manage tenants, dead letters
and the tramitador's catalogue of procedures."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.settings import Settings, load_settings
from services.tramitador.procedimientos.cli import app as procedimientos_app

app = typer.Typer(
    help="Consistorio: e-administración para entidades locales.", no_args_is_help=True
)
tenants_app = typer.Typer(help="Entidades locales (tenants).", no_args_is_help=True)
dlq_app = typer.Typer(help="Mensajes en la cola de mensajes muertos.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(dlq_app, name="dlq")
app.add_typer(procedimientos_app, name="procedimientos")

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Datos locales (PostgreSQL embebido, claves).")
]


def _settings(data_dir: Path | None) -> Settings:
    return load_settings(**({"data_dir": data_dir} if data_dir else {}))


def _owner_settings(data_dir: Path | None) -> Settings:
    settings = _settings(data_dir)
    if not settings.database_url:
        raise typer.BadParameter("DATABASE_URL no está definida.")
    return settings


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Dirección de escucha de la pasarela.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Puerto de la pasarela.")] = 8000,
    data_dir: Annotated[Path, typer.Option("--data-dir")] = Path("./var"),
) -> None:
    """Runs the gateway and every service in one process (embedded defaults)."""
    from services.runner import run_platform

    asyncio.run(run_platform(_settings(data_dir), host=host, port=port))


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="registro, tramitador o gateway.")],
    port: Annotated[int, typer.Option(help="Puerto de escucha.")] = 8080,
    host: Annotated[str, typer.Option(help="Dirección de escucha.")] = "0.0.0.0",
) -> None:
    """Runs one service alone against DATABASE_URL and AMQP_URL (as Kubernetes does)."""
    from services.catalog import SERVICES
    from services.runner import run_service

    if service not in (*SERVICES, "gateway"):
        raise typer.BadParameter(f"servicio desconocido: {service}")
    asyncio.run(run_service(_settings(None), name=service, host=host, port=port))


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Applies every service's Alembic migrations (as the database owner)."""
    from services.bootstrap import migrate as run_migrations

    asyncio.run(run_migrations(_owner_settings(data_dir)))
    typer.echo("migraciones aplicadas")


@app.command()
def token(
    tenant: Annotated[str, typer.Option(help="Código INE de la entidad.")],
    sub: Annotated[str, typer.Option(help="Usuario.")],
    roles: Annotated[str, typer.Option(help="Roles separados por comas.")] = "",
    name: Annotated[str | None, typer.Option(help="Nombre para mostrar.")] = None,
    nif: Annotated[
        str | None, typer.Option(help="NIF o NIE acreditado (tokens de ciudadano).")
    ] = None,
    ttl: Annotated[int, typer.Option(help="Validez en segundos.")] = 8 * 3600,
    data_dir: Annotated[Path, typer.Option("--data-dir")] = Path("./var"),
) -> None:
    """Prints a development JWT signed with the embedded key."""
    from services.common.devkeys import issue_dev_token

    settings = _settings(data_dir)
    typer.echo(
        issue_dev_token(
            settings.keys_dir,
            tenant=tenant,
            sub=sub,
            roles=[r.strip() for r in roles.split(",") if r.strip()],
            name=name,
            nif=nif,
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            ttl_seconds=ttl,
        )
    )


@tenants_app.command("add")
def tenants_add(
    ine: Annotated[str, typer.Argument(help="Código INE (5 dígitos).")],
    nombre: Annotated[str, typer.Argument(help="Nombre de la entidad.")],
    dir3: Annotated[str, typer.Option(help="Código DIR3 de la entidad.")],
    inactive: Annotated[bool, typer.Option("--inactive", help="Darla de baja.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Adds (or updates) an entidad local."""
    from services.common.db import asyncpg_url
    from services.common.tenants import Tenant, add_tenant, validate_dir3, validate_ine_code

    try:
        validate_ine_code(ine)
        validate_dir3(dir3)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    settings = _owner_settings(data_dir)

    async def _run() -> None:
        engine = create_async_engine(asyncpg_url(str(settings.database_url)))
        try:
            async with engine.begin() as conn:
                await add_tenant(conn, Tenant(ine, nombre, dir3, activo=not inactive))
        finally:
            await engine.dispose()

    asyncio.run(_run())
    typer.echo(f"{ine} {nombre} ({dir3}) {'de baja' if inactive else 'activa'}")


@tenants_app.command("list")
def tenants_list(data_dir: DataDir = None) -> None:
    """Lists the entidades locales."""
    from services.common.db import asyncpg_url
    from services.common.tenants import list_tenants

    settings = _owner_settings(data_dir)

    async def _run() -> None:
        engine = create_async_engine(asyncpg_url(str(settings.database_url)))
        try:
            async with engine.connect() as conn:
                for t in await list_tenants(conn):
                    estado = "activa" if t.activo else "de baja"
                    typer.echo(f"{t.ine_code}\t{t.dir3}\t{estado}\t{t.nombre}")
        finally:
            await engine.dispose()

    asyncio.run(_run())


@dlq_app.command("list")
def dlq_list(
    as_json: Annotated[bool, typer.Option("--json", help="Salida JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Lists dead letters of every service (id is ``<service>:<n>``)."""
    from services.deadletters import list_dead_letters

    letters = asyncio.run(list_dead_letters(_owner_settings(data_dir)))
    if as_json:
        typer.echo(json.dumps([letter.as_dict() for letter in letters], indent=2, default=str))
        return
    if not letters:
        typer.echo("no hay mensajes muertos")
    for letter in letters:
        estado = (
            f"reenviado {letter.replayed_at:%Y-%m-%d %H:%M}" if letter.replayed_at else "pendiente"
        )
        typer.echo(
            f"{letter.ref}\t{letter.created_at:%Y-%m-%d %H:%M:%S}\t{letter.routing_key}\t"
            f"{estado}\t{letter.reason}"
        )


@dlq_app.command("replay")
def dlq_replay(
    ref: Annotated[str, typer.Argument(help="Identificador <servicio>:<n> de `dlq list`.")],
    data_dir: DataDir = None,
) -> None:
    """Sends a dead letter to the bus again (through the service's outbox)."""
    from services.deadletters import DeadLetterError, replay_dead_letter

    try:
        asyncio.run(replay_dead_letter(_owner_settings(data_dir), ref))
    except DeadLetterError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{ref} reenviado")


def main() -> None:
    """Console-script entry point."""
    app()
