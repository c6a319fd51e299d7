"""The public verification pages, as plain HTML that works without JavaScript.

Every page is Spanish (``lang="es"``), has one ``h1``, labels its one field and
announces errors next to it. Links and the form's action are relative, because
the same page is reached at the gateway's ``/verificar`` and at the service's
``/api/v1/csv/verificar``. The stylesheet is inline and allowed by its hash in
the Content-Security-Policy (:data:`CONTENT_SECURITY_POLICY`), so nothing else
inline can ever run or style the page.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from services.csv.schemas import VerificacionRead

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "pagina_demasiados",
    "pagina_documento",
    "pagina_formulario",
    "pagina_mal_formado",
    "pagina_no_encontrado",
]

_ESTILO = (
    "body{margin:0;font-family:system-ui,sans-serif;line-height:1.5;color:#1b1b1b;"
    "background:#f5f5f2}"
    "header,footer{background:#1d3d5c;color:#fff;padding:.75rem 1rem}"
    "footer{background:#e8e8e3;color:#1b1b1b;font-size:.9rem}"
    "main{max-width:44rem;margin:0 auto;padding:1rem 1rem 2rem;background:#fff}"
    "h1{font-size:1.6rem;margin:.5rem 0 1rem}"
    "label{display:block;font-weight:600;margin-top:1rem}"
    "input{font:inherit;font-family:ui-monospace,monospace;font-size:1.1rem;width:100%;"
    "max-width:22rem;padding:.4rem;border:2px solid #1b1b1b;box-sizing:border-box}"
    "input[aria-invalid=true]{border-color:#a4000f}"
    "button{font:inherit;margin-top:.75rem;padding:.5rem 1.25rem;color:#fff;"
    "background:#1d3d5c;border:2px solid #1d3d5c;cursor:pointer}"
    "a{color:#0b4f8a}"
    "a:focus,input:focus,button:focus{outline:3px solid #f2b600;outline-offset:2px}"
    ".ayuda{color:#454545;margin:.25rem 0}"
    ".error{color:#a4000f;font-weight:600;border-left:4px solid #a4000f;padding-left:.5rem}"
    ".correcto{border-left:4px solid #1e6b2e;padding-left:.5rem}"
    ".csv,code{font-family:ui-monospace,monospace;overflow-wrap:anywhere}"
    "dl{display:grid;grid-template-columns:minmax(9rem,auto) 1fr;gap:.4rem 1rem}"
    "dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}"
    ".descarga{font-size:1.1rem;font-weight:600}"
)
_ESTILO_HASH = base64.b64encode(hashlib.sha256(_ESTILO.encode()).digest()).decode()

CONTENT_SECURITY_POLICY = (
    f"default-src 'self'; style-src 'sha256-{_ESTILO_HASH}'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

_MADRID = ZoneInfo("Europe/Madrid")
_MESES = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)


def _pagina(titulo: str, cuerpo: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="es">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(titulo)} · Verificación de documentos</title>\n"
        f"<style>{_ESTILO}</style>\n</head>\n<body>\n"
        "<header>Sede electrónica · Verificación de documentos</header>\n"
        f"<main>\n{cuerpo}\n</main>\n"
        "<footer>Los documentos electrónicos de las administraciones llevan un código seguro "
        "de verificación (artículo 42 de la Ley 40/2015): con él cualquiera puede comprobar "
        "aquí que un documento es auténtico y está íntegro.</footer>\n"
        "</body>\n</html>\n"
    )


def _formulario(accion: str, valor: str = "", error: str | None = None) -> str:
    """The one-field form; it GETs ``accion?csv=…`` so it needs no JavaScript."""
    describe = "csv-ayuda csv-error" if error else "csv-ayuda"
    invalido = ' aria-invalid="true"' if error else ""
    aviso = f'<p id="csv-error" class="error">{escape(error)}</p>\n' if error else ""
    return (
        f'<form method="get" action="{escape(accion)}">\n'
        '<label for="csv">Código seguro de verificación (CSV)</label>\n'
        '<p id="csv-ayuda" class="ayuda">25 letras y cifras, como aparece al pie del documento: '
        '<span class="csv">ABCDE-FGHJK-LMNPQ-RSTUV-WXYZ2</span>. Da igual escribirlo con '
        "mayúsculas o minúsculas, con o sin guiones.</p>\n"
        f"{aviso}"
        f'<input id="csv" name="csv" type="text" value="{escape(valor)}" required '
        'maxlength="100" autocomplete="off" autocapitalize="characters" spellcheck="false" '
        f'aria-describedby="{describe}"{invalido}>\n'
        '<button type="submit">Verificar</button>\n'
        "</form>"
    )


def pagina_formulario(*, valor: str = "", error: str | None = None) -> str:
    """``/verificar``: where a person types the code printed on a document."""
    titulo = "Código mal escrito" if error else "Verificar un documento"
    intro = (
        "<p>Escriba el código seguro de verificación que figura en el documento para ver sus "
        "datos y descargar el original.</p>\n"
    )
    return _pagina(titulo, f"<h1>{titulo}</h1>\n{intro}{_formulario('verificar', valor, error)}")


def _fecha(valor: datetime) -> str:
    local = valor.astimezone(_MADRID)
    texto = f"{local.day} de {_MESES[local.month - 1]} de {local.year}, {local:%H:%M:%S}"
    return f'<time datetime="{valor.isoformat()}">{texto} (hora de Madrid)</time>'


def _legible(octetos: int) -> str:
    """``73406`` → ``71,7 KB`` (Spanish decimal comma)."""
    if octetos < 1024:
        return f"{octetos} bytes"
    unidad, escala = ("MB", 1024**2) if octetos >= 1024**2 else ("KB", 1024)
    return f"{octetos / escala:.1f}".replace(".", ",") + f" {unidad}"


def _tamano(octetos: int) -> str:
    exacto = f"{octetos:,}".replace(",", ".") + " bytes"
    return exacto if octetos < 1024 else f"{exacto} ({_legible(octetos)})"


def pagina_documento(vista: VerificacionRead, *, enlace_descarga: str) -> str:
    """``/verificar/{csv}`` for an active code: the document's facts and the download link."""
    datos = (
        ("Entidad", escape(vista.entidad)),
        ("Documento", escape(vista.nombre_fichero)),
        ("Identificador ENI", f"<code>{escape(vista.identificador)}</code>"),
        ("Tipo documental", escape(vista.tipo_documental_nombre)),
        ("Órgano (DIR3)", f"<code>{escape(vista.organo)}</code>"),
        ("Fecha de emisión", _fecha(vista.emitido_en)),
        ("Sellado por", escape(vista.firmante)),
        ("Sello de tiempo", _fecha(vista.sello_tiempo)),
        ("Huella SHA-256", f"<code>{escape(vista.sha256)}</code>"),
        ("Tamaño", _tamano(vista.tamano)),
    )
    lista = "\n".join(f"<dt>{nombre}</dt><dd>{valor}</dd>" for nombre, valor in datos)
    cuerpo = (
        "<h1>Documento auténtico</h1>\n"
        f'<p class="correcto">El código <strong class="csv">{escape(vista.csv)}</strong> '
        f"corresponde a un documento emitido por {escape(vista.entidad)}. "
        "Compare el que tiene con el original que puede descargar aquí: deben coincidir.</p>\n"
        f"<dl>\n{lista}\n</dl>\n"
        f'<p><a class="descarga" href="{escape(enlace_descarga)}" type="application/pdf">'
        f"Descargar el documento original (PDF, {_legible(vista.tamano)})</a></p>\n"
        '<p><a href="../verificar">Verificar otro documento</a></p>'
    )
    return _pagina("Documento auténtico", cuerpo)


