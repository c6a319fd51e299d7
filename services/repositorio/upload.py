"""Receiving an upload: a ``multipart/form-data`` body parsed as it arrives, its ``file``
part streamed into the blob store while it is hashed and counted.

The body is never held whole: it is fed to ``python-multipart``'s streaming
parser a piece at a time, and a piece is parsed only when the previous one's
events are used up, so memory stays at about one piece whatever the upload's size.

The ``metadatos`` part must come before ``file``: metadata are checked before a
single byte of the document is stored, so a refused upload leaves nothing behind.
The file stream ends (and the blob is committed) only once the whole body has
been read and found complete, for the same reason.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from services.common.errors import FieldError, PayloadTooLarge, ProblemError, Unprocessable
from services.common.inputs import check_json_text
from services.common.nti import resolver_formato
from services.repositorio.domain import (
    Contenido,
    filename_from_disposition,
    nombre_de_fichero,
)
from services.repositorio.schemas import MetadatosCreate
from services.repositorio.storage import BlobStore

__all__ = [
    "MAX_METADATOS_BYTES",
    "MultipartStream",
    "PartHeaders",
    "Subida",
    "UnsupportedMediaType",
    "receive_upload",
]

MAX_METADATOS_BYTES = 64 * 1024
_PIECE = 64 * 1024
# Room for the metadatos part, part headers and boundaries over the file's own limit.
_ENVELOPE_BYTES = MAX_METADATOS_BYTES + 64 * 1024


class UnsupportedMediaType(ProblemError):
    """415: the body is not ``multipart/form-data``."""

    status = 415
    slug = "tipo-no-admitido"


@dataclass(frozen=True)
class PartHeaders:
    """What a part says about itself before its data."""

    name: str
    filename: str | None
    content_type: str | None


@dataclass(frozen=True)
class Subida:
    """A received upload: its metadata (if sent) and the content already in the store."""

    metadatos: MetadatosCreate | None
    contenido: Contenido


class MultipartStream:
    """A ``multipart/form-data`` body read part after part, each part's data streamed."""

    def __init__(self, body: AsyncIterator[bytes], boundary: bytes, *, piece: int = _PIECE):
        self._body = body
        self._piece = piece
        # What is left of the last body chunk; a view, so cutting pieces copies nothing.
        self._pending = memoryview(b"")
        self._exhausted = False
        self._events: deque[tuple[str, object]] = deque()
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[str, str] = {}
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._headers.clear,
                "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
                "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": lambda d, s, e: self._events.append(("data", bytes(d[s:e]))),
                "on_part_end": lambda: self._events.append(("end", None)),
                "on_end": lambda: self._events.append(("done", None)),
            },
        )

    async def next_part(self) -> PartHeaders | None:
        """The headers of the next part (past what is left of this one); None at the end."""
        while True:
            kind, value = await self._next_event()
            if kind == "begin":
                assert isinstance(value, PartHeaders)
                return value
            if kind == "done":
                return None

    async def data(self) -> AsyncIterator[bytes]:
        """The current part's data, as it arrives (pieces of at most ``piece`` bytes)."""
        while True:
            kind, value = await self._next_event()
            if kind == "data":
                assert isinstance(value, bytes)
                if value:
                    yield value
            elif kind == "end":
                return
            else:
                raise ProblemError("El cuerpo multipart está mal formado.")

    async def read(self, limit: int, field: str) -> bytes:
        """The current part whole, refused (413 naming ``field``) past ``limit`` bytes."""
        out = bytearray()
        async for chunk in self.data():
            out += chunk
            if len(out) > limit:
                raise PayloadTooLarge(
                    f"La parte {field} supera el máximo de {limit} bytes.",
                    errors=[FieldError(field, f"máximo {limit} bytes")],
                )
        return bytes(out)

    async def _next_event(self) -> tuple[str, object]:
        while not self._events:
            if not self._pending:
                if self._exhausted:
                    raise ProblemError("El cuerpo multipart termina antes de su cierre.")
                try:
                    self._pending = memoryview(await anext(self._body))
                except StopAsyncIteration:
                    self._exhausted = True
                continue
            piece = bytes(self._pending[: self._piece])
            self._pending = self._pending[self._piece :]
            try:
                self._parser.write(piece)
            except MultipartParseError as exc:
                raise ProblemError(f"El cuerpo multipart está mal formado: {exc}") from None
        return self._events.popleft()

    def _header_end(self) -> None:
        name = self._field.decode("latin-1").strip().lower()
        self._headers[name] = _decode(bytes(self._value)).strip()
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        disposition = self._headers.get("content-disposition", "")
        # As bytes: the parser takes a str for Latin-1 only, and names may be UTF-8.
        _, options = parse_options_header(disposition.encode("utf-8"))
        name = _decode(options.get(b"name", b""))
        self._events.append(
            (
                "begin",
                PartHeaders(
                    name=name,
                    filename=filename_from_disposition(disposition),
                    content_type=self._headers.get("content-type"),
                ),
            )
        )


