"""``vigil openslo`` (placeholder until OpenSLO lands)."""

COMMANDS: list = []
