"""The pure rules of pagos: money in cents, Cuaderno 60 check digits and barcode, Redsys
HMAC_SHA256_V1 signatures against published vectors, and the ordenanza's rules."""

from __future__ import annotations

import base64
import json
import random
from datetime import date
from decimal import ROUND_FLOOR, Decimal, getcontext

import pytest
from barcode.charsets.code128 import CODES

from services.pagos import cartas, cuaderno60, redsys
from services.pagos.dinero import ImporteNoValido, a_centimos, a_euros
from services.pagos.domain import (
    Bonificacion,
    Condicion,
    Estado,
    Exencion,
    ImporteSinFijar,
    ReglaConcepto,
    ReglaNoAplicable,
    calcular,
    importe_requerido,
    puede_pasar,
)
from services.pagos.schemas import LiquidacionRead
from tests.support.pagos import fichero_cobros, linea_cobro

# --- money ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texto", "centimos"), [("159.00", 15900), ("0.01", 1), ("12", 1200), ("1234567.8", 123456780)]
)
def test_euros_become_whole_cents(texto: str, centimos: int) -> None:
    assert a_centimos(texto) == centimos
    assert a_euros(centimos) == Decimal(texto).quantize(Decimal("0.01"))


@pytest.mark.parametrize("texto", ["1.001", "-3.00", "NaN", "Infinity", "doce", ""])
def test_an_amount_with_more_than_cents_or_negative_is_refused(texto: str) -> None:
    with pytest.raises(ImporteNoValido):
        a_centimos(texto)


def test_a_float_is_never_an_amount() -> None:
    with pytest.raises(ImporteNoValido):
        a_centimos(159.0)  # type: ignore[arg-type]


# --- Cuaderno 60 -----------------------------------------------------------------------


def test_worked_example_of_modalidad_2() -> None:
    """emisora 030140, referencia 0000000042, tributo 123, ejercicio 2026, límite 31-12-2026,
    159,00 €: identificación 1 123 26 6 365; N = 30140·76 + 42·9 + (1123266365 + 15900 − 1)·55
    = 61 782 815 538; N / 97 = 636 936 242,65…; 99 − 65 = 34."""
    datos = cuaderno60.liquidacion_modalidad2(
        emisora="030140",
        numero=42,
        tributo="123",
        ejercicio=2026,
        fecha_limite=date(2026, 12, 31),
        importe=15900,
    )
    assert datos.identificacion == "1123266365"
    assert datos.referencia == "000000004234"
    assert datos.digitos_control == "34"
    assert datos.codigo_barras == "905210301400000000042341123266365000159000"


def _dc_como_la_norma(emisora: str, referencia: str, identificacion: str, importe: int) -> str:
    """The norm's wording done literally: divide by 97 in decimal, read two decimals."""
    getcontext().prec = 40
    n = int(emisora) * 76 + int(referencia) * 9 + (int(identificacion) + importe - 1) * 55
    cociente = f"{Decimal(n) / Decimal(97):.20f}"
    decimales = int(cociente.split(".")[1][:2])
    dc = 99 - decimales
    return f"{dc if dc else 99:02d}"


def test_check_digits_agree_with_the_norm_read_literally() -> None:
    azar = random.Random(60)
    for _ in range(2000):
        emisora = f"{azar.randrange(10**6):06d}"
        referencia = f"{azar.randrange(10**10):010d}"
        identificacion = f"{azar.randrange(10**10):010d}"
        importe = azar.randrange(10**8)
        assert cuaderno60.digitos_control(
            emisora, referencia, identificacion, importe
        ) == _dc_como_la_norma(emisora, referencia, identificacion, importe)


def test_a_quotient_without_decimals_gives_99() -> None:
    # 97·9 = 873: emisora 0, referencia 97, identificación 1, importe 0 → N = 873.
    assert cuaderno60.digitos_control("000000", "0000000097", "1", 0) == "99"


