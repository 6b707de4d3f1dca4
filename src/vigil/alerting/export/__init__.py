"""The spec's alerts in the formats of the tools users keep: Prometheus rule files
(:mod:`.prometheus`), an Alertmanager configuration (:mod:`.alertmanager`) and CloudWatch alarms
(:mod:`.cloudwatch`). Each is a pure function of the spec's sections returning plain data and
notes (what the target cannot express exactly)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Exported:
    """A document (plain data, ready for YAML or JSON) and notes about what differs from vigil."""

    document: Any
    notes: list[str] = field(default_factory=list)


def to_yaml(data: Any) -> str:
    """Plain data as block-style YAML (keys in the order given)."""
    import io

    from ruamel.yaml import YAML

    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.representer.sort_base_mapping_type_on_output = False  # keep the keys in the order given
    y.width = 4096
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()
