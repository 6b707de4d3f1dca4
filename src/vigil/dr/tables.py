"""State tables of DR drills (placeholder; created by migration 0004)."""

from vigil.store.schema import metadata  # noqa: F401