def test_one_wrong_digit_changes_the_check_digits() -> None:
    buenos = cuaderno60.digitos_control("030140", "0000000042", "1123266365", 15900)
    assert cuaderno60.digitos_control("030140", "0000000043", "1123266365", 15900) != buenos
    assert cuaderno60.digitos_control("030140", "0000000042", "1123266365", 15901) != buenos


def test_modalidad_1_identification_and_barcode() -> None:
    """Formato 502: identificación tributo-ejercicio-remesa (3+2+2) and 38 digits, the importe
    in eight and nothing after it (the lengths the public sources in docs/pagos.md agree on)."""
    ident = cuaderno60.identificacion_modalidad1("123", 2026, 1)
    assert ident == "1232601"
    dc = cuaderno60.digitos_control("030140", "0000000042", ident, 15900)
    datos = cuaderno60.DatosCuaderno60(1, "030140", "0000000042" + dc, ident, 15900)
    assert datos.codigo_barras == f"90502030140{'0000000042' + dc}{ident}00015900"
    assert len(datos.codigo_barras) == 38


@pytest.mark.parametrize("remesa", [-1, 100])
def test_modalidad_1_remesa_is_two_digits(remesa: int) -> None:
    with pytest.raises(cuaderno60.ReferenciaNoValida):
        cuaderno60.identificacion_modalidad1("123", 2026, remesa)


# --- Cuaderno 60 against public implementations (docs/pagos.md, "Sources") ---------------


def _dc_bigdecimal(emisora: str, referencia: str, identificacion: str, importe: int) -> str:
    """Transcription of a public municipal system's check digits (BigDecimal, Java): N mod 97;
    0 gives 99; else 99 − (N mod 97)/97 floored to two decimals, as a two-digit string."""
    n = int(emisora) * 76 + int(referencia) * 9 + (int(identificacion) + importe - 1) * 55
    resto = n % 97
    if resto == 0:
        return "99"
    decimales = (Decimal(resto) / Decimal(97)).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
    return f"{99 - int(decimales * 100):02d}"


def test_check_digits_agree_with_a_public_bigdecimal_implementation() -> None:
    azar = random.Random(521)
    for _ in range(5000):
        emisora = f"{azar.randrange(10**6):06d}"
        referencia = f"{azar.randrange(10**10):010d}"
        identificacion = f"{azar.randrange(10**10):010d}"
        importe = azar.randrange(10**8)
        assert cuaderno60.digitos_control(
            emisora, referencia, identificacion, importe
        ) == _dc_bigdecimal(emisora, referencia, identificacion, importe)


# Vectors worked out from the formula (N = emisora·76 + referencia·9 + (identificación +
# importe − 1)·55; r = N mod 97; dc = 99 − ⌊r·100/97⌋, 99 when r = 0):
VECTORES_DC = [
    # emisora, referencia, identificación, importe (cents), check digits
    ("030140", "2600000042", "1123266365", 15900, "93"),  # N = 85 182 815 538, r = 6
    ("030140", "0000000042", "1123266365", 15900, "34"),  # N = 61 782 815 538, r = 64
    ("280796", "2600012345", "1210260031", 4875, "97"),  # N = 89 986 021 376, r = 2
    ("000000", "0000000097", "1", 0, "99"),  # N = 873 = 9·97, r = 0
]


@pytest.mark.parametrize(("emisora", "referencia", "identificacion", "importe", "dc"), VECTORES_DC)
def test_check_digit_vectors(
    emisora: str, referencia: str, identificacion: str, importe: int, dc: str
) -> None:
    assert _dc_bigdecimal(emisora, referencia, identificacion, importe) == dc
    assert cuaderno60.digitos_control(emisora, referencia, identificacion, importe) == dc


