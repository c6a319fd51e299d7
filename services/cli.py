"""The ``consistorio`` command: run, migrate, issue dev tokens, manage tenants, dead letters
and the tramitador's catalogue of procedures."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.bus.amqp import QueueType
from services.common.settings import Settings, load_settings
from services.common.typer_es import SpanishTyper
from services.tramitador.procedimientos.cli import app as procedimientos_app

if TYPE_CHECKING:
    from services.backup import BackupManifest

app = SpanishTyper(
    help="Consistorio: e-administración para entidades locales.",
    no_args_is_help=True,
    # Shell completion would add English help lines; every help text of ours is Spanish.
    add_completion=False,
)
tenants_app = SpanishTyper(help="Entidades locales (tenants).", no_args_is_help=True)
dlq_app = SpanishTyper(help="Mensajes en la cola de mensajes muertos.", no_args_is_help=True)
broker_app = SpanishTyper(help="Definiciones de RabbitMQ.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(dlq_app, name="dlq")
app.add_typer(broker_app, name="broker")
app.add_typer(procedimientos_app, name="procedimientos")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Datos locales (PostgreSQL embebido, claves); por defecto DATA_DIR o ./var.",
    ),
]


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"consistorio {version('consistorio')}")
        raise typer.Exit()


@app.callback()
def _global_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Muestra la versión y sale."
        ),
    ] = False,
) -> None:
    """Consistorio: e-administración para entidades locales."""


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
    data_dir: DataDir = None,
) -> None:
    """Arranca la pasarela y todos los servicios en un proceso (con PostgreSQL embebido)."""
    from services.runner import event_loop_run, run_platform

    event_loop_run(run_platform(_settings(data_dir), host=host, port=port))
    _exit_quickly()


def _exit_quickly() -> None:
    """Everything is stopped: spare the exit a collection of the whole heap (seconds on
    a busy machine), which would eat into the grace period Kubernetes gives."""
    gc.freeze()


@app.command()
def serve(
    service: Annotated[
        str,
        typer.Argument(
            help="registro, tramitador, sellado, csv, repositorio, pagos, notificaciones o gateway."
        ),
    ],
    port: Annotated[int, typer.Option(help="Puerto de escucha.")] = 8080,
    host: Annotated[str, typer.Option(help="Dirección de escucha.")] = "0.0.0.0",
    role: Annotated[
        str,
        typer.Option(
            help="all: todos los consumidores; http: solo los ligeros (el Deployment que "
            "atiende HTTP); worker: solo los que hacen documentos (el Deployment de "
            "trabajadores de documentos). Por defecto, CONSUMERS_ROLE o all."
        ),
    ] = "",
) -> None:
    """Arranca un servicio solo contra DATABASE_URL y AMQP_URL (como en Kubernetes)."""
    from services.catalog import SERVICES
    from services.runner import event_loop_run, run_service

    if service not in (*SERVICES, "gateway"):
        raise typer.BadParameter(f"servicio desconocido: {service}")
    roles = {"": None, "all": "all", "http": "cheap", "worker": "documents"}
    if role not in roles:
        raise typer.BadParameter(f"papel desconocido: {role} (all, http o worker)")
    settings = _settings(None)
    if roles[role] is not None:
        settings = settings.model_copy(update={"consumers_role": roles[role]})
    event_loop_run(run_service(settings, name=service, host=host, port=port))
    _exit_quickly()


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Aplica las migraciones de todos los servicios (como propietario de la base de datos)."""
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
    data_dir: DataDir = None,
) -> None:
    """Imprime un JWT de desarrollo firmado con la clave local."""
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
    """Da de alta (o actualiza) una entidad local."""
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
    """Lista las entidades locales."""
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
    """Lista los mensajes muertos de todos los servicios (identificador <servicio>:<n>)."""
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
    """Reenvía un mensaje muerto al bus (por el outbox de su servicio)."""
    from services.deadletters import DeadLetterError, replay_dead_letter

    try:
        asyncio.run(replay_dead_letter(_owner_settings(data_dir), ref))
    except DeadLetterError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{ref} reenviado")


Schemas = Annotated[
    list[str] | None,
    typer.Option("--schema", help="Solo este esquema (repetible); por defecto, todos."),
]


def _backup_action(
    action: str, folder: Path, schema: list[str] | None, data_dir: Path | None
) -> BackupManifest:
    """Runs services.backup's ``action`` and turns its refusals into a clean exit."""
    import services.backup as backups

    try:
        result: BackupManifest = getattr(backups, action)(
            _owner_settings(data_dir), folder, only=schema
        )
    except backups.BackupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    return result