def _decode(raw: bytes) -> str:
    # Browsers send UTF-8 file names raw in the header; old clients may send Latin-1.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _boundary(content_type: str | None) -> bytes:
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType(
            "Envíe el documento como multipart/form-data con las partes metadatos y file."
        )
    return boundary


def _check_declared_length(content_length: str | None, max_bytes: int) -> None:
    """Refuses at once a body whose declared length cannot fit, before reading any of it."""
    if (
        content_length
        and content_length.isdigit()
        and int(content_length) > (max_bytes + _ENVELOPE_BYTES)
    ):
        raise _too_large(max_bytes)


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"El fichero supera el máximo de {max_bytes} bytes.",
        errors=[FieldError("file", f"máximo {max_bytes} bytes")],
    )


def parse_metadatos(raw: bytes) -> MetadatosCreate:
    """The ``metadatos`` part as ENI metadata; 422 naming each bad field (``metadatos.organo``)."""
    check_json_text(raw, field="metadatos")
    try:
        return MetadatosCreate.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("metadatos", *error["loc"])} for error in exc.errors()]
        ) from None


async def _file_chunks(form: MultipartStream, max_bytes: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in form.data():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        yield chunk
    if size == 0:
        raise Unprocessable("El fichero está vacío.", errors=[FieldError("file", "vacío")])
    trailing = await form.next_part()
    if trailing is not None:
        raise Unprocessable(
            f"Parte no esperada después de file: {trailing.name}",
            errors=[FieldError(trailing.name or "body", "file debe ser la última parte")],
        )


async def receive_upload(
    *,
    content_type: str | None,
    content_length: str | None,
    body: AsyncIterator[bytes],
    store: BlobStore,
    tenant: str,
    max_bytes: int,
    metadatos_required: bool,
    check: Callable[[MetadatosCreate], None] | None = None,
) -> Subida:
    """Reads ``metadatos`` then streams ``file`` into ``store``; answers what was stored.

    ``check`` may refuse the metadata (raising a problem) before the file is read.
    """
    form = MultipartStream(body, _boundary(content_type))
    _check_declared_length(content_length, max_bytes)
    raw_metadatos: bytes | None = None
    part = await form.next_part()
    while part is not None and part.name != "file":
        if part.name != "metadatos" or raw_metadatos is not None:
            raise Unprocessable(
                f"Parte no esperada: {part.name}",
                errors=[FieldError(part.name or "body", "se esperan las partes metadatos y file")],
            )
        raw_metadatos = await form.read(MAX_METADATOS_BYTES, "metadatos")
        part = await form.next_part()
    if raw_metadatos is None and metadatos_required:
        where = "debe ir antes que file" if part is not None else "falta"
        raise Unprocessable(
            "Faltan los metadatos ENI del documento.", errors=[FieldError("metadatos", where)]
        )
    metadatos = parse_metadatos(raw_metadatos) if raw_metadatos is not None else None
    if metadatos is not None and check is not None:
        check(metadatos)
    if part is None:
        raise Unprocessable("Falta el fichero.", errors=[FieldError("file", "falta")])
    try:
        formato, mime = resolver_formato(part.content_type, part.filename)
    except ValueError as exc:
        raise Unprocessable(str(exc), errors=[FieldError("file", str(exc))]) from None
    stored = await store.put(tenant, _file_chunks(form, max_bytes))
    return Subida(
        metadatos,
        Contenido(
            sha256=stored.sha256,
            tamano=stored.size,
            mime=mime,
            nombre=nombre_de_fichero(part.filename, formato),
            formato=formato.nombre,
        ),
    )
