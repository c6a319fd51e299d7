"""The libro de registro files: the CSV (header, one row per asiento, quoting, accents,
local times, annulments, BOM) and the PDF (it parses, names the book, entity and period,
numbers its pages, and lists every asiento), plus the range rules."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.common.tenants import Tenant
from services.registro.asientos.schemas import AsientoRead
from services.registro.domain import TipoAsiento
from services.registro.libro import domain as libro
from services.registro.libro.domain import Formato
from services.registro.libro.pdf import render_libro
from tests.unit.test_justificante_render import read

VALENCIA = Tenant("46250", "Ajuntament de València", "L01462508")
MADRID = ZoneInfo("Europe/Madrid")
CANARIAS = ZoneInfo("Atlantic/Canary")


def asiento(secuencia: int = 1, **overrides: Any) -> AsientoRead:
    data: dict[str, Any] = {
        "id": f"6f1c2b0e-8a53-4a0f-9d3c-{secuencia:012d}",
        "numero": f"E/2026/{secuencia:06d}",
        "tipo": "entrada",
        "anio": 2026,
        "secuencia": secuencia,
        "fecha_registro": datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
        "resumen": 'Sol·licitud "urgent"; llicència d\'obra',
        "unidad_destino": "L01462508",
        "procedimiento": "generico",
        "interesados": [
            {
                "tipo_identificador": "NIF",
                "identificador": "12345678Z",
                "nombre": "Lucía",
                "apellido1": "Núñez",
                "apellido2": "Peña",
            },
            {"tipo_identificador": "CIF", "identificador": "B12345674", "nombre": "Obres SL"},
        ],
        "registrado_por": "jordi.puig",
    }
    data.update(overrides)
    return AsientoRead.model_validate(data)


def anulado(secuencia: int) -> AsientoRead:
    return asiento(
        secuencia,
        estado="anulado",
        anulacion={
            "motivo": "Registrado por duplicado",
            "anulado_por": "ana",
            "anulado_en": datetime(2026, 11, 24, 8, 30, tzinfo=UTC),
        },
    )


def parse(text: str) -> list[list[str]]:
    assert text.startswith(libro.BOM)
    return list(csv.reader(io.StringIO(text[1:], newline=""), delimiter=";"))


def test_csv_has_a_spanish_header_and_one_row_per_asiento() -> None:
    text = libro.csv_cabecera(MADRID) + libro.csv_filas([asiento(1), anulado(2)], MADRID)
    rows = parse(text)
    assert rows[0] == [
        "Número",
        "Fecha y hora (Europe/Madrid)",
        "Tipo",
        "Resumen",
        "Unidad de destino",
        "Procedimiento",
        "Interesados",
        "Estado",
        "Anulado en",
        "Motivo de anulación",
        "Oficina",
        "Canal",
        "Registro de origen",
        "Corrige",
        "Anexos",
    ]
    assert rows[1] == [
        "E/2026/000001",
        "23/11/2026 11:00:00",
        "Entrada",
        'Sol·licitud "urgent"; llicència d\'obra',
        "L01462508",
        "generico",
        "Lucía Núñez Peña (12345678Z); Obres SL (B12345674)",
        "Registrado",
        "",
        "",
        "",
        "Presencial",
        "",
        "",
        "0",
    ]
    assert rows[2][0] == "E/2026/000002"
    assert rows[2][7:10] == ["Anulado", "24/11/2026 09:30:00", "Registrado por duplicado"]
    assert len(rows) == 3


def test_csv_says_where_an_asiento_came_from_and_what_it_corrects() -> None:
    llegado = asiento(
        3,
        oficina="O00002741",
        canal="electronico",
        origen={"entidad_registral": "O00009999", "numero_registro": "E/2026/000077"},
        corrige="6f1c2b0e-8a53-4a0f-9d3c-0d9b1c6e2a77",
    )
    [row] = parse(libro.csv_cabecera(MADRID) + libro.csv_filas([llegado], MADRID))[1:]
    assert row[10:] == [
        "O00002741",
        "Electrónico",
        "E/2026/000077 (O00009999)",
        "6f1c2b0e-8a53-4a0f-9d3c-0d9b1c6e2a77",
        "0",
    ]


def test_csv_quotes_only_what_needs_it_and_keeps_accents() -> None:
    line = libro.csv_filas([asiento(1, procedimiento=None)], MADRID)
    assert line.endswith("\r\n")
    # Separators and quotes inside a field are quoted (quotes doubled); the rest is bare.
    assert line.startswith("E/2026/000001;23/11/2026 11:00:00;Entrada;")
    assert '"Sol·licitud ""urgent""; llicència d\'obra"' in line
    assert '"Lucía Núñez Peña (12345678Z); Obres SL (B12345674)"' in line
    assert ";L01462508;;" in line  # no procedimiento: an empty field
    assert "Núñez".encode() in (libro.csv_cabecera(MADRID) + line).encode("utf-8")
    # A newline inside a resumen stays inside its quoted field.
    rows = parse(libro.BOM + libro.csv_filas([asiento(1, resumen="dos\nlíneas")], MADRID))
    assert rows[0][3] == "dos\nlíneas"


def test_csv_times_are_the_entitys_local_time() -> None:
    verano = asiento(1, fecha_registro=datetime(2026, 7, 1, 22, 30, tzinfo=UTC))
    assert libro.fila(verano, MADRID)[1] == "02/07/2026 00:30:00"
    assert libro.fila(verano, CANARIAS)[1] == "01/07/2026 23:30:00"


def test_the_pdf_parses_and_lists_every_asiento() -> None:
    asientos = [asiento(i) for i in range(1, 60)] + [anulado(60)]
    pdf = render_libro(
        asientos,
        entidad=VALENCIA,
        tipo=TipoAsiento.ENTRADA,
        desde=date(2026, 1, 1),
        hasta=date(2027, 1, 1),
        generado_en=datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert pdf.startswith(b"%PDF-")
    drawn = read(pdf)
    assert drawn.pages >= 2
    lines = set(drawn.text.splitlines())
    for i in range(1, 61):
        assert f"E/2026/{i:06d}" in lines
    assert "Libro de registro de entrada" in lines
    assert "Ajuntament de València · DIR3 L01462508" in lines
    assert any(line.startswith("Del 01/01/2026 al 31/12/2026") for line in lines)
    assert "23/11/2026 11:00:00" in lines
    assert "Total: 60 asientos." in lines
    for page in range(1, drawn.pages + 1):
        text = drawn.page_text(page)
        # fpdf2 draws the total-pages alias as a run of its own.
        assert f"Página {page} de \n{drawn.pages}\n" in text + "\n"
        assert "Libro de registro de entrada" in text.splitlines()
    assert any("Anulado el 24/11/2026" in line for line in lines)


def test_an_empty_period_still_gives_a_pdf_that_says_so() -> None:
    pdf = render_libro(
        [],
        entidad=VALENCIA,
        tipo=TipoAsiento.SALIDA,
        desde=date(2026, 3, 1),
        hasta=date(2026, 4, 1),
        generado_en=datetime(2026, 4, 1, tzinfo=UTC),
    )
    lines = set(read(pdf).text.splitlines())
    assert "Libro de registro de salida" in lines
    assert "No hay asientos en el periodo." in lines


@pytest.mark.parametrize(
    ("desde", "hasta"),
    [
        (date(2026, 1, 1), date(2026, 1, 1)),
        (date(2026, 2, 1), date(2026, 1, 1)),
        (date(2026, 1, 1), date(2027, 1, 2)),
        (date(2024, 2, 29), date(2025, 3, 1)),
    ],
)
def test_a_range_is_one_day_to_one_year(desde: date, hasta: date) -> None:
    with pytest.raises(ValueError):
        libro.validate_rango(desde, hasta)


def test_ranges_at_the_limits_are_accepted() -> None:
    libro.validate_rango(date(2026, 1, 1), date(2026, 1, 2))
    libro.validate_rango(date(2026, 1, 1), date(2027, 1, 1))
    libro.validate_rango(date(2024, 2, 29), date(2025, 2, 28))


def test_dates_are_local_midnights_and_progress_is_a_percentage() -> None:
    desde, hasta = libro.instantes(date(2026, 7, 1), date(2026, 7, 2), CANARIAS)
    assert desde == datetime(2026, 6, 30, 23, 0, tzinfo=UTC)
    assert hasta == datetime(2026, 7, 1, 23, 0, tzinfo=UTC)
    assert libro.porcentaje(0, None) == 0
    assert libro.porcentaje(0, 0) == 100
    assert libro.porcentaje(1000, 2500) == 40
    assert libro.porcentaje(2500, 2500) == 100


def test_file_names_and_media_types() -> None:
    nombre = libro.nombre_fichero(
        TipoAsiento.SALIDA, Formato.PDF, date(2026, 1, 1), date(2027, 1, 1)
    )
    assert nombre == "libro-salida-2026-01-01-2027-01-01.pdf"
    assert Formato.CSV.media_type == "text/csv; charset=utf-8"