def _modalidad2_como_el_sistema_municipal(
    emisora: str, ejercicio: int, numero: int, tributo: str, limite: date, importe: int
) -> str:
    """The public municipal system's modalidad 2 barcode, step by step: referencia = year (2) +
    number (8) + check digits; identificación = 1 + tributo + year (2) + last digit of the
    límite's year + its day of the year; "90521" + … + importe (8) + "0"."""
    base = f"{ejercicio % 100:02d}{numero:08d}"
    ident = f"1{tributo}{ejercicio % 100:02d}{limite.year % 10}{limite.timetuple().tm_yday:03d}"
    referencia = base + _dc_bigdecimal(emisora, base, ident, importe)
    return f"90521{emisora}{referencia}{ident}{importe:08d}0"


def _leer_como_la_app_del_banco(codigo: str) -> dict[str, str]:
    """Field offsets of a Spanish bank's public mobile app when it scans a tax barcode."""
    if codigo.startswith("90521"):
        assert len(codigo) == 42
        return {
            "emisora": codigo[5:11],
            "referencia": codigo[11:23],
            "identificacion": codigo[23:33],
            "importe": codigo[33:41],
        }
    assert codigo.startswith("90502")
    assert len(codigo) == 38
    return {
        "emisora": codigo[5:11],
        "referencia": codigo[11:23],
        "identificacion": codigo[23:30],
        "importe": codigo[30:38],
    }


@pytest.mark.parametrize(
    ("emisora", "numero", "tributo", "limite", "importe"),
    [
        ("030140", 42, "123", date(2026, 12, 31), 15900),
        ("280796", 12345, "210", date(2027, 1, 31), 4875),
        ("461250", 99999999, "001", date(2026, 2, 28), 99999999),
        ("350168", 1, "999", date(2028, 12, 31), 1),  # leap year: day 366
    ],
)
def test_modalidad_2_barcode_is_the_public_systems_and_the_banks_read_it_back(
    emisora: str, numero: int, tributo: str, limite: date, importe: int
) -> None:
    datos = cuaderno60.liquidacion_modalidad2(
        emisora=emisora,
        numero=int(f"26{numero:08d}"),
        tributo=tributo,
        ejercicio=2026,
        fecha_limite=limite,
        importe=importe,
    )
    esperado = _modalidad2_como_el_sistema_municipal(
        emisora, 2026, numero, tributo, limite, importe
    )
    assert datos.codigo_barras == esperado
    assert _leer_como_la_app_del_banco(datos.codigo_barras) == {
        "emisora": emisora,
        "referencia": datos.referencia,
        "identificacion": datos.identificacion,
        "importe": f"{importe:08d}",
    }


def test_modalidad_1_barcode_is_read_back_with_the_banks_offsets() -> None:
    ident = cuaderno60.identificacion_modalidad1("100", 2007, 1)
    dc = cuaderno60.digitos_control("280796", "0000004992", ident, 5500)
    datos = cuaderno60.DatosCuaderno60(1, "280796", "0000004992" + dc, ident, 5500)
    assert _leer_como_la_app_del_banco(datos.codigo_barras) == {
        "emisora": "280796",
        "referencia": "0000004992" + dc,
        "identificacion": "1000701",
        "importe": "00005500",
    }


def test_modalidad_2_identification_uses_the_day_of_the_year() -> None:
    assert cuaderno60.identificacion_modalidad2("001", 2027, date(2027, 2, 1)) == "1001277032"


@pytest.mark.parametrize("emisora", ["12345", "1234567", "12a456"])
def test_emisora_is_six_digits(emisora: str) -> None:
    with pytest.raises(cuaderno60.ReferenciaNoValida):
        cuaderno60.validar_emisora(emisora)


def test_an_amount_too_large_for_the_barcode_is_refused() -> None:
    with pytest.raises(cuaderno60.ReferenciaNoValida):
        cuaderno60.liquidacion_modalidad2(
            emisora="030140",
            numero=1,
            tributo="123",
            ejercicio=2026,
            fecha_limite=date(2026, 1, 1),
            importe=10**8,
        )


