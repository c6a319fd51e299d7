"""Benchmark: signing the índice of an expediente of 1,000 documents, and exporting it.

Run with ``python -m tests.bench.eni``. In one process, on the same machine and run:

- **Índice**: build the ENI índice of 1,000 documents (``domain.indice_sin_firmar``) and
  sign it XAdES-T as the sellado does (signxml enveloped with the council's RSA-2048
  seal, then a token from our in-process TSA over the signature value); baseline: one
  bare RSA-2048 PKCS#1 v1.5 signature over the SHA-256 of the same bytes.
- **Export**: the streamed ENI ZIP of 1,000 documents of 96 KiB each
  (``exportacion.exportar_zip``: base64 inside each ``documentoEni``, deflate level 1,
  digest checked as it streams, each chunk off the loop); baselines: the standard
  library's ``zipfile`` writing the same 1,000 raw contents, deflated at level 1 and
  stored, into the same kind of sink. The export's peak memory (tracemalloc) is
  measured in a separate pass.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import platform
import random
import statistics
import tempfile
import time
import tracemalloc
import zipfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from services.sellado.pki import DevPki
from services.sellado.tsa import DEVELOPMENT_POLICY_OID, InMemorySerialSource, TimeStampAuthority
from services.sellado.xades import firmar_xml
from services.tramitador.eni import domain
from services.tramitador.eni.exportacion import exportar_zip

CHUNK = 64 * 1024


def _machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def _documentos(n: int, tamano: int) -> tuple[list[dict[str, Any]], dict[int, bytes]]:
    contenidos = {i: random.Random(i).randbytes(tamano) for i in range(1, n + 1)}
    filas = [
        {
            "orden": i,
            "identificador": f"ES_L01000000_2026_{i:030d}",
            "funcion_resumen": "SHA256",
            "huella": hashlib.sha256(data).hexdigest(),
            "tamano": tamano,
            "incorporado_at": datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
            "metadatos": {
                "organo": "L01000000",
                "fecha_captura": "2026-03-02T09:00:00+00:00",
                "origen": "administracion",
                "estado_elaboracion": "EE01",
                "tipo_documental": "TD11",
                "formato": "PDF",
            },
        }
        for i, data in contenidos.items()
    ]
    return filas, contenidos


def _indice(filas: list[dict[str, Any]]) -> bytes:
    meta = domain.MetadatosExpediente(
        identificador="ES_L01000000_2026_EXP_000001",
        organos=("L01000000",),
        fecha_apertura=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        clasificacion="123456",
        estado="E01",
        interesados=("12345678Z",),
    )
    docs = [
        domain.DocumentoIndizado(
            orden=f["orden"],
            identificador=f["identificador"],
            huella=domain.huella_eni("SHA256", b"x"),
            funcion="SHA256",
            fecha_incorporacion=f["incorporado_at"],
        )
        for f in filas
    ]
    return domain.indice_sin_firmar(meta, docs, fecha=datetime.now(UTC))


async def _timed(fn: Callable[[], Any], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        result = fn()
        if asyncio.iscoroutine(result):
            await result
        out.append(time.perf_counter() - start)
    return out


class _Sink(io.RawIOBase):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.n += len(data)
        return len(data)


def _stdlib_zip(contenidos: dict[int, bytes], compression: int) -> int:
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=compression, compresslevel=1) as archive:
        for i, data in contenidos.items():
            with archive.open(f"documentos/{i:04d}.pdf", "w") as entry:
                for j in range(0, len(data), CHUNK):
                    entry.write(data[j : j + CHUNK])
    return sink.n


async def _export(filas: list[dict[str, Any]], contenidos: dict[int, bytes], xml: bytes) -> int:
    async def fuente(fila: dict[str, Any]) -> AsyncIterator[bytes]:
        data = contenidos[fila["orden"]]
        for j in range(0, len(data), CHUNK):
            yield data[j : j + CHUNK]

    n = 0
    async for part in exportar_zip(xml, filas, fuente):
        n += len(part)
    return n


def _row(what: str, times: list[float], base: float, extra: str = "") -> str:
    med = statistics.median(times)
    return f"| {what} | {med * 1000:,.1f} | {med / base:,.1f} | {extra} |"


async def main(rounds: int, documentos: int, tamano: int) -> None:
    print(f"Machine: {_machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        pki = DevPki.ensure(Path(tmp))
        seal = pki.seal_for("03014", "Ayuntamiento de Alicante")
        tsa = TimeStampAuthority(
            pki.tsa, policy_oid=DEVELOPMENT_POLICY_OID, serials=InMemorySerialSource(1)
        )
        filas, contenidos = _documentos(documentos, tamano)
        xml = _indice(filas)
        key = seal.private_key
        assert isinstance(key, rsa.RSAPrivateKey)

        def bare() -> bytes:
            return key.sign(hashlib.sha256(xml).digest(), padding.PKCS1v15(), hashes.SHA256())

        async def firmar() -> None:
            await firmar_xml(xml, keypair=seal, tsa=tsa)

        base_sign = await _timed(bare, rounds * 5)
        build = await _timed(lambda: _indice(filas), rounds)
        signing = await _timed(firmar, rounds)
        b = statistics.median(base_sign)
        print(f"\nÍndice of {documentos} documents ({len(xml):,} bytes), median of {rounds} rounds")
        print("| what | ms | ÷ bare RSA sign | |")
        print("|---|---:|---:|---|")
        print(_row("bare RSA-2048 sign of the SHA-256 (baseline)", base_sign, b))
        print(_row("build the índice (lxml)", build, b))
        print(_row("sign XAdES-T (signxml + our TSA)", signing, b))

        total = sum(len(c) for c in contenidos.values())
        deflated = await _timed(lambda: _stdlib_zip(contenidos, zipfile.ZIP_DEFLATED), rounds)
        stored = await _timed(lambda: _stdlib_zip(contenidos, zipfile.ZIP_STORED), rounds)
        ours_n = 0

        async def export() -> None:
            nonlocal ours_n
            ours_n = await _export(filas, contenidos, xml)

        ours = await _timed(export, rounds)
        tracemalloc.start()
        await _export(filas, contenidos, xml)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        base = statistics.median(deflated)
        mib = total / 2**20
        print(f"\nExport of {documentos} documents of {tamano // 1024} KiB ({mib:.0f} MiB)")
        print("| what | ms | ÷ stdlib deflate | MiB/s |")
        print("|---|---:|---:|---:|")
        for what, times in (
            ("stdlib zipfile, deflate 1 (baseline)", deflated),
            ("stdlib zipfile, stored", stored),
            ("ENI export (documentoEni, base64, deflate 1, digests)", ours),
        ):
            med = statistics.median(times)
            print(f"| {what} | {med * 1000:,.0f} | {med / base:.2f} | {mib / med:,.0f} |")
        print(f"ENI ZIP {ours_n / 2**20:.1f} MiB; export peak memory {peak / 2**10:,.0f} KiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--documentos", type=int, default=1000)
    parser.add_argument("--tamano", type=int, default=96 * 1024)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.documentos, args.tamano))
