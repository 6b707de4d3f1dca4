"""PostgreSQL backups through pgBackRest."""