# --- Redsys ----------------------------------------------------------------------------
# Test vectors published with the redsys-easy library (github.com/javiertury/redsys-easy,
# test/fixtures/rest/redirect.ts and notification.ts, and src/crypto.spec.ts), made on
# Redsys' test environment with its public test key.
CLAVE_PRUEBAS = "sq7HjrUOBfKmC576ILgskD5srU870gJ7"
PETICION = (
    "eyJEU19NRVJDSEFOVF9UUkFOU0FDVElPTlRZUEUiOiIwIiwiRFNfTUVSQ0hBTlRfT1JERVIiOiIwNzI2cUkzSDdz"
    "WngiLCJEU19NRVJDSEFOVF9NRVJDSEFOVENPREUiOiI5OTkwMDg4ODEiLCJEU19NRVJDSEFOVF9URVJNSU5BTCI6"
    "IjEiLCJEU19NRVJDSEFOVF9BTU9VTlQiOiI0OTk5IiwiRFNfTUVSQ0hBTlRfQ1VSUkVOQ1kiOiI5NzgiLCJEU19N"
    "RVJDSEFOVF9NRVJDSEFOVFVSTCI6Imh0dHA6Ly93d3cucHJ1ZWJhLmNvbS91cmxOb3RpZmljYWNpb24ucGhwIiwi"
    "RFNfTUVSQ0hBTlRfVVJMT0siOiJodHRwOi8vd3d3LnBydWViYS5jb20vdXJsT0sucGhwIiwiRFNfTUVSQ0hBTlRf"
    "VVJMS08iOiJodHRwOi8vd3d3LnBydWViYS5jb20vdXJsS08ucGhwIn0="
)
NOTIFICACION = (
    "eyJEc19EYXRlIjoiMjIlMkYxMCUyRjIwMjEiLCJEc19Ib3VyIjoiMjIlM0E1MSIsIkRzX1NlY3VyZVBheW1lbnQi"
    "OiIxIiwiRHNfQ2FyZF9OdW1iZXIiOiI0NTQ4ODEqKioqKiowMDA0IiwiRHNfQ2FyZF9Db3VudHJ5IjoiNzI0Iiwi"
    "RHNfQW1vdW50IjoiNDk5OSIsIkRzX0N1cnJlbmN5IjoiOTc4IiwiRHNfT3JkZXIiOiIwNzI2cUkzSDdzWngiLCJE"
    "c19NZXJjaGFudENvZGUiOiI5OTkwMDg4ODEiLCJEc19UZXJtaW5hbCI6IjAwMSIsIkRzX1Jlc3BvbnNlIjoiMDAw"
    "MCIsIkRzX01lcmNoYW50RGF0YSI6IiIsIkRzX1RyYW5zYWN0aW9uVHlwZSI6IjAiLCJEc19Db25zdW1lckxhbmd1"
    "YWdlIjoiMSIsIkRzX0F1dGhvcmlzYXRpb25Db2RlIjoiMDUyMDI5IiwiRHNfQ2FyZF9CcmFuZCI6IjEiLCJEc19Q"
    "cm9jZXNzZWRQYXlNZXRob2QiOiIxIn0="
)
NOTIFICACION_REST = (
    "eyJEc19EYXRlIjoiMDklMkYxMSUyRjIwMTUiLCJEc19Ib3VyIjoiMTglM0EwMyIsIkRzX1NlY3VyZVBheW1lbnQi"
    "OiIwIiwiRHNfQ2FyZF9Db3VudHJ5IjoiNzI0IiwiRHNfQW1vdW50IjoiMTQ1IiwiRHNfQ3VycmVuY3kiOiI5Nzgi"
    "LCJEc19PcmRlciI6IjAwNjkiLCJEc19NZXJjaGFudENvZGUiOiI5OTkwMDg4ODEiLCJEc19UZXJtaW5hbCI6Ijg3"
    "MSIsIkRzX1Jlc3BvbnNlIjoiMDAwMCIsIkRzX01lcmNoYW50RGF0YSI6IiIsIkRzX1RyYW5zYWN0aW9uVHlwZSI6"
    "IjAiLCJEc19Db25zdW1lckxhbmd1YWdlIjoiMSIsIkRzX0F1dGhvcmlzYXRpb25Db2RlIjoiMDgyMTUwIn0="
)


