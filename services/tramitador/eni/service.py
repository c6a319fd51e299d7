"""Use cases of the expediente electrónico: foliar documents, freeze and sign the índice
(through the sellado's ``sellado.xml.firmar.v1``), settle the signature, read them back.

The tramitador holds no key: a frozen índice is sent to the sellado, which answers with
the XAdES-T signed bytes; they are kept as they came (re-serialising would break the
signature) and never change after (a trigger refuses it).
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bus.envelope import ReceivedEvent
from services.common.errors import Conflict, NotFound
from services.common.tenants import tenants_table
from services.common.uow import UnitOfWork
from services.tramitador.documentos.schemas import DocumentoAdjunto, DocumentoRead
from services.tramitador.eni import domain
from services.tramitador.eni.models import anexos, archivo, foliado, indices
from services.tramitador.expedientes import service as expedientes_service
from services.tramitador.expedientes.models import expedientes
from services.tramitador.procedimientos.service import definicion_de

__all__ = [
    "CAUSA_REMISION",
    "FIRMAR_XML",
    "SOLICITANTE",
    "SinDocumentos",
    "XML_FIRMADO",
    "XML_RECHAZADO",
    "congelar_indice",
    "consultar_archivo",
    "consultar_indice",
    "documento_notificado",
    "documentos_del_indice",
    "comprobar_abierto",
    "expediente_de",
    "foliar_anexos_del_asiento",
    "foliar_adjunto",
    "foliar_emitido",
    "identificador_de",
    "incorporar_adjunto",
    "listar_archivo",
    "listar_foliado",
    "listar_indices",
    "marcar_notificado",
    "recibir_anexo",
    "registrar_archivo",
    "registrar_firma",
    "registrar_reapertura",
    "retirar_documento",
]

FIRMAR_XML = "sellado.xml.firmar.v1"
# The índice frozen to remit the expediente (ENI Estado E03 while it is open).
CAUSA_REMISION = "remision"
XML_FIRMADO = "sellado.xml.firmado.v1"
XML_RECHAZADO = "sellado.xml.rechazado.v1"
SOLICITANTE = "tramitador"
# The regulation the council's CSVs are generated under (the ENI's RegulacionGeneracionCSV).
REGULACION_CSV = "Ley 40/2015, art. 42.b); Real Decreto 203/2021, art. 21"


async def expediente_de(
    session: AsyncSession, *, tenant_id: str, expediente_id: str, interesado: str | None = None
) -> dict[str, Any]:
    """The expediente's row; another tenant's (or, for a citizen, anybody else's) is a 404."""
    try:
        uuid.UUID(expediente_id)
    except ValueError:
        raise NotFound(f"No existe el expediente {expediente_id}.") from None
    query = select(expedientes).where(
        expedientes.c.tenant_id == tenant_id, expedientes.c.id == expediente_id
    )
    if interesado is not None:
        query = query.where(expedientes.c.interesados.contains([{"identificador": interesado}]))
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(f"No existe el expediente {expediente_id}.")
    return dict(row._mapping)


def _json(row: dict[str, Any]) -> dict[str, Any]:
    """The row as the audit log keeps it (dates as ISO 8601 text)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


async def _siguiente_orden(uow: UnitOfWork, expediente_id: str) -> int:
    # Entries of one expediente are numbered one at a time: a transaction lock per
    # expediente, then the next number (the unique key is the last guard).
    await uow.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"eni-foliado:{expediente_id}"}
    )
    ultimo = (
        await uow.session.execute(
            select(func.coalesce(func.max(foliado.c.orden), 0)).where(
                foliado.c.expediente_id == expediente_id
            )
        )
    ).scalar_one()
    return int(ultimo) + 1


async def _foliar(uow: UnitOfWork, *, expediente_id: str, fila: dict[str, Any]) -> dict[str, Any]:
    orden = await _siguiente_orden(uow, expediente_id)
    row = {
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "expediente_id": expediente_id,
        "orden": orden,
        "incorporado_por": (uow.actor.name or uow.actor.sub)[:200],
        "incorporado_at": datetime.now(UTC),
        **fila,
    }
    # The entry as stored, every column: a withdrawal names no document (its columns are
    # null), and the answer shows them so.
    stored = dict(
        (await uow.session.execute(insert(foliado).values(**row).returning(*foliado.c)))
        .mappings()
        .one()
    )
    uow.audit(action="foliar", entity="expediente", entity_id=expediente_id, new=_json(stored))
    return stored


async def foliar_emitido(
    uow: UnitOfWork, *, expediente_id: str, titulo: str, emitido: dict[str, Any]
) -> dict[str, Any]:
    """An issued document (``repositorio.documento.emitido.v1``) enters the expediente, with
    the digest, identifier and metadata the repositorio recorded for the issued version."""
    return await _foliar(
        uow,
        expediente_id=expediente_id,
        fila={
            "origen": "emitido",
            "documento_id": emitido["documento_id"],
            "version": int(emitido["version"]),
            "identificador": emitido["identificador"],
            "titulo": titulo,
            "nombre": emitido["nombre_fichero"],
            "mime": "application/pdf",
            "tamano": int(emitido["tamano"]),
            "funcion_resumen": "SHA256",
            "huella": emitido["sha256"],
            "metadatos": {
                "organo": emitido["organo"],
                "fecha_captura": emitido["emitido_en"],
                "origen": "administracion",
                "estado_elaboracion": "EE01",
                "tipo_documental": emitido["tipo_documental"],
                "formato": "PDF",
                "csv": emitido["csv"],
                "firma": "TF06",
            },
        },
    )


async def foliar_adjunto(
    uow: UnitOfWork, *, expediente_id: str, titulo: str, version: dict[str, Any], origen: str
) -> dict[str, Any]:
    """A document of the repositorio (staff's attachment, or an anexo of the starting
    asiento) enters the expediente with the version's digest and ENI metadata."""
    metadatos = version["metadatos"]
    return await _foliar(
        uow,
        expediente_id=expediente_id,
        fila={
            "origen": origen,
            "documento_id": version["documento_id"],
            "version": int(version["version"]),
            "identificador": metadatos["identificador"],
            "titulo": titulo,
            "nombre": version["nombre"],
            "mime": version["mime"],
            "tamano": int(version["tamano"]),
            "funcion_resumen": "SHA256",
            "huella": version["sha256"],
            "metadatos": {
                "organo": metadatos["organo"],
                "fecha_captura": metadatos["fecha_captura"],
                "origen": metadatos["origen"],
                "estado_elaboracion": metadatos["estado_elaboracion"],
                "identificador_documento_origen": metadatos.get("identificador_documento_origen"),
                "tipo_documental": metadatos["tipo_documental"],
                "formato": metadatos["formato"],
            },
        },
    )


async def incorporar_adjunto(
    uow: UnitOfWork,
    *,
    expediente_id: str,
    documento_id: str,
    titulo: str,
    version: dict[str, Any],
) -> tuple[DocumentoRead, dict[str, Any]]:
    """Staff attach a stored document: it is listed among the expediente's documents (with
    its history line) and foliado with the ``version`` the repositorio recorded, in one
    transaction. Both routes that attach a document call this, so none enters the
    expediente without entering its foliado; an archived expediente refuses it (409)."""
    await comprobar_abierto(uow, expediente_id=expediente_id)
    documento = await expedientes_service.adjuntar_documento(
        uow,
        expediente_id=expediente_id,
        datos=DocumentoAdjunto(documento_id=documento_id, titulo=titulo),
    )
    fila = await foliar_adjunto(
        uow, expediente_id=expediente_id, titulo=titulo, version=version, origen="adjunto"
    )
    return documento, fila


async def retirar_documento(
    uow: UnitOfWork, *, expediente_id: str, orden: int, motivo: str
) -> dict[str, Any]:
    """Withdraws an entry: a new entry says so; the document stays in the índice (an
    expediente's documents are never removed)."""
    await _abierto(uow.session, tenant_id=uow.tenant_id, expediente_id=expediente_id)
    retirado = (
        await uow.session.execute(
            select(foliado).where(
                foliado.c.expediente_id == expediente_id,
                foliado.c.orden == orden,
                foliado.c.origen != "retirada",
            )
        )
    ).first()
    if retirado is None:
        raise NotFound(f"El expediente no tiene el documento {orden}.")
    ya = (
        await uow.session.execute(
            select(foliado.c.orden).where(
                foliado.c.expediente_id == expediente_id, foliado.c.retira == orden
            )
        )
    ).first()
    if ya is not None:
        raise Conflict(f"El documento {orden} ya se retiró (entrada {ya.orden}).")
    return await _foliar(
        uow,
        expediente_id=expediente_id,
        fila={
            "origen": "retirada",
            "retira": orden,
            "titulo": f"Retirada: {retirado.titulo}"[:300],
            "motivo": motivo,
        },
    )


class SinDocumentos(Conflict):
    """409: an índice lists at least one document, and the expediente has none yet."""


async def comprobar_abierto(uow: UnitOfWork, *, expediente_id: str) -> dict[str, Any]:
    """The expediente, if it may still change: an archived one is read-only (409)."""
    return await _abierto(uow.session, tenant_id=uow.tenant_id, expediente_id=expediente_id)


async def _abierto(session: AsyncSession, *, tenant_id: str, expediente_id: str) -> dict[str, Any]:
    expediente = await expediente_de(session, tenant_id=tenant_id, expediente_id=expediente_id)
    if expediente["estado"] == "archivado":
        raise Conflict("El expediente está archivado: es de solo lectura.")
    return expediente


async def identificador_de(
    session: AsyncSession, tenant_id: str, expediente: dict[str, Any]
) -> str:
    """The expediente's ENI identifier, ``ES_<DIR3>_<year>_EXP_<id>``."""
    dir3 = (
        await session.execute(
            select(tenants_table.c.dir3).where(tenants_table.c.ine_code == tenant_id)
        )
    ).scalar_one()
    return domain.identificador_expediente(
        str(dir3), int(expediente["anio"]), int(expediente["secuencia"])
    )


async def listar_foliado(session: AsyncSession, *, expediente_id: str) -> list[dict[str, Any]]:
    """Every entry of the expediente's foliado, in order."""
    rows = await session.execute(
        select(foliado).where(foliado.c.expediente_id == expediente_id).order_by(foliado.c.orden)
    )
    return [dict(r._mapping) for r in rows]


async def _metadatos(
    session: AsyncSession, tenant_id: str, expediente: dict[str, Any], *, remision: bool = False
) -> domain.MetadatosExpediente:
    dir3 = (
        await session.execute(
            select(tenants_table.c.dir3).where(tenants_table.c.ine_code == tenant_id)
        )
    ).scalar_one()
    definicion = await definicion_de(
        session,
        tenant_id=tenant_id,
        codigo=expediente["procedimiento"],
        version=expediente["procedimiento_version"],
    )
    organo = definicion.data.get("organo_competente") or dir3
    return domain.MetadatosExpediente(
        identificador=domain.identificador_expediente(
            str(dir3), int(expediente["anio"]), int(expediente["secuencia"])
        ),
        organos=(str(organo),),
        fecha_apertura=expediente["fecha_inicio"],
        # The SIA code when the procedure has one, else the council's own code of it.
        clasificacion=str(
            definicion.data.get("sia") or f"{dir3}_PRO_{expediente['procedimiento']}"
        ),
        estado=domain.estado_eni(str(expediente["estado"]), remision=remision),
        interesados=tuple(
            str(i["identificador"]) for i in expediente["interesados"] if i.get("identificador")
        ),
    )


def _indizados(filas: list[dict[str, Any]]) -> list[domain.DocumentoIndizado]:
    return [
        domain.DocumentoIndizado(
            orden=f["orden"],
            identificador=f["identificador"],
            huella=base64.b64encode(bytes.fromhex(f["huella"])).decode("ascii"),
            funcion=f["funcion_resumen"],
            fecha_incorporacion=f["incorporado_at"],
        )
        for f in filas
        if f["origen"] != "retirada"
    ]


async def congelar_indice(
    uow: UnitOfWork, *, expediente_id: str, causa: str, fase: str | None = None
) -> dict[str, Any] | None:
    """Freezes the índice as it stands (every document foliado so far) and asks the
    sellado to sign it; None when the expediente has no document yet. ``causa``
    ``remision`` freezes the índice an expediente is remitted with (Estado E03 while
    it is open)."""
    expediente = await expediente_de(
        uow.session, tenant_id=uow.tenant_id, expediente_id=expediente_id
    )
    filas = await listar_foliado(uow.session, expediente_id=expediente_id)
    documentos = _indizados(filas)
    if not documentos:
        return None
    meta = await _metadatos(
        uow.session, uow.tenant_id, expediente, remision=causa == CAUSA_REMISION
    )
    xml = domain.indice_sin_firmar(meta, documentos, fecha=datetime.now(UTC))
    await uow.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"eni-indice:{expediente_id}"}
    )
    ultima = (
        await uow.session.execute(
            select(func.coalesce(func.max(indices.c.version), 0)).where(
                indices.c.expediente_id == expediente_id
            )
        )
    ).scalar_one()
    solicitud = str(uuid.uuid4())
    row = {
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "expediente_id": expediente_id,
        "version": int(ultima) + 1,
        "causa": causa,
        "fase": fase,
        "estado": "firmando",
        "solicitud_id": solicitud,
        "hasta_orden": max(f["orden"] for f in filas),
    }
    columnas = [c for c in indices.c if c.name != "xml"]
    creada = (await uow.session.execute(insert(indices).values(**row).returning(*columnas))).one()
    uow.emit(
        FIRMAR_XML,
        {
            "solicitud_id": solicitud,
            "solicitante": SOLICITANTE,
            "xml": base64.b64encode(xml).decode("ascii"),
        },
        subject=solicitud,
    )
    uow.audit(action="congelar-indice", entity="expediente", entity_id=expediente_id, new=row)
    return dict(creada._mapping)


