"""HTTP routes of public verification: the form and the page (or JSON) of a code.

The gateway forwards the public ``/verificar`` and ``/verificar/{csv}`` here,
anonymously: the code printed on a document is the only credential, as the law
intends. What a person types is checked before anything is looked up, so a
mistyped code (wrong shape or check character) is a 400 that says so.

A hit and a miss cost the same: both run the same database call, build the
same view (a miss builds it from a decoy), render both the document page and
the not-found page, and only then pick one. Nothing in the time taken tells
whether a code exists; only the answer itself does, and a client that keeps
getting misses is throttled (:mod:`services.common.misses`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from services.common.deps import RuntimeDep
from services.common.errors import PROBLEM_JSON, FieldError, problem_response
from services.common.misses import MissLimiter
from services.csv import domain, pages, service
from services.csv.schemas import Metadatos, VerificacionRead

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/csv", tags=["verificación"])

# On every answer: never cached (the code is a credential and states change), never
# framed, never leaking the code to another site through Referer.
_CABECERAS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": pages.CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Vary": "Accept",
}

# What a miss renders so that it does the same work as a hit (never shown).
_SENUELO = Metadatos(
    entidad="Ayuntamiento de Ejemplo",
    nombre_fichero="justificante-registro-E-2026-000001.pdf",
    identificador="ES_L01000000_2026_000000000000000000000001",
    tipo_documental="TD09",
    organo="L01000000",
    emitido_en=datetime(2026, 1, 1, tzinfo=UTC),
    firmante="Sello electrónico del Ayuntamiento de Ejemplo",
    sello_tiempo=datetime(2026, 1, 1, tzinfo=UTC),
    sha256="0" * 64,
    tamano=123_456,
)

_PROBLEMAS: dict[int | str, dict[str, Any]] = {
    400: {"content": {PROBLEM_JSON: {}, "text/html": {}}, "description": "Código mal escrito"},
    404: {"content": {PROBLEM_JSON: {}, "text/html": {}}, "description": "Código inexistente"},
    429: {
        "content": {PROBLEM_JSON: {}, "text/html": {}},
        "description": "Demasiados códigos inexistentes desde la misma dirección",
    },
}


# What a person may type for a code (any case, spaces, hyphens); the check character
# is verified by the service (400 when it does not match), not by the pattern.
PATRON_ESCRITO = r"^[\s\-2-9A-HJ-NP-Za-hj-np-z]{1,100}$"


def _limitador(request: Request) -> MissLimiter:
    limiter: MissLimiter = request.app.state.csv_misses
    return limiter


def _cliente(request: Request) -> str:
    """The client's address (from X-Forwarded-For only behind a trusted proxy: the server
    decides, see services.common.http_server)."""
    return request.client.host if request.client else "desconocida"


def _quiere_json(accept: str | None) -> bool:
    """Whether the client prefers JSON to HTML (browsers and ``*/*`` get HTML)."""
    mejor = {"html": 0.0, "json": 0.0}
    for parte in (accept or "").split(","):
        tipo, *parametros = (p.strip() for p in parte.split(";"))
        calidad = 1.0
        for parametro in parametros:
            nombre, _, valor = parametro.partition("=")
            if nombre.strip() == "q":
                try:
                    calidad = float(valor)
                except ValueError:
                    calidad = 0.0
        tipo = tipo.lower()
        if tipo in ("application/json", PROBLEM_JSON):
            mejor["json"] = max(mejor["json"], calidad)
        elif tipo in ("text/html", "text/*", "*/*"):
            mejor["html"] = max(mejor["html"], calidad)
    return mejor["json"] > mejor["html"]


def _html(cuerpo: str, status: int, **extra: str) -> HTMLResponse:
    return HTMLResponse(cuerpo, status_code=status, headers={**_CABECERAS, **extra})


def _mal_escrito(request: Request, valor: str, motivo: str, *, formulario: bool) -> Response:
    if _quiere_json(request.headers.get("accept")):
        return problem_response(
            400,
            f"El código seguro de verificación está mal escrito: {motivo}",
            title="Código mal escrito",
            slug="csv-mal-escrito",
            instance=request.url.path,
            errors=[FieldError("csv", motivo)],
            headers=_CABECERAS,
        )
    if formulario:
        return _html(pages.pagina_formulario(valor=valor, error=motivo), 400)
    return _html(pages.pagina_mal_formado(valor, motivo), 400)


def _vista(metadatos: Metadatos, codigo: str, base_url: str) -> VerificacionRead:
    """The view of a code: its document's facts and its public addresses."""
    url = domain.url_verificacion(base_url, codigo)
    return VerificacionRead(
        **metadatos.model_dump(),
        csv=codigo,
        url_verificacion=url,
        url_descarga=f"{url}/documento",
        tipo_documental_nombre=domain.nombre_tipo_documental(metadatos.tipo_documental),
    )


def _respuesta(
    encontrado: service.CodigoActivo | None,
    codigo: str,
    *,
    base_url: str,
    como_json: bool,
    instance: str,
) -> Response:
    """Builds the hit answer and the miss answer, whichever it is, then picks one."""
    vista = _vista(encontrado.metadatos if encontrado else _SENUELO, codigo, base_url)
    detalle = f"No hay ningún documento emitido con el código {codigo}."
    si: Response
    no: Response
    if como_json:
        si = JSONResponse(vista.model_dump(mode="json"), headers=_CABECERAS)
        no = problem_response(
            404, detalle, slug="csv-no-encontrado", instance=instance, headers=_CABECERAS
        )
    else:
        # Relative: from /verificar/<csv> it is /verificar/<csv>/documento (the repositorio).
        si = _html(pages.pagina_documento(vista, enlace_descarga=f"{codigo}/documento"), 200)
        no = _html(pages.pagina_no_encontrado(codigo), 404)
    return si if encontrado is not None else no


@router.get(
    "/verificar",
    response_class=HTMLResponse,
    responses={
        200: {"description": "El formulario para escribir el código"},
        303: {"description": "A la página del código escrito"},
        400: _PROBLEMAS[400],
    },
    summary="Formulario público para verificar un documento por su CSV",
)
async def formulario(
    request: Request,
    csv: Annotated[
        str | None,
        Query(
            description="El código, tal como se escribió",
            json_schema_extra={"pattern": PATRON_ESCRITO},
        ),
    ] = None,
) -> Response:
    """The form; submitted (``?csv=``), it sends the person to the code's own page."""
    if csv is None:
        return _html(pages.pagina_formulario(), 200)
    try:
        codigo = domain.normalizar(csv)
    except domain.CodigoMalFormado as exc:
        return _mal_escrito(request, csv, exc.motivo, formulario=True)
    # Relative, so it works behind the gateway's /verificar and at the service's path alike.
    return RedirectResponse(f"verificar/{codigo}", status_code=303, headers=_CABECERAS)


@router.get(
    "/verificar/{csv}",
    response_model=None,
    responses={
        200: {
            "model": VerificacionRead,
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "El documento que el código identifica (HTML, o JSON si se pide)",
        },
        **_PROBLEMAS,
    },
    summary="Verifica un código seguro de verificación",
)
async def verificar(
    csv: Annotated[str, Path(json_schema_extra={"pattern": PATRON_ESCRITO})],
    request: Request,
    runtime: RuntimeDep,
) -> Response:
    """An issued document's facts and download link, for anyone holding its code."""
    try:
        codigo = domain.normalizar(csv)
    except domain.CodigoMalFormado as exc:
        return _mal_escrito(request, csv, exc.motivo, formulario=False)
    como_json = _quiere_json(request.headers.get("accept"))
    limiter = _limitador(request)
    cliente = _cliente(request)
    espera = limiter.retry_after(cliente)
    if espera is not None:
        detalle = f"Demasiados códigos inexistentes: vuelva a intentarlo en {espera} s."
        if como_json:
            return problem_response(
                429,
                detalle,
                slug="demasiadas-peticiones",
                instance=request.url.path,
                headers={**_CABECERAS, "Retry-After": str(espera)},
            )
        return _html(pages.pagina_demasiados(espera), 429, **{"Retry-After": str(espera)})
    encontrado = await service.consultar(runtime.db, codigo)
    respuesta = _respuesta(
        encontrado,
        codigo,
        base_url=runtime.settings.public_base_url,
        como_json=como_json,
        instance=request.url.path,
    )
    if encontrado is None:
        limiter.record_miss(cliente)
    return respuesta
