"""The use case of the sede: a citizen presents an asiento, as themselves or a representante."""

from __future__ import annotations

from services.common.errors import FieldError, Forbidden, Unprocessable
from services.common.uow import UnitOfWork
from services.registro import domain
from services.registro.anexos.domain import Limites
from services.registro.asientos.schemas import AsientoCreate, AsientoRead
from services.registro.asientos.service import asiento_corregido, registrar_asiento
from services.registro.oficinas import service as oficinas
from services.registro.representaciones import service as representaciones
from services.registro.sede import domain as sede


async def registrar_asiento_ciudadano(
    uow: UnitOfWork,
    *,
    data: AsientoCreate,
    nif: str | None,
    limites: Limites | None = None,
) -> AsientoRead:
    """A citizen presents an asiento through the sede: electrónico, as themselves or for
    someone they represent on record (Ley 39/2015, art. 5 and 16).

    Fields only a desk uses are a 422; an interesado the citizen neither is nor
    represents, or represents without a recorded representation in force, is a 403.
    """
    if nif is None:
        raise Forbidden(
            "El token no acredita un NIF o NIE (claim 'nif'): no se puede presentar por la sede."
        )
    if data.oficina is None:
        # What the sede presents is registered in the entity's oficina electrónica.
        electronica = await oficinas.oficina_electronica(uow.session, tenant_id=uow.tenant_id)
        if electronica is not None:
            data = data.model_copy(update={"oficina": electronica})
    verdict = sede.comprobar_presentacion(nif, data)
    if verdict.invalidos:
        raise Unprocessable(
            "Datos no válidos para una presentación electrónica.",
            errors=[FieldError(campo, motivo) for campo, motivo in verdict.invalidos],
        )
    vigentes = await representaciones.representados_por(
        uow.session,
        tenant_id=uow.tenant_id,
        representante=nif,
        poderdantes=set(verdict.poderdantes),
    )
    ajenos = list(verdict.ajenos)
    for poderdante, posiciones in verdict.poderdantes.items():
        if poderdante not in vigentes:
            ajenos += [
                (
                    f"interesados[{n}]",
                    f"no consta en este registro una representación vigente de {poderdante} "
                    f"a favor de {nif}",
                )
                for n in posiciones
            ]
    if ajenos:
        raise Forbidden(
            "Solo puede presentar en su propio nombre o como representante acreditado.",
            errors=[FieldError(campo, motivo) for campo, motivo in sorted(ajenos)],
        )
    if data.corrige is not None:
        await asiento_corregido(
            uow.session,
            tenant_id=uow.tenant_id,
            asiento_id=data.corrige,
            registrado_por=uow.actor.sub,
        )
    return await registrar_asiento(uow, data=data, canal=domain.Canal.ELECTRONICO, limites=limites)
