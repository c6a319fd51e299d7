"""Pure rules of the engine and of the documents: guards, plazo suspension and
extension, cursors, template filling."""

from __future__ import annotations

from datetime import date

import pytest

from services.tramitador.calendario.domain import Calendario
from services.tramitador.documentos.domain import nombre_fichero, rellenar, renderizar_pdf
from services.tramitador.expedientes import domain
from services.tramitador.expedientes.domain import (
    Situacion,
    acciones_posibles,
    codificar_cursor,
    condiciones_incumplidas,
    decodificar_cursor,
    plazo_ampliado,
    reanudar,
)

MADRID = Calendario.de("28079")


def situacion(**cambios: object) -> Situacion:
    base: dict[str, object] = {
        "fase": "instruccion",
        "documentos_requeridos": frozenset({"solicitud", "plano"}),
        "documentos_aportados": frozenset({"solicitud"}),
        "tasas": frozenset({"tasa-vado"}),
        "tasas_pagadas": frozenset(),
        "informes_pendientes": 1,
        "informes_emitidos": 0,
        "plazos_abiertos": frozenset({"resolucion", "audiencia"}),
        "plazos_vencidos": frozenset(),
        "propuesta": None,
        "plazo_ampliado": False,
    }
    base.update(cambios)
    return Situacion(**base)  # type: ignore[arg-type]


def test_each_guard_names_what_is_missing() -> None:
    accion = {
        "codigo": "x",
        "tipo": "tramitar",
        "requiere": [
            "documentos-requeridos",
            "tasas-pagadas",
            "informes-emitidos",
            "audiencia-concluida",
            "propuesta-formulada",
            "sin-plazos-abiertos",
        ],
    }
    assert condiciones_incumplidas(accion, situacion()) == [
        "documentos-requeridos: faltan documentos: plano",
        "tasas-pagadas: tasas sin pagar: tasa-vado",
        "informes-emitidos: 1 informe(s) pendiente(s)",
        "audiencia-concluida: el plazo de audiencia sigue abierto "
        "(cabe cerrarlo antes si los interesados renuncian)",
        "propuesta-formulada: no hay propuesta de resolución",
        "sin-plazos-abiertos: plazos abiertos: audiencia",
    ]
    cumplida = situacion(
        documentos_aportados=frozenset({"solicitud", "plano"}),
        tasas_pagadas=frozenset({"tasa-vado"}),
        informes_pendientes=0,
        informes_emitidos=2,
        plazos_abiertos=frozenset({"resolucion"}),
        plazos_vencidos=frozenset({"audiencia"}),
        propuesta="estimatoria",
    )
    assert condiciones_incumplidas(accion, cumplida) == []
    renuncia = situacion(datos={"renuncia": True})
    assert not any(c.startswith("audiencia") for c in condiciones_incumplidas(accion, renuncia))


def test_actions_offered_depend_on_phase_role_and_automation() -> None:
    acciones = [
        {"codigo": "informar", "nombre": "I", "tipo": "emitir-informe", "desde": ["instruccion"]},
        {
            "codigo": "resolver",
            "nombre": "R",
            "tipo": "resolver",
            "desde": ["instruccion"],
            "rol": "firma",
            "sentidos": ["estimada"],
        },
        {
            "codigo": "caducar",
            "nombre": "C",
            "tipo": "resolver",
            "desde": ["instruccion"],
            "automatica": True,
            "sentidos": ["caducidad"],
        },
        {"codigo": "archivar", "nombre": "A", "tipo": "archivar", "desde": ["resuelto"]},
    ]
    staff = acciones_posibles(acciones, situacion(), frozenset({"tramitador"}))
    assert [a.codigo for a in staff] == ["informar"]
    firma = acciones_posibles(acciones, situacion(), frozenset({"tramitador", "firma"}))
    assert [a.codigo for a in firma] == ["informar", "resolver"]
    admin = acciones_posibles(acciones, situacion(), frozenset({"admin"}))
    assert [a.codigo for a in admin] == ["informar", "resolver"]


def test_a_suspended_plazo_ends_later_by_the_days_suspended() -> None:
    # Suspended on Monday 2 March 2026 for 9 days: 9 May → 18 May (a Monday).
    nuevo, dias = reanudar(date(2026, 5, 9), date(2026, 3, 2), date(2026, 3, 11), MADRID)
    assert (nuevo, dias) == (date(2026, 5, 18), 9)


