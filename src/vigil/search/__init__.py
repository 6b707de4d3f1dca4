"""Search engines behind one protocol: Typesense (HTTP) and an embedded SQLite FTS5 engine."""
