"""The time-stamp of asientos without servers: the canonical bytes the registro keeps, the
request ids, the sellado's answer to the command (token or refusal, valid by contract) and
the registro's reading of a token, against a real TSA with the development PKI."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
from asn1crypto import tsp

from services.common.bus.envelope import EventName, ReceivedEvent
from services.common.contracts import ContractRegistry
from services.common.tenants import Tenant
from services.common.uow import UnitOfWork
from services.registro.asientos.schemas import AsientoRead
from services.registro.sellos_tiempo.domain import (
    TokenIlegible,
    datos_canonicos,
    leer_token,
    solicitud_id,
)
from services.sellado.pki import DevPki
from services.sellado.sello_tiempo import (
    SELLO_EMITIDO,
    SELLO_RECHAZADO,
    SOLICITAR_SELLO,
    CodigoRechazoSello,
    RechazoSello,
    responder_solicitar_sello,
    sellar_huella,
)
from services.sellado.tsa import DEVELOPMENT_POLICY_OID, InMemorySerialSource, TimeStampAuthority

FROZEN = dt.datetime(2026, 11, 23, 10, 15, 30, 250000, tzinfo=dt.UTC)
ENTIDAD = Tenant("03014", "Ayuntamiento de Alicante", "L01030149")


def asiento(**overrides: Any) -> AsientoRead:
    data: dict[str, Any] = {
        "id": "6f1c2b0e-8a53-4a0f-9d3c-0d9b1c6e2a77",
        "numero": "E/2026/000001",
        "tipo": "entrada",
        "anio": 2026,
        "secuencia": 1,
        "fecha_registro": dt.datetime(2026, 11, 23, 10, 15, 29, 998000, tzinfo=dt.UTC),
        "resumen": "Sol·licitud de llicència d'obra menor a la façana",
        "unidad_destino": "L01030149",
        "procedimiento": "generico",
        "interesados": [
            {"tipo_identificador": "NIF", "identificador": "12345678Z", "nombre": "Lucía"}
        ],
        "registrado_por": "jordi.puig",
    }
    data.update(overrides)
    return AsientoRead.model_validate(data)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return DevPki.ensure(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tsa(pki: DevPki) -> TimeStampAuthority:
    return TimeStampAuthority(
        pki.tsa,
        policy_oid=DEVELOPMENT_POLICY_OID,
        serials=InMemorySerialSource(77),
        clock=lambda: FROZEN,
    )


@pytest.fixture(scope="module")
def contracts() -> ContractRegistry:
    return ContractRegistry.load()


# --- the registro's bytes ------------------------------------------------------------------


def test_canonical_bytes_are_sorted_compact_utf8_json_of_the_asiento_as_recorded() -> None:
    recorded = asiento()
    datos = datos_canonicos(recorded)
    assert b'":' in datos and b'": ' not in datos and b'", ' not in datos  # no spaces
    assert "façana".encode() in datos  # raw UTF-8, no \\u escapes
    parsed = json.loads(datos)
    assert list(parsed) == sorted(parsed)
    assert list(parsed["interesados"][0]) == sorted(parsed["interesados"][0])
    expected = recorded.model_dump(mode="json")
    del expected["estado"], expected["anulacion"]
    assert parsed == expected
    assert datos == json.dumps(
        expected, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert datos_canonicos(asiento()) == datos  # stable: the same asiento, the same bytes


def test_what_happens_to_an_asiento_later_is_not_part_of_what_was_stamped() -> None:
    annulled = asiento(
        estado="anulado",
        anulacion={
            "motivo": "Duplicado",
            "anulado_por": "ana",
            "anulado_en": dt.datetime(2026, 11, 24, tzinfo=dt.UTC),
        },
    )
    assert datos_canonicos(annulled) == datos_canonicos(asiento())
    assert datos_canonicos(asiento(resumen="Otro resumen")) != datos_canonicos(asiento())


def test_request_ids_are_stable_per_attempt_and_new_for_a_retry() -> None:
    first = solicitud_id("6f1c2b0e-8a53-4a0f-9d3c-0d9b1c6e2a77")
    assert first == solicitud_id("6f1c2b0e-8a53-4a0f-9d3c-0d9b1c6e2a77", 1)
    second = solicitud_id("6f1c2b0e-8a53-4a0f-9d3c-0d9b1c6e2a77", 2)
    assert second != first
    assert solicitud_id("0195a3c4-1f0a-7d2e-8c55-6b3f1e9a7d20") != first
    with pytest.raises(ValueError):
        solicitud_id("6f1c2b0e-8a53-4a0f-9d3c-0d9b1c6e2a77", 0)


# --- the sellado's answer --------------------------------------------------------------------


async def test_a_digest_gets_a_token_the_registro_reads_back(tsa: TimeStampAuthority) -> None:
    datos = datos_canonicos(asiento())
    huella = hashlib.sha256(datos).hexdigest()
    sello = await sellar_huella(tsa, algoritmo="sha256", huella=huella)
    assert (sello.gen_time, sello.serial, sello.politica) == (FROZEN, 77, DEVELOPMENT_POLICY_OID)
    assert leer_token(sello.token, huella=huella) == (FROZEN, "77", DEVELOPMENT_POLICY_OID)
    other = hashlib.sha256(datos + b" ").hexdigest()
    with pytest.raises(TokenIlegible, match="no sella la huella"):
        leer_token(sello.token, huella=other)
    for garbage in (b"", b"\x30\x03\x02\x01\x01", sello.token[:-5]):
        with pytest.raises(TokenIlegible):
            leer_token(garbage, huella=huella)


@pytest.mark.parametrize(
    ("algoritmo", "huella", "codigo"),
    [
        ("sha1", "a" * 40, CodigoRechazoSello.ALGORITMO_NO_ADMITIDO),
        ("sha256", "a" * 63, CodigoRechazoSello.HUELLA_NO_VALIDA),
        ("sha256", "A" * 64, CodigoRechazoSello.HUELLA_NO_VALIDA),
        ("sha256", "z" * 64, CodigoRechazoSello.HUELLA_NO_VALIDA),
    ],
)
async def test_a_bad_request_is_refused_with_its_code(
    tsa: TimeStampAuthority, algoritmo: str, huella: str, codigo: CodigoRechazoSello
) -> None:
    with pytest.raises(RechazoSello) as caught:
        await sellar_huella(tsa, algoritmo=algoritmo, huella=huella)
    assert caught.value.codigo is codigo


class _BrokenSerials:
    async def next(self) -> int:
        raise ConnectionError("sin base de datos")


async def test_a_tsa_failure_is_an_internal_error_with_the_tsa_reason(pki: DevPki) -> None:
    broken = TimeStampAuthority(
        pki.tsa, policy_oid=DEVELOPMENT_POLICY_OID, serials=_BrokenSerials()
    )
    with pytest.raises(RechazoSello) as caught:
        await sellar_huella(broken, algoritmo="sha256", huella="a" * 64)
    assert caught.value.codigo is CodigoRechazoSello.ERROR_INTERNO
    assert "Error interno de la autoridad de sellado de tiempo" in caught.value.motivo


async def test_a_token_over_another_digest_is_never_handed_out(tsa: TimeStampAuthority) -> None:
    class Swapping:
        """A TSA that answers every request with a token over another hash."""

        async def respond(self, request_der: bytes) -> bytes:
            other = (await sellar_huella(tsa, algoritmo="sha256", huella="b" * 64)).token
            return tsp.TimeStampResp(
                {"status": {"status": "granted"}, "time_stamp_token": tsp.ContentInfo.load(other)}
            ).dump()

    with pytest.raises(RechazoSello) as caught:
        await sellar_huella(Swapping(), algoritmo="sha256", huella="a" * 64)
    assert caught.value.codigo is CodigoRechazoSello.ERROR_INTERNO


class _RecordingUow:
    """What responder_solicitar_sello uses of a unit of work: emit and audit, recorded."""

    def __init__(self, contracts: ContractRegistry) -> None:
        self.contracts = contracts
        self.events: list[tuple[str, dict[str, Any], str | None]] = []
        self.audits: list[dict[str, Any]] = []

    def emit(self, name: str, data: dict[str, Any], *, subject: str | None = None) -> None:
        self.contracts.validate(name, data)
        self.events.append((name, data, subject))

    def audit(self, **entry: Any) -> None:
        self.audits.append(entry)


def command(contracts: ContractRegistry, **data: Any) -> ReceivedEvent:
    payload = {
        "solicitud_id": "0195a3c5-2b10-7c31-9d42-5e6f7a8b9c0d",
        "solicitante": "registro",
        "algoritmo": "sha256",
        "huella": hashlib.sha256(b"asiento").hexdigest(),
        "referencia": {
            "tipo": "asiento",
            "id": "0195a3c4-1f0a-7d2e-8c55-6b3f1e9a7d20",
            "numero": "E/2026/000042",
        },
        **data,
    }
    contracts.validate(SOLICITAR_SELLO, payload)
    return ReceivedEvent(
        id="0195a3c5-2b11-7d52-8e63-7f8091a2b3c4",
        name=EventName.parse(SOLICITAR_SELLO),
        tenant=ENTIDAD.ine_code,
        data=payload,
        subject=None,
        traceparent=None,
        envelope={},
    )


async def test_the_command_is_answered_with_a_token_valid_by_contract(
    tsa: TimeStampAuthority, contracts: ContractRegistry
) -> None:
    uow = _RecordingUow(contracts)
    event = command(contracts)
    await responder_solicitar_sello(cast(UnitOfWork, uow), event, tsa=tsa, tenant=ENTIDAD)
    [(name, data, subject)] = uow.events
    assert name == SELLO_EMITIDO
    assert subject == event.data["solicitud_id"]
    assert data["solicitud_id"] == event.data["solicitud_id"]
    assert data["solicitante"] == "registro"
    assert data["huella"] == event.data["huella"]
    assert (data["serial"], data["politica"]) == ("77", DEVELOPMENT_POLICY_OID)
    assert dt.datetime.fromisoformat(data["gen_time"]) == FROZEN
    token = base64.b64decode(data["token"])
    assert leer_token(token, huella=event.data["huella"])[0] == FROZEN
    [entry] = uow.audits
    assert (entry["action"], entry["entity"], entry["entity_id"]) == (
        "sellar-tiempo",
        "sello_tiempo",
        "77",
    )
    assert entry["new"]["referencia"]["numero"] == "E/2026/000042"


@pytest.mark.parametrize("tenant", [None, Tenant("03014", "Alicante", "L01030149", False)])
async def test_an_inactive_or_unknown_entity_gets_a_refusal(
    tsa: TimeStampAuthority, contracts: ContractRegistry, tenant: Tenant | None
) -> None:
    uow = _RecordingUow(contracts)
    await responder_solicitar_sello(
        cast(UnitOfWork, uow), command(contracts), tsa=tsa, tenant=tenant
    )
    [(name, data, _)] = uow.events
    assert name == SELLO_RECHAZADO
    assert data["codigo"] == "entidad-no-activa"
    assert "03014" in data["motivo"]
    assert uow.audits == []


async def test_a_command_without_solicitante_gets_a_reply_without_one(
    tsa: TimeStampAuthority, contracts: ContractRegistry
) -> None:
    uow = _RecordingUow(contracts)
    event = command(contracts)
    del event.data["solicitante"]
    await responder_solicitar_sello(cast(UnitOfWork, uow), event, tsa=tsa, tenant=ENTIDAD)
    [(name, data, _)] = uow.events
    assert name == SELLO_EMITIDO
    assert "solicitante" not in data


def test_examples_reply_to_the_command_examples() -> None:
    """The emitido examples answer the solicitar examples: same request, same huella."""
    root = Path(__file__).resolve().parents[2] / "bus-contracts" / "examples" / "sellado"
    for kind in ("minimal", "full"):
        sent = json.loads((root / f"sellotiempo-solicitar/v1/{kind}.json").read_text())
        got = json.loads((root / f"sellotiempo-emitido/v1/{kind}.json").read_text())
        refused = json.loads((root / f"sellotiempo-rechazado/v1/{kind}.json").read_text())
        assert got["solicitud_id"] == sent["solicitud_id"] == refused["solicitud_id"]
        assert got["huella"] == sent["huella"]
        gen_time, serial, politica = leer_token(
            base64.b64decode(got["token"]), huella=got["huella"]
        )
        assert (gen_time, serial, politica) == (
            dt.datetime.fromisoformat(got["gen_time"]),
            got["serial"],
            got["politica"],
        )


_READ_IN_A_REGISTRO_PROCESS = """
import sys
from services.catalog import SERVICES
SERVICES["registro"]()  # what `consistorio serve registro` loads, and nothing of the sellado
assert not any(name.startswith("services.sellado") for name in sys.modules)
from services.registro.sellos_tiempo.domain import leer_token
gen_time, serial, politica = leer_token(sys.stdin.buffer.read(), huella=sys.argv[1])
print(serial, politica)
"""


async def test_a_process_that_loads_only_the_registro_reads_a_token(
    tsa: TimeStampAuthority,
) -> None:
    # `consistorio serve registro` never imports the sellado; asn1crypto recognises the
    # TSTInfo content type only once asn1crypto.tsp is loaded, so the registro must load it.
    huella = hashlib.sha256(b"asiento en un proceso propio").hexdigest()
    sello = await sellar_huella(tsa, algoritmo="sha256", huella=huella)
    done = subprocess.run(
        [sys.executable, "-c", _READ_IN_A_REGISTRO_PROCESS, huella],
        input=sello.token,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == ["77", DEVELOPMENT_POLICY_OID]


async def test_the_token_kept_is_the_tsa_s_bytes_exactly(tsa: TimeStampAuthority) -> None:
    """The token is cut from the TSA's answer, not re-encoded by the ASN.1 library."""
    answers: list[bytes] = []

    class Recording:
        async def respond(self, request_der: bytes) -> bytes:
            answers.append(await tsa.respond(request_der))
            return answers[-1]

    huella = hashlib.sha256(b"asiento").hexdigest()
    sello = await sellar_huella(Recording(), algoritmo="sha256", huella=huella)
    [answer] = answers
    # The answer is SEQUENCE { status, token }: after its header, the status, then the token.
    status = tsp.TimeStampResp.load(answer)["status"].dump()
    assert answer.endswith(status + sello.token)
    assert len(answer) - len(status) - len(sello.token) <= 4
