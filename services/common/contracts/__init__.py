"""The bus contracts at run time: load the JSON Schemas, validate events against them.

The schemas live in the language-neutral ``bus-contracts/`` directory at the root of
the repository; an installed wheel carries a copy of it in ``_bundled``. Services
validate what they publish (and may validate what they consume) through
:class:`ContractRegistry`, so a payload that breaks its contract is caught at the
producer, with every failing field named, instead of in somebody else's backoffice.

Naming, the one rule everything else follows::

    contract name   <service>.<aggregate>.<event>.v<major>    registro.asiento.registrado.v1
    schema file     <service>/<aggregate>-<event>/v<major>.json
    schema $id      https://consistorio.es/bus-contracts/ + schema file
    event type      es.consistorio. + contract name

The aggregate is one word; the event may hold hyphens, so the first hyphen of the
directory name always separates the two.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = [
    "BASE_URI",
    "ENVELOPE_FILE",
    "EVENT_TYPE_PREFIX",
    "LOCK_FILE",
    "ContractError",
    "ContractRegistry",
    "ContractViolation",
    "UnknownContract",
    "default_root",
    "event_type_for",
    "format_checker",
    "name_for_event_type",
    "name_to_path",
    "path_to_name",
    "schema_id_for",
]

BASE_URI = "https://consistorio.es/bus-contracts/"
ENVELOPE_FILE = "envelope.json"
LOCK_FILE = "published.lock.json"
EXAMPLES_DIR = "examples"
EVENT_TYPE_PREFIX = "es.consistorio."

_SERVICE = r"(?P<service>[a-z]+)"
_AGGREGATE = r"(?P<aggregate>[a-z]+)"
_EVENT = r"(?P<event>[a-z]+(?:-[a-z]+)*)"
_MAJOR = r"v(?P<major>[1-9][0-9]*)"
_NAME = re.compile(rf"^{_SERVICE}\.{_AGGREGATE}\.{_EVENT}\.{_MAJOR}$")
_PATH = re.compile(rf"^{_SERVICE}/{_AGGREGATE}-{_EVENT}/{_MAJOR}\.json$")


class ContractError(Exception):
    """The contracts directory is missing or holds something that is not a usable schema."""


class UnknownContract(LookupError):  # noqa: N818 - the name the bus kernel API promises
    """A contract name (or event type) that no schema file defines."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown bus contract: {name!r}")


class ContractViolation(ValueError):  # noqa: N818 - the name the bus kernel API promises
    """A payload or envelope does not satisfy its schema; ``errors`` name each field."""

    def __init__(self, name: str, errors: list[str]) -> None:
        self.name = name
        self.errors = list(errors)
        super().__init__(f"{name} violated: " + "; ".join(self.errors))


