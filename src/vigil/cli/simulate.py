"""``vigil simulate`` (placeholder until the simulator lands)."""

COMMANDS: list = []
