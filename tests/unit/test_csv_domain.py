"""The CSV rules without a database: codes, their check character, what people type,
the miss limiter and the pages' HTML."""

from __future__ import annotations

import base64
import hashlib
import random
import re
import secrets
from datetime import UTC, datetime

import pytest

from services.common.misses import MissLimiter
from services.csv import domain, pages
from services.csv.api import _quiere_json
from services.csv.domain import ALFABETO, CodigoMalFormado
from services.csv.schemas import VerificacionRead


def _sample(n: int, seed: int = 7) -> list[str]:
    """Reproducible random codes plus the edge ones (all-equal bodies)."""
    rng = random.Random(seed)
    codes = [domain.generar_codigo(rng.choice) for _ in range(n)]
    codes += [domain.generar_codigo(lambda _a, s=s: s) for s in ALFABETO]
    return codes


def test_stdlib_csv_is_not_shadowed_by_the_service_package() -> None:
    import csv

    import services.csv

    assert services.csv.__name__ == "services.csv"
    assert callable(csv.reader) and callable(csv.writer)


def test_generated_codes_have_the_printed_shape_and_verify() -> None:
    for _ in range(200):
        code = domain.generar_codigo()
        assert domain.PATRON.match(code), code
        assert domain.normalizar(code) == code
        body = code.replace("-", "")
        assert domain.caracter_control(body[:24]) == body[24]


def test_codes_come_from_the_csprng_and_spread_over_the_alphabet() -> None:
    assert domain.generar_codigo.__defaults__ == (secrets.choice,)
    codes = {domain.generar_codigo() for _ in range(2000)}
    assert len(codes) == 2000
    # 48 000 random symbols: every one of the 32 turns up (missing one has p < 10^-600).
    seen = {c for code in codes for c in code.replace("-", "")[:24]}
    assert seen == set(ALFABETO)
    # 24 symbols of a 32-symbol alphabet are the promised 120 bits.
    assert domain.SIMBOLOS_ALEATORIOS * (len(ALFABETO).bit_length() - 1) == 120
    assert not set("01IO") & set(ALFABETO)


def test_every_single_typo_is_caught() -> None:
    checked = 0
    for code in _sample(150):
        symbols = code.replace("-", "")
        for i, original in enumerate(symbols):
            for other in ALFABETO:
                if other == original:
                    continue
                typo = symbols[:i] + other + symbols[i + 1 :]
                assert not domain.es_valido(typo), (code, i, other)
                checked += 1
    assert checked == (150 + 32) * 25 * 31


def test_nearly_every_adjacent_transposition_is_caught() -> None:
    """ISO 7064 MOD 33,32 is not perfect on swaps: measure it on a sample."""
    checked = missed = 0
    for code in _sample(400, seed=11):
        symbols = code.replace("-", "")
        for i in range(len(symbols) - 1):
            a, b = symbols[i], symbols[i + 1]
            if a == b:
                continue
            swapped = symbols[:i] + b + a + symbols[i + 2 :]
            checked += 1
            missed += domain.es_valido(swapped)
    assert checked > 400 * 20
    assert missed / checked < 0.005


def test_check_character_is_iso_7064_mod_33_32() -> None:
    """Against the standard's definition of the hybrid system, written out here."""

    def hybrid(body: str) -> str:
        radix = len(ALFABETO)
        product = radix
        for symbol in body:
            total = (product + ALFABETO.index(symbol)) % radix or radix
            product = (2 * total) % (radix + 1)
        return ALFABETO[(radix + 1 - product) % radix]

    for code in _sample(300, seed=5):
        body = code.replace("-", "")[:24]
        assert domain.caracter_control(body) == hybrid(body)


@pytest.mark.parametrize(
    "typed",
    [
        "{c}",
        "{l}",
        "{n}",
        "  {c}  ",
        "{s}",
        "{c}".replace("-", "--"),
        "-{n}-",
        "{c}".replace("-", "\u2013"),  # en dash from a word processor
        "{c}".replace("-", "\u00a0"),  # non-breaking spaces
        "{w}",  # full-width letters
    ],
)
def test_what_people_type_is_normalised(typed: str) -> None:
    code = "ZXANZ-NR454-H4FLR-KGPBW-P4ZXR"
    assert domain.es_valido(code)
    flat = code.replace("-", "")
    text = typed.format(
        c=code,
        l=code.lower(),
        n=flat,
        s=" ".join(flat[i : i + 5] for i in range(0, 25, 5)),
        w="".join(chr(ord(ch) + 0xFEE0) for ch in flat),
    )
    assert domain.normalizar(text) == code


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("", "Escriba"),
        ("   - - ", "Escriba"),
        ("ZXANZ-NR454-H4FLR-KGPBW-P4ZXO", "no puede contener O"),
        ("ZXAN0-NR454-H4FLR-KGPBW-P4ZX1", "0, 1"),
        ("ZXANZ-NR454-H4FLR-KGPBW-P4ZX", "ha escrito 24"),
        ("ZXANZ-NR454-H4FLR-KGPBW-P4ZXRR", "ha escrito 26"),
        ("ZXANZ-NR454-H4FLR-KGPBW-P4ZXR?", "sobra: ?"),
        ("ZXANZ-NR454-H4FLR-KGPBW-P4ZXS", "mal escrito"),
        ("ZXANZ-NR454-H4FLR-KGPBW-P4XZR", "mal escrito"),
        ("A" * 101, "demasiado largo"),
    ],
)
def test_malformed_codes_say_why(typed: str, says: str) -> None:
    with pytest.raises(CodigoMalFormado) as caught:
        domain.normalizar(typed)
    assert says in caught.value.motivo


