"""The bus contracts as published: schemas, examples, AsyncAPI document and lock agree.

This is the suite that fails the build when someone edits a published schema in a
way that breaks consumers (compared with ``published.lock.json``), drops a major,
or lets the examples, the AsyncAPI document or the guide drift from the schemas.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from services.common.contracts import (
    ENVELOPE_FILE,
    LOCK_FILE,
    ContractRegistry,
    ContractViolation,
    UnknownContract,
    default_root,
    event_type_for,
    name_for_event_type,
    name_to_path,
    path_to_name,
    schema_id_for,
)
from services.common.contracts.lock import build_lock, lock_problems, main, read_lock

ROOT = default_root()
REPO = ROOT.parent
ASYNCAPI = ROOT / "asyncapi.yaml"
EXAMPLES = ROOT / "examples"
ASIENTO = "registro.asiento.registrado.v1"
ANULADO = "registro.asiento.anulado.v1"
EXPEDIENTE = "tramitador.expediente.iniciado.v1"
SELLAR = "sellado.documento.sellar.v1"
SELLADO = "sellado.documento.sellado.v1"
RECHAZADO = "sellado.documento.rechazado.v1"
ALMACENADO = "repositorio.documento.almacenado.v1"
RESERVAR = "csv.codigo.reservar.v1"
RESERVADO = "csv.codigo.reservado.v1"
EMITIR = "repositorio.documento.emitir.v1"
EMITIDO = "repositorio.documento.emitido.v1"
FALLIDA = "repositorio.emision.fallida.v1"
ALMACENAR = "repositorio.documento.almacenar.v1"
RECIBIDO = "registro.intercambio.recibido.v1"
ACEPTADO = "registro.intercambio.aceptado.v1"
RECHAZADO_INTERCAMBIO = "registro.intercambio.rechazado.v1"
SOLICITAR_SELLO = "sellado.sellotiempo.solicitar.v1"
SELLO_EMITIDO = "sellado.sellotiempo.emitido.v1"
SELLO_RECHAZADO = "sellado.sellotiempo.rechazado.v1"
# The XAdES signature of an XML (the tramitador's índice electrónico).
XML_CONTRACTS = ["sellado.xml.firmar.v1", "sellado.xml.firmado.v1", "sellado.xml.rechazado.v1"]
LIQUIDACION_EMITIDA = "pagos.liquidacion.emitida.v1"
LIQUIDACION_ANULADA = "pagos.liquidacion.anulada.v1"
LIQUIDACION_VENCIDA = "pagos.liquidacion.vencida.v1"
PAGO_COMPLETADO = "pagos.pago.completado.v1"
PAGO_FALLIDO = "pagos.pago.fallido.v1"
REQUERIMIENTO_RECHAZADO = "pagos.requerimiento.rechazado.v1"
PAGOS_CONTRACTS = [
    LIQUIDACION_EMITIDA,
    LIQUIDACION_ANULADA,
    LIQUIDACION_VENCIDA,
    PAGO_COMPLETADO,
    PAGO_FALLIDO,
    REQUERIMIENTO_RECHAZADO,
]
CONSULTAR = "repositorio.documento.consultar.v1"
CONSULTADO = "repositorio.documento.consultado.v1"
FASE_CAMBIADA = "tramitador.expediente.fase-cambiada.v1"
TRAMITE_ASIGNADO = "tramitador.tramite.asignado.v1"
RESOLUCION_DICTADA = "tramitador.resolucion.dictada.v1"
NOTIFICACION_SOLICITAR = "tramitador.notificacion.solicitar.v1"
PAGO_REQUERIR = "tramitador.pago.requerir.v1"
TRAMITADOR_CONTRACTS = [
    FASE_CAMBIADA,
    TRAMITE_ASIGNADO,
    RESOLUCION_DICTADA,
    NOTIFICACION_SOLICITAR,
    PAGO_REQUERIR,
]
NOTIFICACION_EVENTS = [
    "notificaciones.notificacion.puesta-disposicion.v1",
    "notificaciones.notificacion.practicada.v1",
    "notificaciones.notificacion.rechazada.v1",
    "notificaciones.notificacion.expirada.v1",
    "notificaciones.notificacion.fallida.v1",
]
CONTRACTS = [
    ASIENTO,
    ANULADO,
    EXPEDIENTE,
    SELLAR,
    SELLADO,
    RECHAZADO,
    ALMACENADO,
    RESERVAR,
    RESERVADO,
    EMITIR,
    EMITIDO,
    FALLIDA,
    RECIBIDO,
    ACEPTADO,
    RECHAZADO_INTERCAMBIO,
    SOLICITAR_SELLO,
    SELLO_EMITIDO,
    SELLO_RECHAZADO,
    *XML_CONTRACTS,
    ALMACENAR,
    CONSULTAR,
    CONSULTADO,
    *PAGOS_CONTRACTS,
    *TRAMITADOR_CONTRACTS,
    *NOTIFICACION_EVENTS,
]
SELLADO_CONTRACTS = [SELLAR, SELLADO, RECHAZADO]
# A valid metadatos of emitir, and an asiento it may refer to, for the bad-value cases.
METADATOS = {
    "organo": "L01030149",
    "origen": "administracion",
    "estado_elaboracion": "EE01",
    "tipo_documental": "TD09",
}
ASIENTO_ID = "0195a3c4-1f0a-7d2e-8c55-6b3f1e9a7d20"
CSV_CONTRACTS = [RESERVAR, RESERVADO]
EMISION_CONTRACTS = [EMITIR, EMITIDO, FALLIDA]


@pytest.fixture(scope="module")
def registry() -> ContractRegistry:
    """One registry for the module, loaded from the repository's bus-contracts/."""
    return ContractRegistry.load()


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    """The AsyncAPI document, parsed."""
    document = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def load_json(path: Path) -> Any:
    """Reads a JSON file as UTF-8."""
    return json.loads(path.read_text(encoding="utf-8"))


