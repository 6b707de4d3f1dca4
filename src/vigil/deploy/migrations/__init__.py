"""Migration safety: lint (pglast), verify against a Stage database, apply with a ledger."""
