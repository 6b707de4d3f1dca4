"""Alembic environment: vigil runs its schema revisions programmatically on a connection it owns.

The revisions create their tables explicitly; the assembled metadata (every capability's tables,
:mod:`vigil.tables`) is only a target for comparison, imported here because Alembic runs this file
as a script, after the store has been opened.
"""

from alembic import context

from vigil.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - vigil always passes a connection
    raise RuntimeError("vigil runs its schema revisions through vigil.store.open_store()")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
