"""A Redsys simulator that speaks the real redirection protocol, for tests and ``make dev``.

Redsys is a third party we cannot run, so this stands in for its payment page
(``/sis/realizarPago``): it takes the merchant's form (``Ds_SignatureVersion``,
``Ds_MerchantParameters``, ``Ds_Signature``), checks the signature with the
merchant's key as Redsys does (an error page ``SIS0042`` otherwise), shows a card
form, and on "Pagar" posts the signed online notification (``Ds_*`` parameters,
base64url signature) to ``Ds_Merchant_MerchantURL`` before sending the browser
back to ``Ds_Merchant_UrlOK`` or ``Ds_Merchant_UrlKO`` with the same three fields.

Cards follow Redsys' test environment: 4548 8120 4940 0004 is authorised
(``Ds_Response`` 0000); any other number is denied (0190, "denegada sin
especificar el motivo").
"""

from __future__ import annotations

import html
import logging
import secrets
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.pagos import redsys

__all__ = ["TARJETA_AUTORIZADA", "crear_simulador", "notificacion_firmada", "router_simulador"]

_log = logging.getLogger("consistorio.pagos.simulador")

TARJETA_AUTORIZADA = "4548812049400004"
# Redsys' public test merchant and key: what a fresh `make dev` tenant uses.
CLAVES_DE_PRUEBA = {"999008881": "sq7HjrUOBfKmC576ILgskD5srU870gJ7"}
_MADRID = ZoneInfo("Europe/Madrid")


def _campo(parametros: dict[str, Any], nombre: str) -> str:
    """A merchant parameter whatever its case (Redsys accepts DS_MERCHANT_X and Ds_Merchant_X)."""
    buscado = nombre.upper()
    for clave, valor in parametros.items():
        if clave.upper() == buscado:
            return str(valor)
    return ""


def notificacion_firmada(
    clave: str, peticion: dict[str, Any], respuesta: str, *, ahora: datetime | None = None
) -> dict[str, str]:
    """The three fields Redsys posts to the merchant for a request and a ``Ds_Response``."""
    ahora = (ahora or datetime.now(_MADRID)).astimezone(_MADRID)
    orden = _campo(peticion, "Ds_Merchant_Order")
    autorizada = redsys.pago_autorizado(respuesta)
    parametros = {
        "Ds_Date": ahora.strftime("%d/%m/%Y"),
        "Ds_Hour": ahora.strftime("%H:%M"),
        "Ds_SecurePayment": "1" if autorizada else "0",
        "Ds_Amount": _campo(peticion, "Ds_Merchant_Amount"),
        "Ds_Currency": _campo(peticion, "Ds_Merchant_Currency") or "978",
        "Ds_Order": orden,
        "Ds_MerchantCode": _campo(peticion, "Ds_Merchant_MerchantCode"),
        "Ds_Terminal": _campo(peticion, "Ds_Merchant_Terminal").zfill(3),
        "Ds_Response": respuesta,
        "Ds_MerchantData": _campo(peticion, "Ds_Merchant_MerchantData"),
        "Ds_TransactionType": _campo(peticion, "Ds_Merchant_TransactionType") or "0",
        "Ds_ConsumerLanguage": "1",
        "Ds_AuthorisationCode": f"{secrets.randbelow(10**6):06d}" if autorizada else "",
        "Ds_Card_Country": "724",
    }
    codificados = redsys.codificar_parametros(parametros)
    firma = redsys.firmar(clave, orden, codificados).replace("+", "-").replace("/", "_")
    return {
        "Ds_SignatureVersion": redsys.FIRMA_VERSION,
        "Ds_MerchantParameters": codificados,
        "Ds_Signature": firma,
    }


