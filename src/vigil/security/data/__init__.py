"""Data classification: a registry (table -> column -> public | internal | pii | sensitive, owner,
roles), the live schema scan (:mod:`.scan`), PII recognizers (:mod:`.recognizers`) and exports as
Lake Formation LF-Tags and a PostgreSQL grants plan (:mod:`.export`)."""

from __future__ import annotations

from pathlib import Path

from vigil.errors import UsageError


def load_registry(path: Path):
    """The registry in a YAML file (``tables: ...``). A bad file is a usage error naming the place."""
    from pydantic import ValidationError

    from vigil.security.data.spec import Registry
    from vigil.yamlio import Limits, load_plain

    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such registry file", hint="security.data.registry or --registry names a YAML file with tables:") from None
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror or e}") from None
    doc = load_plain(text.decode("utf-8-sig", "replace"), str(path), Limits(max_bytes=20 * 1024 * 1024, what="a registry", typical="a registry is a few hundred KiB"))
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: expected a mapping with tables:")
    try:
        return Registry.model_validate(doc)
    except ValidationError as e:
        errs = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()[:10])
        raise UsageError(f"{path}: {errs}", hint="tables: {schema.table: {owner: ..., roles: [...], columns: {col: class}}}") from None


def registry_of(data_spec, spec_dir: Path, override: str | None = None):
    """The registry a command uses: ``override`` (a file), else the spec's file or inline tables."""
    from vigil.security.data.spec import Registry

    if override:
        return load_registry(Path(override))
    if data_spec is None:
        raise UsageError("no registry: pass --registry FILE or set security.data in the spec")
    if data_spec.registry:
        return load_registry(spec_dir / data_spec.registry)
    return Registry(tables=data_spec.tables or {})
