"""One behaviour suite for the BlobStore interface, run against every backend: files on
disk, and S3 on a real S3-speaking server (moto in server mode) through the minio SDK."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from minio import Minio
from moto.server import ThreadedMotoServer

from services.common.settings import load_settings
from services.repositorio.storage import (
    BlobCorrupted,
    BlobNotFound,
    BlobStore,
    ByteRange,
    blob_key,
    build_blob_store,
)
from services.repositorio.storage.filesystem import FilesystemBlobStore
from services.repositorio.storage.s3 import S3BlobStore, minio_client

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
S3_MIN_PART = 5 * MIB


@dataclass
class Backend:
    """A store under test and what the suite needs to look behind its back."""

    store: BlobStore
    keys: Callable[[], list[str]]  # every stored key, temporary ones included
    tamper: Callable[[str, bytes], None]  # overwrite the bytes stored under a key


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3-speaking server (moto) on a free local port, for the module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


def _filesystem(root: Path) -> Backend:
    store = FilesystemBlobStore(root)

    def keys() -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    def tamper(key: str, data: bytes) -> None:
        path = root / key
        os.chmod(path, 0o644)  # blobs are read-only; the attacker is not
        path.write_bytes(data)

    return Backend(store, keys, tamper)


def _s3(endpoint: str) -> Backend:
    client = Minio(endpoint, access_key="test", secret_key="test-secret", secure=False)
    bucket = f"documentos-{uuid.uuid4().hex[:12]}"
    store = S3BlobStore(client, bucket, part_size=S3_MIN_PART)

    def keys() -> list[str]:
        if not client.bucket_exists(bucket):
            return []
        return sorted(str(o.object_name) for o in client.list_objects(bucket, recursive=True))

    def tamper(key: str, data: bytes) -> None:
        client.put_object(bucket, key, io.BytesIO(data), len(data))

    return Backend(store, keys, tamper)


@pytest.fixture(params=["filesystem", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each test runs once per backend, on an empty store."""
    if request.param == "filesystem":
        return _filesystem(tmp_path / "documentos")
    return _s3(request.getfixturevalue("s3_endpoint"))


