"""The gateway's HTTP/1.1 client to the services: pooled connections and nothing else.

When the services run as separate processes the gateway's hop is one request and one
answer on a loopback keep-alive connection, and a general-purpose client costs many
times the hop itself (httpx measured 5-6 ms of CPU a request, most of it in its
connection pool and its anyio streams; see docs/benchmarks.md, "Gateway hop"). This one
writes the request head itself, parses the answer with httptools (llhttp, in C; uvicorn
brings it) on an asyncio protocol, and streams bodies both ways with flow control:
reading from the service pauses while the client is slower, writing waits for the
socket to drain.

Failures are told apart by what reached the service, which is what the gateway answers:
:class:`UpstreamUnreachable` (nothing was sent: refused, no connection in time, pool
full), :class:`UpstreamTimeout` (sent, no answer in time) and :class:`UpstreamBroken`
(the connection broke or the answer was not HTTP).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator
from typing import cast

import httptools

__all__ = [
    "Exchange",
    "UpstreamBroken",
    "UpstreamError",
    "UpstreamPool",
    "UpstreamTimeout",
    "UpstreamUnreachable",
]

# Body bytes held for a slow client before reading from the service pauses.
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024


class UpstreamError(Exception):
    """The exchange with the service failed."""


class UpstreamUnreachable(UpstreamError):
    """No connection to the service: nothing of the request was sent."""


class UpstreamTimeout(UpstreamError):
    """The service took the request and did not answer (or stalled) within the timeout."""


class UpstreamBroken(UpstreamError):
    """The connection broke, or what came back was not a valid HTTP/1.1 answer."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection to a service, carrying one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._loop = asyncio.get_running_loop()
        self._parser: httptools.HttpResponseParser | None = None
        self._head_only = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._reading_paused = False
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete:
            self._fail(UpstreamBroken(f"the service closed the connection ({exc!r})"))
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(UpstreamBroken("the service closed the connection"))

    def pause_writing(self) -> None:
        if self._drain is None or self._drain.done():
            self._drain = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._parser is None:
            # Bytes while no request is out: the connection cannot be trusted any more.
            self.abort()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamBroken("the service switched protocols"))
            self.abort()
        except httptools.HttpParserError as exc:
            self._fail(UpstreamBroken(f"invalid answer from the service: {exc}"))
            self.abort()

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete:
            # A second answer to one request: whatever follows cannot be trusted.
            self.abort()

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.complete:
            self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        status = self._parser.get_status_code()
        if status < 200:
            # An interim answer (no Expect is sent, so unexpected): the real one follows.
            self.headers = []
            return
        self.status = status
        self.head_done = True
        if self._head_only:
            # A HEAD answer has no body whatever its Content-Length says, and llhttp
            # cannot be told so: the message ends here and the connection is not reused.
            self.complete = True
            self._parser = None
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.head_done:
            return  # the end of an interim answer
        assert self._parser is not None
        self.keep_alive = self._parser.should_keep_alive()
        self.complete = True
        self._parser = None
        self._wake()

    # the exchange

    def begin(self, *, head_only: bool) -> None:
        """Prepares for the answer to a request about to be written."""
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = head_only
        self.status = 0
        self.headers = []
        self.head_done = self.complete = self.keep_alive = False
        self.chunks.clear()
        self._buffered = 0
        self._error = None

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise UpstreamBroken("the connection to the service is closed")
        self.transport.write(data)

    async def drain(self) -> None:
        """Waits while the socket's buffer is over its high-water mark."""
        if self._drain is not None and not self._drain.done():
            await self._drain

    async def wait_head(self, timeout: float | None) -> None:
        """Returns when the answer's status and headers are in (None: no time limit)."""
        while not self.head_done:
            await self._wait(timeout)

    async def next_chunk(self, timeout: float) -> bytes | None:
        """The next piece of the body as it came; None once the body is complete."""
        while not self.chunks:
            if self.complete:
                return None
            await self._wait(timeout)
        chunk = self.chunks.popleft()
        self._buffered -= len(chunk)
        if self._reading_paused and self._buffered < _LOW_WATER and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()
        return chunk

    def take_all(self) -> bytes:
        """Every body piece that has arrived, joined; reading resumes if it was paused."""
        body = b"".join(self.chunks)
        self.chunks.clear()
        self._buffered = 0
        if self._reading_paused and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()
        return body

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and not self._head_only

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    async def _wait(self, timeout: float | None) -> None:
        if self._error is not None:
            raise self._error
        waiter = self._waiter = self._loop.create_future()
        timer = None if timeout is None else self._loop.call_later(timeout, self._timed_out, waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None

    def _timed_out(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(UpstreamTimeout("no answer from the service in time"))

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        if self._error is None:
            self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)


class Exchange:
    """A request sent to a service and its answer, arriving.

    ``status`` and ``headers`` are known when :meth:`UpstreamPool.send` returns; the
    body is read with :meth:`chunks`. :meth:`close` must follow (the relay does it), so
    that the connection goes back to the pool or is closed.
    """

    def __init__(
        self,
        pool: UpstreamPool,
        key: tuple[str, int],
        conn: _Connection,
        sender: asyncio.Task[None] | None,
    ) -> None:
        self._pool = pool
        self._key = key
        self._conn = conn
        self._sender = sender
        self.status = conn.status
        self.headers = conn.headers
        self._closed = False

    @property
    def complete(self) -> bool:
        """The whole body is already here (a small answer, typically)."""
        return self._conn.complete

    def take_all(self) -> bytes:
        """What of the body has arrived, at once (all of it when ``complete``)."""
        return self._conn.take_all()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, piece by piece as the service sends it."""
        timeout = self._pool.read_timeout
        while True:
            chunk = await self._conn.next_chunk(timeout)
            if chunk is None:
                return
            yield chunk

    def __del__(self) -> None:
        # A relay that never ran (its response dropped unsent) must not keep its slot.
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):  # the loop may be gone at exit
                self._conn.abort()
                self._pool._slots.release()

    def close(self) -> None:
        """Returns the connection to the pool if the exchange ended cleanly, else closes it."""
        if self._closed:
            return
        self._closed = True
        sender = self._sender
        clean = sender is None or (sender.done() and not sender.cancelled())
        if sender is not None and not sender.done():
            sender.cancel()
        elif sender is not None and not sender.cancelled() and sender.exception() is not None:
            clean = False
        self._pool._release(self._key, self._conn, reuse=clean and self._conn.reusable)


class UpstreamPool:
    """Keep-alive connections to the services, at most ``max_connections`` at once.

    An idle connection is dropped after ``idle_seconds``, before the service's own
    keep-alive timeout (uvicorn's: 5 s) closes it under a request being written.
    """

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int = 200,
        max_idle_per_service: int = 50,
        idle_seconds: float = 3.0,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._max_idle = max_idle_per_service
        self._idle_seconds = idle_seconds
        self._slots = asyncio.Semaphore(max_connections)

    async def send(
        self,
        host: str,
        port: int,
        head: bytes,
        body: AsyncIterator[bytes] | None,
        *,
        chunked: bool,
        head_only: bool,
        idempotent: bool = False,
    ) -> Exchange:
        """Writes ``head`` (request line and headers, ending in a blank line, and a small
        body with them if the caller put it there) and then ``body``, streamed.

        Returns once the answer's head is in, with the body still streaming while the
        request's body is still being sent if the service answered early. A pooled
        connection found closed before the request was written to it is replaced, and
        the request sent on a new one; so is one that breaks before any answer when the
        request is ``idempotent`` and whole in ``head`` (a service that closed an idle
        connection and one that died on the request look alike then).
        """
        key = (host, port)
        await self._acquire()
        try:
            for attempt in (0, 1):
                conn, reused = await self._connection(key)
                conn.begin(head_only=head_only)
                sender: asyncio.Task[None] | None = None
                written = False
                try:
                    conn.write(head)
                    written = True
                    if body is not None:
                        sender = asyncio.create_task(_send_body(conn, body, chunked=chunked))
                        await _head_or_body_failure(conn, sender, self.read_timeout)
                    else:
                        await conn.wait_head(self.read_timeout)
                except UpstreamBroken:
                    if sender is not None:
                        sender.cancel()
                    conn.abort()
                    replay = not written or (idempotent and body is None and not conn.head_done)
                    if reused and attempt == 0 and replay:
                        continue
                    raise
                except BaseException:
                    if sender is not None:
                        sender.cancel()
                    conn.abort()
                    raise
                return Exchange(self, key, conn, sender)
            raise AssertionError("unreachable")  # pragma: no cover
        except BaseException:
            self._slots.release()
            raise

    async def aclose(self) -> None:
        """Closes every idle connection (those in use close when their exchange ends)."""
        for connections in self._idle.values():
            for conn in connections:
                conn.abort()
        self._idle.clear()

    async def _acquire(self) -> None:
        if not self._slots.locked():
            await self._slots.acquire()
            return
        try:
            await asyncio.wait_for(self._slots.acquire(), self.connect_timeout)
        except TimeoutError as exc:
            raise UpstreamUnreachable("every connection to the services is busy") from exc

    async def _connection(self, key: tuple[str, int]) -> tuple[_Connection, bool]:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._idle_seconds:
                return conn, True
            conn.abort()
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(_Connection, *key), self.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            raise UpstreamUnreachable(f"cannot connect to {key[0]}:{key[1]}: {exc!r}") from exc
        return conn, False

    def _release(self, key: tuple[str, int], conn: _Connection, *, reuse: bool) -> None:
        self._slots.release()
        idle = self._idle.setdefault(key, [])
        if reuse and len(idle) < self._max_idle:
            conn.idle_since = time.monotonic()
            idle.append(conn)
        elif conn.complete:
            # Nothing is left to read: a clean close.
            conn.closed = True
            if conn.transport is not None:
                conn.transport.close()
        else:
            conn.abort()


async def _send_body(conn: _Connection, body: AsyncIterator[bytes], *, chunked: bool) -> None:
    async for chunk in body:
        if not chunk:
            continue
        if chunked:
            conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        else:
            conn.write(chunk)
        await conn.drain()
    if chunked:
        conn.write(b"0\r\n\r\n")


async def _head_or_body_failure(
    conn: _Connection, sender: asyncio.Task[None], timeout: float
) -> None:
    """Waits for the answer's head while the body goes out; a body that fails (too
    large, the client gone) fails the exchange before any answer is relayed.

    The answer's timeout runs from the body's end, as for a request without one: a
    large upload from a slow client is bounded by the server's body timeout instead.
    """
    head = asyncio.ensure_future(conn.wait_head(None))
    try:
        await asyncio.wait({head, sender}, return_when=asyncio.FIRST_COMPLETED)
        if sender.done():
            failure = None if sender.cancelled() else sender.exception()
            if failure is not None:
                raise failure
    finally:
        if not head.done():
            head.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await head
    if head.done() and not head.cancelled():
        head.result()  # the head is in, or the connection failed before it
    else:
        await conn.wait_head(timeout)