async def registrar_firma(uow: UnitOfWork, event: ReceivedEvent) -> dict[str, Any] | None:
    """Settles the sellado's answer to one of our ``firmar`` commands (others are ignored):
    the version is kept signed, or marked ``fallido`` with the reason."""
    data = event.data
    if data.get("solicitante") != SOLICITANTE:
        return None
    if str(event.name) == XML_FIRMADO:
        valores: dict[str, Any] = {
            "estado": "firmado",
            "xml": base64.b64decode(data["xml"]),
            "sha256": data["sha256"],
            "firmante": data["firmante"][:500],
            "sello_tiempo": datetime.fromisoformat(data["sello_tiempo"]),
            "firmado_at": datetime.now(UTC),
        }
    else:
        valores = {"estado": "fallido", "motivo": f"{data['codigo']}: {data['motivo']}"}
    row = (
        await uow.session.execute(
            update(indices)
            .where(indices.c.solicitud_id == data["solicitud_id"], indices.c.estado == "firmando")
            .values(**valores)
            .returning(indices.c.id, indices.c.expediente_id, indices.c.version, indices.c.estado)
        )
    ).first()
    return None if row is None else dict(row._mapping)


async def listar_indices(session: AsyncSession, *, expediente_id: str) -> list[dict[str, Any]]:
    """Every frozen version of the expediente's índice, newest first (without the XML)."""
    columnas = [c for c in indices.c if c.name != "xml"]
    rows = await session.execute(
        select(*columnas)
        .where(indices.c.expediente_id == expediente_id)
        .order_by(indices.c.version.desc())
    )
    return [dict(r._mapping) for r in rows]


