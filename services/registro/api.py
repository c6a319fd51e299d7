"""What the registro's feature routes share: who may call them, their problem answers, and
the answers about a request still pending (202) or failed (409) that may be retried."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.common.auth import Principal
from services.common.deps import (
    require_any_role,
    require_role,
)
from services.common.errors import (
    problem_response,
    problem_responses,
)

RegistroUser = Annotated[Principal, Depends(require_role("registro"))]


# A citizen (role ciudadano) presents asientos through the sede and reads their own.
RegistroOCiudadano = Annotated[Principal, Depends(require_any_role("registro", "ciudadano"))]


def solo_suyos(principal: Principal) -> str | None:
    """Whose asientos the caller may see: all of the entity's for staff, else their own."""
    return None if principal.has_role("registro") else principal.sub


PROBLEMAS = problem_responses(
    401,
    403,
    404,
    409,
    422,
    overrides={409: "El justificante no se pudo emitir, o no admite esa operación en su estado"},
)

# A client polling a pending request asks again after this many seconds.
RETRY_AFTER_SECONDS = "2"


class Solicitud(Protocol):
    """Where a request to another service about an asiento stands (justificante, sello)."""

    @property
    def asiento_id(self) -> str: ...

    @property
    def estado(self) -> StrEnum: ...

    @property
    def motivo(self) -> str | None: ...

    @property
    def codigo(self) -> str | None: ...

    @property
    def intento(self) -> int | None: ...


def pendiente(body: BaseModel, *, location: str) -> JSONResponse:
    """202: the request is still pending; ask ``location`` again after Retry-After seconds."""
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=202,
        headers={"Retry-After": RETRY_AFTER_SECONDS, "Location": location},
    )


def fallida(
    request: Request, solicitud: Solicitud, *, detail: str, title: str, slug: str, location: str
) -> JSONResponse:
    """409 problem: the request failed, why, and where to ask again (``location``/reintentar)."""
    return problem_response(
        409,
        detail,
        title=title,
        slug=slug,
        instance=request.url.path,
        extensions={
            "estado": solicitud.estado.value,
            "motivo": solicitud.motivo,
            "codigo": solicitud.codigo,
            "intento": solicitud.intento,
            "reintentar": f"{location}/reintentar",
        },
    )
