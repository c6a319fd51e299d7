"""Pure rules of the repositorio: ENI vocabulary and identifier, formats, file names,
capture dates, and the HTTP validator and range rules of a download."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.common.nti import resolver_formato
from services.repositorio import domain
from services.repositorio.domain import EstadoElaboracion, RangoNoSatisfacible, TipoDocumental
from services.repositorio.schemas import MetadatosCreate

# --- ENI vocabulary ---------------------------------------------------------------------


def test_enumerations_are_exactly_those_of_the_eni_xsd() -> None:
    """As metadatosDocumentoEni.xsd v1.0 enumerates them, in its order."""
    assert [e.value for e in EstadoElaboracion] == ["EE01", "EE02", "EE03", "EE04", "EE99"]
    assert [t.value for t in TipoDocumental] == [f"TD{n:02d}" for n in range(1, 21)] + ["TD99"]


def test_the_nti_names_of_states_and_types() -> None:
    assert EstadoElaboracion.EE01.descripcion == "Original"
    assert EstadoElaboracion.EE03.descripcion == "Copia electrónica auténtica de documento papel"
    assert TipoDocumental.TD01.descripcion == "Resolución"
    assert TipoDocumental.TD07.descripcion == "Notificación"
    assert TipoDocumental.TD12.descripcion == "Diligencia"
    assert TipoDocumental.TD99.descripcion == "Otros"
    assert [e for e in EstadoElaboracion if e.requiere_documento_origen] == [
        EstadoElaboracion.EE02,
        EstadoElaboracion.EE04,
    ]


# --- identifier --------------------------------------------------------------------------


def test_identificador_follows_the_nti_form() -> None:
    documento_id = "0195a3d2-4c1e-7b8a-9f3d-2e6c8a1b4d70"
    identificador = domain.identificador_eni("l01030149", 2026, documento_id)
    assert identificador == "ES_L01030149_2026_0000003DKPJ5SV63GLZVVBN55FGAR4"
    assert len(identificador) == 48


@pytest.mark.parametrize(
    "documento_id",
    [
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        # A fixed id: the name of a test must be the same in every xdist worker.
        pytest.param(str(uuid.uuid4()), id="random"),
    ],
)
def test_id_especifico_is_30_alphanumerics_and_leads_back_to_the_uuid(documento_id: str) -> None:
    especifico = domain.id_especifico(documento_id)
    assert re.fullmatch(r"[0-9A-Z]{30}", especifico)
    assert uuid.UUID(int=int(especifico, 36)) == uuid.UUID(documento_id)


def test_different_documentos_get_different_identifiers() -> None:
    ids = {domain.identificador_eni("L01030149", 2026, str(uuid.uuid4())) for _ in range(500)}
    assert len(ids) == 500


@pytest.mark.parametrize(
    "bad",
    [
        "ES_L0103014_2026_0000003DKPJ5SV63GLZVVBN55FGAR4",  # DIR3 one short
        "ES_L01030149_26_0000003DKPJ5SV63GLZVVBN55FGAR4",
        "ES_L01030149_2026_0000003DKPJ5SV63GLZVVBN55FGAR",  # 29
        "EX_L01030149_2026_0000003DKPJ5SV63GLZVVBN55FGAR4",
        "ES_L01030149_2026_0000003DKPJ5SV63GLZVVBN55FGA-4",
    ],
)
def test_malformed_identifiers_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="identificador ENI"):
        domain.validate_identificador_eni(bad)


@pytest.mark.parametrize(
    ("fecha", "ine", "anio"),
    [
        (datetime(2025, 12, 31, 23, 30, tzinfo=UTC), "03014", 2026),  # already 2026 in Madrid
        (datetime(2025, 12, 31, 23, 30, tzinfo=UTC), "35016", 2025),  # still 2025 in Canarias
        (datetime(2026, 6, 1, 12, 0, tzinfo=UTC), "46250", 2026),
    ],
)
def test_the_year_is_the_entitys_local_year_of_capture(
    fecha: datetime, ine: str, anio: int
) -> None:
    assert domain.anio_captura(fecha, ine) == anio


def test_naive_capture_dates_are_refused() -> None:
    with pytest.raises(ValueError, match="zona horaria"):
        domain.anio_captura(datetime(2026, 1, 1), "03014")
    with pytest.raises(ValueError, match="zona horaria"):
        domain.fecha_captura(datetime(2026, 1, 1), datetime.now(UTC))


def test_capture_date_defaults_to_now_and_cannot_be_in_the_future() -> None:
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert domain.fecha_captura(None, now) == now
    past = now - timedelta(days=400)
    assert domain.fecha_captura(past, now) == past
    assert domain.fecha_captura(now + timedelta(minutes=2), now) == now + timedelta(minutes=2)
    with pytest.raises(ValueError, match="posterior"):
        domain.fecha_captura(now + timedelta(hours=1), now)


def test_version_series_name_fits_the_counter_column() -> None:
    serie = domain.serie_versiones("0195A3D2-4C1E-7B8A-9F3D-2E6C8A1B4D70")
    assert serie == "version:0195a3d2-4c1e-7b8a-9f3d-2e6c8a1b4d70"
    assert len(serie) <= 50
    with pytest.raises(ValueError):
        domain.serie_versiones("1; DROP TABLE")


# --- metadatos model -----------------------------------------------------------------------


def _metadatos(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "organo": " l01030149 ",
        "origen": "ciudadano",
        "estado_elaboracion": "EE01",
        "tipo_documental": "TD14",
    }
    data.update(overrides)
    return data


def test_metadatos_normalise_the_organo() -> None:
    assert MetadatosCreate.model_validate(_metadatos()).organo == "L01030149"


@pytest.mark.parametrize("estado", ["EE02", "EE04"])
def test_copies_with_a_change_of_format_or_partial_name_their_origin(estado: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MetadatosCreate.model_validate(_metadatos(estado_elaboracion=estado))
    assert [e["loc"] for e in caught.value.errors()] == [("identificador_documento_origen",)]
    origen = "ES_L01030149_2026_0000003DKPJ5SV63GLZVVBN55FGAR4"
    ok = MetadatosCreate.model_validate(
        _metadatos(estado_elaboracion=estado, identificador_documento_origen=origen)
    )
    assert ok.identificador_documento_origen == origen


def test_a_copy_of_paper_needs_no_origin() -> None:
    copia = MetadatosCreate.model_validate(_metadatos(estado_elaboracion="EE03"))
    assert copia.identificador_documento_origen is None


def test_derived_fields_cannot_be_sent() -> None:
    with pytest.raises(ValidationError) as caught:
        MetadatosCreate.model_validate(_metadatos(formato="PDF", identificador="ES_X"))
    assert sorted(e["loc"][0] for e in caught.value.errors()) == ["formato", "identificador"]


# --- formats and names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mime", "nombre", "formato", "served"),
    [
        ("application/pdf", "a.pdf", "PDF", "application/pdf"),
        ("Application/PDF; charset=binary", "a", "PDF", "application/pdf"),
        ("application/octet-stream", "Acta.PDF", "PDF", "application/pdf"),
        (None, "informe.odt", "ODT", "application/vnd.oasis.opendocument.text"),
        ("text/xml", "datos.xml", "XML", "text/xml"),
        ("application/xml", "firma.xsig", "XSIG", "application/xml"),
        ("", "foto.JPG", "JPEG", "image/jpeg"),
        ("image/png", "sin-extension", "PNG", "image/png"),
    ],
)
def test_format_comes_from_the_mime_type_or_else_the_extension(
    mime: str | None, nombre: str, formato: str, served: str
) -> None:
    found, mime_served = resolver_formato(mime, nombre)
    assert (found.nombre, mime_served) == (formato, served)


@pytest.mark.parametrize(
    ("mime", "nombre"),
    [
        ("application/msword", "viejo.doc"),
        ("application/octet-stream", "programa.exe"),
        (None, None),
        (None, "sin-extension"),
    ],
)
def test_formats_outside_the_catalogue_are_refused(mime: str | None, nombre: str | None) -> None:
    with pytest.raises(ValueError, match="formato"):
        resolver_formato(mime, nombre)


@pytest.mark.parametrize(
    ("nombre", "expected"),
    [
        ("resolución.pdf", "resolución.pdf"),
        ("C:\\Users\\ana\\Escritorio\\acta.pdf", "acta.pdf"),
        ("/home/ana/../../etc/passwd.pdf", "passwd.pdf"),
        ("mal\x00vado\r\n.pdf", "malvado.pdf"),
        ("   ", "documento.pdf"),
        (None, "documento.pdf"),
        ("..", "documento.pdf"),
    ],
)
def test_file_names_keep_only_a_safe_last_segment(nombre: str | None, expected: str) -> None:
    pdf, _ = resolver_formato("application/pdf", None)
    assert domain.nombre_de_fichero(nombre, pdf) == expected


def test_long_file_names_are_cut_keeping_the_extension() -> None:
    pdf, _ = resolver_formato("application/pdf", None)
    nombre = domain.nombre_de_fichero("a" * 400 + ".pdf", pdf)
    assert len(nombre) == 255
    assert nombre.endswith("a.pdf")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('form-data; name="file"; filename="acta.pdf"', "acta.pdf"),
        ('form-data; name="file"; filename="dice \\"sí\\".pdf"', 'dice "sí".pdf'),
        ("form-data; name=\"file\"; filename*=UTF-8''resoluci%C3%B3n.pdf", "resolución.pdf"),
        (
            'form-data; name="file"; filename="x.pdf"; filename*=utf-8\'\'%C3%A1.pdf',
            "á.pdf",
        ),
        ("form-data; name=file; filename=simple.pdf", "simple.pdf"),
        ('form-data; name="metadatos"', None),
    ],
)
def test_file_name_from_a_parts_content_disposition(header: str, expected: str | None) -> None:
    assert domain.filename_from_disposition(header) == expected


def test_content_disposition_is_always_an_attachment_with_an_ascii_fallback() -> None:
    assert domain.content_disposition("acta.pdf") == 'attachment; filename="acta.pdf"'
    assert domain.content_disposition('año "2026".pdf') == (
        "attachment; filename=\"ano _2026_.pdf\"; filename*=UTF-8''a%C3%B1o%20%222026%22.pdf"
    )


# --- HTTP validators and ranges -----------------------------------------------------------


def test_etag_and_if_none_match() -> None:
    etag = domain.etag_de("ab" * 32)
    assert etag == '"' + "ab" * 32 + '"'
    assert domain.if_none_match_coincide(etag, etag)
    assert domain.if_none_match_coincide(f"W/{etag}", etag)
    assert domain.if_none_match_coincide(f'"x", {etag}', etag)
    assert domain.if_none_match_coincide("*", etag)
    assert not domain.if_none_match_coincide('"x"', etag)
    assert not domain.if_none_match_coincide(None, etag)
    assert not domain.if_none_match_coincide("", etag)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", (0, 0)),
        ("bytes=0-99", (0, 99)),
        ("bytes=10-", (10, 999)),
        ("bytes=-1", (999, 999)),
        ("bytes=-1000", (0, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=500-5000", (500, 999)),
        (" bytes = 1 - 2 ", (1, 2)),
        (None, None),
        ("", None),
        ("bytes=0-1,3-4", None),
        ("bytes=5-1", None),
        ("bytes=-", None),
        ("lines=1-2", None),
        ("bytes=a-b", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert domain.parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-1001", "bytes=-0"])
def test_ranges_outside_the_content_are_unsatisfiable(header: str) -> None:
    with pytest.raises(RangoNoSatisfacible):
        domain.parse_range(header, 1000)
