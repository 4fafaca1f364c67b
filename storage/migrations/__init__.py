"""Alembic migrations of the store. SCHEMA_HEAD names the newest revision so that start-up
can tell an up-to-date store with one query, without importing Alembic (a test keeps it in
step with the revision files)."""

SCHEMA_HEAD = "0013"
