"""Serving a version's content over HTTP: validators, ranges and a streamed body.

The ETag is the content's SHA-256, so it is strong and never changes for a
version; ``If-None-Match`` answers 304, a single ``Range`` 206 (or 416). The
document is offered as an attachment: a council's HTML or SVG must not run as a
page of the API's origin. Only an issued PDF, served to the public by its CSV,
is shown inline, in the browser's PDF viewer.
"""

from __future__ import annotations

from fastapi.responses import Response, StreamingResponse

from services.common.errors import ProblemError
from services.repositorio import domain
from services.repositorio.schemas import VersionRead
from services.repositorio.storage import BlobStore, ByteRange

__all__ = ["RangeNotSatisfiable", "content_response"]


class RangeNotSatisfiable(ProblemError):
    """416: the requested range lies outside the content."""

    status = 416
    slug = "rango-no-satisfacible"


async def content_response(
    store: BlobStore,
    tenant: str,
    version: VersionRead,
    *,
    range_header: str | None,
    if_none_match: str | None,
    if_range: str | None,
    inline: bool = False,
) -> Response:
    """The HTTP answer for a download of ``version``: 304, 206 or 200 with a streamed body.

    ``inline`` is for PDFs only (the caller makes sure), shown in the browser.
    """
    etag = domain.etag_de(version.sha256)
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        # Tenant data: no shared cache may keep it; browsers revalidate with the ETag.
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if domain.if_none_match_coincide(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    headers["Content-Type"] = version.mime
    headers["Content-Disposition"] = domain.content_disposition(version.nombre, inline=inline)
    # If-Range names the content the client holds a part of; another content means start over.
    wanted = range_header if if_range is None or if_range.strip() == etag else None
    try:
        rango = domain.parse_range(wanted, version.tamano)
    except domain.RangoNoSatisfacible as exc:
        raise RangeNotSatisfiable(
            f"Rango no satisfacible: {exc}.",
            headers={"Content-Range": f"bytes */{version.tamano}"},
        ) from None
    if rango is None:
        chunks = await store.get(tenant, version.sha256)
        headers["Content-Length"] = str(version.tamano)
        return StreamingResponse(chunks, status_code=200, headers=headers)
    first, last = rango
    chunks = await store.get(tenant, version.sha256, byte_range=ByteRange(first, last))
    headers["Content-Range"] = f"bytes {first}-{last}/{version.tamano}"
    headers["Content-Length"] = str(last - first + 1)
    return StreamingResponse(chunks, status_code=206, headers=headers)
