"""The blob store interface: content-addressed, append-only storage of document bytes.

Hierarchy::

    BlobStore                   the interface the repositorio uses
     ├── FilesystemBlobStore    files under <data_dir>/documentos (filesystem.py)
     └── S3BlobStore            objects in an S3 bucket, via the minio SDK (s3.py)

    BlobStoreError              what a backend raises, besides the stream's own errors
     ├── BlobNotFound           no blob with that hash for that tenant
     └── BlobCorrupted          the bytes read back do not hash to their name

A blob is named by the SHA-256 of its bytes under its tenant
(``<tenant>/<sha256[:2]>/<sha256>``), so the same content is stored once per
tenant and a name can be checked against what it holds. ``put`` writes to a
temporary object first and commits it under its final key only once the whole
stream has been read, so a failed or refused upload leaves no blob behind.
There is no delete: documents are evidence.
"""

from __future__ import annotations

import hashlib
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator
from typing import NamedTuple

__all__ = [
    "BlobCorrupted",
    "BlobNotFound",
    "BlobStore",
    "BlobStoreError",
    "ByteRange",
    "StoredBlob",
    "blob_key",
    "tenant_prefix",
    "verified",
]

_log = logging.getLogger("consistorio.repositorio.storage")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# A tenant is an INE code today; anything that is a safe single path segment is accepted.
_TENANT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

CHUNK_SIZE = 64 * 1024


class BlobStoreError(Exception):
    """A blob store could not do what was asked."""


class BlobNotFound(BlobStoreError):
    """No blob with that hash exists for that tenant."""


class BlobCorrupted(BlobStoreError):
    """The stored bytes do not hash to the blob's name: the object was altered or damaged."""


class StoredBlob(NamedTuple):
    """What ``put`` stored: the content's SHA-256 (hex) and its size in bytes."""

    sha256: str
    size: int


class ByteRange(NamedTuple):
    """An inclusive byte range, as HTTP ``Range`` counts it (``first`` ≤ ``last``)."""

    first: int
    last: int

    @property
    def length(self) -> int:
        """How many bytes the range covers."""
        return self.last - self.first + 1


def tenant_prefix(tenant: str) -> str:
    """The tenant's first key segment; refuses anything that could escape it (``..``, ``/``)."""
    if not _TENANT.match(tenant):
        raise ValueError(f"tenant no válido para una clave de blob: {tenant!r}")
    return tenant


def blob_key(tenant: str, sha256: str) -> str:
    """The key of a blob: ``<tenant>/<sha256[:2]>/<sha256>`` (two-char shards keep dirs small)."""
    if not _SHA256.match(sha256):
        raise ValueError(f"sha256 no válido: {sha256!r}")
    return f"{tenant_prefix(tenant)}/{sha256[:2]}/{sha256}"


async def verified(chunks: AsyncIterator[bytes], sha256: str, key: str) -> AsyncIterator[bytes]:
    """Passes ``chunks`` through while hashing them; refuses content that is not ``sha256``.

    The last chunk is held back until the hash is known, so a corrupted blob is
    never handed out whole: the reader gets :class:`BlobCorrupted` instead of
    its final bytes (an HTTP download is cut short, never completed).
    """
    digest = hashlib.sha256()
    pending: bytes | None = None
    async for chunk in chunks:
        if not chunk:
            continue
        digest.update(chunk)
        if pending is not None:
            yield pending
        pending = chunk
    actual = digest.hexdigest()
    if actual != sha256:
        _log.error("blob %s is corrupted: its bytes hash to %s", key, actual)
        raise BlobCorrupted(
            f"El contenido almacenado en {key} está dañado o alterado: su SHA-256 es {actual}."
        )
    if pending is not None:
        yield pending


class BlobStore(ABC):
    """Content-addressed storage of one installation's document bytes, per tenant."""

    @abstractmethod
    async def put(self, tenant: str, chunks: AsyncIterable[bytes]) -> StoredBlob:
        """Stores the bytes of ``chunks`` and answers their SHA-256 and size.

        The bytes go to a temporary object while they are hashed; once the stream
        ends the object is committed under :func:`blob_key`, or dropped when a blob
        with that hash already exists (same content, stored once). If the stream
        raises, the temporary object is removed and the exception propagates.
        """

    @abstractmethod
    async def get(
        self, tenant: str, sha256: str, *, byte_range: ByteRange | None = None
    ) -> AsyncIterator[bytes]:
        """Opens a blob for reading and answers an iterator over its bytes (or a range of them).

        Raises :class:`BlobNotFound` here, before any byte is read. A full read is
        checked against ``sha256`` as it goes (see :func:`verified`); a ranged
        read cannot be, and is not.
        """

    @abstractmethod
    async def exists(self, tenant: str, sha256: str) -> bool:
        """True when the tenant holds a blob with this hash."""