def test_per_order_key_matches_the_published_3des_vectors() -> None:
    assert base64.b64encode(redsys.clave_de_pedido(CLAVE_PRUEBAS, "012345678")) == (
        b"ub0/L8+E9+9ITQJwk3SvHA=="
    )
    assert base64.b64encode(redsys.clave_de_pedido(CLAVE_PRUEBAS, "0726qI3H7sZx")) == (
        b"GViV77kFjMPKVUcE9qxzlg=="
    )


def test_request_signature_matches_the_published_vector() -> None:
    assert redsys.firmar(CLAVE_PRUEBAS, "0726qI3H7sZx", PETICION) == (
        "TyW+LIa2GZnhCPLM7JSPwbQn4ZjOvMO/KiIf4yJgwo8="
    )


def test_parameters_encode_as_redsys_expects() -> None:
    parametros = json.loads(base64.b64decode(PETICION))
    assert redsys.codificar_parametros(parametros) == PETICION


def test_published_notifications_verify_with_their_base64url_signatures() -> None:
    datos = redsys.verificar(
        CLAVE_PRUEBAS,
        "HMAC_SHA256_V1",
        NOTIFICACION,
        "52nPyUkyDws__OfMqDka_yN-arxzulELZC1TYTvvR0s=",
    )
    assert (datos["Ds_Order"], datos["Ds_Amount"], datos["Ds_Response"]) == (
        "0726qI3H7sZx",
        "4999",
        "0000",
    )
    otra = redsys.verificar(
        "Mk9m98IfEblmPfrpsawt7BmxObt98Jev",
        "HMAC_SHA256_V1",
        NOTIFICACION_REST,
        "6DVpRPAPoChZh2cgaWnLqlfFsKeXdRfAO_tz-UrxJcU=",
    )
    assert otra["Ds_Order"] == "0069"


@pytest.mark.parametrize(
    ("clave", "version", "parametros", "firma"),
    [
        (
            "Mk9m98IfEblmPfrpsawt7BmxObt98Jev",
            "HMAC_SHA256_V1",
            NOTIFICACION,
            "52nPyUkyDws__OfMqDka_yN-arxzulELZC1TYTvvR0s=",
        ),  # another merchant's key
        (
            CLAVE_PRUEBAS,
            "HMAC_SHA256_V2",
            NOTIFICACION,
            "52nPyUkyDws__OfMqDka_yN-arxzulELZC1TYTvvR0s=",
        ),
        (
            CLAVE_PRUEBAS,
            "HMAC_SHA256_V1",
            NOTIFICACION_REST,
            "52nPyUkyDws__OfMqDka_yN-arxzulELZC1TYTvvR0s=",
        ),  # parameters swapped
        (CLAVE_PRUEBAS, "HMAC_SHA256_V1", NOTIFICACION, "no es base64!"),
        (CLAVE_PRUEBAS, "HMAC_SHA256_V1", "bm8gZXMganNvbg==", "AAAA"),
    ],
)
def test_a_notification_that_does_not_hold_is_refused(
    clave: str, version: str, parametros: str, firma: str
) -> None:
    with pytest.raises(redsys.FirmaNoValida):
        redsys.verificar(clave, version, parametros, firma)