def schema_files() -> list[Path]:
    """Every schema file (all JSON but the lock and the examples)."""
    return sorted(
        p for p in ROOT.rglob("*.json") if p.name != LOCK_FILE and EXAMPLES not in p.parents
    )


def example_files() -> list[Path]:
    """Every example payload."""
    return sorted(EXAMPLES.rglob("*.json"))


def good_envelope() -> dict[str, Any]:
    """A complete, valid asiento registrado event."""
    return {
        "specversion": "1.0",
        "id": "0195a3c4-1f0b-7a10-b2c4-5d6e7f809a1b",
        "source": "/consistorio/registro",
        "type": event_type_for(ASIENTO),
        "time": "2026-03-02T10:41:03.518+01:00",
        "datacontenttype": "application/json",
        "dataschema": schema_id_for(name_to_path(ASIENTO)),
        "tenantid": "03014",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "data": load_json(EXAMPLES / "registro/asiento-registrado/v1/full.json"),
    }


# --- schemas -------------------------------------------------------------------


def test_the_expected_contracts_are_there(registry: ContractRegistry) -> None:
    """The registry finds exactly the contracts we publish."""
    assert registry.names() == sorted(CONTRACTS)


@pytest.mark.parametrize("path", schema_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_schema_is_valid_draft_2020_12_with_the_id_its_path_implies(path: Path) -> None:
    """A schema must be valid 2020-12 and identify itself by where it lives."""
    schema = load_json(path)
    Draft202012Validator.check_schema(schema)
    relative = path.relative_to(ROOT).as_posix()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == schema_id_for(relative)
    assert schema.get("title") and schema.get("description")


@pytest.mark.parametrize("name", CONTRACTS)
def test_contract_schema_is_open_for_minor_additions(registry: ContractRegistry, name: str) -> None:
    """Open objects are what lets a minor add optional fields without breaking consumers."""
    schema = registry.schema(name)
    assert schema["title"] == name
    assert schema["additionalProperties"] is True
    assert "optional" in schema["description"]
    assert registry.schema_uri(name) == schema["$id"]


def test_every_schema_file_is_a_contract_or_the_envelope(registry: ContractRegistry) -> None:
    """A stray schema file would be neither loaded as a contract nor locked."""
    contract_paths = {registry.path(name) for name in registry.names()}
    for path in schema_files():
        relative = path.relative_to(ROOT).as_posix()
        assert relative == ENVELOPE_FILE or relative in contract_paths, relative


def test_interesado_is_the_same_shape_in_every_contract(registry: ContractRegistry) -> None:
    """Each contract defines interesado locally; they must not drift apart."""
    carriers = [n for n in registry.names() if "interesado" in registry.schema(n).get("$defs", {})]
    assert set(carriers) >= {ASIENTO, EXPEDIENTE}
    shapes = [registry.schema(name)["$defs"]["interesado"] for name in carriers]
    assert all(shape == shapes[0] for shape in shapes)
    assert shapes[0]["properties"]["tipo_identificador"]["enum"] == [
        "NIF",
        "NIE",
        "CIF",
        "PASAPORTE",
    ]


def test_procedimiento_of_an_asiento_is_required_but_nullable(registry: ContractRegistry) -> None:
    """procedimiento is always sent, null meaning the citizen named none."""
    data = load_json(EXAMPLES / "registro/asiento-registrado/v1/full.json")
    registry.validate(ASIENTO, {**data, "procedimiento": None})
    without = {k: v for k, v in data.items() if k != "procedimiento"}
    with pytest.raises(ContractViolation) as caught:
        registry.validate(ASIENTO, without)
    assert caught.value.errors == ["procedimiento: is a required property"]


def test_name_path_mapping_round_trips() -> None:
    """Contract names and schema paths convert both ways, and nonsense is refused."""
    assert name_to_path(ASIENTO) == "registro/asiento-registrado/v1.json"
    assert path_to_name("registro/asiento-registrado/v1.json") == ASIENTO
    assert path_to_name(name_to_path("tramitador.expediente.fase-cambiada.v12")) == (
        "tramitador.expediente.fase-cambiada.v12"
    )
    assert name_for_event_type(event_type_for(EXPEDIENTE)) == EXPEDIENTE
    for bad in ("registro.asiento.v1", "Registro.asiento.registrado.v1", "a.b.c.v0"):
        with pytest.raises(ValueError):
            name_to_path(bad)
    with pytest.raises(ValueError):
        path_to_name("registro/asiento_registrado/v1.json")


# --- examples ------------------------------------------------------------------


@pytest.mark.parametrize("name", CONTRACTS)
def test_each_contract_has_a_minimal_and_a_full_example(name: str) -> None:
    """Integrators learn from examples; each contract shows its smallest and fullest form."""
    folder = EXAMPLES / name_to_path(name).removesuffix(".json")
    assert {p.name for p in folder.glob("*.json")} >= {"minimal.json", "full.json"}


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.relative_to(EXAMPLES).as_posix())
def test_example_validates_against_its_schema(registry: ContractRegistry, path: Path) -> None:
    """An example that does not validate teaches the wrong thing."""
    name = path_to_name(path.parent.relative_to(EXAMPLES).as_posix() + ".json")
    assert name in registry.names(), f"{path.name} belongs to no contract"
    registry.validate(name, load_json(path))


# --- sellado: a command and its replies ---------------------------------------------