def test_extension_is_half_the_plazo() -> None:
    meses = {"cantidad": 3, "unidad": "meses"}
    assert plazo_ampliado(date(2026, 6, 5), meses, MADRID) == date(2026, 7, 6)
    habiles = {"cantidad": 10, "unidad": "dias_habiles"}
    assert plazo_ampliado(date(2026, 6, 5), habiles, MADRID) == date(2026, 6, 12)


def test_cursor_round_trip_and_refusal() -> None:
    cursor = codificar_cursor("2026-03-02", "0195a3c5-02bd-7e61-a4d8-0f7c2b6e3a94")
    assert decodificar_cursor(cursor, 2) == ["2026-03-02", "0195a3c5-02bd-7e61-a4d8-0f7c2b6e3a94"]
    for bad in ("xx", codificar_cursor("solo-uno")):
        with pytest.raises(ValueError):
            decodificar_cursor(bad, 2)


def test_templates_fill_plain_names_only() -> None:
    valores = {"numero": "EXP/2026/000001", "sentido": "estimada"}
    assert rellenar("Expediente {numero}: {sentido}. {desconocido}", valores) == (
        "Expediente EXP/2026/000001: estimada."
    )
    assert rellenar("{numero.__class__} {0}", valores) == "{numero.__class__} {0}"
    assert nombre_fichero("resolucion", "EXP/2026/000001") == "resolucion-EXP-2026-000001.pdf"
    pdf = renderizar_pdf(entidad="Ajuntament", titulo="Resolución", numero="EXP/1", cuerpo="«ñ» ✓")
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")


def test_an_interesado_for_notifying_carries_the_channel_the_asiento_said() -> None:
    asiento = {
        "tipo_identificador": "NIF",
        "identificador": "12345678Z",
        "nombre": "Lucía",
        "apellido1": "Núñez",
        "canal_preferente": "02",
        "email": "lucia@example.org",
        "telefono": "+34 600 000 000",
        "direccion": "Calle Mayor 1, 2º B",
        "codigo_postal": "03001",
        "municipio": "03014",
        "provincia": "03",
        "representante": {
            "tipo_identificador": "NIF",
            "identificador": "00000000T",
            "nombre": "Ana",
            "apellido1": "Pérez",
            "direccion": "x",
        },
    }
    salida = domain.para_notificar(asiento)
    assert salida["eligio_electronico"] is True
    assert salida["email"] == "lucia@example.org"
    assert salida["direccion_postal"] == {
        "direccion": "Calle Mayor 1, 2º B",
        "codigo_postal": "03001",
        "municipio": "03014",
        "provincia": "03",
    }
    assert salida["representante"] == {
        "tipo_identificador": "NIF",
        "identificador": "00000000T",
        "nombre": "Ana Pérez",
    }
    assert "telefono" not in salida and "canal_preferente" not in salida
    # Postal by choice (01), a bad email and an incomplete address: left out, not sent wrong.
    papel = domain.para_notificar(
        {**asiento, "canal_preferente": "01", "email": "no", "codigo_postal": "3001"}
    )
    assert "eligio_electronico" not in papel
    assert "email" not in papel and "direccion_postal" not in papel
    # What staff gave wins over the asiento.
    dado = domain.para_notificar({**asiento, "eligio_electronico": False})
    assert dado["eligio_electronico"] is False


def test_staff_channel_data_patch_only_the_interesados_they_name() -> None:
    interesados = [
        {"identificador": "12345678Z", "nombre": "Lucía"},
        {"identificador": "B12345674", "nombre": "Garajes SL"},
    ]
    nuevos, ajenos = domain.con_datos_de_canal(
        interesados,
        [
            {"identificador": "12345678Z", "eligio_electronico": True, "nombre": "Otra"},
            {"identificador": "00000000T", "email": "x@example.org"},
        ],
    )
    assert nuevos[0] == {
        "identificador": "12345678Z",
        "nombre": "Lucía",
        "eligio_electronico": True,
    }
    assert nuevos[1] == interesados[1]
    assert ajenos == ["00000000T"]


def test_assessed_importes_fill_the_fees_without_one() -> None:
    tasas = [
        {"concepto": "icio", "nombre": "ICIO", "importe": None},
        {"concepto": "tasa", "nombre": "Tasa", "importe": "40.00"},
    ]
    assert domain.tasas_sin_importe(tasas, None) == ["icio"]
    assert domain.tasas_sin_importe(tasas, {"icio": "312.40"}) == []
    assert [t["importe"] for t in domain.importes_de_tasas(tasas, {"icio": "312.40"})] == [
        "312.40",
        "40.00",
    ]