async def consultar_indice(
    session: AsyncSession, *, expediente_id: str, version: int | None = None
) -> dict[str, Any]:
    """The latest signed version of the índice (or the one asked for); 409 when none is
    signed yet."""
    query = select(indices).where(
        indices.c.expediente_id == expediente_id, indices.c.estado == "firmado"
    )
    if version is not None:
        query = query.where(indices.c.version == version)
    row = (await session.execute(query.order_by(indices.c.version.desc()).limit(1))).first()
    if row is None:
        if version is not None:
            raise NotFound(f"El expediente no tiene un índice firmado en la versión {version}.")
        raise Conflict(
            "El expediente aún no tiene un índice firmado: pídalo con POST …/indice y "
            "vuelva a consultarlo cuando el sellado responda."
        )
    return dict(row._mapping)


async def documentos_del_indice(
    session: AsyncSession, *, expediente_id: str, hasta_orden: int, notificados: bool = False
) -> list[dict[str, Any]]:
    """The documents a signed version of the índice lists, in order (withdrawals are
    entries, not documents); only those notified to the interesado when ``notificados``."""
    query = select(foliado).where(
        foliado.c.expediente_id == expediente_id,
        foliado.c.orden <= hasta_orden,
        foliado.c.origen != "retirada",
    )
    if notificados:
        query = query.where(foliado.c.notificado.is_not(None))
    rows = await session.execute(query.order_by(foliado.c.orden))
    return [dict(r._mapping) for r in rows]


