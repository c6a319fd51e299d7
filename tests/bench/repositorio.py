"""Benchmark: uploading and downloading a large document through the gateway,
beside copying the same file on the same disk in the same run.

Run with ``make bench`` (needs the real PostgreSQL). It starts the platform as
``consistorio up`` does (filesystem blob store under a temporary data dir on the
same disk as the file), uploads one large file as a streamed multipart body,
downloads it back, checks the bytes, and prints MB/s beside a plain disk copy
(copy + fsync) of the same file.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tests.bench.common import ScratchDatabase, machine
from tests.support.process import start_platform

_CHUNK = 1024 * 1024
_BOUNDARY = "consistorio-bench-boundary"


def _make_file(path: Path, size_mb: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        head = b"%PDF-1.7\n"
        fh.write(head)
        digest.update(head)
        for _ in range(size_mb):
            block = os.urandom(_CHUNK)
            fh.write(block)
            digest.update(block)
    return digest.hexdigest()


async def _multipart(path: Path, done: list[int]) -> AsyncIterator[bytes]:
    meta = {
        "organo": "L01030149",
        "origen": "administracion",
        "estado_elaboracion": "EE01",
        "tipo_documental": "TD01",
    }
    yield (
        f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="metadatos"\r\n'
        f"Content-Type: application/json\r\n\r\n{json.dumps(meta)}\r\n"
        f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="grande.pdf"\r\nContent-Type: application/pdf\r\n\r\n'
    ).encode()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            done.append(len(block))
            yield block
    yield f"\r\n--{_BOUNDARY}--\r\n".encode()


async def _progress(label: str, done: list[int], total: int) -> None:
    start = time.monotonic()
    while sum(done) < total:
        await asyncio.sleep(1)
        mb = sum(done) / 1e6
        rate = mb / (time.monotonic() - start)
        print(
            f"\r  {label}: {mb:8.0f} / {total / 1e6:.0f} MB, {rate:6.1f} MB/s",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)


def _disk_copy(src: Path, dst: Path) -> float:
    t0 = time.perf_counter()
    shutil.copyfile(src, dst)
    with dst.open("rb") as fh:
        os.fsync(fh.fileno())
    return time.perf_counter() - t0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=256)
    args = parser.parse_args()

    database = await ScratchDatabase.create()
    root = Path(tempfile.mkdtemp(prefix="consistorio-bench-", dir=Path.cwd()))
    root.chmod(0o755)
    try:
        source = root / "grande.pdf"
        size = args.size_mb * _CHUNK + 9
        print(f"making a {args.size_mb} MiB file", file=sys.stderr)
        expected = _make_file(source, args.size_mb)
        env = {
            "DATABASE_URL": database.url,
            "LOG_LEVEL": "WARNING",
            "REPOSITORIO_MAX_BYTES": str(size * 2),
            # The gateway's own cap on a request body (64 MiB by default) comes first.
            "GATEWAY_MAX_BODY_BYTES": str(size * 2),
        }
        running = start_platform(root / "var", env)
        try:
            token = running.token("03014", "documentos")
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=running.base_url, timeout=600) as client:
                sent: list[int] = []
                t0 = time.perf_counter()
                progress = asyncio.create_task(_progress("upload", sent, size))
                created = await client.post(
                    "/api/v1/documentos",
                    content=_multipart(source, sent),
                    headers={
                        **headers,
                        "Content-Type": f"multipart/form-data; boundary={_BOUNDARY}",
                    },
                )
                upload_s = time.perf_counter() - t0
                progress.cancel()
                assert created.status_code == 201, (created.status_code, created.text)
                documento = created.json()["id"]
                got: list[int] = []
                digest = hashlib.sha256()
                t0 = time.perf_counter()
                progress = asyncio.create_task(_progress("download", got, size))
                async with client.stream(
                    "GET", f"/api/v1/documentos/{documento}/contenido", headers=headers
                ) as response:
                    assert response.status_code == 200
                    async for block in response.aiter_bytes(_CHUNK):
                        got.append(len(block))
                        digest.update(block)
                download_s = time.perf_counter() - t0
                progress.cancel()
                assert digest.hexdigest() == expected, "downloaded bytes differ"
        finally:
            running.stop()
        copy_s = _disk_copy(source, root / "copia.pdf")
    finally:
        shutil.rmtree(root, ignore_errors=True)
        await database.drop()

    mb = size / 1e6
    copy_rate = mb / copy_s
    print(f"\nMachine: {machine()}; file {mb:.0f} MB\n")
    print("| what | MB/s | ÷ disk copy |")
    print("|---|---:|---:|")
    for label, seconds in (
        ("upload through the gateway (streamed multipart, SHA-256, fsync)", upload_s),
        ("download through the gateway (streamed, SHA-256 checked)", download_s),
        ("plain disk copy of the same file (copy + fsync)", copy_s),
    ):
        print(f"| {label} | {mb / seconds:,.0f} | {mb / seconds / copy_rate:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
