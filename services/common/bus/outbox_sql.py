"""The outbox relay's three statements, written once per outbox as plain SQL.

The relay runs the same three statements for every batch, on whatever it finds, many
times a second on a busy platform. Built as SQLAlchemy expressions they cost more CPU
to build, key and look up in the compiled cache than the database takes to run them,
so they are text, made once per table, and run on the driver connection, whose own
cache keeps them prepared. A batch is three round trips: BEGIN, the claim, and marking
the rows sent together with the COMMIT.

What the claim reads is what the relay needs and nothing it would have to rebuild: the
envelope as the JSON text PostgreSQL keeps (``jsonb`` prints it the way ``json.dumps``
prints the dict it decodes to: keys in the same order, the same separators, non-ASCII
as is), and beside it the four attributes the message's properties carry, so the
relay never parses the envelope nor serialises it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql

__all__ = ["OutboxStatements"]

_PREPARER = postgresql.dialect().identifier_preparer


@dataclass(frozen=True)
class OutboxStatements:
    """Claim a batch, mark rows sent, record failures: SQL with ``$n`` parameters."""

    claim: str
    mark_failed: str
    # "UPDATE … WHERE id = ANY('{…}'); COMMIT": see commit_sent.
    _mark_sent: str

    @classmethod
    def for_table(cls, outbox: Table) -> OutboxStatements:
        """The statements for one service's outbox (its schema-qualified, quoted name)."""
        table = _PREPARER.format_table(outbox)
        return cls(
            # $1: the batch size. Rows another relay holds are skipped, not waited for.
            claim=(
                "SELECT id, routing_key, envelope ->> 'id' AS event_id,"
                " envelope ->> 'tenantid' AS tenant, envelope ->> 'type' AS ce_type,"
                " envelope ->> 'traceparent' AS traceparent, envelope::text AS body"
                f" FROM {table} WHERE sent_at IS NULL ORDER BY id"
                " LIMIT $1 FOR UPDATE SKIP LOCKED"
            ),
            _mark_sent=(
                f"UPDATE {table} SET sent_at = statement_timestamp(), last_error = NULL"
                " WHERE id = ANY('{{{ids}}}'::bigint[]); COMMIT"
            ),
            # $1, $2: the ids that failed and each one's error, side by side.
            mark_failed=(
                f"UPDATE {table} AS o SET attempts = o.attempts + 1, last_error = f.error"
                " FROM unnest($1::bigint[], $2::text[]) AS f(id, error) WHERE o.id = f.id"
            ),
        )

    def commit_sent(self, ids: Sequence[int]) -> str:
        """Marks ``ids`` sent and commits, in one round trip (the simple query protocol
        takes two statements at once, but no parameters: the ids, integers the claim
        returned, are written into the text)."""
        if not ids:
            return "COMMIT"
        return self._mark_sent.format(ids=",".join(str(int(i)) for i in ids))
