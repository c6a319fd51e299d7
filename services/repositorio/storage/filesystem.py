"""Blobs as files under one directory (``<data_dir>/documentos``), for embedded mode and
installations without object storage.

A write goes to a temporary file in the tenant's directory, is fsync'ed, renamed
to its final name and the directories are fsync'ed: after a crash a blob is
either whole under its name or absent, never half-written. Blob files are made
read-only, since nothing should ever rewrite evidence.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO

from services.repositorio.storage.base import (
    CHUNK_SIZE,
    BlobNotFound,
    BlobStore,
    ByteRange,
    StoredBlob,
    blob_key,
    tenant_prefix,
    verified,
)

__all__ = ["FilesystemBlobStore"]

_READ_ONLY = 0o444


class FilesystemBlobStore(BlobStore):
    """Blobs as files: ``<root>/<tenant>/<sha256[:2]>/<sha256>``."""

    def __init__(self, root: Path, *, write_buffer: int = 1024 * 1024) -> None:
        self.root = root
        # Small incoming chunks are gathered so each thread hop writes a useful amount.
        self._write_buffer = write_buffer

    def path_of(self, tenant: str, sha256: str) -> Path:
        """Where a blob lives on disk (operators and tests read it; code uses ``get``)."""
        return self.root / blob_key(tenant, sha256)

    async def put(self, tenant: str, chunks: AsyncIterable[bytes]) -> StoredBlob:
        """Streams ``chunks`` into a temporary file, then renames it to its hash."""
        tenant_dir = self.root / tenant_prefix(tenant)
        await asyncio.to_thread(tenant_dir.mkdir, parents=True, exist_ok=True)
        temp = tenant_dir / f".tmp-{uuid.uuid4().hex}"
        handle: BinaryIO = await asyncio.to_thread(_open_exclusive, temp)
        digest = hashlib.sha256()
        size = 0
        try:
            buffer = bytearray()
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) >= self._write_buffer:
                    await asyncio.to_thread(_write_hashed, handle, digest, buffer)
                    size += len(buffer)
                    buffer.clear()
            if buffer:
                await asyncio.to_thread(_write_hashed, handle, digest, buffer)
                size += len(buffer)
            await asyncio.to_thread(_sync_and_close, handle)
            sha256 = digest.hexdigest()
            await asyncio.to_thread(_commit, temp, self.path_of(tenant, sha256))
        except BaseException:
            await asyncio.to_thread(_discard, handle, temp)
            raise
        return StoredBlob(sha256, size)

    async def get(
        self, tenant: str, sha256: str, *, byte_range: ByteRange | None = None
    ) -> AsyncIterator[bytes]:
        """Opens the blob's file; full reads are verified against the hash as they stream."""
        path = self.path_of(tenant, sha256)
        try:
            handle: BinaryIO = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise BlobNotFound(f"No existe el blob {blob_key(tenant, sha256)}.") from None
        if byte_range is not None:
            return _read(handle, byte_range.first, byte_range.length)
        return verified(_read(handle, 0, None), sha256, blob_key(tenant, sha256))

    async def exists(self, tenant: str, sha256: str) -> bool:
        """True when the blob's file is there."""
        return await asyncio.to_thread(self.path_of(tenant, sha256).is_file)


async def _read(handle: BinaryIO, offset: int, length: int | None) -> AsyncIterator[bytes]:
    try:
        if offset:
            await asyncio.to_thread(handle.seek, offset)
        remaining = length
        while remaining is None or remaining > 0:
            want = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
            chunk = await asyncio.to_thread(handle.read, want)
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def _open_exclusive(path: Path) -> BinaryIO:
    return path.open("xb")


def _write_hashed(handle: BinaryIO, digest: hashlib._Hash, data: bytearray) -> None:
    digest.update(data)
    handle.write(data)


def _sync_and_close(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit(temp: Path, final: Path) -> None:
    """Moves a complete temporary file to its final name, durably; keeps an existing blob."""
    if final.exists():
        # Same hash, same content: the blob is already stored once for this tenant.
        temp.unlink()
        return
    final.parent.mkdir(exist_ok=True)
    os.chmod(temp, _READ_ONLY)
    os.replace(temp, final)
    # The shard dir gains the entry, the tenant dir loses the temp one (and may gain the shard).
    _fsync_dir(final.parent)
    _fsync_dir(temp.parent)


def _discard(handle: BinaryIO, temp: Path) -> None:
    handle.close()
    temp.unlink(missing_ok=True)
