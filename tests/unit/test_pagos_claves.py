"""Envelope encryption of the Redsys merchant keys: what is stored is not the key, a KEK
rotates, and a wrong or missing KEK fails with a message that names it but no key."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr

from services.pagos import claves
from services.pagos.settings import PagosSettings

CLAVE = "sq7HjrUOBfKmC576ILgskD5srU870gJ7"  # Redsys' public test key


def _kek() -> bytes:
    return os.urandom(32)


def _texto(**keks: bytes) -> str:
    return ",".join(f"{kid}:{base64.b64encode(k).decode()}" for kid, k in keks.items())


def test_what_is_stored_is_not_the_key_and_decrypts_to_it() -> None:
    llavero = claves.Llavero({"k1": _kek()}, "k1")
    texto = llavero.cifrar(CLAVE, tenant_id="03014")
    assert texto.startswith("v1.k1.")
    assert claves.cifrada(texto)
    assert CLAVE not in texto
    assert base64.b64decode(CLAVE) not in base64.urlsafe_b64decode(texto.split(".")[3] + "==")
    assert llavero.descifrar(texto, tenant_id="03014") == CLAVE
    # A fresh DEK and nonces each time: two encryptions of the same key differ.
    assert llavero.cifrar(CLAVE, tenant_id="03014") != texto


def test_a_ciphertext_moved_to_another_tenant_does_not_decrypt() -> None:
    llavero = claves.Llavero({"k1": _kek()}, "k1")
    texto = llavero.cifrar(CLAVE, tenant_id="03014")
    with pytest.raises(claves.ClaveNoDescifrable):
        llavero.descifrar(texto, tenant_id="46250")


def test_a_wrong_kek_fails_clearly_without_showing_any_key() -> None:
    buena, mala = _kek(), _kek()
    texto = claves.Llavero({"k1": buena}, "k1").cifrar(CLAVE, tenant_id="03014")

    with pytest.raises(claves.ClaveNoDescifrable, match="'k1'.*no descifra") as otra:
        claves.Llavero({"k1": mala}, "k1").descifrar(texto, tenant_id="03014")
    with pytest.raises(claves.ClaveNoDescifrable, match="'k1', que no está configurada") as falta:
        claves.Llavero({"k2": buena}, "k2").descifrar(texto, tenant_id="03014")
    for error in (otra.value, falta.value):
        mensaje = str(error)
        assert CLAVE not in mensaje
        assert base64.b64encode(buena).decode() not in mensaje
        assert base64.b64encode(mala).decode() not in mensaje


def test_tampering_with_the_stored_text_is_detected() -> None:
    llavero = claves.Llavero({"k1": _kek()}, "k1")
    v, kid, envuelta, dato = llavero.cifrar(CLAVE, tenant_id="03014").split(".")
    cambiado = dato[:-2] + ("A" if dato[-2] != "A" else "B") + dato[-1]
    with pytest.raises(claves.ClaveNoDescifrable):
        llavero.descifrar(".".join([v, kid, envuelta, cambiado]), tenant_id="03014")
    with pytest.raises(claves.ClaveNoDescifrable, match="formato"):
        llavero.descifrar("v2.k1.x.y", tenant_id="03014")


def test_rotation_rewraps_the_dek_under_the_new_kek() -> None:
    vieja, nueva = _kek(), _kek()
    texto = claves.Llavero({"k1": vieja}, "k1").cifrar(CLAVE, tenant_id="03014")

    # The new KEK first, the old one kept: old ciphertexts still decrypt meanwhile.
    durante = claves.llavero_de(
        PagosSettings(keks=SecretStr(_texto(k2=nueva, k1=vieja))), "production"
    )
    assert durante.activa == "k2"
    assert durante.descifrar(texto, tenant_id="03014") == CLAVE
    rotada = durante.reenvolver(texto, tenant_id="03014")
    assert durante.kid_de(rotada) == "k2"
    assert rotada.split(".")[3] == texto.split(".")[3]  # the key itself is not re-encrypted
    assert durante.reenvolver(rotada, tenant_id="03014") == rotada

    # After the rotation the old KEK can go.
    despues = claves.Llavero({"k2": nueva}, "k2")
    assert despues.descifrar(rotada, tenant_id="03014") == CLAVE
    with pytest.raises(claves.ClaveNoDescifrable, match="'k1'"):
        despues.descifrar(texto, tenant_id="03014")


def test_production_refuses_to_run_without_a_kek_or_with_the_development_one() -> None:
    with pytest.raises(claves.ClaveMaestraAusente, match="PAGOS_KEKS"):
        claves.llavero_de(PagosSettings(), "production")
    desarrollo = claves.llavero_de(PagosSettings(), "development")
    assert desarrollo.de_desarrollo
    with pytest.raises(claves.ClaveMaestraAusente, match="desarrollo"):
        claves.llavero_de(PagosSettings(keks=SecretStr(_texto(desarrollo=_kek()))), "production")


def test_the_pagos_app_does_not_start_in_production_without_a_kek(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.pagos.app import create_app

    monkeypatch.delenv("PAGOS_KEKS", raising=False)
    monkeypatch.delenv("PAGOS_KEKS_FILE", raising=False)
    runtime: Any = SimpleNamespace(settings=SimpleNamespace(environment="production"), tenants=None)
    with pytest.raises(claves.ClaveMaestraAusente, match="producción"):
        create_app(runtime)


@pytest.mark.parametrize(
    "texto",
    ["k1", "k1:no-es-base64!", f"k1:{base64.b64encode(b'corta').decode()}", "a.b:AAAA", " , "],
)
def test_a_malformed_keyring_is_refused(texto: str) -> None:
    with pytest.raises(claves.ClaveMaestraAusente):
        claves.llavero_de(PagosSettings(keks=SecretStr(texto)), "production")


def test_the_keyring_may_come_from_a_secret_file_and_is_never_shown(tmp_path: Path) -> None:
    kek = _kek()
    fichero = tmp_path / "keks"
    fichero.write_text(_texto(k9=kek) + "\n")
    ajustes = PagosSettings(keks_file=fichero)
    assert claves.llavero_de(ajustes, "production").activa == "k9"
    secreto = base64.b64encode(kek).decode()
    assert secreto not in repr(ajustes)
    assert secreto not in repr(claves.llavero_de(ajustes, "production"))
    assert secreto not in repr(PagosSettings(keks=SecretStr(_texto(k9=kek))))
