"""Documents are cheap and made off the event loop.

- A seal signs once and asks the TSA once (counted at a real TSA), and still verifies
  with pyhanko (intact, trusted, time-stamped) and with poppler's pdfsig.
- The seal key is prepared once per process and never parsed again per signature.
- In the document workers, a seal uses exactly the serial the service handed it, and
  the workers run at a lower priority than the process that serves requests.
- While the workers render and seal, the event loop keeps its pace (a lag probe).
- An XML (the índice electrónico) is signed XAdES in the workers too, its time-stamp
  asked of the service's TSA; xmlsec1 and ``openssl ts -verify`` accept the result.
- A use case given the workers runs its job in them; given none, in a thread, never on
  the loop (``in_documents``).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import importlib
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, tsp
from lxml import etree
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.signers import pdf_cms

from services.catalog import SERVICES
from services.common.cpu import CpuPool, in_documents
from services.common.tenants import Tenant
from services.registro.asientos.schemas import AsientoRead
from services.registro.justificantes.pdf import render_justificante
from services.repositorio.emision.stamping import stamp_csv
from services.sellado import pades
from services.sellado.pki import DevPki
from services.sellado.trust import KeySource, TrustServices
from services.sellado.tsa import DEVELOPMENT_POLICY_OID, InMemorySerialSource, TimeStampAuthority
from services.sellado.verification import verify_pdf
from services.sellado.xades import DS, XADES, XmlNoValido
from tests.support.servers import require_tool

ALICANTE = Tenant("03014", "Ayuntamiento de Alicante/Alacant", "L01030149")
CSV = "ABCDEFGHJKLMNPQRSTUVWXYZ2"
URL = "https://sede.example.org/verificar/" + CSV


class CountingTsa(TimeStampAuthority):
    """The real TSA, counting the requests it answers."""

    requests = 0

    async def respond(self, request_der: bytes) -> bytes:
        self.requests += 1
        return await super().respond(request_der)


class CountingSerials(InMemorySerialSource):
    """Serials from memory, remembering which were handed out."""

    def __init__(self) -> None:
        super().__init__()
        self.handed: list[int] = []

    async def next(self) -> int:
        value = await super().next()
        self.handed.append(value)
        return value


def asiento(interesados: int = 3, numero: str = "E/2026/000123") -> AsientoRead:
    return AsientoRead.model_validate(
        {
            "id": "6f1c2b0e-8a53-4a0f-9d3c-0d9b1c6e2a77",
            "numero": numero,
            "tipo": "entrada",
            "anio": 2026,
            "secuencia": 123,
            "fecha_registro": datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
            "resumen": "Solicitud de licencia de obra menor en la fachada",
            "unidad_destino": "L01030149",
            "procedimiento": "licencia-obra-menor",
            "interesados": [
                {
                    "tipo_identificador": "NIF",
                    "identificador": "12345678Z",
                    "nombre": f"Lucía {n}",
                    "apellido1": "Núñez",
                    "apellido2": "Peña",
                }
                for n in range(interesados)
            ],
            "registrado_por": "lucia.martinez",
        }
    )


@pytest.fixture(scope="module")
def pki_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "pki"
        DevPki.ensure(directory).seal_for(ALICANTE.ine_code, ALICANTE.nombre)
        yield directory


@pytest.fixture(scope="module")
def stamped() -> bytes:
    return stamp_csv(render_justificante(asiento(), ALICANTE), csv=CSV, url=URL)


async def _assert_good_seal(pdf: bytes, pki_dir: Path) -> None:
    [report] = await verify_pdf(pdf, trust_roots=[DevPki.ensure(pki_dir).root])
    assert report.intact and report.valid and report.trusted, report.errors
    assert report.timestamp_valid, report.errors
    assert report.coverage == "documento-completo"
    assert not report.errors


def _pdfsig(pdf: bytes) -> str:
    tool = require_tool("pdfsig", "poppler-utils")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "justificante.pdf"
        path.write_bytes(pdf)
        done = subprocess.run(
            [tool, "-nocert", str(path)],
            capture_output=True,
            encoding="utf-8",
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _token_serial(pdf: bytes) -> int:
    """The serial of the signature time-stamp token embedded in the seal."""
    [signature] = PdfFileReader(BytesIO(pdf)).embedded_signatures
    signer_info = signature.signed_data["signer_infos"][0]
    [attribute] = [
        a for a in signer_info["unsigned_attrs"] if a["type"].native == "signature_time_stamp_token"
    ]
    token: cms.ContentInfo = attribute["values"][0]
    tst_info: tsp.TSTInfo = token["content"]["encap_content_info"]["content"].parsed
    return int(tst_info["serial_number"].native)


async def test_a_seal_asks_the_tsa_once_and_still_verifies(pki_dir: Path, stamped: bytes) -> None:
    pki = DevPki.ensure(pki_dir)
    tsa = CountingTsa(pki.tsa, policy_oid=DEVELOPMENT_POLICY_OID, serials=InMemorySerialSource())
    trust = TrustServices(pki=pki, tsa=tsa)
    sealed = [(await trust.seal(ALICANTE, stamped)).pdf for _ in range(3)]
    assert tsa.requests == 3
    for pdf in sealed:
        await _assert_good_seal(pdf, pki_dir)
    out = _pdfsig(sealed[0])
    assert "Signature is Valid." in out
    assert "ETSI.CAdES.detached" in out


async def test_the_seal_key_is_prepared_once_and_never_parsed_again(
    pki_dir: Path, stamped: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = DevPki.ensure(pki_dir)
    tsa = TimeStampAuthority(
        pki.tsa, policy_oid=DEVELOPMENT_POLICY_OID, serials=InMemorySerialSource()
    )
    trust = TrustServices(pki=pki, tsa=tsa)
    await trust.seal(ALICANTE, stamped)  # the first seal of the key in this process
    parses: list[bytes] = []
    original = pdf_cms.serialization.load_der_private_key

    def counting(data: bytes, *args: Any, **kwargs: Any) -> Any:
        parses.append(data)
        return original(data, *args, **kwargs)

    monkeypatch.setattr(pdf_cms.serialization, "load_der_private_key", counting)
    before = pades.KEY_STATS.preparations
    for _ in range(3):
        await _assert_good_seal((await trust.seal(ALICANTE, stamped)).pdf, pki_dir)
    assert pades.KEY_STATS.preparations == before
    assert parses == []


async def test_document_workers_seal_with_the_serial_they_are_handed(
    pki_dir: Path, stamped: bytes
) -> None:
    pki = DevPki.ensure(pki_dir)
    serials = CountingSerials()
    tsa = TimeStampAuthority(pki.tsa, policy_oid=DEVELOPMENT_POLICY_OID, serials=serials)
    workers = CpuPool(workers=1, per_tenant=2, nice=10)
    trust = TrustServices(
        pki=pki,
        tsa=tsa,
        documents=workers,
        source=KeySource(DEVELOPMENT_POLICY_OID, pki_dir=pki_dir),
    )
    try:
        sealed = [(await trust.seal(ALICANTE, stamped)).pdf for _ in range(2)]
        assert await workers.run(ALICANTE.ine_code, os.nice, 0) >= 10
    finally:
        workers.close()
    # One serial per seal, and each seal's token carries its own.
    assert [_token_serial(pdf) for pdf in sealed] == serials.handed
    assert len(set(serials.handed)) == 2
    for pdf in sealed:
        await _assert_good_seal(pdf, pki_dir)
    assert "Signature is Valid." in _pdfsig(sealed[1])


async def test_the_loop_keeps_its_pace_while_workers_make_documents(pki_dir: Path) -> None:
    """A heavy justificante (hundreds of interesados) rendered, stamped and sealed in the
    workers takes far longer than the loop ever stalls meanwhile."""
    pki = DevPki.ensure(pki_dir)
    tsa = TimeStampAuthority(
        pki.tsa, policy_oid=DEVELOPMENT_POLICY_OID, serials=InMemorySerialSource()
    )
    workers = CpuPool(workers=1, per_tenant=1, nice=10)
    trust = TrustServices(
        pki=pki, tsa=tsa, documents=workers, source=KeySource(DEVELOPMENT_POLICY_OID, pki_dir)
    )
    worst = 0.0
    done = asyncio.Event()

    async def probe() -> None:
        nonlocal worst
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            worst = max(worst, time.perf_counter() - before - 0.005)

    pesado = asiento(interesados=600, numero="E/2026/000999")
    try:
        await workers.run(ALICANTE.ine_code, os.getpid)  # the worker is up
        watcher = asyncio.create_task(probe())
        started = time.perf_counter()
        pdf = await workers.run(ALICANTE.ine_code, render_justificante, pesado, ALICANTE)
        stamp = functools.partial(stamp_csv, csv=CSV, url=URL)
        stamped = await workers.run(ALICANTE.ine_code, stamp, pdf)
        sealed = (await trust.seal(ALICANTE, stamped)).pdf
        elapsed = time.perf_counter() - started
        done.set()
        await watcher
    finally:
        workers.close()
    await _assert_good_seal(sealed, pki_dir)
    # The bound is generous (a shared machine). The work outlasts it: had it run on the
    # loop, the probe would have seen the whole of it as one stall.
    assert elapsed > 0.25
    assert worst < 0.25, f"the loop stalled {worst:.3f} s while documents were made"


class RecordingPool(CpuPool):
    """The document workers, remembering which functions they were given."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[str] = []

    async def run(self, tenant: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(getattr(fn, "__name__", repr(fn)))
        return await super().run(tenant, fn, *args, **kwargs)


INDICE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<expediente xmlns="urn:prueba"><indice Id="indice">'
    + b"".join(
        b"<documento orden='%d'>ES_L01030149_2026_%030d</documento>" % (n, n) for n in range(50)
    )
    + b"</indice></expediente>"
)


