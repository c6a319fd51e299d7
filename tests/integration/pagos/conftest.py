"""Fixtures of the pagos integration tests: the service running on the in-process bus,
an HTTP client on it, and a fresh council with emisora and Redsys configured."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from services.bootstrap import Platform
from services.common.settings import Settings
from tests.support.pagos import Entidad, configurar
from tests.support.platforms import asgi_client, running_platform


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    async with running_platform(settings, ["pagos"]) as running:
        yield running


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(platform.apps["pagos"]) as c:
        yield c


@pytest.fixture
async def entidad(
    client: httpx.AsyncClient, new_tenant: Callable[..., Any], token: Callable[..., str]
) -> Entidad:
    return await configurar(client, new_tenant, token)