def without_descriptions(node: Any) -> Any:
    """A schema fragment with its prose left out, to compare constraints only."""
    if isinstance(node, dict):
        return {k: without_descriptions(v) for k, v in node.items() if k != "description"}
    return node


@pytest.mark.parametrize("field", ["solicitud_id", "solicitante", "nombre_fichero", "pdf"])
def test_fields_a_reply_echoes_are_constrained_as_in_the_command(
    registry: ContractRegistry, field: str
) -> None:
    """What a reply copies from the command must be valid wherever it was valid in it."""
    shapes = [
        without_descriptions(registry.schema(name)["properties"][field])
        for name in SELLADO_CONTRACTS
        if field in registry.schema(name)["properties"]
    ]
    assert len(shapes) >= 2 and all(shape == shapes[0] for shape in shapes)
    for name in SELLADO_CONTRACTS:
        if field in ("solicitud_id", "solicitante"):
            assert field in registry.schema(name)["required"], name


def test_reply_examples_answer_a_command_example() -> None:
    """The sealed examples answer the command examples: same solicitud, solicitante, file."""
    folder = EXAMPLES / "sellado"
    for kind in ("minimal", "full"):
        command = load_json(folder / f"documento-sellar/v1/{kind}.json")
        reply = load_json(folder / f"documento-sellado/v1/{kind}.json")
        for field in ("solicitud_id", "solicitante", "nombre_fichero"):
            assert reply[field] == command[field], (kind, field)
        sealed = base64.b64decode(reply["pdf"], validate=True)
        assert sealed.startswith(base64.b64decode(command["pdf"], validate=True))
        assert reply["sha256"] == hashlib.sha256(sealed).hexdigest()


def test_pdf_limit_holds_ten_mebibytes_and_fits_a_rabbitmq_message(
    registry: ContractRegistry,
) -> None:
    """14,000,000 base64 characters hold a 10 MiB PDF, and the event stays under 16 MiB."""
    limit = registry.schema(SELLAR)["properties"]["pdf"]["maxLength"]
    assert 4 * math.ceil(10 * 1024 * 1024 / 3) <= limit
    data = {**load_json(EXAMPLES / "sellado/documento-sellado/v1/full.json"), "pdf": "A" * limit}
    registry.validate(SELLADO, data)
    with pytest.raises(ContractViolation):
        registry.validate(SELLADO, {**data, "pdf": "A" * (limit + 1)})
    envelope = {
        "specversion": "1.0",
        "id": "0195a3c5-0f6a-7a83-b4c5-d6e7f8091a2b",
        "source": "/consistorio/sellado",
        "type": event_type_for(SELLADO),
        "time": "2026-03-02T10:41:04.391+01:00",
        "datacontenttype": "application/json",
        "dataschema": schema_id_for(name_to_path(SELLADO)),
        "tenantid": "03014",
        "data": data,
    }
    assert len(json.dumps(envelope).encode()) < 16 * 1024 * 1024  # RabbitMQ 4 default


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        (SELLAR, "solicitud_id", "42"),
        (SELLAR, "solicitante", ""),
        (SELLAR, "solicitante", "x" * 101),
        (SELLAR, "nombre_fichero", "informe.docx"),
        (SELLAR, "nombre_fichero", "informe.pdf.exe"),
        (SELLAR, "nombre_fichero", "x" * 252 + ".pdf"),
        (SELLAR, "motivo", "x" * 201),
        (SELLAR, "apariencia", {"pagina": 1}),
        (SELLAR, "apariencia", {"visible": True, "pagina": 0}),
        (SELLAR, "apariencia", {"visible": "si"}),
        (SELLADO, "sha256", "59201C33846AF08555F2EC6A32D91985407A35E8093D7D326ECACB0FA874EAF1"),
        (SELLADO, "sha256", "59201c33"),
        (SELLADO, "perfil", "PAdES-B-LTA"),
        (SELLADO, "sello_tiempo", "2026-03-02 09:41:04"),
        (SELLADO, "firmante", ""),
        (RECHAZADO, "codigo", "otro"),
        (RECHAZADO, "motivo", ""),
        (RECHAZADO, "motivo", "x" * 1001),
    ],
)
def test_sellado_contracts_reject_a_bad_value(
    registry: ContractRegistry, name: str, field: str, value: Any
) -> None:
    """Each constraint of the sellado contracts is enforced, reported at its field."""
    data = load_json(EXAMPLES / name_to_path(name).removesuffix(".json") / "full.json")
    data[field] = value
    with pytest.raises(ContractViolation) as caught:
        registry.validate(name, data)
    assert [error.split(":")[0].split("/")[0] for error in caught.value.errors] == [field]


def test_nombre_fichero_ends_in_pdf_in_any_case(registry: ContractRegistry) -> None:
    """The extension is matched without regard to case, as file systems show it."""
    data = load_json(EXAMPLES / "sellado/documento-sellar/v1/minimal.json")
    for name in ("a.pdf", "A.PDF", "acta 3.Pdf"):
        registry.validate(SELLAR, {**data, "nombre_fichero": name})


# --- emisión con CSV: two commands and their replies --------------------------------


def constraints(node: Any) -> Any:
    """A schema fragment without its prose and examples: what a validator checks."""
    if isinstance(node, dict):
        return {k: constraints(v) for k, v in node.items() if k not in ("description", "examples")}
    return node


