"""The HTTP edge of anexos: a POST /asientos body that cannot fit them is refused unread."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.errors import FieldError, PayloadTooLarge, problem_response


class LimiteCuerpo:
    """ASGI middleware: refuses (413) a request body larger than ``max_bytes`` on one route.

    FastAPI reads and parses a JSON body whole before any dependency runs; this reads
    it first, counting, and answers 413 as soon as the declared Content-Length or the
    bytes received pass the limit, so an oversize asiento is never held or parsed.
    """

    def __init__(self, app: ASGIApp, *, method: str, path: str, max_bytes: int) -> None:
        self.app = app
        self.method = method.upper()
        self.path = path.rstrip("/")
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Passes other requests through; reads this route's body within the limit."""
        if (
            scope["type"] != "http"
            or scope["method"] != self.method
            or scope["path"].rstrip("/") != self.path
        ):
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        partes: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away: let the app see it as it would have.
                await self.app(scope, _replay(b"", message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            partes.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(partes), None, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            f"La petición supera el máximo de {self.max_bytes} bytes: los anexos de un "
            "asiento no pueden sumar tanto.",
            slug=PayloadTooLarge.slug,
            instance=scope["path"],
            errors=[FieldError("anexos", f"el cuerpo admite como máximo {self.max_bytes} bytes")],
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _replay(body: bytes, then: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that gives the body already read, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            if then is not None:
                return then
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
