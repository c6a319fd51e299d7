"""Waiting for something asynchronous (an event crossing the bus) without fixed sleeps."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["eventually"]


async def eventually(
    check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05
) -> Any:
    """Calls ``check`` (sync or async) until it returns something truthy, and returns it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