def example(name: str, kind: str) -> dict[str, Any]:
    """The ``kind`` (minimal, full) example of contract ``name``."""
    data = load_json(EXAMPLES / name_to_path(name).removesuffix(".json") / f"{kind}.json")
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize(
    ("field", "names"),
    [
        (
            "solicitud_id",
            [SELLAR, RESERVAR, RESERVADO, EMITIR, EMITIDO, FALLIDA, *TRAMITADOR_CONTRACTS[3:]],
        ),
        (
            "solicitante",
            [SELLAR, RESERVAR, RESERVADO, EMITIR, EMITIDO, FALLIDA, *TRAMITADOR_CONTRACTS[3:]],
        ),
        ("documento_id", [RESERVAR, RESERVADO, EMITIDO, FALLIDA, ALMACENADO]),
        ("nombre_fichero", [SELLAR, EMITIR, EMITIDO]),
        ("pdf", [SELLAR, EMITIR]),
        ("csv", [RESERVADO, EMITIDO, FALLIDA]),
        ("url_verificacion", [RESERVADO, EMITIDO]),
        ("sha256", [SELLADO, EMITIDO]),
        ("firmante", [SELLADO, EMITIDO]),
        ("identificador", [ALMACENADO, EMITIDO]),
    ],
)
def test_a_field_is_constrained_alike_in_every_contract_carrying_it(
    registry: ContractRegistry, field: str, names: list[str]
) -> None:
    """A value one service copies into another contract must be valid in both."""
    shapes = [constraints(registry.schema(name)["properties"][field]) for name in names]
    assert all(shape == shapes[0] for shape in shapes), field


def test_metadatos_of_emitir_are_constrained_as_the_stored_eni_metadata(
    registry: ContractRegistry,
) -> None:
    """The repositorio stores emitir's metadatos as they come: they must fit almacenado's."""
    stored = registry.schema(ALMACENADO)["$defs"]["metadatos_eni"]["properties"]
    given = registry.schema(EMITIR)["properties"]["metadatos"]
    for field, shape in given["properties"].items():
        assert without_descriptions(shape) == without_descriptions(stored[field]), field
    for field in ("organo", "tipo_documental"):
        assert without_descriptions(registry.schema(EMITIDO)["properties"][field]) == (
            without_descriptions(stored[field])
        )
    assert given["required"] == ["organo", "origen", "estado_elaboracion", "tipo_documental"]


def test_referencia_is_the_same_shape_where_it_travels(registry: ContractRegistry) -> None:
    """emitido carries emitir's referencia back unchanged, so both define it alike."""
    shapes = [registry.schema(name)["$defs"]["referencia"] for name in (EMITIR, EMITIDO)]
    assert shapes[0] == shapes[1]
    assert shapes[0]["required"] == ["tipo", "id", "numero"]
    for name in (EMITIR, EMITIDO):
        assert registry.schema(name)["properties"]["referencia"] == {"$ref": "#/$defs/referencia"}


@pytest.mark.parametrize(
    ("name", "required"),
    [
        (RESERVAR, ["solicitud_id", "solicitante", "documento_id"]),
        (RESERVADO, ["solicitud_id", "solicitante", "documento_id", "csv", "url_verificacion"]),
        (EMITIR, ["solicitud_id", "solicitante", "nombre_fichero", "pdf", "metadatos"]),
        (
            EMITIDO,
            [
                "documento_id",
                "version",
                "csv",
                "url_verificacion",
                "sha256",
                "tamano",
                "nombre_fichero",
                "identificador",
                "tipo_documental",
                "organo",
                "emitido_en",
                "firmante",
                "sello_tiempo",
            ],
        ),
        (FALLIDA, ["motivo", "codigo"]),
    ],
)
def test_emision_contracts_require_exactly_their_mandatory_fields(
    registry: ContractRegistry, name: str, required: list[str]
) -> None:
    """An emisión started through the API has no solicitud: those fields stay optional."""
    assert registry.schema(name)["required"] == required
    data = example(name, "full")
    for field in set(data) - set(required):
        registry.validate(name, {k: v for k, v in data.items() if k != field})
    for field in required:
        with pytest.raises(ContractViolation) as caught:
            registry.validate(name, {k: v for k, v in data.items() if k != field})
        assert caught.value.errors == [f"{field}: is a required property"]


@pytest.mark.parametrize("kind", ["minimal", "full"])
def test_reservado_examples_answer_the_reservar_examples(kind: str) -> None:
    """The reply carries back the command's solicitud, solicitante and documento."""
    command, reply = example(RESERVAR, kind), example(RESERVADO, kind)
    for field in ("solicitud_id", "solicitante", "documento_id"):
        assert reply[field] == command[field], field


def test_emitido_example_answers_the_emitir_example() -> None:
    """The issued justificante carries back its command's solicitud and referencia."""
    command, reply = example(EMITIR, "full"), example(EMITIDO, "full")
    for field in ("solicitud_id", "solicitante", "nombre_fichero", "referencia"):
        assert reply[field] == command[field], field
    assert reply["tipo_documental"] == command["metadatos"]["tipo_documental"]
    assert reply["organo"] == command["metadatos"]["organo"]
    assert reply["csv"] == example(RESERVADO, "full")["csv"]


@pytest.mark.parametrize(
    "path",
    [
        p
        for name in (RESERVADO, EMITIDO)
        for p in sorted((EXAMPLES / name_to_path(name).removesuffix(".json")).glob("*.json"))
    ],
    ids=lambda p: p.relative_to(EXAMPLES).as_posix(),
)
def test_example_url_verificacion_names_its_csv(path: Path) -> None:
    """The verification URL is the public base URL, /verificar/ and the code."""
    data = load_json(path)
    assert data["url_verificacion"].endswith("/verificar/" + data["csv"])