def pagina_no_encontrado(codigo: str) -> str:
    """``/verificar/{csv}`` for a well-formed code that names no issued document."""
    cuerpo = (
        "<h1>No hay ningún documento con este código</h1>\n"
        f'<p>No consta ningún documento emitido con el código <strong class="csv">'
        f"{escape(codigo)}</strong>. Compruebe que lo ha copiado tal como aparece en el "
        "documento. Si es así, el documento no es auténtico o su emisión no llegó a "
        "completarse: consulte a la entidad que se lo entregó.</p>\n"
        f"{_formulario('../verificar', codigo)}"
    )
    return _pagina("Documento no encontrado", cuerpo)


def pagina_mal_formado(valor: str, motivo: str) -> str:
    """``/verificar/{csv}`` for something that cannot be a code: why, and the form again."""
    cuerpo = (
        "<h1>Código mal escrito</h1>\n"
        "<p>Lo que ha escrito no puede ser un código seguro de verificación, así que no se ha "
        "buscado ningún documento. Corríjalo y vuelva a intentarlo.</p>\n"
        f"{_formulario('../verificar', valor, motivo)}"
    )
    return _pagina("Código mal escrito", cuerpo)


def pagina_demasiados(segundos: int) -> str:
    """Too many codes that did not exist: wait before trying again."""
    cuerpo = (
        "<h1>Demasiados intentos</h1>\n"
        "<p>Se han consultado desde su conexión demasiados códigos que no existen. Por "
        f"seguridad, espere {segundos} segundos antes de volver a intentarlo.</p>"
    )
    return _pagina("Demasiados intentos", cuerpo)
