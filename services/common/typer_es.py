"""Typer and Click's own words in Spanish, so that a command's help speaks one language.

Our help texts are Spanish; Typer prints its own words in English around them:
"Usage:", the panel titles, "Show this message and exit.", "[default: ...]", and
every usage error ("Missing argument", "No such command"...). Translating them with
gettext is not possible here: the Click that Typer vendors (since 0.2x) has no
gettext calls left, and Typer's own ones take the language from the environment,
whereas our help is Spanish whatever the locale.

So every command line is built with :class:`SpanishTyper`. It plugs in through the
extension points Typer and Click keep for this:

* the group and command classes (Typer's ``cls``) override Click's hooks:
  ``get_help_option`` (the help option's text), ``format_usage`` (the "Uso:" prefix),
  and ``make_context``/``resolve_command``/``invoke``, where usage errors are raised,
  to raise them again in Spanish;
* ``options_metavar`` and ``subcommand_metavar`` name the usage line's pieces;
* the titles and tags of Typer's rich help are module settings of ``typer.rich_utils``
  (rich-click's configuration style), set once when this module is imported.

With ``TYPER_USE_RICH=0`` Typer drops its rich help for Click's plain one, whose
section titles and tags stay English: leave it unset.

The error classes come from Typer's copy of Click (``typer._click``), so pyproject
holds Typer to one minor release: a new one is taken with this test passing.

A test runs ``consistorio --help``, a subcommand's help and some wrong invocations in
a subprocess and fails on any English word of Typer's or Click's.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import typer
import typer.rich_utils
from pydantic import ValidationError
from typer._click import ClickException, Command, Context, HelpFormatter
from typer._click.exceptions import BadParameter, UsageError
from typer.core import TyperCommand, TyperGroup

__all__ = ["SpanishCommand", "SpanishGroup", "SpanishTyper", "en_espanol"]

HELP_OPTION_TEXT = "Muestra esta ayuda y sale."
OPTIONS_METAVAR = "[OPCIONES]"
SUBCOMMAND_METAVAR = "ORDEN [ARGUMENTOS]..."
USAGE_PREFIX = "Uso: "

_RICH_SETTINGS = {
    "DEPRECATED_STRING": "(obsoleta) ",
    "DEFAULT_STRING": "[por defecto: {}]",
    "ENVVAR_STRING": "[variable de entorno: {}]",
    "REQUIRED_LONG_STRING": "[obligatorio]",
    "ARGUMENTS_PANEL_TITLE": "Argumentos",
    "OPTIONS_PANEL_TITLE": "Opciones",
    "COMMANDS_PANEL_TITLE": "Órdenes",
    "ERRORS_PANEL_TITLE": "Error",
    "ABORTED_TEXT": "Cancelado.",
    "RICH_HELP": "Pruebe [blue]'{command_path} {help_option}'[/] para ver la ayuda.",
}
for _name, _text in _RICH_SETTINGS.items():
    # A renamed setting must fail here, not leave English behind unnoticed.
    if not hasattr(typer.rich_utils, _name):
        raise RuntimeError(
            f"typer.rich_utils.{_name} no existe: revise services/common/typer_es.py"
        )
    setattr(typer.rich_utils, _name, _text)

# Click's and Typer's usage errors, as format_message() writes them, and their Spanish.
_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]
_ERRORS: list[_Rule] = [
    (
        re.compile(r"Invalid value for (?P<hint>.+?): (?P<detail>.*)", re.S),
        lambda m: f"Valor no válido para {m['hint']}: {_detail(m['detail'])}",
    ),
    (
        re.compile(r"Invalid value: (?P<detail>.*)", re.S),
        lambda m: f"Valor no válido: {_detail(m['detail'])}",
    ),
    (
        re.compile(r"Missing argument (?P<hint>.+?)\.(?: (?P<detail>.*))?", re.S),
        lambda m: f"Falta el argumento {m['hint']}." + _extra(m["detail"]),
    ),
    (
        re.compile(r"Missing option (?P<hint>.+?)\.(?: (?P<detail>.*))?", re.S),
        lambda m: f"Falta la opción {m['hint']}." + _extra(m["detail"]),
    ),
    (
        re.compile(r"Missing parameter:? (?P<hint>.+?)\.?"),
        lambda m: f"Falta el parámetro {m['hint']}.",
    ),
    (
        re.compile(r"No such option: (?P<opt>\S+)(?: \(Possible options: (?P<alts>.+)\))?"),
        lambda m: (
            f"No existe la opción {m['opt']}."
            + (f" Opciones parecidas: {m['alts']}." if m["alts"] else "")
        ),
    ),
    (
        re.compile(r"No such command (?P<name>.+?)\.(?: Did you mean (?P<alts>.+)\?)?"),
        lambda m: (
            f"No existe la orden {m['name']}."
            + (f" ¿Quería decir {m['alts']}?" if m["alts"] else "")
        ),
    ),
    (re.compile(r"Missing command\."), lambda m: "Falta la orden."),
    (
        re.compile(r"Got unexpected extra argument(?:s|\(s\))? \((?P<args>.*)\)", re.S),
        lambda m: f"Sobran argumentos: {m['args']}",
    ),
    (
        re.compile(r"Option (?P<opt>.+) requires an argument\."),
        lambda m: f"La opción {m['opt']} necesita un valor.",
    ),
    (
        re.compile(r"Option (?P<opt>.+) requires (?P<n>\d+) arguments\."),
        lambda m: f"La opción {m['opt']} necesita {m['n']} valores.",
    ),
    (
        re.compile(r"Option (?P<opt>.+) does not take a value\."),
        lambda m: f"La opción {m['opt']} no lleva valor.",
    ),
    (
        re.compile(r"Argument (?P<arg>.+) takes (?P<n>\d+) values\."),
        lambda m: f"El argumento {m['arg']} lleva {m['n']} valores.",
    ),
]

_PATH_PROBLEMS = {
    "does not exist": "no existe",
    "is a file": "es un fichero",
    "is a directory": "es un directorio",
    "is not readable": "no se puede leer",
    "is not writable": "no se puede escribir",
}

# The detail of an invalid value: Typer's coercion (pydantic) and Click's own checks.
_DETAILS: list[_Rule] = [
    (
        re.compile(r"Value error, (?P<value>.+) is not one of (?P<choices>.+?)\.?", re.S),
        lambda m: f"{m['value']} no es ninguno de {_or(m['choices'])}.",
    ),
    (
        re.compile(r"Value (?P<value>.+) is not a valid (?P<kind>.+)\.", re.S),
        lambda m: f"{m['value']} no es un valor válido ({m['kind']}).",
    ),
    (
        re.compile(
            r"(?:file|directory|path) (?P<path>.+) (?P<what>does not exist|is a file|"
            r"is a directory|is not readable|is not writable)\.",
            re.S | re.I,
        ),
        lambda m: f"{m['path']} {_PATH_PROBLEMS[m['what'].lower()]}.",
    ),
]


# pydantic's error types (what Typer's coercion raises) and how to say each.
_PYDANTIC: dict[str, str] = {
    "int_parsing": "debe ser un número entero",
    "int_type": "debe ser un número entero",
    "int_from_float": "debe ser un número entero",
    "float_parsing": "debe ser un número",
    "float_type": "debe ser un número",
    "bool_parsing": "debe ser sí o no (true/false)",
    "bool_type": "debe ser sí o no (true/false)",
    "path_type": "debe ser una ruta",
    "string_type": "debe ser un texto",
}


def _or(choices: str) -> str:
    return re.sub(r",? or ", " o ", choices)


def _extra(detail: str | None) -> str:
    return f" {_detail(detail)}" if detail else ""


def _detail(detail: str) -> str:
    for pattern, spanish in _DETAILS:
        match = pattern.fullmatch(detail)
        if match:
            return spanish(match)
    return detail


def _pydantic_detail(cause: ValidationError) -> str | None:
    """Spanish for the first error of Typer's coercion, by pydantic's error type."""
    errors = cause.errors()
    if not errors:
        return None
    error = errors[0]
    kind = str(error.get("type", ""))
    if kind in ("literal_error", "enum"):
        expected = str((error.get("ctx") or {}).get("expected", ""))
        return f"debe ser {_or(expected)}"
    if kind in _PYDANTIC:
        return _PYDANTIC[kind]
    if kind == "value_error":
        return None  # a validator's own text: the table above knows Typer's
    return "valor no admitido"


def en_espanol(error: ClickException) -> str:
    """The message of ``error`` in Spanish (ours already are; Click's are translated)."""
    if isinstance(error, BadParameter) and isinstance(error.__cause__, ValidationError):
        detail = _pydantic_detail(error.__cause__)
        if detail is not None:
            error = BadParameter(
                detail, ctx=error.ctx, param=error.param, param_hint=error.param_hint
            )
    text = error.format_message()
    for pattern, spanish in _ERRORS:
        match = pattern.fullmatch(text)
        if match:
            return spanish(match)
    return _detail(text)


class _Traducido(UsageError):
    """A usage error already put in Spanish (translating twice would do nothing)."""

    def __init__(self, message: str, original: ClickException) -> None:
        super().__init__(message, ctx=getattr(original, "ctx", None))
        self.exit_code = original.exit_code


@contextlib.contextmanager
def _usage_errors_in_spanish() -> Iterator[None]:
    try:
        yield
    except _Traducido:
        raise
    except ClickException as error:
        # "No arguments: show the help" travels as an error Typer recognises by name.
        if type(error).__name__ == "NoArgsIsHelpError":
            raise
        raise _Traducido(en_espanol(error), error) from error


def _spanish_help_option(option: Any) -> Any:
    if option is not None:
        option.help = HELP_OPTION_TEXT
    return option


class _Spanish(Command):
    """What a Spanish command and a Spanish group share: the usage line, the help option
    and the usage errors of parsing and running, in Spanish. Mixed in before Typer's class."""

    def get_help_option(self, ctx: Context) -> Any:
        """Click's help option, with its text in Spanish."""
        return _spanish_help_option(super().get_help_option(ctx))

    def format_usage(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The usage line, prefixed "Uso:"."""
        pieces = self.collect_usage_pieces(ctx)
        formatter.write_usage(ctx.command_path, " ".join(pieces), prefix=USAGE_PREFIX)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Context | None = None,
        **extra: Any,
    ) -> Context:
        """Parses the arguments (a group's own); their errors come out in Spanish."""
        with _usage_errors_in_spanish():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Context) -> Any:
        """Runs the command (a group: and its subcommand); usage errors come out in Spanish."""
        with _usage_errors_in_spanish():
            return super().invoke(ctx)


class SpanishCommand(_Spanish, TyperCommand):
    """A Typer command whose usage line, help option and usage errors are Spanish."""


class SpanishGroup(_Spanish, TyperGroup):
    """A Typer group whose usage line, help option and usage errors are Spanish."""

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        """Finds the subcommand; an unknown one is reported in Spanish."""
        with _usage_errors_in_spanish():
            return super().resolve_command(ctx, args)


class SpanishTyper(typer.Typer):
    """A :class:`typer.Typer` whose groups and commands speak Spanish (see the module)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", SpanishGroup)
        kwargs.setdefault("options_metavar", OPTIONS_METAVAR)
        kwargs.setdefault("subcommand_metavar", SUBCOMMAND_METAVAR)
        super().__init__(**kwargs)

    # Typer's own keywords, passed through unchanged; only two defaults differ.
    def command(  # type: ignore[override]
        self, name: str | None = None, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Typer's ``command``, building a :class:`SpanishCommand` unless told otherwise."""
        kwargs.setdefault("cls", SpanishCommand)
        kwargs.setdefault("options_metavar", OPTIONS_METAVAR)
        return super().command(name, **kwargs)
