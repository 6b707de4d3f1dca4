"""``vigil backup`` (placeholder until it lands)."""

COMMANDS: list = []
