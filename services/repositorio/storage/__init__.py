"""Where the repositorio keeps document bytes: one interface, a filesystem and an S3 backend."""

from __future__ import annotations

from services.common.settings import Settings
from services.repositorio.storage.base import (
    BlobCorrupted,
    BlobNotFound,
    BlobStore,
    BlobStoreError,
    ByteRange,
    StoredBlob,
    blob_key,
)

__all__ = [
    "BlobCorrupted",
    "BlobNotFound",
    "BlobStore",
    "BlobStoreError",
    "ByteRange",
    "StoredBlob",
    "blob_key",
    "build_blob_store",
]


def build_blob_store(settings: Settings) -> BlobStore:
    """S3 when ``S3_ENDPOINT`` is set, else files under ``<data_dir>/documentos``."""
    if settings.s3_endpoint:
        from services.repositorio.storage.s3 import S3BlobStore, minio_client

        return S3BlobStore(minio_client(settings), settings.s3_bucket)
    from services.repositorio.storage.filesystem import FilesystemBlobStore

    return FilesystemBlobStore(settings.data_dir / "documentos")
