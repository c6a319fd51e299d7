"""What the fuzz run needs to exist before it starts, and where schemathesis should use it.

Many operations act on a resource in a given state: a liquidación that is paid (to refund
it), a postal notification (to print it), a procedure version in borrador (to publish
it), a document already issued (to verify its CSV). Generated identifiers never name one,
and the state a resource must be in cannot be written in a schema. So, before the run,
this module creates one resource per such operation through the gateway, as a client
would, and answers schemathesis' per-operation parameters: the path identifiers (and the
few body fields) that name what it created. Everything else of those requests is still
generated (and fuzzed) from the schemas, whose examples are valid for the tenant.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from services.pagos.simulador import notificacion_firmada
from tests.support.pades_material import minimal_pdf
from tests.support.pagos import CLAVE_PRUEBAS

__all__ = ["REDSYS", "seed"]

SICRES_EJEMPLO = (
    Path(__file__).parents[1] / "fixtures" / "sicres3" / "ejemplo-ficheroIntercambio.xml"
)
SICRES_ID = "O00002741_13_00000012"
REDSYS = {
    "comercio": "999008881",
    "terminal": "1",
    "clave": CLAVE_PRUEBAS,
    "url": "https://sis-t.redsys.es:25443/sis/realizarPago",
}
NIF = "12345678Z"  # the fuzz token's own NIF: it is the citizen of "mis-" routes too

Overrides = dict[str, dict[str, Any]]


class _Api:
    """The gateway, as the fuzz token's holder calls it; every call must succeed."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def call(
        self, method: str, url: str, *, ok: tuple[int, ...] = (200, 201), **kw: Any
    ) -> Any:
        response = await self.client.request(method, url, **kw)
        assert response.status_code in ok, f"{method} {url}: {response.status_code} {response.text}"
        content_type = response.headers.get("content-type", "")
        return response.json() if "json" in content_type else response.content


async def _eventually(probe: Callable[[], Awaitable[Any]], seconds: float = 60) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await probe()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "the seed never became ready"
        await asyncio.sleep(0.5)


def _interesado(nif: str = NIF, **extra: Any) -> dict[str, Any]:
    return {"tipo_identificador": "NIF", "identificador": nif, "nombre": "Lucía García", **extra}


async def _documento(api: _Api, nombre: str) -> dict[str, Any]:
    metadatos = {
        "organo": "L01030149",
        "origen": "administracion",
        "estado_elaboracion": "EE01",
        "tipo_documental": "TD01",
    }
    files = {
        "metadatos": (None, json.dumps(metadatos), "application/json"),
        "file": (nombre, minimal_pdf(nombre.removesuffix(".pdf")), "application/pdf"),
    }
    documento: dict[str, Any] = await api.call("POST", "/api/v1/documentos", files=files)
    return documento


