"""Development signing key for tokens, generated once under the data dir.

Embedded mode has no identity provider, so `consistorio up` makes an ES256 key
and publishes its public half as a JWKS file; `consistorio token` signs with it.
Production points AUTH_JWKS at the real provider and never touches this module.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["DEV_KID", "ensure_dev_signing_key", "issue_dev_token", "jwks_path"]

DEV_KID = "consistorio-dev-1"
_PRIVATE = "dev-token-signing.pem"
_JWKS = "dev-jwks.json"


def jwks_path(keys_dir: Path) -> Path:
    """Where the public JWKS of the development key is written."""
    return keys_dir / _JWKS


def ensure_dev_signing_key(keys_dir: Path) -> Path:
    """Creates the key pair on first call (0600 private key); returns the JWKS path."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    private_path = keys_dir / _PRIVATE
    if not private_path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    loaded = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{private_path} is not an EC private key")
    public_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(loaded.public_key()))
    public_jwk.update({"kid": DEV_KID, "use": "sig", "alg": "ES256"})
    jwks_file = jwks_path(keys_dir)
    jwks_file.write_text(json.dumps({"keys": [public_jwk]}, indent=2))
    return jwks_file


def issue_dev_token(
    keys_dir: Path,
    *,
    tenant: str,
    sub: str,
    roles: list[str],
    name: str | None = None,
    nif: str | None = None,
    issuer: str = "consistorio-dev",
    audience: str = "consistorio",
    ttl_seconds: int = 8 * 3600,
) -> str:
    """Signs a development JWT with the embedded key (creating it if needed)."""
    ensure_dev_signing_key(keys_dir)
    key = (keys_dir / _PRIVATE).read_bytes()
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": sub,
        "tenant": tenant,
        "roles": roles,
        "name": name or sub,
        "iat": now,
        "nbf": now - 5,
        "exp": now + ttl_seconds,
        "jti": str(uuid.uuid4()),
    }
    if nif is not None:
        claims["nif"] = nif
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": DEV_KID})
