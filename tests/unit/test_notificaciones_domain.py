"""The legal rules of notifications: channel, lifecycle, expiry (with DST), postal attempts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.common.timezones import tenant_timezone
from services.notificaciones.clock import ControlledClock
from services.notificaciones.domain import (
    Accion,
    Canal,
    Decision,
    Estado,
    Intento,
    ResultadoIntento,
    TransicionNoValida,
    canal_de,
    decidir_intento,
    fecha_legal,
    identificador_valido,
    transicion,
    vencimiento,
)
from tests.support.factories import nif

MADRID = ZoneInfo("Europe/Madrid")
CANARIAS = ZoneInfo("Atlantic/Canary")
CIF_SL = "B12345674"  # a limited company, valid check digit


def _local(zona: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zona, fold=fold)  # type: ignore[arg-type, misc]


# --- channel ---


def test_a_legal_person_is_always_notified_electronically() -> None:
    assert canal_de(tipo="CIF", identificador=CIF_SL, eligio_electronico=False) is Canal.ELECTRONICO
    # A company's NIF given as NIF is still a legal person's.
    assert canal_de(tipo="NIF", identificador=CIF_SL, eligio_electronico=False) is Canal.ELECTRONICO


def test_a_natural_person_gets_what_they_chose() -> None:
    persona = nif()
    assert canal_de(tipo="NIF", identificador=persona, eligio_electronico=True) is Canal.ELECTRONICO
    assert canal_de(tipo="NIF", identificador=persona, eligio_electronico=False) is Canal.POSTAL


def test_other_subjects_of_14_2_and_obliged_representatives_are_electronic() -> None:
    persona = nif()
    assert (
        canal_de(tipo="NIF", identificador=persona, eligio_electronico=False, otro_sujeto_14_2=True)
        is Canal.ELECTRONICO
    )
    assert (
        canal_de(
            tipo="NIF",
            identificador=persona,
            eligio_electronico=False,
            representante=("CIF", CIF_SL),
        )
        is Canal.ELECTRONICO
    )
    assert (
        canal_de(
            tipo="NIF",
            identificador=persona,
            eligio_electronico=False,
            representante=("NIF", nif()),
        )
        is Canal.POSTAL
    )


def test_identity_documents_are_checked() -> None:
    assert identificador_valido("NIF", nif())
    assert not identificador_valido("NIF", nif()[:-1] + "?")
    assert identificador_valido("CIF", CIF_SL)
    assert not identificador_valido("CIF", "B12345670")


# --- lifecycle ---


def test_the_electronic_lifecycle() -> None:
    assert transicion(Estado.PUESTA_DISPOSICION, Accion.ACCEDER) is Estado.PRACTICADA
    assert transicion(Estado.PUESTA_DISPOSICION, Accion.RECHAZAR) is Estado.RECHAZADA
    assert transicion(Estado.PUESTA_DISPOSICION, Accion.VENCER) is Estado.EXPIRADA


@pytest.mark.parametrize(
    "estado", [Estado.PRACTICADA, Estado.RECHAZADA, Estado.EXPIRADA, Estado.FALLIDA]
)
@pytest.mark.parametrize("accion", list(Accion))
def test_a_final_state_admits_nothing(estado: Estado, accion: Accion) -> None:
    assert estado.final
    with pytest.raises(TransicionNoValida):
        transicion(estado, accion)


def test_a_postal_notification_cannot_be_accessed_or_expire() -> None:
    with pytest.raises(TransicionNoValida):
        transicion(Estado.EN_REPARTO, Accion.ACCEDER)
    with pytest.raises(TransicionNoValida):
        transicion(Estado.EN_REPARTO, Accion.VENCER)
    assert transicion(Estado.PENDIENTE_PUBLICACION, Accion.PUBLICAR) is Estado.PRACTICADA


# --- expiry (art. 43.2) ---


def test_expiry_is_ten_natural_days_to_the_second() -> None:
    puesta = _local(MADRID, 2026, 11, 2, 9, 15, 42)
    vence = vencimiento(puesta, MADRID)
    assert vence == _local(MADRID, 2026, 11, 12, 9, 15, 42)
    assert vence - puesta == timedelta(days=10)


def test_expiry_across_the_spring_change_keeps_the_wall_clock() -> None:
    # Put at 10:00 CET; on 30 March the clock reads CEST: 10:00 local is 08:00 UTC.
    puesta = _local(MADRID, 2026, 3, 20, 10, 0, 0)
    vence = vencimiento(puesta, MADRID)
    assert vence == datetime(2026, 3, 30, 8, 0, 0, tzinfo=UTC)
    assert vence - puesta == timedelta(days=10, hours=-1)


def test_expiry_across_the_autumn_change_keeps_the_wall_clock() -> None:
    puesta = _local(MADRID, 2026, 10, 20, 10, 0, 0)  # CEST, UTC+2
    vence = vencimiento(puesta, MADRID)
    assert vence == datetime(2026, 10, 30, 9, 0, 0, tzinfo=UTC)  # CET, UTC+1
    assert vence - puesta == timedelta(days=10, hours=1)


def test_expiry_falling_in_the_spring_gap_is_when_the_clock_jumps() -> None:
    # 29 March 2026, 02:30 does not exist in Madrid: the clock goes from 02:00 to 03:00.
    puesta = _local(MADRID, 2026, 3, 19, 2, 30, 0)
    assert vencimiento(puesta, MADRID) == datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC)


def test_expiry_falling_in_the_autumn_repeat_is_the_later_one() -> None:
    # 25 October 2026, 02:30 happens twice; the second (CET) favours the interesado.
    puesta = _local(MADRID, 2026, 10, 15, 2, 30, 0)
    assert vencimiento(puesta, MADRID) == datetime(2026, 10, 25, 1, 30, 0, tzinfo=UTC)


def test_expiry_is_in_the_councils_time_zone() -> None:
    assert tenant_timezone("35016") == CANARIAS  # Las Palmas de Gran Canaria
    assert tenant_timezone("03014") == MADRID
    # Canarias changes hour at 01:00 local (not 02:00): 01:30 on 29 March does not exist.
    puesta = _local(CANARIAS, 2026, 3, 19, 1, 30, 0)
    assert vencimiento(puesta, CANARIAS) == datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC)
    assert vencimiento(_local(MADRID, 2026, 3, 19, 1, 30, 0), MADRID) == datetime(
        2026, 3, 29, 0, 30, 0, tzinfo=UTC
    )


def test_expiry_keeps_fractions_of_a_second() -> None:
    puesta = datetime(2026, 6, 1, 7, 0, 0, 250_000, tzinfo=UTC)
    assert vencimiento(puesta, MADRID) == datetime(2026, 6, 11, 7, 0, 0, 250_000, tzinfo=UTC)


def test_the_legal_date_is_the_councils_day() -> None:
    # 22:30 UTC on 1 June is 00:30 on 2 June in Madrid, 23:30 on 1 June in Canarias.
    instante = datetime(2026, 6, 1, 22, 30, tzinfo=UTC)
    assert fecha_legal(instante, MADRID).isoformat() == "2026-06-02"
    assert fecha_legal(instante, CANARIAS).isoformat() == "2026-06-01"


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError):
        vencimiento(datetime(2026, 6, 1, 7, 0), MADRID)
    with pytest.raises(ValueError):
        ControlledClock(datetime(2026, 6, 1, 7, 0))


def test_the_controlled_clock_moves_only_when_told() -> None:
    clock = ControlledClock(_local(MADRID, 2026, 6, 1, 9, 0, 0))
    before = clock.now()
    clock.advance(timedelta(seconds=1))
    assert clock.now() - before == timedelta(seconds=1)
    assert clock.now().tzinfo is UTC


# --- postal attempts (art. 42.2, 44) ---


def _intento(resultado: ResultadoIntento, *args: int) -> Intento:
    return Intento(resultado, _local(MADRID, *args))


def test_delivery_and_refusal_end_the_postal_notification() -> None:
    assert (
        decidir_intento([], _intento(ResultadoIntento.ENTREGADA, 2026, 6, 1, 10, 0), MADRID).accion
        is Accion.ENTREGAR
    )
    assert (
        decidir_intento([], _intento(ResultadoIntento.REHUSADA, 2026, 6, 1, 10, 0), MADRID).accion
        is Accion.REHUSAR
    )


def test_an_unknown_addressee_goes_straight_to_the_boe() -> None:
    decision = decidir_intento(
        [], _intento(ResultadoIntento.DESCONOCIDO, 2026, 6, 1, 10, 0), MADRID
    )
    assert decision.accion is Accion.AGOTAR_REPARTO


def test_two_absences_on_different_days_and_sides_of_three_pm_go_to_the_boe() -> None:
    primero = _intento(ResultadoIntento.AUSENTE, 2026, 6, 1, 10, 0)
    assert decidir_intento([], primero, MADRID).accion is Accion.AUSENTE
    segundo = _intento(ResultadoIntento.AUSENTE, 2026, 6, 3, 17, 0)
    assert decidir_intento([primero], segundo, MADRID) == Decision(Accion.AGOTAR_REPARTO)


@pytest.mark.parametrize(
    ("segundo", "motivo"),
    [
        ((2026, 6, 1, 17, 0), "tres días siguientes"),  # same day
        ((2026, 6, 5, 17, 0), "tres días siguientes"),  # four days later
        ((2026, 6, 2, 11, 0), "después"),  # both before 15:00
        ((2026, 6, 2, 15, 30), "tres horas"),  # other side of 15:00, 2h30 apart on the clock
    ],
)
def test_a_second_absence_that_breaks_art_42_2_does_not_count(
    segundo: tuple[int, ...], motivo: str
) -> None:
    primero = _intento(ResultadoIntento.AUSENTE, 2026, 6, 1, 13, 0)
    decision = decidir_intento([primero], _intento(ResultadoIntento.AUSENTE, *segundo), MADRID)
    assert decision.accion is Accion.AUSENTE
    assert not decision.valido
    assert decision.motivo is not None and motivo in decision.motivo
    # ...and a third, valid one then completes the attempts.
    tercero = _intento(ResultadoIntento.AUSENTE, 2026, 6, 3, 16, 0)
    invalido = Intento(ResultadoIntento.AUSENTE, _local(MADRID, *segundo), valido=False)
    assert decidir_intento([primero, invalido], tercero, MADRID).accion is Accion.AGOTAR_REPARTO


def test_three_hours_on_the_local_clock_exactly_is_enough() -> None:
    primero = _intento(ResultadoIntento.AUSENTE, 2026, 6, 1, 13, 0)
    segundo = _intento(ResultadoIntento.AUSENTE, 2026, 6, 2, 16, 0)
    assert decidir_intento([primero], segundo, MADRID).valido


def test_an_attempt_dated_before_the_last_one_is_refused() -> None:
    primero = _intento(ResultadoIntento.AUSENTE, 2026, 6, 2, 10, 0)
    antes = _intento(ResultadoIntento.ENTREGADA, 2026, 6, 1, 10, 0)
    decision = decidir_intento([primero], antes, MADRID)
    assert not decision.valido