async def _pagos(api: _Api, otro: _Api) -> Overrides:
    base = "/api/v1/pagos"
    for entidad, emisora in ((api, "030140"), (otro, "462500")):
        await entidad.call(
            "PUT",
            f"{base}/configuracion",
            json={"redsys": REDSYS, "cuaderno60": {"emisora": emisora}},
        )
    await api.call(
        "PUT",
        f"{base}/conceptos/vado",
        json={
            "nombre": "Tasa por entrada de vehículos (vado)",
            "tributo": "105",
            "regla": {"tipo": "por_unidad", "precio_unidad": "12.50", "minimo": "30.00"},
        },
    )

    async def liquidacion() -> dict[str, Any]:
        body = {
            "concepto": "Tasa por licencia de obra menor",
            "importe": "159.00",
            "obligado": _interesado(),
        }
        created: dict[str, Any] = await api.call("POST", f"{base}/liquidaciones", json=body)
        return created

    async def pagada() -> tuple[dict[str, Any], dict[str, str]]:
        datos = await liquidacion()
        formulario = await api.call("POST", f"{base}/liquidaciones/{datos['id']}/pago-tarjeta")
        peticion = json.loads(base64.b64decode(formulario["Ds_MerchantParameters"]))
        firmada = notificacion_firmada(CLAVE_PRUEBAS, peticion, "0000")
        aplicada = await api.call("POST", f"{base}/redsys/notificacion", data=firmada)
        assert aplicada["resultado"] == "aplicada", aplicada
        return datos, firmada

    pendiente, a_anular = await liquidacion(), await liquidacion()
    pagada_1, _ = await pagada()
    pagada_2, _ = await pagada()
    # Redsys' messages are signed with the key of the tenant it finds by the order; the run
    # configures 03014 at random, so the signed message is of an order of the other tenant.
    api = otro
    _, firmada = await pagada()
    op = "/api/v1/pagos/liquidaciones/{liquidacion_id}"
    return {
        f"GET {op}": {"path.liquidacion_id": pendiente["id"]},
        f"GET {op}/carta-de-pago": {"path.liquidacion_id": pendiente["id"]},
        f"POST {op}/pago-tarjeta": {"path.liquidacion_id": pendiente["id"]},
        f"POST {op}/anular": {"path.liquidacion_id": a_anular["id"]},
        f"GET {op}/justificante-pago": {"path.liquidacion_id": pagada_1["id"]},
        f"POST {op}/devolucion": {"path.liquidacion_id": pagada_2["id"]},
        # Redsys signs what it sends: a replayed notification of a paid order is 200.
        "POST /api/v1/pagos/redsys/notificacion": {f"body.{k}": v for k, v in firmada.items()},
        "GET /api/v1/pagos/redsys/vuelta": {f"query.{k}": v for k, v in firmada.items()},
    }


async def _notificaciones(api: _Api, documento_id: str) -> Overrides:
    base = "/api/v1/notificaciones"
    postal = {
        "direccion_postal": {
            "direccion": "Calle Mayor 1",
            "codigo_postal": "03001",
            "municipio": "Alicante/Alacant",
            "provincia": "Alicante",
        }
    }

    async def crear(**interesado: Any) -> str:
        body = {
            "documento_id": documento_id,
            "concepto": "Resolución de la licencia de obra menor",
            "interesados": [_interesado(**interesado)],
        }
        creadas = await api.call("POST", base, json=body)
        return str(creadas["items"][0]["id"])

    abrir = await crear(eligio_electronico=True)
    rechazar = await crear(eligio_electronico=True)
    impreso = await crear(**postal)
    intentos = await crear(**postal)
    publicar = await crear(**postal)
    await api.call(
        "POST",
        f"{base}/{publicar}/intentos",
        json={"resultado": "desconocido", "en": "2026-01-15T10:00:00+01:00"},
    )
    op = "/api/v1/notificaciones/{notificacion_id}"
    return {
        f"GET {op}": {"path.notificacion_id": impreso},
        f"GET {op}/impreso": {"path.notificacion_id": impreso},
        f"POST {op}/acceder": {"path.notificacion_id": abrir},
        f"POST {op}/rechazar": {"path.notificacion_id": rechazar},
        f"POST {op}/intentos": {"path.notificacion_id": intentos},
        f"POST {op}/publicacion": {"path.notificacion_id": publicar},
        # The repositorio must hold the document notified (else 422), and NIF check letters
        # are beyond a schema: the fuzzing phase keeps these two, and generates the rest.
        f"POST {base}": {
            "body.documento_id": documento_id,
            "body.interesados": [_interesado(eligio_electronico=True)],
        },
    }


def _definicion(codigo: str) -> dict[str, Any]:
    return {
        "codigo": codigo,
        "nombre": f"Procedimiento de prueba {codigo}",
        "normativa": ["Ley 39/2015"],
        "plazo_resolucion": {"cantidad": 3, "unidad": "meses"},
        "silencio": "desestimatorio",
        "iniciacion": ["oficio"],
        "flujo": {
            "fase_inicial": "instruccion",
            "fases": [
                {"codigo": "instruccion", "nombre": "Instrucción"},
                {"codigo": "archivo", "nombre": "Archivo", "estado": "archivado"},
            ],
            "acciones": [
                {
                    "codigo": "archivar",
                    "nombre": "Archivar",
                    "tipo": "archivar",
                    "desde": ["instruccion"],
                    "hacia": "archivo",
                },
            ],
        },
    }


