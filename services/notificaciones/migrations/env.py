"""Alembic entry point of this component; the shared runner does the work."""

from services.common.migrations_support import run_env

run_env()