@pytest.mark.parametrize(
    "code",
    [
        "ZXANZ-NR454-H4FLR-KGPBW-P4ZXR",
        "23456-789AB-CDEFG-HJKLM-NPQRS",
    ],
)
def test_csv_pattern_accepts_the_canonical_form(registry: ContractRegistry, code: str) -> None:
    """Five groups of five symbols of the alphabet, upper case, joined by hyphens."""
    registry.validate(RESERVADO, {**example(RESERVADO, "full"), "csv": code})


@pytest.mark.parametrize(
    "code",
    [
        "zxanz-nr454-h4flr-kgpbw-p4zxr",
        "ZXANZNR454H4FLRKGPBWP4ZXR",
        "ZXANZ-NR454-H4FLR-KGPBW-P4ZX",
        "ZXANZ-NR454-H4FLR-KGPBW-P4ZXR2",
        "ZXANZ-NR454-H4FLR-KGPBW-P4ZX0",
        "ZXANZ-NR454-H4FLR-KGPBW-P4ZX1",
        "ZXANZ-NR454-H4FLR-KGPBW-P4ZXI",
        "ZXANZ-NR454-H4FLR-KGPBW-P4ZXO",
        "ZXANZ NR454 H4FLR KGPBW P4ZXR",
    ],
)
@pytest.mark.parametrize("name", [RESERVADO, EMITIDO, FALLIDA])
def test_csv_pattern_refuses_other_forms(registry: ContractRegistry, name: str, code: str) -> None:
    """Only the canonical written form travels: no lower case, 0, 1, I, O or lost hyphens."""
    with pytest.raises(ContractViolation) as caught:
        registry.validate(name, {**example(name, "full"), "csv": code})
    assert [error.split(":")[0] for error in caught.value.errors] == ["csv"]


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        (RESERVAR, "solicitud_id", "42"),
        (RESERVAR, "solicitante", ""),
        (RESERVAR, "documento_id", "documento-1"),
        (RESERVADO, "url_verificacion", "verificar/ZXANZ-NR454-H4FLR-KGPBW-P4ZXR"),
        (RESERVADO, "url_verificacion", "https://sede.consistorio.es/" + "x" * 2048),
        (EMITIR, "nombre_fichero", "justificante.docx"),
        (EMITIR, "pdf", "A" * 14_000_001),
        (EMITIR, "metadatos", {"organo": "L01030149", "origen": "administracion"}),
        (EMITIR, "metadatos", {**METADATOS, "organo": "l01030149"}),
        (EMITIR, "metadatos", {**METADATOS, "origen": "empresa"}),
        (EMITIR, "metadatos", {**METADATOS, "estado_elaboracion": "EE05"}),
        (EMITIR, "metadatos", {**METADATOS, "tipo_documental": "TD21"}),
        (EMITIR, "metadatos", {**METADATOS, "fecha_captura": "2026-03-02"}),
        (EMITIR, "referencia", {"tipo": "expediente", "id": ASIENTO_ID, "numero": "1"}),
        (EMITIR, "referencia", {"tipo": "asiento", "id": ASIENTO_ID}),
        (EMITIR, "referencia", {"tipo": "asiento", "id": "42", "numero": "E/2026/000042"}),
        (EMITIDO, "version", 0),
        (EMITIDO, "tamano", 0),
        (EMITIDO, "sha256", "F2811BAB201E4DDA356BB99ADEB2750B1C1E637B7564A74659EF09EBD71D1286"),
        (EMITIDO, "identificador", "ES_L01030149_2026_corto"),
        (EMITIDO, "emitido_en", "2026-03-02 10:41:05"),
        (EMITIDO, "sello_tiempo", "ayer"),
        (EMITIDO, "firmante", ""),
        (EMITIDO, "referencia", {"tipo": "asiento", "numero": "E/2026/000042"}),
        (FALLIDA, "motivo", ""),
        (FALLIDA, "motivo", "x" * 1001),
        (FALLIDA, "codigo", ""),
        (FALLIDA, "codigo", "Sin Certificado"),
        (FALLIDA, "codigo", "x" * 51),
        (FALLIDA, "documento_id", "documento-1"),
    ],
)
def test_emision_contracts_reject_a_bad_value(
    registry: ContractRegistry, name: str, field: str, value: Any
) -> None:
    """Each constraint of the csv and emisión contracts is enforced, reported at its field."""
    data = example(name, "full")
    data[field] = value
    with pytest.raises(ContractViolation) as caught:
        registry.validate(name, data)
    assert {error.split(":")[0].split("/")[0] for error in caught.value.errors} == {field}


def test_fallida_codigo_takes_the_sellado_refusal_codes(registry: ContractRegistry) -> None:
    """A refused seal fails the emisión with the refusal's codigo, unchanged."""
    data = example(FALLIDA, "full")
    for codigo in registry.schema(RECHAZADO)["properties"]["codigo"]["enum"]:
        registry.validate(FALLIDA, {**data, "codigo": codigo})


def test_the_emision_flow_has_its_producers_and_consumers(asyncapi: dict[str, Any]) -> None:
    """Who sends and who receives each message of the emisión, by operation name."""
    operations = {
        name: (op["action"], op["channel"]["$ref"].rsplit("/", 1)[-1])
        for name, op in asyncapi["operations"].items()
    }
    expected = {
        "repositorioSendsCodigoReservar": ("send", "codigoReservar"),
        "csvReceivesCodigoReservar": ("receive", "codigoReservar"),
        "csvSendsCodigoReservado": ("send", "codigoReservado"),
        "repositorioReceivesCodigoReservado": ("receive", "codigoReservado"),
        "repositorioSendsDocumentoSellar": ("send", "documentoSellar"),
        "repositorioReceivesDocumentoSellado": ("receive", "documentoSellado"),
        "repositorioReceivesDocumentoRechazado": ("receive", "documentoRechazado"),
        "registroSendsDocumentoEmitir": ("send", "documentoEmitir"),
        "repositorioReceivesDocumentoEmitir": ("receive", "documentoEmitir"),
        "repositorioSendsDocumentoEmitido": ("send", "documentoEmitido"),
        "repositorioSendsEmisionFallida": ("send", "emisionFallida"),
        "csvReceivesDocumentoEmitido": ("receive", "documentoEmitido"),
        "csvReceivesEmisionFallida": ("receive", "emisionFallida"),
        "registroReceivesDocumentoEmitido": ("receive", "documentoEmitido"),
        "registroReceivesEmisionFallida": ("receive", "emisionFallida"),
    }
    assert {name: operations.get(name) for name in expected} == expected