async def _tramitador(api: _Api, documento_id: str) -> Overrides:
    base = "/api/v1/tramitador"
    borrador = await api.call(
        "POST", f"{base}/procedimientos", json={"definicion": _definicion("fuzz-publicar")}
    )
    retirable = await api.call(
        "POST", f"{base}/procedimientos", json={"definicion": _definicion("fuzz-retirar")}
    )
    version = f"{base}/procedimientos/fuzz-retirar/versiones/{retirable['version']}"
    await api.call("POST", f"{version}/publicar")

    async def expediente() -> dict[str, Any]:
        body = {"procedimiento": "fuzz-retirar", "asunto": "Prueba", "interesados": [_interesado()]}
        created: dict[str, Any] = await api.call("POST", f"{base}/expedientes", json=body)
        return created

    mio, accionable = await expediente(), await expediente()
    [accion] = [a["codigo"] for a in accionable["acciones"]]
    op = f"{base}/procedimientos/{{codigo}}/versiones/{{version}}"
    leer = {"path.codigo": "licencia-vado", "path.version": 1}
    return {
        f"GET {base}/procedimientos/{{codigo}}/versiones": {"path.codigo": "licencia-vado"},
        f"GET {op}": leer,
        f"GET {op}/yaml": leer,
        f"POST {op}/publicar": {
            "path.codigo": "fuzz-publicar",
            "path.version": borrador["version"],
        },
        f"POST {op}/retirar": {"path.codigo": "fuzz-retirar", "path.version": retirable["version"]},
        f"GET {base}/mis-expedientes/{{expediente_id}}": {"path.expediente_id": mio["id"]},
        f"GET {base}/expedientes/{{expediente_id}}": {"path.expediente_id": mio["id"]},
        f"POST {base}/expedientes/{{expediente_id}}/documentos": {
            "path.expediente_id": mio["id"],
            "body.documento_id": documento_id,
        },
        f"POST {base}/expedientes/{{expediente_id}}/acciones/{{codigo}}": {
            "path.expediente_id": accionable["id"],
            "path.codigo": accion,
        },
    }


def _definicion_eni() -> dict[str, Any]:
    """A procedure whose resolution is issued and notified (and waits for the answer):
    its document enters the foliado and becomes the interesado's to download; an
    interesado who cannot be notified makes an incidencia."""
    return {
        **_definicion("fuzz-eni"),
        "plantillas": [
            {
                "codigo": "resolucion",
                "titulo": "Resolución",
                "tipo_documental": "TD01",
                "texto": "Visto el expediente {numero}, se resuelve: {sentido}.",
            }
        ],
        "flujo": {
            "fase_inicial": "instruccion",
            "fases": [
                {"codigo": "instruccion", "nombre": "Instrucción", "estado": "en_tramite"},
                {
                    "codigo": "notificacion",
                    "nombre": "Notificación",
                    "estado": "resuelto",
                    "espera": {
                        "evento": "notificaciones.notificacion.practicada.v1",
                        "accion": "confirmar-notificacion",
                    },
                },
                {"codigo": "resuelto", "nombre": "Resuelto", "estado": "resuelto"},
            ],
            "acciones": [
                {
                    "codigo": "resolver",
                    "nombre": "Resolver",
                    "tipo": "resolver",
                    "desde": ["instruccion"],
                    "hacia": "notificacion",
                    "sentidos": ["estimada"],
                    "documento": "resolucion",
                },
                {
                    "codigo": "confirmar-notificacion",
                    "nombre": "Confirmar la notificación",
                    "tipo": "confirmar-notificacion",
                    "desde": ["notificacion"],
                    "hacia": "resuelto",
                    "automatica": True,
                },
            ],
        },
    }


