"""Token verification and roles: every service checks the token again.

The gateway authenticates at the edge and forwards the bearer token; services
do not trust headers alone and verify the same JWT against the JWKS. A token
whose tenant is unknown or disabled is refused like an invalid one.

A verified token is remembered until it expires, so the second check of a request
chain (the service after the gateway, in one process or in a replica that saw the
token before) costs a dictionary lookup instead of a signature verification. What is
remembered is only trusted while the key set it was verified against is unchanged: a
key withdrawn from the JWKS (rotation, revocation) takes every token it signed out of
the cache when the key set is next read.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from services.common.errors import Unauthorized

__all__ = ["JwksKeySource", "Principal", "TokenVerifier", "bearer_token"]

_log = logging.getLogger("consistorio.auth")
# Our own words for the refusals a client can act on; anything else is just invalid.
_REFUSED: dict[type[Exception], str] = {
    jwt.ImmatureSignatureError: "El token aún no es válido.",
    jwt.InvalidIssuerError: "El token no lo ha emitido el proveedor de identidad esperado.",
    jwt.InvalidAudienceError: "El token no está destinado a Consistorio.",
    jwt.MissingRequiredClaimError: "Al token le falta un claim obligatorio.",
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: subject, tenant (INE code), roles in that tenant, display name.

    ``nif`` is the identity document a citizen authenticated with (the sede's identity
    provider, e.g. Cl@ve, asserts it in the ``nif`` claim); staff tokens may lack it.
    """

    sub: str
    tenant: str
    roles: frozenset[str]
    name: str
    nif: str | None = None

    def has_role(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles


class JwksKeySource:
    """Finds the verification key for a token in a JWKS file or URL (cached)."""

    def __init__(self, jwks: str, *, refresh_seconds: float = 300.0) -> None:
        self._jwks = jwks
        self._refresh = refresh_seconds
        self._client: jwt.PyJWKClient | None = None
        self._file_keys: dict[str, jwt.PyJWK] = {}
        self._file_text = ""
        self._file_version = 0
        self._loaded_at = 0.0
        if jwks.startswith(("http://", "https://")):
            self._client = jwt.PyJWKClient(jwks, cache_keys=True, lifespan=int(refresh_seconds))

    def version(self) -> object:
        """Identifies the key set now trusted; it changes when the set is re-read changed.

        Read as lazily as the keys themselves (at most every ``refresh_seconds``).
        """
        if self._client is not None:
            # A new set object after every fetch: more changes than real ones, never fewer.
            try:
                return id(self._client.get_jwk_set())
            except jwt.PyJWKClientError:
                # The JWKS cannot be read: nothing remembered holds, and the verification
                # that follows refuses the token as it always did.
                return object()
        self._load_file()
        return self._file_version

    def _load_file(self) -> None:
        if self._file_keys and time.monotonic() - self._loaded_at <= self._refresh:
            return
        text = Path(self._jwks).read_text()
        if text != self._file_text or not self._file_keys:
            data = json.loads(text)
            self._file_keys = {k.get("kid", ""): jwt.PyJWK(k) for k in data["keys"]}
            self._file_text = text
            self._file_version += 1
        self._loaded_at = time.monotonic()

    def key_for(self, token: str) -> Any:
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        self._load_file()
        kid = jwt.get_unverified_header(token).get("kid", "")
        if kid not in self._file_keys:
            if len(self._file_keys) == 1 and not kid:
                return next(iter(self._file_keys.values())).key
            raise Unauthorized("Token firmado con una clave desconocida.")
        return self._file_keys[kid].key


TenantCheck = Callable[[str], Awaitable[bool]]

# Verified tokens remembered at most; past it the expired ones go, then the oldest.
_CACHE_MAX = 10_000


@dataclass(frozen=True)
class _Verified:
    expires_at: float
    key_version: object
    principal: Principal


class TokenVerifier:
    """Verifies a bearer JWT and returns the :class:`Principal` it names."""

    def __init__(
        self,
        keys: JwksKeySource,
        *,
        issuer: str,
        audience: str,
        algorithms: list[str],
        tenant_is_active: TenantCheck,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._algorithms = algorithms
        self._tenant_is_active = tenant_is_active
        self._verified: dict[str, _Verified] = {}

    async def verify(self, token: str) -> Principal:
        """Checks signature, expiry, issuer, audience, claims and the tenant.

        A token verified before is not verified again until it expires or the key set
        changes; its tenant is checked every time (a tenant disabled since is refused).
        """
        known = self._verified.get(token)
        if known is not None:
            if time.time() < known.expires_at and known.key_version == self._keys.version():
                principal = known.principal
                if not await self._tenant_is_active(principal.tenant):
                    raise Unauthorized(
                        f"La entidad {principal.tenant} no existe o está dada de baja."
                    )
                return principal
            del self._verified[token]
        version = self._keys.version()
        principal, expires_at = await self._verify(token)
        self._remember(token, _Verified(expires_at, version, principal))
        return principal

    def _remember(self, token: str, verified: _Verified) -> None:
        cache = self._verified
        if len(cache) >= _CACHE_MAX:
            now = time.time()
            for stale in [t for t, v in cache.items() if v.expires_at <= now]:
                del cache[stale]
            while len(cache) >= _CACHE_MAX:
                del cache[next(iter(cache))]
        cache[token] = verified

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            key = self._keys.key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except Unauthorized:
            raise
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("El token ha caducado.") from exc
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            # The library's text says which check failed and how (expected issuer,
            # audience, algorithm...): useful to someone forging tokens, so it is
            # logged for operators and never answered.
            _log.info("token refused: %s: %s", type(exc).__name__, exc)
            raise Unauthorized(_REFUSED.get(type(exc), "Token no válido.")) from exc
        tenant = claims.get("tenant")
        roles = claims.get("roles", [])
        if not isinstance(tenant, str) or not tenant:
            raise Unauthorized("El token no indica la entidad (claim 'tenant').")
        if isinstance(roles, str):
            roles = [r for r in roles.replace(",", " ").split() if r]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthorized("El claim 'roles' debe ser una lista de textos.")
        if not await self._tenant_is_active(tenant):
            raise Unauthorized(f"La entidad {tenant} no existe o está dada de baja.")
        principal = Principal(
            sub=str(claims["sub"]),
            tenant=tenant,
            roles=frozenset(roles),
            name=str(claims.get("name") or claims["sub"]),
            nif=_nif_claim(claims.get("nif")),
        )
        return principal, float(claims["exp"])


def _nif_claim(value: Any) -> str | None:
    """The ``nif`` claim, compacted and upper case; a present but malformed one is a 401."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 20:
        raise Unauthorized("El claim 'nif' debe ser un texto de hasta 20 caracteres.")
    return "".join(value.split()).replace("-", "").upper()


def bearer_token(authorization: str | None) -> str:
    """Extracts the token of an ``Authorization: Bearer`` header or raises 401."""
    if not authorization:
        raise Unauthorized()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Cabecera Authorization mal formada: se espera 'Bearer <token>'.")
    return token.strip()
