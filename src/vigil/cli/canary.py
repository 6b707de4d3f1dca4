"""``vigil canary`` (placeholder until it lands)."""

COMMANDS: list = []