async def _eni(api: _Api, documento_id: str, zip_path: Path) -> Overrides:
    """An expediente of the fuzz citizen with a notified resolution, an attached document
    and a signed índice (its export written to ``zip_path`` for the verification); an
    archived one; one whose notification failed (an open incidencia)."""
    base = "/api/v1/tramitador"
    creado = await api.call(
        "POST", f"{base}/procedimientos", json={"definicion": _definicion_eni()}
    )
    await api.call("POST", f"{base}/procedimientos/fuzz-eni/versiones/{creado['version']}/publicar")

    async def resuelto(procedimiento: str, interesado: dict[str, Any]) -> str:
        body = {"procedimiento": procedimiento, "asunto": "Prueba", "interesados": [interesado]}
        expediente = await api.call("POST", f"{base}/expedientes", json=body)
        url = f"{base}/expedientes/{expediente['id']}"
        await api.call("POST", f"{url}/acciones/resolver", json={"sentido": "estimada"})
        return str(expediente["id"])

    # The fuzz citizen chose the electronic channel: the resolution is put at disposal.
    mio = await resuelto("fuzz-eni", _interesado(eligio_electronico=True))
    # A natural person with no channel data cannot be notified: notificaciones fails it.
    sin_canal = await resuelto("fuzz-eni", _interesado("00000000T"))
    url = f"{base}/expedientes/{mio}"

    async def notificado() -> list[dict[str, Any]]:
        mine = await api.call("GET", f"{base}/mis-expedientes/{mio}/documentos")
        items: list[dict[str, Any]] = mine["items"]
        return items

    [resolucion] = await _eventually(notificado)
    adjunto = await api.call(
        "POST", f"{url}/foliado", json={"documento_id": documento_id, "titulo": "Informe"}
    )
    pedido = await api.call("POST", f"{url}/indice", ok=(202,))

    async def firmado() -> bool:
        indices = await api.call("GET", f"{url}/indices")
        [version] = [i for i in indices["items"] if i["version"] == pedido["version"]]
        assert version["estado"] != "fallido", version
        return bool(version["estado"] == "firmado")

    await _eventually(firmado)
    zip_path.write_bytes(await api.call("GET", f"{url}/eni"))

    async def incidencia() -> list[str]:
        detalle = await api.call("GET", f"{base}/expedientes/{sin_canal}")
        return [i["id"] for i in detalle["incidencias"] if i["estado"] == "abierta"]

    [incidencia_id] = await _eventually(incidencia)

    archivable = await api.call(
        "POST",
        f"{base}/expedientes",
        json={"procedimiento": "fuzz-retirar", "asunto": "Prueba", "interesados": [_interesado()]},
    )
    await api.call("POST", f"{base}/expedientes/{archivable['id']}/acciones/archivar")

    async def archivado() -> bool:
        response = await api.client.get(f"{base}/archivo/{archivable['id']}")
        return response.status_code == 200

    await _eventually(archivado)
    op = f"{base}/expedientes/{{expediente_id}}"
    uno = {"path.expediente_id": mio}
    return {
        f"GET {op}/foliado": uno,
        f"POST {op}/foliado": {**uno, "body.documento_id": documento_id},
        f"POST {op}/foliado/{{orden}}/retirada": {**uno, "path.orden": adjunto["orden"]},
        f"POST {op}/indice": uno,
        f"GET {op}/indice": uno,
        f"GET {op}/indices": uno,
        f"GET {op}/eni": uno,
        f"GET {base}/archivo/{{expediente_id}}": {"path.expediente_id": archivable["id"]},
        f"GET {base}/mis-expedientes/{{expediente_id}}/indice": uno,
        f"GET {base}/mis-expedientes/{{expediente_id}}/documentos": uno,
        f"GET {base}/mis-expedientes/{{expediente_id}}/documentos/{{orden}}": {
            **uno,
            "path.orden": resolucion["orden"],
        },
        # Staff give the channel data of the interesado who lacked it (any other
        # identifier is not an interesado of the expediente: 422).
        f"POST {op}/incidencias/{{incidencia_id}}/resolver": {
            "path.expediente_id": sin_canal,
            "path.incidencia_id": incidencia_id,
            "body.interesados": [
                {"identificador": "00000000T", "eligio_electronico": True, "email": "a@b.es"}
            ],
        },
    }