# --- runtime validation ----------------------------------------------------------


def test_validate_names_every_failing_field(registry: ContractRegistry) -> None:
    """A violation lists every failing field by its path, not only the first."""
    data = load_json(EXAMPLES / "registro/asiento-registrado/v1/full.json")
    data["interesados"][0]["identificador"] = ""
    data["interesados"][1]["tipo_identificador"] = "DNI"
    data["fecha_registro"] = "2026-02-30T10:00:00Z"
    data["asiento_id"] = "not-a-uuid"
    del data["resumen"]
    with pytest.raises(ContractViolation) as caught:
        registry.validate(ASIENTO, data)
    violation = caught.value
    assert violation.name == ASIENTO
    fields = [error.split(":")[0] for error in violation.errors]
    assert fields == [
        "asiento_id",
        "fecha_registro",
        "interesados/0/identificador",
        "interesados/1/tipo_identificador",
        "resumen",
    ]
    assert "interesados/0/identificador: " in str(violation)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("numero", "E/26/000001"),
        ("numero", "X/2026/000001"),
        ("unidad_destino", "l01030149"),
        ("resumen", "x" * 241),
        ("secuencia", 0),
        ("tipo", "interna"),
        ("interesados", []),
    ],
)
def test_validate_rejects_a_bad_value(registry: ContractRegistry, field: str, value: Any) -> None:
    """Each constraint of the asiento contract is enforced, reported at its field."""
    data = load_json(EXAMPLES / "registro/asiento-registrado/v1/minimal.json")
    data[field] = value
    with pytest.raises(ContractViolation) as caught:
        registry.validate(ASIENTO, data)
    assert [error.split(":")[0] for error in caught.value.errors] == [field]


def test_unknown_contract_is_refused(registry: ContractRegistry) -> None:
    """A typo in a contract name must not validate against nothing."""
    with pytest.raises(UnknownContract):
        registry.validate("registro.asiento.rectificado.v1", {})
    with pytest.raises(UnknownContract):
        registry.schema("registro.asiento.registrado.v9")


def test_validate_envelope_accepts_a_good_envelope(registry: ContractRegistry) -> None:
    """A well-formed event passes envelope and data checks."""
    registry.validate_envelope(good_envelope())


def test_validate_envelope_rejects_a_missing_tenantid(registry: ContractRegistry) -> None:
    """Without tenantid an event cannot be routed or confined to its council."""
    envelope = good_envelope()
    del envelope["tenantid"]
    with pytest.raises(ContractViolation) as caught:
        registry.validate_envelope(envelope)
    assert caught.value.errors == ["tenantid: is a required property"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tenantid": "3014"}, "tenantid"),
        ({"specversion": "0.3"}, "specversion"),
        ({"type": "es.consistorio.Registro"}, "type"),
        ({"datacontenttype": "application/xml"}, "datacontenttype"),
        ({"time": "ayer"}, "time"),
        ({"traceparent": "not-a-traceparent"}, "traceparent"),
        ({"dataschema": "https://consistorio.es/bus-contracts/otro.json"}, "dataschema"),
    ],
)
def test_validate_envelope_rejects_a_bad_attribute(
    registry: ContractRegistry, change: dict[str, Any], field: str
) -> None:
    """Each envelope attribute is checked and named when wrong."""
    with pytest.raises(ContractViolation) as caught:
        registry.validate_envelope({**good_envelope(), **change})
    assert [error.split(":")[0] for error in caught.value.errors] == [field]


def test_validate_envelope_checks_data_against_the_contract(registry: ContractRegistry) -> None:
    """The envelope check reaches into data, reporting its fields under data/."""
    envelope = good_envelope()
    envelope["data"]["interesados"][0]["identificador"] = ""
    with pytest.raises(ContractViolation) as caught:
        registry.validate_envelope(envelope)
    assert caught.value.name == ASIENTO
    assert caught.value.errors[0].startswith("data/interesados/0/identificador: ")
    registry.validate_envelope(envelope, check_data=False)


def test_validate_envelope_refuses_an_unknown_type(registry: ContractRegistry) -> None:
    """An event type with no contract is refused rather than waved through."""
    envelope = {**good_envelope(), "type": "es.consistorio.registro.asiento.rectificado.v1"}
    with pytest.raises(UnknownContract):
        registry.validate_envelope(envelope)


# --- AsyncAPI ---------------------------------------------------------------------


