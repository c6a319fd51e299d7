"""Database objects of the sellado schema (the service's own; no other service reads them)."""

from __future__ import annotations

from sqlalchemy import MetaData, Sequence

from services.common.kernel_tables import kernel_tables

SCHEMA = "sellado"
metadata = MetaData(schema=SCHEMA)
kernel = kernel_tables(metadata)

# Serial numbers of time-stamp tokens, reserved in blocks (see tsa.PostgresSerialSource);
# the increment is the block size, fixed by migration 0001.
TSA_SERIAL_BLOCK = 1000
tsa_serial = Sequence("tsa_serial", start=1, increment=TSA_SERIAL_BLOCK, metadata=metadata)