async def _registro(api: _Api) -> Overrides:
    base = "/api/v1/registro/intercambios"
    ejemplo = SICRES_EJEMPLO.read_bytes()
    xml = {"Content-Type": "application/xml"}

    async def recibir(n: int) -> str:
        # One open exchange per identifier: each seed is the sample under its own number.
        data = ejemplo.replace(SICRES_ID.encode(), f"{SICRES_ID[:-2]}{n:02d}".encode())
        recibido = await api.call("POST", base, content=data, headers=xml)
        return str(recibido["id"])

    aceptar, rechazar, rechazado = await recibir(21), await recibir(22), await recibir(23)
    await api.call("POST", f"{base}/{rechazado}/rechazar", json={"motivo": "No es competencia"})
    # The libro of an oficina of its own, so that closing it holds no other registration up.
    oficina = {"codigo": "O00099999", "nombre": "Oficina de la prueba de fuzzing"}
    await api.call("POST", "/api/v1/registro/oficinas", json=oficina)
    libro = await api.call(
        "POST", "/api/v1/registro/libros", json={"tipo": "salida", "oficina": oficina["codigo"]}
    )
    await api.call(
        "POST",
        f"/api/v1/registro/libros/{libro['id']}/cerrar",
        json={"motivo": "Fin del ejercicio"},
    )
    op = f"{base}/{{intercambio_id}}"
    return {
        f"GET {op}": {"path.intercambio_id": aceptar},
        f"GET {op}/mensaje": {"path.intercambio_id": aceptar},
        f"POST {op}/aceptar": {"path.intercambio_id": aceptar},
        f"POST {op}/rechazar": {"path.intercambio_id": rechazar},
        f"GET {op}/rechazo": {"path.intercambio_id": rechazado},
        "POST /api/v1/registro/libros/{libro_id}/abrir": {"path.libro_id": libro["id"]},
    }


async def _documentos(api: _Api) -> tuple[Overrides, str]:
    base = "/api/v1/documentos"
    documento = await _documento(api, "resolucion.pdf")
    a_emitir = await _documento(api, "decreto.pdf")
    emitido = await _documento(api, "certificado.pdf")
    primera = await api.call("POST", f"{base}/{emitido['id']}/emitir", ok=(201, 202))
    emision_id = primera.get("emision_id") or primera["id"]
    emision_url = f"{base}/{emitido['id']}/emisiones/{emision_id}"

    async def csv() -> str | None:
        emision = await api.call("GET", emision_url)
        assert emision["estado"] != "fallida", emision
        return emision.get("csv")

    codigo = await _eventually(csv)
    op = f"{base}/{{documento_id}}"
    uno = {"path.documento_id": documento["id"]}
    return {
        f"GET {op}": uno,
        f"GET {op}/contenido": uno,
        f"GET {op}/versiones": uno,
        f"POST {op}/versiones": uno,
        f"GET {op}/versiones/{{version}}": {**uno, "path.version": 1},
        f"GET {op}/versiones/{{version}}/contenido": {**uno, "path.version": 1},
        f"POST {op}/emitir": {"path.documento_id": a_emitir["id"]},
        f"GET {op}/emisiones/{{emision_id}}": {
            "path.documento_id": emitido["id"],
            "path.emision_id": emision_id,
        },
        "GET /api/v1/csv/verificar/{csv}": {"path.csv": codigo},
        f"GET {base}/verificar/{{csv}}/documento": {"path.csv": codigo},
    }, str(documento["id"])


async def seed(
    client: httpx.AsyncClient, other_tenant: httpx.AsyncClient, eni_zip: Path
) -> Overrides:
    """Creates what the fuzzed operations act on; answers per-operation parameters.

    ``client`` calls as the fuzz token; ``other_tenant`` as staff of another council;
    ``eni_zip`` receives an exported expediente (the body ``POST /verificaciones`` checks).
    """
    api = _Api(client)
    documentos, documento_id = await _documentos(api)
    return {
        **documentos,
        **await _pagos(api, _Api(other_tenant)),
        **await _notificaciones(api, documento_id),
        **await _tramitador(api, documento_id),
        **await _eni(api, documento_id, eni_zip),
        **await _registro(api),
    }
