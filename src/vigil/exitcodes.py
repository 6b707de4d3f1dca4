"""The process exit codes of every vigil command. Nothing else defines one."""

OK = 0
"""The command did what was asked and every gate or check said yes."""

NO = 1
"""A gate or check said no (a frozen deploy, a failed check)."""

USAGE = 2
"""The command line or an input (spec, telemetry, flag) was invalid."""

EXTERNAL = 3
"""An external system (database, server, network) failed."""

INTERNAL = 4
"""vigil itself failed (a bug): the message says so; --debug shows the traceback."""
