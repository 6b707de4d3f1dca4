"""vigil.pgconn: one way to show, scrub and open a PostgreSQL connection string, in both of libpq's
forms. The drill's old redaction split key/value pairs on spaces and missed a URL's password."""

from __future__ import annotations

import pytest

from pgcluster import free_port
from vigil.errors import UsageError
from vigil.pgconn import PgConnectError, connect, libpq_dsn, parse_conninfo, redact, scrub, secrets


@pytest.mark.parametrize(
    "dsn, shown",
    [
        # the URL form: the drill's old `_redact` returned these unchanged, password included
        ("postgresql://app:s3cret@db.internal:5432/app", "postgresql://app@db.internal:5432/app"),
        ("postgres://app:s3cret@db/app?sslmode=require", "postgresql://app@db/app?sslmode=require"),
        ("postgresql+psycopg://app:s3cret@127.0.0.1:6543/app", "postgresql://app@127.0.0.1:6543/app"),
        ("postgresql://app@db/app?password=s3cret&application_name=x", "postgresql://app@db/app?application_name=x"),
        ("postgresql://app:p%40ss%2Fw0rd@h1:5432,h2:5433/app", "postgresql://app@h1:5432,h2:5433/app"),
        ("postgresql://app:a@b/c?d@db/app", "postgresql://app@db/app"),  # unescaped @ / ? in the password
        ("postgresql://db/app?sslpassword=s3cret", "postgresql://db/app"),
        # key/value pairs, quoted values with escapes, and a dbname that is itself a URL
        ("host=/run/pg port=5432 user=app password=s3cret dbname=app", "host=/run/pg port=5432 user=app dbname=app"),
        ("host=db password = 'two words \\' s3cret' dbname=app", "host=db dbname=app"),
        ("host=db dbname=postgresql://app:s3cret@db2/app", "host=db dbname=postgresql://app@db2/app"),
        ("dbname='host=db password=s3cret'", "dbname='host=db'"),
    ],
)
def test_redact_keeps_the_address_and_drops_every_secret(dsn, shown):
    assert redact(dsn) == shown
    assert "s3cret" not in redact(dsn) and "p%40ss" not in redact(dsn)


def test_secrets_and_scrub_cover_raw_and_percent_decoded_values():
    assert secrets("postgresql://u:p%40ss@h/db") == ["p%40ss", "p@ss"]
    assert scrub('missing "=" after "postgresql://u:p@ss@h/db"', "host=x postgresql://u:p@ss@h/db") == \
        'missing "=" after "postgresql://u:***@h/db"'
    assert secrets("host=a port=5") == [] and scrub("nothing to hide", "host=a") == "nothing to hide"


def test_parse_conninfo_follows_libpq():
    assert parse_conninfo("  host = a  port=5 password='x y\\'z' options='-c a=b'") == [
        ("host", "a"), ("port", "5"), ("password", "x y'z"), ("options", "-c a=b")]
    for bad in ("host", "host=a 'x'", "password='open"):
        with pytest.raises(ValueError):
            parse_conninfo(bad)
    assert libpq_dsn("postgresql+psycopg2://h/db") == "postgresql://h/db" and libpq_dsn("host=a") == "host=a"


def test_unparseable_strings_are_still_redacted():
    shown = redact("host=x postgresql://u:s3cret@h/db password='unterminated s3cret")
    assert "s3cret" not in shown and "postgresql://u@h/db" in shown


def test_a_refused_connection_names_the_server_without_the_password():
    port = free_port()
    with pytest.raises(PgConnectError) as ei:
        connect(f"postgresql://app:s3cret@127.0.0.1:{port}/app", what="the primary", connect_timeout=3)
    e = ei.value
    assert e.exit_code == 3 and "s3cret" not in e.message and "s3cret" not in str(e.hint)
    assert e.message.startswith(f"cannot connect to the primary postgresql://app@127.0.0.1:{port}/app: ")
    assert "Connection refused" in e.message
    with pytest.raises(PgConnectError) as ei:
        connect(f"host=127.0.0.1 port={port} user=app password=s3cret dbname=app", connect_timeout=3)
    assert f"(host=127.0.0.1 port={port} user=app dbname=app)" in ei.value.message and "s3cret" not in ei.value.message


def test_a_string_the_driver_cannot_read_is_a_usage_error_and_its_echo_is_scrubbed():
    # libpq quotes the part it could not parse: the URL, password included
    with pytest.raises(UsageError) as ei:
        connect("host=127.0.0.1 postgresql://app:s3cret@db/app")
    assert ei.value.exit_code == 2 and "s3cret" not in ei.value.message and "postgresql://app@db/app" in ei.value.message
    with pytest.raises(UsageError, match="is not a PostgreSQL connection string"):
        connect("just-a-name")


def test_a_custom_error_class_is_raised(pg_cluster):
    from vigil.dr.postgres.cluster import ClusterError

    with pytest.raises(ClusterError):
        connect(f"host=127.0.0.1 port={free_port()} user=postgres dbname=postgres", error=ClusterError, connect_timeout=3)
    with connect(f"host=127.0.0.1 port={pg_cluster.port} user=postgres dbname=postgres") as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1 and conn.autocommit
