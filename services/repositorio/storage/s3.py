"""Blobs as objects in an S3 bucket (MinIO, Ceph, AWS...), through the minio SDK.

The SDK is synchronous, so every call runs in a worker thread. An upload streams
into a temporary object under ``tmp/`` (multipart once it passes one part size;
the SDK aborts the multipart upload if the stream fails), is then copied
server-side to its final key and the temporary object removed. Objects left
under ``tmp/`` by a crashed process hold no committed blob: a bucket lifecycle
rule on that prefix may expire them.

Test servers (and some S3 implementations) do not check payload checksums, so a
full read is verified against the blob's name here, as in every backend.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, BinaryIO, cast

from minio import Minio
from minio.commonconfig import CopySource
from minio.error import S3Error

from services.common.settings import Settings
from services.repositorio.storage.base import (
    CHUNK_SIZE,
    BlobNotFound,
    BlobStore,
    BlobStoreError,
    ByteRange,
    StoredBlob,
    blob_key,
    tenant_prefix,
    verified,
)

__all__ = ["S3BlobStore", "minio_client"]

_log = logging.getLogger("consistorio.repositorio.storage")
_MISSING = ("NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound")
# S3 refuses multipart parts under 5 MiB (but the last); an upload holds about two parts
# in memory, so 8 MiB keeps that small while a 50 MiB document needs only seven parts.
DEFAULT_PART_SIZE = 8 * 1024 * 1024


def minio_client(settings: Settings) -> Minio:
    """The SDK client of the configured endpoint (``S3_ENDPOINT`` is ``host[:port]``)."""
    endpoint = settings.s3_endpoint
    if not endpoint:
        raise ValueError("S3_ENDPOINT no está configurado")
    if "://" in endpoint or "/" in endpoint:
        raise ValueError(
            f"S3_ENDPOINT debe ser host[:puerto], sin esquema ni ruta (https con S3_SECURE): "
            f"{endpoint!r}"
        )
    secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
    return Minio(
        endpoint,
        access_key=settings.s3_access_key,
        secret_key=secret,
        secure=settings.s3_secure,
    )


class S3BlobStore(BlobStore):
    """Blobs as objects ``<tenant>/<sha256[:2]>/<sha256>`` in one bucket."""

    def __init__(self, client: Minio, bucket: str, *, part_size: int = DEFAULT_PART_SIZE) -> None:
        self.client = client
        self.bucket = bucket
        self._part_size = part_size
        self._bucket_ready = False

    async def put(self, tenant: str, chunks: AsyncIterable[bytes]) -> StoredBlob:
        """Streams ``chunks`` into a temporary object, then copies it to its hash's key."""
        await self._ensure_bucket()
        temp_key = f"tmp/{tenant_prefix(tenant)}/{uuid.uuid4().hex}"
        reader = _HashingReader(chunks, asyncio.get_running_loop())
        # One part in flight: memory stays at one part size whatever the document's size.
        await asyncio.to_thread(
            self.client.put_object,
            self.bucket,
            temp_key,
            cast(BinaryIO, reader),  # the SDK only calls read()
            -1,
            part_size=self._part_size,
            num_parallel_uploads=1,
        )
        stored = StoredBlob(reader.digest.hexdigest(), reader.size)
        try:
            final_key = blob_key(tenant, stored.sha256)
            if not await self._key_exists(final_key):
                await asyncio.to_thread(
                    self.client.copy_object,
                    self.bucket,
                    final_key,
                    CopySource(self.bucket, temp_key),
                )
        finally:
            await self._remove_temp(temp_key)
        return stored

    async def get(
        self, tenant: str, sha256: str, *, byte_range: ByteRange | None = None
    ) -> AsyncIterator[bytes]:
        """Opens the object; full reads are verified against the hash as they stream."""
        key = blob_key(tenant, sha256)
        offset, length = (byte_range.first, byte_range.length) if byte_range else (0, 0)
        try:
            response = await asyncio.to_thread(
                self.client.get_object, self.bucket, key, offset, length
            )
        except S3Error as exc:
            if exc.code in _MISSING:
                raise BlobNotFound(f"No existe el blob {key}.") from None
            raise BlobStoreError(f"S3 no entregó {key}: {exc.code}") from exc
        if byte_range is not None:
            return _read(response)
        return verified(_read(response), sha256, key)

    async def exists(self, tenant: str, sha256: str) -> bool:
        """True when the bucket holds the blob's object."""
        return await self._key_exists(blob_key(tenant, sha256))

    async def _key_exists(self, key: str) -> bool:
        try:
            await asyncio.to_thread(self.client.stat_object, self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                return False
            raise
        return True

    async def _ensure_bucket(self) -> None:
        # Production buckets are provisioned; creating a missing one helps dev and tests.
        if self._bucket_ready:
            return
        if not await asyncio.to_thread(self.client.bucket_exists, self.bucket):
            try:
                await asyncio.to_thread(self.client.make_bucket, self.bucket)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        self._bucket_ready = True

    async def _remove_temp(self, key: str) -> None:
        try:
            await asyncio.to_thread(self.client.remove_object, self.bucket, key)
        except S3Error as exc:
            # Harmless: a stray temporary object holds no committed blob.
            _log.warning("could not remove temporary object %s: %s", key, exc.code)


class _HashingReader:
    """A blocking file-like view of an async byte stream, for the SDK's worker thread.

    Each ``read`` asks the event loop for the next chunk, so the upload pulls the
    request body at the pace S3 accepts it; an error raised by the stream comes
    out of ``read``, where the SDK aborts its multipart upload and re-raises it.
    """

    def __init__(self, chunks: AsyncIterable[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._chunks = aiter(chunks)
        self._loop = loop
        self._pending = bytearray()
        self._done = False
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (the SDK asks for a part at a time); ``b""`` at the end.

        It fills the whole request when it can: the SDK joins short reads by
        concatenating bytes, which gets quadratic on many small pieces.
        """
        while not self._done and (size < 0 or len(self._pending) < size):
            chunk = self._next_chunk()
            if chunk is None:
                self._done = True
                break
            self.digest.update(chunk)
            self.size += len(chunk)
            self._pending += chunk
        cut = len(self._pending) if size < 0 else min(size, len(self._pending))
        data = bytes(self._pending[:cut])
        del self._pending[:cut]
        return data

    def _next_chunk(self) -> bytes | None:
        future = asyncio.run_coroutine_threadsafe(_next_or_none(self._chunks), self._loop)
        return future.result()


async def _next_or_none(chunks: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return None


async def _read(response: Any) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(response.read, CHUNK_SIZE):
            yield chunk
    finally:
        await asyncio.to_thread(_release, response)


def _release(response: Any) -> None:
    response.close()
    response.release_conn()
