"""Alembic environment: vigil runs migrations programmatically on a connection it owns."""

from alembic import context

from vigil.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - vigil always passes a connection
    raise RuntimeError("vigil runs its migrations through vigil.store.open_store()")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