async def registrar_archivo(uow: UnitOfWork, *, expediente_id: str) -> dict[str, Any]:
    """The expediente entered its archive phase: it is listed in the archive with the
    conservation class of its procedure, and a last índice is frozen and signed."""
    expediente = await expediente_de(
        uow.session, tenant_id=uow.tenant_id, expediente_id=expediente_id
    )
    definicion = await definicion_de(
        uow.session,
        tenant_id=uow.tenant_id,
        codigo=expediente["procedimiento"],
        version=expediente["procedimiento_version"],
    )
    conservacion = definicion.data.get("conservacion") or {"clase": "permanente"}
    row = {
        "id": str(uuid.uuid4()),
        "tenant_id": uow.tenant_id,
        "expediente_id": expediente_id,
        "clase": conservacion["clase"],
        "anios": conservacion.get("anios"),
        "serie": conservacion.get("serie"),
        "archivado_at": datetime.now(UTC),
        "archivado_por": (uow.actor.name or uow.actor.sub)[:200],
    }
    await uow.session.execute(insert(archivo).values(**row))
    uow.audit(action="archivar", entity="expediente", entity_id=expediente_id, new=_json(row))
    await congelar_indice(uow, expediente_id=expediente_id, causa="archivo")
    return row


async def registrar_reapertura(uow: UnitOfWork, *, expediente_id: str) -> None:
    """A reopened expediente leaves the archive (its entry stays, dated)."""
    await uow.session.execute(
        update(archivo)
        .where(archivo.c.expediente_id == expediente_id, archivo.c.reabierto_at.is_(None))
        .values(reabierto_at=datetime.now(UTC))
    )


