"""``vigil drill`` (placeholder until it lands)."""

COMMANDS: list = []
