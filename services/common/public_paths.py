"""Paths a service offers to the public through the gateway, outside ``/api/v1``.

Some routes are public by law or by standard: the time-stamping authority at
``/tsa`` (RFC 3161 over HTTP), the trust root, the CSV verification pages. A
service declares them here; the gateway exposes them anonymously (rate-limited)
and forwards them to ``/api/v1/<service>/<upstream>`` on the service.

A path called by machines rather than citizens (a bank's payment notifications) can
carry its own :class:`RateLimitPolicy`: its callers then spend a bucket of their own
instead of the anonymous one, so neither starves the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from services.common.settings import Settings

__all__ = ["PublicPath", "RateLimitPolicy"]


@dataclass(frozen=True)
class RateLimitPolicy:
    """A public path's own rate limit: a named bucket per client address.

    ``bucket`` names the quota (the gateway keys it ``<bucket>:ip:<address>``), so
    paths sharing a name share the quota; ``per_minute`` reads the limit from the
    running settings, so operators tune it like the others.
    """

    bucket: str
    per_minute: Callable[[Settings], int]


@dataclass(frozen=True)
class PublicPath:
    """One public path: where the gateway listens and where on the service it forwards.

    ``path`` may hold parameters (``/verificar/{csv}``) that ``upstream`` reuses
    (``verificar/{csv}``). ``service`` is the gateway segment the service answers to
    (``/api/v1/<service>/``): its name, or one of its ``routes`` (``documentos``).
    """

    path: str
    service: str
    upstream: str
    methods: tuple[str, ...] = ("GET",)
    # When it returns True for the running settings, the path asks for a token too.
    token_required: Callable[[Settings], bool] | None = None
    # A path that looks up a secret code (a CSV): its 404s are misses, and every such
    # path spends one allowance of misses per client (VERIFICAR_MISSES_PER_MINUTE).
    counts_misses: bool = False
    # Its own bucket instead of the anonymous per-address one (None: the anonymous one).
    rate_limit: RateLimitPolicy | None = None

    def requires_token(self, settings: Settings) -> bool:
        return bool(self.token_required and self.token_required(settings))