def _pagina(titulo: str, cuerpo: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang='es'><head><meta charset='utf-8'><title>{titulo}</title>"
        f"</head><body><h1>{titulo}</h1>{cuerpo}</body></html>",
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _verificada(
    claves: dict[str, str], version: str, parametros: str, firma: str
) -> tuple[dict[str, Any], str] | None:
    """The merchant's parameters and key if the request's signature holds, else None."""
    try:
        datos = redsys.decodificar_parametros(parametros)
    except redsys.FirmaNoValida:
        return None
    clave = claves.get(_campo(datos, "Ds_Merchant_MerchantCode"))
    orden = _campo(datos, "Ds_Merchant_Order")
    if clave is None or version != redsys.FIRMA_VERSION or not redsys.orden_valida(orden):
        return None
    try:
        recibida = redsys.firmar(clave, orden, parametros)
    except ValueError:
        return None
    if not secrets.compare_digest(recibida.encode(), firma.strip().encode()):
        return None
    return datos, clave


Campo = Annotated[str, Form(max_length=8192)]


def router_simulador(claves: dict[str, str] | None = None) -> APIRouter:
    """The simulator's routes (``/sis/realizarPago`` and ``/sis/confirmar``)."""
    comercios = dict(CLAVES_DE_PRUEBA if claves is None else claves)
    router = APIRouter(tags=["simulador Redsys"], include_in_schema=False)

    @router.post("/sis/realizarPago")
    async def realizar_pago(
        Ds_SignatureVersion: Campo,  # noqa: N803 - Redsys' field names
        Ds_MerchantParameters: Campo,  # noqa: N803
        Ds_Signature: Campo,  # noqa: N803
    ) -> Response:
        """The payment page: the order, the amount and a card form."""
        verificada = _verificada(
            comercios, Ds_SignatureVersion, Ds_MerchantParameters, Ds_Signature
        )
        if verificada is None:
            return _pagina("SIS0042", "<p>Error en el cálculo de la firma.</p>", 200)
        datos, _ = verificada
        importe = int(_campo(datos, "Ds_Merchant_Amount") or 0)
        ocultos = "".join(
            f"<input type='hidden' name='{n}' value='{html.escape(v, quote=True)}'>"
            for n, v in (
                ("Ds_SignatureVersion", Ds_SignatureVersion),
                ("Ds_MerchantParameters", Ds_MerchantParameters),
                ("Ds_Signature", Ds_Signature),
            )
        )
        return _pagina(
            "Simulador de Redsys",
            f"<p>Pedido <span id='orden'>{html.escape(_campo(datos, 'Ds_Merchant_Order'))}</span>"
            f" · Importe <span id='importe'>{importe // 100},{importe % 100:02d} €</span></p>"
            f"<p>{html.escape(_campo(datos, 'Ds_Merchant_ProductDescription'))}</p>"
            f"<form method='post' action='confirmar'>{ocultos}"
            "<label>Tarjeta <input id='tarjeta' name='tarjeta' "
            f"value='{TARJETA_AUTORIZADA}' maxlength='19'></label> "
            "<button id='pagar' type='submit'>Pagar</button></form>",
        )

    @router.post("/sis/confirmar")
    async def confirmar(
        request: Request,
        Ds_SignatureVersion: Campo,  # noqa: N803
        Ds_MerchantParameters: Campo,  # noqa: N803
        Ds_Signature: Campo,  # noqa: N803
        tarjeta: Annotated[str, Form(max_length=19)],
    ) -> Response:
        """Authorises or denies, notifies the merchant, and sends the browser back."""
        verificada = _verificada(
            comercios, Ds_SignatureVersion, Ds_MerchantParameters, Ds_Signature
        )
        if verificada is None:
            return _pagina("SIS0042", "<p>Error en el cálculo de la firma.</p>", 200)
        datos, clave = verificada
        respuesta = "0000" if tarjeta.replace(" ", "") == TARJETA_AUTORIZADA else "0190"
        campos = notificacion_firmada(clave, datos, respuesta)
        destino = _campo(datos, "Ds_Merchant_MerchantURL")
        if destino:
            cliente: httpx.AsyncClient | None = getattr(request.app.state, "redsys_cliente", None)
            try:
                if cliente is None:
                    async with httpx.AsyncClient(timeout=10) as propio:
                        entregada = await propio.post(destino, data=campos)
                else:
                    entregada = await cliente.post(destino, data=campos)
                _log.info(
                    "notification of order %s delivered: HTTP %s",
                    _campo(datos, "Ds_Merchant_Order"),
                    entregada.status_code,
                )
            except httpx.HTTPError as exc:
                # Real Redsys retries later; the browser's return is unaffected.
                _log.warning("notification to %s failed: %s", destino, exc)
        vuelta = _campo(datos, "Ds_Merchant_UrlOK" if respuesta == "0000" else "Ds_Merchant_UrlKO")
        if not vuelta:
            estado = "autorizada" if respuesta == "0000" else "denegada"
            return _pagina(f"Operación {estado}", f"<p id='resultado'>{respuesta}</p>")
        separador = "&" if "?" in vuelta else "?"
        return RedirectResponse(f"{vuelta}{separador}{urlencode(campos)}", status_code=303)

    return router


def crear_simulador(
    claves: dict[str, str] | None = None, *, cliente: httpx.AsyncClient | None = None
) -> FastAPI:
    """The simulator as its own app; ``cliente`` delivers notifications (tests use ASGI)."""
    app = FastAPI(title="Simulador de Redsys", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router_simulador(claves))
    app.state.redsys_cliente = cliente
    return app
