"""How every Consistorio process serves HTTP: bounded headers, bounded slow clients,
and client addresses taken from ``X-Forwarded-For`` only behind a trusted proxy.

One slow or oversized request must not stall a process that serves many. Two parts,
because some limits can only be enforced where bytes are read:

* :func:`server_config` builds the uvicorn configuration. It serves with h11 (pure
  Python, but it bounds the header block, which httptools does not) through
  :class:`BoundedH11Protocol`, which answers an oversized header block with a 431
  problem and closes a connection whose request headers do not arrive within
  ``http_header_timeout_seconds`` (408). ``X-Forwarded-For`` is honoured only when
  the peer is in ``FORWARDED_ALLOW_IPS`` (empty by default: not even loopback).
* :class:`RequestLimitsMiddleware`, in every app, refuses more than
  ``http_max_headers`` header fields (431) and answers 408 to a client that stops
  sending its body for ``http_body_timeout_seconds``. It also works in process
  (tests, any ASGI server).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from services.common.errors import PROBLEM_JSON
from services.common.settings import Settings

__all__ = ["BoundedH11Protocol", "RequestLimitsMiddleware", "server_config"]

_TYPE_BASE = "https://consistorio.es/problemas/"


def _problem_bytes(status: int, title: str, detail: str, slug: str) -> bytes:
    body = {"type": _TYPE_BASE + slug, "title": title, "status": status, "detail": detail}
    return json.dumps(body, ensure_ascii=False).encode()


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a 431 for oversized headers and a header timeout."""

    header_timeout_seconds: float = 10.0
    max_header_bytes: int = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self.conn.their_state is h11.IDLE:
            # The first bytes of a new request on a kept-alive connection.
            self._arm_header_timer()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_timer()

    def send_400_response(self, msg: str) -> None:
        buffered, _ = self.conn.trailing_data
        if len(buffered) > self.max_header_bytes:
            self._answer_and_close(
                431,
                "Request Header Fields Too Large",
                f"Las cabeceras superan el máximo de {self.max_header_bytes} bytes.",
                "cabeceras-demasiado-grandes",
            )
            return
        self._answer_and_close(
            400, "Bad Request", "La petición HTTP está mal formada.", "peticion-incorrecta"
        )

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_seconds, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if not self.conn.trailing_data[0]:
            # Nothing sent at all: just hang up, there is no request to answer.
            self.transport.close()
            return
        self._answer_and_close(
            408,
            "Request Timeout",
            f"Las cabeceras no han llegado en {self.header_timeout_seconds:g} s.",
            "peticion-lenta",
        )

    def _answer_and_close(self, status: int, reason: str, detail: str, slug: str) -> None:
        body = _problem_bytes(status, reason, detail, slug)
        # Written by hand: the h11 connection is in an error state (or mid-request).
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            f"content-type: {PROBLEM_JSON}\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        ).encode("ascii")
        self.transport.write(head + body)
        self.transport.close()


def _protocol(settings: Settings) -> type[BoundedH11Protocol]:
    return type(
        "ConfiguredH11Protocol",
        (BoundedH11Protocol,),
        {
            "header_timeout_seconds": settings.http_header_timeout_seconds,
            "max_header_bytes": settings.http_max_header_bytes,
        },
    )


def server_config(
    app: ASGIApp,
    settings: Settings,
    *,
    trusted_proxies: list[str] | None = None,
    log_level: str | None = None,
) -> uvicorn.Config:
    """The uvicorn configuration of one Consistorio server (gateway or service).

    ``trusted_proxies`` overrides ``FORWARDED_ALLOW_IPS`` (``up`` trusts its own
    gateway, on loopback, in front of the services it runs).
    """
    trusted = settings.forwarded_allow_ips if trusted_proxies is None else trusted_proxies
    return uvicorn.Config(
        app,
        http=_protocol(settings),
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=list(trusted),
        timeout_keep_alive=5,
        log_config=None,
        log_level=log_level or settings.log_level.lower(),
        access_log=False,
    )


def _keep_open(start: Message) -> Message:
    """An early answer (a 413 before the body is read) without ``Connection: close``.

    Closing a socket with unread bytes in it makes the kernel reset the connection,
    and the reset destroys the answer on its way: the gateway in front would see a
    broken connection and say 502 instead of passing the 413 on. Kept open, the
    server reads and discards the rest of the body (the gateway bounds its size) and
    the answer arrives whole.
    """
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"connection"]
    return {**start, "headers": headers}


class RequestLimitsMiddleware:
    """Pure ASGI: too many or too large header fields is a 431; a stalled body is a 408."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_headers: int,
        max_header_bytes: int,
        body_timeout_seconds: float,
    ) -> None:
        self.app = app
        self.max_headers = max_headers
        self.max_header_bytes = max_header_bytes
        self.body_timeout = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        size = sum(len(name) + len(value) + 4 for name, value in headers)
        if len(headers) > self.max_headers or size > self.max_header_bytes:
            # The server stops an endless header block at the same size as it
            # arrives; one that came whole in a single read is caught here.
            await self._answer(
                send,
                431,
                "Request Header Fields Too Large",
                f"La petición trae más de {self.max_headers} cabeceras o más de "
                f"{self.max_header_bytes} bytes de cabeceras.",
                "cabeceras-demasiado-grandes",
            )
            return
        started = False
        timed_out = False
        body_done = False

        async def bounded_receive() -> Message:
            nonlocal timed_out, body_done
            if timed_out:
                return {"type": "http.disconnect"}
            if body_done or started:
                # Past the body, receive() waits for a disconnect during a long
                # answer (a download): that wait is not the client's slowness.
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except TimeoutError:
                timed_out = True
                if not started:
                    await self._answer(
                        send,
                        408,
                        "Request Timeout",
                        f"El cuerpo de la petición no ha llegado en {self.body_timeout:g} s.",
                        "peticion-lenta",
                    )
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if timed_out:
                return  # the 408 is the answer; the app's late one goes nowhere
            if message["type"] == "http.response.start":
                started = True
                if not body_done:
                    message = _keep_open(message)
            await send(message)

        await self.app(scope, bounded_receive, tracked_send)

    @staticmethod
    async def _answer(send: Send, status: int, title: str, detail: str, slug: str) -> None:
        body = _problem_bytes(status, title, detail, slug)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