def test_asyncapi_document_is_structurally_complete(asyncapi: dict[str, Any]) -> None:
    """The AsyncAPI 3.0 document has its required parts and its internal references resolve."""
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["info"]["title"] and asyncapi["info"]["version"]
    assert asyncapi["defaultContentType"] == "application/cloudevents+json"
    for server in asyncapi["servers"].values():
        assert server["protocol"] == "amqp" and server["host"]
    for name, channel in asyncapi["channels"].items():
        assert channel["address"], name
        assert set(re.findall(r"{(\w+)}", channel["address"])) == set(channel["parameters"])
    for name, operation in asyncapi["operations"].items():
        assert operation["action"] in ("send", "receive"), name
        channel_ref = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), name
    for ref in internal_refs(asyncapi):
        assert resolve_pointer(asyncapi, ref) is not None, ref
    binding = asyncapi["components"]["channelBindings"]["consistorioEvents"]["amqp"]
    assert binding["is"] == "routingKey"
    assert binding["exchange"] == {
        "name": "consistorio.events",
        "type": "topic",
        "durable": True,
        "autoDelete": False,
        "vhost": "/",
    }


def test_asyncapi_operations_say_who_sends_and_receives(asyncapi: dict[str, Any]) -> None:
    """Each channel has its producer and, but for the ones only backoffices read, its consumer."""
    summary = {
        (op["action"], op["channel"]["$ref"].rsplit("/", 1)[-1])
        for op in asyncapi["operations"].values()
    }
    assert summary == {
        ("send", "asientoRegistrado"),
        ("receive", "asientoRegistrado"),
        ("send", "asientoAnulado"),
        ("send", "intercambioRecibido"),
        ("send", "intercambioAceptado"),
        ("send", "intercambioRechazado"),
        ("send", "expedienteIniciado"),
        ("receive", "expedienteIniciado"),
        ("send", "documentoSellar"),
        ("receive", "documentoSellar"),
        ("send", "documentoSellado"),
        ("receive", "documentoSellado"),
        ("send", "documentoRechazado"),
        ("receive", "documentoRechazado"),
        ("send", "documentoAlmacenado"),
        ("receive", "documentoAlmacenado"),
        ("send", "sellotiempoSolicitar"),
        ("receive", "sellotiempoSolicitar"),
        ("send", "sellotiempoEmitido"),
        ("receive", "sellotiempoEmitido"),
        ("send", "sellotiempoRechazado"),
        ("receive", "sellotiempoRechazado"),
        ("send", "xmlFirmar"),
        ("receive", "xmlFirmar"),
        ("send", "xmlFirmado"),
        ("receive", "xmlFirmado"),
        ("send", "xmlRechazado"),
        ("receive", "xmlRechazado"),
        ("send", "documentoAlmacenar"),
        ("receive", "documentoAlmacenar"),
        ("send", "codigoReservar"),
        ("receive", "codigoReservar"),
        ("send", "liquidacionEmitida"),
        ("send", "pagoCompletado"),
        ("receive", "pagoCompletado"),
        ("send", "pagoFallido"),
        ("send", "liquidacionAnulada"),
        ("send", "liquidacionVencida"),
        ("send", "codigoReservado"),
        ("receive", "codigoReservado"),
        ("send", "documentoEmitir"),
        ("receive", "documentoEmitir"),
        ("send", "documentoEmitido"),
        ("receive", "documentoEmitido"),
        ("send", "emisionFallida"),
        ("receive", "emisionFallida"),
        ("send", "expedienteFaseCambiada"),
        ("receive", "expedienteFaseCambiada"),
        ("send", "tramiteAsignado"),
        ("send", "resolucionDictada"),
        ("receive", "resolucionDictada"),
        ("send", "notificacionSolicitar"),
        ("receive", "notificacionSolicitar"),
        ("send", "pagoRequerir"),
        ("send", "notificacionPracticada"),
        ("receive", "notificacionPracticada"),
        ("send", "notificacionPuestaDisposicion"),
        ("send", "notificacionPracticada"),
        ("send", "notificacionRechazada"),
        ("send", "notificacionExpirada"),
        ("send", "notificacionFallida"),
        ("receive", "notificacionPracticada"),
        ("receive", "notificacionRechazada"),
        ("receive", "notificacionExpirada"),
        ("send", "documentoConsultar"),
        ("receive", "documentoConsultar"),
        ("send", "documentoConsultado"),
        ("receive", "documentoConsultado"),
        ("send", "requerimientoRechazado"),
        ("receive", "requerimientoRechazado"),
        ("receive", "notificacionFallida"),
    }


def test_asyncapi_and_the_schemas_name_the_same_contracts(
    registry: ContractRegistry, asyncapi: dict[str, Any]
) -> None:
    """Every contract is in the AsyncAPI document and every message there has its schema."""
    messages = asyncapi["components"]["messages"]
    assert sorted(m["name"] for m in messages.values()) == registry.names()
    for message in messages.values():
        name = message["name"]
        assert message["contentType"] == "application/cloudevents+json"
        assert message["bindings"]["amqp"]["messageType"] == event_type_for(name)
        parts = message["payload"]["schema"]["allOf"]
        assert (ASYNCAPI.parent / parts[0]["$ref"]).resolve() == (ROOT / ENVELOPE_FILE).resolve()
        data_ref = parts[1]["properties"]["data"]["$ref"]
        assert (ASYNCAPI.parent / data_ref).resolve() == (ROOT / registry.path(name)).resolve()
        assert parts[1]["properties"]["type"]["const"] == event_type_for(name)
        assert parts[1]["properties"]["dataschema"]["const"] == registry.schema_uri(name)
    addresses = sorted(channel["address"] for channel in asyncapi["channels"].values())
    assert addresses == sorted("{tenant}." + name for name in registry.names())


def test_asyncapi_message_examples_are_valid_events(
    registry: ContractRegistry, asyncapi: dict[str, Any]
) -> None:
    """The message examples in the AsyncAPI document are complete, valid events."""
    for message in asyncapi["components"]["messages"].values():
        assert message["examples"]
        for example in message["examples"]:
            registry.validate_envelope(example["payload"])
            assert example["payload"]["type"] == event_type_for(message["name"])