@app.command()
def backup(
    target: Annotated[Path, typer.Argument(help="Directorio de la copia.")],
    schema: Schemas = None,
    data_dir: DataDir = None,
) -> None:
    """Copia de seguridad: un archivo pg_dump por esquema y los blobs de los documentos."""
    done = _backup_action("backup", target, schema, data_dir)
    typer.echo(f"esquemas {', '.join(done.schemas)}; {done.blobs} blobs en {target}")


@app.command()
def restore(
    source: Annotated[Path, typer.Argument(help="Directorio de la copia.")],
    schema: Schemas = None,
    data_dir: DataDir = None,
) -> None:
    """Restaura esquemas (cada uno se sustituye entero) y los blobs que falten."""
    done = _backup_action("restore", source, schema, data_dir)
    typer.echo(f"restaurados {', '.join(done.schemas)}; {done.blobs} blobs repuestos")


@broker_app.command("definitions")
def broker_definitions(
    output: Annotated[
        Path | None, typer.Option(help="Fichero de salida (por defecto, la salida estándar).")
    ] = None,
    passwords_dir: Annotated[
        Path | None,
        typer.Option(
            help="Directorio con un fichero por usuario (su contraseña), p. ej. un Secret montado."
        ),
    ] = None,
    passwords_env: Annotated[
        bool,
        typer.Option(
            "--passwords-env",
            help="Contraseñas de las variables RABBITMQ_PASSWORD_<USUARIO> (p. ej. compose).",
        ),
    ] = False,
    vhost: Annotated[str, typer.Option(help="Host virtual.")] = "consistorio",
    queue_type: Annotated[
        QueueType,
        typer.Option(help="quorum (producción) o classic; el BUS_QUEUE_TYPE de los servicios."),
    ] = "quorum",
) -> None:
    """Escribe las definiciones de RabbitMQ (colas de cada servicio, usuarios, políticas)."""
    import os

    from services.broker import (
        consumer_queues,
        definitions,
        password_variable,
        with_password_hashes,
    )

    defs = definitions(consumer_queues(), vhost=vhost, queue_type=queue_type)
    passwords: dict[str, str] | None = None
    if passwords_env:
        passwords = {
            u["name"]: os.environ[password_variable(u["name"])]
            for u in defs["users"]
            if password_variable(u["name"]) in os.environ
        }
    if passwords_dir is not None:
        passwords = {f.name: f.read_text().strip() for f in passwords_dir.iterdir() if f.is_file()}
    if passwords is not None:
        try:
            defs = with_password_hashes(defs, passwords)
        except KeyError as exc:
            raise typer.BadParameter(str(exc.args[0])) from exc
    text = json.dumps(defs, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)


@tenants_app.command("backoffice-user")
def tenants_backoffice_user(
    ine: Annotated[str, typer.Argument(help="Código INE (5 dígitos).")],
    name: Annotated[str, typer.Option("--name", help="Nombre corto del backoffice.")],
    vhost: Annotated[str, typer.Option(help="Host virtual de RabbitMQ.")] = "consistorio",
    management_url: Annotated[
        str | None,
        typer.Option(
            envvar="RABBITMQ_MANAGEMENT_URL",
            help="API HTTP de gestión de RabbitMQ; sin ella se imprimen las definiciones.",
        ),
    ] = None,
    management_user: Annotated[
        str, typer.Option(envvar="RABBITMQ_MANAGEMENT_USER", help="Administrador de RabbitMQ.")
    ] = "guest",
    management_password: Annotated[
        str,
        typer.Option(envvar="RABBITMQ_MANAGEMENT_PASSWORD", help="Su contraseña."),
    ] = "guest",
    password_file: Annotated[
        Path | None,
        typer.Option(help="Contraseña del nuevo usuario (si no, se genera y se imprime)."),
    ] = None,
) -> None:
    """Crea el usuario de RabbitMQ del backoffice de una entidad (solo sus claves de enrutado)."""
    import secrets

    from services.broker import apply_backoffice_user, backoffice_definitions, backoffice_user

    try:
        user = backoffice_user(ine, name, vhost=vhost)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    password = password_file.read_text().strip() if password_file else secrets.token_urlsafe(24)
    if management_url is None:
        typer.echo(json.dumps(backoffice_definitions(user, password), indent=2))
    else:
        apply_backoffice_user(
            user,
            password,
            management_url=management_url,
            auth=(management_user, management_password),
        )
        typer.echo(f"usuario {user.username} creado en {vhost}; colas {user.queue_prefix}*")
    if password_file is None:
        typer.echo(f"contraseña: {password}", err=True)


def main() -> None:
    """Console-script entry point."""
    app()
