"""State tables of canary runs (placeholder; created by migration 0003)."""

from vigil.store.schema import metadata  # noqa: F401