def test_no_look_alike_is_guessed() -> None:
    code = domain.generar_codigo()
    for look_alike in "0O1I":
        with pytest.raises(CodigoMalFormado):
            domain.normalizar(look_alike + code[1:])


def test_verification_url_and_document_types() -> None:
    code = "ZXANZ-NR454-H4FLR-KGPBW-P4ZXR"
    assert domain.url_verificacion("https://sede.example/", code) == (
        "https://sede.example/verificar/ZXANZ-NR454-H4FLR-KGPBW-P4ZXR"
    )
    assert domain.nombre_tipo_documental("TD09") == "Acuse de recibo (TD09)"
    assert domain.nombre_tipo_documental("TD77") == "TD77"


def test_check_character_refuses_what_is_not_a_body() -> None:
    with pytest.raises(ValueError):
        domain.caracter_control("ABC")
    with pytest.raises(ValueError):
        domain.caracter_control("0" * 24)


# --- the miss limiter ---------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_misses_are_limited_per_client_in_a_sliding_window() -> None:
    clock = _Clock()
    limiter = MissLimiter(3, window_seconds=60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("10.0.0.1") is None
        limiter.record_miss("10.0.0.1")
        clock.now += 10
    # Third miss at t=1020; the first (t=1000) leaves the window at 1060.
    assert limiter.retry_after("10.0.0.1") == 30
    assert limiter.retry_after("10.0.0.2") is None
    clock.now = 1060.5
    assert limiter.retry_after("10.0.0.1") is None
    limiter.record_miss("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 10


def test_the_limiter_forgets_the_stalest_clients_first() -> None:
    clock = _Clock()
    limiter = MissLimiter(1, clock=clock, max_clients=2)
    for client in ("a", "b", "c"):
        limiter.record_miss(client)
    assert limiter.retry_after("a") is None
    assert limiter.retry_after("b") is not None
    assert limiter.retry_after("c") is not None


# --- content negotiation and the pages -----------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "json"),
    [
        (None, False),
        ("*/*", False),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        ("application/json", True),
        ("application/problem+json", True),
        ("application/json;q=0.5, text/html", False),
        ("text/html;q=0.1, application/json", True),
    ],
)
def test_json_only_when_preferred(accept: str | None, json: bool) -> None:
    assert _quiere_json(accept) is json


def _vista() -> VerificacionRead:
    return VerificacionRead(
        csv="ZXANZ-NR454-H4FLR-KGPBW-P4ZXR",
        url_verificacion="https://sede.example/verificar/ZXANZ-NR454-H4FLR-KGPBW-P4ZXR",
        url_descarga="https://sede.example/verificar/ZXANZ-NR454-H4FLR-KGPBW-P4ZXR/documento",
        tipo_documental_nombre="Acuse de recibo (TD09)",
        entidad="Ayuntamiento de <Villa>",
        nombre_fichero="justificante.pdf",
        identificador="ES_L01030149_2026_0000003DKPJ5SV63GLZVVBN55FGAR4",
        tipo_documental="TD09",
        organo="L01030149",
        emitido_en=datetime(2026, 7, 1, 8, 30, tzinfo=UTC),
        firmante="Sello electrónico de Ayuntamiento de Alicante",
        sello_tiempo=datetime(2026, 7, 1, 8, 30, 5, tzinfo=UTC),
        sha256="ab" * 32,
        tamano=12_345,
    )


def _one_h1_in_spanish(html: str) -> None:
    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="es">' in html
    assert html.count("<h1>") == 1
    assert "<script" not in html


def test_document_page_shows_the_facts_in_local_time_and_escapes_them() -> None:
    html = pages.pagina_documento(_vista(), enlace_descarga="ZXANZ-NR454-H4FLR-KGPBW-P4ZXR/doc")
    _one_h1_in_spanish(html)
    assert "Ayuntamiento de &lt;Villa&gt;" in html and "<Villa>" not in html
    assert "1 de julio de 2026, 10:30:00 (hora de Madrid)" in html  # CEST
    assert "12.345 bytes (12,1 KB)" in html
    assert "(PDF, 12,1 KB)" in html
    assert "Acuse de recibo (TD09)" in html
    assert 'href="ZXANZ-NR454-H4FLR-KGPBW-P4ZXR/doc"' in html


def test_form_pages_label_their_field_and_escape_what_was_typed() -> None:
    form = pages.pagina_formulario()
    _one_h1_in_spanish(form)
    assert '<label for="csv">' in form and 'id="csv"' in form
    assert 'action="verificar"' in form and 'method="get"' in form
    wrong = pages.pagina_mal_formado('"><script>alert(1)</script>', "mal")
    _one_h1_in_spanish(wrong)
    assert "<script>alert" not in wrong
    assert 'aria-invalid="true"' in wrong and 'aria-describedby="csv-ayuda csv-error"' in wrong
    assert 'action="../verificar"' in wrong


def test_the_only_inline_style_is_the_one_the_policy_allows() -> None:
    html = pages.pagina_formulario()
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in pages.CONTENT_SECURITY_POLICY
    assert pages.CONTENT_SECURITY_POLICY.startswith("default-src 'self'")
    assert " style=" not in html