async def stream(data: bytes, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    """``data`` as an async stream of ``chunk``-sized pieces."""
    for start in range(0, len(data), chunk):
        yield data[start : start + chunk]


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_put_answers_hash_and_size_and_get_gives_the_same_bytes(backend: Backend) -> None:
    data = os.urandom(300_000)
    stored = await backend.store.put("03014", stream(data))
    assert stored == (sha(data), len(data))
    assert await read_all(await backend.store.get("03014", stored.sha256)) == data
    assert backend.keys() == [blob_key("03014", sha(data))]
    assert blob_key("03014", sha(data)) == f"03014/{sha(data)[:2]}/{sha(data)}"


async def test_chunking_does_not_change_what_is_stored(backend: Backend) -> None:
    data = os.urandom(10_000)

    async def ragged() -> AsyncIterator[bytes]:
        yield b""
        yield data[:1]
        yield data[1:7_000]
        yield b""
        yield data[7_000:]

    first = await backend.store.put("03014", ragged())
    second = await backend.store.put("03014", stream(data, chunk=333))
    assert first == second == (sha(data), len(data))


async def test_identical_content_is_stored_once_per_tenant(backend: Backend) -> None:
    data = b"%PDF-1.7 the same resolution twice"
    one = await backend.store.put("03014", stream(data))
    two = await backend.store.put("03014", stream(data))
    other = await backend.store.put("46250", stream(data))
    assert one == two == other
    assert backend.keys() == [blob_key("03014", one.sha256), blob_key("46250", one.sha256)]


async def test_a_tenant_cannot_read_another_tenants_blob(backend: Backend) -> None:
    stored = await backend.store.put("03014", stream(b"only for 03014"))
    assert await backend.store.exists("03014", stored.sha256)
    assert not await backend.store.exists("46250", stored.sha256)
    with pytest.raises(BlobNotFound):
        await backend.store.get("46250", stored.sha256)


async def test_unknown_blob_is_not_found_before_any_byte_is_read(backend: Backend) -> None:
    missing = sha(b"never stored")
    assert not await backend.store.exists("03014", missing)
    with pytest.raises(BlobNotFound):
        await backend.store.get("03014", missing)


@pytest.mark.parametrize(
    ("first", "last"),
    [(0, 0), (0, 99), (100, 199_999), (65_530, 65_545), (199_999, 199_999), (150_000, 199_999)],
)
async def test_byte_ranges_are_inclusive_and_exact(backend: Backend, first: int, last: int) -> None:
    data = os.urandom(200_000)
    stored = await backend.store.put("03014", stream(data))
    chunks = await backend.store.get("03014", stored.sha256, byte_range=ByteRange(first, last))
    assert await read_all(chunks) == data[first : last + 1]


async def test_a_failing_stream_stores_nothing_and_its_error_propagates(backend: Backend) -> None:
    class Refused(Exception):
        pass

    async def failing() -> AsyncIterator[bytes]:
        yield os.urandom(S3_MIN_PART)
        yield os.urandom(S3_MIN_PART)  # past one part: S3 has a multipart upload open
        raise Refused("demasiado grande")

    with pytest.raises(Refused):
        await backend.store.put("03014", failing())
    assert backend.keys() == []


async def test_a_large_blob_round_trips_through_several_parts(backend: Backend) -> None:
    data = os.urandom(2 * S3_MIN_PART + 12_345)  # three multipart parts on S3
    stored = await backend.store.put("03014", stream(data, chunk=256 * 1024))
    assert stored == (sha(data), len(data))
    assert await read_all(await backend.store.get("03014", stored.sha256)) == data
    assert backend.keys() == [blob_key("03014", stored.sha256)]


@pytest.mark.parametrize(
    "tampering",
    [
        pytest.param(lambda d: d[:-1] + bytes([d[-1] ^ 0x01]), id="same-size"),
        pytest.param(lambda d: d + b"\n%% added", id="appended"),
        pytest.param(lambda d: d[: len(d) // 2], id="truncated"),
    ],
)
async def test_a_corrupted_blob_is_refused_on_a_full_read(
    backend: Backend, tampering: Callable[[bytes], bytes]
) -> None:
    data = os.urandom(200_000)
    stored = await backend.store.put("03014", stream(data))
    backend.tamper(blob_key("03014", stored.sha256), tampering(data))
    received = bytearray()
    with pytest.raises(BlobCorrupted, match=stored.sha256):
        async for chunk in await backend.store.get("03014", stored.sha256):
            received += chunk
    # The final chunk is withheld: a corrupted blob is never handed out whole.
    assert len(received) < len(tampering(data))


async def test_tenant_must_be_a_single_safe_key_segment(backend: Backend) -> None:
    with pytest.raises(ValueError):
        await backend.store.put("../etc", stream(b"x"))
    with pytest.raises(ValueError):
        await backend.store.get("03014", "../../etc/passwd")
    assert backend.keys() == []


def test_settings_choose_the_backend(tmp_path: Path, s3_endpoint: str) -> None:
    files = build_blob_store(load_settings(data_dir=tmp_path, s3_endpoint=None))
    assert isinstance(files, FilesystemBlobStore)
    assert files.root == tmp_path / "documentos"
    s3 = build_blob_store(
        load_settings(
            s3_endpoint=s3_endpoint,
            s3_access_key="k",
            s3_secret_key="s",
            s3_secure=False,
            s3_bucket="cubo",
        )
    )
    assert isinstance(s3, S3BlobStore)
    assert s3.bucket == "cubo"
    with pytest.raises(ValueError, match="host"):
        minio_client(load_settings(s3_endpoint="https://s3.example.org"))
