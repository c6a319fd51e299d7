"""Anexos of an asiento: the documents that come with it, kept in the repositorio.

An anexo arrives inline with the asiento, base64-encoded, as SICRES 3.0 carries it
(``De_Anexo``). The registro checks it, hashes it and, in the asiento's own unit of
work, sends the repositorio the command to store it under a ``documento_id`` the
registro chooses, so the asiento names its documents from the moment it commits.
The asiento keeps only what SICRES says about each anexo (``schemas.AnexoRead``);
the bytes live in the repositorio alone.

Limits follow SIR practice (ORVE/GEISER): at most ``domain.MAX_ANEXOS`` anexos, 10 MB
each and 15 MB in all (``registro_max_anexo_bytes`` / ``registro_max_anexos_bytes``).
The body of ``POST /asientos`` is refused before it is parsed when it cannot fit them
(``api.LimiteCuerpo``).
"""