def name_to_path(name: str) -> str:
    """Schema file (relative, POSIX) of a contract name; the inverse of :func:`path_to_name`."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(
            f"not a contract name: {name!r} (expected <service>.<aggregate>.<event>.v<major>)"
        )
    parts = match.groupdict()
    return f"{parts['service']}/{parts['aggregate']}-{parts['event']}/v{parts['major']}.json"


def path_to_name(path: str | PurePosixPath) -> str:
    """Contract name of a schema file given relative to the contracts directory."""
    text = PurePosixPath(path).as_posix()
    match = _PATH.match(text)
    if match is None:
        raise ValueError(
            f"not a contract schema path: {text!r} "
            "(expected <service>/<aggregate>-<event>/v<major>.json)"
        )
    parts = match.groupdict()
    return f"{parts['service']}.{parts['aggregate']}.{parts['event']}.v{parts['major']}"


def schema_id_for(relative_path: str | PurePosixPath) -> str:
    """The ``$id`` a schema file must declare, implied by where it lives."""
    return BASE_URI + PurePosixPath(relative_path).as_posix()


def event_type_for(name: str) -> str:
    """CloudEvents ``type`` of a contract: ``es.consistorio.`` + its name."""
    name_to_path(name)
    return EVENT_TYPE_PREFIX + name


def name_for_event_type(event_type: str) -> str:
    """Contract name carried by a CloudEvents ``type``; raises ValueError for foreign types."""
    if not event_type.startswith(EVENT_TYPE_PREFIX):
        raise ValueError(f"not a Consistorio event type: {event_type!r}")
    name = event_type.removeprefix(EVENT_TYPE_PREFIX)
    name_to_path(name)
    return name


def default_root() -> Path:
    """The repository's ``bus-contracts/`` when running from a checkout, else the wheel's copy."""
    repo_copy = Path(__file__).resolve().parents[3] / "bus-contracts"
    if repo_copy.is_dir():
        return repo_copy
    return Path(__file__).parent / "_bundled"


_RFC3339 = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.\d+)?"
    r"(?:[Zz]|[+-](?P<oh>\d{2}):(?P<om>\d{2}))$"
)
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_FORBIDDEN_IN_URI = re.compile(r"[\s<>\"{}|\\^`\x00-\x1f\x7f]")


def _is_date_time(value: object) -> bool:
    """RFC 3339 date-time with a mandatory offset (jsonschema needs an extra package for it)."""
    if not isinstance(value, str):
        return True
    match = _RFC3339.match(value)
    if match is None:
        return False
    try:
        date.fromisoformat(match["date"])
    except ValueError:
        return False
    if int(match["h"]) > 23 or int(match["m"]) > 59 or int(match["s"]) > 60:
        return False
    return match["oh"] is None or (int(match["oh"]) <= 23 and int(match["om"]) <= 59)


def _is_uri_reference(value: object) -> bool:
    """A URI reference has no spaces or characters that must be percent-encoded."""
    return not isinstance(value, str) or _FORBIDDEN_IN_URI.search(value) is None


def _is_uri(value: object) -> bool:
    """An absolute URI: a URI reference with a scheme."""
    if not isinstance(value, str):
        return True
    if not _is_uri_reference(value):
        return False
    try:
        scheme = urlsplit(value).scheme
    except ValueError:  # an unclosed IPv6 bracket, a bad port: no URI at all
        return False
    return bool(scheme) and _URI_SCHEME.match(scheme) is not None


def format_checker() -> FormatChecker:
    """Format checking that works offline and without optional jsonschema extras.

    jsonschema checks ``uuid`` by itself but silently skips ``date-time`` and ``uri``
    unless extra packages are installed; these three are the formats our contracts use.
    """
    checker = FormatChecker()
    checker.checks("date-time")(_is_date_time)
    checker.checks("uri")(_is_uri)
    checker.checks("uri-reference")(_is_uri_reference)
    return checker


def _describe(errors: Iterable[ValidationError], prefix: str = "") -> list[str]:
    """One line per failing field, ``path/to/field: message``, sorted by path."""
    lines: dict[str, None] = {}
    for error in errors:
        location = [str(part) for part in error.absolute_path]
        if error.validator == "required" and isinstance(error.instance, Mapping):
            missing = [p for p in error.validator_value if p not in error.instance]
            for field in missing:
                lines[_join(prefix, [*location, str(field)]) + ": is a required property"] = None
            continue
        lines[_join(prefix, location) + ": " + error.message] = None
    return sorted(lines)


def _join(prefix: str, location: list[str]) -> str:
    path = "/".join(part for part in [prefix, *location] if part)
    return path or "(root)"


class ContractRegistry:
    """Every bus schema of one contracts directory, with cached compiled validators."""

    def __init__(self, root: Path, documents: Mapping[str, dict[str, Any]]) -> None:
        """Prefer :meth:`load`; ``documents`` maps each relative POSIX path to its schema."""
        self.root = root
        self._documents = dict(documents)
        self._contracts: dict[str, str] = {}
        for relative in self._documents:
            try:
                self._contracts[path_to_name(relative)] = relative
            except ValueError:
                continue
        if ENVELOPE_FILE not in self._documents:
            raise ContractError(f"{ENVELOPE_FILE} is missing from the contracts directory")
        resources = []
        for relative, schema in self._documents.items():
            uri = schema.get("$id")
            if not isinstance(uri, str):
                raise ContractError(f"{relative}: schema has no $id")
            resources.append((uri, Resource.from_contents(schema, DRAFT202012)))
        self._registry: Registry[Any] = Registry().with_resources(resources)
        self._format_checker = format_checker()
        self._validators: dict[str, Draft202012Validator] = {}
        self._fast_registry = jsonschema_rs.Registry(
            [(schema["$id"], schema) for schema in self._documents.values()]
        )
        self._fast: dict[str, Any] = {}

    @classmethod
    def load(cls, root: Path | None = None) -> ContractRegistry:
        """Reads every schema under ``root`` (default: :func:`default_root`).

        Examples and the lock file are not schemas and are left out.
        """
        base = root if root is not None else default_root()
        if not base.is_dir():
            raise ContractError(f"no contracts directory at {base}")
        documents: dict[str, dict[str, Any]] = {}
        for file in sorted(base.rglob("*.json")):
            relative = file.relative_to(base).as_posix()
            if relative == LOCK_FILE or relative.startswith(EXAMPLES_DIR + "/"):
                continue
            try:
                content = json.loads(file.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise ContractError(f"{relative}: not valid JSON ({exc})") from exc
            if not isinstance(content, dict):
                raise ContractError(f"{relative}: a schema must be a JSON object")
            documents[relative] = content
        return cls(base, documents)

    def names(self) -> list[str]:
        """Every contract name (one per schema file and major), sorted."""
        return sorted(self._contracts)

    def path(self, name: str) -> str:
        """Schema file of a contract, relative to :attr:`root`."""
        if name not in self._contracts:
            raise UnknownContract(name)
        return self._contracts[name]

    def schema(self, name: str) -> dict[str, Any]:
        """A copy of the contract's schema (the registry's own stays untouched)."""
        return copy.deepcopy(self._documents[self.path(name)])

    def schema_uri(self, name: str) -> str:
        """The contract's ``$id``: what producers put in the envelope's ``dataschema``."""
        return str(self._documents[self.path(name)]["$id"])

    def envelope_schema(self) -> dict[str, Any]:
        """A copy of the CloudEvents envelope schema."""
        return copy.deepcopy(self._documents[ENVELOPE_FILE])

    def validate(self, name: str, data: Any) -> None:
        """Raises :class:`ContractViolation` naming every field of ``data`` that breaks ``name``."""
        if self._conforms(name, data):
            return
        errors = _describe(self._validator(name).iter_errors(data))
        if errors:
            raise ContractViolation(name, errors)

    def _conforms(self, key: str, instance: Any) -> bool:
        """Whether ``instance`` satisfies the schema, by a compiled validator (jsonschema-rs).

        Every event is checked when it is emitted and again when it is consumed: with
        the pure-Python validator that was most of a millisecond each time, dozens of
        times an asiento. A False here is only a hint: the Python validator, whose
        messages name the fields, has the last word (tests hold the two to agree).
        """
        fast = self._fast.get(key)
        if fast is None:
            relative = ENVELOPE_FILE if key == ENVELOPE_FILE else self.path(key)
            fast = jsonschema_rs.validator_for(
                self._documents[relative], registry=self._fast_registry, validate_formats=True
            )
            self._fast[key] = fast
        return bool(fast.is_valid(instance))

    def validate_envelope(self, envelope: Any, *, check_data: bool = True) -> None:
        """Checks a whole structured-mode CloudEvent.

        The envelope must match ``envelope.json``; with ``check_data`` (the default) its
        ``type`` must name a known contract, ``dataschema`` must be that contract's
        ``$id`` and ``data`` must satisfy it. Raises :class:`ContractViolation` (data
        fields are reported as ``data/...``) or :class:`UnknownContract`.
        """
        errors = (
            []
            if self._conforms(ENVELOPE_FILE, envelope)
            else _describe(self._validator(ENVELOPE_FILE).iter_errors(envelope))
        )
        name: str | None = None
        event_type = envelope.get("type") if isinstance(envelope, Mapping) else None
        if check_data and isinstance(event_type, str):
            try:
                name = name_for_event_type(event_type)
            except ValueError:
                name = None
            if name is not None and name not in self._contracts:
                if not errors:
                    raise UnknownContract(name)
                name = None
            if name is not None:
                expected = self.schema_uri(name)
                if envelope.get("dataschema") != expected:
                    errors.append(f"dataschema: must be {expected!r} for type {event_type!r}")
                data = envelope.get("data")
                if isinstance(data, Mapping) and not self._conforms(name, data):
                    errors.extend(_describe(self._validator(name).iter_errors(data), "data"))
        if errors:
            raise ContractViolation(name or "envelope", errors)

    def _validator(self, key: str) -> Draft202012Validator:
        """Compiled validator of a contract name (or of the envelope file), built once."""
        cached = self._validators.get(key)
        if cached is not None:
            return cached
        relative = ENVELOPE_FILE if key == ENVELOPE_FILE else self.path(key)
        validator = Draft202012Validator(
            self._documents[relative],
            registry=self._registry,
            format_checker=self._format_checker,
        )
        self._validators[key] = validator
        return validator