def internal_refs(node: Any) -> list[str]:
    """Every ``#/...`` $ref in a document."""
    if isinstance(node, dict):
        found = [node["$ref"]] if str(node.get("$ref", "")).startswith("#/") else []
        return found + [ref for value in node.values() for ref in internal_refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in internal_refs(value)]
    return []


def resolve_pointer(document: Any, ref: str) -> Any:
    """The node a ``#/...`` reference points to, or None."""
    node = document
    for token in ref.removeprefix("#/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or token not in node:
            return None
        node = node[token]
    return node


# --- published lock ---------------------------------------------------------------


def test_working_schemas_are_compatible_with_the_published_lock(
    registry: ContractRegistry,
) -> None:
    """Fails the build when a published schema is changed incompatibly in place."""
    lock = read_lock(ROOT / LOCK_FILE)
    assert lock["contracts"], "the lock publishes no contract"
    assert lock_problems(registry, lock) == []


def test_every_locked_contract_still_exists(registry: ContractRegistry) -> None:
    """A published major may not disappear silently."""
    lock = read_lock(ROOT / LOCK_FILE)
    assert set(lock["contracts"]) <= set(registry.names())


def test_lock_is_up_to_date(registry: ContractRegistry) -> None:
    """Every contract in the tree is published in the lock, as it is now."""
    lock = read_lock(ROOT / LOCK_FILE)
    assert lock == build_lock(registry), (
        "published.lock.json is stale: run `python -m services.common.contracts.lock`"
    )


@pytest.fixture
def contracts_copy(tmp_path: Path) -> Path:
    """A scratch copy of bus-contracts/ to break on purpose."""
    target = tmp_path / "bus-contracts"
    shutil.copytree(ROOT, target)
    return target


def edit_schema(root: Path, name: str, edit: Any) -> None:
    """Rewrites one contract's schema file through ``edit``."""
    path = root / name_to_path(name)
    schema = load_json(path)
    edit(schema)
    path.write_text(json.dumps(schema, indent=2, ensure_ascii=False), encoding="utf-8")


def test_lock_detects_an_incompatible_edit_in_place(contracts_copy: Path) -> None:
    """Removing an enum value from a published schema is reported at its path."""
    lock = read_lock(contracts_copy / LOCK_FILE)
    edit_schema(
        contracts_copy,
        ASIENTO,
        lambda s: s["$defs"]["interesado"]["properties"]["tipo_identificador"]["enum"].remove(
            "PASAPORTE"
        ),
    )
    problems = lock_problems(ContractRegistry.load(contracts_copy), lock)
    assert problems == [
        f"{ASIENTO} #/$defs/interesado/properties/tipo_identificador: "
        'enum value(s) removed: ["PASAPORTE"]'
    ]


def test_lock_detects_a_vanished_major(contracts_copy: Path) -> None:
    """A deleted major is reported unless it is retired on purpose."""
    lock = read_lock(contracts_copy / LOCK_FILE)
    (contracts_copy / name_to_path(EXPEDIENTE)).unlink()
    registry = ContractRegistry.load(contracts_copy)
    problems = lock_problems(registry, lock)
    assert len(problems) == 1 and problems[0].startswith(f"{EXPEDIENTE}: published contract")
    assert lock_problems(registry, lock, retired=[EXPEDIENTE]) == []


def test_lock_command_refuses_a_breaking_change(
    contracts_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lock command exits 1, says why, and leaves the lock untouched."""
    before = (contracts_copy / LOCK_FILE).read_text(encoding="utf-8")
    edit_schema(contracts_copy, EXPEDIENTE, lambda s: s["required"].append("nuevo_campo"))
    assert main(["--root", str(contracts_copy)]) == 1
    assert "#/properties/nuevo_campo: became required" in capsys.readouterr().err
    assert (contracts_copy / LOCK_FILE).read_text(encoding="utf-8") == before


def test_lock_command_records_a_compatible_change(contracts_copy: Path) -> None:
    """An optional property is accepted, and --check sees the lock is stale until refreshed."""

    def add_optional(schema: dict[str, Any]) -> None:
        schema["properties"]["observaciones"] = {"type": "string"}

    edit_schema(contracts_copy, EXPEDIENTE, add_optional)
    assert main(["--root", str(contracts_copy), "--check"]) == 1
    assert main(["--root", str(contracts_copy)]) == 0
    assert main(["--root", str(contracts_copy), "--check"]) == 0
    locked = read_lock(contracts_copy / LOCK_FILE)["contracts"][EXPEDIENTE]
    assert locked["properties"]["observaciones"] == {"type": "string"}


def test_lock_command_retires_a_major_only_on_request(contracts_copy: Path) -> None:
    """Dropping a major from the lock needs --retire."""
    (contracts_copy / name_to_path(EXPEDIENTE)).unlink()
    assert main(["--root", str(contracts_copy)]) == 1
    assert main(["--root", str(contracts_copy), "--retire", EXPEDIENTE]) == 0
    assert EXPEDIENTE not in read_lock(contracts_copy / LOCK_FILE)["contracts"]


# --- guide ------------------------------------------------------------------------


def test_guide_example_messages_are_valid(registry: ContractRegistry) -> None:
    """The guide's example messages must be valid, and it must list every contract."""
    guide = (REPO / "docs" / "contracts.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```json\n(.*?)```", guide, re.S) if '"specversion"' in b]
    assert blocks, "docs/contracts.md shows no example message"
    for block in blocks:
        registry.validate_envelope(json.loads(block))
    for name in registry.names():
        assert f"`{name}`" in guide, f"docs/contracts.md does not list {name}"
