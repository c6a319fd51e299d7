"""Códigos Seguros de Verificación (CSV): how they are made, written, read back and checked.

A code looks like ``ABCDE-FGHJK-LMNPQ-RSTUV-WXYZ2``: 25 symbols of the alphabet
``23456789ABCDEFGHJKLMNPQRSTUVWXYZ`` (no 0, 1, I or O, which are misread in print)
in five groups of five.

Entropy. The first 24 symbols are drawn from the operating system's CSPRNG
(:mod:`secrets`), 5 bits each: 120 random bits, above the 100 the platform asks
for. The code is the only credential to a public document, so what matters is
guessing: with a billion live codes and a billion guesses an attacker succeeds
with probability about 2^30·2^30/2^120 ≈ 10^-18; two codes colliding by chance
among a billion is as unlikely (≈ n²/2^121), and the database refuses it anyway.

Check character. The 25th symbol is the ISO/IEC 7064 check character of the first
24, computed with the standard's hybrid system MOD 33,32 over this 32-symbol
alphabet (python-stdnum's ``mod_37_36`` with a custom alphabet implements the
hybrid system for any radix). It catches every single wrong symbol before any
lookup, and about 99.8 % of swaps of two neighbouring symbols; the rest find no
code and answer "unknown". (Damm's algorithm over GF(32) would catch every such
swap too, but the platform's rule is ISO 7064.)
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable

from stdnum.iso7064 import mod_37_36

__all__ = [
    "ALFABETO",
    "LONGITUD",
    "PATRON",
    "SIMBOLOS_ALEATORIOS",
    "TIPOS_DOCUMENTALES",
    "CodigoMalFormado",
    "agrupar",
    "caracter_control",
    "es_valido",
    "generar_codigo",
    "nombre_tipo_documental",
    "normalizar",
    "url_verificacion",
]

ALFABETO = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
SIMBOLOS_ALEATORIOS = 24
LONGITUD = SIMBOLOS_ALEATORIOS + 1
_GRUPO = 5
# The canonical written form (what is printed, stored and put in URLs).
PATRON = re.compile(r"^[2-9A-HJ-NP-Z]{5}(-[2-9A-HJ-NP-Z]{5}){4}$")

_VALOR = {simbolo: indice for indice, simbolo in enumerate(ALFABETO)}
_EXCLUIDOS = frozenset("01IO")
# Separators people type or word processors put in: spaces of any kind and dashes.
_SEPARADORES = frozenset("-‐‑‒–—―−_")
# Far longer than any way of writing a code: refused before any work is done on it.
_MAX_ENTRADA = 100


class CodigoMalFormado(ValueError):
    """What a person typed is not a valid code; ``motivo`` says why, in Spanish."""

    def __init__(self, motivo: str) -> None:
        super().__init__(motivo)
        self.motivo = motivo


def caracter_control(cuerpo: str) -> str:
    """The check character of the 24 random symbols (ungrouped, canonical alphabet)."""
    if len(cuerpo) != SIMBOLOS_ALEATORIOS or any(c not in _VALOR for c in cuerpo):
        raise ValueError(f"se esperan {SIMBOLOS_ALEATORIOS} símbolos del alfabeto")
    return str(mod_37_36.calc_check_digit(cuerpo, alphabet=ALFABETO))


def agrupar(simbolos: str) -> str:
    """Writes 25 symbols in the canonical five groups of five joined by hyphens."""
    return "-".join(simbolos[i : i + _GRUPO] for i in range(0, len(simbolos), _GRUPO))


def generar_codigo(elegir: Callable[[str], str] = secrets.choice) -> str:
    """A fresh code: 24 symbols from the CSPRNG plus the check character, grouped.

    ``elegir`` picks one symbol of the alphabet; only tests pass another one.
    """
    cuerpo = "".join(elegir(ALFABETO) for _ in range(SIMBOLOS_ALEATORIOS))
    return agrupar(cuerpo + caracter_control(cuerpo))


def normalizar(texto: str) -> str:
    """A code as a person typed it, in its canonical form, or :class:`CodigoMalFormado`.

    Accepts any case, spaces, full-width characters and missing, extra or odd
    hyphens. Never guesses: 0, 1, I and O are not mapped to look-alikes (they
    are not in the alphabet, so any guess could name somebody else's document).
    """
    if len(texto) > _MAX_ENTRADA:
        raise CodigoMalFormado("El texto es demasiado largo para ser un código.")
    limpio = "".join(
        c
        for c in unicodedata.normalize("NFKC", texto).upper()
        if not c.isspace() and c not in _SEPARADORES
    )
    if not limpio:
        raise CodigoMalFormado("Escriba el código seguro de verificación.")
    excluidos = sorted({c for c in limpio if c in _EXCLUIDOS})
    if excluidos:
        raise CodigoMalFormado(
            f"El código no puede contener {', '.join(excluidos)}: los códigos no llevan las "
            "cifras 0 y 1 ni las letras I y O. Revise los caracteres que se parecen."
        )
    ajenos = sorted({c for c in limpio if c not in _VALOR})
    if ajenos:
        raise CodigoMalFormado(f"El código solo lleva letras y cifras; sobra: {' '.join(ajenos)}.")
    if len(limpio) != LONGITUD:
        raise CodigoMalFormado(
            f"El código tiene {LONGITUD} letras y cifras y ha escrito {len(limpio)}."
        )
    if mod_37_36.checksum(limpio, alphabet=ALFABETO) != 1:
        raise CodigoMalFormado(
            "El código está mal escrito: algún carácter no coincide con el documento "
            "(una letra o cifra cambiada, o dos cambiadas de orden)."
        )
    return agrupar(limpio)


def es_valido(texto: str) -> bool:
    """Whether ``texto`` is, once normalised, a well-formed code."""
    try:
        normalizar(texto)
    except CodigoMalFormado:
        return False
    return True


def url_verificacion(base_url: str, codigo: str) -> str:
    """The public address printed on a document, where anyone can verify it."""
    return f"{base_url.rstrip('/')}/verificar/{codigo}"


# Tipos documentales of the NTI de Documento Electrónico (Anexo I), for people to read.
TIPOS_DOCUMENTALES = {
    "TD01": "Resolución",
    "TD02": "Acuerdo",
    "TD03": "Contrato",
    "TD04": "Convenio",
    "TD05": "Declaración",
    "TD06": "Comunicación",
    "TD07": "Notificación",
    "TD08": "Publicación",
    "TD09": "Acuse de recibo",
    "TD10": "Acta",
    "TD11": "Certificado",
    "TD12": "Diligencia",
    "TD13": "Informe",
    "TD14": "Solicitud",
    "TD15": "Denuncia",
    "TD16": "Alegación",
    "TD17": "Recursos",
    "TD18": "Comunicación ciudadano",
    "TD19": "Factura",
    "TD20": "Otros incautados",
    "TD99": "Otros",
}


def nombre_tipo_documental(codigo: str) -> str:
    """``TD09`` → ``Acuse de recibo (TD09)``; an unknown code is shown as it is."""
    nombre = TIPOS_DOCUMENTALES.get(codigo)
    return f"{nombre} ({codigo})" if nombre else codigo