async def test_document_workers_sign_xml_and_the_service_time_stamps_it(
    pki_dir: Path, tmp_path: Path
) -> None:
    pki = DevPki.ensure(pki_dir)
    serials = CountingSerials()
    tsa = CountingTsa(pki.tsa, policy_oid=DEVELOPMENT_POLICY_OID, serials=serials)
    workers = RecordingPool(workers=1, per_tenant=2, nice=10)
    trust = TrustServices(
        pki=pki, tsa=tsa, documents=workers, source=KeySource(DEVELOPMENT_POLICY_OID, pki_dir)
    )
    try:
        firma = await trust.firmar_xml(ALICANTE, INDICE)
        # Bytes that are not XML are refused in the worker, with the sellado's own error.
        with pytest.raises(XmlNoValido):
            await trust.firmar_xml(ALICANTE, b"<no-cierra>")
    finally:
        workers.close()
    # The signature was made by a worker; the one time-stamp by this process's TSA.
    assert workers.calls == ["sign_xml_in_worker", "sign_xml_in_worker"]
    assert tsa.requests == 1 and len(serials.handed) == 1

    root = etree.fromstring(firma.xml)
    (tmp_path / "root.pem").write_bytes(pki.root_pem())
    (tmp_path / "indice.xml").write_bytes(firma.xml)
    xmlsec1 = require_tool("xmlsec1", "xmlsec1")
    checked = subprocess.run(
        [
            xmlsec1,
            "--verify",
            "--trusted-pem",
            str(tmp_path / "root.pem"),
            "--id-attr:Id",
            f"{XADES}:SignedProperties",
            "--id-attr:Id",
            "KeyInfo",
            str(tmp_path / "indice.xml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    value = root.find(f".//{{{DS}}}SignatureValue")
    (tmp_path / "sigvalue.bin").write_bytes(
        etree.tostring(value, method="c14n", exclusive=True, with_comments=False)
    )
    token = root.findtext(f".//{{{XADES}}}SignatureTimeStamp/{{{XADES}}}EncapsulatedTimeStamp")
    (tmp_path / "token.tst").write_bytes(base64.b64decode(token))
    openssl = require_tool("openssl", "openssl")
    stamped = subprocess.run(
        [
            openssl,
            "ts",
            "-verify",
            "-data",
            str(tmp_path / "sigvalue.bin"),
            "-in",
            str(tmp_path / "token.tst"),
            "-token_in",
            "-CAfile",
            str(tmp_path / "root.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert stamped.returncode == 0 and "Verification: OK" in stamped.stdout, stamped.stderr
    # The signed bytes are what the reply says they are, and a changed byte breaks them.
    cambiado = firma.xml.replace(b'orden="7"', b'orden="8"', 1)
    assert cambiado != firma.xml
    (tmp_path / "cambiado.xml").write_bytes(cambiado)
    broken = subprocess.run(
        [
            xmlsec1,
            "--verify",
            "--trusted-pem",
            str(tmp_path / "root.pem"),
            "--id-attr:Id",
            f"{XADES}:SignedProperties",
            "--id-attr:Id",
            "KeyInfo",
            str(tmp_path / "cambiado.xml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert broken.returncode != 0


def _where() -> tuple[int, int]:
    """The process and the thread a job runs in."""
    return os.getpid(), threading.get_ident()


async def test_a_job_runs_in_the_workers_given_and_in_a_thread_without_them() -> None:
    pid, loop_thread = os.getpid(), threading.get_ident()
    assert (await in_documents(None, ALICANTE.ine_code, _where)) != (pid, loop_thread)
    assert (await in_documents(None, ALICANTE.ine_code, _where))[0] == pid
    workers = RecordingPool(workers=1, per_tenant=1)
    try:
        worker_pid, _ = await in_documents(workers, ALICANTE.ine_code, _where)
    finally:
        workers.close()
    assert worker_pid != pid
    assert workers.calls == ["_where"]


def _imported(module: str) -> bool:
    """Whether ``module`` is already imported in the process the job runs in."""
    return module in sys.modules


async def test_started_workers_are_up_before_any_job_with_their_modules_imported() -> None:
    # A module nothing in this suite imports: only the preload can have loaded it.
    preload = "tabnanny"
    before = set(multiprocessing.active_children())
    pool = CpuPool(workers=2, per_tenant=2, preload=(preload,))
    try:
        pool.start()
        deadline = time.monotonic() + 60
        while len(set(multiprocessing.active_children()) - before) < 2:
            assert time.monotonic() < deadline, "the workers did not start"
            await asyncio.sleep(0.05)
        assert await pool.run(ALICANTE.ine_code, _imported, preload)
    finally:
        pool.close()
    assert preload not in sys.modules


def test_every_services_document_modules_import() -> None:
    modules = {m for name in SERVICES for m in SERVICES[name]().document_modules}
    assert "services.registro.justificantes.pdf" in modules
    for module in sorted(modules):
        importlib.import_module(module)
