"""A token verified once is remembered until it expires, and only while the key set
that verified it is still the one trusted (rotation and revocation take effect)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from services.common.auth import JwksKeySource, TokenVerifier
from services.common.devkeys import ensure_dev_signing_key, issue_dev_token
from services.common.errors import Unauthorized


class _CountingKeys(JwksKeySource):
    """The real key source, counting the signature checks it serves keys for."""

    def __init__(self, jwks: str, **kwargs: Any) -> None:
        super().__init__(jwks, **kwargs)
        self.lookups = 0

    def key_for(self, token: str) -> Any:
        self.lookups += 1
        return super().key_for(token)


def _verifier(keys: JwksKeySource, active: set[str] | None = None) -> TokenVerifier:
    async def is_active(tenant: str) -> bool:
        return active is None or tenant in active

    return TokenVerifier(
        keys,
        issuer="consistorio-dev",
        audience="consistorio",
        algorithms=["ES256"],
        tenant_is_active=is_active,
    )


async def test_a_request_chain_verifies_the_signature_once(tmp_path: Path) -> None:
    keys = _CountingKeys(str(ensure_dev_signing_key(tmp_path)))
    verifier = _verifier(keys)
    token = issue_dev_token(tmp_path, tenant="03014", sub="ana", roles=["registro"])

    first = await verifier.verify(token)
    again = await verifier.verify(token)

    assert first == again
    assert first.tenant == "03014" and first.has_role("registro")
    assert keys.lookups == 1
    other = issue_dev_token(tmp_path, tenant="03014", sub="luis", roles=["registro"])
    assert (await verifier.verify(other)).sub == "luis"
    assert keys.lookups == 2


async def test_a_remembered_token_still_expires(tmp_path: Path) -> None:
    verifier = _verifier(JwksKeySource(str(ensure_dev_signing_key(tmp_path))))
    token = issue_dev_token(tmp_path, tenant="03014", sub="ana", roles=[], ttl_seconds=1)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    await verifier.verify(token)

    deadline = time.monotonic() + 10
    while time.time() < exp + 0.01:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)

    with pytest.raises(Unauthorized) as refused:
        await verifier.verify(token)
    assert "caducado" in refused.value.detail


async def test_a_rotated_out_key_takes_its_remembered_tokens_with_it(tmp_path: Path) -> None:
    jwks = ensure_dev_signing_key(tmp_path / "antigua")
    verifier = _verifier(JwksKeySource(str(jwks), refresh_seconds=0))
    token = issue_dev_token(tmp_path / "antigua", tenant="03014", sub="ana", roles=[])
    await verifier.verify(token)
    await verifier.verify(token)

    # The identity provider rotates: the JWKS now holds only the new key.
    shutil.copy(ensure_dev_signing_key(tmp_path / "nueva"), jwks)

    with pytest.raises(Unauthorized):
        await verifier.verify(token)
    fresh = issue_dev_token(tmp_path / "nueva", tenant="03014", sub="ana", roles=[])
    assert (await verifier.verify(fresh)).sub == "ana"


async def test_a_remembered_token_of_a_tenant_disabled_since_is_refused(tmp_path: Path) -> None:
    active = {"03014"}
    verifier = _verifier(JwksKeySource(str(ensure_dev_signing_key(tmp_path))), active)
    token = issue_dev_token(tmp_path, tenant="03014", sub="ana", roles=[])
    await verifier.verify(token)

    active.clear()

    with pytest.raises(Unauthorized) as refused:
        await verifier.verify(token)
    assert "03014" in refused.value.detail


async def test_a_refused_token_is_not_remembered(tmp_path: Path) -> None:
    keys = _CountingKeys(str(ensure_dev_signing_key(tmp_path)))
    verifier = _verifier(keys)
    forged = issue_dev_token(tmp_path / "otra", tenant="03014", sub="ana", roles=["admin"])

    for _ in range(2):
        with pytest.raises(Unauthorized):
            await verifier.verify(forged)
    assert keys.lookups == 2


async def test_an_unreachable_jwks_url_refuses_the_token_as_before(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    verifier = _verifier(JwksKeySource(f"http://127.0.0.1:{closed}/jwks.json"))
    token = issue_dev_token(tmp_path, tenant="03014", sub="ana", roles=[])

    for _ in range(2):
        with pytest.raises(Unauthorized):
            await verifier.verify(token)
