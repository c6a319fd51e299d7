"""The texts of the avisos (only entity and link, in Spanish and Valencian) and back-off."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.notificaciones.avisos_domain import espera, mensaje_email, mensaje_sms

URL = "https://sede.example.org/notificaciones"


@pytest.mark.parametrize(
    ("idioma", "asunto", "frase"),
    [
        ("es", "Aviso de notificación de Ayuntamiento de Elx", "ha puesto a su disposición"),
        ("va", "Avís de notificació de Ajuntament d'Elx", "ha posat a la seua disposició"),
    ],
)
def test_the_email_names_the_entity_and_the_link_in_the_tenants_languages(
    idioma: str, asunto: str, frase: str
) -> None:
    entidad = asunto.split(" de ", 2)[-1] if idioma == "es" else "Ajuntament d'Elx"
    mensaje = mensaje_email(idioma, entidad=entidad, url=URL)
    assert mensaje.asunto == asunto
    assert frase in mensaje.cuerpo
    assert URL in mensaje.cuerpo
    assert "41.6" in mensaje.cuerpo  # its absence does not invalidate the notification


def test_an_unknown_language_falls_back_to_spanish() -> None:
    assert mensaje_email("fr", entidad="X", url=URL).asunto == "Aviso de notificación de X"
    assert mensaje_sms("fr", entidad="X", url=URL).startswith("X: tiene una notificación")


def test_the_sms_says_only_entity_and_link() -> None:
    texto = mensaje_sms("va", entidad="Ajuntament de València", url=URL)
    assert texto == (
        "Ajuntament de València: té una notificació a la seua disposició en la seu electrònica "
        + URL
    )


def test_back_off_doubles_from_the_base() -> None:
    assert [espera(n, base_segundos=30) for n in (1, 2, 3, 4)] == [
        timedelta(seconds=30),
        timedelta(seconds=60),
        timedelta(seconds=120),
        timedelta(seconds=240),
    ]
    with pytest.raises(ValueError):
        espera(0, base_segundos=30)