def test_a_tampered_amount_breaks_the_signature() -> None:
    datos = json.loads(base64.b64decode(NOTIFICACION))
    datos["Ds_Amount"] = "1"
    alterada = redsys.codificar_parametros(datos)
    with pytest.raises(redsys.FirmaNoValida):
        redsys.verificar(
            CLAVE_PRUEBAS,
            "HMAC_SHA256_V1",
            alterada,
            "52nPyUkyDws__OfMqDka_yN-arxzulELZC1TYTvvR0s=",
        )


@pytest.mark.parametrize(
    ("codigo", "autorizado"),
    [
        ("0000", True),
        ("0099", True),
        ("0100", False),
        ("0190", False),
        ("9915", False),
        ("", False),
    ],
)
def test_authorised_responses_are_0000_to_0099(codigo: str, autorizado: bool) -> None:
    assert redsys.pago_autorizado(codigo) is autorizado


@pytest.mark.parametrize(
    ("orden", "valida"),
    [
        ("0001", True),
        ("000000000001", True),
        ("0726qI3H7sZx", True),
        ("001", False),
        ("a0001", False),
        ("0000000000001", False),
    ],
)
def test_order_numbers(orden: str, valida: bool) -> None:
    assert redsys.orden_valida(orden) is valida


def test_the_merchant_key_is_24_bytes_of_base64() -> None:
    with pytest.raises(ValueError):
        redsys.validar_clave("c29sbw==")
    assert len(redsys.validar_clave(CLAVE_PRUEBAS)) == 24


# --- states and ordenanza rules -----------------------------------------------------------


def test_state_transitions() -> None:
    assert puede_pasar(Estado.PENDIENTE, Estado.PAGADA)
    assert puede_pasar(Estado.VENCIDA, Estado.PAGADA)
    assert puede_pasar(Estado.PAGADA, Estado.DEVUELTA)
    assert not puede_pasar(Estado.PAGADA, Estado.ANULADA)
    assert not puede_pasar(Estado.ANULADA, Estado.PAGADA)
    assert not puede_pasar(Estado.PENDIENTE, Estado.DEVUELTA)


def test_fixed_fee() -> None:
    calculo = calcular(ReglaConcepto("fija", importe=Decimal("30.50")), {})
    assert (calculo.importe_centimos, calculo.exenta) == (3050, False)


def test_fee_per_unit_rounds_half_up_to_the_cent() -> None:
    regla = ReglaConcepto("por_unidad", precio_unidad=Decimal("0.125"))
    assert calcular(regla, {"unidades": "3"}).importe_centimos == 38  # 0.375 → 0.38


def test_percentage_of_a_base_between_minimum_and_maximum() -> None:
    regla = ReglaConcepto(
        "porcentaje", porcentaje=Decimal("4"), minimo=Decimal("60"), maximo=Decimal("3000")
    )
    assert calcular(regla, {"base": "10000"}).importe_centimos == 40000
    assert calcular(regla, {"base": "100"}).importe_centimos == 6000
    assert calcular(regla, {"base": "1000000"}).importe_centimos == 300000


def test_missing_or_negative_declared_data_names_the_field() -> None:
    regla = ReglaConcepto("porcentaje", porcentaje=Decimal("4"))
    with pytest.raises(ReglaNoAplicable) as exc:
        calcular(regla, {})
    assert exc.value.campo == "base"
    with pytest.raises(ReglaNoAplicable):
        calcular(ReglaConcepto("por_unidad", precio_unidad=Decimal(1)), {"unidades": "-1"})


