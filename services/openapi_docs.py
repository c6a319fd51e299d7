"""``python -m services.openapi_docs write|check``: each service's REST contract, committed.

The bus has ``bus-contracts/published.lock.json``; the REST API has ``docs/openapi/``:
one OpenAPI document per service, generated from the code. ``check`` fails when the
code's document differs from the committed one (run ``make openapi``), and when the
difference would break a client of the committed one (a path, an operation or a
response field removed, a request field or parameter made required, a type changed:
see :mod:`services.common.contracts.openapi`). ``write`` refreshes the files, and
refuses a breaking change unless told ``--allow-breaking``: a deliberate break is then
one reviewed commit of these files.

Part of the composition root: it is the one tool that builds every service's app, with
a runtime that never connects (nothing is started; the documents need only the routes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from services.bootstrap import build_platform
from services.catalog import SERVICES
from services.common.bus.inprocess import InProcessTransport
from services.common.contracts.openapi import openapi_incompatibilities
from services.common.settings import Settings

__all__ = ["DOCS_DIR", "build_documents", "main", "render", "stale_documents"]

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs" / "openapi"
_COMMAND = "make openapi"
# Never connected to: building the apps only creates the (lazy) engine.
_OFFLINE_DATABASE = "postgresql://openapi@localhost.invalid/openapi"

Document = dict[str, Any]


def build_documents(names: Sequence[str] | None = None) -> dict[str, Document]:
    """The OpenAPI document of each service (every one by default), as its app serves it.

    The platform is wired as ``consistorio serve`` wires it but never started: no
    database, broker or request is reached. Settings are the defaults, whatever the
    environment says, so the documents are the same on every machine; development key
    material goes to a throw-away directory.
    """
    return asyncio.run(_build(list(names or SERVICES)))


async def _build(names: list[str]) -> dict[str, Document]:
    with tempfile.TemporaryDirectory(prefix="consistorio-openapi-") as data_dir:
        settings = Settings.model_construct(data_dir=Path(data_dir), database_url=_OFFLINE_DATABASE)
        platform = await build_platform(settings, names, transport=InProcessTransport())
        try:
            return {name: platform.apps[name].openapi() for name in names}
        finally:
            await platform.close()


def render(document: Mapping[str, Any]) -> str:
    """A document as committed: stable, human-diffable JSON."""
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def read_committed(name: str, directory: Path = DOCS_DIR) -> Document | None:
    """The committed document of a service, or None before its first commit."""
    path = directory / f"{name}.json"
    if not path.exists():
        return None
    content = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(content, dict):
        raise ValueError(f"{path.name}: not an OpenAPI document")
    return content


def stale_documents(documents: Mapping[str, Document], directory: Path = DOCS_DIR) -> list[str]:
    """The services whose committed document is missing or differs from the code's."""
    stale = []
    for name, document in sorted(documents.items()):
        path = directory / f"{name}.json"
        if not path.exists() or path.read_text(encoding="utf-8") != render(document):
            stale.append(name)
    return stale


def breaking_changes(documents: Mapping[str, Document], directory: Path = DOCS_DIR) -> list[str]:
    """Every change from a committed document to the code's that would break a client."""
    problems: list[str] = []
    for name, document in sorted(documents.items()):
        committed = read_committed(name, directory)
        if committed is not None:
            problems.extend(
                f"{name}: {msg}" for msg in openapi_incompatibilities(committed, document)
            )
    for path in sorted(directory.glob("*.json")):
        if path.stem not in documents:
            problems.append(f"{path.stem}: the service is gone, and every route with it")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m services.openapi_docs",
        description="Write or check the committed OpenAPI document of every service.",
    )
    parser.add_argument("action", choices=("write", "check"))
    parser.add_argument(
        "--allow-breaking",
        action="store_true",
        help="write even when a change breaks clients of the committed documents",
    )
    parser.add_argument(
        "--dir", type=Path, default=DOCS_DIR, help="where the documents live (docs/openapi/)"
    )
    args = parser.parse_args(argv)

    documents = build_documents()
    problems = breaking_changes(documents, args.dir)
    if problems and not (args.action == "write" and args.allow_breaking):
        print("Changes that break clients of the committed REST API:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print(
            "Revert them or make them additive (a new optional field, a new route); a "
            "deliberate break is written with `make openapi OPENAPI_FLAGS=--allow-breaking` "
            "and reviewed as such.",
            file=sys.stderr,
        )
        return 1

    stale = stale_documents(documents, args.dir)
    if args.action == "check":
        if stale:
            print(
                f"OpenAPI documents out of date: {', '.join(stale)}; run `{_COMMAND}` "
                "and commit docs/openapi/.",
                file=sys.stderr,
            )
            return 1
        print(f"OpenAPI documents up to date ({len(documents)} services).")
        return 0
    args.dir.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (args.dir / f"{name}.json").write_text(render(documents[name]), encoding="utf-8")
    for orphan in sorted(p for p in args.dir.glob("*.json") if p.stem not in documents):
        orphan.unlink()  # only reached with --allow-breaking: the removal is deliberate
        stale.append(f"{orphan.stem} (removed)")
    print(f"OpenAPI documents written: {', '.join(stale) or 'none changed'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
