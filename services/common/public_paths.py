"""Paths a service offers to the public through the gateway, outside ``/api/v1``.

Some routes are public by law or by standard: the time-stamping authority at
``/tsa`` (RFC 3161 over HTTP), the trust root, the CSV verification pages. A
service declares them here; the gateway exposes them anonymously (rate-limited)
and forwards them to ``/api/v1/<service>/<upstream>`` on the service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from services.common.settings import Settings

__all__ = ["PublicPath"]


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

    def requires_token(self, settings: Settings) -> bool:
        return bool(self.token_required and self.token_required(settings))