def test_exemption_and_bonuses() -> None:
    regla = ReglaConcepto(
        "fija",
        importe=Decimal("100.00"),
        exenciones=(Exencion("entidad pública", (Condicion("entidad_publica", "igual", True),)),),
        bonificaciones=(
            Bonificacion(
                "familia numerosa", Decimal("50"), (Condicion("familia_numerosa", "igual", True),)
            ),
            Bonificacion(
                "empadronado", Decimal("10"), (Condicion("antiguedad", "mayor_igual", "5"),)
            ),
        ),
    )
    assert calcular(regla, {"entidad_publica": True}).exenta
    assert calcular(regla, {"entidad_publica": True}).importe_centimos == 0
    assert calcular(regla, {"familia_numerosa": True}).importe_centimos == 5000
    assert calcular(regla, {"familia_numerosa": True, "antiguedad": 6}).importe_centimos == 4000
    assert calcular(regla, {"antiguedad": "4"}).importe_centimos == 10000
    desglose = calcular(regla, {"familia_numerosa": True}).desglose
    assert desglose[-1] == {"paso": "a ingresar", "importe": "50.00"}


# --- the cobros file -----------------------------------------------------------------------

NRC = "2026120221000001ABCDEF"


def _detalle(referencia: str = "260000004293", importe: int = 15900, nrc: str = NRC) -> str:
    return linea_cobro(
        emisora="030140",
        referencia=referencia,
        identificacion="1123266365",
        importe=importe,
        nrc=nrc,
    )


def test_a_cobros_file_is_read_record_by_record() -> None:
    texto = fichero_cobros("030140", [_detalle(), _detalle("260000004310", 2500, "B" * 22)])
    leido = cuaderno60.leer_fichero_cobros(texto)
    assert leido.errores == []
    primero = leido.cobros[0]
    assert (primero.linea, primero.emisora, primero.referencia, primero.identificacion) == (
        2,
        "030140",
        "260000004293",
        "1123266365",
    )
    assert (primero.importe_centimos, primero.nrc, primero.fecha_cobro) == (
        15900,
        NRC,
        date(2026, 12, 2),
    )
    assert (primero.entidad, primero.oficina) == ("2100", "0001")
    assert [c.importe_centimos for c in leido.cobros] == [15900, 2500]


def test_unreadable_lines_are_reported_not_applied() -> None:
    malo = _detalle().replace("1123266365", "11232663XX")
    desconocido = "09" + " " * 118
    texto = fichero_cobros("030140", [_detalle(), malo], total=15900 + 15900)
    texto = texto.replace("\r\n03", "\r\n" + desconocido + "\r\n03")
    leido = cuaderno60.leer_fichero_cobros(texto)
    assert [c.linea for c in leido.cobros] == [2]
    assert [n for n, _ in leido.errores] == [3, 4]
    assert "identificacion" in leido.errores[0][1]
    assert "desconocido" in leido.errores[1][1]


@pytest.mark.parametrize(
    ("texto", "motivo"),
    [
        (fichero_cobros("030140", [_detalle()], total=1), "importe total"),
        (fichero_cobros("030140", [_detalle()]).split("\r\n", 1)[1], "cabecera"),
        ("\r\n".join(fichero_cobros("030140", [_detalle()]).split("\r\n")[:2]), "totales"),
    ],
)
def test_a_file_whose_structure_does_not_hold_is_refused(texto: str, motivo: str) -> None:
    with pytest.raises(cuaderno60.FicheroNoValido, match=motivo):
        cuaderno60.leer_fichero_cobros(texto)


def test_the_totals_count_every_detail_record() -> None:
    texto = fichero_cobros("030140", [_detalle()])
    cabecera, detalle, totales, _ = texto.split("\r\n")
    totales = totales[:8] + "00000002" + totales[16:]
    with pytest.raises(cuaderno60.FicheroNoValido, match="2 cobros"):
        cuaderno60.leer_fichero_cobros("\r\n".join([cabecera, detalle, totales]))


# --- carta de pago ---------------------------------------------------------------------------

START_C, FNC1, STOP = "11010011100", "11110101110", "1100011101011"


