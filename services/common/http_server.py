"""How every Consistorio process serves HTTP: bounded headers, bounded slow clients,
and client addresses taken from ``X-Forwarded-For`` only behind a trusted proxy.

One slow or oversized request must not stall a process that serves many. Two parts,
because some limits can only be enforced where bytes are read:

* :func:`server_config` builds the uvicorn configuration. It serves with httptools
  (llhttp, in C: h11, in pure Python, cost about 0.3 ms more CPU a request) through
  :class:`BoundedHttpToolsProtocol`, which adds the bounds llhttp lacks: it answers
  an oversized header block with a 431 problem and closes a connection whose request
  headers do not arrive within ``http_header_timeout_seconds`` (408); trailer fields
  past the same size end the connection. ``X-Forwarded-For`` is honoured only when
  the peer is in ``FORWARDED_ALLOW_IPS`` (empty by default: not even loopback).
  httptools is a dependency of its own (the gateway's client parses with it too), so
  there is no h11 fallback.
* :class:`RequestLimitsMiddleware`, in every app, refuses more than
  ``http_max_headers`` header fields (431) and answers 408 to a client that stops
  sending its body for ``http_body_timeout_seconds``. It also works in process
  (tests, any ASGI server).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.common.errors import PROBLEM_JSON
from services.common.settings import Settings

__all__ = ["BoundedHttpToolsProtocol", "RequestLimitsMiddleware", "server_config"]

_TYPE_BASE = "https://consistorio.es/problemas/"


def _problem_bytes(status: int, title: str, detail: str, slug: str) -> bytes:
    body = {"type": _TYPE_BASE + slug, "title": title, "status": status, "detail": detail}
    return json.dumps(body, ensure_ascii=False).encode()


def _send_without_delay(transport: asyncio.BaseTransport) -> None:
    """Turns Nagle's algorithm off on a TCP connection the server accepted.

    A response leaves as two writes, its head and then its body. With Nagle on, the
    kernel holds the body until the client acknowledges the head, and a client on a
    kept-alive connection delays that acknowledgement (40 ms on Linux): every request
    after the first would wait for it. asyncio's loop sets TCP_NODELAY only on sockets
    made with ``IPPROTO_TCP`` as their protocol, which a listening socket made with
    ``socket.socket(AF_INET, SOCK_STREAM)`` is not; uvloop sets it on all. Setting it
    here makes the server's behaviour the same on either loop and with any socket.
    """
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded request head: 431 over the size, 408 late.

    llhttp (in C) parses the head, but neither it nor httptools bounds it: httptools
    keeps concatenating an unfinished header field in memory, and a client that never
    ends its head would hold the connection for ever. The size is counted here from the
    bytes fed while a head is pending, the time with a timer armed by its first bytes.
    """

    header_timeout_seconds: float = 10.0
    max_header_bytes: int = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        # Between requests and while one's head arrives, not once its head is parsed.
        self._head_pending = True
        # A request has begun (its first byte has come) and its head is unfinished.
        self._head_begun = False
        self._head_bytes = 0
        # A request ended inside the chunk being fed: the bytes before the next one's
        # head are not its head, so that chunk is not counted (see data_received).
        self._request_ended_in_chunk = False
        # The trailer fields after a chunked body are header fields too, and httptools
        # holds an unfinished one in memory the same way: counted the same way.
        self._in_trailers = False
        self._read_all_trailers = False
        self._trailer_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        _send_without_delay(transport)
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_pending and self._header_timer is None:
            # The first bytes of a new request on a kept-alive connection.
            self._arm_header_timer()
        self._request_ended_in_chunk = False
        self._read_all_trailers = self._in_trailers
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._read_all_trailers and self._in_trailers:
            self._count_trailers(len(data))
            return
        if not (self._head_pending and self._head_begun):
            return
        if self._header_timer is None:
            # A pipelined request began behind one whose head ended in this chunk.
            self._arm_header_timer()
        if not self._request_ended_in_chunk:
            # Every byte of this chunk is the pending head's. In a chunk where an earlier
            # request ended (pipelining) the split is unknown, and the chunk is left out:
            # the head is then bounded at most one read (about 256 KiB) late.
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                self._refuse_head()

    # Parser callbacks (httptools calls them by name from inside feed_data).
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._head_pending = False
        self._head_begun = False
        self._disarm_header_timer()
        super().on_headers_complete()

    def on_chunk_header(self) -> None:
        # After every chunk size line: chunk data follows, or (after the last) trailers.
        self._in_trailers = True
        self._read_all_trailers = False
        self._trailer_bytes = 0

    def on_body(self, body: bytes) -> None:
        self._in_trailers = False
        self._read_all_trailers = False
        super().on_body(body)

    def on_chunk_complete(self) -> None:
        self._in_trailers = False
        self._read_all_trailers = False

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_pending = True
        self._request_ended_in_chunk = True
        if (
            self.cycle is not None
            and self.cycle.response_complete
            and self.timeout_keep_alive_task is None
            and not self.transport.is_closing()
        ):
            # An early answer (a 413) went before the body, which was read and dropped:
            # uvicorn armed the keep-alive timeout when it answered and every read since
            # cancelled it, so the idle connection is bounded again here.
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._head_begun:
            # The next request has begun arriving: its header timer bounds it (a 408),
            # not the keep-alive timeout uvicorn has just armed (a silent close).
            self._unset_keepalive_if_required()

    def send_400_response(self, msg: str) -> None:
        """A request llhttp refuses: the 400 is a problem like every other error."""
        self._answer_and_close(
            400, "Bad Request", "La petición HTTP está mal formada.", "peticion-incorrecta"
        )

    def _refuse_head(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            # An earlier request's answer is being written: a 431 cannot go in the middle.
            self.transport.close()
            return
        self._answer_and_close(
            431,
            "Request Header Fields Too Large",
            f"Las cabeceras superan el máximo de {self.max_header_bytes} bytes.",
            "cabeceras-demasiado-grandes",
        )

    def _count_trailers(self, size: int) -> None:
        """Counts a read that was trailer fields from end to end (the first is left out:
        where the body ended in it is unknown), and hangs up past the bound: the
        request's answer may be under way, so there is no clean place for a 431."""
        self._trailer_bytes += size
        if self._trailer_bytes > self.max_header_bytes:
            self.transport.close()

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_seconds, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._head_pending:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head behind an answer still being written: its time starts
            # again, and the 408 (if it comes) goes after that answer, not inside it.
            self._arm_header_timer()
            return
        if not self._head_begun:
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
        # Written by hand: there is no request (or no parsable one) to answer through
        # uvicorn's request cycle.
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            f"content-type: {PROBLEM_JSON}\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        ).encode("ascii")
        self.transport.write(head + body)
        self.transport.close()


def _protocol(settings: Settings) -> type[BoundedHttpToolsProtocol]:
    return type(
        "ConfiguredHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
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
