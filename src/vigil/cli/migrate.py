"""``vigil migrate`` (placeholder until it lands)."""

COMMANDS: list = []
