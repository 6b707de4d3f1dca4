"""Exports of the classification registry (pure: registry in, documents out).

* :func:`lf_tags`: AWS Lake Formation LF-Tags: the ``CreateLFTag`` calls for the tag keys
  ``classification`` (public, internal, pii, sensitive) and ``owner`` (every owner named), and one
  ``AddLFTagsToResource`` call per table and class (``TableWithColumns``) plus one per table for its
  owner. The arguments are boto3's, valid by botocore's model (a test checks).
* :func:`grants_plan`: a PostgreSQL grants plan: per table, ``REVOKE ALL ... FROM PUBLIC`` and from
  every role the registry names, then ``GRANT SELECT (columns) ... TO role`` with exactly the columns
  each role may read (column privileges). Run it as the tables' owner; it is idempotent.
"""

from __future__ import annotations

from vigil.security.data.spec import CLASSES, Registry


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def _column_roles(t) -> dict[str, list[str]]:
    return {col: (c.roles if c.roles is not None else t.roles) for col, c in t.columns.items()}


def lf_tags(registry: Registry, *, database: str | None = None, catalog_id: str | None = None) -> dict:
    reg = registry.qualified()
    owners = sorted({t.owner for t in reg.values()} | {c.owner for t in reg.values() for c in t.columns.values() if c.owner})
    base = {"CatalogId": catalog_id} if catalog_id else {}
    create = [{**base, "TagKey": "classification", "TagValues": list(CLASSES)}]
    if owners:
        create.append({**base, "TagKey": "owner", "TagValues": owners[:1000]})
    add = []
    for name, t in sorted(reg.items()):
        schema, table = name.split(".", 1)
        db = database or schema
        add.append({**base, "Resource": {"Table": {"DatabaseName": db, "Name": table}},
                    "LFTags": [{"TagKey": "owner", "TagValues": [t.owner]}]})
        by_class: dict[str, list[str]] = {}
        for col, c in sorted(t.columns.items()):
            by_class.setdefault(c.class_, []).append(col)
        for cls in CLASSES:
            if cls in by_class:
                add.append({**base, "Resource": {"TableWithColumns": {"DatabaseName": db, "Name": table, "ColumnNames": by_class[cls]}},
                            "LFTags": [{"TagKey": "classification", "TagValues": [cls]}]})
        col_owners: dict[str, list[str]] = {}
        for col, c in sorted(t.columns.items()):
            if c.owner and c.owner != t.owner:
                col_owners.setdefault(c.owner, []).append(col)
        for owner, cols in sorted(col_owners.items()):
            add.append({**base, "Resource": {"TableWithColumns": {"DatabaseName": db, "Name": table, "ColumnNames": cols}},
                        "LFTags": [{"TagKey": "owner", "TagValues": [owner]}]})
    return {"CreateLFTag": create, "AddLFTagsToResource": add}


def grants_plan(registry: Registry) -> str:
    reg = registry.qualified()
    lines = ["-- vigil data export grants: column privileges from the classification registry.",
             "-- Run as the owner of the tables; safe to run again (revokes, then grants exactly).", "BEGIN;"]
    for name, t in sorted(reg.items()):
        schema, table = name.split(".", 1)
        qt = f"{_q(schema)}.{_q(table)}"
        roles = _column_roles(t)
        everyone = sorted({r for rs in roles.values() for r in rs} | set(t.roles))
        classes = ", ".join(f"{col}={c.class_}" for col, c in sorted(t.columns.items()))
        lines.append(f"-- {name} (owner {t.owner}): {classes}")
        lines.append(f"REVOKE ALL ON TABLE {qt} FROM PUBLIC;")
        for r in everyone:
            lines.append(f"REVOKE ALL ON TABLE {qt} FROM {_q(r)};")
        for r in everyone:
            cols = [col for col, rs in sorted(roles.items()) if r in rs]
            if cols:
                lines.append(f"GRANT SELECT ({', '.join(_q(c) for c in cols)}) ON TABLE {qt} TO {_q(r)};")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"
