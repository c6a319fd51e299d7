"""Emisión: issuing a version of a documento (CSV, footer, seal, new version) as a bus saga.

An emisión runs in steps, each one transaction of the repositorio::

    abrir_emision          (POST .../emitir or repositorio.documento.emitir.v1)
        emisión pendiente, csv.codigo.reservar.v1
    on_codigo_reservado   (csv.codigo.reservado.v1)
        the version read and checked, the CSV footer stamped on every page,
        sellado.documento.sellar.v1; emisión sellando
    on_documento_sellado  (sellado.documento.sellado.v1)
        the sealed PDF stored as a new version, emisión emitida,
        repositorio.documento.emitido.v1 (and documento.almacenado.v1)
    on_documento_rechazado (sellado.documento.rechazado.v1), or any step that
        can never succeed: emisión fallida, repositorio.emision.fallida.v1

Replies are matched by ``solicitud_id`` (the emisión's id) and ``solicitante``
(``repositorio``), under a row lock, and acted on only when the emisión waits
for exactly that step: a redelivered or stray reply changes nothing. Each step
commits its state, its audit entries and its next message together (outbox), so
a failure in the middle leaves the emisión as it was, to be tried again.
"""