_ARCHIVO_COLUMNAS = (
    archivo.c.expediente_id,
    archivo.c.clase,
    archivo.c.anios,
    archivo.c.serie,
    archivo.c.archivado_at,
    archivo.c.archivado_por,
    archivo.c.reabierto_at,
    expedientes.c.numero,
    expedientes.c.procedimiento,
    expedientes.c.asunto,
)


async def listar_archivo(
    session: AsyncSession, *, tenant_id: str, antes_de: datetime | None, limit: int
) -> list[dict[str, Any]]:
    """The archive's expedientes (reopened ones excluded), most recently archived first."""
    query = (
        select(*_ARCHIVO_COLUMNAS)
        .join(expedientes, expedientes.c.id == archivo.c.expediente_id)
        .where(archivo.c.tenant_id == tenant_id, archivo.c.reabierto_at.is_(None))
    )
    if antes_de is not None:
        query = query.where(archivo.c.archivado_at < antes_de)
    rows = await session.execute(query.order_by(archivo.c.archivado_at.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


async def consultar_archivo(
    session: AsyncSession, *, tenant_id: str, expediente_id: str
) -> dict[str, Any]:
    """An archived expediente's entry; 404 when it is not in the archive."""
    await expediente_de(session, tenant_id=tenant_id, expediente_id=expediente_id)
    row = (
        await session.execute(
            select(*_ARCHIVO_COLUMNAS)
            .join(expedientes, expedientes.c.id == archivo.c.expediente_id)
            .where(archivo.c.expediente_id == expediente_id, archivo.c.reabierto_at.is_(None))
        )
    ).first()
    if row is None:
        raise NotFound(f"El expediente {expediente_id} no está en el archivo.")
    return dict(row._mapping)


async def marcar_notificado(uow: UnitOfWork, *, expediente_id: str, documento_id: str) -> None:
    """A document the tramitador sent to be notified to the interesados: they may then
    download it from their own expedientes (the only column the app role may update)."""
    await uow.session.execute(
        update(foliado)
        .where(
            foliado.c.expediente_id == expediente_id,
            foliado.c.documento_id == documento_id,
            foliado.c.notificado.is_(None),
        )
        .values(notificado="solicitada")
    )


async def documento_notificado(
    session: AsyncSession, *, expediente_id: str, orden: int
) -> dict[str, Any]:
    """One notified document of the expediente; any other is a 404 for the citizen."""
    row = (
        await session.execute(
            select(foliado).where(
                foliado.c.expediente_id == expediente_id,
                foliado.c.orden == orden,
                foliado.c.notificado.is_not(None),
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"No hay un documento notificado con el número {orden}.")
    return dict(row._mapping)


async def _bloquear_asiento(uow: UnitOfWork, asiento_id: str) -> None:
    # An anexo stored and the expediente opened arrive in either order: both consumers
    # take this lock first, so each sees what the other committed.
    await uow.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"eni-anexos:{asiento_id}"}
    )


async def _foliar_anexos(uow: UnitOfWork, *, expediente_id: str, asiento_id: str) -> int:
    ya = {
        (r.documento_id, r.version)
        for r in await uow.session.execute(
            select(foliado.c.documento_id, foliado.c.version).where(
                foliado.c.expediente_id == expediente_id, foliado.c.origen == "anexo"
            )
        )
    }
    filas = await uow.session.execute(
        select(anexos.c.datos)
        .where(anexos.c.asiento_id == asiento_id)
        .order_by(anexos.c.created_at)
    )
    hechos = 0
    for (datos,) in filas:
        if (datos["documento_id"], int(datos["version"])) in ya:
            continue
        await foliar_adjunto(
            uow,
            expediente_id=expediente_id,
            titulo=f"Anexo: {datos['nombre']}"[:300],
            version={
                **datos,
                "metadatos": {**datos["metadatos"], "identificador": datos["identificador"]},
            },
            origen="anexo",
        )
        hechos += 1
    return hechos


async def recibir_anexo(uow: UnitOfWork, almacenado: dict[str, Any]) -> int:
    """A document the repositorio stored as an anexo of an asiento is kept, and foliated
    at once when the asiento already opened an expediente; how many entries it made."""
    referencia = almacenado.get("referencia") or {}
    if referencia.get("tipo") != "asiento":
        return 0
    asiento_id = str(referencia["id"])
    await _bloquear_asiento(uow, asiento_id)
    await uow.session.execute(
        pg_insert(anexos)
        .values(
            id=str(uuid.uuid4()),
            tenant_id=uow.tenant_id,
            asiento_id=asiento_id,
            documento_id=almacenado["documento_id"],
            version=int(almacenado["version"]),
            datos=almacenado,
        )
        .on_conflict_do_nothing(constraint="uq_eni_anexos_version")
    )
    expediente_id = (
        await uow.session.execute(
            select(expedientes.c.id).where(
                expedientes.c.tenant_id == uow.tenant_id, expedientes.c.asiento_id == asiento_id
            )
        )
    ).scalar_one_or_none()
    if expediente_id is None:
        return 0
    return await _foliar_anexos(uow, expediente_id=str(expediente_id), asiento_id=asiento_id)


async def foliar_anexos_del_asiento(
    uow: UnitOfWork, *, expediente_id: str, asiento_id: str | None
) -> int:
    """An expediente opened from an asiento foliates the anexos the repositorio already
    stored for it (the rest arrive with ``recibir_anexo``)."""
    if not asiento_id:
        return 0
    await _bloquear_asiento(uow, asiento_id)
    return await _foliar_anexos(uow, expediente_id=expediente_id, asiento_id=asiento_id)
