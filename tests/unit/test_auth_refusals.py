"""A refused token is answered in our words: the JWT library's exception text (which
names the expected issuer, audience or algorithm) never reaches the client."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from services.common.auth import JwksKeySource, TokenVerifier
from services.common.devkeys import issue_dev_token
from services.common.errors import Unauthorized


async def _active(tenant: str) -> bool:
    return True


@pytest.mark.parametrize(
    ("issuer", "audience", "expected"),
    [
        ("otro-idp", "consistorio", "proveedor de identidad esperado"),
        ("consistorio-dev", "otra-app", "no está destinado a Consistorio"),
    ],
)
async def test_refusals_do_not_echo_the_library(
    keys_dir: Path, issuer: str, audience: str, expected: str
) -> None:
    verifier = TokenVerifier(
        JwksKeySource(str(keys_dir / "dev-jwks.json")),
        issuer="consistorio-dev",
        audience="consistorio",
        algorithms=["ES256"],
        tenant_is_active=_active,
    )
    token = issue_dev_token(
        keys_dir, tenant="03014", sub="ana", roles=[], issuer=issuer, audience=audience
    )
    with pytest.raises(Unauthorized) as refused:
        await verifier.verify(token)
    assert expected in refused.value.detail
    for leak in ("Invalid", "audience", "issuer", "doesn't match"):
        assert leak not in refused.value.detail

    garbage = jwt.encode({"sub": "x"}, "secreto-de-32-bytes-por-lo-menos!!", algorithm="HS256")
    with pytest.raises(Unauthorized) as refused:
        await verifier.verify(garbage)
    assert refused.value.detail == "Token no válido."
