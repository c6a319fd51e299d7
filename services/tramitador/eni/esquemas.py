"""The official ENI v1.0 XSDs, compiled once per process from the package's unchanged copies.

The schemas import each other (and the W3C XML-DSig schema) by absolute URL, which no
server of ours may fetch. A resolver maps every such URL to its local copy by file
name, so the files stay byte for byte as published and validation never reaches the
network.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

__all__ = ["XSD_DIR", "errores", "esquema"]

XSD_DIR = Path(__file__).parent / "xsd"
_ROOTS = {
    "expediente": "expedienteEni.xsd",
    "documento": "documentoEni.xsd",
    "indice": "IndiceExpedienteEni.xsd",
}


class _Local(etree.Resolver):
    """Resolves ``http://administracionelectronica.gob.es/.../X.xsd`` and the W3C schema
    to the copy of ``X.xsd`` in :data:`XSD_DIR`."""

    def resolve(self, system_url, public_id, context):
        name = str(system_url).rsplit("/", 1)[-1]
        local = XSD_DIR / name
        if local.is_file():
            return self.resolve_filename(str(local), context)
        return None


@cache
def esquema(raiz: str) -> etree.XMLSchema:
    """The compiled schema whose root element is ``raiz`` (expediente, documento, indice)."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_Local())
    doc = etree.parse(str(XSD_DIR / _ROOTS[raiz]), parser)
    return etree.XMLSchema(doc)


def errores(xml: bytes | etree._Element, raiz: str) -> list[str]:
    """Each violation of the ENI schema ``raiz`` in ``xml`` (empty when it is valid)."""
    if isinstance(xml, bytes):
        parser = etree.XMLParser(
            no_network=True, resolve_entities=False, load_dtd=False, huge_tree=True
        )
        doc = etree.fromstring(xml, parser)
    else:
        doc = xml
    schema = esquema(raiz)
    if schema.validate(doc):
        return []
    return [f"línea {e.line}: {e.message}" for e in schema.error_log]