def test_the_barcode_is_gs1_128_in_code_set_c() -> None:
    """Start C, FNC1, one symbol per pair of digits, the mod-103 check symbol, stop.

    Patterns of ISO/IEC 15417 (Code 128): start C is value 105, FNC1 102; the check value is
    105 + 102·1 + Σ pairᵢ·(i + 2), mod 103.
    """
    digitos = "905210301400000000042341123266365000159000"
    modulos = cartas.modulos_gs1_128(digitos)
    pares = [int(digitos[i : i + 2]) for i in range(0, len(digitos), 2)]
    assert modulos.startswith(START_C + FNC1)
    assert modulos.endswith(STOP)
    assert len(modulos) == 11 * (2 + len(pares) + 1) + len(STOP)
    control = (105 + 102 + sum(p * (i + 2) for i, p in enumerate(pares))) % 103
    simbolos = [modulos[i : i + 11] for i in range(0, len(modulos) - len(STOP), 11)]
    assert simbolos[-1] == CODES[control]
    assert simbolos[2:-1] == [CODES[p] for p in pares]


def test_the_barcode_takes_only_digits() -> None:
    with pytest.raises(ValueError):
        cartas.modulos_gs1_128("9052A")


def test_the_carta_de_pago_renders_the_same_bytes_for_the_same_liquidacion() -> None:
    datos = cuaderno60.liquidacion_modalidad2(
        emisora="030140",
        numero=2600000042,
        tributo="123",
        ejercicio=2026,
        fecha_limite=date(2026, 12, 31),
        importe=15900,
    )
    liquidacion = LiquidacionRead.model_validate(
        {
            "id": "0195a3e1-5c2d-7a4b-9e10-3f4a5b6c7d8e",
            "numero": "2026/00000042",
            "estado": "pendiente",
            "origen": "gestion",
            "concepto": "Tasa por licencia de obra menor — ñandú",
            "importe": "159.00",
            "obligado": {
                "tipo_identificador": "NIF",
                "identificador": "12345678Z",
                "nombre": "Núria",
            },
            "expediente_id": None,
            "vencimiento": "2026-12-31",
            "emisora": datos.emisora,
            "referencia": datos.referencia,
            "identificacion": datos.identificacion,
            "digitos_control": datos.digitos_control,
            "cuaderno60": {
                "modalidad": 2,
                "emisora": datos.emisora,
                "referencia": datos.referencia,
                "identificacion": datos.identificacion,
                "digitos_control": datos.digitos_control,
                "codigo_barras": datos.codigo_barras,
            },
            "canal": None,
            "justificante_pago": None,
            "pagada_at": None,
            "created_at": "2026-12-01T10:00:00+00:00",
            "enlaces": {},
        }
    )
    una = cartas.render_carta_de_pago(liquidacion, entidad="Ayuntamiento de Alicante")
    otra = cartas.render_carta_de_pago(liquidacion, entidad="Ayuntamiento de Alicante")
    assert una.startswith(b"%PDF") and una == otra
    assert cartas.nombre_fichero(liquidacion, cartas.Tipo.CARTA_DE_PAGO) == (
        "carta-de-pago-2026-00000042.pdf"
    )
    assert cartas.solicitud_id(liquidacion.id, "carta_de_pago") != cartas.solicitud_id(
        liquidacion.id, "justificante_pago"
    )


def test_the_fees_of_a_command_add_up_in_cents_and_an_unassessed_one_is_named() -> None:
    conceptos = [
        {"concepto": "tasa-vado", "nombre": "Tasa", "importe": "95.10"},
        {"concepto": "placa", "nombre": "Placa", "importe": "0.20"},
    ]
    assert importe_requerido(conceptos) == 9530
    with pytest.raises(ImporteSinFijar, match="icio") as error:
        importe_requerido([*conceptos, {"concepto": "icio", "nombre": "ICIO", "importe": None}])
    assert error.value.concepto == "icio"
    with pytest.raises(ImporteNoValido):
        importe_requerido([{"concepto": "x", "nombre": "X", "importe": 95.1}])
