"""The kernel every Consistorio service stands on.

settings, db (engines, row-level tenancy, unit of work), auth (JWT), errors
(RFC 9457), tenants, audit, idempotency, bus (envelope, outbox, inbox, transports),
contracts (bus-contracts loader and validator) and telemetry. It knows no service
and holds no business rule.
"""
